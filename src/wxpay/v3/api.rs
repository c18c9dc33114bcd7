//! The v3 endpoints scanpay uses for NATIVE, as pure steps: the path and JSON
//! body of each request, the answer's JSON read into types, and WeChat Pay's
//! error JSON mapped to codes (both spellings the documentation uses).

use crate::values::words::words;
use jiff::Timestamp;
use jiff::tz::{Offset, TimeZone};
use serde::{Deserialize, Serialize};

/// `POST /v3/pay/transactions/native`.
pub const NATIVE_PATH: &str = "/v3/pay/transactions/native";

/// `GET /v3/pay/transactions/out-trade-no/{no}?mchid=…`
pub fn query_path(out_trade_no: &str, mchid: &str) -> String {
    format!(
        "/v3/pay/transactions/out-trade-no/{}?mchid={}",
        encode_segment(out_trade_no),
        encode_segment(mchid)
    )
}

/// `POST /v3/pay/transactions/out-trade-no/{no}/close` (answer: 204).
pub fn close_path(out_trade_no: &str) -> String {
    format!(
        "/v3/pay/transactions/out-trade-no/{}/close",
        encode_segment(out_trade_no)
    )
}

/// Percent-encodes what a path segment or query value may not hold as is
/// (`out_trade_no` may contain `|`); the signature covers the encoded form.
fn encode_segment(s: &str) -> String {
    crate::base::http::percent_encode(s, b"*")
}

/// RFC 3339 in Beijing time (`2026-01-01T12:00:00+08:00`), as v3 writes times.
pub fn format_time(t: Timestamp) -> String {
    t.to_zoned(TimeZone::fixed(Offset::constant(8)))
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amount {
    pub total: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SceneInfo {
    pub payer_client_ip: String,
}

/// The body of a native order. Sent again byte for byte on an unknown outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NativeOrder {
    pub appid: String,
    pub mchid: String,
    pub description: String,
    pub out_trade_no: String,
    pub time_expire: String,
    pub notify_url: String,
    pub amount: Amount,
    pub scene_info: SceneInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NativeAnswer {
    pub code_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payer {
    pub openid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaidAmount {
    pub total: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_total: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

words! {
    /// `trade_state` of a v3 transaction (the same words v2 uses).
    TradeState {
        Success = "SUCCESS",
        /// Paid, then refunded: the money was received.
        Refund = "REFUND",
        NotPay = "NOTPAY",
        Closed = "CLOSED",
        Revoked = "REVOKED",
        /// The customer is entering the password.
        UserPaying = "USERPAYING",
        PayError = "PAYERROR",
    }
}

/// A transaction as query answers and payment notifications describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub appid: String,
    pub mchid: String,
    pub out_trade_no: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    pub trade_state: String,
    #[serde(default)]
    pub trade_state_desc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<Payer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<PaidAmount>,
}

impl Transaction {
    /// Its `trade_state`, read.
    pub fn state(&self) -> TradeState {
        TradeState::parse(&self.trade_state)
    }
}

/// WeChat Pay's error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

/// The error codes scanpay acts on; both spellings of the documentation read
/// the same (`ORDER_NOT_EXIST` and the older `ORDERNOTEXIST`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    OrderNotExist,
    OrderPaid,
    OrderClosed,
    SystemError,
    BankError,
    FrequencyLimited,
    SignError,
    ParamError,
    InvalidRequest,
    NoAuth,
    RuleLimit,
    UserPaying,
    Other(String),
}

impl ErrorCode {
    pub fn parse(code: &str) -> ErrorCode {
        match code.replace('_', "").as_str() {
            "ORDERNOTEXIST" => ErrorCode::OrderNotExist,
            "ORDERPAID" => ErrorCode::OrderPaid,
            "ORDERCLOSED" => ErrorCode::OrderClosed,
            "SYSTEMERROR" => ErrorCode::SystemError,
            "BANKERROR" => ErrorCode::BankError,
            "FREQUENCYLIMITED" => ErrorCode::FrequencyLimited,
            "SIGNERROR" => ErrorCode::SignError,
            "PARAMERROR" => ErrorCode::ParamError,
            "INVALIDREQUEST" => ErrorCode::InvalidRequest,
            "NOAUTH" => ErrorCode::NoAuth,
            "RULELIMIT" => ErrorCode::RuleLimit,
            "USERPAYING" => ErrorCode::UserPaying,
            _ => ErrorCode::Other(code.to_string()),
        }
    }

    /// The outcome at the gateway is unknown or the gateway asks to come back:
    /// the same request may be sent again, unchanged.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ErrorCode::SystemError | ErrorCode::BankError | ErrorCode::FrequencyLimited
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_encode_what_a_path_cannot_hold() {
        assert_eq!(
            query_path("20260101-1-ab|c*", "1900007291"),
            "/v3/pay/transactions/out-trade-no/20260101-1-ab%7Cc*?mchid=1900007291"
        );
        assert_eq!(
            close_path("SP1"),
            "/v3/pay/transactions/out-trade-no/SP1/close"
        );
    }

    #[test]
    fn times_are_beijing_rfc3339() {
        let t: Timestamp = "2026-01-01T04:00:00Z".parse().unwrap();
        assert_eq!(format_time(t), "2026-01-01T12:00:00+08:00");
    }

    #[test]
    fn both_spellings_of_a_code_mean_the_same() {
        for (a, b) in [
            ("ORDER_NOT_EXIST", "ORDERNOTEXIST"),
            ("SYSTEM_ERROR", "SYSTEMERROR"),
            ("BANK_ERROR", "BANKERROR"),
            ("NO_AUTH", "NOAUTH"),
            ("RULE_LIMIT", "RULELIMIT"),
            ("USER_PAYING", "USERPAYING"),
        ] {
            assert_eq!(ErrorCode::parse(a), ErrorCode::parse(b));
            assert!(!matches!(ErrorCode::parse(a), ErrorCode::Other(_)), "{a}");
        }
        assert!(ErrorCode::parse("SYSTEM_ERROR").is_retryable());
        assert!(ErrorCode::parse("FREQUENCY_LIMITED").is_retryable());
        assert!(!ErrorCode::parse("ORDER_PAID").is_retryable());
        assert_eq!(
            ErrorCode::parse("NEW_ONE"),
            ErrorCode::Other("NEW_ONE".into())
        );
    }

    #[test]
    fn real_answers_read() {
        // An unpaid order carries no amount.currency; a paid one everything.
        let unpaid: Transaction = serde_json::from_str(
            r#"{"amount":{"payer_currency":"CNY","total":1},"appid":"wx1","mchid":"1","out_trade_no":"SP1","promotion_detail":[],"scene_info":{"device_id":""},"trade_state":"NOTPAY","trade_state_desc":"订单未支付"}"#,
        )
        .unwrap();
        assert_eq!(
            (unpaid.trade_state.as_str(), unpaid.transaction_id),
            ("NOTPAY", None)
        );
        let paid: Transaction = serde_json::from_str(
            r#"{"transaction_id":"4200001863202305068344507881","amount":{"currency":"CNY","payer_currency":"CNY","payer_total":1,"total":1},"mchid":"1","trade_state":"SUCCESS","bank_type":"OTHERS","promotion_detail":[],"success_time":"2023-05-06T15:17:31+08:00","payer":{"openid":"o1"},"out_trade_no":"SP1","appid":"wx1"}"#,
        )
        .unwrap();
        assert_eq!(paid.amount.unwrap().total, 1);
        assert_eq!(paid.payer.unwrap().openid, "o1");
        let e: ErrorBody = serde_json::from_str(
            r#"{"code":"SIGN_ERROR","message":"签名错误，请检查后再试","detail":{"field":"signature"}}"#,
        )
        .unwrap();
        assert_eq!(ErrorCode::parse(&e.code), ErrorCode::SignError);
    }
}
