//! scanpay: a self-hosted WeChat Pay scan-to-pay checkout with a built-in gateway simulator.

pub mod accounts;
pub mod checkout;
pub mod cli;
pub mod clock;
pub mod config;
pub mod gateway;
pub mod lock;
pub mod money;
pub mod order;
pub mod poller;
pub mod qr;
pub mod render;
pub mod role;
pub mod shop_time;
pub mod sim;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod trade;
pub mod web;
pub mod wxpay;
