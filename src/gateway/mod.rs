//! The checkout's [`Gateway`](crate::checkout::gateway::Gateway) port, implemented
//! once per protocol. Each adapter translates between the shop's terms and one
//! protocol module (`wxpay/v2`, `wxpay/v3`): `v2.rs`, and `v3/` with its
//! refund half and the mapping both halves share; the protocol modules stay pure and
//! know nothing of the domain, and the domain knows no protocol. Only `app`
//! imports an adapter; a second wallet adds a file (or folder) here.

pub mod bill;
pub mod v2;
pub mod v3;

pub use v2::WxPayV2;
pub use v3::WxPayV3;

use crate::values::clock::Millis;

/// A time the gateway gives (a payment's, a refund's) if it can be one at all:
/// not before WeChat Pay took payments, not more than a day ahead of this
/// machine's clock. An absurd one (1970, 2099) is dropped with a warning, so
/// the money's day falls back to when we recorded it instead of a day of the
/// books it never was. (Payments are held to their QR's life besides, in
/// `checkout::apply`.)
pub(crate) fn believable_time(at: Millis, text: &str) -> Option<Millis> {
    const EARLIEST_MS: i64 = 1_388_534_400_000; // 2014-01-01T00:00:00Z
    let latest = jiff::Timestamp::now().as_millisecond() + 24 * 3600 * 1000;
    if (EARLIEST_MS..=latest).contains(&at.get()) {
        Some(at)
    } else {
        tracing::warn!(
            time = text,
            "the gateway's time is not believable: not kept"
        );
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_gateway_times_are_not_kept() {
        let now = jiff::Timestamp::now().as_millisecond();
        for (ms, kept) in [
            (0, false),
            (1_388_534_399_999, false),
            (1_388_534_400_000, true),
            (now, true),
            (now + 23 * 3600 * 1000, true),
            (now + 25 * 3600 * 1000, false),
            (4_102_444_800_000, false), // 2100
        ] {
            assert_eq!(believable_time(Millis(ms), "t").is_some(), kept, "{ms}");
        }
    }
}
