//! Is a database's schema exactly what scanpay's migrations make? A copy from
//! elsewhere (a restore) or a file edited beside the app could carry a trigger
//! that drops payments (`BEFORE INSERT ON payments … RAISE(IGNORE)`), a view
//! shadowing nothing, or a table altered to cheapen orders; none of that is
//! visible to integrity checks. The reference is a fresh in-memory database
//! with the same migrations applied in the same order, so "the same schema"
//! means the same objects with the same SQL text, byte for byte.

use std::collections::BTreeMap;

use rusqlite::Connection;

use super::migrations;

/// `(type, name)` → `(tbl_name, sql)` of every schema object but SQLite's
/// statistics tables (`ANALYZE` may or may not have run: not a difference).
type Objects = BTreeMap<(String, String), (String, Option<String>)>;

fn objects(conn: &Connection) -> rusqlite::Result<Objects> {
    let mut st = conn.prepare(
        "SELECT type, name, tbl_name, sql FROM sqlite_master
         WHERE NOT (type = 'table' AND name LIKE 'sqlite\\_stat%' ESCAPE '\\')",
    )?;
    st.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), (r.get(2)?, r.get(3)?))))?
        .collect()
}

/// What `conn`'s schema has that its recorded migrations do not make, lacks,
/// or has otherwise; empty when it is exactly scanpay's. Each entry names
/// the object (`trigger keep_money`), never its SQL.
pub fn differences(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    // In the order they were applied: two ALTERs of one table read otherwise
    // in the other order.
    let versions: Vec<i64> = conn
        .prepare("SELECT version FROM schema_migrations ORDER BY applied_at, version")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    let mut fresh = Connection::open_in_memory()?;
    fresh.execute_batch(
        "CREATE TABLE schema_migrations (
             version    INTEGER PRIMARY KEY,
             applied_at INTEGER NOT NULL
         )",
    )?;
    for v in versions {
        match migrations::script(v) {
            Some(sql) => {
                let tx = fresh.transaction()?;
                tx.execute_batch(sql)?;
                tx.commit()?;
            }
            None => out.push(format!("migration {v} is not one of scanpay's")),
        }
    }
    let want = objects(&fresh)?;
    let have = objects(conn)?;
    for (key @ (kind, name), got) in &have {
        match want.get(key) {
            None => out.push(format!("unexpected {kind} {name}")),
            Some(w) if w != got => out.push(format!("{kind} {name} differs")),
            Some(_) => {}
        }
    }
    for (kind, name) in want.keys().filter(|k| !have.contains_key(*k)) {
        out.push(format!("missing {kind} {name}"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn migrated() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        migrations::apply(&mut c).unwrap();
        c
    }

    #[test]
    fn a_freshly_migrated_database_is_exactly_scanpays() {
        let c = migrated();
        assert_eq!(differences(&c).unwrap(), Vec::<String>::new());
        // ANALYZE's statistics are not part of the schema.
        c.execute_batch("ANALYZE").unwrap();
        assert_eq!(differences(&c).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn every_object_the_migrations_do_not_make_is_named() {
        let cases: &[(&str, &str)] = &[
            (
                "CREATE TRIGGER keep_money BEFORE INSERT ON payments BEGIN SELECT RAISE(IGNORE); END",
                "unexpected trigger keep_money",
            ),
            (
                "CREATE TRIGGER cheap AFTER INSERT ON orders BEGIN UPDATE orders SET amount_fen = 1 WHERE id = NEW.id; END",
                "unexpected trigger cheap",
            ),
            ("CREATE VIEW v AS SELECT 1", "unexpected view v"),
            ("CREATE TABLE extra (a)", "unexpected table extra"),
            (
                "CREATE INDEX extra_i ON orders (description)",
                "unexpected index extra_i",
            ),
            ("DROP INDEX payments_order", "missing index payments_order"),
            (
                "ALTER TABLE orders ADD COLUMN x TEXT",
                "table orders differs",
            ),
            (
                "INSERT INTO schema_migrations (version, applied_at) VALUES (999999, 0)",
                "migration 999999 is not one of scanpay's",
            ),
        ];
        for (sql, says) in cases {
            let c = migrated();
            c.execute_batch(sql).unwrap();
            let d = differences(&c).unwrap();
            assert!(d.iter().any(|x| x == says), "{sql}: {d:?}");
        }
    }

    #[test]
    fn a_store_over_a_tampered_file_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        drop(super::super::Store::open(dir.path()).unwrap());
        Connection::open(dir.path().join(super::super::DB_FILE))
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER t BEFORE INSERT ON payments BEGIN SELECT RAISE(IGNORE); END",
            )
            .unwrap();
        let err = super::super::Store::open(dir.path()).err().unwrap();
        assert!(
            matches!(err, super::super::StoreError::SchemaDiffers(_)),
            "{err}"
        );
        assert!(err.to_string().contains("unexpected trigger t"), "{err}");
    }
}
