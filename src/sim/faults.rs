//! Fault injection: parsed once from `name=value,…`, applied at one choke point.

use std::fmt;
use std::str::FromStr;

use rand::Rng;

#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Added to every gateway answer.
    pub latency_ms: u64,
    /// Fractions (0–1) of gateway answers replaced by a fault.
    pub systemerror_rate: f64,
    pub http500_rate: f64,
    pub bad_xml_rate: f64,
    pub bad_sign_rate: f64,
    /// Fraction of notifications never sent.
    pub drop_notify: f64,
    /// Extra copies of each notification.
    pub duplicate_notify: u32,
    /// Wait before the first delivery of a notification.
    pub notify_delay_ms: u64,
    /// How long a refund stays PROCESSING before it succeeds (and is notified).
    pub refund_delay_ms: u64,
    /// Fractions of refund requests answered NOTENOUGH / SYSTEMERROR.
    pub refund_notenough_rate: f64,
    pub refund_systemerror_rate: f64,
    /// Fraction of accepted refunds that end abnormal (CHANGE) instead of succeeding.
    pub refund_abnormal_rate: f64,
    /// Bills: leave this many payments out, change this many amounts, add
    /// this many payments nobody made (reconciliation must find each).
    pub bill_omit: u64,
    pub bill_alter: u64,
    pub bill_extra: u64,
}

/// A refund's PROCESSING time when no fault says otherwise.
pub const DEFAULT_REFUND_DELAY_MS: u64 = 300;

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency_ms: 0,
            systemerror_rate: 0.0,
            http500_rate: 0.0,
            bad_xml_rate: 0.0,
            bad_sign_rate: 0.0,
            drop_notify: 0.0,
            duplicate_notify: 0,
            notify_delay_ms: 0,
            refund_delay_ms: DEFAULT_REFUND_DELAY_MS,
            refund_notenough_rate: 0.0,
            refund_systemerror_rate: 0.0,
            refund_abnormal_rate: 0.0,
            bill_omit: 0,
            bill_alter: 0,
            bill_extra: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultsError {
    #[error("expected name=value, got {0:?}")]
    Syntax(String),
    #[error(
        "unknown fault {0:?}; known: latency_ms, systemerror_rate, http500_rate, bad_xml_rate, bad_sign_rate, drop_notify, duplicate_notify, notify_delay_ms, refund_delay_ms, refund_notenough_rate, refund_systemerror_rate, refund_abnormal_rate, bill_omit, bill_alter, bill_extra"
    )]
    Unknown(String),
    #[error("{0} must be {1}")]
    Value(String, &'static str),
}

impl FromStr for Faults {
    type Err = FaultsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut f = Faults::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| FaultsError::Syntax(part.to_string()))?;
            let (name, value) = (name.trim(), value.trim());
            let rate = || -> Result<f64, FaultsError> {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| FaultsError::Value(name.to_string(), "a fraction from 0 to 1"))
            };
            let count = || -> Result<u64, FaultsError> {
                value
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n <= 600_000)
                    .ok_or_else(|| {
                        FaultsError::Value(name.to_string(), "a whole number up to 600000")
                    })
            };
            match name {
                "latency_ms" => f.latency_ms = count()?,
                "systemerror_rate" => f.systemerror_rate = rate()?,
                "http500_rate" => f.http500_rate = rate()?,
                "bad_xml_rate" => f.bad_xml_rate = rate()?,
                "bad_sign_rate" => f.bad_sign_rate = rate()?,
                "drop_notify" => f.drop_notify = rate()?,
                "duplicate_notify" => {
                    f.duplicate_notify = u32::try_from(count()?.min(100)).unwrap_or(100)
                }
                "notify_delay_ms" => f.notify_delay_ms = count()?,
                "refund_delay_ms" => f.refund_delay_ms = count()?,
                "refund_notenough_rate" => f.refund_notenough_rate = rate()?,
                "refund_systemerror_rate" => f.refund_systemerror_rate = rate()?,
                "refund_abnormal_rate" => f.refund_abnormal_rate = rate()?,
                "bill_omit" => f.bill_omit = count()?,
                "bill_alter" => f.bill_alter = count()?,
                "bill_extra" => f.bill_extra = count()?,
                other => return Err(FaultsError::Unknown(other.to_string())),
            }
        }
        Ok(f)
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "latency_ms={},systemerror_rate={},http500_rate={},bad_xml_rate={},bad_sign_rate={},drop_notify={},duplicate_notify={},notify_delay_ms={},refund_delay_ms={},refund_notenough_rate={},refund_systemerror_rate={},refund_abnormal_rate={},bill_omit={},bill_alter={},bill_extra={}",
            self.latency_ms,
            self.systemerror_rate,
            self.http500_rate,
            self.bad_xml_rate,
            self.bad_sign_rate,
            self.drop_notify,
            self.duplicate_notify,
            self.notify_delay_ms,
            self.refund_delay_ms,
            self.refund_notenough_rate,
            self.refund_systemerror_rate,
            self.refund_abnormal_rate,
            self.bill_omit,
            self.bill_alter,
            self.bill_extra
        )
    }
}

impl Faults {
    /// The added latency, which every answer waits first.
    pub async fn delay(&self) {
        if self.latency_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(self.latency_ms)).await;
        }
    }

    /// What an API answer meets first, in either protocol: the latency, then
    /// perhaps an HTTP 500 page instead of any answer (`http500_rate`).
    pub async fn delay_or_fail(&self) -> Option<actix_web::HttpResponse> {
        self.delay().await;
        roll(self.http500_rate).then(|| {
            actix_web::HttpResponse::InternalServerError()
                .content_type("text/html")
                .body("<html><body>500 Internal Server Error</body></html>")
        })
    }
}

/// True with probability `rate`.
pub fn roll(rate: f64) -> bool {
    rate > 0.0 && (rate >= 1.0 || rand::rng().random_bool(rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spec_example_and_clears_on_empty() {
        let f: Faults = "drop_notify=1.0,systemerror_rate=0.3".parse().unwrap();
        assert_eq!(f.drop_notify, 1.0);
        assert_eq!(f.systemerror_rate, 0.3);
        assert_eq!("".parse::<Faults>().unwrap(), Faults::default());
        let all: Faults = "latency_ms=50, http500_rate=0.1,bad_xml_rate=0,bad_sign_rate=1,duplicate_notify=3,notify_delay_ms=200,bill_omit=1,bill_alter=2,bill_extra=3"
            .parse()
            .unwrap();
        assert_eq!(all.duplicate_notify, 3);
        assert_eq!(all.refund_delay_ms, DEFAULT_REFUND_DELAY_MS);
        let refunds: Faults =
            "refund_delay_ms=50,refund_notenough_rate=1,refund_systemerror_rate=0.5,refund_abnormal_rate=0.25"
                .parse()
                .unwrap();
        assert_eq!(refunds.refund_delay_ms, 50);
        assert_eq!(refunds.refund_notenough_rate, 1.0);
        assert_eq!(refunds.to_string().parse::<Faults>().unwrap(), refunds);
        assert_eq!(all.to_string().parse::<Faults>().unwrap(), all);
    }

    #[test]
    fn refuses_nonsense() {
        assert!(matches!(
            "nope=1".parse::<Faults>(),
            Err(FaultsError::Unknown(_))
        ));
        assert!(matches!(
            "drop_notify".parse::<Faults>(),
            Err(FaultsError::Syntax(_))
        ));
        assert!(matches!(
            "drop_notify=2".parse::<Faults>(),
            Err(FaultsError::Value(..))
        ));
        assert!(matches!(
            "latency_ms=-1".parse::<Faults>(),
            Err(FaultsError::Value(..))
        ));
        assert!(!roll(0.0));
        assert!(roll(1.0));
    }
}
