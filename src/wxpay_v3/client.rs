//! The v3 transport: sign each request, send it with the serial of the key we
//! verify with, read at most a capped answer, and believe a 2xx answer only
//! once its signature checks out. Error answers are WeChat Pay's JSON.

use std::time::Duration;

use rand::distr::{Alphanumeric, SampleString};
use reqwest::Method;

use crate::http_client::describe;

use super::api::{self, ErrorBody, ErrorCode, NATIVE_PATH, NativeAnswer, NativeOrder, Transaction};
use super::sign::MerchantSigner;
use super::verify::{Signed, WechatPayKeys};

/// Largest answer read (v3 answers are a few hundred bytes).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Why a v3 call produced no result, at the protocol's levels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum V3Error {
    /// No usable answer: connection, timeout, an error status without WeChat Pay's JSON.
    #[error("could not reach the payment gateway: {0}")]
    Transport(String),
    /// A 2xx answer that cannot be believed (bad or missing signature, not JSON).
    #[error("the payment gateway's answer was not valid: {0}")]
    Unbelievable(String),
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
    keys: WechatPayKeys,
    /// The serial sent as `Wechatpay-Serial`: the key WeChat Pay should sign with.
    accept_serial: String,
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
        let http = crate::http_client::build(timeout).map_err(V3Error::Transport)?;
        Ok(V3Client {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            appid: appid.to_string(),
            signer,
            keys,
            accept_serial: accept_serial.to_string(),
        })
    }

    pub fn mchid(&self) -> &str {
        self.signer.mchid()
    }

    pub fn appid(&self) -> &str {
        &self.appid
    }

    pub fn keys(&self) -> &WechatPayKeys {
        &self.keys
    }

    /// Creates (or, with identical parameters, re-creates) a native order.
    pub async fn native(&self, order: &NativeOrder) -> Result<NativeAnswer, V3Error> {
        let body = serde_json::to_vec(order).map_err(|e| V3Error::Transport(e.to_string()))?;
        let answer = self.call(Method::POST, NATIVE_PATH, Some(body)).await?;
        serde_json::from_slice(&answer).map_err(|e| V3Error::Unbelievable(e.to_string()))
    }

    /// What WeChat Pay knows of one of our trade numbers.
    pub async fn query(&self, out_trade_no: &str) -> Result<Transaction, V3Error> {
        let path = api::query_path(out_trade_no, self.mchid());
        let answer = self.call(Method::GET, &path, None).await?;
        serde_json::from_slice(&answer).map_err(|e| V3Error::Unbelievable(e.to_string()))
    }

    /// Closes a trade number (204).
    pub async fn close(&self, out_trade_no: &str) -> Result<(), V3Error> {
        let body = serde_json::to_vec(&serde_json::json!({ "mchid": self.mchid() }))
            .map_err(|e| V3Error::Transport(e.to_string()))?;
        self.call(Method::POST, &api::close_path(out_trade_no), Some(body))
            .await
            .map(|_| ())
    }

    #[tracing::instrument(name = "wxpay_v3", skip_all, fields(%method, path = path_and_query.split('?').next().unwrap_or("")))]
    async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, V3Error> {
        let timestamp = jiff::Timestamp::now().as_second();
        let nonce = Alphanumeric.sample_string(&mut rand::rng(), 32);
        let bytes = body.unwrap_or_default();
        // The signature covers the path as the gateway receives it, with any
        // prefix of the base URL (a gateway mounted under `/sim`, say).
        let signed_path = format!("{}{path_and_query}", base_path(&self.base_url));
        let authorization = self
            .signer
            .authorization(method.as_str(), &signed_path, timestamp, &nonce, &bytes)
            .map_err(|e| V3Error::Transport(e.to_string()))?;
        let mut req = self
            .http
            .request(method, format!("{}{path_and_query}", self.base_url))
            .header("Authorization", authorization)
            .header("Accept", "application/json")
            .header("Wechatpay-Serial", &self.accept_serial);
        if !bytes.is_empty() {
            req = req.header("Content-Type", "application/json").body(bytes);
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| V3Error::Transport(describe(e)))?;
        let status = resp.status();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (ts, nonce, signature, serial) = (
            header("Wechatpay-Timestamp"),
            header("Wechatpay-Nonce"),
            header("Wechatpay-Signature"),
            header("Wechatpay-Serial"),
        );
        let mut answer = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| V3Error::Transport(describe(e)))?
        {
            if answer.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(V3Error::Unbelievable("the answer is too large".into()));
            }
            answer.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorBody>(&answer) {
                Ok(e) => V3Error::Api {
                    status: status.as_u16(),
                    code: ErrorCode::parse(&e.code),
                    raw_code: e.code,
                    message: e.message,
                },
                Err(_) => V3Error::Transport(format!("HTTP {status}")),
            });
        }
        let signed = Signed {
            timestamp: ts.as_deref(),
            nonce: nonce.as_deref(),
            signature: signature.as_deref(),
            serial: serial.as_deref(),
        };
        self.keys
            .verify(&signed, &answer, jiff::Timestamp::now().as_second())
            .map_err(|e| V3Error::Unbelievable(e.to_string()))?;
        Ok(answer)
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
    use crate::wxpay_v3::sign::Authorization;
    use crate::wxpay_v3::sign::tests::{OFFICIAL_SERIAL, official};
    use crate::wxpay_v3::verify::response_message;

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
        let message = crate::wxpay_v3::sign::request_message(
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
        assert_eq!(c.close("SP1").await, Ok(()), "a signed 204 is believed");
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
}
