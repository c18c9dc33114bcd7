//! The app under test: `Application` built in this process on a random port and
//! spoken to over real HTTP, with the simulator at `/sim/`. The real binary is
//! started only to kill it (`kill -9` and restart) or to test its command line.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use scanpay::app::{Application, SimApp};
use scanpay::config::Settings;
pub use scanpay::config::{DEMO_API_KEY, DEMO_APPID, DEMO_MCH_ID};
use scanpay::jobs::poller::Poller;
use scanpay::store::DB_FILE;
use scanpay::values::clock::Clock;
use scanpay::values::role::Role;
use scanpay::wxpay::v2::{ApiKey, Merchant, SignType, WxPayClient};
use tokio_util::sync::CancellationToken;

pub fn demo_merchant(sign_type: SignType) -> Merchant {
    Merchant {
        appid: DEMO_APPID.into(),
        mch_id: DEMO_MCH_ID.into(),
        key: ApiKey::new(DEMO_API_KEY).unwrap(),
        sign_type,
    }
}

/// Fast enough for tests: notifications retried 1000× faster, a quick poller.
/// The same pairs configure the app in this process and the binary.
const FAST_ENV: &[(&str, &str)] = &[
    ("SCANPAY_SIM_TIME_SCALE", "1000"),
    ("SCANPAY_POLLER_TICK_MS", "100"),
    ("SCANPAY_POLLER_FAST_INTERVAL_MS", "300"),
    ("SCANPAY_POLLER_SLOW_INTERVAL_MS", "500"),
    ("SCANPAY_POLLER_MAX_PER_SEC", "200"),
];

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Settings from `env` (read the way the binary reads its env), on `listen`,
/// with `tweak` applied.
fn settings(
    env: Vec<(String, String)>,
    listen: &str,
    tweak: impl FnOnce(&mut Settings),
) -> Settings {
    let mut settings = Settings::load(None, env).unwrap();
    settings.listen = listen.into();
    tweak(&mut settings);
    settings.validate().unwrap();
    settings
}

// ---------------------------------------------------------------- logs

/// Everything logged in this test process, by every app (one subscriber per
/// process). Set `TEST_LOG=1` to see it on stderr as well.
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = std::io::stderr().write_all(buf);
        }
        LOGS.lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures every log line at debug level, so the tests that no secret is
/// logged see all there is.
fn capture_logs() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        use tracing_subscriber::util::SubscriberInitExt;
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_ansi(false)
            .with_target(false)
            .with_writer(|| Capture)
            .finish()
            .try_init();
    });
}

/// The log of this process so far (every app's, every test's).
pub fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

// ---------------------------------------------------------------- the binary

/// A `scanpay` process, killed when dropped.
pub struct Process {
    pub child: Child,
    pub url: String,
    pub stdout: Arc<Mutex<String>>,
    pub stderr: Arc<Mutex<String>>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Collects a child's output lines in the background, echoed with `TEST_LOG`.
fn collect(out: impl std::io::Read + Send + 'static, lines: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if std::env::var_os("TEST_LOG").is_some() {
                eprintln!("[scanpay] {line}");
            }
            let mut l = lines.lock().unwrap();
            l.push_str(&line);
            l.push('\n');
        }
    });
}

/// `scanpay ARGS` with `env` and no other `SCANPAY_*`, its output piped.
fn scanpay_command(args: &[&str], env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scanpay"));
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("SCANPAY_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd
}

/// Starts `scanpay ARGS` with `env`, waiting for the first `http://` URL it prints.
pub fn spawn_binary(args: &[&str], env: &[(String, String)]) -> Process {
    let mut child = scanpay_command(args, env)
        .stdin(Stdio::null())
        .spawn()
        .expect("start the scanpay binary");
    let (stdout, stderr) = (Arc::default(), Arc::default());
    collect(child.stdout.take().unwrap(), Arc::clone(&stdout));
    collect(child.stderr.take().unwrap(), Arc::clone(&stderr));
    let start = Instant::now();
    let url = loop {
        let printed = stdout.lock().unwrap().clone();
        if let Some(i) = printed.find("http://") {
            break printed[i..].split_whitespace().next().unwrap().to_string();
        }
        if start.elapsed() > Duration::from_secs(30) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("scanpay did not print its URL: {}", stderr.lock().unwrap());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Process {
        child,
        url,
        stdout,
        stderr,
    }
}

/// `scanpay sim --listen ADDR` in its own process, to be killed and started again.
pub fn spawn_sim_process(listen: &str) -> Process {
    spawn_binary(&["sim", "--listen", listen], &env(FAST_ENV))
}

/// Runs `scanpay ARGS --data-dir DIR` with `env` and `stdin`, to its end.
pub fn run_cli(
    data_dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &str,
) -> std::process::Output {
    let mut child = scanpay_command(args, &self::env(env))
        .args(["--data-dir", data_dir.to_str().unwrap()])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    write!(child.stdin.take().unwrap(), "{stdin}").unwrap();
    child.wait_with_output().unwrap()
}

// ---------------------------------------------------------------- the simulator

/// `scanpay sim` (the simulated gateway alone) in this process, on a random port.
pub struct TestSim {
    /// Ends in `/`: `{url}pay/unifiedorder`, the phone at `{url}`.
    pub url: String,
    /// What the gateway saw: its ledger of orders, as it received them.
    pub simulator: scanpay::sim::Simulator,
    stop: CancellationToken,
}

pub async fn spawn_sim() -> TestSim {
    spawn_sim_with(|_| {}).await
}

pub async fn spawn_sim_with(tweak: impl FnOnce(&mut Settings)) -> TestSim {
    capture_logs();
    let settings = settings(env(FAST_ENV), "127.0.0.1:0", tweak);
    let sim = SimApp::build(settings).expect("the simulator builds");
    let url = format!("http://{}/", sim.addr());
    let simulator = sim.simulator().clone();
    let stop = CancellationToken::new();
    let shutdown = stop.clone().cancelled_owned();
    tokio::spawn(async move {
        if let Err(e) = sim.run_until(shutdown).await {
            eprintln!("the simulator stopped: {e:#}");
        }
    });
    TestSim {
        url,
        simulator,
        stop,
    }
}

impl TestSim {
    pub async fn pay(&self, code_url: &str) -> u16 {
        pay_on(&self.url, code_url).await
    }

    pub async fn set_faults(&self, faults: &str) {
        set_faults_on(&self.url, faults).await;
    }
}

impl Drop for TestSim {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The body of `GET url` (a page of the simulator's phone, say).
pub async fn get_text(url: &str) -> String {
    http().get(url).send().await.unwrap().text().await.unwrap()
}

/// The customer pays `code_url` on the phone of the simulator at `sim` (a URL
/// ending in `/`); returns the HTTP status.
pub async fn pay_on(sim: &str, code_url: &str) -> u16 {
    http()
        .post(format!("{sim}pay"))
        .form(&[("code_url", code_url)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Sets the faults of the simulator at `sim` (`""` clears them).
pub async fn set_faults_on(sim: &str, faults: &str) {
    let resp = http()
        .post(format!("{sim}faults"))
        .body(faults.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

pub fn client(base_url: &str, sign_type: SignType) -> WxPayClient {
    WxPayClient::new(base_url, demo_merchant(sign_type), Duration::from_secs(10)).unwrap()
}

pub fn http() -> reqwest::Client {
    scanpay::wxpay::v2::client::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

type Received = Arc<Mutex<Vec<(Instant, Vec<u8>)>>>;

/// A notify_url endpoint that records every body and answers FAIL to the first
/// `fail_first` deliveries, SUCCESS afterwards.
pub struct NotifySink {
    pub url: String,
    pub received: Received,
    handle: actix_web::dev::ServerHandle,
}

impl NotifySink {
    pub async fn start(fail_first: usize) -> NotifySink {
        let received: Received = Arc::default();
        let r = received.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            let r = r.clone();
            App::new().route(
                "/wxpay/notify",
                web::post().to(move |body: web::Bytes| {
                    let r = r.clone();
                    async move {
                        let n = {
                            let mut v = r.lock().unwrap();
                            v.push((Instant::now(), body.to_vec()));
                            v.len()
                        };
                        let answer = if n <= fail_first {
                            scanpay::wxpay::v2::notify::ack_fail("not yet")
                        } else {
                            scanpay::wxpay::v2::notify::ack_success()
                        };
                        HttpResponse::Ok().content_type("text/xml").body(answer)
                    }
                }),
            )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        NotifySink {
            url: format!("http://127.0.0.1:{port}/wxpay/notify"),
            received,
            handle,
        }
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    pub fn bodies(&self) -> Vec<Vec<u8>> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// Waits until at least `n` deliveries arrived (or panics after `timeout`).
    pub async fn wait_for(&self, n: usize, timeout: Duration) {
        let start = Instant::now();
        while self.count() < n {
            assert!(
                start.elapsed() < timeout,
                "expected {n} notifications, got {}",
                self.count()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for NotifySink {
    fn drop(&mut self) {
        // Sends the stop at once; the server task ends with the test's runtime anyway.
        drop(self.handle.stop(false));
    }
}

// ---------------------------------------------------------------- the app

/// `scanpay serve` on a random port with a fresh data dir.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base: String,
    pub data_dir: tempfile::TempDir,
    /// The signed-in staff member's browser (keeps cookies).
    pub http: reqwest::Client,
    serving: Serving,
}

enum Serving {
    /// `Application` in this process; stopped when the `TestApp` drops.
    InProcess {
        stop: CancellationToken,
        poller: Poller,
        clock: Clock,
        /// The webhook delivery task, when webhooks are on.
        webhooks: Option<scanpay::jobs::webhooks::Webhooks>,
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

/// The app in simulator mode (demo users, the simulator at `/sim/`).
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The app in simulator mode with `tweak` applied to the test settings. Its
/// database starts as a copy of `demo_database()`.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    std::fs::write(data_dir.path().join(DB_FILE), demo_database()).unwrap();
    let mut settings = settings(env(FAST_ENV), "127.0.0.1:0", tweak);
    settings.data_dir = data_dir.path().to_path_buf();
    start_in_process(settings, data_dir).await
}

/// The app in simulator mode built (not run) on `data_dir` as it is: for tests
/// of what start-up refuses.
pub async fn build_app_on(data_dir: &std::path::Path) -> anyhow::Result<Application> {
    let mut settings = settings(env(FAST_ENV), "127.0.0.1:0", |_| {});
    settings.data_dir = data_dir.to_path_buf();
    Application::build(settings).await
}

/// As `spawn_app_with`, with `prepare` adjusting the built app before it runs.
pub async fn spawn_app_prepared(
    tweak: impl FnOnce(&mut Settings),
    prepare: impl FnOnce(&mut Application),
) -> TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    std::fs::write(data_dir.path().join(DB_FILE), demo_database()).unwrap();
    let mut settings = settings(env(FAST_ENV), "127.0.0.1:0", tweak);
    settings.data_dir = data_dir.path().to_path_buf();
    start_prepared(settings, data_dir, Clock::system(), prepare).await
}

/// The app in simulator mode on an empty data dir: it creates its schema and the
/// demo users itself.
pub async fn spawn_fresh_app() -> TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    let mut settings = settings(env(FAST_ENV), "127.0.0.1:0", |_| {});
    settings.data_dir = data_dir.path().to_path_buf();
    start_in_process(settings, data_dir).await
}

/// A database with the demo users in it, made by the app's own code once per test
/// process: their two argon2 hashes cost more than the rest of an app's start.
fn demo_database() -> &'static [u8] {
    static DB: OnceLock<Vec<u8>> = OnceLock::new();
    DB.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = scanpay::store::Store::open(dir.path()).unwrap();
        assert!(scanpay::checkout::accounts::ensure_demo_users(&store).unwrap());
        let copy = dir.path().join("copy.sqlite3");
        rusqlite::Connection::open(dir.path().join(DB_FILE))
            .unwrap()
            .execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
            .unwrap();
        std::fs::read(copy).unwrap()
    })
}

/// The app on a clock only the test moves (`TestApp::advance`): QR lives, order
/// lives, poll intervals and retry delays pass when the test says, not by waiting.
/// The simulator keeps the wall clock, as a real gateway would.
pub async fn spawn_app_on_manual_clock(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    std::fs::write(data_dir.path().join(DB_FILE), demo_database()).unwrap();
    let mut settings = settings(env(FAST_ENV), "127.0.0.1:0", tweak);
    settings.data_dir = data_dir.path().to_path_buf();
    start_on_clock(settings, data_dir, Clock::manual()).await
}

async fn start_in_process(settings: Settings, data_dir: tempfile::TempDir) -> TestApp {
    start_on_clock(settings, data_dir, Clock::system()).await
}

async fn start_on_clock(settings: Settings, data_dir: tempfile::TempDir, clock: Clock) -> TestApp {
    start_prepared(settings, data_dir, clock, |_| {}).await
}

/// Builds the app on `clock`, lets `prepare` adjust it, and runs it.
async fn start_prepared(
    settings: Settings,
    data_dir: tempfile::TempDir,
    clock: Clock,
    prepare: impl FnOnce(&mut Application),
) -> TestApp {
    capture_logs();
    let mut app = Application::build_with_clock(settings, clock.clone())
        .await
        .expect("the application builds");
    prepare(&mut app);
    let base = format!("http://127.0.0.1:{}", app.port());
    let poller = app.poller();
    let webhooks = app.webhooks();
    let stop = CancellationToken::new();
    let shutdown = stop.clone().cancelled_owned();
    tokio::spawn(async move {
        if let Err(e) = app.run_until(shutdown).await {
            eprintln!("the application stopped: {e:#}");
        }
    });
    TestApp {
        base,
        data_dir,
        http: http(),
        serving: Serving::InProcess {
            stop,
            poller,
            clock,
            webhooks,
        },
    }
}

/// Live mode needs an admin; both staff accounts get real passwords.
fn add_staff(data_dir: &std::path::Path) {
    let store = scanpay::store::Store::open(data_dir).unwrap();
    for (name, role) in [("admin", Role::Admin), ("cashier", Role::Cashier)] {
        let password = format!("{name}-password");
        scanpay::checkout::accounts::add_user(&store, name, &password, role, 8).unwrap();
    }
}

/// The wxpay settings of live mode against the gateway at `gateway`, for an app
/// whose notify_url is on `port`.
fn live_env(gateway: &str, port: u16) -> Vec<(String, String)> {
    let notify = format!("http://127.0.0.1:{port}/wxpay/notify");
    let mut env = env(FAST_ENV);
    env.extend(self::env(&[
        ("SCANPAY_WXPAY_GATEWAY", gateway),
        ("SCANPAY_WXPAY_APPID", DEMO_APPID),
        ("SCANPAY_WXPAY_MCH_ID", DEMO_MCH_ID),
        ("SCANPAY_WXPAY_API_KEY", DEMO_API_KEY),
        ("SCANPAY_WXPAY_NOTIFY_URL", &notify),
    ]));
    env
}

/// The app in live mode (staff `admin` / `cashier` with `NAME-password`) in this
/// process, against the gateway at `gateway`.
pub async fn spawn_live_app(gateway: &str, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let (settings, data_dir) = live_settings(|port, _| live_env(gateway, port), tweak);
    start_in_process(settings, data_dir).await
}

/// As `spawn_live_app`, on the manual clock (`TestApp::advance`).
pub async fn spawn_live_app_on_manual_clock(
    gateway: &str,
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    let (settings, data_dir) = live_settings(|port, _| live_env(gateway, port), tweak);
    start_on_clock(settings, data_dir, Clock::manual()).await
}

/// Live-mode settings on a free port with a staffed data dir: `env` from the
/// port and the data dir, then `tweak`.
fn live_settings(
    env: impl FnOnce(u16, &std::path::Path) -> Vec<(String, String)>,
    tweak: impl FnOnce(&mut Settings),
) -> (Settings, tempfile::TempDir) {
    let data_dir = tempfile::tempdir().unwrap();
    add_staff(data_dir.path());
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut settings = settings(env(port, data_dir.path()), &listen, tweak);
    settings.data_dir = data_dir.path().to_path_buf();
    (settings, data_dir)
}

/// The binary in live mode against `sim` (which keeps its orders while the app
/// is killed and restarted), with the staff of `spawn_live_app`.
pub fn spawn_app_process(sim: &TestSim) -> TestApp {
    spawn_app_process_with_env(sim, &[])
}

/// As `spawn_app_process`, with `extra` env vars (kept across restarts).
pub fn spawn_app_process_with_env(sim: &TestSim, extra: &[(&str, &str)]) -> TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    add_staff(data_dir.path());
    let port = free_port();
    let mut env = live_env(&sim.url, port);
    env.extend(self::env(extra));
    let process = start_serve(data_dir.path(), &format!("127.0.0.1:{port}"), &env);
    TestApp {
        base: process.url.trim_end_matches('/').to_string(),
        data_dir,
        http: http(),
        serving: Serving::Process { process, env },
    }
}

fn start_serve(dir: &std::path::Path, listen: &str, env: &[(String, String)]) -> Process {
    spawn_binary(
        &[
            "serve",
            "--data-dir",
            dir.to_str().unwrap(),
            "--listen",
            listen,
        ],
        env,
    )
}

/// A port free right now (for a server whose URL must be known before it starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
    /// does it at its pace), then a moment passes.
    pub async fn tick(&self) {
        if let Serving::InProcess { poller, .. } = &self.serving {
            poller.tick().await.expect("a poller tick");
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }

    pub async fn login_as(&self, user: &str, password: &str) {
        sign_in_at(&self.http, &self.base, user, password).await;
    }

    /// Another browser (a second member of staff, a second tab), signed in as `user`.
    pub async fn signed_in(&self, user: &str, password: &str) -> reqwest::Client {
        let browser = self.anonymous();
        sign_in_at(&browser, &self.base, user, password).await;
        browser
    }

    /// The CSRF token of the signed-in session, read from the checkout form.
    pub async fn csrf(&self) -> String {
        let page = self.page(&self.http, self.url("/")).await;
        hidden_value(&page, "csrf_token").expect("checkout form carries a csrf_token")
    }

    pub async fn post_order(&self, amount: &str, description: &str) -> reqwest::Response {
        charge_at(&self.http, &self.base, amount, description).await
    }

    /// Creates an order as the signed-in user and returns its token.
    pub async fn create_order(&self, amount: &str, description: &str) -> String {
        let resp = self.post_order(amount, description).await;
        location(&resp)
            .strip_prefix("/o/")
            .expect("redirect to /o/{token}")
            .to_string()
    }

    /// `POST /o/{token}/ACTION` (cancel, retry) with the session's CSRF token.
    pub async fn post_action(&self, token: &str, action: &str) -> reqwest::Response {
        let csrf = self.csrf().await;
        self.http
            .post(self.url(&format!("/o/{token}/{action}")))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap()
    }

    /// The body of `GET url` as `client` sees it.
    pub async fn page(&self, client: &reqwest::Client, url: impl reqwest::IntoUrl) -> String {
        client.get(url).send().await.unwrap().text().await.unwrap()
    }

    /// Posts `body` to `/wxpay/notify` as the gateway would: the status and the answer.
    pub async fn notify(&self, body: impl Into<reqwest::Body>) -> (u16, String) {
        let resp = self
            .anonymous()
            .post(self.url("/wxpay/notify"))
            .body(body)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    /// `GET path` as the customer (no cookies).
    pub async fn get_anonymous(&self, path: &str) -> reqwest::Response {
        self.anonymous().get(self.url(path)).send().await.unwrap()
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

    pub async fn status(&self, token: &str) -> serde_json::Value {
        let resp = self
            .http
            .get(self.url(&format!("/o/{token}/status")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    /// The order's `out_trade_no` (of its current QR), from its status.
    pub async fn out_trade_no(&self, token: &str) -> String {
        self.status(token).await["out_trade_no"]
            .as_str()
            .unwrap()
            .to_string()
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

    /// Reads the QR image the customer sees and decodes it like a phone would.
    pub async fn scan_qr(&self, token: &str) -> String {
        let resp = self.get_anonymous(&format!("/o/{token}/qr.png")).await;
        assert_eq!(resp.status(), 200, "QR image");
        assert_eq!(resp.headers()["content-type"], "image/png");
        decode_qr(&resp.bytes().await.unwrap())
    }

    /// The customer scans the order's QR and pays it on the simulator's phone.
    pub async fn scan_and_pay(&self, token: &str) -> String {
        let code_url = self.scan_qr(token).await;
        assert_eq!(self.pay(&code_url).await, 200, "paying {code_url}");
        code_url
    }

    /// The customer pays `code_url` on the simulator's phone; returns the HTTP status.
    pub async fn pay(&self, code_url: &str) -> u16 {
        pay_on(&self.url("/sim/"), code_url).await
    }

    pub async fn set_faults(&self, faults: &str) {
        set_faults_on(&self.url("/sim/"), faults).await;
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

    /// A client with no cookies (the customer, or an attacker).
    pub fn anonymous(&self) -> reqwest::Client {
        http()
    }
}

/// Where a 303 sends the browser.
pub fn location(resp: &reqwest::Response) -> String {
    assert_eq!(resp.status(), 303, "a redirect");
    resp.headers()["location"].to_str().unwrap().to_string()
}

pub fn assert_is_redirect_to(resp: &reqwest::Response, location: &str) {
    assert_eq!(resp.status(), 303, "a redirect to {location}");
    assert_eq!(resp.headers()["location"], location);
}

/// Signs `client` in at `base` as `user` (the answer must be the 303 of a sign-in).
pub async fn sign_in_at(client: &reqwest::Client, base: &str, user: &str, password: &str) {
    let resp = client
        .post(format!("{base}/login"))
        .form(&[("username", user), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "login as {user}");
}

/// The CSRF token of the checkout form at `base` (`client` signed in).
pub async fn csrf_at(client: &reqwest::Client, base: &str) -> String {
    let page = client
        .get(format!("{base}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    hidden_value(&page, "csrf_token").unwrap_or_else(|| panic!("no checkout form at {base}/"))
}

/// Charges `amount` from the checkout form at `base` as `client`; the answer
/// (a 303 to the order's page when it worked).
pub async fn charge_at(
    client: &reqwest::Client,
    base: &str,
    amount: &str,
    description: &str,
) -> reqwest::Response {
    let csrf = csrf_at(client, base).await;
    client
        .post(format!("{base}/orders"))
        .form(&[
            ("amount", amount),
            ("description", description),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap()
}

/// Pairs a customer display at `base` for `client`'s signed-in user; its token.
pub async fn pair_display_at(client: &reqwest::Client, base: &str) -> String {
    let resp = post_csrf_at(client, base, "/display").await;
    assert_eq!(resp.status(), 200, "paired at {base}");
    display_token_in(&resp.text().await.unwrap())
}

/// `POST {base}{path}` with nothing but the checkout form's CSRF token (a
/// pairing, a revocation): the answer.
pub async fn post_csrf_at(client: &reqwest::Client, base: &str, path: &str) -> reqwest::Response {
    let csrf = csrf_at(client, base).await;
    client
        .post(format!("{base}{path}"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap()
}

/// The display token in a pairing page's `/display/{token}` link.
pub fn display_token_in(html: &str) -> String {
    let at = html.find("/display/").expect("the display link") + "/display/".len();
    let token: String = html[at..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    assert_eq!(token.len(), 32, "a 128-bit token: {token}");
    token
}

pub fn hidden_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

pub fn decode_qr(png: &[u8]) -> String {
    let img = image::load_from_memory(png).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "exactly one QR code in the image");
    grids[0].decode().unwrap().1
}

// ---------------------------------------------------------------- behind a proxy

/// The app in simulator mode like `spawn_app_with`, with `extra` `SCANPAY_*`
/// settings read the way the binary reads its environment (a setting this
/// build does not know is ignored, as the binary ignores it).
pub async fn spawn_app_with_env(
    extra: &[(&str, &str)],
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    std::fs::write(data_dir.path().join(DB_FILE), demo_database()).unwrap();
    let mut pairs = env(FAST_ENV);
    pairs.extend(env(extra));
    let mut settings = settings(pairs, "127.0.0.1:0", tweak);
    settings.data_dir = data_dir.path().to_path_buf();
    start_in_process(settings, data_dir).await
}

/// A browser on the loopback address `from` (all of 127.0.0.0/8 is this
/// machine), keeping its cookies, not following redirects, and taking any TLS
/// certificate (the proxy test's is self-signed).
pub fn http_from(from: std::net::IpAddr) -> reqwest::Client {
    scanpay::wxpay::v2::client::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .local_address(from)
        .tls_danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A data dir whose database has the staff of `spawn_live_app` (an admin
/// `admin` / `admin-password`): what live mode, and `scanpay check`, require.
pub fn staffed_data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    add_staff(dir.path());
    dir
}

/// A payment notification as the gateway signs it, for `merchant`.
pub fn signed_notification(
    merchant: &Merchant,
    out_trade_no: &str,
    fee: i64,
    transaction_id: &str,
) -> String {
    let notice = scanpay::wxpay::v2::notify::PaymentNotice {
        out_trade_no: scanpay::wxpay::v2::OutTradeNo::new(out_trade_no).unwrap(),
        transaction_id: transaction_id.into(),
        total_fee: scanpay::values::money::Fen::new(fee),
        openid: Some("oUpF8uTEST".into()),
        time_end: Some("20261123120000".into()),
        bank_type: None,
    };
    scanpay::wxpay::v2::xml::to_xml(&scanpay::wxpay::v2::notify::build(
        &notice,
        merchant,
        merchant.sign_type,
        "nonce",
        None,
    ))
}

// ---------------------------------------------------------------- both protocols

pub use scanpay::config::Api;
pub use scanpay::config::{DEMO_V3_APIV3_KEY, DEMO_V3_APPID, DEMO_V3_CERT_SERIAL, DEMO_V3_MCH_ID};

/// `spawn_app_with` on `api` (simulator mode: the demo merchant of that protocol).
pub async fn spawn_app_on(api: Api, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(move |s| {
        s.wxpay.api = api;
        tweak(s);
    })
    .await
}

/// How a live v3 app verifies WeChat Pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V3Keys {
    /// `wxpay.public_key_file` + `public_key_id` (the simulator's public key).
    PublicKey,
    /// Neither: platform certificates downloaded from `/v3/certificates`.
    Certificates,
}

/// The wxpay settings of live v3 against `gateway`, key files written into `dir`.
fn live_env_v3(
    gateway: &str,
    port: u16,
    keys: V3Keys,
    dir: &std::path::Path,
) -> Vec<(String, String)> {
    let key_file = dir.join("apiclient_key.pem");
    std::fs::write(&key_file, scanpay::wxpay::v3::OFFICIAL_TEST_KEY_PEM).unwrap();
    let notify = format!("http://127.0.0.1:{port}/wxpay/v3/notify");
    let mut env = env(FAST_ENV);
    env.extend(self::env(&[
        ("SCANPAY_WXPAY_API", "v3"),
        ("SCANPAY_WXPAY_GATEWAY", gateway),
        ("SCANPAY_WXPAY_APPID", DEMO_V3_APPID),
        ("SCANPAY_WXPAY_MCH_ID", DEMO_V3_MCH_ID),
        ("SCANPAY_WXPAY_APIV3_KEY", DEMO_V3_APIV3_KEY),
        ("SCANPAY_WXPAY_PRIVATE_KEY_FILE", key_file.to_str().unwrap()),
        ("SCANPAY_WXPAY_CERT_SERIAL", DEMO_V3_CERT_SERIAL),
        ("SCANPAY_WXPAY_NOTIFY_URL", &notify),
    ]));
    if keys == V3Keys::PublicKey {
        let pub_file = dir.join("pub_key.pem");
        std::fs::write(&pub_file, scanpay::sim::v3::keys::PUBLIC_KEY_PEM).unwrap();
        env.extend(self::env(&[
            ("SCANPAY_WXPAY_PUBLIC_KEY_FILE", pub_file.to_str().unwrap()),
            (
                "SCANPAY_WXPAY_PUBLIC_KEY_ID",
                scanpay::sim::v3::keys::PUBLIC_KEY_ID,
            ),
        ]));
    }
    env
}

/// `spawn_live_app` on `api` (for v3, verifying WeChat Pay as `keys` says).
pub async fn spawn_live_app_on(
    api: Api,
    keys: V3Keys,
    gateway: &str,
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    if api == Api::V2 {
        return spawn_live_app(gateway, tweak).await;
    }
    let (settings, data_dir) =
        live_settings(|port, dir| live_env_v3(gateway, port, keys, dir), tweak);
    start_in_process(settings, data_dir).await
}

/// A live v3 app verifying WeChat Pay by platform certificates, on the manual
/// clock, that tries a failed certificate download again after `retry` (in
/// service: 10 s).
pub async fn spawn_live_v3_app_fetching_certificates(
    gateway: &str,
    retry: Duration,
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    let (settings, data_dir) = live_settings(
        |port, dir| live_env_v3(gateway, port, V3Keys::Certificates, dir),
        tweak,
    );
    start_prepared(settings, data_dir, Clock::manual(), |app| {
        app.retry_certificates_after(retry)
    })
    .await
}

/// What WeChat Pay puts in the headers of a v3 notification.
pub struct V3Headers {
    pub timestamp: String,
    pub nonce: String,
    pub signature: String,
    pub serial: String,
}

/// A v3 payment notification as the simulator's WeChat Pay would send it:
/// `tx` encrypted with `apiv3_key`, the body signed at `timestamp` with the
/// simulator's public key.
pub fn v3_notification(
    id: &str,
    tx: &serde_json::Value,
    apiv3_key: &str,
    timestamp: i64,
) -> (Vec<u8>, V3Headers) {
    v3_notification_of("TRANSACTION.SUCCESS", id, tx, apiv3_key, timestamp)
}

/// As `v3_notification`, with another `event_type` (a `transaction` resource).
pub fn v3_notification_of(
    event_type: &str,
    id: &str,
    tx: &serde_json::Value,
    apiv3_key: &str,
    timestamp: i64,
) -> (Vec<u8>, V3Headers) {
    use scanpay::wxpay::v3::notify::{EventHead, seal};
    let key = scanpay::wxpay::v3::aead::ApiV3Key::new(apiv3_key).unwrap();
    let plain = serde_json::to_vec(tx).unwrap();
    let head = EventHead {
        id,
        create_time: "2026-12-01T12:00:00+08:00",
        event_type,
        summary: "支付成功",
    };
    let env = seal(&key, "pUdohsWGTw7G", &head, "transaction", &plain).unwrap();
    let body = serde_json::to_vec(&env).unwrap();
    let headers = sign_v3(&body, timestamp);
    (body, headers)
}

/// Signs `body` at `timestamp` as the simulator's WeChat Pay public key.
pub fn sign_v3(body: &[u8], timestamp: i64) -> V3Headers {
    let keys = scanpay::sim::v3::keys::SimKeys::load().unwrap();
    let ts = timestamp.to_string();
    let nonce = "n0nce0n0nce0n0nce".to_string();
    let signature = keys
        .public_key
        .sign(&scanpay::wxpay::v3::verify::response_message(
            &ts, &nonce, body,
        ))
        .unwrap();
    V3Headers {
        timestamp: ts,
        nonce,
        signature,
        serial: scanpay::sim::v3::keys::PUBLIC_KEY_ID.into(),
    }
}

/// A paid transaction as v3 describes it.
pub fn v3_paid(out_trade_no: &str, total: i64, transaction_id: &str) -> serde_json::Value {
    serde_json::json!({
        "appid": DEMO_V3_APPID, "mchid": DEMO_V3_MCH_ID, "out_trade_no": out_trade_no,
        "transaction_id": transaction_id, "trade_type": "NATIVE", "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功", "bank_type": "OTHERS", "attach": "",
        "success_time": "2026-12-01T12:00:00+08:00", "payer": {"openid": "oUpF8uTEST"},
        "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"}
    })
}

impl TestApp {
    /// Posts a v3 notification to `/wxpay/v3/notify`: the status and the answer.
    pub async fn notify_v3(&self, body: &[u8], h: &V3Headers) -> (u16, String) {
        let resp = self
            .anonymous()
            .post(self.url("/wxpay/v3/notify"))
            .header("content-type", "application/json")
            .header("Wechatpay-Timestamp", &h.timestamp)
            .header("Wechatpay-Nonce", &h.nonce)
            .header("Wechatpay-Signature", &h.signature)
            .header("Wechatpay-Serial", &h.serial)
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }
}

/// `spawn_app_process` on `api` (v3 with the simulator's public key).
pub fn spawn_app_process_on(api: Api, sim: &TestSim) -> TestApp {
    if api == Api::V2 {
        return spawn_app_process(sim);
    }
    let data_dir = tempfile::tempdir().unwrap();
    add_staff(data_dir.path());
    let port = free_port();
    let env = live_env_v3(&sim.url, port, V3Keys::PublicKey, data_dir.path());
    let process = start_serve(data_dir.path(), &format!("127.0.0.1:{port}"), &env);
    TestApp {
        base: process.url.trim_end_matches('/').to_string(),
        data_dir,
        http: http(),
        serving: Serving::Process { process, env },
    }
}
