//! The cashier's day: their orders and totals between two moments, and the
//! newest order (what their customer display follows).

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use super::orders::{ORDER_COLS, OrderRow, order_row};
use crate::values::clock::Millis;
use crate::values::money::Fen;
use crate::values::order::{OrderId, OrderNo, UserId};

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

/// The cashier-day figures are kept per quarter hour (migration 0013).
const QUARTER_MS: i64 = 900_000;

/// How many orders a cashier created in `[from, to)`, and the sum of those
/// paid: one aggregate over the quarter-hour figures the triggers keep, so a
/// busy day costs what a quiet one does. A range not cut on quarter hours
/// (no time zone makes one) is counted from the orders themselves.
pub fn cashier_totals_between(
    conn: &Connection,
    cashier: UserId,
    from: Millis,
    to: Millis,
) -> Result<(i64, i64, Fen), StoreError> {
    let row = |r: &rusqlite::Row<'_>| Ok((r.get(0)?, r.get(1)?, r.get(2)?));
    let (all, paid, sum): (i64, i64, i64) = if from.0 % QUARTER_MS == 0 && to.0 % QUARTER_MS == 0 {
        conn.prepare_cached(
            "SELECT COALESCE(SUM(created), 0), COALESCE(SUM(paid), 0), COALESCE(SUM(paid_fen), 0)
             FROM cashier_quarters WHERE cashier_id = ?1 AND quarter >= ?2 AND quarter < ?3",
        )?
        .query_row(
            params![cashier, from.0 / QUARTER_MS, to.0 / QUARTER_MS],
            row,
        )?
    } else {
        conn.prepare_cached(
            "SELECT COUNT(*), COUNT(CASE WHEN state = 'paid' THEN 1 END),
                    COALESCE(SUM(CASE WHEN state = 'paid' THEN amount_fen END), 0)
             FROM orders WHERE cashier_id = ?1 AND created_at >= ?2 AND created_at < ?3",
        )?
        .query_row(params![cashier, from, to], row)?
    };
    Ok((all, paid, Fen::new(sum)))
}

/// Where a page of the cashier's day starts: below this order in the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayCursor {
    created_at: Millis,
    id: OrderId,
}

/// The cursor just below the cashier's order numbered `order_no`, if it is theirs.
pub fn cursor_of(
    conn: &Connection,
    cashier: UserId,
    order_no: &OrderNo,
) -> Result<Option<DayCursor>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT created_at, id FROM orders WHERE order_no = ?1 AND cashier_id = ?2",
        )?
        .query_row(params![order_no, cashier], |r| {
            Ok(DayCursor {
                created_at: r.get(0)?,
                id: r.get(1)?,
            })
        })
        .optional()?)
}

/// A page of `cashier_orders_between`: at most `limit` orders below `after`
/// (from the top without one), by the same order, so pages neither skip nor
/// repeat an order however many are created meanwhile.
pub fn cashier_orders_page(
    conn: &Connection,
    cashier: UserId,
    (from, to): (Millis, Millis),
    after: Option<DayCursor>,
    limit: usize,
) -> Result<Vec<OrderRow>, StoreError> {
    let Some(after) = after else {
        return cashier_orders_between(conn, cashier, from, to, limit);
    };
    // `created_at <= ?4` bounds the index range; the OR breaks ties by id.
    let mut st = conn.prepare_cached(&format!(
        "SELECT {ORDER_COLS} FROM orders
         WHERE cashier_id = ?1 AND created_at >= ?2 AND created_at < ?3
           AND created_at <= ?4 AND (created_at < ?4 OR id < ?5)
         ORDER BY created_at DESC, id DESC LIMIT ?6"
    ))?;
    let rows = st.query_map(
        params![
            cashier,
            from,
            to,
            after.created_at,
            after.id,
            i64::try_from(limit).unwrap_or(i64::MAX)
        ],
        order_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
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
    use crate::store::orders::{NewOrder, insert_order, set_order_state};
    use crate::values::order::{OrderState, OrderToken};

    /// The quarter-hour figures the triggers keep say what the orders say,
    /// through creation, payment, cancellation and a change of mind.
    #[test]
    fn the_day_figures_match_the_orders_whatever_happens_to_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        let (kept, counted) = store
            .write_blocking(|tx| {
                tx.execute_batch(
                    "INSERT INTO users (id, username, password_hash, role, created_at) VALUES (7, 'c', 'x', 'cashier', 0), (8, 'd', 'x', 'cashier', 0)",
                )?;
                let mut ids = Vec::new();
                for i in 0..40i64 {
                    let token = OrderToken::generate();
                    let new = NewOrder {
                        token: &token,
                        amount: Fen::new(100 + i),
                        description: "",
                        cashier_id: Some(UserId(if i % 5 == 0 { 8 } else { 7 })),
                        now: Millis(86_400_000 + i * 300_000),
                        expires_at: Millis(i64::MAX),
                        day: "19700102",
                    };
                    ids.push(insert_order(tx, &new)?.0);
                }
                for id in &ids[..10] {
                    tx.execute(
                        "UPDATE orders SET state = 'paid', paid_at = 1 WHERE id = ?1",
                        [id],
                    )?;
                }
                set_order_state(tx, ids[11], OrderState::Open, OrderState::Cancelled, Millis(2))?;
                // A payment taken back out (as a test or a repair would).
                tx.execute("UPDATE orders SET state = 'open' WHERE id = ?1", [ids[3]])?;
                let whole = (Millis(86_400_000), Millis(2 * 86_400_000));
                let part = (Millis(86_400_000 + 900_000), Millis(86_400_000 + 3 * 900_000));
                let mut kept = Vec::new();
                let mut counted = Vec::new();
                for (from, to) in [whole, part] {
                    kept.push(cashier_totals_between(tx, UserId(7), from, to)?);
                    // A millisecond off a quarter (no order then): counted from the orders.
                    counted.push(cashier_totals_between(tx, UserId(7), Millis(from.0 - 1), to)?);
                }
                Ok((kept, counted))
            })
            .unwrap();
        assert_eq!(kept, counted);
        // 32 orders of cashier 7; paid: the first ten but the 0th and 5th
        // (cashier 8's) and the 3rd (taken back) = 7 of them.
        assert_eq!(kept[0].0, 32);
        assert_eq!(kept[0].1, 7);
        assert_eq!(
            kept[0].2,
            Fen::new(100 + 1 + 2 + 4 + 6 + 7 + 8 + 9 + 6 * 100)
        );
        assert!(kept[1].0 > 0 && kept[1].0 < 32, "{kept:?}");
    }

    #[test]
    fn the_cashiers_day_is_read_through_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        let plans = store
            .read_blocking(|c| {
                [
                    "SELECT SUM(created) FROM cashier_quarters WHERE cashier_id = 1 AND quarter >= 1 AND quarter < 97",
                    "SELECT id FROM orders WHERE cashier_id = 1 ORDER BY created_at DESC, id DESC LIMIT 1",
                    "SELECT id FROM orders WHERE cashier_id = 1 AND created_at >= 0 AND created_at < 9
                     AND created_at <= 5 AND (created_at < 5 OR id < 3) ORDER BY created_at DESC, id DESC LIMIT 51",
                    "SELECT created_at, id FROM orders WHERE order_no = 'x' AND cashier_id = 1",
                ]
                .into_iter()
                .map(|sql| crate::store::orders::tests::plan_of(c, sql))
                .collect::<Result<Vec<_>, _>>()
            })
            .unwrap();
        for plan in &plans {
            assert!(plan.contains("SEARCH"), "{plan}");
            assert!(!plan.contains("TEMP B-TREE"), "sorted by the index: {plan}");
        }
    }
}
