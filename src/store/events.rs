//! An order's event timeline (shown on the admin's order page).

use rusqlite::{Connection, Transaction, params};

use super::StoreError;
use crate::values::clock::Millis;
use crate::values::order::OrderId;

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
