//! Money as integer fen (分), the only money type in scanpay.
//!
//! Amounts are parsed from the decimal yuan text a cashier types, exactly,
//! never through floating point.

use std::fmt;

/// An amount of money in fen (1/100 yuan). Always fits `i64`; arithmetic is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Fen(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("enter an amount, for example 12.50")]
    Empty,
    #[error("the amount must be a number with at most two decimals, for example 12.50")]
    NotANumber,
    #[error("the amount can have at most two decimals")]
    TooManyDecimals,
    #[error("the amount must be more than zero")]
    NotPositive,
    #[error("the amount is above the limit of {0}")]
    AboveMax(Fen),
}

/// Thousandths of a fen (the bill's five decimals of yuan, its fees) to the
/// fen, rounded half up.
pub fn millifen_to_fen(millifen: i64) -> Fen {
    Fen::new((millifen + 500).div_euclid(1000))
}

impl Fen {
    pub const ZERO: Fen = Fen(0);

    pub const fn new(fen: i64) -> Self {
        Fen(fen)
    }

    pub const fn get(self) -> i64 {
        self.0
    }

    /// Parses yuan text such as `12`, `12.5`, `12.50`, `0.01`, `¥12.50` into fen,
    /// requiring `0 < amount <= max`.
    pub fn parse_yuan(text: &str, max: Fen) -> Result<Fen, AmountError> {
        let t = text.trim();
        let t = t
            .strip_prefix('¥')
            .or_else(|| t.strip_prefix('￥'))
            .unwrap_or(t)
            .trim();
        if t.is_empty() {
            return Err(AmountError::Empty);
        }
        if t.starts_with('-') {
            return Err(AmountError::NotPositive);
        }
        let (whole, frac) = match t.split_once('.') {
            Some((w, f)) => (w, f),
            None => (t, ""),
        };
        if (whole.is_empty() && frac.is_empty())
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || (t.contains('.') && frac.is_empty())
        {
            return Err(AmountError::NotANumber);
        }
        if frac.len() > 2 {
            return Err(AmountError::TooManyDecimals);
        }
        // Leading zeros are harmless; too many digits means "above any limit".
        let whole = whole.trim_start_matches('0');
        if whole.len() > 15 {
            return Err(AmountError::AboveMax(max));
        }
        let yuan: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| AmountError::NotANumber)?
        };
        let mut cents: i64 = 0;
        for (i, b) in frac.bytes().enumerate() {
            let digit = i64::from(b - b'0');
            cents += if i == 0 { digit * 10 } else { digit };
        }
        let fen = yuan
            .checked_mul(100)
            .and_then(|f| f.checked_add(cents))
            .ok_or(AmountError::AboveMax(max))?;
        if fen <= 0 {
            return Err(AmountError::NotPositive);
        }
        if fen > max.0 {
            return Err(AmountError::AboveMax(max));
        }
        Ok(Fen(fen))
    }

    /// The decimal yuan text with two decimals and no currency sign: `12.50`.
    pub fn yuan_string(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    }

    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }
}

/// `¥12.50`
impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "¥{}", self.yuan_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX: Fen = Fen(10_000_000);

    #[test]
    fn parses_exact_amounts() {
        for (text, fen) in [
            ("12.50", 1250),
            ("12.5", 1250),
            ("12", 1200),
            ("0.01", 1),
            ("0.29", 29),
            ("0.1", 10),
            (".5", 50),
            ("  7.07 ", 707),
            ("¥3.00", 300),
            ("100000", 10_000_000),
            ("0019.99", 1999),
        ] {
            assert_eq!(Fen::parse_yuan(text, MAX), Ok(Fen(fen)), "{text}");
        }
    }

    #[test]
    fn refuses_bad_amounts() {
        for (text, err) in [
            ("", AmountError::Empty),
            ("   ", AmountError::Empty),
            ("0", AmountError::NotPositive),
            ("0.00", AmountError::NotPositive),
            ("-1", AmountError::NotPositive),
            ("1.234", AmountError::TooManyDecimals),
            ("abc", AmountError::NotANumber),
            ("1,50", AmountError::NotANumber),
            ("1e3", AmountError::NotANumber),
            ("12.", AmountError::NotANumber),
            (".", AmountError::NotANumber),
            ("1.2.3", AmountError::NotANumber),
            ("+5", AmountError::NotANumber),
            ("100000.01", AmountError::AboveMax(MAX)),
            ("99999999999999999999", AmountError::AboveMax(MAX)),
            ("NaN", AmountError::NotANumber),
        ] {
            assert_eq!(Fen::parse_yuan(text, MAX), Err(err), "{text:?}");
        }
    }

    #[test]
    fn displays_as_yuan() {
        assert_eq!(Fen(1250).to_string(), "¥12.50");
        assert_eq!(Fen(1).to_string(), "¥0.01");
        assert_eq!(Fen(0).yuan_string(), "0.00");
        assert_eq!(Fen(-205).yuan_string(), "-2.05");
    }

    proptest! {
        #[test]
        fn yuan_string_round_trips(fen in 1i64..=10_000_000) {
            let text = Fen(fen).yuan_string();
            prop_assert_eq!(Fen::parse_yuan(&text, MAX), Ok(Fen(fen)));
        }
    }
}
