//! scanpay: a self-hosted WeChat Pay scan-to-pay checkout with a built-in gateway simulator.
//!
//! The layers, top down (imports only point down; `docs/ARCHITECTURE.md` has
//! the doors in full): `startup` assembles; `web` (handlers), `poller`
//! (background work) and `sim` (the simulated gateway) sit on `checkout`, the
//! domain, which reaches a payment gateway only through its `Gateway` port
//! (`checkout::gateway`, implemented per protocol in `gateway`) and its data
//! only through `store`. `wxpay` is the pure API v2 protocol; `money`, `trade`,
//! `order`, `clock`, `role` and `lock` are leaf values and policies; `cause`
//! keeps errors' causes and logs their chain (`error.cause_chain`).

/// A list of a WeChat Pay protocol's words (a state, say), for `wxpay` and
/// `wxpay_v3` alike: each known word spelled once, and `Unknown` for one this version does not know, which callers
/// treat as "not final, ask again".
macro_rules! words {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            Unknown(String),
        }

        impl $name {
            pub fn parse(s: &str) -> $name {
                match s {
                    $($text => $name::$variant,)+
                    other => $name::Unknown(other.to_string()),
                }
            }

            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Unknown(s) => s,
                }
            }
        }
    };
}

pub mod accounts;
pub mod bill;
pub mod cause;
pub mod check;
pub mod checkout;
pub mod cli;
pub mod clock;
pub mod config;
pub mod gateway;
pub mod http_client;
pub mod lock;
pub mod money;
pub mod order;
pub mod origin;
pub mod poller;
pub mod qr;
pub mod render;
pub mod role;
pub mod shop_time;
pub mod sim;
pub mod speech;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod trade;
pub mod web;
pub mod webhooks;
pub mod wxpay;
pub mod wxpay_v3;
