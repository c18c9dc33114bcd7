//! `pay/unifiedorder`, `pay/orderquery`, `pay/closeorder`: the real validation,
//! error codes and signed answers, with faults applied at one choke point.

use actix_web::{HttpResponse, web};
use jiff::{SignedDuration, Timestamp};

use super::Simulator;
use super::faults::roll;
use super::ledger::{NewOrder, Refusal, SimOrder, SimTradeState};
use crate::values::money::Fen;
use crate::wxpay::v2::notify::return_fail;
use crate::wxpay::v2::types::{format_time, parse_time};
use crate::wxpay::v2::xml::{self, Fields, XmlError};
use crate::wxpay::v2::{ErrCode, OutTradeNo, SignType, TradeState, client::nonce, sign};

/// The gateway refuses a NATIVE `time_expire` closer than this to `time_start`.
const MIN_NATIVE_EXPIRY: SignedDuration = SignedDuration::from_secs(5 * 60);

/// How a request failed: at the communication level or the business level.
enum Failure {
    Return(String),
    Result(Refusal),
}

impl From<Refusal> for Failure {
    fn from(r: Refusal) -> Self {
        Failure::Result(r)
    }
}

fn invalid(code: ErrCode, description: impl Into<String>) -> Failure {
    Failure::Result(Refusal {
        code,
        description: description.into(),
    })
}

#[derive(Clone, Copy)]
pub enum Api {
    UnifiedOrder,
    OrderQuery,
    CloseOrder,
    Refund,
    RefundQuery,
}

pub async fn unifiedorder(sim: web::Data<Simulator>, body: web::Bytes) -> HttpResponse {
    answer(&sim, Api::UnifiedOrder, &body).await
}

pub async fn orderquery(sim: web::Data<Simulator>, body: web::Bytes) -> HttpResponse {
    answer(&sim, Api::OrderQuery, &body).await
}

pub async fn closeorder(sim: web::Data<Simulator>, body: web::Bytes) -> HttpResponse {
    answer(&sim, Api::CloseOrder, &body).await
}

/// `secapi/pay/refund`: with `--client-ca`, only over a connection that
/// presented a client certificate signed by that CA.
pub async fn refund(
    req: actix_web::HttpRequest,
    sim: web::Data<Simulator>,
    body: web::Bytes,
) -> HttpResponse {
    if sim.requires_client_certificate()
        && req.conn_data::<super::tls::ClientCertificate>().is_none()
    {
        return xml_response(
            HttpResponse::Ok(),
            &return_fail("证书错误: this call needs the merchant's API certificate (mutual TLS)"),
        );
    }
    answer(&sim, Api::Refund, &body).await
}

pub async fn refundquery(sim: web::Data<Simulator>, body: web::Bytes) -> HttpResponse {
    answer(&sim, Api::RefundQuery, &body).await
}

pub async fn require_post() -> HttpResponse {
    xml_response(HttpResponse::Ok(), &return_fail("请使用post方法"))
}

fn xml_response(mut builder: actix_web::HttpResponseBuilder, fields: &Fields) -> HttpResponse {
    builder
        .content_type("text/xml; charset=utf-8")
        .body(xml::to_xml(fields))
}

/// The one choke point: faults, then parsing, signature, the endpoint, and the signed answer.
async fn answer(sim: &Simulator, api: Api, body: &[u8]) -> HttpResponse {
    let faults = sim.faults();
    if let Some(failed) = faults.delay_or_fail().await {
        return failed;
    }
    if roll(faults.bad_xml_rate) {
        return HttpResponse::Ok()
            .content_type("text/xml")
            .body("<xml><return_code><![CDATA[SUCC");
    }
    let request = match xml::from_xml(body) {
        Ok(f) => f,
        Err(XmlError::Empty) => {
            return xml_response(HttpResponse::Ok(), &return_fail("post数据为空"));
        }
        Err(XmlError::NotUtf8) => {
            return xml_response(HttpResponse::Ok(), &return_fail("编码格式错误"));
        }
        Err(_) => return xml_response(HttpResponse::Ok(), &return_fail("XML格式错误")),
    };
    let sign_type = match request.non_empty("sign_type") {
        None => SignType::Md5,
        Some(s) => match s.parse::<SignType>() {
            Ok(st) => st,
            Err(_) => return xml_response(HttpResponse::Ok(), &return_fail("sign_type参数错误")),
        },
    };
    let outcome = if roll(faults.systemerror_rate) {
        Err(invalid(ErrCode::SystemError, "系统繁忙，请稍后再试"))
    } else {
        handle(sim, api, &request, sign_type)
    };
    let merchant = sim.merchant();
    let mut out = Fields::new();
    match outcome {
        Err(Failure::Return(msg)) => return xml_response(HttpResponse::Ok(), &return_fail(&msg)),
        Ok(business) => {
            envelope(&mut out, &request);
            out.set("result_code", "SUCCESS");
            for (k, v) in business.iter() {
                out.set(k, v);
            }
        }
        Err(Failure::Result(r)) => {
            envelope(&mut out, &request);
            out.set("result_code", "FAIL");
            out.set("err_code", r.code.as_str());
            out.set("err_code_des", r.description);
        }
    }
    sign::sign_fields(&mut out, &merchant.key, sign_type);
    if roll(faults.bad_sign_rate) {
        let wrong = if sign_type == SignType::Md5 {
            "0"
        } else {
            "00"
        }
        .repeat(32);
        out.set("sign", wrong);
    }
    xml_response(HttpResponse::Ok(), &out)
}

fn envelope(out: &mut Fields, request: &Fields) {
    out.set("return_code", "SUCCESS");
    out.set("return_msg", "OK");
    out.set("appid", request.get("appid").unwrap_or(""));
    out.set("mch_id", request.get("mch_id").unwrap_or(""));
    out.set("nonce_str", nonce());
}

fn need<'a>(f: &'a Fields, key: &str) -> Result<&'a str, Failure> {
    f.non_empty(key)
        .ok_or_else(|| invalid(ErrCode::LackParams, format!("缺少参数{key}")))
}

fn handle(sim: &Simulator, api: Api, req: &Fields, sign_type: SignType) -> Result<Fields, Failure> {
    let merchant = sim.merchant();
    need(req, "appid")?;
    need(req, "mch_id")?;
    if req.get("mch_id") != Some(merchant.mch_id.as_str()) {
        return Err(invalid(ErrCode::MchidNotExist, "商户号不存在"));
    }
    if req.get("appid") != Some(merchant.appid.as_str()) {
        return Err(invalid(ErrCode::AppidMchidNotMatch, "appid和mch_id不匹配"));
    }
    let nonce_str = need(req, "nonce_str")?;
    if nonce_str.len() > 32 {
        return Err(invalid(ErrCode::InvalidRequest, "nonce_str长度不能超过32"));
    }
    if req.non_empty("sign").is_none() {
        return Err(Failure::Return("缺少参数sign".into()));
    }
    if sign::verify(req, &merchant.key).is_err() {
        return Err(Failure::Return("签名错误".into()));
    }
    let now = Timestamp::now();
    match api {
        Api::UnifiedOrder => {
            let new = parse_unifiedorder(req, sign_type, now)?;
            let order = sim.ledger().create(new, now)?;
            let mut f = Fields::new();
            f.set("trade_type", "NATIVE");
            f.set("prepay_id", order.prepay_id);
            f.set("code_url", order.code_url);
            Ok(f)
        }
        Api::OrderQuery => {
            let ledger = sim.ledger();
            let order = match (
                req.non_empty("transaction_id"),
                req.non_empty("out_trade_no"),
            ) {
                (Some(t), _) => ledger.get_by_transaction(t),
                (None, Some(o)) => ledger.get(o),
                (None, None) => {
                    return Err(invalid(
                        ErrCode::LackParams,
                        "缺少参数out_trade_no或transaction_id",
                    ));
                }
            };
            let order = order.ok_or_else(|| invalid(ErrCode::OrderNotExist, "订单不存在"))?;
            Ok(query_fields(order))
        }
        Api::CloseOrder => {
            let no = need(req, "out_trade_no")?;
            sim.ledger().close(no, now, sim.min_close_age())?;
            Ok(Fields::new())
        }
        Api::Refund => Ok(super::refunds::refund(sim, req)?),
        Api::RefundQuery => Ok(super::refunds::query(sim, req)?),
    }
}

fn parse_unifiedorder(
    req: &Fields,
    sign_type: SignType,
    now: Timestamp,
) -> Result<NewOrder, Failure> {
    let body = need(req, "body")?;
    if body.len() > 128 {
        return Err(invalid(ErrCode::InvalidRequest, "body参数长度有误"));
    }
    let out_trade_no = OutTradeNo::new(need(req, "out_trade_no")?)
        .map_err(|_| invalid(ErrCode::InvalidRequest, "out_trade_no参数格式错误"))?;
    let total_fee = need(req, "total_fee")?
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| invalid(ErrCode::InvalidRequest, "total_fee参数错误"))?;
    if req.non_empty("fee_type").is_some_and(|f| f != "CNY") {
        return Err(invalid(ErrCode::InvalidRequest, "fee_type参数错误"));
    }
    let spbill_create_ip = need(req, "spbill_create_ip")?;
    let notify_url = need(req, "notify_url")?;
    if !(notify_url.starts_with("http://") || notify_url.starts_with("https://"))
        || notify_url.contains('?')
        || notify_url.len() > 256
    {
        return Err(invalid(ErrCode::InvalidRequest, "notify_url参数错误"));
    }
    match need(req, "trade_type")? {
        "NATIVE" => {}
        "JSAPI" | "APP" | "MWEB" => {
            return Err(invalid(ErrCode::InvalidRequest, "模拟器只支持NATIVE"));
        }
        _ => return Err(invalid(ErrCode::InvalidRequest, "trade_type参数错误")),
    }
    let product_id = need(req, "product_id").map_err(|_| {
        invalid(
            ErrCode::LackParams,
            "trade_type=NATIVE时，product_id为必填参数",
        )
    })?;
    if product_id.len() > 32 {
        return Err(invalid(ErrCode::InvalidRequest, "product_id参数长度有误"));
    }
    let time = |key: &str| -> Result<Option<Timestamp>, Failure> {
        req.non_empty(key)
            .map(|s| {
                parse_time(s)
                    .map_err(|_| invalid(ErrCode::InvalidRequest, format!("{key}参数格式错误")))
            })
            .transpose()
    };
    let time_start = time("time_start")?.unwrap_or(now);
    let time_expire = time("time_expire")?;
    if let Some(te) = time_expire
        && (te.duration_since(time_start) < MIN_NATIVE_EXPIRY || te <= now)
    {
        return Err(invalid(
            ErrCode::InvalidRequest,
            "time_expire时间过短，刷卡至少1分钟，其他5分钟",
        ));
    }
    let attach = req.non_empty("attach").map(str::to_string);
    if attach.as_ref().is_some_and(|a| a.len() > 127) {
        return Err(invalid(ErrCode::InvalidRequest, "attach参数长度有误"));
    }
    Ok(NewOrder {
        out_trade_no,
        body: body.to_string(),
        attach,
        total_fee: Fen::new(total_fee),
        notify_url: notify_url.to_string(),
        product_id: product_id.to_string(),
        spbill_create_ip: spbill_create_ip.to_string(),
        time_expire,
        sign_type,
        v3: None,
    })
}

fn query_fields(order: &SimOrder) -> Fields {
    let mut f = Fields::new();
    f.set("out_trade_no", order.req.out_trade_no.as_str());
    f.set("attach", order.req.attach.as_deref().unwrap_or(""));
    f.set("trade_type", "NATIVE");
    f.set("total_fee", order.req.total_fee.get().to_string());
    f.set("fee_type", "CNY");
    match &order.state {
        SimTradeState::NotPay => {
            f.set("trade_state", TradeState::NotPay.as_str());
            f.set("trade_state_desc", "订单未支付");
        }
        SimTradeState::Closed => {
            f.set("trade_state", TradeState::Closed.as_str());
            f.set("trade_state_desc", "订单已关闭");
        }
        SimTradeState::Paid(p) => {
            f.set("trade_state", TradeState::Success.as_str());
            f.set("trade_state_desc", "支付成功");
            f.set("transaction_id", p.transaction_id.as_str());
            f.set("openid", p.openid.as_str());
            f.set("is_subscribe", "N");
            f.set("bank_type", "OTHERS");
            f.set("cash_fee", order.req.total_fee.get().to_string());
            f.set("time_end", format_time(p.time_end));
        }
    }
    f
}
