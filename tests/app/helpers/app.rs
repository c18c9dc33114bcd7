//! `TestApp`: the app under test, and how a test drives its clock and jobs.

use super::*;

/// `scanpay serve` on a random port with a fresh data dir.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base: String,
    pub data_dir: tempfile::TempDir,
    /// The signed-in staff member's browser (keeps cookies).
    pub http: reqwest::Client,
    /// The protocol it speaks to the gateway.
    pub api: Api,
    pub(crate) serving: Serving,
}

pub(crate) enum Serving {
    /// `Application` in this process; stopped when the `TestApp` drops.
    InProcess {
        stop: CancellationToken,
        poller: Poller,
        clock: Clock,
        /// The webhook delivery task, when webhooks are on.
        webhooks: Option<scanpay::jobs::webhooks::Webhooks>,
        /// No job runs in the background: `tick` turns them.
        by_hand: bool,
    },
    /// The binary, for tests that kill it; `env` starts it again the same way.
    Process {
        process: Process,
        env: Vec<(String, String)>,
    },
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Serving::InProcess { stop, .. } = &self.serving {
            stop.cancel();
        }
    }
}

impl TestApp {
    /// Kills the binary with SIGKILL (no shutdown at all) and starts it again on
    /// the same port and data dir.
    pub fn restart(&mut self) {
        let Serving::Process { process, env } = &mut self.serving else {
            panic!("only the binary can be killed");
        };
        let _ = process.child.kill();
        let _ = process.child.wait();
        let listen = self.base.trim_start_matches("http://").to_string();
        *process = start_serve(self.data_dir.path(), &listen, env);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Moves the app's manual clock forward, then runs the poller until the work
    /// that became due (and what it led to) is done.
    pub async fn advance(&self, by: Duration) {
        let Serving::InProcess { poller, clock, .. } = &self.serving else {
            panic!("only an in-process app has a clock to move");
        };
        assert!(
            clock.advance(by),
            "spawn_app_on_manual_clock makes a movable clock"
        );
        poller.run_until_idle(20).await.expect("the poller runs");
    }

    /// Waits for the poller's jobs in flight and runs what is due now, without
    /// moving the clock: afterwards the poller has nothing more to say.
    pub async fn settle(&self) {
        let Serving::InProcess { poller, .. } = &self.serving else {
            panic!("only an in-process app has a poller to wait for");
        };
        poller.run_until_idle(20).await.expect("the poller runs");
    }

    /// One turn of webhook delivery now: what it sent. Call it only once nothing
    /// is due, or the background turn and this one may send the same delivery.
    pub async fn deliver_webhooks(&self) -> scanpay::jobs::webhooks::Turn {
        let Serving::InProcess {
            webhooks: Some(w), ..
        } = &self.serving
        else {
            panic!("an in-process app with webhooks on");
        };
        w.tick().await.expect("a webhook turn")
    }

    /// Moves the manual clock by `step` until `f(status)` holds, at most `steps`
    /// times: what `wait_for` is for an app on the wall clock.
    pub async fn advance_until(
        &self,
        token: &str,
        what: &str,
        step: Duration,
        steps: usize,
        f: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        for _ in 0..steps {
            let s = self.status(token).await;
            if f(&s) {
                return s;
            }
            self.advance(step).await;
        }
        let s = self.status(token).await;
        assert!(f(&s), "{what} not after {steps} × {step:?}: {s}");
        s
    }

    /// Moves the manual clock by `step` until `sql` (a COUNT) gives `want`, at
    /// most `steps` times.
    pub async fn advance_until_count(
        &self,
        what: &str,
        sql: &str,
        want: i64,
        step: Duration,
        steps: usize,
    ) {
        for _ in 0..steps {
            if self.count(sql) == want {
                return;
            }
            self.advance(step).await;
        }
        assert_eq!(self.count(sql), want, "{what}: {sql}");
    }

    /// The poller looks for due work now (in this process; the binary's own loop
    /// does it at its pace), and so do the webhooks when no job runs in the
    /// background; then a moment passes.
    pub async fn tick(&self) {
        if let Serving::InProcess {
            poller,
            webhooks,
            by_hand,
            ..
        } = &self.serving
        {
            poller.tick().await.expect("a poller tick");
            if let (Some(w), true) = (webhooks, by_hand) {
                w.tick().await.expect("a webhook turn");
            }
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }

    /// Waits until `sql` (a COUNT) gives `want`.
    pub async fn wait_count(&self, what: &str, sql: &str, want: i64, timeout: Duration) {
        let start = Instant::now();
        while self.count(sql) != want {
            assert!(
                start.elapsed() < timeout,
                "timed out waiting for {what}: {sql} = {}",
                self.count(sql)
            );
            self.tick().await;
        }
    }

    /// Waits until `f(status)` holds, polling the status JSON (and ticking the poller).
    pub async fn wait_for(
        &self,
        token: &str,
        what: &str,
        timeout: Duration,
        f: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let s = self.status(token).await;
            if f(&s) {
                return s;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out waiting for {what}: {s}"
            );
            self.tick().await;
        }
    }

    pub async fn wait_for_state(
        &self,
        token: &str,
        state: &str,
        timeout: Duration,
    ) -> serde_json::Value {
        self.wait_for(token, state, timeout, |s| s["state"] == state)
            .await
    }

    /// A direct look at the database, read-only.
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            self.data_dir.path().join(DB_FILE),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap()
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.db().query_row(sql, [], |r| r.get(0)).unwrap()
    }
}
