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
