//! The simulated WeChat Pay API v3, beside the v2 routes and on the same
//! order book: native order, query, close, the platform certificates and the
//! simulator's own keys. Requests are checked as WeChat Pay checks them
//! (`auth`), answers are signed with the key the request's `Wechatpay-Serial`
//! names (`keys`), errors are WeChat Pay's JSON with its statuses, and paid
//! orders are notified encrypted and signed (`notify`). The faults of
//! `sim.faults` apply here too, at the one choke point `answer`.

pub mod auth;
pub mod keys;
pub mod notify;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use jiff::Timestamp;
use rand::distr::{Alphanumeric, SampleString};
use serde::Deserialize;

use super::Simulator;
use super::faults::roll;
use super::ledger::{NewOrder, SimOrder, SimTradeState, V3Terms};
use super::refunds::{self, RefundAsk, SIM_ACCOUNT, SimRefund};
use crate::base::lock::LockExt;
use crate::values::money::Fen;
use crate::wxpay::v2::refund::RefundStatusV2;
use crate::wxpay::v2::{ErrCode, OutTradeNo, SignType};
use crate::wxpay::v3::api::TradeState;
use crate::wxpay::v3::cert::{
    ASSOCIATED_DATA, CERTIFICATES_PATH, CertificateEntry, CertificatesAnswer, EncryptCertificate,
};
use crate::wxpay::v3::refund::{
    REFUNDS_PATH, RefundAmount, RefundAnswer, RefundCreate, RefundState,
};
use crate::wxpay::v3::sign::{MerchantSigner, SCHEME};
use crate::wxpay::v3::verify::response_message;
use crate::wxpay::v3::{KeyError, aead, api};
use auth::MerchantAuth;
use keys::SimKeys;

/// The longest `description` v3 takes (string(127)).
const MAX_DESCRIPTION_BYTES: usize = 127;

/// The v3 side of the simulator: the merchant it serves and its own keys.
pub struct V3Side {
    merchant: crate::wxpay::v3::Merchant,
    auth: MerchantAuth,
    keys: SimKeys,
    /// Bills handed out by `tradebill`, by download token (gzip bytes).
    bills: std::sync::Mutex<std::collections::VecDeque<(String, Vec<u8>)>>,
}

/// How many bill downloads are kept ready (a download URL lives minutes).
const BILLS_KEPT: usize = 32;
const BILL_PATH: &str = "/v3/bill/tradebill";
const BILL_DOWNLOAD_PATH: &str = "/v3/billdownload/file";

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

fn param_error(message: impl Into<String>) -> ApiError {
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
        .route(BILL_DOWNLOAD_PATH, web::get().to(download_bill))
        .route("/v3/sim-keys", web::get().to(sim_keys));
}

async fn trade_bill(req: HttpRequest, sim: web::Data<Simulator>, body: web::Bytes) -> HttpResponse {
    answer(&sim, &req, &body, Endpoint::TradeBill).await
}

/// `GET /v3/bill/tradebill`: the day's bill from the ledger, kept under a
/// token; the answer names its download URL (on this simulator, wherever it
/// is mounted) and the SHA-1 of the uncompressed file.
fn tradebill(
    sim: &Simulator,
    req: &HttpRequest,
    auth_mchid: &str,
) -> Result<(u16, Vec<u8>), ApiError> {
    #[derive(Deserialize)]
    struct Q {
        bill_date: Option<String>,
        bill_type: Option<String>,
        tar_type: Option<String>,
    }
    let q = web::Query::<Q>::from_query(req.query_string())
        .map_err(|_| param_error("查询参数格式错误"))?;
    let day: jiff::civil::Date = q
        .bill_date
        .as_deref()
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| param_error("bill_date格式错误，应为yyyy-MM-DD"))?;
    if !matches!(q.bill_type.as_deref(), None | Some("ALL") | Some("SUCCESS")) {
        return Err(param_error("bill_type参数错误"));
    }
    let gzip = match q.tar_type.as_deref() {
        None => false,
        Some("GZIP") => true,
        Some(_) => return Err(param_error("tar_type参数错误")),
    };
    let today = Timestamp::now()
        .to_zoned(crate::wxpay::bill::beijing())
        .date();
    if day > today {
        return Err(ApiError::new(
            400,
            "STATEMENT_CREATING",
            "账单生成中，请稍后再试",
        ));
    }
    let v3 = sim.v3();
    let bill = super::bill::day_bill(
        &sim.ledger(),
        super::bill::BillOf::V3 { mchid: auth_mchid },
        &v3.merchant.appid,
        auth_mchid,
        day,
        &sim.faults(),
    );
    if bill.rows.is_empty() {
        return Err(ApiError::new(400, "NO_STATEMENT_EXIST", "账单文件不存在"));
    }
    let text = crate::wxpay::bill::render(&bill);
    let file = if gzip {
        crate::base::gzip::gzip(text.as_bytes())
    } else {
        text.clone().into_bytes()
    };
    let token = Alphanumeric.sample_string(&mut rand::rng(), 24);
    {
        let mut kept = v3.bills.lock_or_recover();
        kept.push_back((token.clone(), file));
        while kept.len() > BILLS_KEPT {
            kept.pop_front();
        }
    }
    let info = req.connection_info();
    let prefix = req.path().strip_suffix(BILL_PATH).unwrap_or("");
    let answer = crate::wxpay::v3::bill::TradeBill {
        hash_type: "SHA1".into(),
        hash_value: crate::wxpay::v3::bill::sha1_hex(text.as_bytes()),
        download_url: format!(
            "{}://{}{prefix}{BILL_DOWNLOAD_PATH}?token={token}",
            info.scheme(),
            info.host()
        ),
    };
    Ok((200, json(&answer)?))
}

/// `GET {download_url}`: the file, after the request's signature is checked;
/// the answer is not signed (as WeChat Pay's is not).
async fn download_bill(req: HttpRequest, sim: web::Data<Simulator>) -> HttpResponse {
    let v3 = sim.v3();
    if let Err(e) = verify_request(v3, &req, b"", Timestamp::now()) {
        return e.response();
    }
    #[derive(Deserialize)]
    struct Q {
        token: String,
    }
    let Ok(q) = web::Query::<Q>::from_query(req.query_string()) else {
        return param_error("缺少参数token").response();
    };
    let file = v3
        .bills
        .lock_or_recover()
        .iter()
        .find(|(t, _)| *t == q.token)
        .map(|(_, f)| f.clone());
    match file {
        Some(f) => HttpResponse::Ok()
            .content_type("application/octet-stream")
            .body(f),
        None => ApiError::new(400, "INVALID_REQUEST", "下载链接已过期").response(),
    }
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

/// A refund as v3's answer, its query and its notification describe it.
pub fn refund_object(r: &SimRefund) -> RefundAnswer {
    let status = match r.status {
        RefundStatusV2::Success => RefundState::Success,
        RefundStatusV2::Closed => RefundState::Closed,
        RefundStatusV2::Change => RefundState::Abnormal,
        RefundStatusV2::Processing | RefundStatusV2::Unknown(_) => RefundState::Processing,
    };
    RefundAnswer {
        refund_id: r.refund_id.clone(),
        out_refund_no: r.out_refund_no.clone(),
        transaction_id: r.transaction_id.clone(),
        out_trade_no: r.out_trade_no.clone(),
        channel: Some("ORIGINAL".into()),
        user_received_account: Some(SIM_ACCOUNT.into()),
        success_time: r.success_time.map(api::format_time),
        create_time: Some(api::format_time(r.created_at)),
        status: status.as_str().to_string(),
        amount: RefundAmount {
            total: r.total_fee.get(),
            refund: r.refund_fee.get(),
            payer_total: Some(r.total_fee.get()),
            payer_refund: Some(r.refund_fee.get()),
            currency: Some("CNY".into()),
        },
    }
}

/// `POST /v3/refund/domestic/refunds` for the merchant `auth_mchid`.
fn create_refund(
    sim: &Simulator,
    body: &[u8],
    auth_mchid: &str,
    serial: &str,
    now: Timestamp,
) -> Result<(u16, Vec<u8>), ApiError> {
    let faults = sim.faults();
    let r: RefundCreate = serde_json::from_slice(body)
        .map_err(|e| param_error(format!("输入源“/body”映射到字段失败: {e}")))?;
    // A resend of a refund the gateway accepted is answered with that refund,
    // as WeChat Pay does: the trouble a new request may meet is not rolled.
    let resent = sim.ledger().refunds.get(&r.out_refund_no).is_some();
    if !resent && roll(faults.refund_systemerror_rate) {
        return Err(ApiError::new(
            500,
            "SYSTEM_ERROR",
            "系统超时，请不要更换商户退款单号，请使用相同参数再次调用API",
        ));
    }
    if crate::values::trade::OutRefundNo::new(&r.out_refund_no).is_err() {
        return Err(param_error("out_refund_no格式错误"));
    }
    if r.transaction_id.is_none() && r.out_trade_no.is_none() {
        return Err(param_error("transaction_id和out_trade_no必须二选一"));
    }
    if r.amount.currency != "CNY" {
        return Err(param_error("amount.currency仅支持CNY"));
    }
    if r.amount.refund < 1 || r.amount.total < 1 {
        return Err(param_error("amount.refund和amount.total必须大于0"));
    }
    if r.reason.as_ref().is_some_and(|x| x.len() > 80) {
        return Err(param_error("reason长度超过限制"));
    }
    if !resent && roll(faults.refund_notenough_rate) {
        return Err(ApiError::new(
            403,
            "NOT_ENOUGH",
            "基本账户余额不足,请充值后重新发起",
        ));
    }
    let mut ledger = sim.ledger();
    let ours = match (&r.transaction_id, &r.out_trade_no) {
        (Some(t), _) => ledger.get_by_transaction(t),
        (None, Some(o)) => ledger.get(o),
        (None, None) => None,
    }
    .is_some_and(|o| o.req.v3.as_ref().is_some_and(|v| v.mchid == auth_mchid));
    if !ours {
        return Err(ApiError::new(404, "RESOURCE_NOT_EXISTS", "订单不存在"));
    }
    let ask = RefundAsk {
        transaction_id: r.transaction_id.as_deref(),
        out_trade_no: r.out_trade_no.as_deref(),
        out_refund_no: &r.out_refund_no,
        total_fee: Fen::new(r.amount.total),
        refund_fee: Fen::new(r.amount.refund),
        notify_url: r.notify_url.as_deref(),
    };
    let (refund, new) = refunds::accept(&mut ledger, &ask, now).map_err(|refusal| match refusal
        .code
    {
        ErrCode::OrderNotExist => ApiError::new(404, "RESOURCE_NOT_EXISTS", refusal.description),
        _ => ApiError::new(400, "INVALID_REQUEST", refusal.description),
    })?;
    if new {
        ledger.refunds.mark_v3(&refund.out_refund_no, serial);
        tokio::spawn(refunds::finish(
            sim.clone(),
            refund.out_refund_no.clone(),
            std::time::Duration::from_millis(faults.refund_delay_ms),
            roll(faults.refund_abnormal_rate),
        ));
    }
    Ok((200, json(&refund_object(&refund))?))
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
fn verify_request(
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

fn json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, ApiError> {
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
        Endpoint::Native => {
            let new = parse_native(sim, body, auth_mchid, serial, now)?;
            let order = sim.ledger().create(new, now).map_err(|r| match r.code {
                ErrCode::OrderPaid => ApiError::new(400, "ORDER_PAID", "该订单已支付"),
                ErrCode::OrderClosed => ApiError::new(400, "ORDER_CLOSED", "该订单已关闭"),
                _ => param_error("订单重入参数校验失败"),
            })?;
            Ok((200, json(&serde_json::json!({"code_url": order.code_url}))?))
        }
        Endpoint::Query(out_trade_no) => {
            #[derive(Deserialize)]
            struct Q {
                mchid: Option<String>,
            }
            let q = web::Query::<Q>::from_query(req.query_string())
                .map_err(|_| param_error("查询参数格式错误"))?;
            match q.mchid.as_deref() {
                None | Some("") => return Err(param_error("缺少参数mchid")),
                Some(m) if m != auth_mchid => {
                    return Err(param_error("mchid与Authorization中的mchid不一致"));
                }
                Some(_) => {}
            }
            let ledger = sim.ledger();
            let order = ledger
                .get(&out_trade_no)
                .filter(|o| o.req.v3.as_ref().is_some_and(|v| v.mchid == auth_mchid))
                .ok_or_else(|| ApiError::new(404, "ORDER_NOT_EXIST", "订单不存在"))?;
            Ok((200, json(&transaction(order))?))
        }
        Endpoint::Close(out_trade_no) => {
            #[derive(Deserialize)]
            struct C {
                mchid: String,
            }
            let c: C = serde_json::from_slice(body)
                .map_err(|_| param_error("请求体缺少参数mchid或不是合法的JSON"))?;
            if c.mchid != auth_mchid {
                return Err(param_error("mchid与Authorization中的mchid不一致"));
            }
            let mut ledger = sim.ledger();
            let ours = ledger
                .get(&out_trade_no)
                .is_some_and(|o| o.req.v3.as_ref().is_some_and(|v| v.mchid == auth_mchid));
            if !ours {
                // Observed: closing an unknown out_trade_no answers 204 too.
                return Ok((204, Vec::new()));
            }
            match ledger.close(&out_trade_no, now, sim.min_close_age()) {
                Ok(()) => Ok((204, Vec::new())),
                // Closing is re-entrant (关单接口可重入).
                Err(r) if matches!(r.code, ErrCode::OrderClosed | ErrCode::OrderNotExist) => {
                    Ok((204, Vec::new()))
                }
                Err(r) if r.code == ErrCode::OrderPaid => {
                    Err(ApiError::new(400, "ORDER_PAID", "订单已支付，不能发起关单"))
                }
                Err(r) => Err(ApiError::new(400, "INVALID_REQUEST", r.description)),
            }
        }
        Endpoint::Refund => create_refund(sim, body, auth_mchid, serial, now),
        Endpoint::TradeBill => tradebill(sim, req, auth_mchid),
        Endpoint::RefundQuery(out_refund_no) => {
            let ledger = sim.ledger();
            let refund = ledger
                .refunds
                .get(&out_refund_no)
                .filter(|r| r.v3_serial.is_some())
                .filter(|r| {
                    ledger
                        .get(&r.out_trade_no)
                        .and_then(|o| o.req.v3.as_ref())
                        .is_some_and(|v| v.mchid == auth_mchid)
                })
                .ok_or_else(|| ApiError::new(404, "RESOURCE_NOT_EXISTS", "退款单不存在"))?;
            Ok((200, json(&refund_object(refund))?))
        }
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

#[derive(Deserialize)]
struct NativeRequest {
    appid: String,
    mchid: String,
    description: String,
    out_trade_no: String,
    #[serde(default)]
    time_expire: Option<String>,
    #[serde(default)]
    attach: Option<String>,
    notify_url: String,
    amount: NativeAmount,
    #[serde(default)]
    scene_info: Option<NativeScene>,
}

#[derive(Deserialize)]
struct NativeAmount {
    total: i64,
    #[serde(default)]
    currency: Option<String>,
}

#[derive(Deserialize)]
struct NativeScene {
    #[serde(default)]
    payer_client_ip: String,
}

fn parse_native(
    sim: &Simulator,
    body: &[u8],
    auth_mchid: &str,
    serial: &str,
    now: Timestamp,
) -> Result<NewOrder, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| param_error("请求体不是合法的JSON"))?;
    let r: NativeRequest = serde_json::from_value(value.clone())
        .map_err(|e| param_error(format!("输入源“/body”映射到字段失败: {e}")))?;
    if r.mchid != auth_mchid {
        return Err(param_error("mchid与Authorization中的mchid不一致"));
    }
    if r.appid != sim.v3().merchant.appid {
        return Err(ApiError::new(
            400,
            "APPID_MCHID_NOT_MATCH",
            "appid和mch_id不匹配",
        ));
    }
    if r.description.is_empty() {
        // What WeChat Pay really answers to an empty description (§1.1).
        return Err(ApiError::new(500, "SYSTEM_ERROR", "系统繁忙,请稍后重试"));
    }
    if r.description.len() > MAX_DESCRIPTION_BYTES {
        return Err(param_error("description长度超过限制"));
    }
    let out_trade_no = OutTradeNo::new(r.out_trade_no.as_str())
        .map_err(|_| param_error("out_trade_no格式错误"))?;
    if !(r.notify_url.starts_with("http://") || r.notify_url.starts_with("https://"))
        || r.notify_url.contains('?')
        || r.notify_url.len() > 255
    {
        return Err(param_error("notify_url格式错误"));
    }
    if r.amount.total < 1 {
        return Err(param_error("amount.total必须大于0"));
    }
    if r.amount.currency.as_deref().is_some_and(|c| c != "CNY") {
        return Err(param_error("amount.currency仅支持CNY"));
    }
    let time_expire = r
        .time_expire
        .as_deref()
        .map(|t| {
            t.parse::<Timestamp>()
                .map_err(|_| param_error("time_expire格式错误，应为yyyy-MM-DDTHH:mm:ss+TIMEZONE"))
        })
        .transpose()?;
    if time_expire.is_some_and(|t| t <= now) {
        return Err(param_error("time_expire已过期"));
    }
    if r.attach.as_ref().is_some_and(|a| a.len() > 128) {
        return Err(param_error("attach长度超过限制"));
    }
    Ok(NewOrder {
        out_trade_no,
        body: r.description,
        attach: r.attach,
        total_fee: Fen::new(r.amount.total),
        notify_url: r.notify_url,
        product_id: String::new(),
        spbill_create_ip: r.scene_info.map(|s| s.payer_client_ip).unwrap_or_default(),
        time_expire,
        sign_type: SignType::Md5,
        v3: Some(V3Terms {
            appid: r.appid,
            mchid: r.mchid,
            request: value,
            sign_serial: serial.to_string(),
        }),
    })
}

/// An order as v3 query answers and payment notifications describe it. An
/// unpaid order's amount has no `currency`, as observed.
pub fn transaction(order: &SimOrder) -> serde_json::Value {
    let (appid, mchid) = order
        .req
        .v3
        .as_ref()
        .map_or(("", ""), |v| (v.appid.as_str(), v.mchid.as_str()));
    let total = order.req.total_fee.get();
    let mut t = serde_json::json!({
        "appid": appid,
        "mchid": mchid,
        "out_trade_no": order.req.out_trade_no.as_str(),
        "attach": order.req.attach.as_deref().unwrap_or(""),
        "promotion_detail": [],
        "scene_info": {"device_id": ""},
    });
    match &order.state {
        SimTradeState::NotPay | SimTradeState::Closed => {
            let closed = order.state == SimTradeState::Closed;
            let state = if closed {
                TradeState::Closed
            } else {
                TradeState::NotPay
            };
            t["trade_state"] = state.as_str().into();
            t["trade_state_desc"] = if closed {
                "订单已关闭"
            } else {
                "订单未支付"
            }
            .into();
            t["amount"] = serde_json::json!({"payer_currency": "CNY", "total": total});
        }
        SimTradeState::Paid(p) => {
            t["trade_state"] = TradeState::Success.as_str().into();
            t["trade_state_desc"] = "支付成功".into();
            t["trade_type"] = "NATIVE".into();
            t["bank_type"] = "OTHERS".into();
            t["transaction_id"] = p.transaction_id.as_str().into();
            t["success_time"] = api::format_time(p.time_end).into();
            t["payer"] = serde_json::json!({"openid": p.openid});
            t["amount"] = serde_json::json!({
                "currency": "CNY", "payer_currency": "CNY", "payer_total": total, "total": total
            });
        }
    }
    t
}
