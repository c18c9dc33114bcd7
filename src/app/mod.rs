//! Assembly: build every shared piece once, bind, and run until stopped; and
//! the commands (`cli`, `check`, `reconcile`, `sim`). The top floor: it may
//! import every room, and nothing imports it.

mod gateway;
mod http;
pub mod peers;
mod reconcile;
mod sim;

pub mod check;
pub mod cli;
pub mod settings;
pub mod telemetry;

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::web;
use anyhow::Context;
use tokio_util::sync::CancellationToken;

use self::gateway::build_gateway;
pub use self::http::MAX_BODY_BYTES;
use self::http::{HttpLimits, http_server, serve_until, shutdown_signal};
pub use self::reconcile::{exit_code, reconcile, summary_line};
pub use self::sim::SimApp;
use self::sim::{simulator, simulator_stays_local};
use crate::checkout::accounts::Accounts;
use crate::checkout::{Checkout, Hub};
use crate::config::{Api, Settings};
use crate::jobs::Jobs;
use crate::jobs::backup::DailyBackup;
use crate::jobs::certificates::CertificateRefresh;
use crate::jobs::poller::Poller;
use crate::sim::Simulator;
use crate::store::Store;
use crate::values::clock::Clock;
use crate::web::AppState;
use crate::web::qr::QrCache;

/// `scanpay serve`: the checkout, its poller, and in simulator mode the simulator at `/sim/`.
pub struct Application {
    server: Server,
    addr: SocketAddr,
    /// The `metrics.listen` server, when configured.
    metrics: Option<(Server, SocketAddr)>,
    poller: Poller,
    simulator: Option<Simulator>,
    /// `backup.dir` / `backup.keep`, when daily backups are on.
    daily_backup: Option<DailyBackup>,
    /// The owner's webhooks (`notify.webhook_urls`), when any are set.
    webhooks: Option<crate::jobs::webhooks::Webhooks>,
    /// API v3 with platform certificates: kept fresh in the background.
    certificates: Option<CertificateRefresh>,
    /// `wxpay.api`, for the banner.
    api: Api,
    /// Tests that drive the jobs themselves: `run_until` starts none of them.
    jobs_by_hand: bool,
}

impl Application {
    /// Start-up order: data dir → migrate → live-mode checks → bind → clients → routes.
    /// Nothing runs until `run_until_stopped`.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Clock::system()).await
    }

    /// As `build`, with the domain and the poller on `clock` (tests move a manual one).
    pub async fn build_with_clock(settings: Settings, clock: Clock) -> anyhow::Result<Self> {
        let limits = HttpLimits::new(&settings);
        let store = open_store(&settings).await?;
        if settings.wxpay.is_simulator() {
            create_demo_users(&store).await?;
        } else {
            check_live(&settings, &store).await?;
        }
        let listener = bind(&settings.listen)?;
        let addr = listener.local_addr()?;
        if settings.wxpay.is_simulator() {
            simulator_stays_local(&settings, addr)?;
        }
        let metrics_listener = match &settings.metrics.listen {
            Some(listen) => Some(bind(listen).context("metrics.listen")?),
            None => None,
        };
        let proxies = settings.http.trusted_proxies()?;
        let (gateway, certificates) = build_gateway(&settings, addr).await?;
        let qr_cache = Arc::new(QrCache::default());
        let hub = {
            let qr_cache = qr_cache.clone();
            Hub::new().on_publish(move |token| qr_cache.forget(token))
        };
        let accounts = Accounts::new(store.clone());
        // The outbox's own reader and writer: delivery runs beside the domain, never in its way.
        let hooks = crate::jobs::webhooks::WebhookConfig::from_settings(&settings);
        let webhooks = hooks
            .enabled()
            .then(|| crate::jobs::webhooks::Webhooks::new(store.clone(), hooks, clock.clone()))
            .transpose()?;
        let checkout = Checkout::with_clock(
            store,
            gateway,
            hub,
            settings.checkout_config(),
            clock.clone(),
        );
        let poller = Poller::new(checkout.clone(), settings.poller.clone());
        let state = web::Data::new(AppState::new(
            &settings,
            checkout,
            accounts,
            qr_cache,
            poller.heartbeat(),
        ));
        let simulator = settings
            .wxpay
            .is_simulator()
            .then(|| simulator(&settings))
            .transpose()?;
        let metrics = match metrics_listener {
            Some(l) => {
                let metrics_addr = l.local_addr()?;
                let state = state.clone();
                let server = http_server(l, None, proxies.clone(), limits, move |cfg| {
                    cfg.app_data(state.clone())
                        .configure(crate::web::ops::metrics_routes);
                })?;
                Some((server, metrics_addr))
            }
            None => None,
        };
        let server = http_server(
            listener,
            None,
            proxies,
            limits,
            app_routes(state, simulator.clone()),
        )?;
        let daily_backup = settings.backup.dir.clone().map(|dir| DailyBackup {
            data_dir: settings.data_dir.clone(),
            dir,
            keep: settings.backup.keep as usize,
            tz: settings.shop_tz(),
            clock: clock.clone(),
        });
        Ok(Application {
            server,
            addr,
            metrics,
            poller,
            simulator,
            daily_backup,
            webhooks,
            certificates,
            api: settings.wxpay.api,
            jobs_by_hand: false,
        })
    }

    /// Starts no background job in `run_until`: the test turns them itself
    /// (`poller().tick()`, `webhooks()`'s `tick()`), so nothing runs beside the
    /// flow under test. Tests about a loop leave this off.
    pub fn drive_jobs_by_hand(&mut self) {
        self.jobs_by_hand = true;
    }

    /// Tries a failed platform-certificate download again after `every` instead
    /// of `CERTIFICATE_RETRY` (tests that start the gateway after the app).
    pub fn retry_certificates_after(&mut self, every: Duration) {
        if let Some(c) = &mut self.certificates {
            c.retry_after(every);
        }
    }

    /// Cuts each webhook request after `timeout` instead of
    /// `webhooks::REQUEST_TIMEOUT` (tests of a hanging receiver).
    pub fn cut_webhooks_after(&mut self, timeout: Duration) -> anyhow::Result<()> {
        if let Some(w) = &self.webhooks {
            self.webhooks = Some(w.with_request_timeout(timeout)?);
        }
        Ok(())
    }

    /// The webhook delivery task, when webhooks are on (tests call its `tick()`).
    pub fn webhooks(&self) -> Option<crate::jobs::webhooks::Webhooks> {
        self.webhooks.clone()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of the `metrics.listen` server, when configured (port 0 resolved).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(_, a)| *a)
    }

    /// The background worker, for tests that want a `tick()` now rather than at its pace.
    pub fn poller(&self) -> Poller {
        self.poller.clone()
    }

    /// The simulator mounted at `/sim/` (simulator mode only).
    pub fn simulator(&self) -> Option<&Simulator> {
        self.simulator.as_ref()
    }

    pub fn banner(&self) -> Vec<String> {
        let mut lines = banner(self.addr, self.simulator.is_some());
        if self.api == Api::V3 {
            lines.push("scanpay: protocol   WeChat Pay API v3".to_string());
        }
        if let Some(a) = self.metrics_addr() {
            lines.push(format!("scanpay: metrics    http://{a}/metrics"));
        }
        lines
    }

    /// Serves until Ctrl-C / SIGTERM, then stops in order: HTTP, poller, store.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Starts the background jobs and serves until `shutdown` completes, then
    /// stops in order: HTTP, the metrics server, the jobs (joined together).
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        let mut jobs = Jobs::default();
        let by_hand = self.jobs_by_hand;
        if !by_hand {
            jobs.start("poller", self.poller.run(stop.clone()));
        }
        let metrics = self.metrics.map(|(server, _)| {
            let handle = server.handle();
            jobs.start_fallible("metrics server", async move {
                server.await.context("the metrics server")
            });
            handle
        });
        if let Some(b) = self.daily_backup.filter(|_| !by_hand) {
            jobs.start("daily backup", b.run(stop.clone()));
        }
        if let Some(w) = self.webhooks.filter(|_| !by_hand) {
            jobs.start("webhooks", w.run(stop.clone()));
        }
        if let Some(c) = self.certificates.filter(|_| !by_hand) {
            jobs.start("certificate refresh", c.run(stop.clone()));
        }
        let served = serve_until(self.server, shutdown).await;
        if let Some(handle) = metrics {
            handle.stop(true).await;
        }
        stop.cancel();
        jobs.join().await;
        served
        // The store closes with its last handle, dropped with the server and the jobs.
    }
}

pub(super) async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let dir = settings.data_dir.clone();
    tokio::task::spawn_blocking(move || Store::open(&dir))
        .await?
        .with_context(|| {
            format!(
                "cannot open the database in {}",
                settings.data_dir.display()
            )
        })
}

async fn create_demo_users(store: &Store) -> anyhow::Result<()> {
    let s = store.clone();
    if tokio::task::spawn_blocking(move || crate::checkout::accounts::ensure_demo_users(&s))
        .await??
    {
        tracing::info!("created the demo users admin/admin and cashier/cashier");
    }
    Ok(())
}

/// Live mode starts only with its merchant settings and an admin who can sign in.
async fn check_live(settings: &Settings, store: &Store) -> anyhow::Result<()> {
    settings.wxpay.validate_live()?;
    if store.read(crate::store::users::count_admins).await? == 0 {
        anyhow::bail!(
            "live mode needs an admin user: create one with `scanpay user add NAME --role admin` \
             (the password is read from stdin)"
        );
    }
    Ok(())
}

/// Every route of the checkout and, in simulator mode, the simulator under `/sim/`.
fn app_routes(
    state: web::Data<AppState>,
    simulator: Option<Simulator>,
) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    move |cfg| {
        cfg.app_data(state.clone()).configure(crate::web::routes);
        if let Some(sim) = &simulator {
            cfg.service(web::scope("/sim").configure(|c| sim.configure(c)));
        }
    }
}

pub(super) fn bind(listen: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}"))
}

/// What `scanpay serve` prints once it listens (the tests read the first URL).
fn banner(addr: SocketAddr, simulator_mode: bool) -> Vec<String> {
    let base = format!("http://{addr}");
    let mut lines = vec![
        format!("scanpay: checkout   {base}/"),
        format!("scanpay: admin      {base}/admin"),
    ];
    if simulator_mode {
        lines.push(format!(
            "scanpay: phone      {base}/sim/   (WeChat Pay simulator)"
        ));
        lines.push("scanpay: demo login cashier / cashier, admin / admin".to_string());
    }
    lines
}
