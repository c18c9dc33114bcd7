//! Assembly: build every shared piece once, bind, and run until stopped.

pub mod check;
pub mod cli;
pub mod telemetry;

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::middleware::{self, from_fn};
use actix_web::{App, HttpServer, dev::Server, web};
use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::checkout::accounts::Accounts;
use crate::checkout::gateway::Gateway;
use crate::checkout::reconcile::DayOutcome;
use crate::checkout::{Checkout, Hub};
use crate::config::Api;
use crate::config::Settings;
use crate::gateway::{WxPayV2, WxPayV3};
use crate::jobs::poller::Poller;
use crate::sim::Simulator;
use crate::store::Store;
use crate::values::clock::Clock;
use crate::web::AppState;
use crate::web::client::TrustedProxies;
use crate::web::deadline::BodyTimeout;
use crate::web::qr::QrCache;
use crate::wxpay::v2::WxPayClient;
use crate::wxpay::v3::PublicKey;
use crate::wxpay::v3::aead::ApiV3Key;
use crate::wxpay::v3::client::V3Client;

/// Largest request body accepted anywhere.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// `scanpay sim`: the simulated gateway alone, at the root of its address.
pub struct SimApp {
    server: Server,
    addr: SocketAddr,
    simulator: Simulator,
    /// Served over TLS (`--tls-cert`).
    https: bool,
}

impl SimApp {
    pub fn build(settings: Settings) -> anyhow::Result<Self> {
        let simulator = simulator(&settings)?;
        let listener = bind(&settings.listen)?;
        let addr = listener.local_addr()?;
        simulator_stays_local(&settings, addr)?;
        let sim = simulator.clone();
        let proxies = settings.http.trusted_proxies()?;
        let limits = HttpLimits::new(&settings);
        let tls = settings.sim.tls_files()?;
        let tls_config = match &tls {
            Some(files) => {
                if files.client_ca.is_some() {
                    simulator.require_client_certificates();
                }
                Some(crate::sim::tls::server_config(files)?)
            }
            None => None,
        };
        let server = http_server(listener, tls_config, proxies, limits, move |cfg| {
            sim.configure(cfg)
        })?;
        Ok(SimApp {
            server,
            addr,
            simulator,
            https: tls.is_some(),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn simulator(&self) -> &Simulator {
        &self.simulator
    }

    pub fn banner(&self) -> Vec<String> {
        let scheme = if self.https { "https" } else { "http" };
        let url = format!("{scheme}://{}/", self.addr);
        vec![
            format!(
                "scanpay sim: WeChat Pay gateway  {url}  (merchant {})",
                self.simulator.merchant().mch_id
            ),
            format!(
                "scanpay sim: WeChat Pay API v3   {url}v3/  (mchid {}, keys at {url}v3/sim-keys)",
                self.simulator.v3().merchant().mchid
            ),
            format!("scanpay sim: customer's phone    {url}"),
        ]
    }

    /// Serves until Ctrl-C / SIGTERM.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` completes (tests: when the test is over).
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        serve_until(self.server, shutdown).await
    }
}

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
}

/// The v3 client whose platform certificates are downloaded again before they expire.
pub struct CertificateRefresh {
    client: Arc<V3Client>,
    apiv3_key: ApiV3Key,
    /// After a failed download, try again this soon (`CERTIFICATE_RETRY`).
    retry: Duration,
}

/// How often platform certificates are downloaded again (WeChat Pay's own SDK:
/// hourly; certificates overlap for weeks when they rotate).
const CERTIFICATE_REFRESH: Duration = Duration::from_secs(3600);
/// After a failed download, try again this soon.
const CERTIFICATE_RETRY: Duration = Duration::from_secs(10);

impl CertificateRefresh {
    async fn run(self, stop: CancellationToken) {
        let mut wait = if self.client.certificates().is_empty() {
            self.retry
        } else {
            CERTIFICATE_REFRESH
        };
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            wait = match self.client.refresh_certificates(&self.apiv3_key).await {
                Ok(certs) => {
                    tracing::info!(count = certs.len(), "platform certificates refreshed");
                    CERTIFICATE_REFRESH
                }
                Err(e) => {
                    tracing::warn!(error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), "platform certificates not refreshed; will retry");
                    self.retry
                }
            };
        }
    }
}

struct DailyBackup {
    data_dir: std::path::PathBuf,
    dir: std::path::PathBuf,
    keep: usize,
    tz: jiff::tz::TimeZone,
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
        let checkout = Checkout::with_clock(store, gateway, hub, settings.checkout_config(), clock);
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
        })
    }

    /// Tries a failed platform-certificate download again after `every` instead
    /// of `CERTIFICATE_RETRY` (tests that start the gateway after the app).
    pub fn retry_certificates_after(&mut self, every: Duration) {
        if let Some(c) = &mut self.certificates {
            c.retry = every;
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

    /// Spawns the poller and serves until `shutdown` completes, then stops in order.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        let poller = tokio::spawn(self.poller.run(stop.clone()));
        let metrics = self.metrics.map(|(server, _)| {
            let handle = server.handle();
            (handle, tokio::spawn(server))
        });
        let backups = self.daily_backup.map(|b| {
            tokio::spawn(crate::store::backup::run_daily(
                b.data_dir,
                b.dir,
                b.keep,
                b.tz,
                stop.clone(),
            ))
        });
        let webhooks = self.webhooks.map(|w| tokio::spawn(w.run(stop.clone())));
        let certificates = self.certificates.map(|c| tokio::spawn(c.run(stop.clone())));
        let served = serve_until(self.server, shutdown).await;
        if let Some((handle, task)) = metrics {
            handle.stop(true).await;
            let _ = task.await;
        }
        stop.cancel();
        if let Err(e) = poller.await {
            tracing::error!(error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), "the poller did not stop cleanly");
        }
        if let Some(webhooks) = webhooks
            && let Err(e) = webhooks.await
        {
            tracing::error!(error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), "the webhook task did not stop cleanly");
        }
        if let Some(backups) = backups
            && let Err(e) = backups.await
        {
            tracing::error!(error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), "the daily backup did not stop cleanly");
        }
        if let Some(c) = certificates
            && let Err(e) = c.await
        {
            tracing::error!(error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), "the certificate refresh did not stop cleanly");
        }
        served
        // The store closes with its last handle, dropped with the server and the poller.
    }
}

async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
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

fn bind(listen: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}"))
}

fn simulator(settings: &Settings) -> anyhow::Result<Simulator> {
    Simulator::new(settings.sim_config()?).context("cannot build the simulator")
}

/// The gateway of `wxpay.api`: `WxPayV2`, or `WxPayV3` with WeChat Pay
/// verified by its public key (`public_key_file`, or the simulator's own in
/// simulator mode) and/or by platform certificates downloaded now and kept
/// fresh (when no public key is configured; a failed first download is
/// retried in the background, answers meanwhile unbelievable).
async fn build_gateway(
    settings: &Settings,
    addr: SocketAddr,
) -> anyhow::Result<(Arc<dyn Gateway>, Option<CertificateRefresh>)> {
    let (base, notify_url) = gateway(settings, addr);
    let wx = &settings.wxpay;
    if wx.api == Api::V2 {
        let client = WxPayClient::new(&base, wx.merchant_or_demo()?, wx.timeout())?;
        // Refunds' mutual TLS: the certificate is checked here, at start-up.
        let (gateway_ca, identity) = wx.refund_tls()?;
        let client = client.with_tls(gateway_ca.as_deref(), identity.as_ref())?;
        return Ok((Arc::new(WxPayV2::new(client, notify_url)), None));
    }
    let mut merchant = wx.v3_merchant_or_demo()?;
    if wx.is_simulator() && merchant.public_key.is_none() {
        // The app in simulator mode believes the simulator's own public key.
        merchant.public_key = Some(PublicKey {
            id: crate::sim::v3::keys::PUBLIC_KEY_ID.into(),
            pem: crate::sim::v3::keys::PUBLIC_KEY_PEM.into(),
        });
    }
    let (client, refresh) = v3_client(&base, &merchant, wx.timeout()).await?;
    let gateway = WxPayV3::new(client.clone(), merchant.apiv3_key.clone(), notify_url);
    Ok((Arc::new(gateway), refresh))
}

/// A v3 client for `merchant` at `base`; without a public key, its platform
/// certificates (downloaded by `connect`) and the refresh that keeps them.
async fn v3_client(
    base: &str,
    merchant: &crate::wxpay::v3::Merchant,
    timeout: Duration,
) -> anyhow::Result<(Arc<V3Client>, Option<CertificateRefresh>)> {
    let client = Arc::new(
        V3Client::connect(base.trim_end_matches('/'), merchant, timeout)
            .await
            .context("the API v3 client")?,
    );
    let refresh = merchant.public_key.is_none().then(|| CertificateRefresh {
        client: client.clone(),
        apiv3_key: merchant.apiv3_key.clone(),
        retry: CERTIFICATE_RETRY,
    });
    Ok((client, refresh))
}

/// `scanpay reconcile --date DAY`: the same settings as `serve`, the same
/// gateway (in simulator mode, the simulator of the server running at
/// `listen`), the same database; one day reconciled at once.
pub async fn reconcile(settings: Settings, day: jiff::civil::Date) -> anyhow::Result<DayOutcome> {
    let store = open_store(&settings).await?;
    let addr = running_server(&settings.listen)?;
    // One day's run needs no certificate refresh: the certificates fetched now serve it.
    let (gateway, _) = build_gateway(&settings, addr).await?;
    let checkout = Checkout::new(store, gateway, Hub::new(), settings.checkout_config());
    Ok(checkout.reconcile_day(day).await?)
}

/// Where a server listening on `listen` is reached from this machine
/// (`0.0.0.0:8080` is reached at `127.0.0.1:8080`).
fn running_server(listen: &str) -> anyhow::Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    let mut addr = listen
        .to_socket_addrs()
        .with_context(|| format!("listen address {listen:?}"))?
        .next()
        .with_context(|| format!("listen address {listen:?} names no address"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    Ok(addr)
}

/// The gateway's base URL and our notify_url. In simulator mode both are on our
/// own address: the simulator is mounted at `/sim/`.
fn gateway(settings: &Settings, addr: SocketAddr) -> (String, String) {
    let wx = &settings.wxpay;
    if wx.is_simulator() {
        let notify_url = wx
            .notify_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}{}", wx.notify_path()));
        (format!("http://{addr}/sim/"), notify_url)
    } else {
        (
            wx.gateway.clone(),
            wx.notify_url.clone().unwrap_or_default(),
        )
    }
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

/// What bounds a connection's life and their number, the same on every server.
#[derive(Debug, Clone, Copy)]
struct HttpLimits {
    /// `http.body_timeout_secs`: the whole body, after the head.
    body: Duration,
    /// Per worker (actix counts per worker), from the open-files limit.
    max_connections: usize,
}

/// The request head must have arrived this long after the connection opened
/// (or after the previous answer).
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// An idle keep-alive connection is closed after this.
const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// A client that does not take its last answer is dropped after this.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Files kept for everything but client connections: the database and its
/// journal, backups, the poller's and the simulator's outbound calls, the
/// metrics server, logs; and a tenth of the rest on top.
const RESERVED_FILES: u64 = 512;
/// actix's own default per worker: the cap when the files allow more.
const MAX_CONNECTIONS_PER_WORKER: usize = 25_000;

impl HttpLimits {
    fn new(settings: &Settings) -> Self {
        let files = raise_open_files_limit();
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        HttpLimits {
            body: settings.http.body_timeout(),
            max_connections: connections_per_worker(files, workers),
        }
    }
}

/// Client connections a worker may hold with `files` open files for the
/// process and `workers` workers: what is left after `RESERVED_FILES` and a
/// tenth, shared out, never fewer than 16.
fn connections_per_worker(files: u64, workers: usize) -> usize {
    let spare = files.saturating_sub(RESERVED_FILES);
    let spare = spare - spare / 10;
    let per = spare / u64::try_from(workers.max(1)).unwrap_or(1);
    usize::try_from(per)
        .unwrap_or(usize::MAX)
        .clamp(16, MAX_CONNECTIONS_PER_WORKER)
}

/// Raises the soft open-files limit to the hard one, once per process (each
/// connection, the database and every outbound call hold a file), and logs
/// the limit once. Returns the limit in force.
fn raise_open_files_limit() -> u64 {
    static LIMIT: OnceLock<u64> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        let limit = raise_nofile();
        tracing::info!(open_files = limit, "open-files limit");
        limit
    })
}

#[cfg(unix)]
fn raise_nofile() -> u64 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        tracing::warn!(error.message = %std::io::Error::last_os_error(), "cannot read the open-files limit");
        return 1024;
    }
    if rl.rlim_cur < rl.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: rl.rlim_max,
            rlim_max: rl.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we pass; raising the soft limit up
        // to the hard one needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            rl.rlim_cur = rl.rlim_max;
        } else {
            tracing::warn!(
                error.message = %std::io::Error::last_os_error(),
                soft = rl.rlim_cur,
                hard = rl.rlim_max,
                "cannot raise the open-files limit"
            );
        }
    }
    rl.rlim_cur
}

#[cfg(not(unix))]
fn raise_nofile() -> u64 {
    8192
}

/// The one HTTP set-up of `serve` and `sim`: request log, security headers,
/// `//` merged, body limits and deadlines, error pages in the shop's language, then `configure`'s routes.
/// Signals are ours (`run_until_stopped`), not actix's.
/// `proxies` (`http.trusted_proxies`) decide who the client is (`web::client`).
fn http_server(
    listener: TcpListener,
    tls: Option<rustls::ServerConfig>,
    proxies: TrustedProxies,
    limits: HttpLimits,
    configure: impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
) -> std::io::Result<Server> {
    let server = HttpServer::new(move || {
        let configure = configure.clone();
        App::new()
            .app_data(proxies.clone())
            .app_data(BodyTimeout(limits.body))
            .wrap(from_fn(crate::web::error::localise))
            // Outside `localise`: its 408 is final, and closes the connection.
            .wrap(from_fn(crate::web::deadline::body_deadline))
            .wrap(
                middleware::DefaultHeaders::new()
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("Referrer-Policy", "same-origin")),
            )
            // Outside `localise`, which replaces error responses whole.
            .wrap(from_fn(crate::web::headers::security_headers))
            .wrap(middleware::NormalizePath::new(
                middleware::TrailingSlash::MergeOnly,
            ))
            .wrap(from_fn(crate::app::telemetry::log_requests))
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .app_data(web::FormConfig::default().limit(MAX_BODY_BYTES))
            .configure(move |cfg| configure(cfg))
    })
    // An SSE event written right after another would otherwise wait ~40 ms for the
    // browser's delayed ACK (Nagle), and so would every small answer after a write.
    .tcp_nodelay(true)
    // Every phase of a connection has a deadline: the head here, the body in
    // `body_deadline`, idle keep-alive, the last answer's hand-over.
    .client_request_timeout(HEAD_TIMEOUT)
    .keep_alive(KEEP_ALIVE)
    .client_disconnect_timeout(DISCONNECT_TIMEOUT)
    // Beyond this a worker stops accepting (the kernel's backlog waits) rather
    // than run out of files: the database and outbound calls keep theirs.
    .max_connections(limits.max_connections)
    // Only the TLS simulator's connections carry a client certificate to note.
    .on_connect(crate::sim::tls::note_client_certificate);
    let server = match tls {
        Some(config) => server.listen_rustls_0_23(listener, config)?,
        None => server.listen(listener)?,
    };
    let server = server.shutdown_timeout(5).disable_signals().run();
    Ok(server)
}

/// Runs `server` until `shutdown` completes (or the server fails), then stops it
/// gracefully: requests in progress may finish, for up to the shutdown timeout.
async fn serve_until(mut server: Server, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let handle = server.handle();
    tokio::select! {
        done = &mut server => return Ok(done?),
        () = shutdown => {}
    }
    tracing::info!("shutting down");
    let ((), done) = tokio::join!(handle.stop(true), server);
    Ok(done?)
}

/// A simulator pays any order without money: on an address other machines can
/// reach it must be asked for (`sim.allow_network`).
fn simulator_stays_local(settings: &Settings, addr: SocketAddr) -> anyhow::Result<()> {
    if addr.ip().is_loopback() || settings.sim.allow_network {
        return Ok(());
    }
    anyhow::bail!(
        "the simulator would listen on {addr}, where anyone who reaches it can mark orders paid \
         without money; listen on 127.0.0.1 (--listen 127.0.0.1:PORT), or set sim.allow_network = true \
         (SCANPAY_SIM_ALLOW_NETWORK=true) for a demo on a network you trust"
    )
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
