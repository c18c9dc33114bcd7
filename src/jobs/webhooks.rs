//! Webhooks for the owner (SPEC §10): a background task delivering the
//! outbox (`store::outbox`) at least once to every `notify.webhook_urls`,
//! signed, with exponential backoff for 24 hours, then given up (visible on
//! `/admin/webhooks`).
//!
//! Events are written in the transaction of what they report, so delivery
//! can never delay a payment: this task only reads them later, on its own
//! tokio task, each request bounded by a timeout and at most
//! `MAX_IN_FLIGHT` at once. State lives in SQLite: a restart resumes.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

use crate::base::http::redact_url;
use crate::config::{Language, Settings, WebhookFormat};
use crate::store::outbox::{self, Attempt, Delivery, Event, EventKind};
use crate::store::{Store, StoreError};
use crate::values::clock::Clock;
use crate::values::shop_time::shop_time;

/// One request's deadline: a slow receiver costs this much, never more.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests in flight at once.
pub const MAX_IN_FLIGHT: usize = 8;
/// Deliveries taken per turn.
const BATCH: usize = 64;
/// How often the outbox is looked at when there was nothing to do.
const IDLE: Duration = Duration::from_millis(500);
/// An event is retried this long after it happened, then given up.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Most of a receiver's answer kept in the delivery's error.
const MAX_ERROR_CHARS: usize = 200;
/// Most of a receiver's answer ever read: enough for a WeCom robot's
/// `{"errcode":…}` or an error line; the rest is dropped with the connection,
/// so no receiver (or hop) can make us hold its answer in memory.
pub const MAX_ANSWER_BYTES: usize = 4096;
/// How far off a receiver should let `X-Scanpay-Timestamp` be before it
/// refuses the request as a replay (README, "Webhooks").
pub const SIGNATURE_WINDOW: Duration = Duration::from_secs(300);

/// The settings the task needs, from `[notify]` and `[shop]`.
#[derive(Clone)]
pub struct WebhookConfig {
    pub urls: Vec<String>,
    pub secret: Option<SecretString>,
    pub format: WebhookFormat,
    pub shop: String,
    pub language: Language,
    pub tz: jiff::tz::TimeZone,
}

impl WebhookConfig {
    pub fn from_settings(s: &Settings) -> Self {
        WebhookConfig {
            urls: s.notify.webhook_urls.clone(),
            secret: s.notify.webhook_secret.clone(),
            format: s.notify.webhook_format,
            shop: s.shop.name.clone(),
            language: s.shop.language,
            tz: s.shop_tz(),
        }
    }

    pub fn enabled(&self) -> bool {
        !self.urls.is_empty()
    }
}

/// `sha256=<hex HMAC-SHA256(body, secret)>`, the `X-Scanpay-Signature` header.
pub fn signature(secret: &SecretString, body: &[u8]) -> String {
    hmac_hex(secret, &[body])
}

/// `sha256=<hex HMAC-SHA256("t=<unix>." + body, secret)>`, the
/// `X-Scanpay-Timestamp-Signature` header: the body signature alone can be
/// replayed forever; this one binds the moment of sending (`X-Scanpay-Timestamp`),
/// so a receiver can refuse anything older than `SIGNATURE_WINDOW`.
pub fn timestamped_signature(secret: &SecretString, unix: i64, body: &[u8]) -> String {
    hmac_hex(secret, &[format!("t={unix}.").as_bytes(), body])
}

fn hmac_hex(secret: &SecretString, parts: &[&[u8]]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose_secret().as_bytes())
        .expect("HMAC takes a key of any length");
    for p in parts {
        mac.update(p);
    }
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// At most `MAX_ANSWER_BYTES` of `resp`'s body, as text; the rest is never read.
async fn capped_text(mut resp: reqwest::Response) -> String {
    let mut got = Vec::new();
    while got.len() < MAX_ANSWER_BYTES {
        match resp.chunk().await {
            Ok(Some(c)) => got.extend_from_slice(&c),
            // An answer cut short is still an answer: its status decides.
            Ok(None) | Err(_) => break,
        }
    }
    got.truncate(MAX_ANSWER_BYTES);
    // Dropping `resp` here closes the connection instead of draining it.
    String::from_utf8_lossy(&got).into_owned()
}

#[derive(serde::Serialize)]
struct JsonBody<'a> {
    event: &'static str,
    event_id: &'a str,
    order_no: Option<&'a str>,
    amount_fen: i64,
    shop: &'a str,
    at: String,
}

/// The body `cfg`'s receivers get for `event`.
pub fn body(cfg: &WebhookConfig, event: &Event) -> Vec<u8> {
    let value = match cfg.format {
        WebhookFormat::Json => serde_json::to_value(JsonBody {
            event: event.kind.as_str(),
            event_id: &event.event_id,
            order_no: event.order_no.as_ref().map(|n| n.as_str()),
            amount_fen: event.amount.get(),
            shop: &cfg.shop,
            at: event.at.to_timestamp().to_string(),
        }),
        WebhookFormat::Wecom => Ok(serde_json::json!({
            "msgtype": "text",
            "text": { "content": wecom_text(cfg, event) },
        })),
    };
    value
        .and_then(|v| serde_json::to_vec(&v))
        .unwrap_or_default()
}

/// The robot's message: one line a shop owner reads on their phone.
fn wecom_text(cfg: &WebhookConfig, e: &Event) -> String {
    let at = shop_time(&cfg.tz, e.at);
    let no = e.order_no.as_ref().map(|n| n.as_str()).unwrap_or("-");
    match (cfg.language, e.kind) {
        (Language::ZhCn, EventKind::Payment) => {
            format!("【{}】微信收款 {}，订单 {no}，{at}", cfg.shop, e.amount)
        }
        (Language::ZhCn, EventKind::Refund) => {
            format!("【{}】退款 {}，订单 {no}，{at}", cfg.shop, e.amount)
        }
        (Language::ZhCn, EventKind::ReconciliationDifference) => {
            format!("【{}】对账差异 {}，订单 {no}，{at}", cfg.shop, e.amount)
        }
        (Language::En, EventKind::Payment) => {
            format!(
                "[{}] WeChat Pay received {}, order {no}, {at}",
                cfg.shop, e.amount
            )
        }
        (Language::En, EventKind::Refund) => {
            format!("[{}] Refund {}, order {no}, {at}", cfg.shop, e.amount)
        }
        (Language::En, EventKind::ReconciliationDifference) => format!(
            "[{}] Reconciliation difference {}, order {no}, {at}",
            cfg.shop, e.amount
        ),
    }
}

/// The wait after `attempts` failed attempts: 1 s, 2 s, 4 s, … up to an hour.
pub fn backoff(attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 12)).unwrap_or(12);
    Duration::from_secs(1u64 << exp).min(MAX_BACKOFF)
}

/// What one turn did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Turn {
    pub delivered: usize,
    pub failed: usize,
}

#[derive(Clone)]
pub struct Webhooks {
    store: Store,
    cfg: Arc<WebhookConfig>,
    http: reqwest::Client,
    clock: Clock,
}

impl Webhooks {
    pub fn new(store: Store, cfg: WebhookConfig, clock: Clock) -> anyhow::Result<Self> {
        for url in cfg.urls.iter().filter(|u| u.starts_with("http://")) {
            // Anyone on the way reads the event and can answer in the receiver's name.
            tracing::warn!(url = %redact_url(url), "notify.webhook_urls: a webhook URL is not https: events travel in clear text");
        }
        Self::cut_after(store, cfg, clock, REQUEST_TIMEOUT)
    }

    /// As `new`, each request cut after `timeout` instead of `REQUEST_TIMEOUT`
    /// (tests of a hanging receiver).
    pub fn cut_after(
        store: Store,
        cfg: WebhookConfig,
        clock: Clock,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        crate::base::http::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            // A receiver answers; it does not send us elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("scanpay/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Webhooks {
            store,
            cfg: Arc::new(cfg),
            http,
            clock,
        })
    }

    /// This delivery task with each request cut after `timeout`.
    pub fn with_request_timeout(&self, timeout: Duration) -> anyhow::Result<Self> {
        let cfg = WebhookConfig::clone(&self.cfg);
        Self::cut_after(self.store.clone(), cfg, self.clock.clone(), timeout)
    }

    /// Delivers until `stop`; a turn that did something is followed at once.
    pub async fn run(self, stop: CancellationToken) {
        loop {
            let busy = match self.tick().await {
                Ok(t) => t.delivered + t.failed > 0,
                Err(e) => {
                    tracing::error!(error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), "webhook turn failed");
                    false
                }
            };
            let pause = if busy { Duration::ZERO } else { IDLE };
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One turn: new events get their deliveries, then the due deliveries are
    /// sent (at most `MAX_IN_FLIGHT` at once) and each outcome recorded.
    pub async fn tick(&self) -> Result<Turn, StoreError> {
        let now = self.clock.now();
        let waiting = self.store.read(|c| Ok(outbox::counts(c)?.3)).await?;
        if waiting > 0 {
            let urls = self.cfg.urls.clone();
            self.store
                .write(move |tx| outbox::fan_out(tx, &urls, now, BATCH))
                .await?;
        }
        let due = self.store.read(move |c| outbox::due(c, now, BATCH)).await?;
        if due.is_empty() {
            return Ok(Turn::default());
        }
        let results: Vec<(i64, Attempt)> = futures_util::stream::iter(due)
            .map(|d| async move {
                let attempt = self.attempt(&d).await;
                (d.id, attempt)
            })
            .buffer_unordered(MAX_IN_FLIGHT)
            .collect()
            .await;
        let turn = Turn {
            delivered: results
                .iter()
                .filter(|(_, a)| matches!(a, Attempt::Delivered { .. }))
                .count(),
            failed: results
                .iter()
                .filter(|(_, a)| matches!(a, Attempt::Failed { .. }))
                .count(),
        };
        let now = self.clock.now();
        self.store
            .write(move |tx| {
                for (id, a) in &results {
                    outbox::record(tx, *id, a, now)?;
                }
                Ok(())
            })
            .await?;
        Ok(turn)
    }

    #[tracing::instrument(skip_all, fields(event_id = %d.event.event_id, url = %redact_url(&d.url), attempt = d.attempts + 1))]
    async fn attempt(&self, d: &Delivery) -> Attempt {
        let body = body(&self.cfg, &d.event);
        let mut req = self
            .http
            .post(&d.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Scanpay-Event", d.event.kind.as_str())
            .header("X-Scanpay-Event-Id", d.event.event_id.as_str());
        if let Some(secret) = &self.cfg.secret {
            let unix = self.clock.now().0.div_euclid(1000);
            req = req
                .header("X-Scanpay-Signature", signature(secret, &body))
                .header("X-Scanpay-Timestamp", unix.to_string())
                .header(
                    "X-Scanpay-Timestamp-Signature",
                    timestamped_signature(secret, unix, &body),
                );
        }
        let outcome = match req.body(body).send().await {
            Ok(resp) => {
                let status = resp.status();
                let text = capped_text(resp).await;
                if status.is_success() && wecom_accepted(self.cfg.format, &text) {
                    Ok(status.as_u16())
                } else {
                    let mut why = format!("HTTP {}: {}", status.as_u16(), text.trim());
                    why.truncate(why.floor_char_boundary(MAX_ERROR_CHARS));
                    Err((Some(status.as_u16()), why))
                }
            }
            Err(e) => Err((None, crate::base::http::describe(e))),
        };
        match outcome {
            Ok(status) => {
                tracing::info!(status, "webhook delivered");
                Attempt::Delivered { status }
            }
            Err((status, error)) => {
                let now = self.clock.now();
                let next = now.plus(backoff(d.attempts + 1));
                let give_up = next >= d.event.at.plus(GIVE_UP_AFTER);
                if give_up {
                    tracing::error!(%error, "webhook given up after 24 hours of failures");
                } else {
                    tracing::warn!(%error, "webhook failed; will retry");
                }
                Attempt::Failed {
                    status,
                    error,
                    retry_at: (!give_up).then_some(next),
                }
            }
        }
    }
}

/// A WeCom robot answers 200 with `{"errcode":0}`; any other errcode is a refusal.
fn wecom_accepted(format: WebhookFormat, text: &str) -> bool {
    if format != WebhookFormat::Wecom {
        return true;
    }
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("errcode").and_then(|c| c.as_i64()))
        .is_none_or(|c| c == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::clock::Millis;
    use crate::values::money::Fen;
    use crate::values::order::OrderNo;
    use crate::values::trade::TransactionId;

    fn cfg(format: WebhookFormat) -> WebhookConfig {
        WebhookConfig {
            urls: vec!["http://127.0.0.1:9/hook".into()],
            secret: Some(SecretString::from("a-long-webhook-secret")),
            format,
            shop: "Demo Shop".into(),
            language: Language::ZhCn,
            tz: jiff::tz::TimeZone::get("Asia/Shanghai").unwrap(),
        }
    }

    fn event() -> Event {
        Event::payment(
            &TransactionId::new("4200000001").unwrap(),
            &OrderNo::from_stored("202612010001".into()),
            Fen::new(1250),
            Millis(1_764_588_000_000),
        )
    }

    #[test]
    fn json_bodies_carry_the_contract_keys() {
        let b: serde_json::Value =
            serde_json::from_slice(&body(&cfg(WebhookFormat::Json), &event())).unwrap();
        assert_eq!(
            b,
            serde_json::json!({
                "event": "payment",
                "event_id": "payment-4200000001",
                "order_no": "202612010001",
                "amount_fen": 1250,
                "shop": "Demo Shop",
                "at": "2025-12-01T11:20:00Z",
            })
        );
    }

    #[test]
    fn wecom_bodies_are_a_robots_text_message() {
        let b: serde_json::Value =
            serde_json::from_slice(&body(&cfg(WebhookFormat::Wecom), &event())).unwrap();
        assert_eq!(b["msgtype"], "text");
        assert_eq!(
            b["text"]["content"],
            "【Demo Shop】微信收款 ¥12.50，订单 202612010001，2025-12-01 19:20:00"
        );
        assert!(wecom_accepted(
            WebhookFormat::Wecom,
            r#"{"errcode":0,"errmsg":"ok"}"#
        ));
        assert!(!wecom_accepted(
            WebhookFormat::Wecom,
            r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#
        ));
    }

    #[test]
    fn the_signature_is_hex_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2: key "Jefe".
        let sig = signature(&SecretString::from("Jefe"), b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_timestamped_signature_covers_t_dot_body() {
        // HMAC-SHA256("Jefe", "t=1765000000.what do ya want for nothing?"), by Python's hmac.
        let sig = timestamped_signature(
            &SecretString::from("Jefe"),
            1_765_000_000,
            b"what do ya want for nothing?",
        );
        assert_eq!(
            sig,
            "sha256=1d4764c16dbcb9547faf8ee651eb7fe6b1a3e7c2b7c8e021056b2e0843dddcde"
        );
        assert_ne!(
            sig,
            timestamped_signature(
                &SecretString::from("Jefe"),
                1_765_000_001,
                b"what do ya want for nothing?"
            ),
            "another moment, another signature"
        );
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(5), Duration::from_secs(16));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[tokio::test]
    async fn a_delivery_failing_for_24_hours_is_given_up_and_an_earlier_one_retried() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let clock = Clock::manual();
        // Nobody listens on this port.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut c = cfg(WebhookFormat::Json);
        c.urls = vec![format!("http://127.0.0.1:{port}/hook")];
        let hooks = Webhooks::new(store.clone(), c, clock.clone()).unwrap();
        let mut old = event();
        old.at = clock
            .now()
            .minus(GIVE_UP_AFTER)
            .plus(Duration::from_millis(1500));
        store
            .write(move |tx| outbox::enqueue(tx, &old))
            .await
            .unwrap();

        assert_eq!(
            hooks.tick().await.unwrap(),
            Turn {
                delivered: 0,
                failed: 1
            }
        );
        let row = store
            .read(|c| outbox::recent(c, 1))
            .await
            .unwrap()
            .remove(0);
        assert_eq!(
            row.state,
            outbox::DeliveryState::Pending,
            "retried within the 24 h"
        );
        assert_eq!(row.last_error.as_deref(), Some("connection failed"));
        assert_eq!(
            hooks.tick().await.unwrap(),
            Turn::default(),
            "not due before its backoff"
        );

        clock.advance(Duration::from_secs(1));
        assert_eq!(
            hooks.tick().await.unwrap(),
            Turn {
                delivered: 0,
                failed: 1
            }
        );
        let row = store
            .read(|c| outbox::recent(c, 1))
            .await
            .unwrap()
            .remove(0);
        assert_eq!(row.state, outbox::DeliveryState::GivenUp);
        assert_eq!(row.attempts, 2);
        assert_eq!(row.next_attempt_at, None);
        clock.advance(Duration::from_secs(3600));
        assert_eq!(hooks.tick().await.unwrap(), Turn::default(), "never again");
        assert_eq!(store.read(outbox::counts).await.unwrap(), (0, 0, 1, 0));
    }

    #[test]
    fn notify_settings_come_from_toml_or_env_and_are_checked() {
        let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let s = Settings::load(
            None,
            env(&[
                (
                    "SCANPAY_NOTIFY_WEBHOOK_URLS",
                    "https://a.example/h, http://127.0.0.1:9000/h",
                ),
                ("SCANPAY_NOTIFY_WEBHOOK_SECRET", "a-long-webhook-secret"),
                ("SCANPAY_NOTIFY_WEBHOOK_FORMAT", "wecom"),
            ]),
        )
        .unwrap();
        assert_eq!(
            s.notify.webhook_urls,
            ["https://a.example/h", "http://127.0.0.1:9000/h"]
        );
        assert_eq!(s.notify.webhook_format, WebhookFormat::Wecom);
        assert!(WebhookConfig::from_settings(&s).enabled());
        assert!(!WebhookConfig::from_settings(&Settings::default()).enabled());
        let e = Settings::load(
            None,
            env(&[("SCANPAY_NOTIFY_WEBHOOK_URLS", "https://a.example/h")]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("notify.webhook_secret is needed"), "{e}");
        let e = Settings::load(
            None,
            env(&[
                ("SCANPAY_NOTIFY_WEBHOOK_URLS", "ftp://x/?key=K"),
                ("SCANPAY_NOTIFY_WEBHOOK_SECRET", "short"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("notify.webhook_urls") && e.contains("at least 16"),
            "{e}"
        );
        assert!(!e.contains("key=K"), "a URL's key is not repeated: {e}");
        assert!(
            !format!("{s:?}").contains("a-long-webhook-secret"),
            "the secret stays out of Debug"
        );
    }
}
