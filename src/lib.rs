//! scanpay: a self-hosted WeChat Pay scan-to-pay checkout with a built-in gateway simulator.

pub mod money;
pub mod wxpay;
