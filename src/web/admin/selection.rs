//! The query string of `/admin` and `/admin/orders.csv`, parsed once into a
//! `Selection`: which paid orders the admin is looking at.

use actix_web::{HttpRequest, web};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{ToSpan, Zoned};

use crate::store::reports::Filter;
use crate::values::shop_time::{Granularity, day_start_ms};
use crate::web::AppState;
use crate::web::auth::CurrentUser;
use crate::web::error::{WebError, urlencode};
use crate::web::i18n::Texts;

/// The default range: the last 30 shop days, today included.
const DEFAULT_DAYS: i64 = 30;
/// Longer ranges are refused (a typo'd year should not walk a century).
const MAX_RANGE_DAYS: i64 = 3660;
/// Up to this many days the chart has a bar per day, beyond a bar per month.
const MAX_DAILY_BARS: i64 = 93;
/// Longer search text is cut (no identifier we search is this long).
const MAX_SEARCH_CHARS: usize = 100;

/// The query string, as typed.
#[derive(Debug, Default, serde::Deserialize)]
pub struct AdminQuery {
    from: Option<String>,
    to: Option<String>,
    cashier: Option<String>,
    q: Option<String>,
    flagged: Option<String>,
    page: Option<String>,
}

/// The query string, read only once the user is known to be an admin.
pub(super) fn admin_query(req: &HttpRequest) -> Result<AdminQuery, WebError> {
    web::Query::<AdminQuery>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| {
            // Debug-quoted: the error may quote the (decoded) query.
            tracing::debug!(error.message = ?e.to_string(), "admin query refused");
            WebError::BadRequest(String::new())
        })
}

/// An admin page's selection (and the shop's time it was read at), read from its query string (admins only), and the
/// filter it makes in the shop's time zone.
pub(super) fn admin_selection(
    req: &HttpRequest,
    state: &AppState,
    user: &CurrentUser,
) -> Result<(Selection, Filter, Zoned), WebError> {
    user.require_admin()?;
    let now = state
        .checkout
        .now()
        .to_timestamp()
        .to_zoned(state.tz.clone());
    let sel = Selection::parse(&admin_query(req)?, now.date(), state.t)?;
    let filter = sel.filter(&state.tz, state.t)?;
    Ok((sel, filter, now))
}

/// The query parsed: which paid orders the admin is looking at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Selection {
    pub(super) first: Date,
    pub(super) last: Date,
    pub(super) cashier: Option<i64>,
    pub(super) q: String,
    pub(super) flagged: bool,
    pub(super) page: usize,
}

fn present(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl Selection {
    pub(super) fn parse(q: &AdminQuery, today: Date, t: &Texts) -> Result<Selection, WebError> {
        let bad_date = || WebError::BadRequest(t.bad_date.into());
        let date = |s: &Option<String>| {
            present(s)
                .map(|s| s.parse::<Date>().map_err(|_| bad_date()))
                .transpose()
        };
        let last = date(&q.to)?.unwrap_or(today);
        let first = match date(&q.from)? {
            Some(d) => d,
            None => last
                .checked_sub((DEFAULT_DAYS - 1).days())
                .map_err(|_| bad_date())?,
        };
        let (first, last) = if first > last {
            (last, first)
        } else {
            (first, last)
        };
        if days_between(first, last) >= MAX_RANGE_DAYS {
            return Err(WebError::BadRequest(t.range_too_long.into()));
        }
        let cashier = present(&q.cashier)
            .map(|c| {
                c.parse::<i64>()
                    .map_err(|_| WebError::BadRequest(t.bad_cashier.into()))
            })
            .transpose()?;
        let flagged = present(&q.flagged).is_some_and(|f| matches!(f, "1" | "on" | "true"));
        let page = present(&q.page)
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        Ok(Selection {
            first,
            last,
            cashier,
            q: present(&q.q)
                .unwrap_or_default()
                .chars()
                .take(MAX_SEARCH_CHARS)
                .collect(),
            flagged,
            page,
        })
    }

    /// Every flagged order from `since` (the shop day of the oldest double
    /// payment, if any) to `today`, the range cut to the longest allowed.
    pub(super) fn flagged_since(since: Option<Date>, today: Date) -> Selection {
        let oldest_allowed = today
            .checked_sub((MAX_RANGE_DAYS - 1).days())
            .unwrap_or(today);
        Selection {
            first: since.unwrap_or(today).clamp(oldest_allowed, today),
            last: today,
            cashier: None,
            q: String::new(),
            flagged: true,
            page: 1,
        }
    }

    pub(super) fn filter(&self, tz: &TimeZone, t: &Texts) -> Result<Filter, WebError> {
        let bad_date = |_| WebError::BadRequest(t.bad_date.into());
        let to = self.last.tomorrow().map_err(bad_date)?;
        Ok(Filter {
            from_ms: day_start_ms(tz, self.first).map_err(bad_date)?,
            to_ms: day_start_ms(tz, to).map_err(bad_date)?,
            cashier_id: self.cashier,
            search: (!self.q.is_empty()).then(|| self.q.clone()),
            flagged_only: self.flagged,
        })
    }

    pub(super) fn granularity(&self) -> Granularity {
        if days_between(self.first, self.last) < MAX_DAILY_BARS {
            Granularity::Day
        } else {
            Granularity::Month
        }
    }

    /// The selection as a query string (without the page), for links.
    pub(super) fn query_string(&self) -> String {
        let mut parts = vec![format!("from={}", self.first), format!("to={}", self.last)];
        if let Some(c) = self.cashier {
            parts.push(format!("cashier={c}"));
        }
        if !self.q.is_empty() {
            parts.push(format!("q={}", urlencode(&self.q)));
        }
        if self.flagged {
            parts.push("flagged=1".into());
        }
        parts.join("&")
    }
}

/// Whole days from `first` to `last` (0 when equal).
fn days_between(first: Date, last: Date) -> i64 {
    first.duration_until(last).as_secs() / 86_400
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;
    use crate::web::i18n::EN;

    fn query(pairs: &[(&str, &str)]) -> AdminQuery {
        let mut q = AdminQuery::default();
        for (k, v) in pairs {
            let v = Some(v.to_string());
            match *k {
                "from" => q.from = v,
                "to" => q.to = v,
                "cashier" => q.cashier = v,
                "q" => q.q = v,
                "flagged" => q.flagged = v,
                "page" => q.page = v,
                _ => unreachable!(),
            }
        }
        q
    }

    #[test]
    fn the_selection_defaults_to_the_last_30_days() {
        let today = date(2024, 3, 10);
        let s = Selection::parse(&query(&[("cashier", ""), ("q", "  ")]), today, &EN).unwrap();
        assert_eq!(
            s,
            Selection {
                first: date(2024, 2, 10),
                last: today,
                cashier: None,
                q: String::new(),
                flagged: false,
                page: 1,
            }
        );
        assert_eq!(s.query_string(), "from=2024-02-10&to=2024-03-10");
        assert_eq!(s.granularity(), Granularity::Day);
    }

    #[test]
    fn the_selection_parses_each_field_and_keeps_it_in_links() {
        let today = date(2024, 3, 10);
        let s = Selection::parse(
            &query(&[
                ("from", "2024-06-30"),
                ("to", "2024-01-01"),
                ("cashier", "2"),
                ("q", " 42 & x "),
                ("flagged", "1"),
                ("page", "0"),
            ]),
            today,
            &EN,
        )
        .unwrap();
        // A reversed range is put the right way round.
        assert_eq!((s.first, s.last), (date(2024, 1, 1), date(2024, 6, 30)));
        assert_eq!(s.page, 1);
        assert_eq!(
            s.query_string(),
            "from=2024-01-01&to=2024-06-30&cashier=2&q=42%20%26%20x&flagged=1"
        );
        assert_eq!(s.granularity(), Granularity::Month);
        let tz = TimeZone::get("Asia/Shanghai").unwrap();
        let f = s.filter(&tz, &EN).unwrap();
        assert_eq!(f.to_ms - f.from_ms, 182 * 86_400_000);
        assert_eq!(f.search.as_deref(), Some("42 & x"));

        for bad in [
            query(&[("from", "2024-13-01")]),
            query(&[("to", "yesterday")]),
            query(&[("cashier", "ann")]),
            query(&[("from", "1990-01-01")]),
        ] {
            assert!(matches!(
                Selection::parse(&bad, today, &EN),
                Err(WebError::BadRequest(_))
            ));
        }
    }

    #[test]
    fn the_flagged_link_reaches_back_to_the_oldest_double_payment_within_the_limit() {
        let today = date(2024, 3, 10);
        let s = Selection::flagged_since(Some(date(2024, 1, 5)), today);
        assert_eq!(s.query_string(), "from=2024-01-05&to=2024-03-10&flagged=1");
        assert_eq!(Selection::flagged_since(None, today).first, today);
        let long_ago = Selection::flagged_since(Some(date(1990, 1, 1)), today);
        assert_eq!(days_between(long_ago.first, today), MAX_RANGE_DAYS - 1);
        // A clock set back still links to a valid range.
        assert_eq!(
            Selection::flagged_since(Some(date(2025, 1, 1)), today).first,
            today
        );
    }
}
