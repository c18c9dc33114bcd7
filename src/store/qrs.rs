//! The QRs of an order: one row per code shown, its state at the gateway,
//! and the queues the poller works from (polls, closes, refreshes, resends).

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::StoreError;
use super::orders::{ORDER_COLS, OrderRow, order_row};
use crate::values::clock::Millis;
use crate::values::order::{OrderId, QrId, QrState};
use crate::values::trade::OutTradeNo;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrRow {
    pub id: QrId,
    pub order_id: OrderId,
    pub version: i64,
    pub out_trade_no: OutTradeNo,
    pub state: QrState,
    pub time_start: Millis,
    pub time_expire: Millis,
    pub display_until: Millis,
    /// The customer-facing client IP sent with the gateway order (column `spbill_create_ip`).
    pub client_ip: String,
    pub prepay_id: Option<String>,
    pub code_url: Option<String>,
    pub created_at: Millis,
    pub next_poll_at: Option<Millis>,
    pub polls: i64,
    pub errors: i64,
    pub next_close_at: Option<Millis>,
    pub last_error: Option<String>,
}

const QR_COLS: &str = "id, order_id, version, out_trade_no, state, time_start, time_expire, display_until, \
     spbill_create_ip, prepay_id, code_url, created_at, next_poll_at, polls, errors, next_close_at, last_error";

fn qr_row(r: &Row<'_>) -> rusqlite::Result<QrRow> {
    qr_row_at(r, 0)
}

/// A QR read from columns `base..base + 17` (after a join).
fn qr_row_at(r: &Row<'_>, base: usize) -> rusqlite::Result<QrRow> {
    Ok(QrRow {
        id: r.get(base)?,
        order_id: r.get(base + 1)?,
        version: r.get(base + 2)?,
        out_trade_no: r.get(base + 3)?,
        state: r.get(base + 4)?,
        time_start: r.get(base + 5)?,
        time_expire: r.get(base + 6)?,
        display_until: r.get(base + 7)?,
        client_ip: r.get(base + 8)?,
        prepay_id: r.get(base + 9)?,
        code_url: r.get(base + 10)?,
        created_at: r.get(base + 11)?,
        next_poll_at: r.get(base + 12)?,
        polls: r.get(base + 13)?,
        errors: r.get(base + 14)?,
        next_close_at: r.get(base + 15)?,
        last_error: r.get(base + 16)?,
    })
}

pub struct NewQr<'a> {
    pub order_id: OrderId,
    pub version: i64,
    pub out_trade_no: &'a OutTradeNo,
    pub time_start: Millis,
    pub time_expire: Millis,
    pub display_until: Millis,
    pub client_ip: &'a str,
    pub now: Millis,
}

/// Inserts a QR in state `creating` and makes it the order's current QR.
pub fn insert_qr(tx: &Transaction<'_>, q: &NewQr<'_>) -> Result<QrId, StoreError> {
    tx.prepare_cached("INSERT INTO qrs (order_id, version, out_trade_no, state, time_start, time_expire, display_until,
                          spbill_create_ip, created_at)
         VALUES (?1, ?2, ?3, 'creating', ?4, ?5, ?6, ?7, ?8)")?
        .execute(params![
            q.order_id,
            q.version,
            q.out_trade_no,
            q.time_start,
            q.time_expire,
            q.display_until,
            q.client_ip,
            q.now
        ])?;
    let id = QrId(tx.last_insert_rowid());
    tx.prepare_cached("UPDATE orders SET current_qr_id = ?1 WHERE id = ?2")?
        .execute(params![id, q.order_id])?;
    Ok(id)
}

pub fn qr_by_id(conn: &Connection, id: QrId) -> Result<QrRow, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {QR_COLS} FROM qrs WHERE id = ?1"))?
        .query_row([id], qr_row)?)
}

pub fn qr_by_out_trade_no(conn: &Connection, no: &OutTradeNo) -> Result<Option<QrRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {QR_COLS} FROM qrs WHERE out_trade_no = ?1"
        ))?
        .query_row([no], qr_row)
        .optional()?)
}

/// The SQL of `qrs_of_order`. No `ORDER BY`: with `order_id = ?1` it makes the
/// bundled SQLite (STAT4) re-plan the statement on every new `order_id`, which
/// was a quarter of the time of applying a payment; an order has a few QRs, so
/// sorting them here costs nothing.
const QRS_OF_ORDER: &str = "qrs WHERE order_id = ?1";

pub fn qrs_of_order(conn: &Connection, order_id: OrderId) -> Result<Vec<QrRow>, StoreError> {
    let mut st = conn.prepare_cached(&format!("SELECT {QR_COLS} FROM {QRS_OF_ORDER}"))?;
    let rows = st.query_map([order_id], qr_row)?;
    let mut qrs: Vec<QrRow> = rows.collect::<Result<_, _>>()?;
    qrs.sort_by_key(|q| q.version);
    Ok(qrs)
}

/// `creating` → `open` with the gateway's answer. False if the QR had moved on.
pub fn set_qr_open(
    tx: &Transaction<'_>,
    qr_id: QrId,
    prepay_id: Option<&str>,
    code_url: &str,
    next_poll_at: Millis,
) -> Result<bool, StoreError> {
    Ok(tx
        .prepare_cached(
            "UPDATE qrs SET state = 'open', prepay_id = ?2, code_url = ?3, next_poll_at = ?4,
                        errors = 0, last_error = NULL
         WHERE id = ?1 AND state = 'creating'",
        )?
        .execute(params![qr_id, prepay_id, code_url, next_poll_at])?
        == 1)
}

/// `creating` → `failed`, keeping the reason to show.
pub fn set_qr_failed(tx: &Transaction<'_>, qr_id: QrId, reason: &str) -> Result<bool, StoreError> {
    Ok(tx
        .prepare_cached(
            "UPDATE qrs SET state = 'failed', last_error = ?2, next_poll_at = NULL
         WHERE id = ?1 AND state = 'creating'",
        )?
        .execute(params![qr_id, reason])?
        == 1)
}

/// An open (or still-creating) QR is superseded: it must be closed at the gateway.
pub fn set_qr_closing(tx: &Transaction<'_>, qr_id: QrId, now: Millis) -> Result<bool, StoreError> {
    Ok(tx.prepare_cached("UPDATE qrs SET state = 'closing', next_close_at = ?2, next_poll_at = COALESCE(next_poll_at, ?2)
         WHERE id = ?1 AND state IN ('open', 'creating')")?
        .execute(params![qr_id, now])? == 1)
}

/// A QR in `failed` needs nothing more from the gateway.
pub fn set_failed_qr_closed(tx: &Transaction<'_>, qr_id: QrId) -> Result<bool, StoreError> {
    Ok(tx
        .prepare_cached(
            "UPDATE qrs SET state = 'closed', next_poll_at = NULL, next_close_at = NULL
         WHERE id = ?1 AND state = 'failed'",
        )?
        .execute(params![qr_id])?
        == 1)
}

/// `closing` (or `open`) → `closed`: the gateway will never take money for it.
pub fn set_qr_closed(tx: &Transaction<'_>, qr_id: QrId) -> Result<bool, StoreError> {
    Ok(tx
        .prepare_cached(
            "UPDATE qrs SET state = 'closed', next_poll_at = NULL, next_close_at = NULL
         WHERE id = ?1 AND state IN ('open', 'closing', 'creating')",
        )?
        .execute(params![qr_id])?
        == 1)
}

/// Any QR → `paid` (a payment is final whatever we thought of the QR).
pub fn set_qr_paid(tx: &Transaction<'_>, qr_id: QrId) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE qrs SET state = 'paid', next_poll_at = NULL, next_close_at = NULL WHERE id = ?1",
    )?
    .execute(params![qr_id])?;
    Ok(())
}

/// Records a poll's outcome and when to ask next (`None`: never).
pub fn schedule_poll(
    tx: &Transaction<'_>,
    qr_id: QrId,
    next_poll_at: Option<Millis>,
    errors: i64,
    error: Option<&str>,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE qrs SET next_poll_at = ?2, polls = polls + 1, errors = ?3,
                        last_error = COALESCE(?4, last_error)
         WHERE id = ?1 AND state IN ('open', 'closing')",
    )?
    .execute(params![qr_id, next_poll_at, errors, error])?;
    Ok(())
}

/// A close that did not go through is tried again at `next_close_at`.
pub fn schedule_close(
    tx: &Transaction<'_>,
    qr_id: QrId,
    next_close_at: Millis,
    error: &str,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE qrs SET next_close_at = ?2, errors = errors + 1, last_error = ?3
         WHERE id = ?1 AND state = 'closing'",
    )?
    .execute(params![qr_id, next_close_at, error])?;
    Ok(())
}

// The poller's questions below write their LIMIT into the SQL (it is fixed for
// the process): bound as `LIMIT ?`, SQLite (STAT4) re-planned each statement on
// every run, four times a second.

/// The QRs matching `filter` (a `WHERE … ORDER BY …` over one moment `?1`), at most `limit`.
fn qrs_where(
    conn: &Connection,
    filter: &str,
    at: Millis,
    limit: usize,
) -> Result<Vec<QrRow>, StoreError> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {QR_COLS} FROM qrs WHERE {filter} LIMIT {limit}"
    ))?;
    let rows = st.query_map(params![at], qr_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Polls due now: QRs the gateway may still take money for.
pub fn due_polls(conn: &Connection, now: Millis, limit: usize) -> Result<Vec<QrRow>, StoreError> {
    let filter = "next_poll_at <= ?1 AND state IN ('open', 'closing') ORDER BY next_poll_at";
    qrs_where(conn, filter, now, limit)
}

/// Closes due now.
pub fn due_closes(conn: &Connection, now: Millis, limit: usize) -> Result<Vec<QrRow>, StoreError> {
    let filter = "next_close_at <= ?1 AND state = 'closing' ORDER BY next_close_at";
    qrs_where(conn, filter, now, limit)
}

/// QRs left in `creating` since before `before`: a crash or a lost answer; send again.
pub fn stale_creations(
    conn: &Connection,
    before: Millis,
    limit: usize,
) -> Result<Vec<QrRow>, StoreError> {
    let filter = "state = 'creating' AND created_at <= ?1 ORDER BY created_at";
    qrs_where(conn, filter, before, limit)
}

/// Open orders whose current QR's screen life is over (and the order's is not);
/// a failed QR is tried again (as a new QR) at the same pace.
pub fn due_refreshes(
    conn: &Connection,
    now: Millis,
    limit: usize,
) -> Result<Vec<(OrderRow, QrRow)>, StoreError> {
    let cols_o = ORDER_COLS
        .split(", ")
        .map(|c| format!("o.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let cols_q = QR_COLS
        .split(", ")
        .map(|c| format!("q.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut st = conn.prepare_cached(&format!(
        // Driven from the QRs past their screen life (index qrs_display; CROSS JOIN
        // fixes that order), not from every open order: the number of open orders
        // must not set the cost of a tick.
        "SELECT {cols_o}, {cols_q} FROM qrs q CROSS JOIN orders o ON o.id = q.order_id
         WHERE q.state IN ('open', 'failed') AND q.display_until <= ?1
           AND o.current_qr_id = q.id AND o.state = 'open' AND o.expires_at > ?1
         ORDER BY q.display_until LIMIT {limit}"
    ))?;
    let rows = st.query_map(params![now], |r| {
        let o = order_row(r)?;
        let q = qr_row_at(r, 16)?;
        Ok((o, q))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Keeps a QR on screen a little longer (the customer is entering the password).
pub fn postpone_display(
    tx: &Transaction<'_>,
    qr_id: QrId,
    until: Millis,
) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE qrs SET display_until = ?2 WHERE id = ?1 AND state = 'open'")?
        .execute(params![qr_id, until])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qrs_of_an_order_are_planned_once_and_come_in_version_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        store
            .write_blocking(|tx| {
                tx.execute_batch(
                    "INSERT INTO orders (id, order_no, token, amount_fen, description, state, created_at, expires_at)
                     VALUES (1, 'a', 'a', 1, '', 'open', 0, 0), (2, 'b', 'b', 1, '', 'open', 0, 0);
                     INSERT INTO qrs (order_id, version, out_trade_no, state, time_start, time_expire,
                                      display_until, spbill_create_ip, created_at)
                     VALUES (1, 2, 'x2', 'open', 0, 0, 0, '', 0), (1, 1, 'x1', 'closed', 0, 0, 0, '', 0),
                            (2, 1, 'y1', 'open', 0, 0, 0, '', 0);",
                )?;
                Ok(())
            })
            .unwrap();
        store
            .read_blocking(|c| {
                for i in 0..10 {
                    let id = i % 2 + 1;
                    let versions: Vec<i64> = qrs_of_order(c, OrderId(id))?
                        .iter()
                        .map(|q| q.version)
                        .collect();
                    assert_eq!(versions, if id == 1 { vec![1, 2] } else { vec![1] });
                }
                let st = c.prepare_cached(&format!("SELECT {QR_COLS} FROM {QRS_OF_ORDER}"))?;
                assert_eq!(st.get_status(rusqlite::StatementStatus::RePrepare), 0);
                Ok(())
            })
            .unwrap();
    }
}
