//! The daily bills and what reconciling them found (migration 0008).

use jiff::civil::Date;
use rusqlite::types::{FromSql, FromSqlError, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::StoreError;
use crate::values::books::{DayState, Difference, DifferenceKind};
use crate::values::clock::Millis;
use crate::values::money::Fen;
use crate::values::order::{OrderId, OrderNo};
use crate::values::trade::{OutRefundNo, OutTradeNo, TransactionId};

/// A bill's day (Beijing time), stored as `YYYY-MM-DD`: jiff's own text of a date.
struct Day(Date);

impl FromSql for Day {
    fn column_result(v: ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        v.as_str()?
            .parse()
            .map(Day)
            .map_err(|e: jiff::Error| FromSqlError::Other(Box::new(e)))
    }
}

/// The day as it is stored (the key of `bills` and `bill_differences`).
fn day_key(day: Date) -> String {
    day.to_string()
}

/// `bill_differences` keeps "none" as the empty text (its columns are NOT NULL).
fn blank_as_none<T: FromSql>(r: &Row<'_>, i: usize) -> rusqlite::Result<Option<T>> {
    match r.get_ref(i)? {
        ValueRef::Text([]) => Ok(None),
        _ => r.get(i).map(Some),
    }
}

/// One day as reconciled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRow {
    pub day: Date,
    pub state: DayState,
    pub checked_at: Millis,
    pub gross: Fen,
    pub refunded: Fen,
    pub fee_millifen: i64,
    pub net: Fen,
    pub payments: i64,
    pub refunds: i64,
    pub last_error: Option<String>,
}

/// A difference as kept, with the order it concerns when the order is ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DifferenceRow {
    pub difference: Difference,
    pub order_id: Option<OrderId>,
    /// The order's number, read back with the difference (for links).
    pub order_no: Option<OrderNo>,
}

/// Replaces what is known of `day` (a day may be reconciled again: the last
/// word stands), in the caller's transaction; the bill's text is kept gzipped.
pub fn record_day(
    tx: &Transaction<'_>,
    row: &DayRow,
    raw: Option<&str>,
    differences: &[DifferenceRow],
) -> Result<(), StoreError> {
    let day = day_key(row.day);
    tx.execute("DELETE FROM bill_differences WHERE day = ?1", [&day])?;
    tx.execute(
        "INSERT INTO bills (day, state, checked_at, gross_fen, refunded_fen, fee_millifen, net_fen,
                            payments, refunds, raw_gzip, last_error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (day) DO UPDATE SET state = ?2, checked_at = ?3, gross_fen = ?4,
             refunded_fen = ?5, fee_millifen = ?6, net_fen = ?7, payments = ?8, refunds = ?9,
             raw_gzip = COALESCE(?10, raw_gzip), last_error = ?11",
        params![
            day,
            row.state,
            row.checked_at,
            row.gross.get(),
            row.refunded.get(),
            row.fee_millifen,
            row.net.get(),
            row.payments,
            row.refunds,
            raw.map(|r| crate::base::gzip::gzip(r.as_bytes())),
            row.last_error
        ],
    )?;
    let mut st = tx.prepare_cached(
        "INSERT INTO bill_differences (day, kind, out_trade_no, transaction_id, out_refund_no,
                                       ours_fen, theirs_fen, order_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for d in differences {
        let x = &d.difference;
        st.execute(params![
            day,
            x.kind,
            x.out_trade_no,
            x.transaction_id.as_ref().map_or("", TransactionId::as_str),
            x.out_refund_no.as_ref().map_or("", OutRefundNo::as_str),
            x.ours.map(Fen::get),
            x.theirs.map(Fen::get),
            d.order_id
        ])?;
    }
    Ok(())
}

/// A day that could not be checked (no bill yet, gateway down): kept as
/// `pending` with the reason, without touching an earlier result's figures.
pub fn record_pending(
    tx: &Transaction<'_>,
    day: Date,
    now: Millis,
    why: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO bills (day, state, checked_at, last_error) VALUES (?1, 'pending', ?2, ?3)
         ON CONFLICT (day) DO UPDATE SET checked_at = ?2, last_error = ?3,
             state = CASE WHEN state = 'pending' THEN 'pending' ELSE state END",
        params![day_key(day), now, why],
    )?;
    Ok(())
}

const DAY_COLS: &str = "day, state, checked_at, gross_fen, refunded_fen, fee_millifen, net_fen, payments, refunds, last_error";

fn day_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DayRow> {
    Ok(DayRow {
        day: r.get::<_, Day>(0)?.0,
        state: r.get(1)?,
        checked_at: r.get(2)?,
        gross: Fen::new(r.get(3)?),
        refunded: Fen::new(r.get(4)?),
        fee_millifen: r.get(5)?,
        net: Fen::new(r.get(6)?),
        payments: r.get(7)?,
        refunds: r.get(8)?,
        last_error: r.get(9)?,
    })
}

/// Every day checked, newest first.
pub fn days(c: &Connection, limit: usize) -> Result<Vec<DayRow>, StoreError> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {DAY_COLS} FROM bills ORDER BY day DESC LIMIT ?1"
    ))?;
    let rows = st.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], day_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn day(c: &Connection, day: Date) -> Result<Option<DayRow>, StoreError> {
    Ok(
        c.prepare_cached(&format!("SELECT {DAY_COLS} FROM bills WHERE day = ?1"))?
            .query_row([day_key(day)], day_row)
            .optional()?,
    )
}

pub fn differences(c: &Connection, day: Date) -> Result<Vec<DifferenceRow>, StoreError> {
    let mut st = c.prepare_cached(
        "SELECT d.kind, d.out_trade_no, d.transaction_id, d.out_refund_no, d.ours_fen,
                d.theirs_fen, d.order_id, o.order_no
         FROM bill_differences d LEFT JOIN orders o ON o.id = d.order_id
         WHERE d.day = ?1 ORDER BY d.id",
    )?;
    let rows = st.query_map([day_key(day)], |r| {
        let kind: DifferenceKind = r.get(0)?;
        Ok(DifferenceRow {
            difference: Difference {
                kind,
                out_trade_no: r.get(1)?,
                transaction_id: blank_as_none(r, 2)?,
                out_refund_no: blank_as_none(r, 3)?,
                ours: r.get::<_, Option<i64>>(4)?.map(Fen::new),
                theirs: r.get::<_, Option<i64>>(5)?.map(Fen::new),
            },
            order_id: r.get(6)?,
            order_no: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A payment as the books hold it, for one day's reconciliation: the
/// gateway's time of payment decides the day (the bill's day is the gateway's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookedPayment {
    pub out_trade_no: OutTradeNo,
    pub transaction_id: TransactionId,
    pub amount: Fen,
    /// When the gateway says it was paid.
    pub paid_at: Option<Millis>,
    pub created_at: Millis,
}

/// Payments recorded between `from` and `until` (a margin around the day:
/// the caller keeps those whose gateway time falls on it).
pub fn payments_recorded_between(
    c: &Connection,
    from: Millis,
    until: Millis,
) -> Result<Vec<BookedPayment>, StoreError> {
    let mut st = c.prepare_cached(
        "SELECT q.out_trade_no, p.transaction_id, p.amount_fen, p.gateway_paid_at, p.created_at
         FROM payments p JOIN qrs q ON q.id = p.qr_id
         WHERE p.created_at >= ?1 AND p.created_at < ?2 ORDER BY p.id",
    )?;
    let rows = st.query_map(params![from, until], |r| {
        Ok(BookedPayment {
            out_trade_no: r.get(0)?,
            transaction_id: r.get(1)?,
            amount: Fen::new(r.get(2)?),
            paid_at: r.get(3)?,
            created_at: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A refund that succeeded, as the books hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookedRefund {
    pub out_refund_no: OutRefundNo,
    pub out_trade_no: OutTradeNo,
    pub amount: Fen,
    pub finished_at: Millis,
    /// When the gateway says it succeeded, if it said.
    pub succeeded_at: Option<Millis>,
}

/// Refunds that succeeded between `from` and `until` (the caller keeps the day's).
pub fn refunds_finished_between(
    c: &Connection,
    from: Millis,
    until: Millis,
) -> Result<Vec<BookedRefund>, StoreError> {
    let mut st = c.prepare_cached(
        "SELECT r.out_refund_no, q.out_trade_no, r.amount_fen, r.finished_at, r.gateway_succeeded_at
         FROM refunds r JOIN payments p ON p.id = r.payment_id JOIN qrs q ON q.id = p.qr_id
         WHERE r.state = 'succeeded' AND r.finished_at >= ?1 AND r.finished_at < ?2
         ORDER BY r.id",
    )?;
    let rows = st.query_map(params![from, until], |r| {
        Ok(BookedRefund {
            out_refund_no: r.get(0)?,
            out_trade_no: r.get(1)?,
            amount: Fen::new(r.get(2)?),
            finished_at: r.get(3)?,
            succeeded_at: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A day and its differences read back as they were written: "none" kept
    /// as the empty text and read back as none, the day as `YYYY-MM-DD`.
    #[test]
    fn a_day_and_its_differences_round_trip() {
        let (_dir, store) = crate::store::fixtures::store();
        let on: Date = "2026-12-01".parse().unwrap();
        let row = DayRow {
            day: on,
            state: DayState::Differences,
            checked_at: Millis(5),
            gross: Fen::new(300),
            refunded: Fen::new(50),
            fee_millifen: 1800,
            net: Fen::new(248),
            payments: 2,
            refunds: 1,
            last_error: None,
        };
        let payment = Difference {
            kind: DifferenceKind::MissingHere,
            out_trade_no: OutTradeNo::new("T1").unwrap(),
            transaction_id: Some(TransactionId::new("4200001").unwrap()),
            out_refund_no: None,
            ours: None,
            theirs: Some(Fen::new(100)),
        };
        let refund = Difference {
            kind: DifferenceKind::RefundMissingInBill,
            out_trade_no: OutTradeNo::new("T2").unwrap(),
            transaction_id: None,
            out_refund_no: Some(OutRefundNo::new("R2").unwrap()),
            ours: Some(Fen::new(50)),
            theirs: None,
        };
        let written: Vec<DifferenceRow> = [payment, refund]
            .into_iter()
            .map(|difference| DifferenceRow {
                difference,
                order_id: None,
                order_no: None,
            })
            .collect();
        let (w, r) = (written.clone(), row.clone());
        store
            .write_blocking(move |tx| record_day(tx, &r, Some("bill"), &w))
            .unwrap();
        let (read_day, read_differences, stored_day, blanks) = store
            .read_blocking(move |c| {
                let stored: (String, i64) = c.query_row(
                    "SELECT day, (SELECT COUNT(*) FROM bill_differences
                                  WHERE transaction_id = '' OR out_refund_no = '')
                     FROM bills",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                Ok((day(c, on)?, differences(c, on)?, stored.0, stored.1))
            })
            .unwrap();
        assert_eq!(read_day, Some(row));
        assert_eq!(read_differences, written);
        assert_eq!(stored_day, "2026-12-01");
        assert_eq!(blanks, 2, "none is stored as the empty text, as before");
    }
}
