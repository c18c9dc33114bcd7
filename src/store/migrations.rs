//! Ordered, append-only migrations, each applied in its own transaction and
//! recorded in `schema_migrations`.

use rusqlite::{Connection, params};

use super::StoreError;
use crate::values::clock::Millis;

/// Never edit or reorder an entry: append a new one.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_init.sql")),
    (2, include_str!("migrations/0002_poller_indexes.sql")),
    (
        3,
        include_str!("migrations/0003_payments_per_transaction.sql"),
    ),
    (4, include_str!("migrations/0004_users_disabled.sql")),
    (5, include_str!("migrations/0005_notification_ids.sql")),
    (6, include_str!("migrations/0006_counter.sql")),
    (7, include_str!("migrations/0007_refunds.sql")),
    (8, include_str!("migrations/0008_bills.sql")),
    (9, include_str!("migrations/0009_order_days.sql")),
    (
        10,
        include_str!("migrations/0010_open_orders_by_cashier.sql"),
    ),
    (
        11,
        include_str!("migrations/0011_payments_gateway_paid_at.sql"),
    ),
    (
        12,
        include_str!("migrations/0012_refunds_gateway_succeeded_at.sql"),
    ),
    (13, include_str!("migrations/0013_cashier_quarters.sql")),
];

/// The newest schema version this binary knows.
pub fn newest() -> i64 {
    MIGRATIONS.last().map(|m| m.0).unwrap_or(0)
}

/// The SQL of migration `version`, if this binary has one.
pub fn script(version: i64) -> Option<&'static str> {
    MIGRATIONS
        .iter()
        .find(|(v, _)| *v == version)
        .map(|(_, sql)| *sql)
}

pub fn apply(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             applied_at INTEGER NOT NULL
         )",
    )?;
    let current: i64 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    let newest = newest();
    if current > newest {
        return Err(StoreError::TooNew {
            found: current,
            known: newest,
        });
    }
    // By version applied, not by the highest one: migrations numbered in
    // parallel branches (0005, 0006 beside 0007) all run whatever order they
    // were merged in.
    let applied: std::collections::HashSet<i64> = conn
        .prepare("SELECT version FROM schema_migrations")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| !applied.contains(v)) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            params![version, Millis::wall().get()],
        )?;
        tx.commit()?;
        tracing::info!(version, "database migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payments_survive_the_move_to_one_key_per_transaction() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
        )
        .unwrap();
        // A database as version 2 left it, with one paid order.
        for (version, sql) in &MIGRATIONS[..2] {
            conn.execute_batch(sql).unwrap();
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, 0)",
                [version],
            )
            .unwrap();
        }
        conn.execute_batch(
            "INSERT INTO orders (id, order_no, token, amount_fen, description, state, created_at, expires_at)
             VALUES (1, 'n1', 't1', 100, '', 'paid', 0, 1);
             INSERT INTO qrs (id, order_id, version, out_trade_no, state, time_start, time_expire,
                              display_until, spbill_create_ip, created_at)
             VALUES (1, 1, 1, 'q1', 'paid', 0, 1, 1, '', 0);
             INSERT INTO payments (transaction_id, qr_id, order_id, amount_fen, source, late, double_paid, created_at)
             VALUES ('tx1', 1, 1, 100, 'notify', 0, 0, 5);",
        )
        .unwrap();
        apply(&mut conn).unwrap();
        let kept: (String, i64) = conn
            .query_row("SELECT transaction_id, created_at FROM payments", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(kept, ("tx1".to_string(), 5));
        // A second transaction for the same QR is now a row of its own…
        conn.execute(
            "INSERT INTO payments (transaction_id, qr_id, order_id, amount_fen, source, late, double_paid, created_at)
             VALUES ('tx2', 1, 1, 100, 'poll', 0, 1, 6)",
            [],
        )
        .unwrap();
        // …and the same transaction twice still is not.
        assert!(
            conn.execute(
                "INSERT INTO payments (transaction_id, qr_id, order_id, amount_fen, source, late, double_paid, created_at)
                 VALUES ('tx1', 1, 1, 100, 'poll', 0, 0, 7)",
                [],
            )
            .is_err()
        );
        let anomaly: i64 = conn
            .query_row("SELECT anomaly FROM orders WHERE id = 1", [], |r| r.get(0))
            .unwrap();
        assert_eq!(anomaly, 0);
    }

    #[test]
    fn the_gateways_time_texts_become_moments_and_stay() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
        )
        .unwrap();
        // A database as version 10 left it: v2 and v3 texts, and some no gateway writes.
        for (version, sql) in &MIGRATIONS[..10] {
            conn.execute_batch(sql).unwrap();
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, 0)",
                [version],
            )
            .unwrap();
        }
        let texts = [
            Some("20260102110405"),
            Some("2026-01-02T11:04:05+08:00"),
            Some("2026-01-02T03:04:05Z"),
            Some("20261302110405"),
            Some("soon"),
            None,
            // Not real moments, or no offset: no moment, as the adapters read them.
            Some("20260230110405"),
            Some("20260102240405"),
            Some("2026-01-02T11:04:05"),
            Some("2026-02-30T11:04:05+08:00"),
            Some("2026-01-02T24:04:05+08:00"),
        ];
        conn.execute_batch(
            "INSERT INTO orders (id, order_no, token, amount_fen, description, state, created_at, expires_at)
             VALUES (1, 'n1', 't1', 100, '', 'paid', 0, 1);
             INSERT INTO qrs (id, order_id, version, out_trade_no, state, time_start, time_expire,
                              display_until, spbill_create_ip, created_at)
             VALUES (1, 1, 1, 'q1', 'paid', 0, 1, 1, '', 0);",
        )
        .unwrap();
        for (i, t) in texts.iter().enumerate() {
            conn.execute(
                "INSERT INTO payments (transaction_id, qr_id, order_id, amount_fen, source, time_end,
                                       late, double_paid, created_at)
                 VALUES (?1, 1, 1, 100, 'notify', ?2, 0, 0, 5)",
                rusqlite::params![format!("tx{i}"), t],
            )
            .unwrap();
        }
        apply(&mut conn).unwrap();
        let rows: Vec<(Option<String>, Option<i64>)> = conn
            .prepare("SELECT time_end, gateway_paid_at FROM payments ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let moment: i64 = "2026-01-02T03:04:05Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_millisecond();
        let want = [
            Some(moment),
            Some(moment),
            Some(moment),
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        ];
        assert_eq!(rows.len(), texts.len(), "no row lost");
        for ((text, at), (t, w)) in rows.iter().zip(texts.iter().zip(want)) {
            assert_eq!(
                text.as_deref(),
                *t,
                "the text stays as the gateway wrote it"
            );
            assert_eq!(*at, w, "{t:?}");
        }
    }
}
