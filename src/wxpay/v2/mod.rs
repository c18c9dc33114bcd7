//! WeChat Pay API v2, as scanpay uses it: one signer, one XML codec, typed
//! requests and results, and a thin client that believes nothing unsigned.
//!
//! This layer knows no web framework, no database and no domain; it depends on
//! nothing of ours but `values` and `base` (errors keep their causes; the
//! shared outbound HTTP). The checkout reaches it only through the adapter in
//! `crate::gateway::v2`.

pub mod api;
pub mod client;
pub mod download_bill;
pub mod notify;
pub mod refund;
pub mod sign;
pub mod types;
pub mod xml;

pub use api::{
    CloseOrder, Endpoint, Merchant, OrderQuery, Prepay, QueryResult, UnifiedOrder, WxPayError,
};
pub use client::{ClientIdentity, WxPayClient};
pub use refund::{Refund, RefundAccepted, RefundInfo, RefundQuery, RefundStatusV2};
pub use types::{ApiKey, ErrCode, OutTradeNo, SignType, TradeState};
pub use xml::Fields;
