//! Settings turned into the products each room needs: the checkout's
//! `CheckoutConfig`, the simulator's `SimConfig` and TLS files. Here, in
//! assembly, so that `config` imports no domain, simulator or web code.

use std::time::Duration;

use crate::checkout::{CashierLimits, CheckoutConfig, RetentionPolicy};
use crate::config::{ConfigError, Settings, Sim};
use crate::sim::SimConfig;
use crate::sim::tls::TlsFiles;

impl Settings {
    /// What the checkout needs from `[shop]`, `[checkout]` and `[poller]`; the
    /// notify_url is worked out at start-up (it may depend on the bound port).
    pub fn checkout_config(&self) -> CheckoutConfig {
        let (c, p) = (&self.checkout, &self.poller);
        CheckoutConfig {
            qr_ttl: Duration::from_secs(c.qr_ttl_secs),
            order_ttl: Duration::from_secs(c.order_ttl_secs),
            shop_name: self.shop.name.clone(),
            shop_tz: self.shop_tz(),
            poll_fast: Duration::from_millis(p.fast_interval_ms),
            poll_fast_period: Duration::from_secs(p.fast_period_secs),
            poll_slow: Duration::from_millis(p.slow_interval_ms),
            max_backoff: Duration::from_secs(p.max_backoff_secs),
            bill_fetch_at: self
                .bill
                .fetch_time()
                .unwrap_or(jiff::civil::Time::constant(10, 30, 0, 0)),
            cashier_limits: CashierLimits {
                open_orders: c.max_open_orders_per_cashier,
                per_minute: c.max_orders_per_minute,
            },
            retention: RetentionPolicy {
                verified_for: Duration::from_secs(
                    self.retention.notification_days.saturating_mul(24 * 3600),
                ),
                refused_kept: self.retention.refused_notifications,
                refused_per_source_per_minute: self.retention.refused_per_source_per_minute,
            },
        }
    }

    /// The simulator's settings: the demo merchant unless `wxpay.*` keys say
    /// otherwise, and the `sim.*` keys.
    pub fn sim_config(&self) -> Result<SimConfig, ConfigError> {
        Ok(SimConfig {
            merchant: self.wxpay.merchant_or_demo()?,
            v3: self.wxpay.v3_merchant_or_demo()?,
            time_scale: self.sim.time_scale,
            min_close_age: Duration::from_secs(self.sim.min_close_age_secs),
            faults: self
                .sim
                .faults
                .parse()
                .map_err(|e| ConfigError::Invalid(format!("sim.faults: {e}")))?,
        })
    }
}

impl Sim {
    /// The simulator's TLS files, when it is to serve HTTPS.
    pub fn tls_files(&self) -> Result<Option<TlsFiles<'_>>, ConfigError> {
        match (&self.tls_cert_file, &self.tls_key_file) {
            (None, None) if self.client_ca_file.is_some() => Err(ConfigError::Invalid(
                "--client-ca needs --tls-cert and --tls-key".into(),
            )),
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Ok(Some(TlsFiles {
                cert,
                key,
                client_ca: self.client_ca_file.as_deref(),
            })),
            _ => Err(ConfigError::Invalid(
                "--tls-cert and --tls-key go together".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEMO_MCH_ID;
    use crate::config::tests::env;

    #[test]
    fn sections_build_what_checkout_and_the_simulator_need() {
        let s = Settings::load(
            None,
            env(&[
                ("SCANPAY_CHECKOUT_QR_TTL_SECS", "7"),
                ("SCANPAY_POLLER_FAST_INTERVAL_MS", "300"),
                ("SCANPAY_SIM_MIN_CLOSE_AGE_SECS", "2"),
            ]),
        )
        .unwrap();
        let c = s.checkout_config();
        assert_eq!(c.qr_ttl, Duration::from_secs(7));
        assert_eq!(c.poll_fast, Duration::from_millis(300));
        let sim = s.sim_config().unwrap();
        assert_eq!(sim.min_close_age, Duration::from_secs(2));
        assert_eq!(sim.merchant.mch_id, DEMO_MCH_ID);
        let err = Settings::load(None, env(&[("SCANPAY_SIM_FAULTS", "drop_notify=7")]))
            .unwrap()
            .sim_config()
            .unwrap_err();
        assert!(err.to_string().contains("sim.faults"), "{err}");
    }
}
