//! Backups without extra tools: a consistent online copy of the database
//! (`scanpay backup FILE`, and the daily copies of `backup.dir`), its check, and
//! putting one back in place (`scanpay restore FILE`, with the app stopped).
//!
//! **The copy** uses SQLite's online backup API, all pages in **one** step: that
//! step reads one snapshot in one read transaction, and in WAL mode a reader never
//! blocks the writer, so the app keeps committing while the copy is taken and the
//! copy is exactly the database as of the step's start. A step loop (N pages, a
//! sleep) would be worse here, not better: a write by another connection restarts
//! the backup from the first page, so under a steady stream of payments it might
//! never finish. (`VACUUM INTO` would also be one snapshot, but rebuilds every
//! table and index: more CPU for the same guarantee.) The copy is written beside
//! FILE under a temporary name, switched to a rollback journal (one self-contained
//! file), checked, fsynced and only then renamed to FILE, so a crash never leaves
//! half a copy under FILE's name.
//!
//! **The restore** refuses to run beside a live app: every `Store` holds a shared
//! advisory lock on `scanpay.lock` in the data dir (`flock`, released by the OS
//! when the process dies, even by `kill -9`), and restore needs it exclusive; it
//! also tries `BEGIN IMMEDIATE` with a short timeout, for a writer that holds no
//! lock (an older binary, the `sqlite3` tool).

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::{DB_FILE, StoreError, migrations};

/// The advisory lock file every open `Store` holds shared.
pub const LOCK_FILE: &str = "scanpay.lock";

/// What a copy holds, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyInfo {
    /// The newest migration applied to it.
    pub schema_version: i64,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("there is no database at {0}")]
    NoDatabase(String),
    #[error("{0} exists; choose another name or pass --force to replace it")]
    Exists(String),
    #[error("{0} is the database itself (or one of its files): back up to another name")]
    SameAsDatabase(String),
    #[error("{path} is damaged: {problem}")]
    Corrupt { path: String, problem: String },
    #[error("{0} is not a scanpay database")]
    NotScanpay(String),
    /// Integrity holds, but the schema is not what the migrations make: a
    /// trigger or a table of someone else's is code that would run on our money.
    #[error(
        "{path} has a schema scanpay's migrations do not make ({problems}): it is not restored"
    )]
    Tampered { path: String, problems: String },
    #[error(
        "{path} was written by a newer scanpay (schema {found}, this one knows up to {known}): \
         restore it with that version"
    )]
    TooNew {
        path: String,
        found: i64,
        known: i64,
    },
    #[error(
        "scanpay is running on {0} (the database is in use): stop it first, e.g. `systemctl stop scanpay`"
    )]
    InUse(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for BackupError {
    fn from(e: rusqlite::Error) -> Self {
        BackupError::Store(StoreError::Sqlite(e))
    }
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BackupError {
    let path = path.display().to_string();
    move |source| BackupError::Io { what, path, source }
}

/// A fresh, private file beside `file` for the copy being written, e.g.
/// `.x.sqlite3.tmp-3f9c…`: the name is random (another local user cannot
/// plant a file or a symlink under it in advance) and the file is created
/// exclusively without following a symlink, so anything already there is an
/// error, never the copy's destination.
fn temp_beside(file: &Path) -> Result<(PathBuf, File), BackupError> {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "scanpay".into());
    let temp = file.with_file_name(format!(".{name}.tmp-{}", random_suffix()));
    let f = create_new_private(&temp).map_err(io("cannot create", &temp))?;
    Ok((temp, f))
}

/// 128 random bits in hex.
fn random_suffix() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Creates `path` (mode 0600), failing if anything, a symlink included, is there.
fn create_new_private(path: &Path) -> std::io::Result<File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NOFOLLOW: already implied by create_new's O_EXCL, said twice on purpose.
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// Removes the temporary file if the work did not get as far as renaming it.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(&p);
            for suffix in ["-journal", "-wal", "-shm"] {
                let _ = fs::remove_file(with_suffix(&p, suffix));
            }
        }
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn fsync_file(path: &Path) -> Result<(), BackupError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io("cannot sync", path))
}

/// Makes a rename in `dir` durable (a no-op where directories cannot be opened).
fn fsync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// A consistent copy of `data_dir`'s database in `file`, taken while the app may
/// be running and writing. Refuses to replace an existing `file` unless `overwrite`.
pub fn backup_to(data_dir: &Path, file: &Path, overwrite: bool) -> Result<CopyInfo, BackupError> {
    let db = data_dir.join(DB_FILE);
    if !db.is_file() {
        return Err(BackupError::NoDatabase(db.display().to_string()));
    }
    if file.exists() && !overwrite {
        return Err(BackupError::Exists(file.display().to_string()));
    }
    // Even with --force, the database itself (or its -wal) is never the target.
    let parent = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if fs::canonicalize(parent).ok() == fs::canonicalize(data_dir).ok()
        && file
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(DB_FILE))
    {
        return Err(BackupError::SameAsDatabase(file.display().to_string()));
    }
    // A copy holds all the shop's data (payments, password hashes): private
    // to the service user like the database, whatever the umask.
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        super::create_private_dir(dir).map_err(io("cannot create the directory", dir))?;
    }
    let (temp, created) = temp_beside(file)?;
    drop(created);
    let guard = TempFile(Some(temp.clone()));
    {
        let src = Connection::open_with_flags(
            &db,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        src.busy_timeout(Duration::from_secs(10))?;
        let mut dst = Connection::open_with_flags(
            &temp,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )?;
        copy_all_pages(&src, &mut dst)?;
        // The copy is one self-contained file: no -wal to carry along with it.
        dst.pragma_update(None, "journal_mode", "DELETE")?;
    }
    let info = check_copy(&temp)?;
    fsync_file(&temp)?;
    fs::rename(&temp, file).map_err(io("cannot rename the copy to", file))?;
    std::mem::forget(guard);
    fsync_dir(file.parent().unwrap_or(Path::new(".")));
    Ok(info)
}

/// Every page in one step: one read snapshot (see the module doc). Busy or locked
/// (a checkpoint resetting the WAL at that instant) is retried a few times.
fn copy_all_pages(src: &Connection, dst: &mut Connection) -> Result<(), BackupError> {
    let backup = Backup::new(src, dst)?;
    for _ in 0..100 {
        match backup.step(-1)? {
            StepResult::Done => return Ok(()),
            StepResult::More | StepResult::Busy | StepResult::Locked => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    Err(BackupError::Store(StoreError::Sqlite(
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            Some("the database stayed busy: no copy taken".into()),
        ),
    )))
}

/// Checks a copy: SQLite's `integrity_check` says ok, it is a scanpay database,
/// its schema version is one this binary knows, and its schema is exactly what
/// those migrations make (`store::schema`).
pub fn check_copy(file: &Path) -> Result<CopyInfo, BackupError> {
    let shown = file.display().to_string();
    let meta = fs::metadata(file).map_err(io("cannot read", file))?;
    if !meta.is_file() {
        return Err(BackupError::NoDatabase(shown));
    }
    let corrupt = |problem: String| BackupError::Corrupt {
        path: shown.clone(),
        problem,
    };
    let conn = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| corrupt(e.to_string()))?;
    let problems: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut st| {
            st.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<_, _>>()
        })
        .map_err(|e| corrupt(e.to_string()))?;
    if problems != ["ok"] {
        return Err(corrupt(problems.join("; ")));
    }
    let found: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(|_| BackupError::NotScanpay(shown.clone()))?;
    if found == 0 {
        return Err(BackupError::NotScanpay(shown));
    }
    let known = migrations::newest();
    if found > known {
        return Err(BackupError::TooNew {
            path: shown,
            found,
            known,
        });
    }
    let differences = super::schema::differences(&conn).map_err(|e| corrupt(e.to_string()))?;
    if !differences.is_empty() {
        return Err(BackupError::Tampered {
            path: shown,
            problems: differences.join("; "),
        });
    }
    Ok(CopyInfo {
        schema_version: found,
        bytes: meta.len(),
    })
}

/// What `restore_from` did.
#[derive(Debug, Clone)]
pub struct Restored {
    pub copy: CopyInfo,
    /// Where the database that was replaced now is (none if there was none).
    pub kept: Option<PathBuf>,
}

/// Puts the checked copy `file` in place as `data_dir`'s database, with the app
/// stopped. The replaced database is kept beside it as
/// `scanpay.sqlite3.before-restore-YYYYMMDDTHHMMSSZ`.
pub fn restore_from(file: &Path, data_dir: &Path) -> Result<Restored, BackupError> {
    let copy = check_copy(file)?;
    super::create_private_dir(data_dir).map_err(io("cannot create the directory", data_dir))?;
    let _lock = lock_exclusive(data_dir)?;
    let db = data_dir.join(DB_FILE);
    if db.exists() {
        refuse_a_live_writer(&db, data_dir)?;
        // Fold the WAL into the database, so the file kept aside is complete
        // alone; if that fails (a damaged database), its -wal goes along with it.
        if let Ok(c) = Connection::open(&db) {
            let _ = c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
    }
    // The copy first goes into the data dir under a temporary name: until the
    // last rename, the database under its own name is the old one, whole.
    let (temp, mut into) = temp_beside(&data_dir.join(format!("{DB_FILE}.restoring")))?;
    let guard = TempFile(Some(temp.clone()));
    // Into the file just made (private, exclusively ours), never through a name
    // that something else could have put there.
    let mut from = File::open(file).map_err(io("cannot read", file))?;
    std::io::copy(&mut from, &mut into).map_err(io("cannot copy into", &temp))?;
    into.sync_all().map_err(io("cannot sync", &temp))?;
    drop(into);
    let kept = if db.exists() {
        let aside = aside_name(data_dir);
        if fs::hard_link(&db, &aside).is_err() {
            fs::copy(&db, &aside).map_err(io("cannot keep the old database as", &aside))?;
        }
        let wal = with_suffix(&db, "-wal");
        if wal.exists() {
            fs::rename(&wal, with_suffix(&aside, "-wal"))
                .map_err(io("cannot keep the old database's WAL", &wal))?;
        }
        Some(aside)
    } else {
        None
    };
    // Stale files of the old database would be read as the new one's.
    for suffix in ["-wal", "-shm", "-journal"] {
        let stale = with_suffix(&db, suffix);
        if stale.exists() {
            fs::remove_file(&stale).map_err(io("cannot remove", &stale))?;
        }
    }
    fs::rename(&temp, &db).map_err(io("cannot put the copy in place as", &db))?;
    std::mem::forget(guard);
    fsync_dir(data_dir);
    Ok(Restored { copy, kept })
}

/// `scanpay.sqlite3.before-restore-YYYYMMDDTHHMMSSZ`, with `-2`, `-3`… should
/// two restores fall in the same second: a kept database is never overwritten.
fn aside_name(data_dir: &Path) -> PathBuf {
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let base = format!("{DB_FILE}.before-restore-{stamp}");
    let mut aside = data_dir.join(&base);
    let mut n = 1;
    while aside.exists() || with_suffix(&aside, "-wal").exists() {
        n += 1;
        aside = data_dir.join(format!("{base}-{n}"));
    }
    aside
}

/// A writer in the middle of a transaction (or any lock holder) shows as busy.
fn refuse_a_live_writer(db: &Path, data_dir: &Path) -> Result<(), BackupError> {
    let in_use = || BackupError::InUse(data_dir.display().to_string());
    let conn = Connection::open(db)?;
    conn.busy_timeout(Duration::from_millis(200))?;
    match conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;") {
        Ok(()) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            Err(in_use())
        }
        // Not a database we can write: the restore replaces it anyway.
        Err(_) => Ok(()),
    }
}

/// The shared lock an open `Store` holds on `data_dir/scanpay.lock` (see the module doc).
pub(crate) fn lock_shared(data_dir: &Path) -> Result<File, StoreError> {
    let path = data_dir.join(LOCK_FILE);
    let file = open_lock(&path).map_err(|source| StoreError::DataDir {
        path: path.display().to_string(),
        source,
    })?;
    // Blocks only while a restore is swapping the files.
    flock(&file, false, true).map_err(|source| StoreError::DataDir {
        path: path.display().to_string(),
        source,
    })?;
    Ok(file)
}

fn lock_exclusive(data_dir: &Path) -> Result<File, BackupError> {
    let path = data_dir.join(LOCK_FILE);
    let file = open_lock(&path).map_err(io("cannot open", &path))?;
    match flock(&file, true, false) {
        Ok(()) => Ok(file),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            Err(BackupError::InUse(data_dir.display().to_string()))
        }
        Err(e) => Err(io("cannot lock", &path)(e)),
    }
}

fn open_lock(path: &Path) -> std::io::Result<File> {
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
}

#[cfg(unix)]
fn flock(file: &File, exclusive: bool, wait: bool) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    };
    if !wait {
        op |= libc::LOCK_NB;
    }
    loop {
        // SAFETY: flock takes a file descriptor we own for the call's duration.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(not(unix))]
fn flock(_file: &File, _exclusive: bool, _wait: bool) -> std::io::Result<()> {
    Ok(())
}

/// `data_dir`'s database opened read-only, for looking without changing
/// anything (no creation, no migration: `scanpay check`); `None` if there is none.
pub fn open_read_only(data_dir: &Path) -> Result<Option<(Connection, i64)>, StoreError> {
    let db = data_dir.join(DB_FILE);
    if !db.is_file() {
        return Ok(None);
    }
    let conn = Connection::open_with_flags(
        &db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let version = conn
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .unwrap_or(0);
    Ok(Some((conn, version)))
}

// ------------------------------------------------------------------ daily copies

/// The file of one shop day in `backup.dir`.
pub fn daily_file_name(day: jiff::civil::Date) -> String {
    format!("scanpay-{}.sqlite3", day.strftime("%Y%m%d"))
}

fn is_daily_file(name: &str) -> bool {
    name.strip_prefix("scanpay-")
        .and_then(|r| r.strip_suffix(".sqlite3"))
        .is_some_and(|d| d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()))
}

/// Deletes the oldest daily files beyond `keep`; returns the ones deleted.
/// Other files in the directory are never touched.
pub fn prune(dir: &Path, keep: usize) -> Result<Vec<PathBuf>, BackupError> {
    let mut daily: Vec<String> = fs::read_dir(dir)
        .map_err(io("cannot list", dir))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_daily_file(n))
        .collect();
    // YYYYMMDD sorts by date.
    daily.sort();
    let excess = daily.len().saturating_sub(keep);
    let mut removed = Vec::new();
    for name in daily.into_iter().take(excess) {
        let path = dir.join(name);
        fs::remove_file(&path).map_err(io("cannot delete", &path))?;
        removed.push(path);
    }
    Ok(removed)
}

/// Today's copy in `dir` if it is not there yet, then the oldest beyond `keep`
/// deleted; returns the file written, if one was.
pub fn daily(
    data_dir: &Path,
    dir: &Path,
    keep: usize,
    today: jiff::civil::Date,
) -> Result<Option<PathBuf>, BackupError> {
    let file = dir.join(daily_file_name(today));
    let written = if file.exists() {
        None
    } else {
        backup_to(data_dir, &file, false)?;
        Some(file)
    };
    prune(dir, keep)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn store_with_rows(n: usize) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write_blocking(|tx| {
                // Rows of one of scanpay's own tables: a table of the test's
                // own would make the copy's schema not scanpay's.
                for i in 0..n {
                    tx.execute(
                        "INSERT INTO users (username, password_hash, role, created_at)
                         VALUES (?1, 'x', 'cashier', 0)",
                        [format!("row{i}")],
                    )?;
                }
                Ok(())
            })
            .unwrap();
        (dir, store)
    }

    fn rows(db: &Path) -> i64 {
        Connection::open(db)
            .unwrap()
            .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_backup_of_an_open_store_is_whole_checked_and_one_file() {
        let (dir, _store) = store_with_rows(100);
        let out = tempfile::tempdir().unwrap();
        let file = out.path().join("sub/copy.sqlite3");
        let info = backup_to(dir.path(), &file, false).unwrap();
        assert_eq!(info.schema_version, migrations::newest());
        assert_eq!(rows(&file), 100);
        let names: Vec<_> = fs::read_dir(file.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["copy.sqlite3"], "no temp, -wal or -shm left");
        let err = backup_to(dir.path(), &file, false).unwrap_err();
        assert!(matches!(err, BackupError::Exists(_)), "{err}");
        assert!(err.to_string().contains("--force"));
        backup_to(dir.path(), &file, true).unwrap();
        for own in [DB_FILE, "scanpay.sqlite3-wal"] {
            let err = backup_to(dir.path(), &dir.path().join(own), true).unwrap_err();
            assert!(
                matches!(err, BackupError::SameAsDatabase(_)),
                "{own}: {err}"
            );
        }
        assert_eq!(
            rows(&dir.path().join(DB_FILE)),
            100,
            "the database is untouched"
        );
    }

    #[test]
    fn no_database_means_no_backup_and_none_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let err = backup_to(dir.path(), &dir.path().join("c"), false).unwrap_err();
        assert!(matches!(err, BackupError::NoDatabase(_)), "{err}");
        assert!(!dir.path().join(DB_FILE).exists());
    }

    #[test]
    fn check_refuses_garbage_foreign_and_too_new_files() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk");
        fs::write(&junk, vec![0x5a; 8192]).unwrap();
        assert!(matches!(
            check_copy(&junk),
            Err(BackupError::Corrupt { .. })
        ));
        let foreign = dir.path().join("foreign.sqlite3");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE x (a)")
            .unwrap();
        assert!(matches!(
            check_copy(&foreign),
            Err(BackupError::NotScanpay(_))
        ));

        let (src, _store) = store_with_rows(1);
        let newer = dir.path().join("newer.sqlite3");
        backup_to(src.path(), &newer, false).unwrap();
        Connection::open(&newer)
            .unwrap()
            .execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, 0)",
                [migrations::newest() + 1],
            )
            .unwrap();
        let err = check_copy(&newer).unwrap_err();
        assert!(matches!(err, BackupError::TooNew { .. }), "{err}");
        assert!(err.to_string().contains("newer scanpay"), "{err}");
    }

    #[test]
    fn a_copy_with_a_trigger_or_table_of_someone_elses_is_refused() {
        let (src, _store) = store_with_rows(1);
        let dir = tempfile::tempdir().unwrap();
        for (sql, says) in [
            (
                "CREATE TRIGGER keep BEFORE INSERT ON payments BEGIN SELECT RAISE(IGNORE); END",
                "unexpected trigger keep",
            ),
            ("CREATE VIEW v AS SELECT 1", "unexpected view v"),
        ] {
            let file = dir.path().join("c.sqlite3");
            backup_to(src.path(), &file, true).unwrap();
            Connection::open(&file).unwrap().execute_batch(sql).unwrap();
            let err = check_copy(&file).unwrap_err();
            assert!(matches!(err, BackupError::Tampered { .. }), "{err}");
            assert!(err.to_string().contains(says), "{err}");
            let target = tempfile::tempdir().unwrap();
            assert!(restore_from(&file, target.path()).is_err());
            assert!(
                !target.path().join(DB_FILE).exists(),
                "nothing put in place"
            );
        }
    }

    #[test]
    fn the_temporary_copy_has_a_random_name_and_never_reuses_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("copy.sqlite3");
        let (a, _) = temp_beside(&file).unwrap();
        let (b, _) = temp_beside(&file).unwrap();
        assert_ne!(a, b, "a new name each time");
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".copy.sqlite3.tmp-"), "{name}");
        assert!(!name.ends_with(&std::process::id().to_string()), "{name}");
        assert_eq!(name.len(), ".copy.sqlite3.tmp-".len() + 32, "{name}");
        // Something already there is an error, a file or a symlink alike, and
        // what a symlink points at is left alone.
        assert_eq!(
            create_new_private(&a).unwrap_err().kind(),
            std::io::ErrorKind::AlreadyExists
        );
        #[cfg(unix)]
        {
            let victim = dir.path().join("victim");
            fs::write(&victim, "mine").unwrap();
            let link = dir.path().join("planted");
            std::os::unix::fs::symlink(&victim, &link).unwrap();
            assert!(create_new_private(&link).is_err());
            assert_eq!(fs::read_to_string(&victim).unwrap(), "mine");
        }
        // A backup leaves no temporary file behind and makes it private.
        let (src, _store) = store_with_rows(1);
        backup_to(src.path(), &file, false).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_damaged_page_fails_the_integrity_check() {
        let (src, _store) = store_with_rows(2000);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.sqlite3");
        backup_to(src.path(), &file, false).unwrap();
        corrupt_last_pages(&file);
        let err = check_copy(&file).unwrap_err();
        assert!(matches!(err, BackupError::Corrupt { .. }), "{err}");
    }

    /// Scribbles over the second half of a database file (its table pages).
    pub(crate) fn corrupt_last_pages(file: &Path) {
        let mut bytes = fs::read(file).unwrap();
        let half = bytes.len() / 2;
        for (i, b) in bytes[half..].iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        fs::write(file, bytes).unwrap();
    }

    #[test]
    fn restore_keeps_the_old_database_and_puts_the_copy_in_place() {
        let (src, store) = store_with_rows(5);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.sqlite3");
        backup_to(src.path(), &file, false).unwrap();
        drop(store);

        let (target, other) = store_with_rows(1);
        let err = restore_from(&file, target.path()).unwrap_err();
        assert!(matches!(err, BackupError::InUse(_)), "{err}");
        assert!(err.to_string().contains("stop it first"), "{err}");
        drop(other);

        let done = restore_from(&file, target.path()).unwrap();
        let kept = done.kept.expect("the old database was kept");
        assert!(
            kept.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("scanpay.sqlite3.before-restore-")
        );
        assert_eq!(rows(&kept), 1);
        assert_eq!(rows(&target.path().join(DB_FILE)), 5);
        // Again within the same second: the first kept database stays as it was.
        let second = restore_from(&file, target.path()).unwrap().kept.unwrap();
        assert_ne!(second, kept);
        assert_eq!(rows(&kept), 1);
        assert_eq!(rows(&second), 5);
        assert!(!target.path().join("scanpay.sqlite3-wal").exists());
        // The app opens it again.
        let reopened = Store::open(target.path()).unwrap();
        let n: i64 = reopened
            .read_blocking(|c| Ok(c.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(n, 5);
    }

    #[test]
    fn restore_into_an_empty_dir_and_a_refused_copy_changes_nothing() {
        let (src, _store) = store_with_rows(3);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.sqlite3");
        backup_to(src.path(), &file, false).unwrap();
        let target = tempfile::tempdir().unwrap();
        let done = restore_from(&file, target.path()).unwrap();
        assert!(done.kept.is_none());
        assert_eq!(rows(&target.path().join(DB_FILE)), 3);

        corrupt_last_pages(&file);
        let before = fs::read(target.path().join(DB_FILE)).unwrap();
        assert!(restore_from(&file, target.path()).is_err());
        assert_eq!(fs::read(target.path().join(DB_FILE)).unwrap(), before);
    }

    #[test]
    fn daily_copies_one_per_day_and_prunes_only_its_own_files() {
        let (src, _store) = store_with_rows(1);
        let out = tempfile::tempdir().unwrap();
        fs::write(out.path().join("notes.txt"), "mine").unwrap();
        let day = |d: i8| jiff::civil::date(2026, 11, d);
        for d in 1..=5 {
            let written = daily(src.path(), out.path(), 3, day(d)).unwrap();
            assert_eq!(
                written.unwrap().file_name().unwrap().to_string_lossy(),
                format!("scanpay-202611{d:02}.sqlite3")
            );
        }
        assert!(daily(src.path(), out.path(), 3, day(5)).unwrap().is_none());
        let mut names: Vec<_> = fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "notes.txt",
                "scanpay-20261103.sqlite3",
                "scanpay-20261104.sqlite3",
                "scanpay-20261105.sqlite3"
            ]
        );
        assert!(is_daily_file("scanpay-20261105.sqlite3"));
        assert!(!is_daily_file("scanpay-2026110.sqlite3"));
        assert!(!is_daily_file("scanpay-latest.sqlite3"));
    }
}
