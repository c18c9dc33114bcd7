//! v3 trades: the NATIVE order (parsed and checked as WeChat Pay checks it),
//! its query and its close.

use actix_web::{HttpRequest, web};
use jiff::Timestamp;
use serde::Deserialize;

use super::json::transaction;
use super::{ApiError, Simulator, json, param_error};
use crate::sim::ledger::{NewOrder, V3Terms};
use crate::values::money::Fen;
use crate::wxpay::v2::{ErrCode, OutTradeNo, SignType};

/// The longest `description` v3 takes (string(127)).
const MAX_DESCRIPTION_BYTES: usize = 127;

/// `POST /v3/pay/transactions/native`.
pub(super) fn native(
    sim: &Simulator,
    body: &[u8],
    auth_mchid: &str,
    serial: &str,
    now: Timestamp,
) -> Result<(u16, Vec<u8>), ApiError> {
    let new = parse_native(sim, body, auth_mchid, serial, now)?;
    let order = sim.ledger().create(new, now).map_err(|r| match r.code {
        ErrCode::OrderPaid => ApiError::new(400, "ORDER_PAID", "该订单已支付"),
        ErrCode::OrderClosed => ApiError::new(400, "ORDER_CLOSED", "该订单已关闭"),
        _ => param_error("订单重入参数校验失败"),
    })?;
    Ok((200, json(&serde_json::json!({"code_url": order.code_url}))?))
}

/// `GET /v3/pay/transactions/out-trade-no/{out_trade_no}`.
pub(super) fn query(
    sim: &Simulator,
    req: &HttpRequest,
    out_trade_no: &str,
    auth_mchid: &str,
) -> Result<(u16, Vec<u8>), ApiError> {
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
        .get(out_trade_no)
        .filter(|o| o.req.v3.as_ref().is_some_and(|v| v.mchid == auth_mchid))
        .ok_or_else(|| ApiError::new(404, "ORDER_NOT_EXIST", "订单不存在"))?;
    Ok((200, json(&transaction(order))?))
}

/// `POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close`.
pub(super) fn close(
    sim: &Simulator,
    body: &[u8],
    out_trade_no: &str,
    auth_mchid: &str,
    now: Timestamp,
) -> Result<(u16, Vec<u8>), ApiError> {
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
        .get(out_trade_no)
        .is_some_and(|o| o.req.v3.as_ref().is_some_and(|v| v.mchid == auth_mchid));
    if !ours {
        // Observed: closing an unknown out_trade_no answers 204 too.
        return Ok((204, Vec::new()));
    }
    match ledger.close(out_trade_no, now, sim.min_close_age()) {
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
