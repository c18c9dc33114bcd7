//! Load benchmark of the real server: `cargo bench --bench load`.
//!
//! Starts the `scanpay` binary that cargo built for this bench (release
//! profile) on 127.0.0.1 with a temporary data directory, drives it over HTTP
//! and prints one report. Every loop is bounded in count and in time and talks
//! only to the loopback address. The load generator runs in this process on the
//! same machine, so it shares the CPU with the server it measures.
//!
//! This file holds the process, HTTP and statistics helpers and the phases on
//! the main server (`create`, `qr`, `ingest`, `sse`); `fanout.rs`, `poller.rs`
//! and `scale.rs` hold the others.
//!
//! Knobs (environment):
//! - `LOAD_CLIENTS` concurrent cashier sessions creating orders (default 16)
//! - `LOAD_SECS` length of each timed phase in seconds (default 8)
//! - `LOAD_NOTIFY` orders paid by notification in the ingest phase (default 10000)
//! - `LOAD_SSE` notify→SSE samples (default 300), `LOAD_SSE_IDLE` other open streams (default 100)
//! - `LOAD_POLLER_ORDERS` open orders for the poller phase (default 10000; 0 skips it)
//! - `LOAD_POLLER_SECS` steady-state sampling window (default 30)
//! - `LOAD_POLLER_MAX_PER_SEC` the poller's request cap for that phase (default 50)
//! - `LOAD_SCALE` comma-separated row counts to seed, e.g. `1000,10000,100000`
//!   (default: none; each size adds about half a minute)
//! - `LOAD_FANOUT_STREAMS` idle SSE streams (default 2000), `LOAD_FANOUT_RATE`
//!   payments/s of other orders (default 200), `LOAD_FANOUT_SECS` (default 10)
//!   for the `fanout` phase (see `fanout.rs`)
//! - `LOAD_DAY_ORDERS` orders of one cashier's day (default 10000), `LOAD_DAY_GETS`
//!   `GET /` samples at each of 100, 1,000 and 10,000 (default 100), for the `day`
//!   phase (see `day.rs`)
//! - `LOAD_ONLY` comma-separated phases: `create,qr,ingest,sse,fanout,day,poller,scale`
//! - `LOAD_BIN` another `scanpay` binary to measure (default: the one built for this bench)
//! - `LOAD_API` the protocol the server speaks, `v2` (default) or `v3`: orders, QRs
//!   and notifications (v3: AES-256-GCM resource, RSA-signed headers) go through
//!   it

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use scanpay::values::money::Fen;
use scanpay::wxpay::v2::notify::{self, PaymentNotice};
use scanpay::wxpay::v2::{ApiKey, Merchant, OutTradeNo, SignType, xml};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod day;
mod fanout;
mod poller;
mod scale;

const DEMO_APPID: &str = "wxd930ea5d5a258f4f";
const DEMO_MCH_ID: &str = "10000100";
const DEMO_KEY: &str = "192006250b4c09247ec02edce69f6a2d";
/// Hard ceiling on any single phase, whatever the knobs say.
const PHASE_LIMIT: Duration = Duration::from_secs(300);

fn main() {
    // `cargo bench` passes `--bench`; anything else (e.g. `cargo test --benches`)
    // must not start servers and load the machine.
    if !std::env::args().any(|a| a == "--bench") {
        println!("load: skipped (run it with `cargo bench --bench load`)");
        return;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("load: cannot start a runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run()) {
        eprintln!("load: failed: {e:#}");
        std::process::exit(1);
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn wanted(phase: &str) -> bool {
    match std::env::var("LOAD_ONLY") {
        Ok(list) if !list.trim().is_empty() => list.split(',').any(|p| p.trim() == phase),
        _ => phase != "scale" || std::env::var("LOAD_SCALE").is_ok(),
    }
}

async fn run() -> Result<()> {
    scanpay::wxpay::v2::client::install_crypto_provider();
    print_machine();
    let clients = env_usize("LOAD_CLIENTS", 16).max(1);
    let secs = Duration::from_secs(env_usize("LOAD_SECS", 8) as u64);
    // The fanout phase holds a few thousand sockets on each side.
    fanout::raise_fd_limit(16_384);

    if wanted("create") || wanted("qr") || wanted("ingest") || wanted("sse") || wanted("fanout") {
        let dir = tempfile::tempdir()?;
        let server = Server::start(dir.path(), &[])?;
        println!("\n== server {} (pid {}) ==", server.base, server.pid());
        let base = server.base.clone();
        let sessions = login_many(&base, "cashier", clients).await?;
        server.report_rss("after start and logins");

        let mut tokens = Vec::new();
        if wanted("create") {
            let mut one =
                create_orders(&sessions[..1], secs.min(Duration::from_secs(4)), 500).await?;
            one.report("POST /orders, 1 client (sequential)");
            tokens.extend(one.tokens);
            let few = clients.min(4);
            let mut some = create_orders(
                &sessions[..few],
                secs.min(Duration::from_secs(4)),
                usize::MAX,
            )
            .await?;
            some.report(&format!("POST /orders, {few} concurrent clients"));
            tokens.extend(std::mem::take(&mut some.tokens));
            let mut many = create_orders(&sessions, secs, usize::MAX).await?;
            many.report(&format!("POST /orders, {clients} concurrent clients"));
            tokens.extend(many.tokens);
            server.report_rss("after create");
        }
        if wanted("qr") {
            if tokens.is_empty() {
                tokens = create_orders(&sessions, Duration::from_secs(60), 200)
                    .await?
                    .tokens;
            }
            let sample: Vec<String> = tokens.iter().take(200).cloned().collect();
            qr_phase(&server, &sample, secs).await?;
            let paths: Vec<String> = sample.iter().map(|t| format!("/o/{t}/status")).collect();
            let r = hammer(&server.addr, &paths, 64, secs).await?;
            r.report("GET /o/{token}/status", 64);
            server.report_rss("after qr/status");
        }
        if wanted("ingest") {
            let n = env_usize("LOAD_NOTIFY", 10_000);
            ingest_phase(&server, &sessions, n).await?;
            server.report_rss("after ingest");
        }
        if wanted("sse") {
            let n = env_usize("LOAD_SSE", 300);
            let idle = env_usize("LOAD_SSE_IDLE", 100);
            sse_phase(&server, &sessions, n, idle).await?;
            server.report_rss("after sse");
        }
        if wanted("fanout") {
            fanout::fanout_phase(&server, &sessions).await?;
            server.report_rss("after fanout");
        }
        server.report_peak();
    }
    if wanted("day") {
        day::day_phase().await?;
    }
    if wanted("poller") {
        let n = env_usize("LOAD_POLLER_ORDERS", 10_000);
        if n > 0 {
            poller::poller_phase(n).await?;
        }
    }
    if wanted("scale") {
        let sizes: Vec<usize> = std::env::var("LOAD_SCALE")
            .unwrap_or_else(|_| "1000,10000,100000".into())
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        for n in sizes {
            scale::scale_phase(n, secs).await?;
        }
    }
    Ok(())
}

fn print_machine() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_default();
    println!("machine: {cores} cores, {cpu}; {mem}");
    println!("binary:  {}", bin());
}

// ---------------------------------------------------------------- processes

/// The server binary: the one cargo built for this bench, unless `LOAD_BIN`
/// names another (to compare two builds on the same machine).
fn bin() -> String {
    std::env::var("LOAD_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_scanpay").to_string())
}

/// A `scanpay` process, killed when dropped.
struct Server {
    child: Child,
    base: String,
    addr: String,
    data_dir: PathBuf,
}

impl Server {
    /// `scanpay serve` in simulator mode on a random loopback port.
    fn start(data_dir: &Path, env: &[(&str, &str)]) -> Result<Server> {
        let dir = data_dir
            .to_str()
            .ok_or_else(|| anyhow!("the temp dir is not UTF-8"))?;
        let listen = env
            .iter()
            .find(|(k, _)| *k == "LISTEN")
            .map(|(_, v)| *v)
            .unwrap_or("127.0.0.1:0");
        let env: Vec<(&str, &str)> = env
            .iter()
            .filter(|(k, _)| *k != "LISTEN")
            .copied()
            .collect();
        let (child, base) = spawn(
            &["serve", "--data-dir", dir, "--listen", listen],
            &env,
            &data_dir.join("serve.log"),
        )?;
        let addr = base
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        Ok(Server {
            child,
            base: base.trim_end_matches('/').to_string(),
            addr,
            data_dir: data_dir.to_path_buf(),
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn db(&self) -> Result<rusqlite::Connection> {
        let c = rusqlite::Connection::open_with_flags(
            self.data_dir.join("scanpay.sqlite3"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        c.busy_timeout(Duration::from_secs(10))?;
        Ok(c)
    }

    fn count(&self, sql: &str) -> Result<i64> {
        Ok(self.db()?.query_row(sql, [], |r| r.get(0))?)
    }

    fn report_rss(&self, when: &str) {
        let p = ProcSample::of(self.pid());
        println!("  RSS {when}: {:.1} MB", p.rss_kb as f64 / 1024.0);
    }

    fn report_peak(&self) {
        let p = ProcSample::of(self.pid());
        println!(
            "  peak RSS (VmHWM) of this server: {:.1} MB",
            p.hwm_kb as f64 / 1024.0
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary, logs to `log`, and waits for the first URL on stdout.
fn spawn(args: &[&str], env: &[(&str, &str)], log: &Path) -> Result<(Child, String)> {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(log)?));
    for (k, _) in std::env::vars() {
        if k.starts_with("SCANPAY_") {
            cmd.env_remove(k);
        }
    }
    // Logging every request at info would measure the terminal, not the app.
    cmd.env("RUST_LOG", "warn");
    // A load test is many counters' worth of orders through few sessions:
    // the per-cashier caps (a real counter's pace) would measure themselves.
    cmd.env("SCANPAY_CHECKOUT_MAX_OPEN_ORDERS_PER_CASHIER", "0");
    cmd.env("SCANPAY_CHECKOUT_MAX_ORDERS_PER_MINUTE", "0");
    // The fanout phase holds 2,000 event streams open, more than a shop's
    // default cap (http.max_event_streams, 1000), which answers the rest 503.
    cmd.env("SCANPAY_HTTP_MAX_EVENT_STREAMS", "10000");
    if v3() {
        cmd.env("SCANPAY_WXPAY_API", "v3");
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().context("start the scanpay binary")?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("no stdout pipe"))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if !sent && let Some(i) = line.find("http://") {
                let url = line[i..]
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_string();
                let _ = tx.send(url);
                sent = true;
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(url) => Ok((child, url)),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "scanpay {args:?} printed no URL: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        }
    }
}

/// CPU time and memory of a process, from /proc.
#[derive(Debug, Clone, Copy)]
struct ProcSample {
    at: Instant,
    cpu_ticks: u64,
    rss_kb: u64,
    hwm_kb: u64,
}

impl ProcSample {
    fn of(pid: u32) -> ProcSample {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
        let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = after.split_whitespace().collect();
        let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kb = |key: &str| {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        ProcSample {
            at: Instant::now(),
            cpu_ticks: tick(11) + tick(12),
            rss_kb: kb("VmRSS:"),
            hwm_kb: kb("VmHWM:"),
        }
    }
}

fn clock_ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

// ---------------------------------------------------------------- sessions

fn http_client(cookies: bool) -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(cookies)
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// A signed-in cashier with its own cookie jar and CSRF token.
#[derive(Clone)]
struct Session {
    http: reqwest::Client,
    base: String,
    csrf: String,
}

async fn login(base: &str, password: &str) -> Result<Session> {
    let http = http_client(true)?;
    let resp = http
        .post(format!("{base}/login"))
        .form(&[("username", "cashier"), ("password", password)])
        .send()
        .await?;
    if resp.status() != 303 {
        bail!("login answered {}", resp.status());
    }
    let page = http.get(format!("{base}/")).send().await?.text().await?;
    let marker = "name=\"csrf_token\" value=\"";
    let start = page
        .find(marker)
        .ok_or_else(|| anyhow!("no csrf_token on the checkout form"))?
        + marker.len();
    let end = page[start..]
        .find('"')
        .ok_or_else(|| anyhow!("unterminated csrf_token"))?
        + start;
    Ok(Session {
        http,
        base: base.to_string(),
        csrf: page[start..end].to_string(),
    })
}

async fn login_many(base: &str, password: &str, n: usize) -> Result<Vec<Session>> {
    let started = Instant::now();
    let mut out = Vec::with_capacity(n);
    // Logins are argon2-bound by design, and one address may have two checks
    // in flight (more are refused early, 429): two at a time.
    for chunk in (0..n).collect::<Vec<_>>().chunks(2) {
        let logins = chunk.iter().map(|_| login(base, password));
        for s in futures_util::future::join_all(logins).await {
            out.push(s?);
        }
    }
    println!(
        "  {n} cashier sessions signed in ({:.2} s, argon2 per login)",
        started.elapsed().as_secs_f64()
    );
    Ok(out)
}

impl Session {
    /// `POST /orders`; the new order's token.
    async fn create_order(&self, amount_fen: u64) -> Result<String> {
        let amount = format!("{}.{:02}", amount_fen / 100, amount_fen % 100);
        let resp = self
            .http
            .post(format!("{}/orders", self.base))
            .form(&[
                ("amount", amount.as_str()),
                ("description", "load test"),
                ("csrf_token", self.csrf.as_str()),
            ])
            .send()
            .await?;
        if resp.status() != 303 {
            bail!("POST /orders answered {}", resp.status());
        }
        let loc = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| anyhow!("303 without Location"))?;
        Ok(loc.trim_start_matches("/o/").to_string())
    }

    async fn status(&self, token: &str) -> Result<serde_json::Value> {
        Ok(self
            .http
            .get(format!("{}/o/{token}/status", self.base))
            .send()
            .await?
            .json()
            .await?)
    }
}

// ---------------------------------------------------------------- statistics

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn latency_line(lat: &mut [Duration]) -> String {
    lat.sort();
    format!(
        "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(percentile(lat, 0.50)),
        ms(percentile(lat, 0.90)),
        ms(percentile(lat, 0.99)),
        ms(lat.last().copied().unwrap_or_default())
    )
}

struct Created {
    tokens: Vec<String>,
    latencies: Vec<Duration>,
    elapsed: Duration,
    errors: usize,
}

impl Created {
    fn report(&mut self, what: &str) {
        let n = self.latencies.len();
        println!(
            "  {what}: {n} orders in {:.2} s = {:.0} orders/s; {}; {} errors",
            self.elapsed.as_secs_f64(),
            n as f64 / self.elapsed.as_secs_f64(),
            latency_line(&mut self.latencies),
            self.errors
        );
    }
}

/// Each session creates orders back to back until `dur` or `max` orders in all.
async fn create_orders(sessions: &[Session], dur: Duration, max: usize) -> Result<Created> {
    let started = Instant::now();
    let deadline = started + dur.min(PHASE_LIMIT);
    let made = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (i, s) in sessions.iter().cloned().enumerate() {
        let made = made.clone();
        tasks.push(tokio::spawn(async move {
            let mut tokens = Vec::new();
            let mut lat = Vec::new();
            let mut errors = 0;
            let mut k = 0u64;
            while Instant::now() < deadline && made.fetch_add(1, Ordering::Relaxed) < max {
                k += 1;
                let t0 = Instant::now();
                match s.create_order(100 + (i as u64 * 7919 + k) % 90_000).await {
                    Ok(t) => {
                        lat.push(t0.elapsed());
                        tokens.push(t);
                    }
                    Err(e) => {
                        errors += 1;
                        if errors == 1 {
                            eprintln!("  create failed: {e:#}");
                        }
                    }
                }
            }
            (tokens, lat, errors)
        }));
    }
    let mut out = Created {
        tokens: Vec::new(),
        latencies: Vec::new(),
        elapsed: Duration::ZERO,
        errors: 0,
    };
    for t in tasks {
        let (tokens, lat, errors) = t.await?;
        out.tokens.extend(tokens);
        out.latencies.extend(lat);
        out.errors += errors;
    }
    out.elapsed = started.elapsed();
    Ok(out)
}

// ---------------------------------------------------------------- raw GET load

/// A minimal HTTP/1.1 keep-alive GET client: reqwest costs several times more
/// CPU per request than the server's QR path, and the two share two cores.
struct RawConn {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl RawConn {
    async fn connect(addr: &str) -> Result<RawConn> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(RawConn {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    /// One GET; returns (status, body length).
    async fn get(&mut self, path: &str) -> Result<(u16, usize)> {
        let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        self.stream.write_all(req.as_bytes()).await?;
        self.buf.clear();
        let mut chunk = [0u8; 16 * 1024];
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                bail!("connection closed");
            }
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = std::str::from_utf8(&self.buf[..head_end])?;
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("bad status line"))?;
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while self.buf.len() < head_end + len {
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                bail!("connection closed mid-body");
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        Ok((status, len))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

struct Hammered {
    ok: u64,
    other: u64,
    bytes: u64,
    elapsed: Duration,
}

impl Hammered {
    fn report(&self, what: &str, conns: usize) {
        println!(
            "  {what}: {:.0} req/s over {conns} keep-alive connections ({} × 200, {} other, {:.0} bytes each, {:.1} s)",
            self.ok as f64 / self.elapsed.as_secs_f64(),
            self.ok,
            self.other,
            self.bytes as f64 / self.ok.max(1) as f64,
            self.elapsed.as_secs_f64()
        );
    }
}

/// `conns` connections GET the `paths` round-robin for `dur`.
async fn hammer(addr: &str, paths: &[String], conns: usize, dur: Duration) -> Result<Hammered> {
    let paths = Arc::new(paths.to_vec());
    let ok = Arc::new(AtomicU64::new(0));
    let other = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + dur.min(PHASE_LIMIT);
    let mut tasks = Vec::new();
    for c in 0..conns {
        let (paths, ok, other, bytes) = (paths.clone(), ok.clone(), other.clone(), bytes.clone());
        let addr = addr.to_string();
        tasks.push(tokio::spawn(async move {
            let mut conn = RawConn::connect(&addr).await?;
            let mut i = c;
            while Instant::now() < deadline {
                let (status, len) = conn.get(&paths[i % paths.len()]).await?;
                i += 1;
                if status == 200 {
                    ok.fetch_add(1, Ordering::Relaxed);
                    bytes.fetch_add(len as u64, Ordering::Relaxed);
                } else {
                    other.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(Hammered {
        ok: ok.load(Ordering::Relaxed),
        other: other.load(Ordering::Relaxed),
        bytes: bytes.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
    })
}

async fn qr_phase(server: &Server, tokens: &[String], dur: Duration) -> Result<()> {
    let http = http_client(false)?;
    // The first request of each QR renders it; time those separately.
    let mut first = Vec::new();
    let mut png = Vec::new();
    for t in tokens {
        let t0 = Instant::now();
        let resp = http
            .get(format!("{}/o/{t}/qr.png", server.base))
            .send()
            .await?;
        if resp.status() != 200 {
            bail!("qr.png answered {}", resp.status());
        }
        png = resp.bytes().await?.to_vec();
        first.push(t0.elapsed());
    }
    let decoded = decode_qr(&png)?;
    println!(
        "  GET qr.png first (render) request: {}; PNG {} bytes, decodes to {decoded}",
        latency_line(&mut first),
        png.len()
    );
    let paths: Vec<String> = tokens.iter().map(|t| format!("/o/{t}/qr.png")).collect();
    let r = hammer(&server.addr, &paths, 64, dur).await?;
    r.report("GET /o/{token}/qr.png (cached)", 64);
    Ok(())
}

fn decode_qr(png: &[u8]) -> Result<String> {
    let img = image::load_from_memory(png)?.to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let grids = prepared.detect_grids();
    let grid = grids.first().ok_or_else(|| anyhow!("no QR code found"))?;
    Ok(grid.decode().map_err(|e| anyhow!("{e:?}"))?.1)
}

// ---------------------------------------------------------------- notifications

fn merchant() -> Result<Merchant> {
    Ok(Merchant {
        appid: DEMO_APPID.into(),
        mch_id: DEMO_MCH_ID.into(),
        key: ApiKey::new(DEMO_KEY).map_err(|e| anyhow!("{e}"))?,
        sign_type: SignType::Md5,
    })
}

/// Whether the measured server speaks API v3 (`LOAD_API=v3`).
pub(crate) fn v3() -> bool {
    std::env::var("LOAD_API").is_ok_and(|a| a.eq_ignore_ascii_case("v3"))
}

/// A notification as the gateway would send it: the body, and (v3) its signed headers.
pub(crate) struct Notification {
    pub body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
}

impl Notification {
    /// Posts it to the server's notify URL; whether it was acknowledged.
    pub(crate) async fn post(self, http: &reqwest::Client, base: &str) -> Result<bool> {
        let path = if v3() {
            "/wxpay/v3/notify"
        } else {
            "/wxpay/notify"
        };
        let mut req = http.post(format!("{base}{path}")).body(self.body);
        for (k, v) in self.headers {
            req = req.header(k, v);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await?;
        Ok(if v3() {
            matches!(status, 200 | 204)
        } else {
            notify::is_success_ack(&body)
        })
    }
}

/// The signed notification the gateway would send for the order's current QR.
async fn notification_for(s: &Session, token: &str, seq: usize) -> Result<Notification> {
    let st = s.status(token).await?;
    let out_trade_no = st["out_trade_no"]
        .as_str()
        .ok_or_else(|| anyhow!("no out_trade_no in {st}"))?;
    let amount = st["amount_fen"]
        .as_i64()
        .ok_or_else(|| anyhow!("no amount_fen in {st}"))?;
    let transaction_id = format!("4200{:06}{:018}", std::process::id() % 1_000_000, seq);
    if v3() {
        return v3_notification(out_trade_no, amount, &transaction_id, seq);
    }
    let notice = PaymentNotice {
        out_trade_no: OutTradeNo::new(out_trade_no).map_err(|e| anyhow!("{e}"))?,
        transaction_id,
        total_fee: Fen::new(amount),
        openid: Some("oLoadTestOpenId000000000000000".into()),
        time_end: Some("20250101120000".into()),
        bank_type: Some("OTHERS".into()),
    };
    let nonce = format!("{seq:032}");
    Ok(Notification {
        body: xml::to_xml(&notify::build(
            &notice,
            &merchant()?,
            SignType::Md5,
            &nonce,
            None,
        ))
        .into_bytes(),
        headers: Vec::new(),
    })
}

/// A v3 `TRANSACTION.SUCCESS` as the simulator's WeChat Pay sends it: the
/// transaction encrypted with the demo APIv3 key, the body signed with the
/// simulator's public key (so the server does the real work per notification).
fn v3_notification(
    out_trade_no: &str,
    total: i64,
    transaction_id: &str,
    seq: usize,
) -> Result<Notification> {
    use scanpay::wxpay::v3::aead::ApiV3Key;
    use scanpay::wxpay::v3::notify::{EventHead, seal};
    let key = ApiV3Key::new(scanpay::config::DEMO_V3_APIV3_KEY).map_err(|e| anyhow!("{e:?}"))?;
    let tx = serde_json::json!({
        "appid": scanpay::config::DEMO_V3_APPID, "mchid": scanpay::config::DEMO_V3_MCH_ID,
        "out_trade_no": out_trade_no, "transaction_id": transaction_id,
        "trade_type": "NATIVE", "trade_state": "SUCCESS", "trade_state_desc": "支付成功",
        "bank_type": "OTHERS", "attach": "", "success_time": "2026-12-01T12:00:00+08:00",
        "payer": {"openid": "oLoadTestOpenId000000000000000"},
        "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"}
    });
    let nonce = format!("{:012}", seq % 1_000_000_000_000);
    let id = format!("EV-LOAD-{seq}");
    let head = EventHead {
        id: &id,
        create_time: "2026-12-01T12:00:00+08:00",
        event_type: "TRANSACTION.SUCCESS",
        summary: "支付成功",
    };
    let envelope = seal(
        &key,
        &nonce,
        &head,
        "transaction",
        &serde_json::to_vec(&tx)?,
    )
    .map_err(|e| anyhow!("{e:?}"))?;
    let body = serde_json::to_vec(&envelope)?;
    let keys = scanpay::sim::v3::keys::SimKeys::load().map_err(|e| anyhow!("{e}"))?;
    let ts = jiff::Timestamp::now().as_second().to_string();
    let header_nonce = format!("{seq:032}");
    let signature = keys
        .public_key
        .sign(&scanpay::wxpay::v3::verify::response_message(
            &ts,
            &header_nonce,
            &body,
        ))
        .map_err(|e| anyhow!("{e}"))?;
    Ok(Notification {
        body,
        headers: vec![
            ("Wechatpay-Timestamp", ts),
            ("Wechatpay-Nonce", header_nonce),
            ("Wechatpay-Signature", signature),
            (
                "Wechatpay-Serial",
                scanpay::sim::v3::keys::PUBLIC_KEY_ID.to_string(),
            ),
            (
                "Wechatpay-Signature-Type",
                "WECHATPAY2-SHA256-RSA2048".into(),
            ),
        ],
    })
}

/// Creates `n` orders with all sessions at once (not timed as a benchmark).
async fn make_orders(sessions: &[Session], n: usize) -> Result<Vec<String>> {
    let made = create_orders(sessions, PHASE_LIMIT, n).await?;
    if made.tokens.len() < n {
        bail!("only {} of {n} orders could be created", made.tokens.len());
    }
    Ok(made.tokens)
}

async fn notifications_for(
    sessions: &[Session],
    tokens: &[String],
    first_seq: usize,
) -> Result<Vec<Notification>> {
    let mut out = Vec::with_capacity(tokens.len());
    for (i, chunk) in tokens.chunks(64).enumerate() {
        let f = chunk.iter().enumerate().map(|(j, t)| {
            let s = &sessions[(i + j) % sessions.len()];
            notification_for(s, t, first_seq + i * 64 + j)
        });
        for n in futures_util::future::join_all(f).await {
            out.push(n?);
        }
    }
    Ok(out)
}

async fn ingest_phase(server: &Server, sessions: &[Session], n: usize) -> Result<()> {
    let prep = Instant::now();
    let tokens = make_orders(sessions, n).await?;
    let bodies = notifications_for(sessions, &tokens, 1_000_000).await?;
    let before = server.count("SELECT COUNT(*) FROM payments")?;
    println!(
        "  ingest: {n} open orders and their signed notifications prepared in {:.1} s",
        prep.elapsed().as_secs_f64()
    );
    let conns = 128;
    let queue = Arc::new(std::sync::Mutex::new(bodies));
    let url = server.base.clone();
    let success = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let http = http_client(false)?;
    let started = Instant::now();
    let deadline = started + PHASE_LIMIT;
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (queue, url, success, failed, http) = (
            queue.clone(),
            url.clone(),
            success.clone(),
            failed.clone(),
            http.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let Some(body) = queue.lock().map_err(|_| anyhow!("poisoned"))?.pop() else {
                    break;
                };
                if Instant::now() > deadline {
                    break;
                }
                let t0 = Instant::now();
                let acked = body.post(&http, &url).await?;
                lat.push(t0.elapsed());
                if acked {
                    success.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    let elapsed = started.elapsed();
    let ok = success.load(Ordering::Relaxed);
    let after = server.count("SELECT COUNT(*) FROM payments")?;
    println!(
        "  POST {} ({}): {ok} acknowledged, {} refused in {:.2} s = {:.0} notifications/s over {conns} connections; {}",
        if v3() {
            "/wxpay/v3/notify"
        } else {
            "/wxpay/notify"
        },
        if v3() { "v3" } else { "v2" },
        failed.load(Ordering::Relaxed),
        elapsed.as_secs_f64(),
        ok as f64 / elapsed.as_secs_f64(),
        latency_line(&mut lat)
    );
    let durable = after - before;
    println!(
        "  payments rows in the SQLite file: +{durable} (expected +{n}) → {}",
        if durable == n as i64 && ok == n {
            "nothing lost"
        } else {
            "MISMATCH"
        }
    );
    Ok(())
}

/// Reads SSE chunks until one carries `needle`; returns false on timeout/end.
async fn wait_for_event(resp: &mut reqwest::Response, needle: &str, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    let mut seen = String::new();
    loop {
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                seen.push_str(&String::from_utf8_lossy(&chunk));
                if seen.contains(needle) {
                    return true;
                }
            }
            _ => return false,
        }
    }
}

async fn sse_phase(server: &Server, sessions: &[Session], n: usize, idle: usize) -> Result<()> {
    let tokens = make_orders(sessions, n + idle).await?;
    let (measured, idle_tokens) = tokens.split_at(n);
    let bodies = notifications_for(sessions, measured, 2_000_000).await?;
    // Other customers' pages stay open meanwhile: each change is seen by every stream.
    let http = http_client(false)?;
    let mut idle_streams = Vec::new();
    for t in idle_tokens {
        let mut r = http
            .get(format!("{}/o/{t}/events", server.base))
            .send()
            .await?;
        if !wait_for_event(&mut r, "event: status", Duration::from_secs(5)).await {
            bail!("no first SSE event");
        }
        idle_streams.push(r);
    }
    let mut lat = Vec::new();
    let mut missed = 0;
    for (t, body) in measured.iter().zip(bodies) {
        let mut events = http
            .get(format!("{}/o/{t}/events", server.base))
            .send()
            .await?;
        if !wait_for_event(&mut events, "event: status", Duration::from_secs(5)).await {
            bail!("no first SSE event");
        }
        let t0 = Instant::now();
        let post = {
            let (http, base) = (http.clone(), server.base.clone());
            tokio::spawn(async move { body.post(&http, &base).await })
        };
        if wait_for_event(&mut events, "\"state\":\"paid\"", Duration::from_secs(5)).await {
            lat.push(t0.elapsed());
        } else {
            missed += 1;
        }
        let _ = post.await;
    }
    println!(
        "  notify → SSE `paid` event ({n} orders, one at a time, {idle} other streams open): {}; {missed} missed",
        latency_line(&mut lat)
    );
    drop(idle_streams);
    Ok(())
}
