//! Assembly: build every shared piece once, bind, and run until stopped.

use std::net::{SocketAddr, TcpListener};

use actix_web::{App, HttpServer, dev::Server, middleware, web};
use anyhow::Context;

use crate::config::Settings;
use crate::sim::{SimConfig, Simulator};

/// Largest request body accepted anywhere.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// `scanpay sim`: the simulated gateway alone, at the root of its address.
pub struct SimApp {
    server: Server,
    addr: SocketAddr,
    simulator: Simulator,
}

impl SimApp {
    pub fn build(settings: &Settings, listen: &str) -> anyhow::Result<Self> {
        let simulator = Simulator::new(SimConfig::from_settings(settings)?)
            .context("cannot build the simulator's HTTP client")?;
        let listener =
            TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let sim = simulator.clone();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(middleware::NormalizePath::new(
                    middleware::TrailingSlash::MergeOnly,
                ))
                .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
                .app_data(web::FormConfig::default().limit(MAX_BODY_BYTES))
                .configure(|cfg| sim.configure(cfg))
        })
        // Small answers and SSE events go out at once instead of waiting on the peer's delayed ACK.
        .tcp_nodelay(true)
        .listen(listener)?
        .workers(2)
        .shutdown_timeout(5)
        .run();
        Ok(SimApp {
            server,
            addr,
            simulator,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn simulator(&self) -> &Simulator {
        &self.simulator
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// `scanpay serve`: the checkout, its poller, and in simulator mode the simulator at `/sim/`.
pub struct Application {
    server: Server,
    addr: SocketAddr,
    stop: tokio_util::sync::CancellationToken,
    poller: tokio::task::JoinHandle<()>,
    banner: Vec<String>,
}

impl Application {
    /// Start-up order: data dir → migrate → live-mode checks → clients → bind → poller.
    pub async fn build(
        settings: &Settings,
        data_dir: &std::path::Path,
        listen: &str,
    ) -> anyhow::Result<Self> {
        use crate::checkout::{Checkout, CheckoutConfig, Hub};
        use crate::poller::Poller;
        use crate::store::Store;
        use crate::web::{AppState, auth::LoginLimiter, error::set_error_language, i18n};

        let store = {
            let dir = data_dir.to_path_buf();
            tokio::task::spawn_blocking(move || Store::open(&dir))
                .await?
                .with_context(|| format!("cannot open the database in {}", data_dir.display()))?
        };
        let simulator_mode = settings.wxpay.is_simulator();
        if simulator_mode {
            let s = store.clone();
            if tokio::task::spawn_blocking(move || crate::accounts::ensure_demo_users(&s)).await?? {
                tracing::info!("created the demo users admin/admin and cashier/cashier");
            }
        } else {
            settings.wxpay.validate_live()?;
            if !settings
                .wxpay
                .notify_url
                .as_deref()
                .unwrap_or("")
                .starts_with("https://")
            {
                tracing::warn!(
                    "wxpay.notify_url is not https: the real gateway needs an https notify_url"
                );
            }
            let admins = store.read(crate::store::users::count_admins).await?;
            if admins == 0 {
                anyhow::bail!(
                    "live mode needs an admin user: create one with `scanpay user add NAME --role admin` \
                     (the password is read from stdin)"
                );
            }
        }

        let listener =
            TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let merchant = settings.wxpay.merchant_or_demo()?;
        let (gateway, notify_url) = if simulator_mode {
            (
                format!("http://{addr}/sim/"),
                settings
                    .wxpay
                    .notify_url
                    .clone()
                    .unwrap_or_else(|| format!("http://{addr}/wxpay/notify")),
            )
        } else {
            (
                settings.wxpay.gateway.clone(),
                settings.wxpay.notify_url.clone().unwrap_or_default(),
            )
        };
        let wx = crate::wxpay::WxPayClient::new(&gateway, merchant, settings.wxpay.timeout())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let cfg = CheckoutConfig {
            qr_ttl: std::time::Duration::from_secs(settings.checkout.qr_ttl_secs),
            order_ttl: std::time::Duration::from_secs(settings.checkout.order_ttl_secs),
            shop_name: settings.shop.name.clone(),
            shop_tz: settings.shop_tz(),
            poll_fast: std::time::Duration::from_millis(settings.poller.fast_interval_ms),
            poll_fast_period: std::time::Duration::from_secs(settings.poller.fast_period_secs),
            poll_slow: std::time::Duration::from_millis(settings.poller.slow_interval_ms),
            max_backoff: std::time::Duration::from_secs(settings.poller.max_backoff_secs),
        };
        let qr_cache = std::sync::Arc::new(crate::qr::QrCache::default());
        let hub = {
            let qr_cache = qr_cache.clone();
            Hub::new().on_publish(move |token| qr_cache.forget(token))
        };
        let gateway = std::sync::Arc::new(crate::gateway::WxPayV2::new(wx, notify_url));
        let checkout = Checkout::new(store, gateway, hub, cfg);
        let poller = Poller::new(checkout.clone(), settings.poller.clone());
        let texts = i18n::texts(settings.shop.language);
        set_error_language(texts);
        let state = web::Data::new(AppState {
            checkout,
            t: texts,
            shop_name: settings.shop.name.clone(),
            tz: settings.shop_tz(),
            max_amount: settings.checkout.max_amount(),
            qr_cache,
            limiter: LoginLimiter::default(),
            heartbeat: poller.heartbeat(),
        });
        let simulator = if simulator_mode {
            Some(
                Simulator::new(SimConfig::from_settings(settings)?)
                    .context("cannot build the simulator's HTTP client")?,
            )
        } else {
            None
        };

        let server = HttpServer::new(move || {
            let sim = simulator.clone();
            App::new()
                .wrap(
                    middleware::DefaultHeaders::new()
                        .add(("X-Content-Type-Options", "nosniff"))
                        .add(("Referrer-Policy", "same-origin")),
                )
                .app_data(state.clone())
                .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
                .app_data(web::FormConfig::default().limit(MAX_BODY_BYTES))
                .configure(crate::web::routes)
                .configure(move |cfg| {
                    if let Some(sim) = sim {
                        cfg.service(web::scope("/sim").configure(|c| sim.configure(c)));
                    }
                })
        })
        // An SSE event written right after another would otherwise wait ~40 ms for the
        // browser's delayed ACK (Nagle), and so would every small answer after a write.
        .tcp_nodelay(true)
        .listen(listener)?
        .shutdown_timeout(5)
        .disable_signals()
        .run();

        let stop = tokio_util::sync::CancellationToken::new();
        let poller = tokio::spawn(poller.run(stop.clone()));

        let base = format!("http://{addr}");
        let mut banner = vec![
            format!("scanpay: checkout   {base}/"),
            format!("scanpay: admin      {base}/admin"),
        ];
        if simulator_mode {
            banner.push(format!(
                "scanpay: phone      {base}/sim/   (WeChat Pay simulator)"
            ));
            banner.push("scanpay: demo login cashier / cashier, admin / admin".to_string());
        }
        Ok(Application {
            server,
            addr,
            stop,
            poller,
            banner,
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn banner(&self) -> &[String] {
        &self.banner
    }

    /// Serves until Ctrl-C / SIGTERM, then stops in order: HTTP, poller, store.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let server = tokio::spawn(self.server);
        shutdown_signal().await;
        tracing::info!("shutting down");
        handle.stop(true).await;
        let _ = server.await;
        self.stop.cancel();
        let _ = self.poller.await;
        Ok(())
    }
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
