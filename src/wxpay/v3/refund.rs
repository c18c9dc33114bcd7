//! v3 refunds as pure steps: `POST /v3/refund/domestic/refunds` and
//! `GET /v3/refund/domestic/refunds/{out_refund_no}` (the same `Refund`
//! object answers both), and the `REFUND.*` notification's plaintext.
//! The answer calls the state `status`; the notification `refund_status`.

use crate::values::words::words;
use serde::{Deserialize, Serialize};

/// `POST /v3/refund/domestic/refunds`.
pub const REFUNDS_PATH: &str = "/v3/refund/domestic/refunds";

/// `GET /v3/refund/domestic/refunds/{out_refund_no}`.
pub fn query_refund_path(out_refund_no: &str) -> String {
    format!(
        "{REFUNDS_PATH}/{}",
        crate::base::http::percent_encode(out_refund_no, b"*@")
    )
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundAmountReq {
    pub refund: i64,
    pub total: i64,
    pub currency: String,
}

/// The request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundCreate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_trade_no: Option<String>,
    pub out_refund_no: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_url: Option<String>,
    pub amount: RefundAmountReq,
}

/// The longest `reason` v3 takes (80 bytes), cut on a character boundary.
pub const MAX_REASON_BYTES: usize = 80;

impl RefundCreate {
    /// The reason cut to what the gateway takes; none when empty.
    pub fn reason(text: &str) -> Option<String> {
        let mut r = text.trim().to_string();
        r.truncate(r.floor_char_boundary(MAX_REASON_BYTES));
        (!r.is_empty()).then_some(r)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundAmount {
    pub total: i64,
    pub refund: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_total: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_refund: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

/// The `Refund` object of the answer and the query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundAnswer {
    pub refund_id: String,
    pub out_refund_no: String,
    #[serde(default)]
    pub transaction_id: String,
    #[serde(default)]
    pub out_trade_no: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_received_account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time: Option<String>,
    /// SUCCESS | CLOSED | PROCESSING | ABNORMAL.
    pub status: String,
    pub amount: RefundAmount,
}

words! {
    /// A refund's state: `status` in answers, `refund_status` in notifications.
    RefundState {
        Success = "SUCCESS",
        Processing = "PROCESSING",
        Closed = "CLOSED",
        /// Stuck (the payer's account closed, say): the merchant must act.
        Abnormal = "ABNORMAL",
    }
}

/// The plaintext of a `REFUND.SUCCESS` / `REFUND.ABNORMAL` / `REFUND.CLOSED` notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundNotice {
    pub mchid: String,
    #[serde(default)]
    pub transaction_id: String,
    #[serde(default)]
    pub out_trade_no: String,
    pub refund_id: String,
    pub out_refund_no: String,
    pub refund_status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_received_account: Option<String>,
    pub amount: RefundAmount,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_the_documented_json() {
        let req = RefundCreate {
            transaction_id: Some("1217752501201407033233368018".into()),
            out_trade_no: None,
            out_refund_no: "1217752501201407033233368018".into(),
            reason: RefundCreate::reason("商品已售完"),
            notify_url: Some("https://weixin.qq.com".into()),
            amount: RefundAmountReq {
                refund: 888,
                total: 888,
                currency: "CNY".into(),
            },
        };
        let json: serde_json::Value = serde_json::to_value(&req).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "transaction_id": "1217752501201407033233368018",
                "out_refund_no": "1217752501201407033233368018",
                "reason": "商品已售完",
                "notify_url": "https://weixin.qq.com",
                "amount": {"refund": 888, "total": 888, "currency": "CNY"}
            })
        );
        assert_eq!(RefundCreate::reason("  "), None);
        assert!(RefundCreate::reason(&"退".repeat(40)).unwrap().len() <= MAX_REASON_BYTES);
        assert_eq!(
            query_refund_path("R1|2"),
            "/v3/refund/domestic/refunds/R1%7C2"
        );
    }

    #[test]
    fn the_documented_answer_and_notification_read() {
        // The answer example of the v3 refund API (fields as WGO's `Refund`).
        let answer: RefundAnswer = serde_json::from_str(
            r#"{"refund_id":"50000000382019052709732678859","out_refund_no":"1217752501201407033233368018","transaction_id":"1217752501201407033233368018","out_trade_no":"1217752501201407033233368018","channel":"ORIGINAL","user_received_account":"招商银行信用卡0403","success_time":"2020-12-01T16:18:12+08:00","create_time":"2020-12-01T16:18:12+08:00","status":"SUCCESS","funds_account":"UNSETTLED","amount":{"total":100,"refund":100,"from":[],"payer_total":90,"payer_refund":90,"settlement_refund":100,"settlement_total":100,"discount_refund":10,"currency":"CNY"},"promotion_detail":[]}"#,
        )
        .unwrap();
        assert_eq!(answer.status, "SUCCESS");
        assert_eq!(answer.amount.refund, 100);
        assert_eq!(
            answer.user_received_account.as_deref(),
            Some("招商银行信用卡0403")
        );
        let processing: RefundAnswer = serde_json::from_str(
            r#"{"refund_id":"5000","out_refund_no":"R1","status":"PROCESSING","create_time":"2020-12-01T16:18:12+08:00","amount":{"total":100,"refund":50}}"#,
        )
        .unwrap();
        assert_eq!(processing.success_time, None);

        // The refund notification's plaintext (SK 退款结果回调通知说明).
        let notice: RefundNotice = serde_json::from_str(
            r#"{"mchid":"1900000100","transaction_id":"1008450740201411110005820873","out_trade_no":"20150806125346","refund_id":"50200207182018070300011301001","out_refund_no":"7752501201407033233368018","refund_status":"SUCCESS","success_time":"2018-06-08T10:34:56+08:00","user_received_account":"招商银行信用卡0403","amount":{"total":999,"refund":999,"payer_total":999,"payer_refund":999}}"#,
        )
        .unwrap();
        assert_eq!(notice.refund_status, "SUCCESS");
        assert_eq!(notice.amount.refund, 999);
    }
}
