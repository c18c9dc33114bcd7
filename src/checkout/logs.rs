//! The notification log's bounds. Verified notifications are evidence of a
//! payment and are kept (for `retention.notification_days`); refused ones are
//! junk or forgeries, so only a few are kept, short, and a flood from one
//! address is counted instead of stored.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use super::{Checkout, CheckoutError};
use crate::base::lock::LockExt;
use crate::store::payments;
use crate::values::clock::Millis;

/// The most of a refused notification's body that is kept.
pub const REFUSED_BODY_BYTES: usize = 512;
/// How often the log is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Sources remembered per minute; past it, refusals from new sources are only counted.
const MAX_SOURCES: usize = 10_000;

/// Refused notifications stored per source in the current minute.
#[derive(Default)]
pub(super) struct RefusalLog {
    minute: Mutex<(i64, HashMap<String, u32>)>,
    unstored: AtomicU64,
    next_prune: AtomicI64,
}

impl RefusalLog {
    /// Whether one more refusal from `source` may be stored now.
    fn admit(&self, source: &str, now: Millis, per_minute: u32) -> bool {
        let minute = now.get().div_euclid(60_000);
        let mut w = self.minute.lock_or_recover();
        if w.0 != minute {
            *w = (minute, HashMap::new());
        }
        let full = w.1.len() >= MAX_SOURCES;
        let admitted = match w.1.get_mut(source) {
            Some(n) if *n < per_minute => {
                *n += 1;
                true
            }
            Some(_) => false,
            None if full || per_minute == 0 => false,
            None => {
                w.1.insert(source.to_string(), 1);
                true
            }
        };
        if !admitted {
            self.unstored.fetch_add(1, Ordering::Relaxed);
        }
        admitted
    }
}

impl Checkout {
    /// Whether a refused notification from `source` is stored (else only counted).
    pub(super) fn admit_refusal(&self, source: Option<&str>) -> bool {
        let per_minute = self.cfg().retention.refused_per_source_per_minute;
        self.inner
            .refusals
            .admit(source.unwrap_or("unknown"), self.now(), per_minute)
    }

    /// Refused notifications that were counted but not stored, since start.
    pub fn refused_unstored(&self) -> u64 {
        self.inner.refusals.unstored.load(Ordering::Relaxed)
    }

    /// Whether the log is due for pruning.
    pub(super) fn prune_due(&self) -> bool {
        self.now().get() >= self.inner.refusals.next_prune.load(Ordering::Relaxed)
    }

    /// Deletes verified notifications past their retention and refused ones
    /// beyond the newest `refused_kept`; returns how many rows went.
    pub async fn prune_logs(&self) -> Result<usize, CheckoutError> {
        let now = self.now();
        let policy = self.cfg().retention.clone();
        self.inner
            .refusals
            .next_prune
            .store(now.plus(PRUNE_EVERY).get(), Ordering::Relaxed);
        let before = now.minus(policy.verified_for);
        let gone = self
            .store()
            .write(move |tx| payments::prune_notifications(tx, before, policy.refused_kept))
            .await?;
        if gone > 0 {
            tracing::info!(gone, "notification log pruned");
        }
        Ok(gone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_source_gets_its_own_allowance_per_minute() {
        let log = RefusalLog::default();
        let t = Millis(60_000 * 1000);
        for _ in 0..3 {
            assert!(log.admit("10.0.0.1", t, 3));
        }
        assert!(!log.admit("10.0.0.1", t, 3), "a fourth in the same minute");
        assert!(log.admit("10.0.0.2", t, 3), "another source is not slowed");
        assert!(
            log.admit("10.0.0.1", t.plus(Duration::from_secs(60)), 3),
            "a new minute"
        );
        assert_eq!(log.unstored.load(Ordering::Relaxed), 1);
        assert!(!log.admit("10.0.0.3", t, 0), "nothing stored when set to 0");
    }

    #[test]
    fn a_flood_of_new_sources_is_bounded() {
        let log = RefusalLog::default();
        let t = Millis(0);
        for i in 0..MAX_SOURCES {
            assert!(log.admit(&format!("s{i}"), t, 1));
        }
        assert!(!log.admit("one more", t, 1));
        assert_eq!(log.minute.lock_or_recover().1.len(), MAX_SOURCES);
    }
}
