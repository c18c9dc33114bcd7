//! Starting the real binary and talking to it over HTTP.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use scanpay::wxpay::{ApiKey, Merchant, SignType, WxPayClient};

pub const DEMO_APPID: &str = "wxd930ea5d5a258f4f";
pub const DEMO_MCH_ID: &str = "10000100";
pub const DEMO_KEY: &str = "192006250b4c09247ec02edce69f6a2d";

pub fn demo_merchant(sign_type: SignType) -> Merchant {
    Merchant {
        appid: DEMO_APPID.into(),
        mch_id: DEMO_MCH_ID.into(),
        key: ApiKey::new(DEMO_KEY).unwrap(),
        sign_type,
    }
}

/// A `scanpay` process, killed when dropped.
pub struct Process {
    pub child: Child,
    pub url: String,
    pub stderr_log: Arc<Mutex<String>>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `scanpay ARGS` with `env`, waiting for the first `http://` URL it prints.
pub fn spawn_binary(args: &[&str], env: &[(&str, &str)]) -> Process {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scanpay"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("SCANPAY_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start the scanpay binary");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let stderr_log = Arc::new(Mutex::new(String::new()));
    let log = stderr_log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if std::env::var("TEST_LOG").is_ok() {
                eprintln!("[scanpay] {line}");
            }
            let mut l = log.lock().unwrap();
            l.push_str(&line);
            l.push('\n');
        }
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if !sent && let Some(i) = line.find("http://") {
                let url: String = line[i..].split_whitespace().next().unwrap().to_string();
                let _ = tx.send(url);
                sent = true;
            }
        }
    });
    let url = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(u) => u,
        Err(_) => {
            let _ = child.kill();
            panic!(
                "scanpay did not print its URL: {}",
                stderr_log.lock().unwrap()
            );
        }
    };
    Process {
        child,
        url,
        stderr_log,
    }
}

/// `scanpay sim` on a random port; notifications retry 1000× faster than WeChat's.
pub fn spawn_sim(extra_env: &[(&str, &str)]) -> Process {
    let mut env = vec![("SCANPAY_SIM_TIME_SCALE", "1000")];
    env.extend_from_slice(extra_env);
    spawn_binary(&["sim", "--listen", "127.0.0.1:0"], &env)
}

pub fn client(base_url: &str, sign_type: SignType) -> WxPayClient {
    WxPayClient::new(base_url, demo_merchant(sign_type), Duration::from_secs(10)).unwrap()
}

pub fn http() -> reqwest::Client {
    scanpay::wxpay::client::install_crypto_provider();
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
                            scanpay::wxpay::notify::ack_fail("not yet")
                        } else {
                            scanpay::wxpay::notify::ack_success()
                        };
                        HttpResponse::Ok().content_type("text/xml").body(answer)
                    }
                }),
            )
        })
        .workers(1)
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
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for NotifySink {
    fn drop(&mut self) {
        let h = self.handle.clone();
        tokio::spawn(async move { h.stop(false).await });
    }
}

/// `scanpay serve` in simulator mode on a random port with a fresh data dir.
pub struct TestApp {
    pub process: Process,
    pub base: String,
    pub data_dir: tempfile::TempDir,
    pub http: reqwest::Client,
    env: Vec<(String, String)>,
}

/// Fast enough for tests: notifications retried 1000× faster, a quick poller.
const FAST_ENV: &[(&str, &str)] = &[
    ("SCANPAY_SIM_TIME_SCALE", "1000"),
    ("SCANPAY_POLLER_TICK_MS", "100"),
    ("SCANPAY_POLLER_FAST_INTERVAL_MS", "300"),
    ("SCANPAY_POLLER_SLOW_INTERVAL_MS", "500"),
    ("SCANPAY_POLLER_MAX_PER_SEC", "200"),
];

pub fn spawn_app(extra_env: &[(&str, &str)]) -> TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    let mut env: Vec<(String, String)> = FAST_ENV
        .iter()
        .chain(extra_env)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if !env.iter().any(|(k, _)| k == "RUST_LOG") {
        env.push(("RUST_LOG".into(), "info".into()));
    }
    let process = start_serve(data_dir.path(), "127.0.0.1:0", &env);
    let base = process.url.trim_end_matches('/').to_string();
    TestApp {
        process,
        base,
        data_dir,
        http: http(),
        env,
    }
}

fn start_serve(dir: &std::path::Path, listen: &str, env: &[(String, String)]) -> Process {
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    spawn_binary(
        &[
            "serve",
            "--data-dir",
            dir.to_str().unwrap(),
            "--listen",
            listen,
        ],
        &env_refs,
    )
}

impl TestApp {
    /// Kills the server with SIGKILL (no shutdown at all) and starts it again on
    /// the same port and data dir.
    pub fn restart(&mut self) {
        let _ = self.process.child.kill();
        let _ = self.process.child.wait();
        let listen = self.base.trim_start_matches("http://").to_string();
        self.process = start_serve(self.data_dir.path(), &listen, &self.env);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn logs(&self) -> String {
        self.process.stderr_log.lock().unwrap().clone()
    }

    pub async fn login_as(&self, user: &str, password: &str) {
        let resp = self
            .http
            .post(self.url("/login"))
            .form(&[("username", user), ("password", password)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "login as {user}");
    }

    /// The CSRF token of the signed-in session, read from the checkout form.
    pub async fn csrf(&self) -> String {
        let page = self
            .http
            .get(self.url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        hidden_value(&page, "csrf_token").expect("checkout form carries a csrf_token")
    }

    pub async fn post_order(&self, amount: &str, description: &str) -> reqwest::Response {
        let csrf = self.csrf().await;
        self.http
            .post(self.url("/orders"))
            .form(&[
                ("amount", amount),
                ("description", description),
                ("csrf_token", &csrf),
            ])
            .send()
            .await
            .unwrap()
    }

    /// Creates an order as the signed-in user and returns its token.
    pub async fn create_order(&self, amount: &str, description: &str) -> String {
        let resp = self.post_order(amount, description).await;
        assert_eq!(resp.status(), 303);
        let location = resp.headers()["location"].to_str().unwrap().to_string();
        location
            .strip_prefix("/o/")
            .expect("redirect to /o/{token}")
            .to_string()
    }

    /// The body of `GET url` as `client` sees it.
    pub async fn page(&self, client: &reqwest::Client, url: impl reqwest::IntoUrl) -> String {
        client.get(url).send().await.unwrap().text().await.unwrap()
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
            tokio::time::sleep(Duration::from_millis(50)).await;
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

    /// Waits until `f(status)` holds, polling the status JSON.
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
            tokio::time::sleep(Duration::from_millis(50)).await;
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
        let resp = self
            .http
            .get(self.url(&format!("/o/{token}/qr.png")))
            .send()
            .await
            .unwrap();
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
        http()
            .post(self.url("/sim/pay"))
            .form(&[("code_url", code_url)])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    pub async fn set_faults(&self, faults: &str) {
        let resp = http()
            .post(self.url("/sim/faults"))
            .body(faults.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }

    /// A direct look at the database, read-only.
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            self.data_dir.path().join("scanpay.sqlite3"),
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

/// A port free right now (for a server whose URL must be known before it starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `scanpay user add NAME --role ROLE` with the password on stdin.
pub fn add_user(data_dir: &std::path::Path, name: &str, role: &str, password: &str) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_scanpay"))
        .args([
            "user",
            "add",
            name,
            "--role",
            role,
            "--data-dir",
            data_dir.to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "user add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `scanpay serve` in live mode against a `scanpay sim` in its own process,
/// so the app can be killed and restarted while the gateway keeps its orders.
pub fn spawn_app_with_sim(sim: &Process, extra_env: &[(&str, &str)]) -> TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    add_user(data_dir.path(), "admin", "admin", "admin-password");
    add_user(data_dir.path(), "cashier", "cashier", "cashier-password");
    let port = free_port();
    let notify = format!("http://127.0.0.1:{port}/wxpay/notify");
    let mut env: Vec<(String, String)> = FAST_ENV
        .iter()
        .chain(extra_env)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in [
        ("SCANPAY_WXPAY_GATEWAY", sim.url.as_str()),
        ("SCANPAY_WXPAY_APPID", DEMO_APPID),
        ("SCANPAY_WXPAY_MCH_ID", DEMO_MCH_ID),
        ("SCANPAY_WXPAY_API_KEY", DEMO_KEY),
        ("SCANPAY_WXPAY_NOTIFY_URL", notify.as_str()),
        ("RUST_LOG", "info"),
    ] {
        env.push((k.to_string(), v.to_string()));
    }
    let process = start_serve(data_dir.path(), &format!("127.0.0.1:{port}"), &env);
    let base = process.url.trim_end_matches('/').to_string();
    TestApp {
        process,
        base,
        data_dir,
        http: http(),
        env,
    }
}

/// Pays `code_url` on a standalone simulator's phone.
pub async fn pay_on(sim: &Process, code_url: &str) -> u16 {
    http()
        .post(format!("{}pay", sim.url))
        .form(&[("code_url", code_url)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}
