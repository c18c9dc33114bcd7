//! The daily bills and what reconciling them found (migration 0008).

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::StoreError;
use crate::checkout::reconcile::{DayState, Difference, DifferenceKind};
use crate::clock::Millis;
use crate::money::Fen;
use crate::order::OrderId;

/// One day as reconciled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRow {
    pub day: String,
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
    pub order_no: Option<String>,
}

/// Replaces what is known of `day` (a day may be reconciled again: the last
/// word stands), in the caller's transaction; the bill's text is kept gzipped.
pub fn record_day(
    tx: &Transaction<'_>,
    row: &DayRow,
    raw: Option<&str>,
    differences: &[DifferenceRow],
) -> Result<(), StoreError> {
    tx.execute("DELETE FROM bill_differences WHERE day = ?1", [&row.day])?;
    tx.execute(
        "INSERT INTO bills (day, state, checked_at, gross_fen, refunded_fen, fee_millifen, net_fen,
                            payments, refunds, raw_gzip, last_error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (day) DO UPDATE SET state = ?2, checked_at = ?3, gross_fen = ?4,
             refunded_fen = ?5, fee_millifen = ?6, net_fen = ?7, payments = ?8, refunds = ?9,
             raw_gzip = COALESCE(?10, raw_gzip), last_error = ?11",
        params![
            row.day,
            row.state,
            row.checked_at,
            row.gross.get(),
            row.refunded.get(),
            row.fee_millifen,
            row.net.get(),
            row.payments,
            row.refunds,
            raw.map(|r| crate::bill::gzip(r.as_bytes())),
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
            row.day,
            x.kind,
            x.out_trade_no,
            x.transaction_id,
            x.out_refund_no,
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
    day: &str,
    now: Millis,
    why: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO bills (day, state, checked_at, last_error) VALUES (?1, 'pending', ?2, ?3)
         ON CONFLICT (day) DO UPDATE SET checked_at = ?2, last_error = ?3,
             state = CASE WHEN state = 'pending' THEN 'pending' ELSE state END",
        params![day, now, why],
    )?;
    Ok(())
}

const DAY_COLS: &str = "day, state, checked_at, gross_fen, refunded_fen, fee_millifen, net_fen, payments, refunds, last_error";

fn day_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DayRow> {
    Ok(DayRow {
        day: r.get(0)?,
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

pub fn day(c: &Connection, day: &str) -> Result<Option<DayRow>, StoreError> {
    Ok(
        c.prepare_cached(&format!("SELECT {DAY_COLS} FROM bills WHERE day = ?1"))?
            .query_row([day], day_row)
            .optional()?,
    )
}

pub fn differences(c: &Connection, day: &str) -> Result<Vec<DifferenceRow>, StoreError> {
    let mut st = c.prepare_cached(
        "SELECT d.kind, d.out_trade_no, d.transaction_id, d.out_refund_no, d.ours_fen,
                d.theirs_fen, d.order_id, o.order_no
         FROM bill_differences d LEFT JOIN orders o ON o.id = d.order_id
         WHERE d.day = ?1 ORDER BY d.id",
    )?;
    let rows = st.query_map([day], |r| {
        let kind: DifferenceKind = r.get(0)?;
        Ok(DifferenceRow {
            difference: Difference {
                kind,
                out_trade_no: r.get(1)?,
                transaction_id: r.get(2)?,
                out_refund_no: r.get(3)?,
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
    pub out_trade_no: String,
    pub transaction_id: String,
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
    pub out_refund_no: String,
    pub out_trade_no: String,
    pub amount: Fen,
    pub finished_at: Millis,
}

/// Refunds that succeeded between `from` and `until` (the caller keeps the day's).
pub fn refunds_finished_between(
    c: &Connection,
    from: Millis,
    until: Millis,
) -> Result<Vec<BookedRefund>, StoreError> {
    let mut st = c.prepare_cached(
        "SELECT r.out_refund_no, q.out_trade_no, r.amount_fen, r.finished_at
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
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
