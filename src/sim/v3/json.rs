//! How v3 describes a trade and a refund: what its query answers and its
//! notifications carry alike.

use crate::sim::ledger::{SIM_ACCOUNT, SimRefund};
use crate::sim::ledger::{SimOrder, SimTradeState};
use crate::wxpay::v2::refund::RefundStatusV2;
use crate::wxpay::v3::api::{self, TradeState};
use crate::wxpay::v3::refund::{RefundAmount, RefundAnswer, RefundState};

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
