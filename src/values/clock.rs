//! The time the domain and the poller act on: the system clock in service, a
//! hand-moved one in tests (so a test advances five minutes instead of waiting).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// A moment: milliseconds since the Unix epoch, the time unit of every column.
/// A type of its own so that a moment is never taken for a duration, an id or
/// an amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(pub i64);

impl Millis {
    /// The system's time, for what is not the domain's to move: a heartbeat,
    /// a session's age, a migration's stamp. The domain reads `Clock::now`.
    pub fn wall() -> Millis {
        Millis(system_ms())
    }

    pub fn get(self) -> i64 {
        self.0
    }

    pub fn plus(self, d: Duration) -> Millis {
        Millis(self.0.saturating_add(ms(d)))
    }

    pub fn minus(self, d: Duration) -> Millis {
        Millis(self.0.saturating_sub(ms(d)))
    }

    /// How long after `earlier` this is (zero if it is not after).
    pub fn since(self, earlier: Millis) -> Duration {
        Duration::from_millis(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }

    /// Whole seconds from this moment until `at` (never negative).
    pub fn seconds_until(self, at: Millis) -> i64 {
        seconds_between(self.0, at.0)
    }

    /// As a `jiff` timestamp (the epoch if out of range).
    pub fn to_timestamp(self) -> jiff::Timestamp {
        to_timestamp(self.0)
    }
}

impl From<jiff::Timestamp> for Millis {
    fn from(t: jiff::Timestamp) -> Self {
        Millis(t.as_millisecond())
    }
}

/// Milliseconds since the Unix epoch, from the system or from a test's hand.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<Manual>>,
}

/// A hand-moved time, and who waits for it to move.
#[derive(Debug)]
struct Manual {
    ms: AtomicI64,
    moved: tokio::sync::Notify,
}

impl Clock {
    pub fn system() -> Self {
        Clock { manual: None }
    }

    /// A clock that starts at the system's time and moves only by [`Clock::advance`].
    pub fn manual() -> Self {
        Clock {
            manual: Some(Arc::new(Manual {
                ms: AtomicI64::new(system_ms()),
                moved: tokio::sync::Notify::new(),
            })),
        }
    }

    pub fn now(&self) -> Millis {
        Millis(match &self.manual {
            Some(t) => t.ms.load(Ordering::SeqCst),
            None => system_ms(),
        })
    }

    /// Moves a manual clock forward; a system clock cannot be moved (returns false).
    pub fn advance(&self, by: Duration) -> bool {
        match &self.manual {
            Some(t) => {
                t.ms.fetch_add(
                    i64::try_from(by.as_millis()).unwrap_or(i64::MAX),
                    Ordering::SeqCst,
                );
                t.moved.notify_waiters();
                true
            }
            None => false,
        }
    }

    /// Waits `d` on the system clock. On a manual clock it returns at once: time
    /// passes there only when the test moves it, and a pause (between resends,
    /// say) is not a moment anyone waits for.
    pub async fn pause(&self, d: Duration) {
        if self.manual.is_none() {
            tokio::time::sleep(d).await;
        }
    }

    /// Returns once this clock reads `at` or later: on the system clock after a
    /// timer, on a manual one when the test has moved it there.
    pub async fn sleep_until(&self, at: Millis) {
        match &self.manual {
            // Checked again after the timer: never back just before `at`.
            None => loop {
                let now = self.now();
                if now >= at {
                    return;
                }
                tokio::time::sleep(at.since(now).max(Duration::from_millis(1))).await;
            },
            Some(m) => loop {
                // Registered before the reading, so a move in between is not missed.
                let moved = m.moved.notified();
                tokio::pin!(moved);
                moved.as_mut().enable();
                if self.now() >= at {
                    return;
                }
                moved.await;
            },
        }
    }
}

fn system_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Whole seconds from `now` until `at` (never negative), both in milliseconds.
fn seconds_between(now: i64, at: i64) -> i64 {
    ((at - now) as f64 / 1000.0).ceil().max(0.0) as i64
}

/// A millisecond timestamp as a `jiff` one (the epoch if out of range).
fn to_timestamp(ms: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// A duration in milliseconds, saturating.
fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sleep_on_a_manual_clock_ends_when_the_clock_is_moved_past_it() {
        let c = Clock::manual();
        let at = c.now().plus(Duration::from_secs(8));
        let sleeper = tokio::spawn({
            let c = c.clone();
            async move { c.sleep_until(at).await }
        });
        c.advance(Duration::from_secs(5));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "not before its time");
        c.advance(Duration::from_secs(3));
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("woken by the move")
            .unwrap();
    }

    #[tokio::test]
    async fn a_sleep_on_the_system_clock_is_a_timer() {
        let c = Clock::system();
        let started = std::time::Instant::now();
        c.sleep_until(c.now().plus(Duration::from_millis(50))).await;
        assert!(started.elapsed() >= Duration::from_millis(45));
    }

    #[test]
    fn a_manual_clock_moves_only_by_hand() {
        let c = Clock::manual();
        let t0 = c.now();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(c.now(), t0);
        assert!(c.advance(Duration::from_secs(300)));
        assert_eq!(c.now(), t0.plus(Duration::from_secs(300)));
        assert_eq!(c.now().since(t0), Duration::from_secs(300));
        assert_eq!(t0.since(c.now()), Duration::ZERO);
        assert!(!Clock::system().advance(Duration::from_secs(1)));
    }

    #[test]
    fn seconds_round_up_and_never_go_negative() {
        assert_eq!(seconds_between(0, 1), 1);
        assert_eq!(seconds_between(0, 1000), 1);
        assert_eq!(seconds_between(0, 1001), 2);
        assert_eq!(seconds_between(5000, 0), 0);
    }
}
