//! The checks every mode makes: each bound keeps an extreme value from code
//! that would panic or overflow on it, and each message names its key.

use super::*;

impl Settings {
    /// Checks that hold in every mode. Each bound keeps an extreme value from
    /// reaching code that would panic or overflow on it, and each message names its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (c, p, w, sim) = (&self.checkout, &self.poller, &self.wxpay, &self.sim);
        let in_flight = u64::try_from(p.max_in_flight).unwrap_or(u64::MAX);
        let ranges = [
            ("checkout.qr_ttl_secs", c.qr_ttl_secs, 1, MAX_SECS),
            ("checkout.order_ttl_secs", c.order_ttl_secs, 1, MAX_SECS),
            ("poller.fast_interval_ms", p.fast_interval_ms, 0, MAX_MS),
            ("poller.fast_period_secs", p.fast_period_secs, 0, MAX_SECS),
            ("poller.slow_interval_ms", p.slow_interval_ms, 0, MAX_MS),
            ("poller.tick_ms", p.tick_ms, 0, MAX_MS),
            ("poller.max_in_flight", in_flight, 1, MAX_IN_FLIGHT as u64),
            (
                "poller.max_per_sec",
                u64::from(p.max_per_sec),
                1,
                MAX_PER_SEC,
            ),
            ("poller.max_backoff_secs", p.max_backoff_secs, 0, MAX_SECS),
            ("wxpay.timeout_secs", w.timeout_secs, 0, MAX_TIMEOUT_SECS),
            (
                "http.body_timeout_secs",
                self.http.body_timeout_secs,
                1,
                MAX_TIMEOUT_SECS,
            ),
            (
                "http.max_event_streams",
                self.http.max_event_streams,
                1,
                MAX_EVENT_STREAMS,
            ),
            (
                "sim.min_close_age_secs",
                sim.min_close_age_secs,
                0,
                MAX_SECS,
            ),
            (
                "backup.keep",
                u64::from(self.backup.keep),
                1,
                MAX_BACKUP_KEEP,
            ),
        ];
        let mut problems: Vec<String> = ranges
            .into_iter()
            .filter(|(_, value, min, max)| value < min || value > max)
            .map(|(key, value, min, max)| {
                format!("{key} must be between {min} and {max}, got {value}")
            })
            .collect();
        if self
            .backup
            .dir
            .as_ref()
            .is_some_and(|d| d.as_os_str().is_empty())
        {
            problems.push("backup.dir must be a directory (or unset for no daily backups)".into());
        }
        if self.bill.fetch_time().is_none() {
            problems.push(format!(
                "bill.fetch_at must be a Beijing time of day as HH:MM, got {:?}",
                self.bill.fetch_at
            ));
        }
        if c.order_ttl_secs < c.qr_ttl_secs {
            problems.push("checkout.order_ttl_secs must be at least checkout.qr_ttl_secs".into());
        }
        if c.max_amount_fen <= 0 {
            problems.push("checkout.max_amount_fen must be positive".into());
        }
        if !(1..=MAX_RETENTION_DAYS).contains(&self.retention.notification_days) {
            problems.push(format!(
                "retention.notification_days must be between 1 and {MAX_RETENTION_DAYS}, got {}",
                self.retention.notification_days
            ));
        }
        if !(sim.time_scale.is_finite()
            && (MIN_TIME_SCALE..=MAX_TIME_SCALE).contains(&sim.time_scale))
        {
            problems.push(format!(
                "sim.time_scale must be a positive number between {MIN_TIME_SCALE} and {MAX_TIME_SCALE}, got {}",
                sim.time_scale
            ));
        }
        if let Err(ConfigError::Invalid(e)) = self.http.trusted_proxies() {
            problems.push(e);
        }
        if let Some(t) = &self.metrics.token
            && t.expose_secret().chars().count() < MIN_METRICS_TOKEN_CHARS
        {
            problems.push(format!(
                "metrics.token must be at least {MIN_METRICS_TOKEN_CHARS} characters"
            ));
        }
        if self
            .metrics
            .listen
            .as_deref()
            .is_some_and(|l| l.trim().is_empty())
        {
            problems.push("metrics.listen must be an address such as 127.0.0.1:9100".into());
        }
        problems.extend(self.notify.problems());
        if jiff::tz::TimeZone::get(&self.shop.timezone).is_err() {
            problems.push(format!(
                "shop.timezone {:?} is not a known time zone (e.g. Asia/Shanghai)",
                self.shop.timezone
            ));
        }
        match problems.len() {
            0 => Ok(()),
            1 => Err(ConfigError::Invalid(problems.remove(0))),
            _ => Err(ConfigError::Invalid(format!(
                "\n  - {}",
                problems.join("\n  - ")
            ))),
        }
    }
}

impl Notify {
    /// What is wrong with the `[notify]` keys, each message naming its key.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for u in &self.webhook_urls {
            let ok = (u.starts_with("https://") || u.starts_with("http://"))
                && reqwest::Url::parse(u).is_ok_and(|p| p.host_str().is_some());
            if !ok {
                problems.push(format!(
                    "notify.webhook_urls: {} is not an http(s) URL",
                    crate::base::http::redact_url(u)
                ));
            }
        }
        match &self.webhook_secret {
            Some(k) if k.expose_secret().chars().count() < MIN_WEBHOOK_SECRET_CHARS => {
                problems.push(format!(
                    "notify.webhook_secret must be at least {MIN_WEBHOOK_SECRET_CHARS} characters"
                ));
            }
            None if !self.webhook_urls.is_empty() && self.webhook_format == WebhookFormat::Json => {
                problems.push(
                    "notify.webhook_secret is needed to sign json webhooks (notify.webhook_urls is set)"
                        .into(),
                );
            }
            _ => {}
        }
        problems
    }
}
