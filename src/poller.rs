//! The background worker: expiries, QR refreshes, interrupted creations, closes
//! and `orderquery` polls, all found in SQLite (so a restart resumes), run with a
//! cap on requests in flight and per second.

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::checkout::{Checkout, CheckoutError, PollSchedule, STALE_CREATION};
use crate::config::Poller as PollerSettings;
use crate::store::now_ms;
use crate::store::orders;

/// Identifies one piece of work, so a slow one is not started twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Job {
    Expire(i64),
    Refresh(i64),
    Resume(i64),
    Close(i64),
    Poll(i64),
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
    next_start: Arc<tokio::sync::Mutex<Instant>>,
    heartbeat: Arc<AtomicI64>,
    /// QRs left `creating` before this moment belong to an earlier process
    /// (a crash or a kill): nobody is sending them, so they are resumed at once.
    started_at: i64,
}

impl Poller {
    pub fn new(checkout: Checkout, settings: PollerSettings) -> Self {
        let slots = Arc::new(Semaphore::new(settings.max_in_flight));
        Poller {
            checkout,
            settings,
            in_flight: Arc::default(),
            schedules: Arc::default(),
            slots,
            next_start: Arc::new(tokio::sync::Mutex::new(Instant::now())),
            heartbeat: Arc::new(AtomicI64::new(now_ms())),
            started_at: now_ms(),
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
            self.heartbeat.store(now_ms(), Ordering::Relaxed);
            if let Err(e) = self.tick().await {
                tracing::error!(error.message = %e, "poller tick failed");
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(tick) => {}
            }
        }
        // Let started work finish its transaction, and keep what it learnt.
        let _ = self
            .slots
            .acquire_many(self.settings.max_in_flight as u32)
            .await;
        self.record_schedules().await;
    }

    /// Writes the schedules gathered since the last tick and frees their jobs.
    async fn record_schedules(&self) {
        let batch = std::mem::take(&mut *self.schedules.lock().unwrap_or_else(|p| p.into_inner()));
        if batch.is_empty() {
            return;
        }
        let (jobs, polls): (Vec<Job>, Vec<PollSchedule>) = batch.into_iter().unzip();
        if let Err(e) = self.checkout.record_polls(polls).await {
            // Not written: those QRs are simply due again, and asked again.
            tracing::error!(error.message = %e, "poll schedules not recorded");
        }
        let mut running = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        for job in jobs {
            running.remove(&job);
        }
    }

    /// Finds due work and starts it (bounded); returns how many jobs started.
    pub async fn tick(&self) -> Result<usize, crate::store::StoreError> {
        // First, so the questions below see every answer already received.
        self.record_schedules().await;
        let now = now_ms();
        let limit = self.settings.max_in_flight * 4;
        let stale = (now - STALE_CREATION.as_millis() as i64).max(self.started_at - 1);
        let (expiries, refreshes, resumes, closes, polls) = self
            .checkout
            .store()
            .read(move |c| {
                Ok((
                    orders::due_expiries(c, now, limit)?,
                    orders::due_refreshes(c, now, limit)?,
                    orders::stale_creations(c, stale, limit)?,
                    orders::due_closes(c, now, limit)?,
                    orders::due_polls(c, now, limit)?,
                ))
            })
            .await?;
        let mut started = 0;
        for o in expiries {
            started += self.start(Job::Expire(o.id), move |c| async move {
                c.expire(&o).await.map(|()| None)
            });
        }
        for (o, q) in refreshes {
            started += self.start(Job::Refresh(q.id), move |c| async move {
                c.refresh(&o, &q).await.map(|()| None)
            });
        }
        for q in resumes {
            started += self.start(Job::Resume(q.id), move |c| async move {
                c.resume_creation(&q).await.map(|()| None)
            });
        }
        for q in closes {
            started += self.start(Job::Close(q.id), move |c| async move {
                c.close(&q).await.map(|()| None)
            });
        }
        for q in polls {
            started += self.start(Job::Poll(q.id), move |c| async move { c.poll(&q).await });
        }
        Ok(started)
    }

    /// Spawns `work` unless the same job is already running; it waits for a slot
    /// and for its turn under the per-second cap.
    fn start<F, Fut>(&self, job: Job, work: F) -> usize
    where
        F: FnOnce(Checkout) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<Option<PollSchedule>, CheckoutError>> + Send,
    {
        {
            let mut running = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            if !running.insert(job) {
                return 0;
            }
        }
        let this = self.clone();
        tokio::spawn(async move {
            if let Ok(_permit) = this.slots.clone().acquire_owned().await {
                this.wait_for_turn().await;
                match work(this.checkout.clone()).await {
                    Ok(Some(schedule)) => {
                        // Stays in flight until the next tick writes it.
                        this.schedules
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push((job, schedule));
                        return;
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(?job, error.message = %e, "background job failed"),
                }
            }
            this.in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&job);
        });
        1
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
