//! Orders, their QRs and their event timeline.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::StoreError;
use crate::values::clock::Millis;
use crate::values::money::Fen;
use crate::values::order::{OrderId, OrderNo, OrderState, OrderToken, QrId, QrState, UserId};
use crate::values::trade::{OutTradeNo, TransactionId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    pub id: OrderId,
    pub order_no: OrderNo,
    pub token: OrderToken,
    pub amount: Fen,
    pub description: String,
    pub cashier_id: Option<UserId>,
    pub state: OrderState,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub current_qr_id: Option<QrId>,
    pub paid_at: Option<Millis>,
    pub transaction_id: Option<TransactionId>,
    pub late: bool,
    pub double_paid: bool,
    pub ended_at: Option<Millis>,
    /// A payment fact contradicted our records (see `apply_payment`): look at it.
    pub anomaly: bool,
}

const ORDER_COLS: &str = "id, order_no, token, amount_fen, description, cashier_id, state, created_at, \
     expires_at, current_qr_id, paid_at, transaction_id, late, double_paid, ended_at, anomaly";

fn order_row(r: &Row<'_>) -> rusqlite::Result<OrderRow> {
    Ok(OrderRow {
        id: r.get(0)?,
        order_no: r.get(1)?,
        token: r.get(2)?,
        amount: Fen::new(r.get(3)?),
        description: r.get(4)?,
        cashier_id: r.get(5)?,
        state: r.get(6)?,
        created_at: r.get(7)?,
        expires_at: r.get(8)?,
        current_qr_id: r.get(9)?,
        paid_at: r.get(10)?,
        transaction_id: r.get(11)?,
        late: r.get(12)?,
        double_paid: r.get(13)?,
        ended_at: r.get(14)?,
        anomaly: r.get(15)?,
    })
}

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

pub struct NewOrder<'a> {
    pub token: &'a OrderToken,
    pub amount: Fen,
    pub description: &'a str,
    pub cashier_id: Option<UserId>,
    pub now: Millis,
    pub expires_at: Millis,
    /// The creation day, `YYYYMMDD`, prefixed to the order number.
    pub day: &'a str,
}

/// When the first order was made (no order yet: `None`).
pub fn first_order_at(c: &Connection) -> Result<Option<Millis>, StoreError> {
    Ok(
        c.prepare_cached("SELECT created_at FROM orders ORDER BY id LIMIT 1")?
            .query_row([], |r| r.get(0))
            .optional()?,
    )
}

/// How many orders of one cashier are still open (each costs gateway calls).
pub fn open_orders_of(c: &Connection, cashier: UserId) -> Result<u64, StoreError> {
    let n: i64 = c
        .prepare_cached("SELECT COUNT(*) FROM orders WHERE state = 'open' AND cashier_id = ?1")?
        .query_row([cashier], |r| r.get(0))?;
    Ok(n.unsigned_abs())
}

/// Inserts an order and returns `(id, order_no)`. The number is the shop day
/// and the order's place in that day (`202612010042`): people can read it out,
/// and it tells a customer nothing of the shop's volume beyond that day.
pub fn insert_order(
    tx: &Transaction<'_>,
    o: &NewOrder<'_>,
) -> Result<(OrderId, OrderNo), StoreError> {
    let order_no = next_order_no(tx, o.day)?;
    tx.prepare_cached("INSERT INTO orders (order_no, token, amount_fen, description, cashier_id, state, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6, ?7)")?
        .execute(params![order_no, o.token, o.amount.get(), o.description, o.cashier_id, o.now, o.expires_at])?;
    Ok((OrderId(tx.last_insert_rowid()), order_no))
}

/// The day's next order number, inside the writing transaction (one writer, so
/// no two orders get the same place).
fn next_order_no(tx: &Transaction<'_>, day: &str) -> Result<OrderNo, StoreError> {
    // The day's counter; a day begun before it existed (an upgrade) starts from
    // the day's highest number, which sorts right while numbers have 4 digits.
    let counted: Option<i64> = tx
        .prepare_cached("SELECT last_seq FROM order_days WHERE day = ?1")?
        .query_row([day], |r| r.get(0))
        .optional()?;
    let last = match counted {
        Some(n) => n.unsigned_abs(),
        None => {
            // The day's numbers are the day followed by digits, so they sort
            // below `day:` (':' follows '9'); the index on order_no answers this.
            let last: Option<String> = tx
                .prepare_cached(
                    "SELECT MAX(order_no) FROM orders WHERE order_no > ?1 AND order_no < ?1 || ':'",
                )?
                .query_row([day], |r| r.get(0))?;
            last.and_then(|n| n.get(day.len()..).and_then(|s| s.parse::<u64>().ok()))
                .unwrap_or(0)
        }
    };
    let mut seq = last + 1;
    // Numbers of other widths sort out of step (and older versions numbered by
    // row id): never hand out one that exists.
    let mut taken =
        tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM orders WHERE order_no = ?1)")?;
    loop {
        let candidate = OrderNo::new(day, seq);
        if !taken.query_row([&candidate], |r| r.get::<_, bool>(0))? {
            tx.prepare_cached(
                "INSERT INTO order_days (day, last_seq) VALUES (?1, ?2)
                 ON CONFLICT (day) DO UPDATE SET last_seq = ?2",
            )?
            .execute(params![day, i64::try_from(seq).unwrap_or(i64::MAX)])?;
            return Ok(candidate);
        }
        seq += 1;
    }
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

pub fn order_by_token(
    conn: &Connection,
    token: &OrderToken,
) -> Result<Option<OrderRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {ORDER_COLS} FROM orders WHERE token = ?1"))?
        .query_row([token], order_row)
        .optional()?)
}

pub fn order_by_no(conn: &Connection, order_no: &OrderNo) -> Result<Option<OrderRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {ORDER_COLS} FROM orders WHERE order_no = ?1"
        ))?
        .query_row([order_no], order_row)
        .optional()?)
}

pub fn order_by_id(conn: &Connection, id: OrderId) -> Result<OrderRow, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {ORDER_COLS} FROM orders WHERE id = ?1"))?
        .query_row([id], order_row)?)
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

/// Moves an order between states; false if it was not in `from`.
pub fn set_order_state(
    tx: &Transaction<'_>,
    order_id: OrderId,
    from: OrderState,
    to: OrderState,
    now: Millis,
) -> Result<bool, StoreError> {
    Ok(tx
        .prepare_cached("UPDATE orders SET state = ?3, ended_at = ?4 WHERE id = ?1 AND state = ?2")?
        .execute(params![order_id, from, to, now])?
        == 1)
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

/// Open orders past their life.
pub fn due_expiries(
    conn: &Connection,
    now: Millis,
    limit: usize,
) -> Result<Vec<OrderRow>, StoreError> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {ORDER_COLS} FROM orders WHERE state = 'open' AND expires_at <= ?1
         ORDER BY expires_at LIMIT {limit}"
    ))?;
    let rows = st.query_map(params![now], order_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub at: Millis,
    pub kind: String,
    pub detail: String,
}

pub fn add_event(
    tx: &Transaction<'_>,
    order_id: OrderId,
    now: Millis,
    kind: &str,
    detail: &str,
) -> Result<(), StoreError> {
    tx.prepare_cached("INSERT INTO events (order_id, at, kind, detail) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![order_id, now, kind, detail])?;
    Ok(())
}

/// Whether the order's timeline already holds this very event.
pub fn has_event(
    conn: &Connection,
    order_id: OrderId,
    kind: &str,
    detail: &str,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM events WHERE order_id = ?1 AND kind = ?2 AND detail = ?3)",
        )?
        .query_row(params![order_id, kind, detail], |r| r.get(0))?)
}

pub fn events_of(conn: &Connection, order_id: OrderId) -> Result<Vec<EventRow>, StoreError> {
    let mut st =
        conn.prepare_cached("SELECT at, kind, detail FROM events WHERE order_id = ?1 ORDER BY id")?;
    let rows = st.query_map([order_id], |r| {
        Ok(EventRow {
            at: r.get(0)?,
            kind: r.get(1)?,
            detail: r.get(2)?,
        })
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

/// A cashier's orders created in `[from, to)`, newest first, at most `limit`
/// (the checkout page's "today").
pub fn cashier_orders_between(
    conn: &Connection,
    cashier: UserId,
    from: Millis,
    to: Millis,
    limit: usize,
) -> Result<Vec<OrderRow>, StoreError> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {ORDER_COLS} FROM orders
         WHERE cashier_id = ?1 AND created_at >= ?2 AND created_at < ?3
         ORDER BY created_at DESC, id DESC LIMIT ?4"
    ))?;
    let rows = st.query_map(
        params![cashier, from, to, i64::try_from(limit).unwrap_or(i64::MAX)],
        order_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How many orders a cashier created in `[from, to)`, and the sum of those paid.
pub fn cashier_totals_between(
    conn: &Connection,
    cashier: UserId,
    from: Millis,
    to: Millis,
) -> Result<(i64, i64, Fen), StoreError> {
    let (all, paid, sum): (i64, i64, i64) = conn
        .prepare_cached(
            "SELECT COUNT(*), COUNT(CASE WHEN state = 'paid' THEN 1 END),
                    COALESCE(SUM(CASE WHEN state = 'paid' THEN amount_fen END), 0)
             FROM orders WHERE cashier_id = ?1 AND created_at >= ?2 AND created_at < ?3",
        )?
        .query_row(params![cashier, from, to], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    Ok((all, paid, Fen::new(sum)))
}

/// The newest order a cashier created (what their customer display follows).
pub fn latest_order_of_cashier(
    conn: &Connection,
    cashier: UserId,
) -> Result<Option<OrderRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {ORDER_COLS} FROM orders WHERE cashier_id = ?1
             ORDER BY created_at DESC, id DESC LIMIT 1"
        ))?
        .query_row([cashier], order_row)
        .optional()?)
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

    #[test]
    fn a_cashiers_open_orders_are_counted_without_reading_their_history() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        let plan: String = store
            .read_blocking(|c| {
                Ok(c.query_row(
                    "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM orders WHERE state = 'open' AND cashier_id = 1",
                    [],
                    |r| r.get(3),
                )?)
            })
            .unwrap();
        assert!(plan.contains("orders_open_by_cashier"), "{plan}");
    }

    /// A ¥0.01 order of shop day `day` (YYYYMMDD); its number.
    fn order_on(tx: &Transaction<'_>, day: &str) -> Result<String, StoreError> {
        let token = OrderToken::generate();
        let new = NewOrder {
            token: &token,
            amount: Fen::new(1),
            description: "",
            cashier_id: None,
            now: Millis(0),
            expires_at: Millis(1),
            day,
        };
        Ok(insert_order(tx, &new)?.1.to_string())
    }

    #[test]
    fn past_9999_orders_a_day_the_numbers_go_on_in_step() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        let numbers = store
            .write_blocking(|tx| {
                tx.execute_batch(
                    "INSERT INTO order_days (day, last_seq) VALUES ('20261201', 9998)",
                )?;
                (0..3)
                    .map(|_| order_on(tx, "20261201"))
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap();
        // "2026120110000" sorts below "202612019999": MAX(order_no) alone would
        // hand out 10000 again and again, each a longer search.
        assert_eq!(numbers, ["202612019999", "2026120110000", "2026120110001"]);
    }

    #[test]
    fn order_numbers_count_within_the_shop_day() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        let numbers = store
            .write_blocking(|tx| {
                // A number an older version made (day + row id) is never handed out again.
                tx.execute_batch(
                    "INSERT INTO orders (order_no, token, amount_fen, description, state, created_at, expires_at)
                     VALUES ('202606010002', 'old', 1, '', 'open', 0, 0)",
                )?;
                ["20260531", "20260601", "20260601", "20260602"]
                    .into_iter()
                    .map(|day| order_on(tx, day))
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap();
        assert_eq!(
            numbers,
            [
                "202605310001",
                "202606010003",
                "202606010004",
                "202606020001"
            ]
        );
    }
}
