//! The cashier's day: their orders and totals between two moments, and the
//! newest order (what their customer display follows).

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use super::orders::{ORDER_COLS, OrderRow, order_row};
use crate::values::clock::Millis;
use crate::values::money::Fen;
use crate::values::order::UserId;

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
