//! The checkout's [`Gateway`](crate::checkout::gateway::Gateway) port, implemented
//! once per protocol. Each adapter translates between the shop's terms and one
//! protocol module (`wxpay/v2`, `wxpay/v3`): `v2.rs`, and `v3/` with its
//! refund half and the mapping both halves share; the protocol modules stay pure and
//! know nothing of the domain, and the domain knows no protocol. Only `app`
//! imports an adapter; a second wallet adds a file (or folder) here.

pub mod bill;
pub mod v2;
pub mod v3;

pub use v2::WxPayV2;
pub use v3::WxPayV3;
