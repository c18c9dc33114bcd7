//! Settings: defaults in code → optional TOML file → `SCANPAY_<SECTION>_<KEY>` env vars,
//! then the command line's `--data-dir` / `--listen` (see `cli.rs`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::checkout::{CashierLimits, CheckoutConfig, RetentionPolicy};
use crate::sim::SimConfig;
use crate::values::money::Fen;
use crate::web::client::TrustedProxies;
use crate::wxpay::v2::{ApiKey, ClientIdentity, Merchant, SignType};

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

    /// The merchant from the `wxpay.*` keys, the demo merchant filling what is unset.
    /// (Live mode refuses to start with anything unset: see `validate_live`.)
    pub fn merchant_or_demo(&self) -> Result<Merchant, ConfigError> {
        if self.api == Api::V3 {
            // appid and mch_id are the v3 merchant's: the v2 side stays the demo's.
            return Ok(Merchant {
                appid: DEMO_APPID.into(),
                mch_id: DEMO_MCH_ID.into(),
                key: ApiKey::new(DEMO_API_KEY)
                    .map_err(|_| ConfigError::Invalid("wxpay.api_key is empty".into()))?,
                sign_type: self.sign_type,
            });
        }
        let key = self
            .api_key
            .as_ref()
            .map(|k| k.expose_secret().to_string())
            .unwrap_or_else(|| DEMO_API_KEY.to_string());
        Ok(Merchant {
            appid: self.appid.clone().unwrap_or_else(|| DEMO_APPID.into()),
            mch_id: self.mch_id.clone().unwrap_or_else(|| DEMO_MCH_ID.into()),
            key: ApiKey::new(key)
                .map_err(|_| ConfigError::Invalid("wxpay.api_key is empty".into()))?,
            sign_type: self.sign_type,
        })
    }

    /// The refund call's TLS: the gateway CA to trust (PEM bytes) and the
    /// merchant's certificate, read and checked (they parse and belong together).
    pub fn refund_tls(&self) -> Result<(Option<Vec<u8>>, Option<ClientIdentity>), ConfigError> {
        let ca = self
            .gateway_ca_file
            .as_ref()
            .map(|p| {
                std::fs::read(p).map_err(|e| {
                    ConfigError::Invalid(format!("wxpay.gateway_ca_file {}: {e}", p.display()))
                })
            })
            .transpose()?;
        let identity = match (&self.client_cert_file, &self.client_key_file) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                Some(ClientIdentity::from_files(cert, key).map_err(|e| {
                    ConfigError::Invalid(format!(
                        "wxpay.client_cert_file / wxpay.client_key_file: {e}"
                    ))
                })?)
            }
            (Some(_), None) => {
                return Err(ConfigError::Invalid(
                    "wxpay.client_cert_file is set but wxpay.client_key_file is not: refunds need both".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::Invalid(
                    "wxpay.client_key_file is set but wxpay.client_cert_file is not: refunds need both".into(),
                ));
            }
        };
        Ok((ca, identity))
    }

    /// The path notify_url ends in for the protocol.
    pub fn notify_path(&self) -> &'static str {
        match self.api {
            Api::V2 => "/wxpay/notify",
            Api::V3 => "/wxpay/v3/notify",
        }
    }

    /// The v3 merchant from the `wxpay.*` keys, the demo v3 merchant filling
    /// what is unset (live mode refuses to start with anything unset: see
    /// `validate_live`). Reads the key files; names the key that is wrong.
    pub fn v3_merchant_or_demo(&self) -> Result<crate::wxpay::v3::Merchant, ConfigError> {
        // With `api = "v2"`, appid and mch_id are the v2 merchant's: v3 stays the demo's.
        let source = if self.api == Api::V3 {
            self.clone()
        } else {
            Wxpay::default()
        };
        let (m, problems) = source.read_v3(true);
        match m {
            Some(m) if problems.is_empty() => Ok(m),
            _ => Err(ConfigError::Invalid(problems.join("; "))),
        }
    }

    /// The v3 merchant and every problem with its keys; with `demo`, unset keys
    /// take the demo merchant's values (simulator mode), else they are missing.
    fn read_v3(&self, demo: bool) -> (Option<crate::wxpay::v3::Merchant>, Vec<String>) {
        use crate::wxpay::v3::{Merchant as V3, OFFICIAL_TEST_KEY_PEM, PublicKey, aead::ApiV3Key};
        let mut problems = Vec::new();
        let text =
            |key: &Option<String>, name: &str, env: &str, demo_value: &str, p: &mut Vec<String>| {
                match key.as_deref().filter(|v| !v.is_empty()) {
                    Some(v) => Some(v.to_string()),
                    None if demo => Some(demo_value.to_string()),
                    None => {
                        p.push(format!("missing wxpay.{name} ({env})"));
                        None
                    }
                }
            };
        let appid = text(
            &self.appid,
            "appid",
            "SCANPAY_WXPAY_APPID",
            DEMO_V3_APPID,
            &mut problems,
        );
        let mchid = text(
            &self.mch_id,
            "mch_id",
            "SCANPAY_WXPAY_MCH_ID",
            DEMO_V3_MCH_ID,
            &mut problems,
        );
        let cert_serial = text(
            &self.cert_serial,
            "cert_serial",
            "SCANPAY_WXPAY_CERT_SERIAL",
            DEMO_V3_CERT_SERIAL,
            &mut problems,
        );
        if let Some(s) = &cert_serial
            && !s.chars().all(|c| c.is_ascii_hexdigit())
        {
            problems.push(format!(
                "wxpay.cert_serial must be the certificate's serial in hex, as the merchant platform shows it, got {s:?}"
            ));
        }
        let apiv3_key = match &self.apiv3_key {
            Some(k) => match ApiV3Key::new(k.expose_secret()) {
                Ok(k) => Some(k),
                Err(_) => {
                    problems.push(
                        "wxpay.apiv3_key must be the 32-character APIv3 key set on the merchant platform"
                            .into(),
                    );
                    None
                }
            },
            None if demo => ApiV3Key::new(DEMO_V3_APIV3_KEY).ok(),
            None => {
                problems.push("missing wxpay.apiv3_key (SCANPAY_WXPAY_APIV3_KEY)".into());
                None
            }
        };
        let private_key_pem = match &self.private_key_file {
            Some(path) => match std::fs::read_to_string(path) {
                Ok(pem) => {
                    match crate::wxpay::v3::sign::MerchantSigner::from_pem("", "", pem.as_bytes()) {
                        Ok(_) => Some(pem),
                        Err(e) => {
                            problems.push(format!(
                                "wxpay.private_key_file {}: not the merchant's API private key                                  (apiclient_key.pem, PKCS#8): {e}",
                                path.display()
                            ));
                            None
                        }
                    }
                }
                Err(e) => {
                    problems.push(format!(
                        "wxpay.private_key_file {}: cannot read it: {e}",
                        path.display()
                    ));
                    None
                }
            },
            None if demo => Some(OFFICIAL_TEST_KEY_PEM.to_string()),
            None => {
                problems.push(
                    "missing wxpay.private_key_file (SCANPAY_WXPAY_PRIVATE_KEY_FILE): apiclient_key.pem"
                        .into(),
                );
                None
            }
        };
        let public_key = match (&self.public_key_file, self.public_key_id.as_deref()) {
            (None, None) => None,
            (Some(_), None) | (Some(_), Some("")) => {
                problems.push(
                    "wxpay.public_key_file is set without wxpay.public_key_id (PUB_KEY_ID_…)"
                        .into(),
                );
                None
            }
            (None, Some(_)) => {
                problems.push(
                    "wxpay.public_key_id is set without wxpay.public_key_file (pub_key.pem)".into(),
                );
                None
            }
            (Some(path), Some(id)) => match std::fs::read_to_string(path) {
                Ok(pem) => {
                    let mut k = crate::wxpay::v3::verify::WechatPayKeys::default();
                    match k.add_public_key_pem(id, pem.as_bytes()) {
                        Ok(()) => Some(PublicKey {
                            id: id.to_string(),
                            pem,
                        }),
                        Err(e) => {
                            problems.push(format!(
                                "wxpay.public_key_file {}: not a WeChat Pay public key (pub_key.pem, SPKI): {e}",
                                path.display()
                            ));
                            None
                        }
                    }
                }
                Err(e) => {
                    problems.push(format!(
                        "wxpay.public_key_file {}: cannot read it: {e}",
                        path.display()
                    ));
                    None
                }
            },
        };
        let merchant = match (appid, mchid, cert_serial, private_key_pem, apiv3_key) {
            (Some(appid), Some(mchid), Some(cert_serial), Some(pem), Some(apiv3_key)) => Some(V3 {
                appid,
                mchid,
                cert_serial: cert_serial.to_ascii_uppercase(),
                private_key_pem: SecretString::from(pem),
                apiv3_key,
                public_key,
            }),
            _ => None,
        };
        (merchant, problems)
    }

    /// Live mode's checks: every credential present and well-formed. A notify_url
    /// that is not https is allowed (a test gateway) but warned about.
    pub fn validate_live(&self) -> Result<(), ConfigError> {
        let mut missing = Vec::new();
        let mut invalid = Vec::new();
        if self.api == Api::V3 {
            return self.validate_live_v3();
        }
        if self.appid.as_deref().is_none_or(str::is_empty) {
            missing.push("wxpay.appid (SCANPAY_WXPAY_APPID)");
        }
        if self.mch_id.as_deref().is_none_or(str::is_empty) {
            missing.push("wxpay.mch_id (SCANPAY_WXPAY_MCH_ID)");
        }
        match &self.api_key {
            None => missing.push("wxpay.api_key (SCANPAY_WXPAY_API_KEY)"),
            Some(k) if k.expose_secret().len() != 32 => invalid.push(
                "wxpay.api_key must be the 32-character API key from the merchant platform"
                    .to_string(),
            ),
            Some(_) => {}
        }
        let (no_notify_url, wrong) = self.live_endpoints(256);
        missing.extend(no_notify_url);
        invalid.extend(wrong);
        let problems = missing.into_iter().map(|m| format!("missing {m}"));
        self.live_verdict(
            "live mode needs its merchant settings:",
            problems.chain(invalid).collect(),
        )
    }

    /// Live mode's verdict on `problems`: all of them under `heading`, or none
    /// (then only a warning if notify_url is not https, as a test gateway may be).
    fn live_verdict(&self, heading: &str, problems: Vec<String>) -> Result<(), ConfigError> {
        if problems.is_empty() {
            if !self
                .notify_url
                .as_deref()
                .unwrap_or("")
                .starts_with("https://")
            {
                tracing::warn!(
                    "wxpay.notify_url is not https: the real gateway needs an https notify_url"
                );
            }
            return Ok(());
        }
        let mut msg = String::from(heading);
        for p in problems {
            msg.push_str(&format!("\n  - {p}"));
        }
        Err(ConfigError::Invalid(msg))
    }

    /// What a live gateway needs of `notify_url` (ending in the protocol's
    /// path, no query, at most `max_len` bytes) and `gateway`: the missing
    /// notify_url (its key and env var), and every other problem.
    fn live_endpoints(&self, max_len: usize) -> (Option<&'static str>, Vec<String>) {
        let mut wrong = Vec::new();
        let path = self.notify_path();
        let missing = match self.notify_url.as_deref() {
            None | Some("") => Some("wxpay.notify_url (SCANPAY_WXPAY_NOTIFY_URL)"),
            Some(u) => {
                if !(u.starts_with("https://") || u.starts_with("http://"))
                    || !u.ends_with(path)
                    || u.contains('?')
                    || u.len() > max_len
                {
                    wrong.push(format!(
                        "wxpay.notify_url must be an absolute URL ending in {path} with no query, got {u:?}"
                    ));
                }
                None
            }
        };
        if !(self.gateway.starts_with("https://") || self.gateway.starts_with("http://")) {
            wrong.push(format!(
                "wxpay.gateway must be \"simulator\" or the gateway's base URL, got {:?}",
                self.gateway
            ));
        }
        (missing, wrong)
    }

    /// Live v3: every key present, every key file readable and of the right kind.
    fn validate_live_v3(&self) -> Result<(), ConfigError> {
        let (_, mut problems) = self.read_v3(false);
        let (no_notify_url, wrong) = self.live_endpoints(255);
        problems.extend(no_notify_url.map(|m| format!("missing {m}")));
        problems.extend(wrong);
        self.live_verdict(
            "live mode (wxpay.api = \"v3\") needs its merchant settings:",
            problems,
        )
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

impl Sim {
    /// The simulator's TLS files, when it is to serve HTTPS.
    pub fn tls_files(&self) -> Result<Option<crate::sim::tls::TlsFiles<'_>>, ConfigError> {
        match (&self.tls_cert_file, &self.tls_key_file) {
            (None, None) if self.client_ca_file.is_some() => Err(ConfigError::Invalid(
                "--client-ca needs --tls-cert and --tls-key".into(),
            )),
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Ok(Some(crate::sim::tls::TlsFiles {
                cert,
                key,
                client_ca: self.client_ca_file.as_deref(),
            })),
            _ => Err(ConfigError::Invalid(
                "--tls-cert and --tls-key go together".into(),
            )),
        }
    }
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
    /// Defaults, then the TOML file (if any), then `SCANPAY_<SECTION>_<KEY>` from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display())))?
            }
            None => toml::Table::new(),
        };
        let defaults = toml::Table::try_from(Settings::default())
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("SCANPAY_") else {
                continue;
            };
            for section in SECTIONS {
                let prefix = format!("{}_", section.to_ascii_uppercase());
                if let Some(key) = rest.strip_prefix(&prefix) {
                    let key = key.to_ascii_lowercase();
                    let typed = env_value(&defaults, section, &key, value.clone());
                    let entry = table
                        .entry(section.to_string())
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                    match entry {
                        toml::Value::Table(t) => {
                            t.insert(key, typed);
                        }
                        _ => {
                            return Err(ConfigError::Invalid(format!(
                                "[{section}] must be a table"
                            )));
                        }
                    }
                }
            }
        }
        let settings: Settings = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks that hold in every mode. Each bound keeps an extreme value from
    /// reaching code that would panic or overflow on it, and each message names its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (c, p, w, sim) = (&self.checkout, &self.poller, &self.wxpay, &self.sim);
        let in_flight = u64::try_from(p.max_in_flight).unwrap_or(u64::MAX);
        let ranges = [
            ("checkout.qr_ttl_secs", c.qr_ttl_secs, 1, MAX_SECS),
            ("checkout.order_ttl_secs", c.order_ttl_secs, 1, MAX_SECS),
            ("poller.fast_interval_ms", p.fast_interval_ms, 0, MAX_MS),
            ("poller.fast_period_secs", p.fast_period_secs, 0, MAX_SECS),
            ("poller.slow_interval_ms", p.slow_interval_ms, 0, MAX_MS),
            ("poller.tick_ms", p.tick_ms, 0, MAX_MS),
            ("poller.max_in_flight", in_flight, 1, MAX_IN_FLIGHT as u64),
            (
                "poller.max_per_sec",
                u64::from(p.max_per_sec),
                1,
                MAX_PER_SEC,
            ),
            ("poller.max_backoff_secs", p.max_backoff_secs, 0, MAX_SECS),
            ("wxpay.timeout_secs", w.timeout_secs, 0, MAX_TIMEOUT_SECS),
            (
                "http.body_timeout_secs",
                self.http.body_timeout_secs,
                1,
                MAX_TIMEOUT_SECS,
            ),
            (
                "http.max_event_streams",
                self.http.max_event_streams,
                1,
                MAX_EVENT_STREAMS,
            ),
            (
                "sim.min_close_age_secs",
                sim.min_close_age_secs,
                0,
                MAX_SECS,
            ),
            (
                "backup.keep",
                u64::from(self.backup.keep),
                1,
                MAX_BACKUP_KEEP,
            ),
        ];
        let mut problems: Vec<String> = ranges
            .into_iter()
            .filter(|(_, value, min, max)| value < min || value > max)
            .map(|(key, value, min, max)| {
                format!("{key} must be between {min} and {max}, got {value}")
            })
            .collect();
        if self
            .backup
            .dir
            .as_ref()
            .is_some_and(|d| d.as_os_str().is_empty())
        {
            problems.push("backup.dir must be a directory (or unset for no daily backups)".into());
        }
        if self.bill.fetch_time().is_none() {
            problems.push(format!(
                "bill.fetch_at must be a Beijing time of day as HH:MM, got {:?}",
                self.bill.fetch_at
            ));
        }
        if c.order_ttl_secs < c.qr_ttl_secs {
            problems.push("checkout.order_ttl_secs must be at least checkout.qr_ttl_secs".into());
        }
        if c.max_amount_fen <= 0 {
            problems.push("checkout.max_amount_fen must be positive".into());
        }
        if !(1..=MAX_RETENTION_DAYS).contains(&self.retention.notification_days) {
            problems.push(format!(
                "retention.notification_days must be between 1 and {MAX_RETENTION_DAYS}, got {}",
                self.retention.notification_days
            ));
        }
        if !(sim.time_scale.is_finite()
            && (MIN_TIME_SCALE..=MAX_TIME_SCALE).contains(&sim.time_scale))
        {
            problems.push(format!(
                "sim.time_scale must be a positive number between {MIN_TIME_SCALE} and {MAX_TIME_SCALE}, got {}",
                sim.time_scale
            ));
        }
        if let Err(ConfigError::Invalid(e)) = self.http.trusted_proxies() {
            problems.push(e);
        }
        if let Some(t) = &self.metrics.token
            && t.expose_secret().chars().count() < MIN_METRICS_TOKEN_CHARS
        {
            problems.push(format!(
                "metrics.token must be at least {MIN_METRICS_TOKEN_CHARS} characters"
            ));
        }
        if self
            .metrics
            .listen
            .as_deref()
            .is_some_and(|l| l.trim().is_empty())
        {
            problems.push("metrics.listen must be an address such as 127.0.0.1:9100".into());
        }
        problems.extend(self.notify.problems());
        if jiff::tz::TimeZone::get(&self.shop.timezone).is_err() {
            problems.push(format!(
                "shop.timezone {:?} is not a known time zone (e.g. Asia/Shanghai)",
                self.shop.timezone
            ));
        }
        match problems.len() {
            0 => Ok(()),
            1 => Err(ConfigError::Invalid(problems.remove(0))),
            _ => Err(ConfigError::Invalid(format!(
                "\n  - {}",
                problems.join("\n  - ")
            ))),
        }
    }

    /// The shop's time zone (checked by `validate`).
    pub fn shop_tz(&self) -> jiff::tz::TimeZone {
        jiff::tz::TimeZone::get(&self.shop.timezone).unwrap_or(jiff::tz::TimeZone::UTC)
    }

    /// What the checkout needs from `[shop]`, `[checkout]` and `[poller]`; the
    /// notify_url is worked out at start-up (it may depend on the bound port).
    pub fn checkout_config(&self) -> CheckoutConfig {
        let (c, p) = (&self.checkout, &self.poller);
        CheckoutConfig {
            qr_ttl: Duration::from_secs(c.qr_ttl_secs),
            order_ttl: Duration::from_secs(c.order_ttl_secs),
            shop_name: self.shop.name.clone(),
            shop_tz: self.shop_tz(),
            poll_fast: Duration::from_millis(p.fast_interval_ms),
            poll_fast_period: Duration::from_secs(p.fast_period_secs),
            poll_slow: Duration::from_millis(p.slow_interval_ms),
            max_backoff: Duration::from_secs(p.max_backoff_secs),
            bill_fetch_at: self
                .bill
                .fetch_time()
                .unwrap_or(jiff::civil::Time::constant(10, 30, 0, 0)),
            cashier_limits: CashierLimits {
                open_orders: c.max_open_orders_per_cashier,
                per_minute: c.max_orders_per_minute,
            },
            retention: RetentionPolicy {
                verified_for: Duration::from_secs(
                    self.retention.notification_days.saturating_mul(24 * 3600),
                ),
                refused_kept: self.retention.refused_notifications,
                refused_per_source_per_minute: self.retention.refused_per_source_per_minute,
            },
        }
    }

    /// The simulator's settings: the demo merchant unless `wxpay.*` keys say
    /// otherwise, and the `sim.*` keys.
    pub fn sim_config(&self) -> Result<SimConfig, ConfigError> {
        Ok(SimConfig {
            merchant: self.wxpay.merchant_or_demo()?,
            v3: self.wxpay.v3_merchant_or_demo()?,
            time_scale: self.sim.time_scale,
            min_close_age: Duration::from_secs(self.sim.min_close_age_secs),
            faults: self
                .sim
                .faults
                .parse()
                .map_err(|e| ConfigError::Invalid(format!("sim.faults: {e}")))?,
        })
    }
}

impl Notify {
    /// What is wrong with the `[notify]` keys, each message naming its key.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for u in &self.webhook_urls {
            let ok = (u.starts_with("https://") || u.starts_with("http://"))
                && reqwest::Url::parse(u).is_ok_and(|p| p.host_str().is_some());
            if !ok {
                problems.push(format!(
                    "notify.webhook_urls: {} is not an http(s) URL",
                    crate::base::http::redact_url(u)
                ));
            }
        }
        match &self.webhook_secret {
            Some(k) if k.expose_secret().chars().count() < MIN_WEBHOOK_SECRET_CHARS => {
                problems.push(format!(
                    "notify.webhook_secret must be at least {MIN_WEBHOOK_SECRET_CHARS} characters"
                ));
            }
            None if !self.webhook_urls.is_empty() && self.webhook_format == WebhookFormat::Json => {
                problems.push(
                    "notify.webhook_secret is needed to sign json webhooks (notify.webhook_urls is set)"
                        .into(),
                );
            }
            _ => {}
        }
        problems
    }
}

/// Env values are text; give them the type of the default at the same key
/// (so `SCANPAY_CHECKOUT_QR_TTL_SECS=3` is a number and `SCANPAY_WXPAY_MCH_ID=1000` stays text).
fn env_value(defaults: &toml::Table, section: &str, key: &str, raw: String) -> toml::Value {
    let default = defaults
        .get(section)
        .and_then(|s| s.as_table())
        .and_then(|t| t.get(key));
    let parsed = match default {
        Some(toml::Value::Integer(_)) => raw.trim().parse().ok().map(toml::Value::Integer),
        Some(toml::Value::Float(_)) => raw.trim().parse().ok().map(toml::Value::Float),
        Some(toml::Value::Boolean(_)) => raw.trim().parse().ok().map(toml::Value::Boolean),
        // Lists are comma-separated: SCANPAY_HTTP_TRUSTED_PROXIES=127.0.0.1,10.0.0.0/8
        Some(toml::Value::Array(_)) => Some(toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        )),
        _ => None,
    };
    parsed.unwrap_or(toml::Value::String(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
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
    fn sections_build_what_checkout_and_the_simulator_need() {
        let s = Settings::load(
            None,
            env(&[
                ("SCANPAY_CHECKOUT_QR_TTL_SECS", "7"),
                ("SCANPAY_POLLER_FAST_INTERVAL_MS", "300"),
                ("SCANPAY_SIM_MIN_CLOSE_AGE_SECS", "2"),
            ]),
        )
        .unwrap();
        let c = s.checkout_config();
        assert_eq!(c.qr_ttl, Duration::from_secs(7));
        assert_eq!(c.poll_fast, Duration::from_millis(300));
        let sim = s.sim_config().unwrap();
        assert_eq!(sim.min_close_age, Duration::from_secs(2));
        assert_eq!(sim.merchant.mch_id, DEMO_MCH_ID);
        let err = Settings::load(None, env(&[("SCANPAY_SIM_FAULTS", "drop_notify=7")]))
            .unwrap()
            .sim_config()
            .unwrap_err();
        assert!(err.to_string().contains("sim.faults"), "{err}");
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
