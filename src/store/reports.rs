//! The admin's questions: paid orders under a filter, totals, revenue per shop
//! day, CSV rows, one order's whole story (with its refunds), the refunds list
//! and the webhook deliveries.
//!
//! Read model (a decision, not an accident): the admin pages are reports, not
//! actions, so `web::admin` reads them straight from this read-only query
//! module instead of going through `checkout`. Nothing here writes; every
//! change to an order still goes through the domain.
//!
//! Shop days are cut into UTC ranges by `crate::values::shop_time`; here one ordered
//! pass over the rows fills the buckets.

use super::{events, qrs};
use jiff::civil::Date;
use rusqlite::types::ToSql;
use rusqlite::{Connection, OptionalExtension, Row};

use super::StoreError;
use super::events::EventRow;
use super::orders::{self, OrderRow};
use super::outbox::{self, Delivery};
use super::payments::{self, NotificationRow, PaymentRow};
use super::qrs::QrRow;
use super::refunds::{self, REFUND_COLS, RefundRow, refund_row};
use crate::values::clock::Millis;
use crate::values::money::Fen;
use crate::values::order::{OrderId, OrderNo};
use crate::values::shop_time::{Periods, Range};
use crate::values::trade::{OutTradeNo, TransactionId};

/// Which paid orders the admin is looking at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Paid at or after (UTC ms, inclusive): the start of the first shop day.
    pub from_ms: i64,
    /// Paid before (UTC ms, exclusive): the start of the day after the last.
    pub to_ms: i64,
    pub cashier_id: Option<i64>,
    /// Part of an order number, of any of its QRs' out_trade_no, or of any of
    /// its payments' transaction_id.
    pub search: Option<String>,
    /// Only orders flagged `late` or `double_paid`.
    pub flagged_only: bool,
}

impl Filter {
    /// Every paid order in `[from_ms, to_ms)`.
    pub fn between(from_ms: i64, to_ms: i64) -> Filter {
        Filter {
            from_ms,
            to_ms,
            ..Filter::default()
        }
    }

    /// Every paid order in a range of shop time.
    pub fn within(range: Range) -> Filter {
        Filter::between(range.from_ms, range.to_ms)
    }

    /// The LIKE pattern for the search text, `%`, `_` and `\` taken literally.
    fn pattern(&self) -> Option<String> {
        let s = self.search.as_deref()?.trim();
        if s.is_empty() {
            return None;
        }
        let mut p = String::with_capacity(s.len() + 2);
        p.push('%');
        for c in s.chars() {
            if matches!(c, '%' | '_' | '\\') {
                p.push('\\');
            }
            p.push(c);
        }
        p.push('%');
        Some(p)
    }
}

/// What an order `o` took: the sum of its payments (a double payment counts
/// twice, as the money came twice and each payment is refunded on its own),
/// its amount for a paid order without payment rows (none is written so now).
macro_rules! paid_sql {
    () => {
        "COALESCE((SELECT SUM(pp.amount_fen) FROM payments pp WHERE pp.order_id = o.id), o.amount_fen)"
    };
}

/// The `WHERE` clause every report shares; `o` is the orders table.
/// `orders_paid_at` (partial on `state = 'paid'`) serves the time range.
pub(crate) const FILTER_SQL: &str = "o.state = 'paid' AND o.paid_at >= :from AND o.paid_at < :to
    AND (:cashier IS NULL OR o.cashier_id = :cashier)
    AND (:flagged = 0 OR o.late = 1 OR o.double_paid = 1 OR o.anomaly = 1)
    AND (:q IS NULL
         OR o.order_no LIKE :q ESCAPE '\\'
         OR o.transaction_id LIKE :q ESCAPE '\\'
         OR EXISTS (SELECT 1 FROM qrs s WHERE s.order_id = o.id AND s.out_trade_no LIKE :q ESCAPE '\\')
         OR EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.id AND p.transaction_id LIKE :q ESCAPE '\\'))";

/// The filter's named parameters followed by `extra`.
fn params<'a>(
    f: &'a Filter,
    pattern: &'a Option<String>,
    extra: &[(&'a str, &'a dyn ToSql)],
) -> Vec<(&'a str, &'a dyn ToSql)> {
    let mut p: Vec<(&str, &dyn ToSql)> = vec![
        (":from", &f.from_ms),
        (":to", &f.to_ms),
        (":cashier", &f.cashier_id),
        (":flagged", &f.flagged_only),
        (":q", pattern),
    ];
    p.extend_from_slice(extra);
    p
}

/// A paid order as the admin's table and the CSV show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidOrder {
    pub id: OrderId,
    pub order_no: OrderNo,
    pub amount: Fen,
    pub description: String,
    pub paid_at: Millis,
    pub cashier: Option<String>,
    /// The QR that was paid (the first payment's).
    pub out_trade_no: Option<OutTradeNo>,
    pub transaction_id: Option<TransactionId>,
    pub late: bool,
    pub double_paid: bool,
    /// What went back (succeeded refunds).
    pub refunded: Fen,
    /// What was taken: every payment (twice `amount` when paid twice).
    pub paid: Fen,
}

const PAID_COLS: &str = concat!(
    "o.id, o.order_no, o.amount_fen, o.description, o.paid_at, u.username, \
     q.out_trade_no, o.transaction_id, o.late, o.double_paid, \
     (SELECT COALESCE(SUM(rf.amount_fen), 0) FROM refunds rf WHERE rf.order_id = o.id AND rf.state = 'succeeded'), ",
    paid_sql!()
);

const PAID_FROM: &str = "FROM orders o LEFT JOIN users u ON u.id = o.cashier_id \
     LEFT JOIN qrs q ON q.id = o.paid_qr_id";

fn paid_order(r: &Row<'_>) -> rusqlite::Result<PaidOrder> {
    Ok(PaidOrder {
        id: r.get(0)?,
        order_no: r.get(1)?,
        amount: Fen::new(r.get(2)?),
        description: r.get(3)?,
        paid_at: r.get(4)?,
        cashier: r.get(5)?,
        out_trade_no: r.get(6)?,
        transaction_id: r.get(7)?,
        late: r.get(8)?,
        double_paid: r.get(9)?,
        refunded: Fen::new(r.get(10)?),
        paid: Fen::new(r.get(11)?),
    })
}

/// One page of the filter's paid orders, newest first.
pub fn paid_orders(
    conn: &Connection,
    filter: &Filter,
    limit: usize,
    offset: usize,
) -> Result<Vec<PaidOrder>, StoreError> {
    let pattern = filter.pattern();
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    let mut st = conn.prepare_cached(&format!(
        "SELECT {PAID_COLS} {PAID_FROM} WHERE {FILTER_SQL}
         ORDER BY o.paid_at DESC, o.id DESC LIMIT :limit OFFSET :offset"
    ))?;
    let p = params(
        filter,
        &pattern,
        &[(":limit", &limit), (":offset", &offset)],
    );
    let rows = st.query_map(p.as_slice(), paid_order)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Where a keyset walk over paid orders stopped: the last row's `(paid_at, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub paid_at: i64,
    pub id: i64,
}

/// Calls `f` for each of the next `limit` paid orders of the filter after
/// `after`, oldest first by `(paid_at, id)`, without collecting them.
/// Returns where to continue, or `None` when there is nothing more.
pub fn each_paid_order(
    conn: &Connection,
    filter: &Filter,
    after: Option<Cursor>,
    limit: usize,
    mut f: impl FnMut(&PaidOrder),
) -> Result<Option<Cursor>, StoreError> {
    let pattern = filter.pattern();
    let after = after.unwrap_or(Cursor {
        paid_at: i64::MIN,
        id: i64::MIN,
    });
    let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut st = conn.prepare_cached(&format!(
        "SELECT {PAID_COLS} {PAID_FROM} WHERE {FILTER_SQL}
           AND (o.paid_at > :after_at OR (o.paid_at = :after_at AND o.id > :after_id))
         ORDER BY o.paid_at, o.id LIMIT :limit"
    ))?;
    let p = params(
        filter,
        &pattern,
        &[
            (":after_at", &after.paid_at),
            (":after_id", &after.id),
            (":limit", &limit_sql),
        ],
    );
    let mut rows = st.query(p.as_slice())?;
    let mut seen = 0usize;
    let mut last = None;
    while let Some(r) = rows.next()? {
        let o = paid_order(r)?;
        f(&o);
        seen += 1;
        last = Some(Cursor {
            paid_at: o.paid_at.get(),
            id: o.id.0,
        });
    }
    Ok(if seen == limit { last } else { None })
}

/// How many paid orders and how much money they took (gross: every payment).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub count: i64,
    pub sum: Fen,
}

pub fn totals(conn: &Connection, filter: &Filter) -> Result<Totals, StoreError> {
    let pattern = filter.pattern();
    let mut st = conn.prepare_cached(&format!(
        "SELECT COUNT(*), COALESCE(SUM({}), 0) FROM orders o WHERE {FILTER_SQL}",
        paid_sql!()
    ))?;
    let p = params(filter, &pattern, &[]);
    Ok(st.query_row(p.as_slice(), |r| {
        Ok(Totals {
            count: r.get(0)?,
            sum: Fen::new(r.get(1)?),
        })
    })?)
}

/// Orders paid more than once, over all time: each needs a refund.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DoublePaid {
    pub count: i64,
    /// When the oldest of them was (first) paid, to link to all of them.
    pub oldest_paid_at: Option<Millis>,
}

pub fn double_paid(conn: &Connection) -> Result<DoublePaid, StoreError> {
    Ok(conn.query_row(
        "SELECT COUNT(*), MIN(paid_at) FROM orders WHERE double_paid = 1",
        [],
        |r| {
            Ok(DoublePaid {
                count: r.get(0)?,
                oldest_paid_at: r.get(1)?,
            })
        },
    )?)
}

/// Revenue of one shop day (or one month, starting at `first_day`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub first_day: Date,
    pub count: i64,
    pub sum: Fen,
}

/// Revenue of the filter in each of `periods`; periods without a sale are
/// there with zeros.
pub fn revenue(
    conn: &Connection,
    filter: &Filter,
    periods: &Periods,
) -> Result<Vec<Period>, StoreError> {
    let bounds = periods.bounds();
    let mut out: Vec<Period> = periods
        .first_days()
        .iter()
        .map(|&first_day| Period {
            first_day,
            count: 0,
            sum: Fen::ZERO,
        })
        .collect();
    let (Some(&start), Some(&end)) = (bounds.first(), bounds.last()) else {
        return Ok(out);
    };
    let pattern = filter.pattern();
    let mut st = conn.prepare_cached(&format!(
        "SELECT o.paid_at, {} FROM orders o WHERE {FILTER_SQL}
           AND o.paid_at >= :start AND o.paid_at < :end
         ORDER BY o.paid_at",
        paid_sql!()
    ))?;
    let p = params(filter, &pattern, &[(":start", &start), (":end", &end)]);
    let mut rows = st.query(p.as_slice())?;
    // Rows come in time order, so the period only ever moves forward.
    let mut i = 0;
    while let Some(r) = rows.next()? {
        let paid_at: i64 = r.get(0)?;
        let amount = Fen::new(r.get(1)?);
        while i + 1 < out.len() && paid_at >= bounds[i + 1] {
            i += 1;
        }
        let p = &mut out[i];
        p.count += 1;
        p.sum = p.sum.checked_add(amount).unwrap_or(p.sum);
    }
    Ok(out)
}

/// Everything known about one order.
#[derive(Debug, Clone)]
pub struct OrderDetail {
    pub order: OrderRow,
    pub cashier: Option<String>,
    pub qrs: Vec<QrRow>,
    pub notifications: Vec<NotificationRow>,
    pub events: Vec<EventRow>,
    pub payments: Vec<PaymentRow>,
    /// Every refund, oldest first.
    pub refunds: Vec<RefundRow>,
    /// What went back (succeeded refunds).
    pub refunded: Fen,
}

pub fn order_detail(
    conn: &Connection,
    order_no: &OrderNo,
) -> Result<Option<OrderDetail>, StoreError> {
    let Some(order) = orders::order_by_no(conn, order_no)? else {
        return Ok(None);
    };
    let cashier = match order.cashier_id {
        Some(id) => conn
            .query_row("SELECT username FROM users WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?,
        None => None,
    };
    Ok(Some(OrderDetail {
        cashier,
        qrs: qrs::qrs_of_order(conn, order.id)?,
        notifications: payments::notifications_of_order(conn, order.id)?,
        events: events::events_of(conn, order.id)?,
        payments: payments::payments_of(conn, order.id)?,
        refunds: refunds::refunds_of_order(conn, order.id)?,
        refunded: refunds::refunded_of_order(conn, order.id)?,
        order,
    }))
}

/// Users who can take orders, for the cashier filter: `(id, username)`.
pub fn cashiers(conn: &Connection) -> Result<Vec<(i64, String)>, StoreError> {
    Ok(super::users::list_users(conn)?
        .into_iter()
        .map(|u| (u.id, u.username))
        .collect())
}

/// Which page of the table, and how many orders a page holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// 1-based; a page past the end is read as the last one.
    pub number: usize,
    pub size: usize,
}

impl Page {
    /// Pages needed for `count` orders (at least one, even when empty).
    pub fn count(self, count: i64) -> usize {
        usize::try_from(count)
            .unwrap_or(0)
            .div_ceil(self.size.max(1))
            .max(1)
    }
}

/// Everything `/admin` shows, read together.
#[derive(Debug, Clone)]
pub struct OrdersReport {
    pub today: Totals,
    pub month: Totals,
    pub double_paid: DoublePaid,
    /// The filter's totals over all its pages.
    pub selected: Totals,
    pub revenue: Vec<Period>,
    pub rows: Vec<PaidOrder>,
    /// The page actually read (1-based, at most `pages`).
    pub page: usize,
    pub pages: usize,
    pub cashiers: Vec<(i64, String)>,
}

/// The admin's front page: today's and this month's totals (all cashiers),
/// the filter's totals, revenue per period and one page of its rows.
pub fn orders_page(
    conn: &Connection,
    filter: &Filter,
    periods: &Periods,
    (today, month): (Range, Range),
    page: Page,
) -> Result<OrdersReport, StoreError> {
    // One snapshot, so the count, the chart and the rows agree.
    let tx = conn.unchecked_transaction()?;
    let c = &*tx;
    let selected = totals(c, filter)?;
    let pages = page.count(selected.count);
    let number = page.number.clamp(1, pages);
    Ok(OrdersReport {
        today: totals(c, &Filter::within(today))?,
        month: totals(c, &Filter::within(month))?,
        double_paid: double_paid(c)?,
        selected,
        revenue: revenue(c, filter, periods)?,
        rows: paid_orders(c, filter, page.size, (number - 1) * page.size)?,
        page: number,
        pages,
        cashiers: cashiers(c)?,
    })
}

/// A refund in the admin's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRefund {
    pub refund: RefundRow,
    pub order_no: OrderNo,
    pub transaction_id: TransactionId,
}

/// The filter of `/admin`, read for refunds: requested in the range, of orders
/// of the cashier, matching the search (also by out_refund_no), flagged orders.
const REFUND_FILTER_SQL: &str = "r.created_at >= :from AND r.created_at < :to
    AND (:cashier IS NULL OR o.cashier_id = :cashier)
    AND (:flagged = 0 OR o.late = 1 OR o.double_paid = 1 OR o.anomaly = 1)
    AND (:q IS NULL
         OR o.order_no LIKE :q ESCAPE '\\'
         OR r.out_refund_no LIKE :q ESCAPE '\\'
         OR p.transaction_id LIKE :q ESCAPE '\\'
         OR EXISTS (SELECT 1 FROM qrs s WHERE s.order_id = o.id AND s.out_trade_no LIKE :q ESCAPE '\\'))";

/// One page of the filter's refunds, newest first, and how many there are.
pub fn refunds_page(
    conn: &Connection,
    filter: &Filter,
    limit: usize,
    offset: usize,
) -> Result<(Vec<ListedRefund>, i64), StoreError> {
    let pattern = filter.pattern();
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    let from =
        "FROM refunds r JOIN orders o ON o.id = r.order_id JOIN payments p ON p.id = r.payment_id";
    let mut st = conn.prepare_cached(&format!(
        "SELECT {REFUND_COLS}, o.order_no, p.transaction_id {from} WHERE {REFUND_FILTER_SQL}
         ORDER BY r.created_at DESC, r.id DESC LIMIT :limit OFFSET :offset"
    ))?;
    let p = params(
        filter,
        &pattern,
        &[(":limit", &limit), (":offset", &offset)],
    );
    let rows = st.query_map(p.as_slice(), |r| {
        Ok(ListedRefund {
            refund: refund_row(r)?,
            order_no: r.get(18)?,
            transaction_id: r.get(19)?,
        })
    })?;
    let rows = rows.collect::<Result<_, _>>()?;
    let count: i64 = conn
        .prepare_cached(&format!("SELECT COUNT(*) {from} WHERE {REFUND_FILTER_SQL}"))?
        .query_row(params(filter, &pattern, &[]).as_slice(), |r| r.get(0))?;
    Ok((rows, count))
}

/// What went back (succeeded refunds) of the paid orders the filter selects,
/// the `refunded` beside `/admin`'s gross.
pub fn refunded_total(conn: &Connection, filter: &Filter) -> Result<Fen, StoreError> {
    let pattern = filter.pattern();
    let sql = format!(
        "SELECT COALESCE(SUM(r.amount_fen), 0) FROM refunds r JOIN orders o ON o.id = r.order_id
         WHERE r.state = 'succeeded' AND o.id IN (SELECT o.id FROM orders o WHERE {FILTER_SQL})"
    );
    let sum: i64 = conn
        .prepare_cached(&sql)?
        .query_row(params(filter, &pattern, &[]).as_slice(), |r| r.get(0))?;
    Ok(Fen::new(sum))
}

/// The webhook deliveries the admin sees: how many are pending, delivered and
/// given up, how many events wait to be fanned out, and the newest `limit`.
#[derive(Debug, Clone)]
pub struct Deliveries {
    pub pending: i64,
    pub delivered: i64,
    pub given_up: i64,
    pub waiting: i64,
    pub recent: Vec<Delivery>,
}

pub fn deliveries(conn: &Connection, limit: usize) -> Result<Deliveries, StoreError> {
    let (pending, delivered, given_up, waiting) = outbox::counts(conn)?;
    Ok(Deliveries {
        pending,
        delivered,
        given_up,
        waiting,
        recent: outbox::recent(conn, limit)?,
    })
}

#[cfg(test)]
mod tests {
    use jiff::civil::Date;
    use jiff::civil::date;
    use jiff::tz::TimeZone;
    use rusqlite::params;

    use super::*;
    use crate::store::fixtures::{Sale, ms, sale, store};
    use crate::store::payments::NewPayment;
    use crate::values::role::Role;
    use crate::values::shop_time::{Granularity, day_start_ms, today_and_month};

    fn shanghai() -> TimeZone {
        TimeZone::get("Asia/Shanghai").unwrap()
    }

    fn all_of_june() -> Filter {
        let tz = shanghai();
        Filter::between(
            day_start_ms(&tz, date(2024, 6, 1)).unwrap(),
            day_start_ms(&tz, date(2024, 7, 1)).unwrap(),
        )
    }

    #[test]
    fn daily_revenue_is_grouped_by_shop_day_across_utc_midnight() {
        let (_dir, store) = store();
        store
            .write_blocking(|tx| {
                // 23:59:59.999 on 1 June in Shanghai, but still 1 June in UTC too.
                sale(
                    tx,
                    Sale {
                        amount: 100,
                        paid_at: Some("2024-06-01T15:59:59.999Z"),
                        ..Sale::default()
                    },
                );
                // 00:00 on 2 June in Shanghai, 1 June in UTC.
                sale(
                    tx,
                    Sale {
                        amount: 200,
                        paid_at: Some("2024-06-01T16:00:00Z"),
                        ..Sale::default()
                    },
                );
                // 07:59 on 3 June in Shanghai, 2 June 23:59 UTC.
                sale(
                    tx,
                    Sale {
                        amount: 400,
                        paid_at: Some("2024-06-02T23:59:00Z"),
                        ..Sale::default()
                    },
                );
                // 31 May in Shanghai: outside the range.
                sale(
                    tx,
                    Sale {
                        amount: 800,
                        paid_at: Some("2024-05-31T15:59:59Z"),
                        ..Sale::default()
                    },
                );
                // Not paid.
                sale(
                    tx,
                    Sale {
                        amount: 1600,
                        paid_at: None,
                        ..Sale::default()
                    },
                );
                Ok(())
            })
            .unwrap();
        let tz = shanghai();
        let (first, last) = (date(2024, 6, 1), date(2024, 6, 4));
        let filter = Filter::between(
            day_start_ms(&tz, first).unwrap(),
            day_start_ms(&tz, last.tomorrow().unwrap()).unwrap(),
        );
        let periods = Periods::new(&tz, first, last, Granularity::Day).unwrap();
        assert_eq!(periods.len(), 4);
        let days = store
            .read_blocking(|c| revenue(c, &filter, &periods))
            .unwrap();
        let got: Vec<(Date, i64, i64)> = days
            .iter()
            .map(|p| (p.first_day, p.count, p.sum.get()))
            .collect();
        assert_eq!(
            got,
            vec![
                (date(2024, 6, 1), 1, 100),
                (date(2024, 6, 2), 1, 200),
                (date(2024, 6, 3), 1, 400),
                (date(2024, 6, 4), 0, 0),
            ]
        );
        let t = store.read_blocking(|c| totals(c, &filter)).unwrap();
        assert_eq!(
            t,
            Totals {
                count: 3,
                sum: Fen::new(700)
            }
        );

        // The same rows in UTC days fall differently.
        let utc = Periods::new(&TimeZone::UTC, first, last, Granularity::Day).unwrap();
        let days = store
            .read_blocking(|c| revenue(c, &Filter::between(0, i64::MAX), &utc))
            .unwrap();
        let sums: Vec<i64> = days.iter().map(|p| p.sum.get()).collect();
        assert_eq!(sums, vec![300, 400, 0, 0]);
    }

    #[test]
    fn monthly_revenue_starts_at_the_range_and_ends_with_it() {
        let (_dir, store) = store();
        store
            .write_blocking(|tx| {
                sale(
                    tx,
                    Sale {
                        amount: 1,
                        paid_at: Some("2024-05-20T04:00:00Z"),
                        ..Sale::default()
                    },
                );
                sale(
                    tx,
                    Sale {
                        amount: 2,
                        paid_at: Some("2024-05-31T16:30:00Z"),
                        ..Sale::default()
                    },
                );
                sale(
                    tx,
                    Sale {
                        amount: 4,
                        paid_at: Some("2024-07-10T04:00:00Z"),
                        ..Sale::default()
                    },
                );
                sale(
                    tx,
                    Sale {
                        amount: 8,
                        paid_at: Some("2024-07-12T04:00:00Z"),
                        ..Sale::default()
                    },
                );
                Ok(())
            })
            .unwrap();
        let tz = shanghai();
        let (first, last) = (date(2024, 5, 15), date(2024, 7, 10));
        let filter = Filter::between(
            day_start_ms(&tz, first).unwrap(),
            day_start_ms(&tz, last.tomorrow().unwrap()).unwrap(),
        );
        let periods = Periods::new(&tz, first, last, Granularity::Month).unwrap();
        let months = store
            .read_blocking(|c| revenue(c, &filter, &periods))
            .unwrap();
        let got: Vec<(Date, i64)> = months.iter().map(|p| (p.first_day, p.sum.get())).collect();
        assert_eq!(
            got,
            vec![
                (date(2024, 5, 15), 1),
                (date(2024, 6, 1), 2),
                (date(2024, 7, 1), 4)
            ]
        );
    }

    /// A named change to the June filter and the order numbers it should list.
    type Case<'a> = (&'a str, Box<dyn Fn(&mut Filter) + 'a>, Vec<&'a str>);

    #[test]
    fn filters_select_by_cashier_search_and_flags() {
        let (_dir, store) = store();
        let (a, b, c) = store
            .write_blocking(|tx| {
                crate::store::users::insert_user(tx, "ann", "x", Role::Cashier, 0)?;
                crate::store::users::insert_user(tx, "bob", "x", Role::Cashier, 0)?;
                let ann: i64 = tx.query_row("SELECT id FROM users WHERE username = 'ann'", [], |r| r.get(0))?;
                let bob: i64 = tx.query_row("SELECT id FROM users WHERE username = 'bob'", [], |r| r.get(0))?;
                let a = sale(tx, Sale { amount: 1250, cashier: Some(ann), description: "咖啡", paid_at: Some("2024-06-01T02:00:00Z"), transaction_id: "4200000001", ..Sale::default() });
                let b = sale(tx, Sale { amount: 29, cashier: Some(bob), paid_at: Some("2024-06-01T03:00:00Z"), transaction_id: "4200000002", late: true, ..Sale::default() });
                let c = sale(tx, Sale { amount: 500, cashier: Some(ann), paid_at: Some("2024-06-01T05:00:00Z"), transaction_id: "42000_%3", ..Sale::default() });
                sale(tx, Sale { amount: 700, cashier: Some(ann), paid_at: None, ..Sale::default() });
                // A second payment of c: it is double paid, and its transaction is searchable.
                tx.execute(
                    "INSERT INTO qrs (order_id, version, out_trade_no, state, time_start, time_expire, display_until, spbill_create_ip, created_at)
                     VALUES (?1, 2, 'SECONDQR', 'paid', 0, 1, 1, '127.0.0.1', 0)",
                    params![c.0],
                )?;
                let qr2 = tx.last_insert_rowid();
                payments::insert_payment(tx, &NewPayment {
                    transaction_id: &crate::values::trade::TransactionId::new("4200000099").unwrap(), qr_id: crate::values::order::QrId(qr2), order_id: crate::values::order::OrderId(c.0), amount: Fen::new(500),
                    source: crate::values::order::PaymentSource::Poll, openid: None, gateway_paid_at: None, late: false, double_paid: true, now: Millis(ms("2024-06-01T06:00:00Z")),
                })?;
                payments::flag_double_paid(tx, crate::values::order::OrderId(c.0))?;
                Ok((a, b, (c.0, c.1, ann)))
            })
            .unwrap();
        let (c_id, c_no, ann) = c;

        // Newest first, unpaid left out, names and QR joined in.
        let first = store
            .read_blocking(|conn| paid_orders(conn, &all_of_june(), 1, 2))
            .unwrap();
        assert_eq!(first[0].cashier.as_deref(), Some("ann"));
        assert_eq!(first[0].description, "咖啡");
        assert_eq!(
            first[0].out_trade_no.as_ref().map(OutTradeNo::as_str),
            Some(format!("{}-1-abc", a.1).as_str())
        );
        assert_eq!(
            first[0].transaction_id.as_ref().map(TransactionId::as_str),
            Some("4200000001")
        );

        let search = |s: &str| {
            let s = s.to_string();
            move |f: &mut Filter| f.search = Some(s.clone())
        };
        let b_qr = format!(" {}-1-ABC ", b.1);
        let (a_no, b_no) = (a.1.as_str(), b.1.as_str());
        let c_order_no = c_no.clone();
        let c_no = c_no.as_str();
        #[rustfmt::skip]
        let cases: Vec<Case<'_>> = vec![
            ("no filter", Box::new(|_| {}), vec![c_no, b_no, a_no]),
            ("one cashier", Box::new(move |f| f.cashier_id = Some(ann)), vec![c_no, a_no]),
            ("order number", Box::new(search(a_no)), vec![a_no]),
            ("out_trade_no, trimmed, any case", Box::new(search(&b_qr)), vec![b_no]),
            ("a second QR's out_trade_no", Box::new(search("SECONDQR")), vec![c_no]),
            ("a second payment's transaction", Box::new(search("4200000099")), vec![c_no]),
            ("the order's transaction", Box::new(search("4200000002")), vec![b_no]),
            // LIKE's wildcards are taken literally.
            ("LIKE wildcards", Box::new(search("_%")), vec![c_no]),
            ("blank search", Box::new(search("   ")), vec![c_no, b_no, a_no]),
            ("no match", Box::new(search("nothing")), vec![]),
            ("flagged only", Box::new(|f| f.flagged_only = true), vec![c_no, b_no]),
            // The range is half-open: an order paid exactly at `to` is left out.
            ("half-open range", Box::new(|f| f.to_ms = ms("2024-06-01T03:00:00Z")), vec![a_no]),
        ];
        for (name, change, want) in cases {
            let mut f = all_of_june();
            change(&mut f);
            let got = store
                .read_blocking(move |conn| paid_orders(conn, &f, 50, 0))
                .unwrap();
            let got: Vec<&str> = got.iter().map(|o| o.order_no.as_str()).collect();
            assert_eq!(got, want, "{name}");
        }

        let t = store
            .read_blocking(|conn| {
                totals(
                    conn,
                    &Filter {
                        cashier_id: Some(ann),
                        ..all_of_june()
                    },
                )
            })
            .unwrap();
        // Gross is what was taken: the double-paid order's second payment
        // counts too (issue 19).
        assert_eq!(
            t,
            Totals {
                count: 2,
                sum: Fen::new(2250)
            }
        );
        assert_eq!(
            store.read_blocking(double_paid).unwrap(),
            DoublePaid {
                count: 1,
                oldest_paid_at: Some(Millis(ms("2024-06-01T05:00:00Z")))
            }
        );

        let d = store
            .read_blocking(move |conn| order_detail(conn, &c_order_no))
            .unwrap()
            .unwrap();
        assert_eq!(d.order.id, crate::values::order::OrderId(c_id));
        assert_eq!(d.cashier.as_deref(), Some("ann"));
        assert_eq!(d.qrs.len(), 2);
        assert_eq!(d.payments.len(), 2);
        assert!(d.refunds.is_empty());
        assert_eq!(d.refunded, Fen::ZERO);
        let none = OrderNo::new("20240601", 9999);
        assert!(
            store
                .read_blocking(move |conn| order_detail(conn, &none))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn keyset_walk_visits_every_row_once_in_time_order() {
        let (_dir, store) = store();
        store
            .write_blocking(|tx| {
                // Two pairs share a paid_at: the id breaks the tie.
                for at in ["T01", "T02", "T02", "T03", "T04", "T04", "T05"] {
                    let h = &at[1..];
                    let paid_at = format!("2024-06-01T{h}:00:00Z");
                    sale(
                        tx,
                        Sale {
                            paid_at: Some(&paid_at),
                            ..Sale::default()
                        },
                    );
                }
                Ok(())
            })
            .unwrap();
        let mut seen = Vec::new();
        let mut after = None;
        let mut calls = 0;
        loop {
            calls += 1;
            let mut chunk = Vec::new();
            after = store
                .read_blocking(|c| {
                    each_paid_order(c, &all_of_june(), after, 2, |o| {
                        chunk.push((o.paid_at, o.id))
                    })
                })
                .unwrap();
            seen.extend(chunk);
            if after.is_none() {
                break;
            }
        }
        assert_eq!(calls, 4);
        assert_eq!(seen.len(), 7);
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(seen, sorted);
    }

    #[test]
    fn today_and_month_are_ranges_of_shop_time() {
        let (_dir, store) = store();
        store
            .write_blocking(|tx| {
                sale(
                    tx,
                    Sale {
                        amount: 1,
                        paid_at: Some("2024-06-15T16:30:00Z"),
                        ..Sale::default()
                    },
                ); // 16 June, 00:30
                sale(
                    tx,
                    Sale {
                        amount: 2,
                        paid_at: Some("2024-06-15T15:30:00Z"),
                        ..Sale::default()
                    },
                ); // 15 June
                sale(
                    tx,
                    Sale {
                        amount: 4,
                        paid_at: Some("2024-05-31T16:00:00Z"),
                        ..Sale::default()
                    },
                ); // 1 June, 00:00
                sale(
                    tx,
                    Sale {
                        amount: 8,
                        paid_at: Some("2024-05-31T15:59:00Z"),
                        ..Sale::default()
                    },
                ); // 31 May
                Ok(())
            })
            .unwrap();
        let now = jiff::Timestamp::from_millisecond(ms("2024-06-16T02:00:00Z"))
            .unwrap()
            .to_zoned(shanghai());
        let (today, month) = today_and_month(&now).unwrap();
        let today = store
            .read_blocking(move |c| totals(c, &Filter::within(today)))
            .unwrap();
        let month = store
            .read_blocking(move |c| totals(c, &Filter::within(month)))
            .unwrap();
        assert_eq!(
            today,
            Totals {
                count: 1,
                sum: Fen::new(1)
            }
        );
        assert_eq!(
            month,
            Totals {
                count: 3,
                sum: Fen::new(7)
            }
        );
    }

    #[test]
    fn the_orders_page_reads_everything_the_admin_sees_and_keeps_to_the_last_page() {
        let (_dir, store) = store();
        store
            .write_blocking(|tx| {
                for (amount, at) in [
                    (1, "2024-06-01T02:00:00Z"),
                    (2, "2024-06-02T02:00:00Z"),
                    (4, "2024-06-16T01:00:00Z"),
                ] {
                    sale(
                        tx,
                        Sale {
                            amount,
                            paid_at: Some(at),
                            ..Sale::default()
                        },
                    );
                }
                Ok(())
            })
            .unwrap();
        let tz = shanghai();
        let periods =
            Periods::new(&tz, date(2024, 6, 1), date(2024, 6, 30), Granularity::Day).unwrap();
        let now = jiff::Timestamp::from_millisecond(ms("2024-06-16T02:00:00Z"))
            .unwrap()
            .to_zoned(tz);
        let ranges = today_and_month(&now).unwrap();
        let page = Page {
            number: 99,
            size: 2,
        };
        let r = store
            .read_blocking(move |c| orders_page(c, &all_of_june(), &periods, ranges, page))
            .unwrap();
        assert_eq!((r.page, r.pages), (2, 2));
        assert_eq!(
            r.rows.len(),
            1,
            "the oldest order is alone on the last page"
        );
        assert_eq!(r.rows[0].amount, Fen::new(1));
        assert_eq!(
            r.selected,
            Totals {
                count: 3,
                sum: Fen::new(7)
            }
        );
        assert_eq!(
            r.today,
            Totals {
                count: 1,
                sum: Fen::new(4)
            }
        );
        assert_eq!(
            r.month,
            Totals {
                count: 3,
                sum: Fen::new(7)
            }
        );
        assert_eq!(r.revenue.len(), 30);
        assert_eq!(r.double_paid, DoublePaid::default());
        assert!(r.cashiers.is_empty());
        let first = Page { number: 0, size: 2 };
        assert_eq!(first.count(0), 1, "an empty selection still has one page");
    }
}
