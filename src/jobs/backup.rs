//! The daily backups of `backup.dir` (SPEC §11): at start and then every
//! `CHECK_EVERY`, today's copy if missing, then pruning to `keep`. "Today" is
//! the shop day on the domain's clock, the same day the cashier's page and the
//! admin call today. Errors are logged, never fatal.

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::backup::{BackupError, daily};
use crate::values::clock::Clock;

/// How often the task looks whether the shop day has a copy yet.
pub const CHECK_EVERY: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, thiserror::Error)]
pub enum DailyError {
    #[error(transparent)]
    Backup(#[from] BackupError),
    #[error("the backup task failed")]
    Task(#[from] tokio::task::JoinError),
}

pub struct DailyBackup {
    pub data_dir: PathBuf,
    pub dir: PathBuf,
    pub keep: usize,
    pub tz: jiff::tz::TimeZone,
    pub clock: Clock,
}

impl DailyBackup {
    pub async fn run(self, stop: CancellationToken) {
        loop {
            // A copy in progress finishes (it is one read snapshot) before the app stops.
            match self.tick().await {
                Ok(Some(file)) => tracing::info!(file = %file.display(), "daily backup written"),
                Ok(None) => {}
                Err(e) => tracing::error!(
                    error.message = %e, error.cause_chain = %crate::base::cause::chain(&e),
                    dir = %self.dir.display(),
                    "daily backup failed; trying again later"
                ),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(CHECK_EVERY) => {}
            }
        }
    }

    /// Today's copy, if it is not there yet; the file written, if any.
    pub async fn tick(&self) -> Result<Option<PathBuf>, DailyError> {
        let today = self
            .clock
            .now()
            .to_timestamp()
            .to_zoned(self.tz.clone())
            .date();
        let (data, out, keep) = (self.data_dir.clone(), self.dir.clone(), self.keep);
        Ok(tokio::task::spawn_blocking(move || daily(&data, &out, keep, today)).await??)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::backup::daily_file_name;

    #[tokio::test]
    async fn the_days_copy_is_named_for_the_shop_day_on_the_domains_clock() {
        let data = tempfile::tempdir().unwrap();
        drop(Store::open(data.path()).unwrap());
        let out = tempfile::tempdir().unwrap();
        let clock = Clock::manual();
        clock.advance(Duration::from_secs(40 * 24 * 3600));
        let tz = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
        let job = DailyBackup {
            data_dir: data.path().into(),
            dir: out.path().into(),
            keep: 7,
            tz: tz.clone(),
            clock: clock.clone(),
        };
        let written = job.tick().await.unwrap().expect("a copy for the day");
        let day = clock.now().to_timestamp().to_zoned(tz).date();
        assert_eq!(written, out.path().join(daily_file_name(day)));
        assert_eq!(job.tick().await.unwrap(), None, "one copy a day");
    }
}
