//! The background worker: expiries, QR refreshes, interrupted creations, closes,
//! `orderquery` polls and refunds (sent again, or asked about), all found in SQLite (so a restart resumes), run with a
//! cap on requests in flight and per second.

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::base::lock::LockExt;
use crate::checkout::{Checkout, CheckoutError, DueWork, PollSchedule};
use crate::config::Poller as PollerSettings;
use crate::values::clock::Millis;
use crate::values::order::{OrderId, QrId, RefundId};
// The heartbeat is wall-clock time: `/healthz` compares it with the wall clock.

/// Identifies one piece of work, so a slow one is not started twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Job {
    Expire(OrderId),
    Refresh(QrId),
    Resume(QrId),
    Close(QrId),
    Poll(QrId),
    Refund(RefundId),
    PruneLogs,
    Reconcile(jiff::civil::Date),
}

/// Counts a spawned job until it ends (or panics), and wakes `run_until_idle`.
struct RunningJob {
    running: Arc<AtomicUsize>,
    idle: Arc<Notify>,
}

impl RunningJob {
    fn new(running: Arc<AtomicUsize>, idle: Arc<Notify>) -> Self {
        running.fetch_add(1, Ordering::SeqCst);
        RunningJob { running, idle }
    }
}

impl Drop for RunningJob {
    fn drop(&mut self) {
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.idle.notify_waiters();
    }
}

#[derive(Clone)]
pub struct Poller {
    checkout: Checkout,
    settings: PollerSettings,
    in_flight: Arc<Mutex<HashSet<Job>>>,
    /// Answers that only moved a QR's next poll, written together at the next
    /// tick: one transaction (and one fsync) per tick instead of one per request.
    /// Their jobs stay in flight until then, so no QR is asked twice meanwhile.
    schedules: Arc<Mutex<Vec<(Job, PollSchedule)>>>,
    slots: Arc<Semaphore>,
    /// Jobs spawned and not yet ended, and the signal when one ends.
    running: Arc<AtomicUsize>,
    idle: Arc<Notify>,
    next_start: Arc<tokio::sync::Mutex<Instant>>,
    heartbeat: Arc<AtomicI64>,
    /// QRs left `creating` before this moment belong to an earlier process
    /// (a crash or a kill): nobody is sending them, so they are resumed at once.
    started_at: Millis,
}

impl Poller {
    pub fn new(checkout: Checkout, settings: PollerSettings) -> Self {
        // Settings cap it (`MAX_IN_FLIGHT`); the clamp keeps `Semaphore::new`
        // (which panics past `usize::MAX >> 3`) and the casts below safe anyway.
        let mut settings = settings;
        settings.max_in_flight = settings
            .max_in_flight
            .clamp(1, crate::config::MAX_IN_FLIGHT);
        let slots = Arc::new(Semaphore::new(settings.max_in_flight));
        let started_at = checkout.now();
        Poller {
            checkout,
            settings,
            in_flight: Arc::default(),
            schedules: Arc::default(),
            slots,
            running: Arc::default(),
            idle: Arc::default(),
            next_start: Arc::new(tokio::sync::Mutex::new(Instant::now())),
            heartbeat: Arc::new(AtomicI64::new(Millis::wall().get())),
            started_at,
        }
    }

    /// Milliseconds timestamp of the last loop turn (for `/healthz`).
    pub fn heartbeat(&self) -> Arc<AtomicI64> {
        self.heartbeat.clone()
    }

    /// Loops until `stop` fires, then waits for the work in flight.
    pub async fn run(self, stop: CancellationToken) {
        let tick = Duration::from_millis(self.settings.tick_ms.max(10));
        loop {
            self.heartbeat
                .store(Millis::wall().get(), Ordering::Relaxed);
            if let Err(e) = self.tick().await {
                tracing::error!(error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), "poller tick failed");
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(tick) => {}
            }
        }
        // Let started work finish its transaction, and keep what it learnt.
        let _ = self
            .slots
            .acquire_many(u32::try_from(self.settings.max_in_flight).unwrap_or(u32::MAX))
            .await;
        self.record_schedules().await;
    }

    /// Writes the schedules gathered since the last tick and frees their jobs.
    async fn record_schedules(&self) {
        let batch = std::mem::take(&mut *self.schedules.lock_or_recover());
        if batch.is_empty() {
            return;
        }
        let (jobs, polls): (Vec<Job>, Vec<PollSchedule>) = batch.into_iter().unzip();
        if let Err(e) = self.checkout.record_polls(polls).await {
            // Not written: those QRs are simply due again, and asked again.
            tracing::error!(error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), "poll schedules not recorded");
        }
        let mut running = self.in_flight.lock_or_recover();
        for job in jobs {
            running.remove(&job);
        }
    }

    /// Finds due work and starts it (bounded); returns how many jobs started.
    pub async fn tick(&self) -> Result<usize, crate::store::StoreError> {
        Ok(self.start_due().await?.len())
    }

    /// For tests that move the clock: ticks and waits for what each tick started,
    /// until a tick finds nothing new (at most `max_ticks`); returns the jobs run.
    pub async fn run_until_idle(
        &self,
        max_ticks: usize,
    ) -> Result<usize, crate::store::StoreError> {
        let mut ran = 0;
        for _ in 0..max_ticks {
            // The background loop may have started some of it: wait for every job.
            self.wait_for_running_jobs().await;
            let started = self.start_due().await?;
            let n = started.len();
            ran += n;
            for job in started {
                let _ = job.await;
            }
            if n == 0 {
                self.wait_for_running_jobs().await;
                if !self.has_due().await? {
                    break;
                }
            }
        }
        self.wait_for_running_jobs().await;
        self.record_schedules().await;
        Ok(ran)
    }

    /// Whether a tick now would find work (after writing the parked schedules).
    async fn has_due(&self) -> Result<bool, crate::store::StoreError> {
        self.record_schedules().await;
        let limit = self.settings.max_in_flight * 4;
        let due = self.checkout.due_work(limit, self.started_at).await?;
        let running = self.in_flight.lock_or_recover().clone();
        Ok(due
            .expiries
            .iter()
            .any(|o| !running.contains(&Job::Expire(o.id)))
            || due
                .refreshes
                .iter()
                .any(|(_, q)| !running.contains(&Job::Refresh(q.id)))
            || due
                .resumes
                .iter()
                .any(|q| !running.contains(&Job::Resume(q.id)))
            || due
                .closes
                .iter()
                .any(|q| !running.contains(&Job::Close(q.id)))
            || due
                .polls
                .iter()
                .any(|q| !running.contains(&Job::Poll(q.id)))
            || due
                .refunds
                .iter()
                .any(|r| !running.contains(&Job::Refund(r.refund.id)))
            || due.prune_logs
            || due
                .bill_day
                .is_some_and(|d| !running.contains(&Job::Reconcile(d))))
    }

    async fn wait_for_running_jobs(&self) {
        loop {
            // Created before the check, so a job ending in between still wakes us.
            let ended = self.idle.notified();
            if self.running.load(Ordering::SeqCst) == 0 {
                return;
            }
            ended.await;
        }
    }

    async fn start_due(&self) -> Result<Vec<JoinHandle<()>>, crate::store::StoreError> {
        // First, so the questions below see every answer already received.
        self.record_schedules().await;
        let limit = self.settings.max_in_flight.saturating_mul(4);
        let DueWork {
            expiries,
            refreshes,
            resumes,
            closes,
            polls,
            refunds,
            prune_logs,
            bill_day,
        } = self.checkout.due_work(limit, self.started_at).await?;
        let mut started = Vec::new();
        if prune_logs {
            started.extend(self.start(Job::PruneLogs, move |c| async move {
                c.prune_logs().await.map(|_| None)
            }));
        }
        if let Some(day) = bill_day {
            started.extend(self.start(Job::Reconcile(day), move |c| async move {
                c.reconcile_day(day).await.map(|_| None)
            }));
        }
        for o in expiries {
            started.extend(self.start(Job::Expire(o.id), move |c| async move {
                c.expire(&o).await.map(|()| None)
            }));
        }
        for (o, q) in refreshes {
            started.extend(self.start(Job::Refresh(q.id), move |c| async move {
                c.refresh(&o, &q).await.map(|()| None)
            }));
        }
        for q in resumes {
            started.extend(self.start(Job::Resume(q.id), move |c| async move {
                c.resume_creation(&q).await.map(|()| None)
            }));
        }
        for q in closes {
            started.extend(self.start(Job::Close(q.id), move |c| async move {
                c.close(&q).await.map(|()| None)
            }));
        }
        for q in polls {
            started.extend(self.start(Job::Poll(q.id), move |c| async move { c.poll(&q).await }));
        }
        for r in refunds {
            started.extend(self.start(Job::Refund(r.refund.id), move |c| async move {
                c.follow_refund(&r).await.map(|()| None)
            }));
        }
        Ok(started)
    }

    /// Spawns `work` unless the same job is already running; it waits for a slot
    /// and for its turn under the per-second cap.
    fn start<F, Fut>(&self, job: Job, work: F) -> Option<JoinHandle<()>>
    where
        F: FnOnce(Checkout) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<Option<PollSchedule>, CheckoutError>> + Send,
    {
        {
            let mut running = self.in_flight.lock_or_recover();
            if !running.insert(job) {
                return None;
            }
        }
        let this = self.clone();
        let running = RunningJob::new(self.running.clone(), self.idle.clone());
        Some(tokio::spawn(async move {
            let _running = running;
            if let Ok(_permit) = this.slots.clone().acquire_owned().await {
                this.wait_for_turn().await;
                match work(this.checkout.clone()).await {
                    Ok(Some(schedule)) => {
                        // Stays in flight until the next tick writes it.
                        this.schedules.lock_or_recover().push((job, schedule));
                        return;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(?job, error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), "background job failed")
                    }
                }
            }
            this.in_flight.lock_or_recover().remove(&job);
        }))
    }

    /// Spaces request starts `1/max_per_sec` apart.
    async fn wait_for_turn(&self) {
        let gap = Duration::from_secs(1) / self.settings.max_per_sec.max(1);
        let at = {
            let mut next = self.next_start.lock().await;
            let now = Instant::now();
            let at = (*next).max(now);
            *next = at + gap;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}
