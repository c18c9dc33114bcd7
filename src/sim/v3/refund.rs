//! v3 refunds: the request (checked, then accepted into the simulator's
//! refund book) and its query.

use jiff::Timestamp;

use super::json::refund_object;
use super::{ApiError, Simulator, json, param_error};
use crate::sim::faults::roll;
use crate::sim::refunds::{self, RefundAsk};
use crate::values::money::Fen;
use crate::wxpay::v2::ErrCode;
use crate::wxpay::v3::refund::RefundCreate;

/// `POST /v3/refund/domestic/refunds` for the merchant `auth_mchid`.
pub(super) fn create(
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

/// `GET /v3/refund/domestic/refunds/{out_refund_no}`: ours only.
pub(super) fn query(
    sim: &Simulator,
    out_refund_no: &str,
    auth_mchid: &str,
) -> Result<(u16, Vec<u8>), ApiError> {
    let ledger = sim.ledger();
    let refund = ledger
        .refunds
        .get(out_refund_no)
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
