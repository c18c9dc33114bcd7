//! The checkout's [`Gateway`](crate::checkout::gateway::Gateway) port, implemented
//! once per protocol. Each adapter translates between the shop's terms and one
//! protocol module (`wxpay/` for API v2); the protocol modules stay pure and
//! know nothing of the domain, and the domain knows no protocol.

pub mod bill;
pub mod wxpay_v2;
pub mod wxpay_v3;
mod wxpay_v3_refund;

pub use wxpay_v2::WxPayV2;
pub use wxpay_v3::WxPayV3;
