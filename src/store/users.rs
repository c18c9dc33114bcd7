//! Users, roles and login sessions.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::StoreError;
use crate::values::role::Role;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub role: Role,
    pub created_at: i64,
    /// Disabled: cannot sign in, and has no session.
    pub disabled: bool,
}

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: r.get(0)?,
        username: r.get(1)?,
        password_hash: r.get(2)?,
        role: r.get(3)?,
        created_at: r.get(4)?,
        disabled: r.get(5)?,
    })
}

/// Inserts a user; `Ok(false)` when the name is taken.
pub fn insert_user(
    tx: &Transaction<'_>,
    username: &str,
    password_hash: &str,
    role: Role,
    now: i64,
) -> Result<bool, StoreError> {
    Ok(tx.execute(
        "INSERT INTO users (username, password_hash, role, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (username) DO NOTHING",
        params![username, password_hash, role, now],
    )? == 1)
}

pub fn set_password(
    tx: &Transaction<'_>,
    username: &str,
    password_hash: &str,
) -> Result<bool, StoreError> {
    let n = tx.execute(
        "UPDATE users SET password_hash = ?2 WHERE username = ?1",
        params![username, password_hash],
    )?;
    if n == 1 {
        // A new password ends every open session of that user.
        tx.execute(
            "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = ?1)",
            params![username],
        )?;
    }
    Ok(n == 1)
}

/// Disables or enables a user; disabling ends every session of theirs at once.
/// `Ok(false)` when there is no such user.
pub fn set_disabled(
    tx: &Transaction<'_>,
    username: &str,
    disabled: bool,
) -> Result<bool, StoreError> {
    let n = tx.execute(
        "UPDATE users SET disabled = ?2 WHERE username = ?1",
        params![username, disabled],
    )?;
    if n == 1 && disabled {
        tx.execute(
            "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = ?1)",
            params![username],
        )?;
        // Their customer display stops with them (pairing again needs a sign-in).
        tx.execute(
            "UPDATE displays SET revoked_at = ?2
             WHERE revoked_at IS NULL AND cashier_id = (SELECT id FROM users WHERE username = ?1)",
            params![username, crate::values::clock::Millis::wall().get()],
        )?;
    }
    Ok(n == 1)
}

/// Whether `username` is the only admin who can sign in (so disabling or
/// demoting them would leave the shop without one).
pub fn is_last_admin(tx: &Transaction<'_>, username: &str) -> Result<bool, StoreError> {
    Ok(tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM users WHERE username = ?1 AND role = 'admin' AND disabled = 0)
            AND NOT EXISTS (SELECT 1 FROM users WHERE username <> ?1 AND role = 'admin' AND disabled = 0)",
        [username],
        |r| r.get(0),
    )?)
}

/// Gives a user `role` (their open sessions have it from their next request).
/// `Ok(false)` when there is no such user.
pub fn set_role(tx: &Transaction<'_>, username: &str, role: Role) -> Result<bool, StoreError> {
    Ok(tx.execute(
        "UPDATE users SET role = ?2 WHERE username = ?1",
        params![username, role],
    )? == 1)
}

pub fn user_by_name(conn: &Connection, username: &str) -> Result<Option<UserRow>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT id, username, password_hash, role, created_at, disabled FROM users WHERE username = ?1",
            [username],
            user_row,
        )
        .optional()?)
}

pub fn list_users(conn: &Connection) -> Result<Vec<UserRow>, StoreError> {
    let mut st = conn.prepare(
        "SELECT id, username, password_hash, role, created_at, disabled FROM users ORDER BY username",
    )?;
    let rows = st.query_map([], user_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn count_admins(conn: &Connection) -> Result<i64, StoreError> {
    Ok(
        conn.query_row("SELECT COUNT(*) FROM users WHERE role = 'admin'", [], |r| {
            r.get(0)
        })?,
    )
}

pub fn count_users(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    pub csrf_token: String,
}

pub fn insert_session(
    tx: &Transaction<'_>,
    id_hash: &str,
    user_id: i64,
    csrf_token: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    tx.execute("DELETE FROM sessions WHERE expires_at <= ?1", params![now])?;
    tx.execute(
        "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id_hash, user_id, csrf_token, now, expires_at],
    )?;
    Ok(())
}

pub fn session_user(
    conn: &Connection,
    id_hash: &str,
    now: i64,
) -> Result<Option<SessionUser>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT u.id, u.username, u.role, s.csrf_token FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id_hash = ?1 AND s.expires_at > ?2 AND u.disabled = 0",
            params![id_hash, now],
            |r| {
                Ok(SessionUser {
                    user_id: r.get(0)?,
                    username: r.get(1)?,
                    role: r.get(2)?,
                    csrf_token: r.get(3)?,
                })
            },
        )
        .optional()?)
}

pub fn delete_session(tx: &Transaction<'_>, id_hash: &str) -> Result<(), StoreError> {
    tx.execute("DELETE FROM sessions WHERE id_hash = ?1", params![id_hash])?;
    Ok(())
}
