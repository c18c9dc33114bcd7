//! The one HTTP set-up of `serve` and `sim`: middleware, body limits and
//! deadlines, connection caps from the open-files limit, and our signals.

use std::future::Future;
use std::net::TcpListener;
use std::sync::OnceLock;
use std::time::Duration;

use actix_web::middleware::{self, from_fn};
use actix_web::{App, HttpServer, dev::Server, web};

use crate::config::Settings;
use crate::config::proxies::TrustedProxies;
use crate::web::deadline::BodyTimeout;

/// Largest request body accepted anywhere.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What bounds a connection's life and their number, the same on every server.
#[derive(Debug, Clone, Copy)]
pub(super) struct HttpLimits {
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
    pub(super) fn new(settings: &Settings) -> Self {
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
pub(super) fn http_server(
    listener: TcpListener,
    tls: Option<rustls::ServerConfig>,
    proxies: TrustedProxies,
    limits: HttpLimits,
    configure: impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
) -> std::io::Result<Server> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let peers = super::peers::Peers::new(
        super::peers::cap_for(limits.max_connections.saturating_mul(workers)),
        proxies.clone(),
    );
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
            // Outermost: a connection past its address's cap costs nothing more.
            .wrap(from_fn(super::peers::refuse_over_cap))
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
    // Each connection counts against its address; only the TLS simulator's
    // connections carry a client certificate to note.
    .on_connect(move |conn, ext| {
        peers.connected(conn, ext);
        crate::sim::tls::note_client_certificate(conn, ext);
    });
    let server = match tls {
        Some(config) => server.listen_rustls_0_23(listener, config)?,
        None => server.listen(listener)?,
    };
    let server = server.shutdown_timeout(5).disable_signals().run();
    Ok(server)
}

/// Runs `server` until `shutdown` completes (or the server fails), then stops it
/// gracefully: requests in progress may finish, for up to the shutdown timeout.
pub(super) async fn serve_until(
    mut server: Server,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let handle = server.handle();
    tokio::select! {
        done = &mut server => return Ok(done?),
        () = shutdown => {}
    }
    tracing::info!("shutting down");
    let ((), done) = tokio::join!(handle.stop(true), server);
    Ok(done?)
}

pub(super) async fn shutdown_signal() {
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
