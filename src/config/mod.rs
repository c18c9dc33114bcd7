//! Settings: defaults in code → optional TOML file → `SCANPAY_<SECTION>_<KEY>` env vars,
//! then the command line's `--data-dir` / `--listen` (see `app/cli.rs`). The schema
//! and its defaults are here; reading in `load`, checks in `validate`, the
//! merchant's keys in `merchant`, the proxies list in `proxies`. A near-leaf:
//! it imports only values and the protocols' key types.

mod load;
mod merchant;
pub mod proxies;
mod validate;

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::values::money::Fen;
use crate::wxpay::v2::{ApiKey, ClientIdentity, Merchant, SignType};
use proxies::TrustedProxies;

/// The demo merchant of simulator mode: public test values, never valid for real money.
pub const DEMO_APPID: &str = "wxd930ea5d5a258f4f";
pub const DEMO_MCH_ID: &str = "10000100";
pub const DEMO_API_KEY: &str = "192006250b4c09247ec02edce69f6a2d";

/// The demo v3 merchant of simulator mode with `wxpay.api = "v3"` (SPEC §7):
/// the official test key and its serial, public test values.
pub const DEMO_V3_APPID: &str = "wxd678efh567hg6787";
pub const DEMO_V3_MCH_ID: &str = "1900007291";
pub const DEMO_V3_CERT_SERIAL: &str = "408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB";
pub const DEMO_V3_APIV3_KEY: &str = "scanpay-demo-apiv3-key-000000000";

/// Which WeChat Pay protocol the merchant speaks (`wxpay.api`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    #[default]
    V2,
    V3,
}

const SECTIONS: [&str; 11] = [
    "shop",
    "wxpay",
    "checkout",
    "poller",
    "sim",
    "retention",
    "http",
    "metrics",
    "backup",
    "bill",
    "notify",
];

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where the database lives: `--data-dir` / `SCANPAY_DATA_DIR`, never a file key.
    #[serde(skip)]
    pub data_dir: PathBuf,
    /// Address to listen on (port 0: any free port): `--listen` / `SCANPAY_LISTEN`.
    #[serde(skip)]
    pub listen: String,
    pub shop: Shop,
    pub wxpay: Wxpay,
    pub checkout: Checkout,
    pub poller: Poller,
    pub sim: Sim,
    pub retention: Retention,
    pub http: Http,
    pub metrics: Metrics,
    pub backup: Backup,
    pub bill: Bill,
    pub notify: Notify,
}

/// Upper bounds of settings: far beyond any sensible value, well within what
/// durations, semaphores and timestamps hold.
pub const MAX_IN_FLIGHT: usize = 1024;
const MAX_PER_SEC: u64 = 100_000;
/// 30 days, for every `*_secs` key.
const MAX_SECS: u64 = 30 * 24 * 3600;
/// One day, for every `*_ms` key.
const MAX_MS: u64 = 24 * 3600 * 1000;
const MAX_TIMEOUT_SECS: u64 = 600;
/// Each stream holds a connection: well below what a process may open.
const MAX_EVENT_STREAMS: u64 = 100_000;
const MIN_TIME_SCALE: f64 = 1e-3;
const MAX_TIME_SCALE: f64 = 1e6;
const MAX_BACKUP_KEEP: u64 = 3650;

/// `scanpay serve`'s address when `--listen` is not given.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from("data"),
            listen: DEFAULT_LISTEN.into(),
            shop: Shop::default(),
            wxpay: Wxpay::default(),
            checkout: Checkout::default(),
            poller: Poller::default(),
            sim: Sim::default(),
            retention: Retention::default(),
            http: Http::default(),
            metrics: Metrics::default(),
            backup: Backup::default(),
            bill: Bill::default(),
            notify: Notify::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
pub enum Language {
    #[default]
    #[serde(rename = "zh-CN")]
    ZhCn,
    #[serde(rename = "en")]
    En,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Shop {
    pub name: String,
    pub timezone: String,
    pub language: Language,
}

impl Default for Shop {
    fn default() -> Self {
        Shop {
            name: "Demo Shop".into(),
            timezone: "Asia/Shanghai".into(),
            language: Language::ZhCn,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Wxpay {
    /// `simulator`, or the gateway's base URL.
    pub gateway: String,
    pub appid: Option<String>,
    pub mch_id: Option<String>,
    #[serde(serialize_with = "redacted")]
    pub api_key: Option<SecretString>,
    pub sign_type: SignType,
    pub notify_url: Option<String>,
    /// Timeout of one gateway call.
    pub timeout_secs: u64,
    /// v2 refunds' mutual TLS: the merchant's API certificate and key (PEM,
    /// `apiclient_cert.pem` and `apiclient_key.pem`).
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    /// A CA (PEM) the app trusts for the gateway besides the usual roots: a
    /// test gateway's (`scanpay sim --tls-cert`).
    pub gateway_ca_file: Option<PathBuf>,
    /// `v2` (the default) or `v3`.
    pub api: Api,
    /// v3: the 32-character APIv3 key (decrypts notifications and certificates).
    #[serde(serialize_with = "redacted")]
    pub apiv3_key: Option<SecretString>,
    /// v3: the merchant's API private key, `apiclient_key.pem` (PKCS#8).
    pub private_key_file: Option<PathBuf>,
    /// v3: the serial of the merchant's API certificate (hex).
    pub cert_serial: Option<String>,
    /// v3: the WeChat Pay public key `pub_key.pem` (SPKI) and its id `PUB_KEY_ID_…`.
    pub public_key_file: Option<PathBuf>,
    pub public_key_id: Option<String>,
}

fn redacted<S: serde::Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_str("[REDACTED]"),
        None => s.serialize_none(),
    }
}

impl Default for Wxpay {
    fn default() -> Self {
        Wxpay {
            gateway: "simulator".into(),
            appid: None,
            mch_id: None,
            api_key: None,
            sign_type: SignType::Md5,
            notify_url: None,
            timeout_secs: 10,
            client_cert_file: None,
            client_key_file: None,
            gateway_ca_file: None,
            api: Api::V2,
            apiv3_key: None,
            private_key_file: None,
            cert_serial: None,
            public_key_file: None,
            public_key_id: None,
        }
    }
}

impl Wxpay {
    pub fn is_simulator(&self) -> bool {
        self.gateway == "simulator"
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.max(1))
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Checkout {
    pub qr_ttl_secs: u64,
    pub order_ttl_secs: u64,
    pub max_amount_fen: i64,
    /// Each open order costs gateway calls until it ends: a cashier (or a
    /// stolen session) may keep only this many open at once (0: no limit).
    pub max_open_orders_per_cashier: u32,
    /// How many orders one cashier may create in a minute (0: no limit).
    pub max_orders_per_minute: u32,
}

impl Default for Checkout {
    fn default() -> Self {
        Checkout {
            qr_ttl_secs: 300,
            order_ttl_secs: 1800,
            max_amount_fen: 10_000_000,
            max_open_orders_per_cashier: 30,
            max_orders_per_minute: 20,
        }
    }
}

impl Checkout {
    pub fn max_amount(&self) -> Fen {
        Fen::new(self.max_amount_fen)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Poller {
    /// Query interval during a QR's first `fast_period_secs`.
    pub fast_interval_ms: u64,
    pub fast_period_secs: u64,
    /// Query interval afterwards.
    pub slow_interval_ms: u64,
    /// How often the poller looks for due work.
    pub tick_ms: u64,
    pub max_in_flight: usize,
    pub max_per_sec: u32,
    /// Longest wait after repeated gateway errors.
    pub max_backoff_secs: u64,
}

impl Default for Poller {
    fn default() -> Self {
        Poller {
            fast_interval_ms: 2000,
            fast_period_secs: 60,
            slow_interval_ms: 5000,
            tick_ms: 250,
            max_in_flight: 8,
            max_per_sec: 50,
            max_backoff_secs: 60,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sim {
    pub time_scale: f64,
    pub faults: String,
    pub min_close_age_secs: u64,
    /// Simulator mode on a non-loopback address: anyone who reaches it can
    /// mark orders paid, so it must be asked for.
    pub allow_network: bool,
    /// `scanpay sim --tls-cert/--tls-key`: serve the simulator over HTTPS.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// `--client-ca`: refunds need a client certificate signed by this CA.
    pub client_ca_file: Option<PathBuf>,
}

impl Default for Sim {
    fn default() -> Self {
        Sim {
            time_scale: 1.0,
            faults: String::new(),
            min_close_age_secs: 0,
            allow_network: false,
            tls_cert_file: None,
            tls_key_file: None,
            client_ca_file: None,
        }
    }
}

/// The longest a verified notification can be asked to be kept (100 years).
const MAX_RETENTION_DAYS: u64 = 36_500;

/// How much of the notification log is kept: verified notifications are
/// evidence of payments and are kept long; refused ones (junk, forgeries) only
/// in a small bounded form, so a flood cannot fill the disk.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// Days a verified notification is kept.
    pub notification_days: u64,
    /// Refused notifications kept at most (the newest).
    pub refused_notifications: u64,
    /// Refused notifications stored per source address and minute; beyond it
    /// they are only counted (`scanpay_notifications_refused_unstored_total`).
    pub refused_per_source_per_minute: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            notification_days: 400,
            refused_notifications: 1000,
            refused_per_source_per_minute: 10,
        }
    }
}

/// How requests reach us (SPEC §11).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Http {
    /// Reverse proxies (addresses or CIDRs) whose `Forwarded` / `X-Forwarded-*`
    /// headers are believed; none by default. Env: comma-separated.
    pub trusted_proxies: Vec<String>,
    /// How long a whole request body may take after its head (then 408, closed).
    pub body_timeout_secs: u64,
    /// Event streams (`/o/{token}/events`) open at once, over all orders
    /// (and at most 20 per order); beyond: 503 with `Retry-After`.
    pub max_event_streams: u64,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            trusted_proxies: Vec::new(),
            body_timeout_secs: 10,
            max_event_streams: 1000,
        }
    }
}

impl Http {
    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_secs)
    }

    /// The parsed list (checked by `validate`).
    pub fn trusted_proxies(&self) -> Result<TrustedProxies, ConfigError> {
        TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|e| ConfigError::Invalid(format!("http.trusted_proxies: {e}")))
    }
}

/// Where `/metrics` is served (SPEC §11): never by "looks like loopback".
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Metrics {
    /// A separate address serving only `/metrics` (off by default).
    pub listen: Option<String>,
    /// When set, `/metrics` on the main address answers `Authorization: Bearer <token>`.
    #[serde(serialize_with = "redacted")]
    pub token: Option<SecretString>,
}

/// A bearer token shorter than this could be guessed.
const MIN_METRICS_TOKEN_CHARS: usize = 16;

/// Daily online backups (`scanpay backup` once per shop day), off unless `dir` is set.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Backup {
    /// Where `scanpay-YYYYMMDD.sqlite3` files go; unset: no daily backups.
    pub dir: Option<PathBuf>,
    /// How many daily files to keep (the oldest beyond it are deleted).
    pub keep: u32,
}

/// The daily bill (SPEC §9).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bill {
    /// When (Beijing time, `HH:MM`) the previous day's bill is fetched and
    /// reconciled; the gateway makes bills ready after 10:00.
    pub fetch_at: String,
}

impl Default for Bill {
    fn default() -> Self {
        Bill {
            fetch_at: "10:30".into(),
        }
    }
}

impl Bill {
    pub fn fetch_time(&self) -> Option<jiff::civil::Time> {
        jiff::civil::Time::strptime("%H:%M", self.fetch_at.trim()).ok()
    }
}

impl Default for Backup {
    fn default() -> Self {
        Backup { dir: None, keep: 7 }
    }
}

/// Webhooks for the owner (SPEC §10): each payment (and later refund and
/// reconciliation difference) POSTed to every URL, at least once.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Notify {
    /// Where events are POSTed (none: webhooks off). Env: comma-separated.
    /// A WeCom robot's URL carries its key: URLs are never logged whole.
    #[serde(serialize_with = "redacted_urls")]
    pub webhook_urls: Vec<String>,
    /// Signs each body: `X-Scanpay-Signature: sha256=<hex HMAC-SHA256>`.
    #[serde(serialize_with = "redacted")]
    pub webhook_secret: Option<SecretString>,
    pub webhook_format: WebhookFormat,
}

/// The body each webhook gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// `{"event","event_id","order_no","amount_fen","shop","at"}`.
    #[default]
    Json,
    /// A WeCom (企业微信) group robot's text message.
    Wecom,
}

/// URLs shown as scheme, host and path: a query may hold a robot's key.
fn redacted_urls<S: serde::Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|u| crate::base::http::redact_url(u)))
}

/// A webhook secret shorter than this could be guessed.
const MIN_WEBHOOK_SECRET_CHARS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Settings {
    /// The shop's time zone (checked by `validate`).
    pub fn shop_tz(&self) -> jiff::tz::TimeZone {
        jiff::tz::TimeZone::get(&self.shop.timezone).unwrap_or(jiff::tz::TimeZone::UTC)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_need_no_file() {
        let s = Settings::load(None, env(&[])).unwrap();
        assert!(s.wxpay.is_simulator());
        assert_eq!(s.checkout.qr_ttl_secs, 300);
        assert_eq!(s.shop.name, "Demo Shop");
        let m = s.wxpay.merchant_or_demo().unwrap();
        assert_eq!(m.mch_id, DEMO_MCH_ID);
    }

    #[test]
    fn env_overrides_with_single_underscore_keys() {
        let s = Settings::load(
            None,
            env(&[
                ("SCANPAY_WXPAY_MCH_ID", "1230000109"),
                ("SCANPAY_CHECKOUT_QR_TTL_SECS", "3"),
                ("SCANPAY_SIM_TIME_SCALE", "100"),
                ("SCANPAY_SIM_FAULTS", "drop_notify=1.0"),
                ("SCANPAY_SHOP_LANGUAGE", "en"),
                ("SCANPAY_WXPAY_SIGN_TYPE", "HMAC-SHA256"),
                ("SCANPAY_LISTEN", "ignored here"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(s.wxpay.mch_id.as_deref(), Some("1230000109"));
        assert_eq!(s.checkout.qr_ttl_secs, 3);
        assert_eq!(s.sim.time_scale, 100.0);
        assert_eq!(s.sim.faults, "drop_notify=1.0");
        assert_eq!(s.shop.language, Language::En);
        assert_eq!(s.wxpay.sign_type, SignType::HmacSha256);
    }

    #[test]
    fn file_then_env_and_typos_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scanpay.toml");
        std::fs::write(
            &path,
            "[shop]\nname = \"茶馆\"\n[checkout]\nqr_ttl_secs = 60\n",
        )
        .unwrap();
        let s =
            Settings::load(Some(&path), env(&[("SCANPAY_CHECKOUT_QR_TTL_SECS", "30")])).unwrap();
        assert_eq!(s.shop.name, "茶馆");
        assert_eq!(s.checkout.qr_ttl_secs, 30);

        std::fs::write(&path, "[shop]\nnmae = \"x\"\n").unwrap();
        let err = Settings::load(Some(&path), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("nmae"), "{err}");
        let err = Settings::load(None, env(&[("SCANPAY_CHECKOUT_QR_TTL", "3")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("qr_ttl"), "{err}");
        assert!(Settings::load(None, env(&[("SCANPAY_SHOP_TIMEZONE", "Mars/Base")])).is_err());
    }

    #[test]
    fn proxies_and_metrics_from_env_and_file() {
        let s = Settings::load(
            None,
            env(&[
                ("SCANPAY_HTTP_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8,,::1"),
                ("SCANPAY_METRICS_LISTEN", "127.0.0.1:9100"),
                ("SCANPAY_METRICS_TOKEN", "0123456789abcdef"),
            ]),
        )
        .unwrap();
        assert_eq!(s.http.trusted_proxies, ["127.0.0.1", "10.0.0.0/8", "::1"]);
        let t = s.http.trusted_proxies().unwrap();
        assert!(t.contains("10.2.3.4".parse().unwrap()));
        assert_eq!(s.metrics.listen.as_deref(), Some("127.0.0.1:9100"));
        assert!(!format!("{s:?}").contains("0123456789abcdef"));

        let d = Settings::load(None, env(&[])).unwrap();
        assert!(
            d.http.trusted_proxies().unwrap().is_empty(),
            "none by default"
        );
        assert!(
            d.metrics.listen.is_none() && d.metrics.token.is_none(),
            "off by default"
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scanpay.toml");
        std::fs::write(&path, "[http]\ntrusted_proxies = [\"127.0.0.1\"]\n[metrics]\ntoken = \"a-long-enough-token\"\n").unwrap();
        let f = Settings::load(Some(&path), env(&[])).unwrap();
        assert_eq!(f.http.trusted_proxies, ["127.0.0.1"]);

        for (k, v, key) in [
            (
                "SCANPAY_HTTP_TRUSTED_PROXIES",
                "127.0.0.1,localhost",
                "http.trusted_proxies",
            ),
            ("SCANPAY_METRICS_TOKEN", "short", "metrics.token"),
            ("SCANPAY_METRICS_LISTEN", " ", "metrics.listen"),
            ("SCANPAY_HTTP_TRUSTED_PROXY", "127.0.0.1", "trusted_proxy"),
        ] {
            let err = Settings::load(None, env(&[(k, v)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{k}: {err}");
        }
    }

    #[test]
    fn the_refund_certificate_comes_as_a_pair_of_readable_files() {
        let w = Wxpay::default();
        assert!(matches!(w.refund_tls(), Ok((None, None))));
        let half = Wxpay {
            client_cert_file: Some("apiclient_cert.pem".into()),
            ..Wxpay::default()
        };
        let e = half.refund_tls().unwrap_err().to_string();
        assert!(e.contains("wxpay.client_key_file"), "{e}");
        let missing = Wxpay {
            client_cert_file: Some("/nonexistent/apiclient_cert.pem".into()),
            client_key_file: Some("/nonexistent/apiclient_key.pem".into()),
            ..Wxpay::default()
        };
        let e = missing.refund_tls().unwrap_err().to_string();
        assert!(
            e.contains("cannot read") && e.contains("apiclient_cert.pem"),
            "{e}"
        );
        let no_ca = Wxpay {
            gateway_ca_file: Some("/nonexistent/ca.pem".into()),
            ..Wxpay::default()
        };
        assert!(
            no_ca
                .refund_tls()
                .unwrap_err()
                .to_string()
                .contains("wxpay.gateway_ca_file")
        );
    }

    #[test]
    fn live_mode_names_each_missing_key() {
        let mut w = Wxpay {
            gateway: "https://api.mch.weixin.qq.com/".into(),
            ..Wxpay::default()
        };
        let err = w.validate_live().unwrap_err().to_string();
        for key in [
            "wxpay.appid",
            "wxpay.mch_id",
            "wxpay.api_key",
            "wxpay.notify_url",
        ] {
            assert!(err.contains(key), "{err}");
        }
        w.appid = Some("wx1".into());
        w.mch_id = Some("1".into());
        w.api_key = Some(SecretString::from("short"));
        w.notify_url = Some("https://shop.example/wxpay/notify".into());
        let err = w.validate_live().unwrap_err().to_string();
        assert!(err.contains("32-character"), "{err}");
        assert!(!err.contains("short"), "the key itself is never echoed");
        w.api_key = Some(SecretString::from(DEMO_API_KEY));
        w.validate_live().unwrap();
        let dbg = format!("{w:?}");
        assert!(!dbg.contains(DEMO_API_KEY));
    }

    #[test]
    fn live_v3_names_each_missing_or_unreadable_key() {
        let mut w = Wxpay {
            gateway: "https://api.mch.weixin.qq.com/".into(),
            api: Api::V3,
            ..Wxpay::default()
        };
        let err = w.validate_live().unwrap_err().to_string();
        for key in [
            "wxpay.appid",
            "wxpay.mch_id",
            "wxpay.apiv3_key",
            "wxpay.private_key_file",
            "wxpay.cert_serial",
            "wxpay.notify_url",
        ] {
            assert!(err.contains(key), "{key}: {err}");
        }
        assert!(!err.contains("wxpay.api_key"), "v3 needs no v2 key: {err}");
        let dir = tempfile::tempdir().unwrap();
        let not_pkcs8 = dir.path().join("apiclient_key.pem");
        std::fs::write(
            &not_pkcs8,
            "-----BEGIN RSA PRIVATE KEY-----\nAA==\n-----END RSA PRIVATE KEY-----\n",
        )
        .unwrap();
        let pubkey = dir.path().join("pub_key.pem");
        std::fs::write(&pubkey, crate::wxpay::v3::OFFICIAL_TEST_KEY_PEM).unwrap();
        w.appid = Some(DEMO_V3_APPID.into());
        w.mch_id = Some(DEMO_V3_MCH_ID.into());
        w.apiv3_key = Some(SecretString::from("too-short"));
        w.private_key_file = Some(not_pkcs8);
        w.cert_serial = Some("not hex!".into());
        w.public_key_file = Some(pubkey);
        w.public_key_id = Some("PUB_KEY_ID_X".into());
        w.notify_url = Some("https://shop.example/wxpay/notify".into());
        let err = w.validate_live().unwrap_err().to_string();
        for needle in [
            "32-character APIv3 key",
            "PKCS#8",
            "cert_serial must be",
            "not a WeChat Pay public key",
            "/wxpay/v3/notify",
        ] {
            assert!(err.contains(needle), "{needle}: {err}");
        }
        assert!(!err.contains("too-short"), "the key itself is never echoed");
        w.private_key_file = Some(dir.path().join("absent.pem"));
        let err = w.validate_live().unwrap_err().to_string();
        assert!(err.contains("absent.pem: cannot read it"), "{err}");

        let good_key = dir.path().join("good.pem");
        std::fs::write(&good_key, crate::wxpay::v3::OFFICIAL_TEST_KEY_PEM).unwrap();
        w.private_key_file = Some(good_key);
        w.apiv3_key = Some(SecretString::from(DEMO_V3_APIV3_KEY));
        w.cert_serial = Some(DEMO_V3_CERT_SERIAL.into());
        w.public_key_file = None;
        w.public_key_id = None;
        w.notify_url = Some("https://shop.example/wxpay/v3/notify".into());
        w.validate_live().unwrap();
        let m = w.v3_merchant_or_demo().unwrap();
        assert_eq!(m.mchid, DEMO_V3_MCH_ID);
        assert!(m.public_key.is_none(), "platform certificates, then");
        assert!(!format!("{w:?} {m:?}").contains(DEMO_V3_APIV3_KEY));
        assert!(
            !format!("{m:?}").contains("MII"),
            "the private key is never printed"
        );
    }

    #[test]
    fn simulator_mode_on_v3_is_the_demo_v3_merchant() {
        let s = Settings::load(None, env(&[("SCANPAY_WXPAY_API", "v3")])).unwrap();
        assert_eq!(s.wxpay.api, Api::V3);
        assert_eq!(s.wxpay.notify_path(), "/wxpay/v3/notify");
        let sim = s.sim_config().unwrap();
        assert_eq!(
            (
                sim.v3.appid.as_str(),
                sim.v3.mchid.as_str(),
                sim.v3.cert_serial.as_str()
            ),
            (DEMO_V3_APPID, DEMO_V3_MCH_ID, DEMO_V3_CERT_SERIAL)
        );
        assert_eq!(sim.v3.signer().unwrap().mchid(), DEMO_V3_MCH_ID);
        assert_eq!(sim.merchant.mch_id, DEMO_MCH_ID, "v2 stays the v2 demo");
        // On v2, wxpay.mch_id is the v2 merchant's and v3 stays the demo's.
        let s = Settings::load(None, env(&[("SCANPAY_WXPAY_MCH_ID", "1230000109")])).unwrap();
        let sim = s.sim_config().unwrap();
        assert_eq!(sim.v3.mchid, DEMO_V3_MCH_ID);
        assert_eq!(sim.merchant.mch_id, "1230000109");
        assert!(Settings::load(None, env(&[("SCANPAY_WXPAY_API", "v4")])).is_err());
    }

    #[test]
    fn the_backup_section_is_off_by_default_and_set_by_env() {
        let s = Settings::load(None, env(&[])).unwrap();
        assert!(s.backup.dir.is_none());
        let s = Settings::load(
            None,
            env(&[
                ("SCANPAY_BACKUP_DIR", "/var/backups/scanpay"),
                ("SCANPAY_BACKUP_KEEP", "14"),
            ]),
        )
        .unwrap();
        assert_eq!(s.backup.dir, Some(PathBuf::from("/var/backups/scanpay")));
        assert_eq!(s.backup.keep, 14);
        let err = Settings::load(
            None,
            env(&[("SCANPAY_BACKUP_DIR", "b"), ("SCANPAY_BACKUP_KEEP", "0")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("backup.keep"), "{err}");
    }

    #[test]
    fn extreme_settings_are_refused_with_the_key_named() {
        for (var, value, key) in [
            ("SCANPAY_SIM_TIME_SCALE", "1e-300", "sim.time_scale"),
            ("SCANPAY_SIM_TIME_SCALE", "0", "sim.time_scale"),
            ("SCANPAY_SIM_TIME_SCALE", "-1", "sim.time_scale"),
            ("SCANPAY_SIM_TIME_SCALE", "1e300", "sim.time_scale"),
            (
                "SCANPAY_POLLER_MAX_IN_FLIGHT",
                "9223372036854775807",
                "poller.max_in_flight",
            ),
            ("SCANPAY_POLLER_MAX_IN_FLIGHT", "0", "poller.max_in_flight"),
            ("SCANPAY_POLLER_MAX_PER_SEC", "0", "poller.max_per_sec"),
            (
                "SCANPAY_POLLER_TICK_MS",
                "18446744073709551615",
                "poller.tick_ms",
            ),
            ("SCANPAY_CHECKOUT_QR_TTL_SECS", "0", "checkout.qr_ttl_secs"),
            (
                "SCANPAY_CHECKOUT_ORDER_TTL_SECS",
                "9223372036854775807",
                "checkout.order_ttl_secs",
            ),
            (
                "SCANPAY_POLLER_MAX_BACKOFF_SECS",
                "9223372036854775807",
                "poller.max_backoff_secs",
            ),
            (
                "SCANPAY_WXPAY_TIMEOUT_SECS",
                "9223372036854775807",
                "wxpay.timeout_secs",
            ),
        ] {
            let err = Settings::load(None, env(&[(var, value)]))
                .err()
                .unwrap_or_else(|| panic!("{var}={value} accepted"))
                .to_string();
            assert!(err.contains(key), "{var}={value}: {err}");
        }
        // The largest accepted values load.
        let s = Settings::load(
            None,
            env(&[
                ("SCANPAY_POLLER_MAX_IN_FLIGHT", "1024"),
                ("SCANPAY_SIM_TIME_SCALE", "0.001"),
            ]),
        )
        .unwrap();
        assert_eq!(s.poller.max_in_flight, MAX_IN_FLIGHT);
    }
}
