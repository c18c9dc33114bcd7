//! Values of the WeChat Pay v2 protocol, each parsed once into a type.

use crate::values::words::words;
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};

pub use crate::values::trade::OutTradeNo;

/// The merchant's API key: signs and verifies every message. Never printed.
#[derive(Clone)]
pub struct ApiKey(SecretString);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Result<Self, TypeError> {
        let key = key.into();
        if key.is_empty() {
            return Err(TypeError::EmptyKey);
        }
        Ok(ApiKey(SecretString::from(key)))
    }

    pub(crate) fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn len(&self) -> usize {
        self.expose().len()
    }

    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([REDACTED])")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypeError {
    #[error("the API key is empty")]
    EmptyKey,
    #[error("unknown sign_type {0:?}: use MD5 or HMAC-SHA256")]
    SignType(String),
    #[error("not a WeChat Pay time (yyyyMMddHHmmss): {0:?}")]
    Time(String),
}

/// The signature algorithm. `MD5` is the protocol's default when `sign_type` is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
pub enum SignType {
    #[default]
    #[serde(rename = "MD5")]
    Md5,
    #[serde(rename = "HMAC-SHA256")]
    HmacSha256,
}

impl SignType {
    pub fn as_str(self) -> &'static str {
        match self {
            SignType::Md5 => "MD5",
            SignType::HmacSha256 => "HMAC-SHA256",
        }
    }
}

impl FromStr for SignType {
    type Err = TypeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "MD5" => Ok(SignType::Md5),
            "HMAC-SHA256" => Ok(SignType::HmacSha256),
            other => Err(TypeError::SignType(other.to_string())),
        }
    }
}

impl fmt::Display for SignType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

words! {
    /// `trade_state` of `orderquery`.
    TradeState {
        /// Paid.
        Success = "SUCCESS",
        /// Refunded after payment (money was received).
        Refund = "REFUND",
        NotPay = "NOTPAY",
        Closed = "CLOSED",
        Revoked = "REVOKED",
        /// The customer is entering the password: never close now, ask again shortly.
        UserPaying = "USERPAYING",
        PayError = "PAYERROR",
        /// Accepted, awaiting settlement.
        Accept = "ACCEPT",
    }
}

impl TradeState {
    /// The money reached the merchant (a later refund does not undo the receipt).
    pub fn is_paid(&self) -> bool {
        matches!(self, TradeState::Success | TradeState::Refund)
    }
}

impl fmt::Display for TradeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `err_code` of a `result_code=FAIL` answer: one mapping of the gateway's codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrCode {
    /// Unknown outcome at the gateway: retry with the same parameters.
    SystemError,
    OrderPaid,
    OrderClosed,
    OrderNotExist,
    OutTradeNoUsed,
    InvalidRequest,
    LackParams,
    SignError,
    NotEnough,
    NoAuth,
    AppidNotExist,
    MchidNotExist,
    AppidMchidNotMatch,
    XmlFormatError,
    RequirePostMethod,
    PostDataEmpty,
    NotUtf8,
    /// Refunds: the gateway's own trouble; retry with the same out_refund_no.
    BizerrNeedRetry,
    /// Refunds: more than a year after the payment.
    TradeOverdue,
    /// Refunds: no refund with that number (refundquery).
    RefundNotExist,
    FrequencyLimited,
    InvalidReqTooMuch,
    UserAccountAbnormal,
    Other(String),
}

impl ErrCode {
    pub fn parse(s: &str) -> ErrCode {
        match s {
            "SYSTEMERROR" => ErrCode::SystemError,
            "ORDERPAID" => ErrCode::OrderPaid,
            "ORDERCLOSED" => ErrCode::OrderClosed,
            "ORDERNOTEXIST" => ErrCode::OrderNotExist,
            "OUT_TRADE_NO_USED" => ErrCode::OutTradeNoUsed,
            "INVALID_REQUEST" => ErrCode::InvalidRequest,
            "LACK_PARAMS" => ErrCode::LackParams,
            "SIGNERROR" => ErrCode::SignError,
            "NOTENOUGH" => ErrCode::NotEnough,
            "NOAUTH" => ErrCode::NoAuth,
            "APPID_NOT_EXIST" => ErrCode::AppidNotExist,
            "MCHID_NOT_EXIST" => ErrCode::MchidNotExist,
            "APPID_MCHID_NOT_MATCH" => ErrCode::AppidMchidNotMatch,
            "XML_FORMAT_ERROR" => ErrCode::XmlFormatError,
            "REQUIRE_POST_METHOD" => ErrCode::RequirePostMethod,
            "POST_DATA_EMPTY" => ErrCode::PostDataEmpty,
            "NOT_UTF8" => ErrCode::NotUtf8,
            "BIZERR_NEED_RETRY" => ErrCode::BizerrNeedRetry,
            "TRADE_OVERDUE" => ErrCode::TradeOverdue,
            "REFUNDNOTEXIST" => ErrCode::RefundNotExist,
            "FREQUENCY_LIMITED" => ErrCode::FrequencyLimited,
            "INVALID_REQ_TOO_MUCH" => ErrCode::InvalidReqTooMuch,
            "USER_ACCOUNT_ABNORMAL" => ErrCode::UserAccountAbnormal,
            other => ErrCode::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ErrCode::SystemError => "SYSTEMERROR",
            ErrCode::OrderPaid => "ORDERPAID",
            ErrCode::OrderClosed => "ORDERCLOSED",
            ErrCode::OrderNotExist => "ORDERNOTEXIST",
            ErrCode::OutTradeNoUsed => "OUT_TRADE_NO_USED",
            ErrCode::InvalidRequest => "INVALID_REQUEST",
            ErrCode::LackParams => "LACK_PARAMS",
            ErrCode::SignError => "SIGNERROR",
            ErrCode::NotEnough => "NOTENOUGH",
            ErrCode::NoAuth => "NOAUTH",
            ErrCode::AppidNotExist => "APPID_NOT_EXIST",
            ErrCode::MchidNotExist => "MCHID_NOT_EXIST",
            ErrCode::AppidMchidNotMatch => "APPID_MCHID_NOT_MATCH",
            ErrCode::XmlFormatError => "XML_FORMAT_ERROR",
            ErrCode::RequirePostMethod => "REQUIRE_POST_METHOD",
            ErrCode::PostDataEmpty => "POST_DATA_EMPTY",
            ErrCode::NotUtf8 => "NOT_UTF8",
            ErrCode::BizerrNeedRetry => "BIZERR_NEED_RETRY",
            ErrCode::TradeOverdue => "TRADE_OVERDUE",
            ErrCode::RefundNotExist => "REFUNDNOTEXIST",
            ErrCode::FrequencyLimited => "FREQUENCY_LIMITED",
            ErrCode::InvalidReqTooMuch => "INVALID_REQ_TOO_MUCH",
            ErrCode::UserAccountAbnormal => "USER_ACCOUNT_ABNORMAL",
            ErrCode::Other(s) => s,
        }
    }

    /// Whether the same request may simply be sent again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ErrCode::SystemError | ErrCode::BizerrNeedRetry)
    }
}

impl fmt::Display for ErrCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub use crate::wxpay::bill::beijing;

/// `yyyyMMddHHmmss` in Beijing time.
pub fn format_time(t: Timestamp) -> String {
    t.to_zoned(beijing()).strftime("%Y%m%d%H%M%S").to_string()
}

/// Reads a `yyyyMMddHHmmss` Beijing time.
pub fn parse_time(s: &str) -> Result<Timestamp, TypeError> {
    if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TypeError::Time(s.to_string()));
    }
    jiff::civil::DateTime::strptime("%Y%m%d%H%M%S", s)
        .and_then(|dt| dt.to_zoned(beijing()))
        .map(|z| z.timestamp())
        .map_err(|_| TypeError::Time(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_beijing() {
        let t: Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
        assert_eq!(format_time(t), "20260102110405");
        assert_eq!(parse_time("20260102110405").unwrap(), t);
        assert!(parse_time("2026010211040").is_err());
        assert!(parse_time("20261302110405").is_err());
        assert!(parse_time("+0260102110405").is_err());
    }

    #[test]
    fn codes_round_trip() {
        for s in [
            "SUCCESS",
            "REFUND",
            "NOTPAY",
            "CLOSED",
            "USERPAYING",
            "NEWTHING",
        ] {
            assert_eq!(TradeState::parse(s).as_str(), s);
        }
        for s in ["SYSTEMERROR", "ORDERPAID", "OUT_TRADE_NO_USED", "WHATEVER"] {
            assert_eq!(ErrCode::parse(s).as_str(), s);
        }
        assert!(format!("{:?}", ApiKey::new("secret").unwrap()).contains("REDACTED"));
    }
}
