//! The one integration-test binary: every black-box test of scanpay.
//!
//! Most of these tests wait on timers, not on the CPU, so `.cargo/config.toml`
//! runs several at a time by default.

/// One test per protocol for `flow` (an `async fn(Api)` in the calling module).
macro_rules! both {
    ($flow:ident) => {
        mod $flow {
            use super::*;

            #[tokio::test(flavor = "multi_thread")]
            async fn v2() {
                super::$flow(Api::V2).await
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn v3() {
                super::$flow(Api::V3).await
            }
        }
    };
}

mod admin;
mod backup;
mod both_apis;
mod browser;
mod cashier_limits;
mod check;
mod check_v3;
mod checkout;
mod day;
mod display;
mod faults;
mod helpers;
mod log_forging;
mod notices;
mod notify;
mod ops;
mod permissions;
mod poller;
mod print;
mod protocol;
mod proxy;
mod reconcile;
mod refresh;
mod refund_books;
mod refunds;
mod security_headers;
mod sign_in;
mod simulator_mark;
mod slow_clients;
mod trusted_proxies;
mod users;
mod webdriver;
mod webhooks;
