//! How every simulated notification is delivered (v2 and v3, payments and
//! refunds): WeChat Pay's retry schedule, divided by `sim.time_scale`, until
//! the merchant acknowledges. A leaf of the simulator: the senders use it.

use std::time::Duration;

use super::Simulator;
use crate::wxpay::v2::notify;

/// Waits after the first delivery, in seconds (about 24 h in all).
pub const RETRY_SCHEDULE_SECS: [u64; 15] = [
    15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600,
];

/// One wait of the schedule divided by `time_scale`. Settings check the scale,
/// but a tiny one (1e-300) would make a wait too long for a `Duration` and a
/// `Duration::from_secs_f64` panic: such a wait is "never" (a year is enough).
pub(crate) fn retry_wait(secs: u64, time_scale: f64) -> Duration {
    const NEVER: Duration = Duration::from_secs(365 * 24 * 3600);
    Duration::try_from_secs_f64(secs as f64 / time_scale).map_or(NEVER, |d| d.min(NEVER))
}

/// One v2 delivery: acknowledged only by a 2xx whose XML says SUCCESS.
pub(crate) async fn post_xml(sim: &Simulator, url: &str, body: &str) -> bool {
    match sim
        .http()
        .post(url)
        .header("content-type", "text/xml; charset=utf-8")
        .body(body.to_string())
        .send()
        .await
    {
        Ok(resp) => {
            let ok = resp.status().is_success();
            ok && resp.bytes().await.is_ok_and(|b| notify::is_success_ack(&b))
        }
        Err(_) => false,
    }
}

/// The one retry loop of every simulated notification (v2 and v3, payments
/// and refunds): `send` at once, then after each wait of WeChat Pay's schedule
/// divided by `sim.time_scale`, until it is acknowledged; each try `record`ed.
pub(crate) async fn retry_until_acked<Fut>(
    sim: &Simulator,
    what: &str,
    mut send: impl FnMut() -> Fut,
    record: impl Fn(&Simulator, bool),
) where
    Fut: std::future::Future<Output = bool>,
{
    let time_scale = sim.time_scale();
    let waits = RETRY_SCHEDULE_SECS
        .iter()
        .map(move |s| retry_wait(*s, time_scale));
    for (attempt, wait) in (1..).zip(std::iter::once(Duration::ZERO).chain(waits)) {
        tokio::time::sleep(wait).await;
        let acked = send().await;
        record(sim, acked);
        tracing::debug!(what, attempt, acked, "sim: notification delivered");
        if acked {
            return;
        }
    }
    tracing::warn!(what, "sim: notification never acknowledged; giving up");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_time_scales_give_waits_without_panicking() {
        assert_eq!(retry_wait(15, 1.0), Duration::from_secs(15));
        assert_eq!(retry_wait(15, 1000.0), Duration::from_millis(15));
        let never = retry_wait(15, 1e-300);
        assert!(never >= Duration::from_secs(24 * 3600), "{never:?}");
        assert_eq!(retry_wait(15, f64::MIN_POSITIVE), never);
        assert_eq!(retry_wait(15, 0.0), never, "÷0 is infinite: never");
        assert_eq!(retry_wait(15, f64::NAN), never);
        assert_eq!(retry_wait(15, f64::MAX), Duration::ZERO);
    }
}
