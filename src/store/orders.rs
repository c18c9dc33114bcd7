//! Orders: their rows, numbers, states and expiry. A QR's rows are in `qrs`,
//! the timeline in `events`, the cashier's day in `counter`.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::StoreError;
use crate::values::clock::Millis;
use crate::values::money::Fen;
use crate::values::order::{OrderId, OrderNo, OrderState, OrderToken, QrId, UserId};
use crate::values::trade::TransactionId;

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

pub(super) const ORDER_COLS: &str = "id, order_no, token, amount_fen, description, cashier_id, state, created_at, \
     expires_at, current_qr_id, paid_at, transaction_id, late, double_paid, ended_at, anomaly";

pub(super) fn order_row(r: &Row<'_>) -> rusqlite::Result<OrderRow> {
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

/// How many orders of one cashier are still open (each costs gateway calls),
/// counted no further than `cap`: the cap's check inside every creation then
/// costs the same at 10,000 open orders as at 10.
pub fn open_orders_of(c: &Connection, cashier: UserId, cap: u32) -> Result<u64, StoreError> {
    let n: i64 = c
        .prepare_cached(
            "SELECT COUNT(*) FROM (SELECT 1 FROM orders WHERE state = 'open' AND cashier_id = ?1 LIMIT ?2)",
        )?
        .query_row(params![cashier, cap], |r| r.get(0))?;
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Every line of `sql`'s query plan, joined.
    pub(crate) fn plan_of(c: &Connection, sql: &str) -> Result<String, StoreError> {
        let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
        let lines = st.query_map([], |r| r.get::<_, String>(3))?;
        Ok(lines.collect::<Result<Vec<_>, _>>()?.join("; "))
    }

    #[test]
    fn a_cashiers_open_orders_are_counted_without_reading_their_history() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        let plan = store
            .read_blocking(|c| {
                plan_of(
                    c,
                    "SELECT COUNT(*) FROM (SELECT 1 FROM orders WHERE state = 'open' AND cashier_id = 1 LIMIT 30)",
                )
            })
            .unwrap();
        assert!(plan.contains("orders_open_by_cashier"), "{plan}");
    }

    #[test]
    fn the_open_order_count_stops_at_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        let counted = store
            .write_blocking(|tx| {
                tx.execute_batch(
                    "INSERT INTO users (id, username, password_hash, role, created_at) VALUES (7, 'c', 'x', 'cashier', 0)",
                )?;
                for _ in 0..5 {
                    let token = OrderToken::generate();
                    let new = NewOrder {
                        token: &token,
                        amount: Fen::new(1),
                        description: "",
                        cashier_id: Some(UserId(7)),
                        now: Millis(0),
                        expires_at: Millis(1),
                        day: "20261201",
                    };
                    insert_order(tx, &new)?;
                }
                Ok((open_orders_of(tx, UserId(7), 3)?, open_orders_of(tx, UserId(7), 30)?))
            })
            .unwrap();
        assert_eq!(counted, (3, 5));
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
