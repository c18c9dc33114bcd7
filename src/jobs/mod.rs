//! Background work. Each job is a value with `run(stop)`, a loop of turns
//! until its stop token is cancelled, and (where tests drive it by hand) a
//! `tick()` that is one turn. `app` starts them through [`Jobs`] and joins
//! them all in one place at shutdown; nothing but `app` imports a job.
//!
//! - `poller`: follows open QRs, refunds, expiry and the daily bill.
//! - `webhooks`: delivers the owner's outbox.
//! - `backup`: the daily copy of the database.
//! - `certificates`: API v3 platform certificates kept fresh.

pub mod backup;
pub mod certificates;
pub mod poller;
pub mod webhooks;

use std::future::Future;

use tokio::task::JoinHandle;

/// The jobs running, joined together: a job that failed or panicked is logged
/// with its name, never dropped silently.
#[derive(Default)]
pub struct Jobs {
    running: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)>,
}

impl Jobs {
    /// Starts a job that cannot fail (it logs its own errors turn by turn).
    pub fn start(&mut self, name: &'static str, job: impl Future<Output = ()> + Send + 'static) {
        self.start_fallible(name, async move {
            job.await;
            Ok(())
        });
    }

    /// Starts a job whose end may be an error (a server).
    pub fn start_fallible(
        &mut self,
        name: &'static str,
        job: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) {
        self.running.push((name, tokio::spawn(job)));
    }

    /// Waits for every job (stop them first); the names of those that failed.
    pub async fn join(self) -> Vec<&'static str> {
        let mut failed = Vec::new();
        for (name, task) in self.running {
            let error = match task.await {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => format!("{e:#}"),
                Err(e) => e.to_string(),
            };
            tracing::error!(job = name, error.message = %error, "a background job did not stop cleanly");
            failed.push(name);
        }
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_job_that_fails_or_panics_is_named_at_the_join() {
        let mut jobs = Jobs::default();
        jobs.start("quiet", async {});
        jobs.start_fallible("server", async { Err(anyhow::anyhow!("address in use")) });
        jobs.start("panics", async { panic!("boom") });
        assert_eq!(jobs.join().await, vec!["server", "panics"]);
    }
}
