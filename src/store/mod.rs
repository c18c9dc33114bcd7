//! SQLite: the schema and every query. Nothing else touches SQL. One file per
//! table (`orders`, `qrs`, `events`, `payments`, `refunds`, `bills`, `outbox`,
//! `users`, `displays`), the cashier's day (`counter`), the read model
//! (`reports`, `metrics`), backups, migrations, and the writer thread.
//! Imported by `checkout` (and `jobs`/`app`); it imports only `values` and `base`.
//!
//! Blocking work stays off the async threads; the async world sees only
//! `Store::write(|tx| …)` and `Store::read(|conn| …)`. Reads run on tokio's
//! blocking pool over a small pool of read-only connections.
//!
//! Writes go through one connection (SQLite has one writer anyway) owned by
//! one writer thread that **groups commits**: it takes every write queued while
//! the previous commit was being synced, runs each closure inside its own
//! `SAVEPOINT` of one IMMEDIATE transaction, and commits them together with one
//! fsync (`synchronous = FULL`). A closure that returns `Err` (or panics) rolls
//! back only its savepoint. Each caller is answered only after the COMMIT has
//! returned, so "written" still means "durable", at one fsync per batch
//! instead of one per write.

pub mod backup;
pub mod bills;
pub mod counter;
pub mod displays;
pub mod events;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod metrics;
pub mod migrations;
pub mod orders;
pub mod outbox;
pub mod payments;
pub mod qrs;
pub mod refunds;
pub mod reports;
pub mod schema;
pub mod users;
pub mod values;
mod writer;

use writer::{Queued, QueuedWrite, WRITER_AUTOCHECKPOINT, checkpoint_loop, writer_loop};

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::base::lock::LockExt;

pub const DB_FILE: &str = "scanpay.sqlite3";
/// Read connections kept open between requests; more are opened under load.
const READERS: usize = 8;
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot use the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("the database was written by a newer scanpay (schema {found}, this one knows {known})")]
    TooNew { found: i64, known: i64 },
    #[error("cannot start the database's {thread} thread: {source}")]
    Thread {
        thread: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the database writer has stopped")]
    WriterStopped,
    /// The write's closure panicked (its savepoint was rolled back).
    #[error("a database write panicked")]
    Panicked,
    /// A blocking read (or password check) did not finish: it panicked or the runtime is
    /// shutting down.
    #[error("a database task did not finish: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// A command that works on an existing database found none.
    #[error(
        "no database at {0}: check --data-dir (or SCANPAY_DATA_DIR); `scanpay serve` creates one"
    )]
    NoDatabase(String),
    /// The schema holds what scanpay's migrations never create (a trigger
    /// that swallows payments, say): refused rather than trusted.
    #[error("the database's schema is not the one scanpay's migrations make: {0}")]
    SchemaDiffers(String),
    #[error("the transaction was rolled back by the database")]
    RolledBack,
    /// A change the transaction must make did not happen (a row not in the
    /// state just read, say, as under a foreign trigger): rolled back whole.
    #[error("the database did not {0}; nothing was written")]
    NotApplied(&'static str),
    /// One failure of a whole batch of writes, seen by each of its writes.
    #[error(transparent)]
    Batch(Arc<StoreError>),
}

impl StoreError {
    /// A failure shared by every write of a batch, as one error per caller. SQLite's
    /// own failures are copied (their code may matter to the caller); others shared.
    fn for_each_write(self) -> impl Fn() -> StoreError {
        let shared = Arc::new(self);
        move || match &*shared {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(code, msg)) => {
                StoreError::Sqlite(rusqlite::Error::SqliteFailure(*code, msg.clone()))
            }
            _ => StoreError::Batch(shared.clone()),
        }
    }
}

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// Shared by the writer thread (one batch at a time) and `write_blocking`.
    writer: Arc<Mutex<Connection>>,
    queue: mpsc::Sender<Box<dyn QueuedWrite>>,
    readers: Mutex<Vec<Connection>>,
    /// Held shared while this store is open, so `scanpay restore` can tell the
    /// app is running (see `backup.rs`); released when the last clone drops.
    _lock: std::fs::File,
}

/// Prepared statements kept per connection: the write path alone uses about 20
/// distinct statements, and rusqlite's default of 16 would re-parse them all.
const STATEMENT_CACHE: usize = 64;

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;",
    )?;
    Ok(())
}

/// The data directory, created (with any missing parents) readable by the
/// service user only; an existing one is left as the operator made it.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// The database file, created empty and private (0600) when missing, before
/// SQLite opens it: SQLite gives its -wal and -shm files the same permissions.
pub(crate) fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

impl Store {
    /// As `open`, for a database that must already exist: nothing is created
    /// under a directory that holds none (a mistyped `--data-dir`).
    pub fn open_existing(data_dir: &Path) -> Result<Store, StoreError> {
        let db = data_dir.join(DB_FILE);
        if !db.is_file() {
            return Err(StoreError::NoDatabase(db.display().to_string()));
        }
        Store::open(data_dir)
    }

    /// Opens (creating if needed) `data_dir/scanpay.sqlite3` and applies migrations.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let data_dir_error = |source| StoreError::DataDir {
            path: data_dir.display().to_string(),
            source,
        };
        create_private_dir(data_dir).map_err(data_dir_error)?;
        let lock = backup::lock_shared(data_dir)?;
        let path = data_dir.join(DB_FILE);
        create_private_file(&path).map_err(data_dir_error)?;
        let mut writer = Connection::open(&path)?;
        configure(&writer)?;
        migrations::apply(&mut writer)?;
        // Whatever wrote the file last, it is used only as scanpay's own schema.
        let differences = schema::differences(&writer)?;
        if !differences.is_empty() {
            return Err(StoreError::SchemaDiffers(differences.join("; ")));
        }
        // Copying the WAL back into the database (and syncing it) is done by the
        // checkpointer's own connection, so commits do not wait behind it.
        writer.pragma_update(None, "wal_autocheckpoint", WRITER_AUTOCHECKPOINT)?;
        let checkpointer = Connection::open(&path)?;
        configure(&checkpointer)?;
        let (committed, commits) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("scanpay-db-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpointer, &commits))
            .map_err(|source| StoreError::Thread {
                thread: "checkpointer",
                source,
            })?;
        let writer = Arc::new(Mutex::new(writer));
        let (queue, jobs) = mpsc::channel();
        let conn = writer.clone();
        // The threads end when the last `Store` clone (and so the queue's sender) is dropped.
        std::thread::Builder::new()
            .name("scanpay-db-writer".into())
            .spawn(move || writer_loop(&conn, &jobs, &committed))
            .map_err(|source| StoreError::Thread {
                thread: "writer",
                source,
            })?;
        Ok(Store {
            inner: Arc::new(Inner {
                path,
                writer,
                queue,
                readers: Mutex::new(Vec::new()),
                _lock: lock,
            }),
        })
    }

    /// Runs `f` in a write transaction, committed (durably) together with the
    /// other writes queued at the same moment; `Ok` only after the commit.
    /// An `Err` from `f` undoes `f`'s changes and nothing else.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Box::new(Queued {
            f,
            span: tracing::Span::current(),
            reply,
        });
        self.inner
            .queue
            .send(job)
            .map_err(|_| StoreError::WriterStopped)?;
        // The reply is dropped unanswered only when the closure panicked.
        answer.await.map_err(|_| StoreError::Panicked)?
    }

    /// Runs `f` with a read connection on the blocking pool.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(|| store.read_blocking(f))).await?
    }

    /// One write transaction on the caller's thread, for callers outside the
    /// runtime (the CLI, start-up); commits on `Ok`.
    pub fn write_blocking<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.inner.writer.lock_or_recover();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    pub fn read_blocking<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.inner.readers.lock_or_recover().pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.inner.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.busy_timeout(std::time::Duration::from_secs(10))?;
                c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
                c
            }
        };
        let out = f(&conn);
        let mut pool = self.inner.readers.lock_or_recover();
        if pool.len() < READERS {
            pool.push(conn);
        }
        out
    }

    /// The database answers (for `/healthz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| {
            Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map(|_| ())?)
        })
        .await
    }
}

/// A handle that can only read: what the admin's reports and the metrics get,
/// so a read model can never write behind the domain's back.
#[derive(Clone)]
pub struct ReadStore(Store);

impl Store {
    pub fn read_only(&self) -> ReadStore {
        ReadStore(self.clone())
    }
}

impl ReadStore {
    /// One read snapshot on a reader connection (see [`Store::read`]).
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.0.read(f).await
    }

    /// Whether the database answers (for `/healthz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.0.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write_blocking(|tx| {
                tx.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)")?;
                Ok(())
            })
            .unwrap();
        (dir, store)
    }

    fn rows(store: &Store) -> Vec<String> {
        store
            .read_blocking(|c| {
                let mut st = c.prepare("SELECT v FROM t ORDER BY k")?;
                let v = st
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<Vec<String>, _>>()?;
                Ok(v)
            })
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_all_commit_and_a_failing_one_undoes_only_itself() {
        let (_dir, store) = store();
        let mut tasks = Vec::new();
        for i in 0..200 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                s.write(move |tx| {
                    tx.execute("INSERT INTO t (v) VALUES (?1)", [format!("row{i}")])?;
                    if i % 10 == 0 {
                        // Written, then refused: this write must leave no trace.
                        return Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(
                            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
                            Some("refused".into()),
                        )));
                    }
                    Ok(i)
                })
                .await
            }));
        }
        let mut ok = 0;
        for (i, t) in tasks.into_iter().enumerate() {
            match t.await.unwrap() {
                Ok(v) => {
                    assert_eq!(v, i);
                    ok += 1;
                }
                Err(e) => {
                    assert_eq!(i % 10, 0);
                    assert!(e.to_string().contains("refused"));
                }
            }
        }
        assert_eq!(ok, 180);
        let got = rows(&store);
        assert_eq!(got.len(), 180);
        assert!(
            got.iter()
                .all(|v| v.trim_start_matches("row").parse::<usize>().unwrap() % 10 != 0)
        );
    }

    #[tokio::test]
    async fn a_constraint_violation_fails_that_write_only() {
        let (_dir, store) = store();
        store
            .write(|tx| Ok(tx.execute("INSERT INTO t (v) VALUES ('a')", [])?))
            .await
            .unwrap();
        let (dup, other) = tokio::join!(
            store.write(|tx| Ok(tx.execute("INSERT INTO t (v) VALUES ('a')", [])?)),
            store.write(|tx| Ok(tx.execute("INSERT INTO t (v) VALUES ('b')", [])?)),
        );
        assert!(matches!(dup, Err(StoreError::Sqlite(_))));
        assert_eq!(other.unwrap(), 1);
        assert_eq!(rows(&store), ["a", "b"]);
    }

    #[tokio::test]
    async fn a_panicking_write_fails_alone_and_the_writer_keeps_serving() {
        let (_dir, store) = store();
        let (boom, fine) = tokio::join!(
            store.write(|tx| -> Result<(), StoreError> {
                tx.execute("INSERT INTO t (v) VALUES ('x')", [])?;
                panic!("a bug in a write closure");
            }),
            store.write(|tx| Ok(tx.execute("INSERT INTO t (v) VALUES ('y')", [])?)),
        );
        assert!(matches!(boom, Err(StoreError::Panicked)));
        assert_eq!(fine.unwrap(), 1);
        store
            .write(|tx| Ok(tx.execute("INSERT INTO t (v) VALUES ('z')", [])?))
            .await
            .unwrap();
        assert_eq!(rows(&store), ["y", "z"]);
    }

    #[test]
    fn a_write_is_visible_to_readers_when_it_returns() {
        let (_dir, store) = store();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for i in 0..20 {
            rt.block_on(store.write(move |tx| {
                Ok(tx.execute("INSERT INTO t (v) VALUES (?1)", [format!("v{i}")])?)
            }))
            .unwrap();
            assert_eq!(rows(&store).len(), i + 1);
        }
    }
}
