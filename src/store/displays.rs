//! Customer displays: one pairing per row, the token kept only as its SHA-256.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::StoreError;
use crate::values::clock::Millis;
use crate::values::order::UserId;

/// An active (unrevoked) pairing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayRow {
    pub id: i64,
    pub cashier_id: UserId,
    pub created_at: Millis,
}

/// Pairs a new display for `cashier`, revoking any earlier one in the same
/// transaction (the partial UNIQUE index keeps it to one active display).
pub fn pair(
    tx: &Transaction<'_>,
    cashier: UserId,
    token_hash: &str,
    now: Millis,
) -> Result<DisplayRow, StoreError> {
    revoke(tx, cashier, now)?;
    tx.prepare_cached(
        "INSERT INTO displays (cashier_id, token_hash, created_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![cashier, token_hash, now])?;
    Ok(DisplayRow {
        id: tx.last_insert_rowid(),
        cashier_id: cashier,
        created_at: now,
    })
}

/// Revokes the cashier's active display; whether there was one.
pub fn revoke(tx: &Transaction<'_>, cashier: UserId, now: Millis) -> Result<bool, StoreError> {
    let n = tx
        .prepare_cached(
            "UPDATE displays SET revoked_at = ?2 WHERE cashier_id = ?1 AND revoked_at IS NULL",
        )?
        .execute(params![cashier, now])?;
    Ok(n > 0)
}

/// An active display as the admin's list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveDisplay {
    pub id: i64,
    pub cashier_id: UserId,
    pub username: String,
    pub created_at: Millis,
}

/// Every active display, newest first (one per cashier at most).
pub fn all_active(conn: &Connection) -> Result<Vec<ActiveDisplay>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT d.id, d.cashier_id, u.username, d.created_at FROM displays d
         JOIN users u ON u.id = d.cashier_id
         WHERE d.revoked_at IS NULL ORDER BY d.created_at DESC, d.id DESC",
    )?;
    let rows = st
        .query_map([], |r| {
            Ok(ActiveDisplay {
                id: r.get(0)?,
                cashier_id: r.get(1)?,
                username: r.get(2)?,
                created_at: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Revokes display `id` if active: the cashier it belonged to.
pub fn revoke_by_id(
    tx: &Transaction<'_>,
    id: i64,
    now: Millis,
) -> Result<Option<UserId>, StoreError> {
    Ok(tx
        .prepare_cached(
            "UPDATE displays SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL
             RETURNING cashier_id",
        )?
        .query_row(params![id, now], |r| r.get(0))
        .optional()?)
}

/// A row of `SELECT id, cashier_id, created_at FROM displays`.
fn display_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DisplayRow> {
    Ok(DisplayRow {
        id: r.get(0)?,
        cashier_id: r.get(1)?,
        created_at: r.get(2)?,
    })
}

/// The active pairing with this token hash (a revoked one is as good as none).
pub fn active_by_hash(
    conn: &Connection,
    token_hash: &str,
) -> Result<Option<DisplayRow>, StoreError> {
    Ok(conn
        .prepare_cached(
            // A disabled cashier's display shows nothing of theirs, even one
            // paired before `user disable` (which also revokes it) ran elsewhere.
            "SELECT id, cashier_id, created_at FROM displays
             WHERE token_hash = ?1 AND revoked_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = displays.cashier_id AND u.disabled = 1)",
        )?
        .query_row([token_hash], display_row)
        .optional()?)
}

/// Whether a pairing with this hash ever existed (revoked or not).
pub fn known_hash(conn: &Connection, token_hash: &str) -> Result<Option<UserId>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT cashier_id FROM displays WHERE token_hash = ?1")?
        .query_row([token_hash], |r| r.get(0))
        .optional()?)
}

/// The cashier's active pairing, if any.
pub fn active_of(conn: &Connection, cashier: UserId) -> Result<Option<DisplayRow>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, cashier_id, created_at FROM displays
             WHERE cashier_id = ?1 AND revoked_at IS NULL",
        )?
        .query_row([cashier], display_row)
        .optional()?)
}
