//! scanpay: a self-hosted WeChat Pay scan-to-pay checkout with a built-in gateway simulator.

pub mod config;
pub mod money;
pub mod wxpay;
