//! The one writer: a thread that takes queued writes, runs each in its own
//! savepoint, commits a batch of them as one transaction (group commit), and
//! answers each caller once its batch is durable; and the checkpointer.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, mpsc};

use crate::base::lock::LockExt;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::StoreError;

/// Most writes committed together: bounds how long one batch holds its callers.
const MAX_BATCH: usize = 256;
/// The writer leaves checkpoints to the checkpointer thread; past this many WAL
/// pages (about 80 MB) it checkpoints itself, should that thread fall behind.
pub(super) const WRITER_AUTOCHECKPOINT: i64 = 20_000;
/// Commits gathered into one background checkpoint.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// How a write's caller is answered once its batch committed (`Ok`) or did not.
pub(super) type Answer = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// One `Store::write` waiting for the writer thread.
pub(super) trait QueuedWrite: Send {
    /// Runs the closure; `true` if it succeeded (its savepoint is kept).
    fn run(self: Box<Self>, tx: &Transaction<'_>) -> (bool, Answer);
    /// Answers without running (the batch could not even begin).
    fn fail(self: Box<Self>, e: StoreError);
}

pub(super) struct Queued<F, T> {
    pub(super) f: F,
    pub(super) span: tracing::Span,
    pub(super) reply: tokio::sync::oneshot::Sender<Result<T, StoreError>>,
}

impl<F, T> QueuedWrite for Queued<F, T>
where
    T: Send + 'static,
    F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
{
    fn run(self: Box<Self>, tx: &Transaction<'_>) -> (bool, Answer) {
        let Queued { f, span, reply } = *self;
        let out = span.in_scope(|| f(tx));
        let ok = out.is_ok();
        let answer: Answer = Box::new(move |batch| {
            let result = match (out, batch) {
                (Err(e), _) => Err(e),
                (Ok(v), Ok(())) => Ok(v),
                (Ok(_), Err(e)) => Err(e),
            };
            // The caller may have gone away (request cancelled): nothing to tell.
            let _ = reply.send(result);
        });
        (ok, answer)
    }

    fn fail(self: Box<Self>, e: StoreError) {
        let _ = self.reply.send(Err(e));
    }
}

/// The writer thread: waits for a write, takes whatever else queued meanwhile
/// (up to `MAX_BATCH`), and commits them as one transaction.
pub(super) fn writer_loop(
    conn: &Mutex<Connection>,
    jobs: &mpsc::Receiver<Box<dyn QueuedWrite>>,
    committed: &mpsc::SyncSender<()>,
) {
    let mut pending: VecDeque<Box<dyn QueuedWrite>> = VecDeque::new();
    loop {
        if pending.is_empty() {
            match jobs.recv() {
                Ok(job) => pending.push_back(job),
                Err(_) => return,
            }
        }
        while pending.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => pending.push_back(job),
                Err(_) => break,
            }
        }
        let mut conn = conn.lock_or_recover();
        run_batch(&mut conn, &mut pending);
        // Full means a checkpoint is already due: nothing to add.
        let _ = committed.try_send(());
    }
}

/// Checkpoints (PASSIVE: never waits for, nor blocks, the writer or readers)
/// a little after commits happened; idle when nothing is written.
pub(super) fn checkpoint_loop(conn: &Connection, commits: &mpsc::Receiver<()>) {
    while commits.recv().is_ok() {
        std::thread::sleep(CHECKPOINT_EVERY);
        while commits.try_recv().is_ok() {}
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), "background checkpoint failed; the writer will checkpoint");
        }
    }
}

/// One statement from the connection's cache: savepoints are two statements per
/// write, and parsing them each time cost as much as a small write.
fn exec(tx: &Transaction<'_>, sql: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Runs the queued writes, each in its own savepoint, and commits once.
/// Writes not reached because the transaction broke stay in `pending`.
fn run_batch(conn: &mut Connection, pending: &mut VecDeque<Box<dyn QueuedWrite>>) {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            // Cannot begin (e.g. busy past the timeout): fail this batch, keep serving.
            let error = StoreError::from(e).for_each_write();
            for job in pending.drain(..) {
                job.fail(error());
            }
            return;
        }
    };
    let mut answers: Vec<Answer> = Vec::with_capacity(pending.len());
    let mut broken: Option<StoreError> = None;
    while let Some(job) = pending.pop_front() {
        if let Err(e) = exec(&tx, "SAVEPOINT scanpay_write") {
            pending.push_front(job);
            broken = Some(e.into());
            break;
        }
        let ok = match catch_unwind(AssertUnwindSafe(|| job.run(&tx))) {
            Ok((ok, answer)) => {
                answers.push(answer);
                ok
            }
            // The panic dropped the caller's reply channel; it sees a failed task.
            Err(_) => false,
        };
        let end = if ok {
            exec(&tx, "RELEASE scanpay_write")
        } else {
            exec(&tx, "ROLLBACK TO scanpay_write").and_then(|()| exec(&tx, "RELEASE scanpay_write"))
        };
        // Some errors end the whole transaction; then nothing of this batch stands.
        if let Err(e) = end {
            broken = Some(e.into());
            break;
        }
        if tx.is_autocommit() {
            broken = Some(StoreError::RolledBack);
            break;
        }
    }
    let outcome = match broken {
        Some(e) => {
            drop(tx); // rolls back whatever is left of it
            Err(e)
        }
        None => tx.commit().map_err(StoreError::from),
    };
    let outcome = outcome.map_err(|e| {
        tracing::error!(error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), writes = answers.len(), "a batch of writes was not committed");
        e.for_each_write()
    });
    for answer in answers {
        answer(match &outcome {
            Ok(()) => Ok(()),
            Err(error) => Err(error()),
        });
    }
}
