//! Values the shop and every gateway protocol share, each parsed once: the
//! merchant's trade number and the gateway's transaction id. API v2 and v3 use
//! the same rules for both, so they live outside either protocol.
//!
//! A leaf module: it depends on nothing of ours, so `wxpay/` (and later its v3
//! sibling), the domain and the store can all hold these types.

use crate::values::words::text_value;

text_value!(TradeValueError: OutTradeNo, TransactionId, OutRefundNo);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TradeValueError {
    #[error("out_trade_no must be 1 to 32 characters of 0-9 A-Z a-z _ - | *")]
    OutTradeNo,
    #[error("transaction_id must be 1 to 64 characters without spaces")]
    TransactionId,
    #[error("out_refund_no must be 1 to 64 characters of 0-9 A-Z a-z _ - | * @")]
    OutRefundNo,
}

/// A merchant order number at the gateway: unique forever, ≤ 32 chars of `[0-9A-Za-z_-|*]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutTradeNo(String);

impl OutTradeNo {
    pub fn new(s: impl Into<String>) -> Result<Self, TradeValueError> {
        let s = s.into();
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'|' | b'*'));
        if ok {
            Ok(OutTradeNo(s))
        } else {
            Err(TradeValueError::OutTradeNo)
        }
    }

    /// 32 random letters and digits: always valid, unique with overwhelming odds.
    pub fn random() -> Self {
        use rand::distr::{Alphanumeric, SampleString};
        OutTradeNo(Alphanumeric.sample_string(&mut rand::rng(), 32))
    }
}

/// The gateway's id of one payment (`transaction_id`): what makes a payment
/// unique in our books, whichever path reported it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId(String);

impl TransactionId {
    pub fn new(s: impl Into<String>) -> Result<Self, TradeValueError> {
        let s = s.into();
        let ok = !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(TransactionId(s))
        } else {
            Err(TradeValueError::TransactionId)
        }
    }
}

/// The merchant's number of one refund: fixed when the refund is recorded, and
/// sent again unchanged until the gateway gives its outcome (the gateway refunds
/// once per number). ≤ 64 chars of `[0-9A-Za-z_-|*@]`, the rule of v2 and v3.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutRefundNo(String);

impl OutRefundNo {
    pub fn new(s: impl Into<String>) -> Result<Self, TradeValueError> {
        let s = s.into();
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'|' | b'*' | b'@')
            });
        if ok {
            Ok(OutRefundNo(s))
        } else {
            Err(TradeValueError::OutRefundNo)
        }
    }

    /// `R` and 31 random letters and digits: valid, unique with overwhelming odds.
    pub fn random() -> Self {
        use rand::distr::{Alphanumeric, SampleString};
        OutRefundNo(format!(
            "R{}",
            Alphanumeric.sample_string(&mut rand::rng(), 31)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_trade_numbers_follow_the_gateway_rule() {
        assert!(OutTradeNo::new("20260101000001-1-aB3dE9").is_ok());
        assert!(OutTradeNo::new("a|b*c_d-e").is_ok());
        assert!(OutTradeNo::new("").is_err());
        assert!(OutTradeNo::new("x".repeat(32)).is_ok());
        assert!(OutTradeNo::new("x".repeat(33)).is_err());
        assert!(OutTradeNo::new("has space").is_err());
        assert!(OutTradeNo::new("订单").is_err());
        let r = OutTradeNo::random();
        assert_eq!(OutTradeNo::new(r.as_str()), Ok(r));
    }

    #[test]
    fn out_refund_numbers_follow_the_gateway_rule() {
        assert!(OutRefundNo::new("R1-a|b*c_d@e").is_ok());
        assert!(OutRefundNo::new("x".repeat(64)).is_ok());
        assert!(OutRefundNo::new("x".repeat(65)).is_err());
        assert!(OutRefundNo::new("").is_err());
        assert!(OutRefundNo::new("a b").is_err());
        let r = OutRefundNo::random();
        assert_eq!(r.as_str().len(), 32);
        assert_eq!(OutRefundNo::new(r.as_str()), Ok(r));
    }

    #[test]
    fn transaction_ids_are_bounded_printable_text() {
        assert!(TransactionId::new("4200001234202601011234567890").is_ok());
        assert!(TransactionId::new("").is_err());
        assert!(TransactionId::new("x".repeat(65)).is_err());
        assert!(TransactionId::new("a b").is_err());
    }
}
