//! The values of an order and its QRs, each parsed once.

use std::fmt;

use rand::RngCore;

/// The customer's link id: 128 random bits as 32 hex digits. Never the internal id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrderToken(String);

impl OrderToken {
    pub fn generate() -> Self {
        let mut b = [0u8; 16];
        rand::rng().fill_bytes(&mut b);
        OrderToken(hex::encode(b))
    }

    /// Accepts only the exact shape `generate` makes, so junk never reaches a query.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| OrderToken(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrderToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The row id of an order. Never shown to customers (they see the token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrderId(pub i64);

/// The row id of one QR (one gateway order) of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QrId(pub i64);

/// The row id of a staff user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub i64);

/// The row id of one payment (one gateway transaction) in our books.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PaymentId(pub i64);

/// The row id of one refund (the gateway knows it by its out_refund_no).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RefundId(pub i64);

impl fmt::Display for RefundId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A day's places go up to `u64::MAX`, 20 digits.
const MAX_PLACE_DIGITS: usize = 20;

/// The order number people read and say: the shop day and the order's place
/// in it (`202601010042`). Made once, when the order is written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrderNo(String);

impl OrderNo {
    pub fn new(day: &str, seq: u64) -> Self {
        OrderNo(format!("{day}{seq:04}"))
    }

    /// A number as people type it (a URL, a form): the shape `new` makes, a
    /// real `YYYYMMDD` day followed by the place, at least 4 digits (older
    /// versions put a 6-digit row id there). Anything else is not one of ours,
    /// so it never reaches a query.
    pub fn parse(s: &str) -> Option<Self> {
        let (day, place) = (s.get(..8)?, s.get(8..)?);
        let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        if !digits(day) || !digits(place) || !(4..=MAX_PLACE_DIGITS).contains(&place.len()) {
            return None;
        }
        let n = |r: std::ops::Range<usize>| day[r].parse::<i8>().ok();
        let year = day[..4].parse::<i16>().ok()?;
        jiff::civil::Date::new(year, n(4..6)?, n(6..8)?).ok()?;
        Some(OrderNo(s.to_string()))
    }

    /// As read back from the store, which only ever holds numbers `new` made
    /// (or older versions did): not checked again.
    pub fn from_stored(s: String) -> Self {
        OrderNo(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrderNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the customer and the cashier see of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderState {
    Open,
    Paid,
    Expired,
    Cancelled,
}

/// A QR's life: the row is written (`creating`) before `unifiedorder` is sent;
/// `open` once it has a code_url; `closing` once superseded until the gateway
/// confirms; `closed` or `paid` at the end. `failed`: the gateway refused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QrState {
    Creating,
    Failed,
    Open,
    Closing,
    Closed,
    Paid,
}

pub use crate::values::words::UnknownState;
use crate::values::words::text_enum;

text_enum!(OrderState { Open => "open", Paid => "paid", Expired => "expired", Cancelled => "cancelled" });
text_enum!(QrState { Creating => "creating", Failed => "failed", Open => "open", Closing => "closing", Closed => "closed", Paid => "paid" });

/// A refund's life in our books. `pending`: recorded, not yet accepted by the
/// gateway (being sent, or the outcome unknown: it is sent again with the same
/// out_refund_no); `processing`: accepted, the money is on its way;
/// `succeeded` and `closed` are final; `abnormal`: stuck at the gateway (e.g. a
/// closed bank card), handled on the merchant platform, still followed;
/// `failed`: refused by the gateway (e.g. NOTENOUGH), nothing moved; an admin may
/// retry it with the same out_refund_no.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefundState {
    Pending,
    Processing,
    Succeeded,
    Closed,
    Abnormal,
    Failed,
}

text_enum!(RefundState { Pending => "pending", Processing => "processing", Succeeded => "succeeded", Closed => "closed", Abnormal => "abnormal", Failed => "failed" });

impl RefundState {
    /// Whether its amount counts against what is still refundable: everything
    /// that moved or may still move money.
    pub fn reserves(self) -> bool {
        !matches!(self, RefundState::Closed | RefundState::Failed)
    }

    /// Whether the gateway may still change it (so the poller follows it).
    pub fn is_open(self) -> bool {
        matches!(
            self,
            RefundState::Pending | RefundState::Processing | RefundState::Abnormal
        )
    }
}

/// Who learnt of a payment first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentSource {
    Notify,
    Poll,
    Close,
    /// Found only in the gateway's daily bill (reconciliation).
    Bill,
}

text_enum!(PaymentSource { Notify => "notify", Poll => "poll", Close => "close", Bill => "bill" });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_128_bit_hex_and_parse_strictly() {
        let t = OrderToken::generate();
        assert_eq!(t.as_str().len(), 32);
        assert_eq!(OrderToken::parse(t.as_str()), Some(t.clone()));
        assert_ne!(OrderToken::generate(), t);
        assert!(OrderToken::parse("../etc/passwd").is_none());
        assert!(OrderToken::parse(&"A".repeat(32)).is_none());
    }

    #[test]
    fn states_round_trip_as_text() {
        for s in ["open", "paid", "expired", "cancelled"] {
            assert_eq!(s.parse::<OrderState>().unwrap().as_str(), s);
        }
        for s in ["creating", "failed", "open", "closing", "closed", "paid"] {
            assert_eq!(s.parse::<QrState>().unwrap().as_str(), s);
        }
        assert!("bogus".parse::<OrderState>().is_err());
    }

    #[test]
    fn order_numbers_parse_only_in_the_shape_they_are_made() {
        let made = OrderNo::new("20261201", 42);
        assert_eq!(OrderNo::parse(made.as_str()), Some(made));
        assert!(
            OrderNo::parse("2026120110000").is_some(),
            "past 9999 a digit more"
        );
        assert!(
            OrderNo::parse("20261201000123").is_some(),
            "older: a 6-digit row id"
        );
        assert!(OrderNo::parse("202402290001").is_some(), "a leap day");
        for bad in [
            "",
            "20261201",
            "20261201001",
            "202613010001",
            "202302290001",
            "2026120100a1",
            "+20261201001",
            " 202612010001",
            "２０２６１２０１０００１",
            "../../etc/passwd",
        ] {
            assert_eq!(OrderNo::parse(bad), None, "{bad:?}");
        }
        assert!(OrderNo::parse(&format!("20261201{}", "9".repeat(20))).is_some());
        assert!(OrderNo::parse(&format!("20261201{}", "9".repeat(21))).is_none());
    }
}
