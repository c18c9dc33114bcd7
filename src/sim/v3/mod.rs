//! The simulated WeChat Pay API v3, beside the v2 routes and on the same
//! order book: native order, query, close, the platform certificates and the
//! simulator's own keys. Requests are checked as WeChat Pay checks them
//! (`auth`), answers are signed with the key the request's `Wechatpay-Serial`
//! names (`keys`), errors are WeChat Pay's JSON with its statuses, and paid
//! orders are notified encrypted and signed (`notify`). The faults of
//! `sim.faults` apply here too, at the one choke point `answer`.

pub mod auth;
mod bill;
pub mod json;
pub mod keys;
pub mod notify;
mod refund;
mod trade;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use jiff::Timestamp;
use rand::distr::{Alphanumeric, SampleString};

use super::Simulator;
use super::faults::roll;
use crate::wxpay::v3::cert::{
    ASSOCIATED_DATA, CERTIFICATES_PATH, CertificateEntry, CertificatesAnswer, EncryptCertificate,
};
use crate::wxpay::v3::refund::REFUNDS_PATH;
use crate::wxpay::v3::sign::{MerchantSigner, SCHEME};
use crate::wxpay::v3::verify::response_message;
use crate::wxpay::v3::{KeyError, aead, api};
use auth::MerchantAuth;
use keys::SimKeys;

/// The v3 side of the simulator: the merchant it serves and its own keys.
pub struct V3Side {
    merchant: crate::wxpay::v3::Merchant,
    auth: MerchantAuth,
    keys: SimKeys,
    /// Bills handed out by `tradebill`, by download token (gzip bytes).
    bills: std::sync::Mutex<std::collections::VecDeque<(String, Vec<u8>)>>,
}

pub(super) const BILL_PATH: &str = "/v3/bill/tradebill";
pub(super) const BILL_DOWNLOAD_PATH: &str = "/v3/billdownload/file";

impl V3Side {
    pub fn new(merchant: crate::wxpay::v3::Merchant) -> Result<V3Side, KeyError> {
        let signer = merchant.signer()?;
        let auth = MerchantAuth::new(
            &merchant.mchid,
            &merchant.cert_serial,
            signer.public_key_der().to_vec(),
        );
        Ok(V3Side {
            merchant,
            auth,
            keys: SimKeys::load()?,
            bills: Default::default(),
        })
    }

    pub fn merchant(&self) -> &crate::wxpay::v3::Merchant {
        &self.merchant
    }

    pub(crate) fn keys(&self) -> &SimKeys {
        &self.keys
    }
}

/// WeChat Pay's error answer: `{"code","message","detail"}` with its status.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub detail: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            detail: None,
        }
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }

    fn response(&self) -> HttpResponse {
        let mut body = serde_json::json!({"code": self.code, "message": self.message});
        if let Some(d) = &self.detail {
            body["detail"] = d.clone();
        }
        HttpResponse::build(
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        )
        .insert_header(("Request-ID", request_id(self.code)))
        .content_type("application/json")
        .body(body.to_string())
    }
}

pub(super) fn param_error(message: impl Into<String>) -> ApiError {
    ApiError::new(400, "PARAM_ERROR", message)
}

/// `{id}-{internal code}`: `-0` for success, as WeChat Pay writes it.
fn request_id(code: &str) -> String {
    let suffix = match code {
        "" => 0,
        "SIGN_ERROR" => 268_443_699,
        "ORDER_NOT_EXIST" => 268_512_771,
        "ORDER_PAID" => 268_449_538,
        "PARAM_ERROR" => 268_498_688,
        "APPID_MCHID_NOT_MATCH" => 268_445_527,
        _ => 1,
    };
    let id: String = Alphanumeric
        .sample_string(&mut rand::rng(), 42)
        .to_ascii_uppercase();
    format!("{id}-{suffix}")
}

/// Registers the v3 routes on the simulator's scope.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(api::NATIVE_PATH, web::post().to(native))
        .route(
            "/v3/pay/transactions/out-trade-no/{out_trade_no}",
            web::get().to(query),
        )
        .route(
            "/v3/pay/transactions/out-trade-no/{out_trade_no}/close",
            web::post().to(close),
        )
        .route(CERTIFICATES_PATH, web::get().to(certificates))
        .route(REFUNDS_PATH, web::post().to(refund))
        .route(
            "/v3/refund/domestic/refunds/{out_refund_no}",
            web::get().to(query_refund),
        )
        .route(BILL_PATH, web::get().to(trade_bill))
        .route(BILL_DOWNLOAD_PATH, web::get().to(bill::download_bill))
        .route("/v3/sim-keys", web::get().to(sim_keys));
}

async fn trade_bill(req: HttpRequest, sim: web::Data<Simulator>, body: web::Bytes) -> HttpResponse {
    answer(&sim, &req, &body, Endpoint::TradeBill).await
}

enum Endpoint {
    Native,
    Query(String),
    Close(String),
    Certificates,
    Refund,
    RefundQuery(String),
    TradeBill,
}

async fn refund(req: HttpRequest, sim: web::Data<Simulator>, body: web::Bytes) -> HttpResponse {
    answer(&sim, &req, &body, Endpoint::Refund).await
}

async fn query_refund(
    req: HttpRequest,
    sim: web::Data<Simulator>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    answer(&sim, &req, &body, Endpoint::RefundQuery(path.into_inner())).await
}

async fn native(req: HttpRequest, sim: web::Data<Simulator>, body: web::Bytes) -> HttpResponse {
    answer(&sim, &req, &body, Endpoint::Native).await
}

async fn query(
    req: HttpRequest,
    sim: web::Data<Simulator>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    answer(&sim, &req, &body, Endpoint::Query(path.into_inner())).await
}

async fn close(
    req: HttpRequest,
    sim: web::Data<Simulator>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    answer(&sim, &req, &body, Endpoint::Close(path.into_inner())).await
}

async fn certificates(
    req: HttpRequest,
    sim: web::Data<Simulator>,
    body: web::Bytes,
) -> HttpResponse {
    answer(&sim, &req, &body, Endpoint::Certificates).await
}

/// `GET /v3/sim-keys`: the simulator's public key and platform certificate,
/// so that any client can verify it (fixed public demo values).
async fn sim_keys() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "public_key_id": keys::PUBLIC_KEY_ID,
        "public_key_pem": keys::PUBLIC_KEY_PEM,
        "platform_serial": keys::PLATFORM_SERIAL,
        "platform_certificate_pem": keys::PLATFORM_CERT_PEM,
    }))
}

/// The one choke point: faults, the request's signature, the endpoint, the signed answer.
async fn answer(sim: &Simulator, req: &HttpRequest, body: &[u8], ep: Endpoint) -> HttpResponse {
    let faults = sim.faults();
    if let Some(failed) = faults.delay_or_fail().await {
        return failed;
    }
    let v3 = sim.v3();
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let now = Timestamp::now();
    let auth = match verify_request(v3, req, body, now) {
        Ok(a) => a,
        Err(e) => return e.response(),
    };
    // A serial WeChat Pay does not know was answered 500 "未知错误" (§1.9).
    let Some((serial, signer)) = v3.keys.for_serial(header("wechatpay-serial")) else {
        return ApiError::new(500, "SYSTEM_ERROR", "未知错误").response();
    };
    let outcome = if roll(faults.systemerror_rate) {
        Err(ApiError::new(500, "SYSTEM_ERROR", "系统错误"))
    } else {
        handle(sim, req, body, ep, &auth.mchid, serial, now)
    };
    match outcome {
        Err(e) => e.response(),
        Ok((status, mut answer)) => {
            if roll(faults.bad_xml_rate) && !answer.is_empty() {
                // An unreadable body, correctly signed: the client must not trust its parse.
                answer.truncate(answer.len() / 2);
            }
            signed(status, answer, signer, serial, roll(faults.bad_sign_rate))
        }
    }
}

/// The request's Authorization, checked as WeChat Pay checks it: over the raw
/// path and query as sent (what the merchant signed) and the exact body.
pub(super) fn verify_request(
    v3: &V3Side,
    req: &HttpRequest,
    body: &[u8],
    now: Timestamp,
) -> Result<crate::wxpay::v3::sign::Authorization, ApiError> {
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path().to_string(), |p| p.as_str().to_string());
    auth::verify(
        &v3.auth,
        req.headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        req.method().as_str(),
        &path_and_query,
        body,
        now.as_second(),
    )
}

/// A 2xx answer signed over `timestamp\nnonce\nbody\n`; with `bad_sign`, over other bytes.
fn signed(
    status: u16,
    body: Vec<u8>,
    signer: &MerchantSigner,
    serial: &str,
    bad_sign: bool,
) -> HttpResponse {
    let ts = Timestamp::now().as_second().to_string();
    let nonce = Alphanumeric.sample_string(&mut rand::rng(), 32);
    let covered: &[u8] = if bad_sign {
        b"{\"tampered\":true}"
    } else {
        &body
    };
    let Ok(signature) = signer.sign(&response_message(&ts, &nonce, covered)) else {
        return ApiError::new(500, "SYSTEM_ERROR", "系统错误").response();
    };
    let mut b = HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK));
    b.insert_header(("Wechatpay-Timestamp", ts))
        .insert_header(("Wechatpay-Nonce", nonce))
        .insert_header(("Wechatpay-Signature", signature))
        .insert_header(("Wechatpay-Serial", serial))
        .insert_header(("Wechatpay-Signature-Type", SCHEME))
        .insert_header(("Request-ID", request_id("")));
    if body.is_empty() {
        b.finish()
    } else {
        b.content_type("application/json").body(body)
    }
}

pub(super) fn json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(v).map_err(|_| ApiError::new(500, "SYSTEM_ERROR", "系统错误"))
}

fn handle(
    sim: &Simulator,
    req: &HttpRequest,
    body: &[u8],
    ep: Endpoint,
    auth_mchid: &str,
    serial: &str,
    now: Timestamp,
) -> Result<(u16, Vec<u8>), ApiError> {
    match ep {
        Endpoint::Native => trade::native(sim, body, auth_mchid, serial, now),
        Endpoint::Query(out_trade_no) => trade::query(sim, req, &out_trade_no, auth_mchid),
        Endpoint::Close(out_trade_no) => trade::close(sim, body, &out_trade_no, auth_mchid, now),
        Endpoint::Refund => refund::create(sim, body, auth_mchid, serial, now),
        Endpoint::TradeBill => bill::tradebill(sim, req, auth_mchid),
        Endpoint::RefundQuery(out_refund_no) => refund::query(sim, &out_refund_no, auth_mchid),
        Endpoint::Certificates => {
            let v3 = sim.v3();
            let nonce = Alphanumeric.sample_string(&mut rand::rng(), 12);
            let ciphertext = aead::encrypt(
                &v3.merchant.apiv3_key,
                &nonce,
                ASSOCIATED_DATA,
                keys::PLATFORM_CERT_PEM.as_bytes(),
            )
            .map_err(|_| ApiError::new(500, "SYSTEM_ERROR", "系统错误"))?;
            let answer = CertificatesAnswer {
                data: vec![CertificateEntry {
                    serial_no: keys::PLATFORM_SERIAL.into(),
                    effective_time: keys::PLATFORM_EFFECTIVE.into(),
                    expire_time: keys::PLATFORM_EXPIRES.into(),
                    encrypt_certificate: EncryptCertificate {
                        algorithm: aead::ALGORITHM.into(),
                        nonce,
                        associated_data: ASSOCIATED_DATA.into(),
                        ciphertext,
                    },
                }],
            };
            Ok((200, json(&answer)?))
        }
    }
}
