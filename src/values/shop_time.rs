//! The shop's calendar: days and months in the shop's time zone, as UTC
//! millisecond ranges the store can compare against.
//!
//! Times in the database are UTC milliseconds, but a shop's day starts at its
//! own midnight. SQLite knows nothing of time-zone rules, so the days are cut
//! here and the store only ever sees `[from_ms, to_ms)` ranges.

use jiff::civil::Date;
use jiff::tz::{Offset, TimeZone};

use crate::values::clock::Millis;
use jiff::{Timestamp, ToSpan, Zoned};

/// Beijing time (UTC+8): the zone of every WeChat Pay timestamp and of the
/// gateway's day (its bills), whatever the server's or the shop's zone.
pub fn beijing() -> TimeZone {
    TimeZone::fixed(Offset::constant(8))
}

/// A UTC millisecond as the shop's wall-clock time, as pages and the CSV show it.
/// A column out of jiff's range (never written by us) shows as the epoch.
pub fn shop_time(tz: &TimeZone, at: Millis) -> String {
    at.to_timestamp()
        .to_zoned(tz.clone())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// The UTC millisecond at which `day` starts in `tz` (not always 00:00: some
/// zones skip midnight when daylight saving starts).
pub fn day_start_ms(tz: &TimeZone, day: Date) -> Result<i64, jiff::Error> {
    Ok(day
        .to_zoned(tz.clone())?
        .start_of_day()?
        .timestamp()
        .as_millisecond())
}

/// The shop day of a UTC millisecond.
pub fn shop_day(tz: &TimeZone, ms: i64) -> Result<Date, jiff::Error> {
    Ok(Timestamp::from_millisecond(ms)?.to_zoned(tz.clone()).date())
}

/// A half-open range of UTC milliseconds, `[from_ms, to_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from_ms: i64,
    pub to_ms: i64,
}

/// Today's and this month's ranges as of `now`, in `now`'s time zone; both
/// end where tomorrow starts.
pub fn today_and_month(now: &Zoned) -> Result<(Range, Range), jiff::Error> {
    let tz = now.time_zone();
    let today = now.date();
    let tomorrow = day_start_ms(tz, today.tomorrow()?)?;
    Ok((
        Range {
            from_ms: day_start_ms(tz, today)?,
            to_ms: tomorrow,
        },
        Range {
            from_ms: day_start_ms(tz, today.first_of_month())?,
            to_ms: tomorrow,
        },
    ))
}

/// How revenue is bucketed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Day,
    Month,
}

/// Consecutive periods of shop time: each period's first day and the UTC
/// millisecond it starts at, then the end of the last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Periods {
    first_days: Vec<Date>,
    /// One more than `first_days`: the last is the end of the last period.
    bounds: Vec<i64>,
}

impl Periods {
    /// The shop days (or months, the first and last cut to the range) from
    /// `first` to `last` inclusive, in `tz`.
    pub fn new(
        tz: &TimeZone,
        first: Date,
        last: Date,
        granularity: Granularity,
    ) -> Result<Periods, jiff::Error> {
        let mut first_days = Vec::new();
        let mut bounds = Vec::new();
        let mut day = first;
        while day <= last {
            first_days.push(day);
            bounds.push(day_start_ms(tz, day)?);
            day = match granularity {
                Granularity::Day => day.tomorrow(),
                Granularity::Month => day.first_of_month().checked_add(1.month()),
            }?;
        }
        if !first_days.is_empty() {
            bounds.push(day_start_ms(tz, last.tomorrow()?)?);
        }
        Ok(Periods { first_days, bounds })
    }

    pub fn len(&self) -> usize {
        self.first_days.len()
    }

    pub fn is_empty(&self) -> bool {
        self.first_days.is_empty()
    }

    /// Each period's first day, in order.
    pub fn first_days(&self) -> &[Date] {
        &self.first_days
    }

    /// Where each period starts (UTC ms), then where the last one ends.
    pub fn bounds(&self) -> &[i64] {
        &self.bounds
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    fn shanghai() -> TimeZone {
        TimeZone::get("Asia/Shanghai").unwrap()
    }

    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn shop_days_start_at_the_shops_midnight() {
        let tz = shanghai();
        assert_eq!(
            day_start_ms(&tz, date(2024, 6, 2)).unwrap(),
            ms("2024-06-01T16:00:00Z")
        );
        // A day with a daylight-saving change is 23 hours long, not 24.
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let d31 = day_start_ms(&berlin, date(2024, 3, 31)).unwrap();
        let a01 = day_start_ms(&berlin, date(2024, 4, 1)).unwrap();
        assert_eq!(a01 - d31, 23 * 3600 * 1000);
        // Where midnight does not exist, the day starts at the first instant it has.
        let santiago = TimeZone::get("America/Santiago").unwrap();
        assert_eq!(
            day_start_ms(&santiago, date(2024, 9, 8)).unwrap(),
            ms("2024-09-08T04:00:00Z")
        );
        assert_eq!(
            shop_day(&tz, ms("2024-06-01T15:59:59.999Z")).unwrap(),
            date(2024, 6, 1)
        );
        assert_eq!(
            shop_day(&tz, ms("2024-06-01T16:00:00Z")).unwrap(),
            date(2024, 6, 2)
        );
    }

    #[test]
    fn shop_time_is_the_shops_wall_clock() {
        let tz = shanghai();
        assert_eq!(
            shop_time(&tz, Millis(ms("2024-06-01T16:00:00Z"))),
            "2024-06-02 00:00:00"
        );
        assert_eq!(
            shop_time(&TimeZone::UTC, Millis(i64::MAX)),
            "1970-01-01 00:00:00"
        );
    }

    #[test]
    fn today_and_month_end_where_tomorrow_starts() {
        let now = Timestamp::from_millisecond(ms("2024-06-16T02:00:00Z"))
            .unwrap()
            .to_zoned(shanghai());
        let (today, month) = today_and_month(&now).unwrap();
        assert_eq!(
            today,
            Range {
                from_ms: ms("2024-06-15T16:00:00Z"),
                to_ms: ms("2024-06-16T16:00:00Z"),
            }
        );
        assert_eq!(
            month,
            Range {
                from_ms: ms("2024-05-31T16:00:00Z"),
                to_ms: ms("2024-06-16T16:00:00Z"),
            }
        );
    }

    #[test]
    fn monthly_periods_are_cut_to_the_range() {
        let tz = shanghai();
        let p = Periods::new(
            &tz,
            date(2024, 5, 15),
            date(2024, 7, 10),
            Granularity::Month,
        )
        .unwrap();
        assert_eq!(
            p.first_days(),
            [date(2024, 5, 15), date(2024, 6, 1), date(2024, 7, 1)]
        );
        assert_eq!(p.bounds().len(), 4);
        assert_eq!(p.bounds()[3], ms("2024-07-10T16:00:00Z"));
        assert!(
            Periods::new(&tz, date(2024, 6, 2), date(2024, 6, 1), Granularity::Day)
                .unwrap()
                .is_empty()
        );
    }
}
