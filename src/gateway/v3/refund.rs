//! API v3 refunds behind the seam (the adapter's refund half, kept apart from
//! `wxpay_v3.rs`): the domain's refund request as v3 JSON, v3 refund states
//! and errors in the shop's terms, and `REFUND.*` notifications as notices.

use crate::checkout::gateway::{
    GatewayError, Notice, RefundFacts, RefundRequest, RefundStatus, Refusal,
};
use crate::values::money::Fen;
use crate::values::trade::{OutRefundNo, OutTradeNo, TransactionId};
use crate::wxpay::v3::client::{V3Client, V3Error};
use crate::wxpay::v3::refund::{
    RefundAmountReq, RefundAnswer, RefundCreate, RefundNotice, RefundState as V3RefundState,
};

pub(super) async fn refund(
    client: &V3Client,
    req: &RefundRequest,
    notify_url: &str,
) -> Result<RefundStatus, GatewayError> {
    let body = create_body(req, notify_url);
    let answer = client.refund(&body).await.map_err(refund_error)?;
    if answer.out_refund_no != req.out_refund_no.as_str() {
        return Err(GatewayError::Unbelievable(
            "the answer is for another refund".into(),
        ));
    }
    status(&answer.status, facts(&answer))
}

pub(super) async fn query(
    client: &V3Client,
    out_refund_no: &OutRefundNo,
) -> Result<RefundStatus, GatewayError> {
    let answer = client
        .query_refund(out_refund_no.as_str())
        .await
        .map_err(refund_error)?;
    if answer.out_refund_no != out_refund_no.as_str() {
        return Err(GatewayError::Unbelievable(
            "the answer is for another refund".into(),
        ));
    }
    status(&answer.status, facts(&answer))
}

/// Every field is fixed by the refund's row, so a resend is the same request.
fn create_body(req: &RefundRequest, notify_url: &str) -> RefundCreate {
    RefundCreate {
        transaction_id: req.transaction_id.as_ref().map(|t| t.to_string()),
        out_trade_no: match req.transaction_id {
            Some(_) => None,
            None => Some(req.out_trade_no.to_string()),
        },
        out_refund_no: req.out_refund_no.to_string(),
        reason: RefundCreate::reason(&req.reason),
        notify_url: Some(notify_url.to_string()),
        amount: RefundAmountReq {
            refund: req.amount.get(),
            total: req.total.get(),
            currency: "CNY".into(),
        },
    }
}

fn facts(a: &RefundAnswer) -> RefundFacts {
    RefundFacts {
        refund_id: Some(a.refund_id.clone()),
        account: a.user_received_account.clone(),
        amount: Some(Fen::new(a.amount.refund)),
        succeeded_at: super::mapping::paid_at(a.success_time.as_deref()),
    }
}

/// The one mapping of v3 refund states to the shop's (`status` in answers,
/// `refund_status` in notifications: the same values).
fn status(s: &str, facts: RefundFacts) -> Result<RefundStatus, GatewayError> {
    Ok(match V3RefundState::parse(s) {
        V3RefundState::Success => RefundStatus::Succeeded(facts),
        V3RefundState::Processing => RefundStatus::Processing(facts),
        V3RefundState::Closed => RefundStatus::Closed(facts),
        V3RefundState::Abnormal => RefundStatus::Abnormal(facts),
        // Not known to this version: not final, so it is asked about again.
        V3RefundState::Unknown(_) => RefundStatus::Processing(facts),
    })
}

/// v3 refund failures: the two codes refunds have of their own, else the
/// one mapping every v3 call shares.
fn refund_error(e: V3Error) -> GatewayError {
    match e {
        V3Error::Api {
            raw_code, message, ..
        } if matches!(
            raw_code.replace('_', "").as_str(),
            "NOTENOUGH" | "RESOURCENOTEXISTS"
        ) =>
        {
            let kind = if raw_code.replace('_', "") == "NOTENOUGH" {
                Refusal::NotEnough
            } else {
                Refusal::NoSuchRefund
            };
            GatewayError::Business {
                kind,
                code: raw_code,
                message,
            }
        }
        e => super::mapping::gateway_error(e),
    }
}

/// A verified, decrypted `REFUND.*` notification, for our merchant only.
pub(super) fn refund_notice(n: RefundNotice, mchid: &str) -> Result<Notice, String> {
    if n.mchid != mchid {
        return Err("the refund is for another merchant".into());
    }
    let out_refund_no = OutRefundNo::new(n.out_refund_no.clone()).map_err(|e| e.to_string())?;
    let out_trade_no = (!n.out_trade_no.is_empty())
        .then(|| OutTradeNo::new(n.out_trade_no.clone()))
        .transpose()
        .map_err(|e| e.to_string())?;
    let transaction_id = (!n.transaction_id.is_empty())
        .then(|| TransactionId::new(n.transaction_id.clone()))
        .transpose()
        .map_err(|e| e.to_string())?;
    let facts = RefundFacts {
        refund_id: Some(n.refund_id.clone()),
        account: n.user_received_account.clone(),
        amount: Some(Fen::new(n.amount.refund)),
        succeeded_at: super::mapping::paid_at(n.success_time.as_deref()),
    };
    let status = status(&n.refund_status, facts).map_err(|e| e.to_string())?;
    Ok(Notice::Refund {
        out_refund_no,
        out_trade_no,
        transaction_id,
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::order::RefundState;
    use crate::values::trade::TransactionId;
    use crate::wxpay::v3::api::ErrorCode;

    #[test]
    fn the_request_carries_the_recorded_refund() {
        let req = RefundRequest {
            out_trade_no: OutTradeNo::new("SP1").unwrap(),
            transaction_id: Some(TransactionId::new("4200000001").unwrap()),
            out_refund_no: OutRefundNo::new("R1").unwrap(),
            amount: Fen::new(100),
            total: Fen::new(1000),
            reason: "broken cup".into(),
        };
        let json = serde_json::to_value(create_body(&req, "https://shop.example/wxpay/v3/notify"))
            .unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "transaction_id": "4200000001",
                "out_refund_no": "R1",
                "reason": "broken cup",
                "notify_url": "https://shop.example/wxpay/v3/notify",
                "amount": {"refund": 100, "total": 1000, "currency": "CNY"}
            })
        );
    }

    #[test]
    fn every_v3_refund_state_and_error_has_one_meaning() {
        let f = RefundFacts::default;
        for (s, want) in [
            ("SUCCESS", RefundState::Succeeded),
            ("PROCESSING", RefundState::Processing),
            ("CLOSED", RefundState::Closed),
            ("ABNORMAL", RefundState::Abnormal),
            ("NEW", RefundState::Processing),
        ] {
            assert_eq!(status(s, f()).unwrap().state(), want, "{s}");
        }
        let api = |status, code: &str| V3Error::Api {
            status,
            code: ErrorCode::parse(code),
            raw_code: code.into(),
            message: "m".into(),
        };
        let poor = refund_error(api(403, "NOT_ENOUGH"));
        assert_eq!(poor.refusal(), Some(Refusal::NotEnough));
        assert!(!poor.is_retryable());
        assert_eq!(
            refund_error(api(404, "RESOURCE_NOT_EXISTS")).refusal(),
            Some(Refusal::NoSuchRefund)
        );
        assert!(refund_error(api(500, "SYSTEM_ERROR")).is_retryable());
        assert!(refund_error(api(429, "FREQUENCY_LIMITED")).is_retryable());
        assert!(matches!(
            refund_error(api(400, "PARAM_ERROR")),
            GatewayError::Protocol(_)
        ));
    }

    #[test]
    fn refund_events_become_refund_notices_for_our_merchant_only() {
        let plain = serde_json::json!({
            "mchid": "1900007291", "transaction_id": "1008450740201411110005820873",
            "out_trade_no": "20150806125346", "refund_id": "50200207182018070300011301001",
            "out_refund_no": "7752501201407033233368018", "refund_status": "ABNORMAL",
            "user_received_account": "招商银行信用卡0403",
            "amount": {"total": 999, "refund": 999, "payer_total": 999, "payer_refund": 999}
        });
        let Ok(Notice::Refund {
            out_refund_no,
            status,
            ..
        }) = refund_notice(serde_json::from_value(plain.clone()).unwrap(), "1900007291")
        else {
            panic!("a refund notice");
        };
        assert_eq!(out_refund_no.as_str(), "7752501201407033233368018");
        assert_eq!(status.state(), RefundState::Abnormal);
        assert_eq!(status.facts().amount, Some(Fen::new(999)));
        assert!(refund_notice(serde_json::from_value(plain).unwrap(), "1900000000").is_err());
    }
}
