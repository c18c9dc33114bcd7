//! The v3 transport: sign each request, send it with the serial of the key we
//! verify with, read at most a capped answer, and believe a 2xx answer only
//! once its signature checks out. Error answers are WeChat Pay's JSON.

use std::sync::RwLock;
use std::time::Duration;

use rand::distr::{Alphanumeric, SampleString};
use reqwest::Method;

use crate::base::cause::{self, Failure};
use crate::base::http::failure;

use super::aead::ApiV3Key;
use super::api::{self, ErrorBody, ErrorCode, NATIVE_PATH, NativeAnswer, NativeOrder, Transaction};
use super::cert::{self, CERTIFICATES_PATH, PlatformCert};
use super::sign::MerchantSigner;
use super::verify::{Signed, VerifyError, WechatPayKeys};
use crate::base::lock::RwLockExt;

/// Largest answer read (v3 answers are a few hundred bytes).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Why a v3 call produced no result, at the protocol's levels.
#[derive(Debug, thiserror::Error)]
pub enum V3Error {
    /// No usable answer: connection, timeout, an error status without WeChat
    /// Pay's JSON. The reqwest error, if one is behind it, is its source.
    #[error("could not reach the payment gateway: {0}")]
    Transport(#[source] Failure),
    /// A 2xx answer that cannot be believed (bad or missing signature, not
    /// JSON). The JSON or verification error behind it is its source.
    #[error("the payment gateway's answer was not valid: {0}")]
    Unbelievable(#[source] Failure),
    /// The merchant's keys cannot be used.
    #[error("the merchant's keys: {0}")]
    Key(#[from] super::KeyError),
    /// WeChat Pay's error JSON with its HTTP status.
    #[error("the payment gateway answered {status} {raw_code}: {message}")]
    Api {
        status: u16,
        code: ErrorCode,
        raw_code: String,
        message: String,
    },
}

/// One merchant's v3 client.
pub struct V3Client {
    http: reqwest::Client,
    base_url: String,
    appid: String,
    signer: MerchantSigner,
    /// The keys from the settings (the WeChat Pay public key, if any).
    configured: WechatPayKeys,
    /// Those, plus the platform certificates last downloaded.
    keys: RwLock<Believed>,
}

struct Believed {
    keys: WechatPayKeys,
    certificates: Vec<PlatformCert>,
    /// The serial sent as `Wechatpay-Serial`: the key WeChat Pay should sign with.
    accept_serial: Option<String>,
}

/// One answer as it came, before it is believed.
struct RawAnswer {
    status: reqwest::StatusCode,
    timestamp: Option<String>,
    nonce: Option<String>,
    signature: Option<String>,
    serial: Option<String>,
    body: Vec<u8>,
}

impl RawAnswer {
    fn signed(&self) -> Signed<'_> {
        Signed {
            timestamp: self.timestamp.as_deref(),
            nonce: self.nonce.as_deref(),
            signature: self.signature.as_deref(),
            serial: self.serial.as_deref(),
        }
    }
}

impl V3Client {
    /// `base_url` is the gateway root (`https://api.mch.weixin.qq.com`);
    /// `accept_serial` one of `keys`' serials (the public key id, when there is one).
    pub fn new(
        base_url: &str,
        appid: &str,
        signer: MerchantSigner,
        keys: WechatPayKeys,
        accept_serial: &str,
        timeout: Duration,
    ) -> Result<Self, V3Error> {
        let http = crate::base::http::build(timeout).map_err(V3Error::Transport)?;
        Ok(V3Client {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            appid: appid.to_string(),
            signer,
            configured: keys.clone(),
            keys: RwLock::new(Believed {
                keys,
                certificates: Vec::new(),
                accept_serial: (!accept_serial.is_empty()).then(|| accept_serial.to_string()),
            }),
        })
    }

    /// Checks a signed answer or notification with the keys believed now.
    pub fn verify(&self, h: &Signed<'_>, body: &[u8], now: i64) -> Result<(), VerifyError> {
        self.keys.read_or_recover().keys.verify(h, body, now)
    }

    /// The platform certificates believed now (serial and expiry).
    pub fn certificates(&self) -> Vec<PlatformCert> {
        self.keys.read_or_recover().certificates.clone()
    }

    /// Downloads the platform certificates, decrypts them with the APIv3 key,
    /// believes the list only if it verifies (with a key already believed, or
    /// — the first time — with one of the certificates it brings), and from
    /// then on verifies with them beside the configured keys. Certificates
    /// past their expiry are left out. Returns those now believed.
    pub async fn refresh_certificates(
        &self,
        apiv3_key: &ApiV3Key,
    ) -> Result<Vec<PlatformCert>, V3Error> {
        let raw = self
            .send(Method::GET, CERTIFICATES_PATH, None, MAX_ANSWER_BYTES)
            .await?;
        let answer = self.checked_status(raw)?;
        let now = jiff::Timestamp::now();
        let mut fresh = cert::decrypt_all(&answer.body, apiv3_key)
            .map_err(|e| V3Error::Unbelievable(Failure::of(e)))?;
        fresh.retain(|c| c.expires.is_none_or(|t| t > now));
        if fresh.is_empty() {
            return Err(V3Error::Unbelievable(
                "no platform certificate that is still valid".into(),
            ));
        }
        let mut keys = self.configured.clone();
        for c in &fresh {
            keys.add_spki_der(&c.serial, &c.spki).map_err(|e| {
                V3Error::Unbelievable(Failure::because(
                    format!("certificate {}: {e}", c.serial),
                    e,
                ))
            })?;
        }
        let believed_before = self.verify(&answer.signed(), &answer.body, now.as_second());
        if believed_before.is_err() {
            keys.verify(&answer.signed(), &answer.body, now.as_second())
                .map_err(|e| {
                    V3Error::Unbelievable(Failure::because(format!("the certificate list: {e}"), e))
                })?;
        }
        let mut believed = self.keys.write_or_recover();
        believed.keys = keys;
        // Without a public key, ask to be answered with the longest-lived certificate.
        if self.configured.is_empty() {
            believed.accept_serial = fresh
                .iter()
                .max_by_key(|c| c.expires)
                .map(|c| c.serial.clone());
        }
        believed.certificates = fresh.clone();
        Ok(fresh)
    }

    /// A client for `merchant`, believing its WeChat Pay public key if it has
    /// one; without one, its platform certificates are downloaded first (a
    /// failure is logged, and the caller's refresh tries again).
    pub async fn connect(
        base_url: &str,
        merchant: &super::Merchant,
        timeout: Duration,
    ) -> Result<V3Client, V3Error> {
        let accept = merchant
            .public_key
            .as_ref()
            .map_or(String::new(), |k| k.id.clone());
        let client = V3Client::new(
            base_url,
            &merchant.appid,
            merchant.signer()?,
            merchant.configured_keys()?,
            &accept,
            timeout,
        )?;
        if merchant.public_key.is_none() {
            match client.refresh_certificates(&merchant.apiv3_key).await {
                Ok(certs) => tracing::info!(
                    count = certs.len(),
                    "platform certificates downloaded and decrypted"
                ),
                Err(e) => tracing::warn!(
                    error.message = %e, error.cause_chain = %cause::chain(&e),
                    "platform certificates not downloaded: answers cannot be believed until they are"
                ),
            }
        }
        Ok(client)
    }

    pub fn mchid(&self) -> &str {
        self.signer.mchid()
    }

    pub fn appid(&self) -> &str {
        &self.appid
    }

    /// Creates (or, with identical parameters, re-creates) a native order.
    pub async fn native(&self, order: &NativeOrder) -> Result<NativeAnswer, V3Error> {
        let body = serde_json::to_vec(order).map_err(|e| V3Error::Transport(Failure::of(e)))?;
        let answer = self.call(Method::POST, NATIVE_PATH, Some(body)).await?;
        serde_json::from_slice(&answer).map_err(|e| V3Error::Unbelievable(Failure::of(e)))
    }

    /// What WeChat Pay knows of one of our trade numbers.
    pub async fn query(&self, out_trade_no: &str) -> Result<Transaction, V3Error> {
        let path = api::query_path(out_trade_no, self.mchid());
        let answer = self.call(Method::GET, &path, None).await?;
        serde_json::from_slice(&answer).map_err(|e| V3Error::Unbelievable(Failure::of(e)))
    }

    /// Closes a trade number (204).
    pub async fn close(&self, out_trade_no: &str) -> Result<(), V3Error> {
        let body = serde_json::to_vec(&serde_json::json!({ "mchid": self.mchid() }))
            .map_err(|e| V3Error::Transport(Failure::of(e)))?;
        self.call(Method::POST, &api::close_path(out_trade_no), Some(body))
            .await
            .map(|_| ())
    }

    /// `POST /v3/refund/domestic/refunds`: 200 means accepted, not refunded.
    pub async fn refund(
        &self,
        req: &super::refund::RefundCreate,
    ) -> Result<super::refund::RefundAnswer, V3Error> {
        let body = serde_json::to_vec(req).map_err(|e| V3Error::Transport(Failure::of(e)))?;
        let answer = self
            .call(Method::POST, super::refund::REFUNDS_PATH, Some(body))
            .await?;
        serde_json::from_slice(&answer).map_err(|e| V3Error::Unbelievable(Failure::of(e)))
    }

    /// `GET /v3/refund/domestic/refunds/{out_refund_no}`.
    pub async fn query_refund(
        &self,
        out_refund_no: &str,
    ) -> Result<super::refund::RefundAnswer, V3Error> {
        let path = super::refund::query_refund_path(out_refund_no);
        let answer = self.call(Method::GET, &path, None).await?;
        serde_json::from_slice(&answer).map_err(|e| V3Error::Unbelievable(Failure::of(e)))
    }

    /// One call whose 2xx answer is believed only once its signature checks out.
    #[tracing::instrument(name = "wxpay_v3", skip_all, fields(%method, path = path_and_query.split('?').next().unwrap_or("")))]
    async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, V3Error> {
        let raw = self
            .send(method, path_and_query, body, MAX_ANSWER_BYTES)
            .await?;
        let answer = self.checked_status(raw)?;
        self.verify(
            &answer.signed(),
            &answer.body,
            jiff::Timestamp::now().as_second(),
        )
        .map_err(|e| V3Error::Unbelievable(Failure::of(e)))?;
        Ok(answer.body)
    }

    /// `GET /v3/bill/tradebill` for `day`: where to download it, and its hash.
    pub async fn trade_bill(
        &self,
        day: jiff::civil::Date,
    ) -> Result<super::bill::TradeBill, V3Error> {
        let answer = self
            .call(Method::GET, &super::bill::tradebill_path(day), None)
            .await?;
        serde_json::from_slice(&answer).map_err(|e| V3Error::Unbelievable(Failure::of(e)))
    }

    /// The bill file itself. Its answer is not signed: the SHA-1 the signed
    /// `trade_bill` answer named is what vouches for it.
    pub async fn download_bill(&self, bill: &super::bill::TradeBill) -> Result<String, V3Error> {
        let path = super::bill::download_path(&bill.download_url, &self.base_url)
            .map_err(|e| V3Error::Unbelievable(Failure::of(e)))?;
        let limit = usize::try_from(super::bill::MAX_BILL_BYTES).unwrap_or(usize::MAX);
        let raw = self.send(Method::GET, path, None, limit).await?;
        let raw = self.checked_status(raw)?;
        super::bill::open_file(&raw.body, bill).map_err(|e| V3Error::Unbelievable(Failure::of(e)))
    }

    /// An error status is WeChat Pay's JSON (or no usable answer at all).
    fn checked_status(&self, raw: RawAnswer) -> Result<RawAnswer, V3Error> {
        if raw.status.is_success() {
            return Ok(raw);
        }
        Err(match serde_json::from_slice::<ErrorBody>(&raw.body) {
            Ok(e) => V3Error::Api {
                status: raw.status.as_u16(),
                code: ErrorCode::parse(&e.code),
                raw_code: e.code,
                message: e.message,
            },
            Err(_) => V3Error::Transport(format!("HTTP {}", raw.status).into()),
        })
    }

    #[tracing::instrument(name = "wxpay_v3", skip_all, fields(%method, path = path_and_query.split('?').next().unwrap_or("")))]
    async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<RawAnswer, V3Error> {
        let timestamp = jiff::Timestamp::now().as_second();
        let nonce = Alphanumeric.sample_string(&mut rand::rng(), 32);
        let bytes = body.unwrap_or_default();
        // The signature covers the path as the gateway receives it, with any
        // prefix of the base URL (a gateway mounted under `/sim`, say).
        let signed_path = format!("{}{path_and_query}", base_path(&self.base_url));
        let authorization = self
            .signer
            .authorization(method.as_str(), &signed_path, timestamp, &nonce, &bytes)
            .map_err(|e| V3Error::Transport(Failure::of(e)))?;
        let accept_serial = self.keys.read_or_recover().accept_serial.clone();
        let mut req = self
            .http
            .request(method, format!("{}{path_and_query}", self.base_url))
            .header("Authorization", authorization)
            .header("Accept", "application/json");
        if let Some(serial) = accept_serial {
            req = req.header("Wechatpay-Serial", serial);
        }
        if !bytes.is_empty() {
            req = req.header("Content-Type", "application/json").body(bytes);
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| V3Error::Transport(failure(e)))?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let mut raw = RawAnswer {
            status: resp.status(),
            timestamp: header("Wechatpay-Timestamp"),
            nonce: header("Wechatpay-Nonce"),
            signature: header("Wechatpay-Signature"),
            serial: header("Wechatpay-Serial"),
            body: Vec::new(),
        };
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| V3Error::Transport(failure(e)))?
        {
            if raw.body.len() + chunk.len() > limit {
                return Err(V3Error::Unbelievable("the answer is too large".into()));
            }
            raw.body.extend_from_slice(&chunk);
        }
        Ok(raw)
    }
}

/// The path part of a base URL (`http://host:1/sim` → `/sim`; none → ``).
fn base_path(base_url: &str) -> &str {
    let after_scheme = base_url.split_once("://").map_or(base_url, |(_, r)| r);
    after_scheme.find('/').map_or("", |i| &after_scheme[i..])
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

    use super::*;
    use crate::wxpay::v3::sign::Authorization;
    use crate::wxpay::v3::sign::tests::{OFFICIAL_SERIAL, official};
    use crate::wxpay::v3::verify::response_message;

    const SERIAL: &str = "PUB_KEY_ID_TEST";

    /// A minimal WeChat Pay: checks our signature, answers signed (or, for
    /// `/forged`, with a signature over other bytes).
    async fn gateway(req: HttpRequest, body: web::Bytes) -> HttpResponse {
        let auth = req
            .headers()
            .get("Authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(Authorization::parse);
        let Some(auth) = auth else {
            return HttpResponse::Unauthorized()
                .json(serde_json::json!({"code":"SIGN_ERROR","message":"no auth"}));
        };
        let mut keys = WechatPayKeys::default();
        keys.add_rsa_public_der(OFFICIAL_SERIAL, official().public_key_der().to_vec());
        let message = crate::wxpay::v3::sign::request_message(
            req.method().as_str(),
            &req.uri().to_string(),
            auth.timestamp,
            &auth.nonce_str,
            &body,
        );
        let ts = auth.timestamp.to_string();
        let ok = keys
            .verify(
                &Signed {
                    timestamp: Some(&ts),
                    nonce: Some(&auth.nonce_str),
                    signature: Some(&auth.signature),
                    serial: Some(&auth.serial_no),
                },
                &message[..message.len() - body.len() - 1],
                auth.timestamp,
            )
            .is_ok()
            || official().sign(&message).ok().as_deref() == Some(auth.signature.as_str());
        if !ok
            || req
                .headers()
                .get("Wechatpay-Serial")
                .and_then(|v| v.to_str().ok())
                != Some(SERIAL)
        {
            return HttpResponse::Unauthorized()
                .json(serde_json::json!({"code":"SIGN_ERROR","message":"签名错误"}));
        }
        let (status, answer): (u16, Vec<u8>) = match req.path() {
            "/v3/pay/transactions/native" => (200, br#"{"code_url":"weixin://wxpay/bizpayurl?pr=abc"}"#.to_vec()),
            p if p.ends_with("/close") => (204, Vec::new()),
            p if p.contains("GARBLED") => (200, b"not json".to_vec()),
            p if p.contains("NOPE") => {
                return HttpResponse::NotFound().json(serde_json::json!({"code":"ORDER_NOT_EXIST","message":"订单不存在"}));
            }
            _ => (200, br#"{"appid":"wx","mchid":"1900007291","out_trade_no":"SP1","trade_state":"NOTPAY"}"#.to_vec()),
        };
        let ts = jiff::Timestamp::now().as_second().to_string();
        let signed_over = if req.query_string().contains("forged") {
            b"other".to_vec()
        } else {
            answer.clone()
        };
        let sig = official()
            .sign(&response_message(&ts, "n", &signed_over))
            .unwrap();
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
            .insert_header(("Wechatpay-Timestamp", ts))
            .insert_header(("Wechatpay-Nonce", "n"))
            .insert_header(("Wechatpay-Signature", sig))
            .insert_header(("Wechatpay-Serial", SERIAL))
            .body(answer)
    }

    async fn client() -> V3Client {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(|| App::new().default_service(web::to(gateway)))
            .workers(1)
            .listen(listener)
            .unwrap()
            .run();
        tokio::spawn(server);
        let mut keys = WechatPayKeys::default();
        keys.add_rsa_public_der(SERIAL, official().public_key_der().to_vec());
        V3Client::new(
            &format!("http://127.0.0.1:{port}"),
            "wxd678efh567hg6787",
            official(),
            keys,
            SERIAL,
            Duration::from_secs(5),
        )
        .unwrap()
    }

    fn order() -> NativeOrder {
        NativeOrder {
            appid: "wxd678efh567hg6787".into(),
            mchid: "1900007291".into(),
            description: "店-茶".into(),
            out_trade_no: "SP1".into(),
            time_expire: "2026-01-01T12:00:00+08:00".into(),
            notify_url: "https://shop.example/wxpay/v3/notify".into(),
            amount: api::Amount {
                total: 1250,
                currency: Some("CNY".into()),
            },
            scene_info: api::SceneInfo {
                payer_client_ip: "127.0.0.1".into(),
            },
        }
    }

    #[test]
    fn the_base_urls_path_is_signed_too() {
        assert_eq!(base_path("http://127.0.0.1:8080/sim"), "/sim");
        assert_eq!(base_path("https://api.mch.weixin.qq.com"), "");
        assert_eq!(base_path("http://h/a/b"), "/a/b");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn signed_requests_and_verified_answers_end_to_end() {
        let c = client().await;
        assert_eq!(
            c.native(&order()).await.unwrap().code_url,
            "weixin://wxpay/bizpayurl?pr=abc"
        );
        assert_eq!(c.query("SP1").await.unwrap().trade_state, "NOTPAY");
        assert!(c.close("SP1").await.is_ok(), "a signed 204 is believed");
        assert!(matches!(
            c.query("NOPE").await,
            Err(V3Error::Api {
                status: 404,
                code: ErrorCode::OrderNotExist,
                ..
            })
        ));
        assert!(matches!(
            c.call(Method::GET, "/v3/x?forged=1", None).await,
            Err(V3Error::Unbelievable(_))
        ));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_unbelievable_answer_keeps_its_cause() {
        let c = client().await;
        let forged = c
            .call(Method::GET, "/v3/x?forged=1", None)
            .await
            .unwrap_err();
        let verify = cause::levels(&forged).find_map(|l| l.downcast_ref::<VerifyError>());
        assert!(verify.is_some(), "{}", cause::chain(&forged));
        // Signed, but not JSON: the JSON error is kept under the short text.
        let garbled = c.query("GARBLED").await.unwrap_err();
        assert!(matches!(garbled, V3Error::Unbelievable(_)), "{garbled:?}");
        assert!(
            cause::levels(&garbled).any(|l| l.is::<serde_json::Error>()),
            "{}",
            cause::chain(&garbled)
        );
        assert!(
            garbled
                .to_string()
                .starts_with("the payment gateway's answer was not valid: expected ident")
        );
    }
}
