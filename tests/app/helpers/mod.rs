//! The app under test: `Application` built in this process on a random port and
//! spoken to over real HTTP, with the simulator at `/sim/`. The real binary is
//! started only to kill it (`kill -9` and restart) or to test its command line.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use scanpay::app::{Application, SimApp};
use scanpay::config::Settings;
pub use scanpay::config::{DEMO_API_KEY, DEMO_APPID, DEMO_MCH_ID};
use scanpay::jobs::poller::Poller;
use scanpay::store::DB_FILE;
use scanpay::values::clock::Clock;
use scanpay::values::role::Role;
use scanpay::wxpay::v2::{ApiKey, Merchant, SignType, WxPayClient};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

mod app;
mod client;
mod events;
mod gateway_side;
mod interposer;
mod logs;
mod process;
mod sim;
mod spawn;

pub use app::*;
pub use client::*;
pub use events::*;
pub use gateway_side::*;
pub use interposer::*;
pub use logs::*;
pub use process::*;
pub use sim::*;
pub use spawn::*;

pub fn demo_merchant(sign_type: SignType) -> Merchant {
    Merchant {
        appid: DEMO_APPID.into(),
        mch_id: DEMO_MCH_ID.into(),
        key: ApiKey::new(DEMO_API_KEY).unwrap(),
        sign_type,
    }
}

/// Fast enough for tests: notifications retried 1000× faster, a quick poller.
/// The same pairs configure the app in this process and the binary.
pub(crate) const FAST_ENV: &[(&str, &str)] = &[
    ("SCANPAY_SIM_TIME_SCALE", "1000"),
    ("SCANPAY_POLLER_TICK_MS", "100"),
    ("SCANPAY_POLLER_FAST_INTERVAL_MS", "300"),
    ("SCANPAY_POLLER_SLOW_INTERVAL_MS", "500"),
    ("SCANPAY_POLLER_MAX_PER_SEC", "200"),
];

pub(crate) fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Settings from `env` (read the way the binary reads its env), on `listen`,
/// with `tweak` applied.
pub(crate) fn settings(
    env: Vec<(String, String)>,
    listen: &str,
    tweak: impl FnOnce(&mut Settings),
) -> Settings {
    let mut settings = Settings::load(None, env).unwrap();
    settings.listen = listen.into();
    tweak(&mut settings);
    settings.validate().unwrap();
    settings
}

/// Runs `serve(shutdown)` on a task of its own until the token it returns is
/// cancelled (the app or the simulator under test, stopped when dropped).
pub(crate) fn serve_until_cancelled<F>(
    what: &'static str,
    serve: impl FnOnce(tokio_util::sync::WaitForCancellationFutureOwned) -> F,
) -> CancellationToken
where
    F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let stop = CancellationToken::new();
    let served = serve(stop.clone().cancelled_owned());
    tokio::spawn(async move {
        if let Err(e) = served.await {
            eprintln!("{what} stopped: {e:#}");
        }
    });
    stop
}

/// A port free right now (for a server whose URL must be known before it starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub use scanpay::config::Api;
pub use scanpay::config::{DEMO_V3_APIV3_KEY, DEMO_V3_APPID, DEMO_V3_CERT_SERIAL, DEMO_V3_MCH_ID};
