//! The deployment the README recommends, for real: Debian's nginx in the
//! foreground with the shipped `deploy/nginx/` files (only the ports and the
//! certificate swapped for test ones) in front of the app, spoken to over TLS
//! from several loopback addresses (all of 127.0.0.0/8 is this machine).
//!
//! Without nginx (or `openssl`, which makes the test certificate) these tests
//! say loudly that they were skipped; with `SCANPAY_REQUIRE_NGINX=1` (set by
//! `.ci/run`) a missing nginx fails them.

use std::net::{IpAddr, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use scanpay::wxpay::v2::SignType;
use scanpay::wxpay::v2::notify;

use crate::helpers::*;

const NGINX: &str = "/usr/sbin/nginx";

/// The shipped files, as the operator copies them.
const SITE: &str = include_str!("../../deploy/nginx/scanpay.conf");
const LOCATIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/nginx/scanpay-locations.conf"
);

fn missing_tools() -> Option<String> {
    if !Path::new(NGINX).exists() {
        return Some(format!(
            "`{NGINX}` is not installed (Debian: apt-get install nginx)"
        ));
    }
    let openssl = Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !openssl {
        return Some("`openssl` is not installed (Debian: apt-get install openssl)".into());
    }
    None
}

fn nginx_available() -> bool {
    match missing_tools() {
        None => true,
        Some(why) if std::env::var("SCANPAY_REQUIRE_NGINX").is_ok_and(|v| v == "1") => {
            panic!("the proxy test is required here but cannot run: {why}")
        }
        Some(why) => {
            eprintln!("\n*** SKIPPED proxy test: {why} ***\n");
            false
        }
    }
}

/// A self-signed certificate and its key for 127.0.0.1 (PEM), made once.
fn certificate() -> &'static (String, String) {
    static CERT: OnceLock<(String, String)> = OnceLock::new();
    CERT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let out = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec"])
            .args(["-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .args(["-days", "2", "-subj", "/CN=127.0.0.1"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl: {out:?}");
        (
            std::fs::read_to_string(cert).unwrap(),
            std::fs::read_to_string(key).unwrap(),
        )
    })
}

/// Replaces the one `from` in the shipped `text`; a shipped file that no
/// longer has it must fail the test, not quietly test something else.
/// Whether nginx answers on `port`: `None` while nothing listens yet. A plain
/// HTTP request is answered by nginx on each of its ports, the TLS one too
/// ("400 The plain HTTP request was sent to HTTPS port"), with `Server: nginx`.
fn answered_by_nginx(port: u16) -> Option<bool> {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut answer = Vec::new();
    // A reset or a timeout is not nginx, which always answers.
    let _ = s.read_to_end(&mut answer);
    let head = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    Some(head.contains("\r\nserver: nginx"))
}

fn swap(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "deploy/nginx/scanpay.conf changed: the proxy test swaps `{from}` for a test value"
    );
    text.replace(from, to)
}

/// nginx in the foreground, stopped when dropped.
struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
}

/// The ports of one nginx: the shipped TLS server, the shipped port-80 server,
/// and the shipped locations served over plain http.
#[derive(Clone, Copy)]
struct Ports {
    tls: u16,
    redirect: u16,
    plain: u16,
}

impl Nginx {
    /// Starts nginx with the shipped site on `ports` in front of the app on
    /// `app_port`. `Err` when it could not start (a port taken meanwhile, say).
    fn start(ports: Ports, app_port: u16) -> Result<Nginx, String> {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap().to_string();
        let (cert, key) = certificate();
        std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
        std::fs::write(dir.path().join("key.pem"), key).unwrap();

        let mut site = swap(
            SITE,
            "server 127.0.0.1:8080;",
            &format!("server 127.0.0.1:{app_port};"),
        );
        site = swap(
            &site,
            "    listen 80;\n    listen [::]:80;\n",
            &format!("    listen 127.0.0.1:{};\n", ports.redirect),
        );
        site = swap(
            &site,
            "    listen 443 ssl http2;\n    listen [::]:443 ssl http2;\n",
            &format!("    listen 127.0.0.1:{} ssl http2;\n", ports.tls),
        );
        site = swap(
            &site,
            "/etc/letsencrypt/live/pay.example.com/fullchain.pem",
            &format!("{d}/cert.pem"),
        );
        site = swap(
            &site,
            "/etc/letsencrypt/live/pay.example.com/privkey.pem",
            &format!("{d}/key.pem"),
        );
        site = swap(
            &site,
            "include /etc/nginx/snippets/scanpay-locations.conf;",
            &format!("include {LOCATIONS};"),
        );
        std::fs::write(dir.path().join("scanpay.conf"), site).unwrap();

        // As root the master drops its workers to `nobody` unless told otherwise,
        // and they could not reach this private directory.
        let root = std::fs::metadata(dir.path()).unwrap().uid() == 0;
        let user = if root { "user root;" } else { "" };
        let plain = ports.plain;
        let conf = format!(
            "{user}
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log notice;
events {{ worker_connections 256; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    # The shipped site: the upstream, the port-80 server and the TLS server.
    include {d}/scanpay.conf;
    # The shipped locations over plain http (the simulator's notifications, and
    # the check that a client cannot make plain http look like https).
    server {{
        listen 127.0.0.1:{plain};
        include {LOCATIONS};
    }}
}}
"
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start nginx");
        let mut nginx = Nginx { child, dir };
        let start = Instant::now();
        loop {
            if let Some(status) = nginx.child.try_wait().unwrap() {
                return Err(format!("nginx exited ({status}): {}", nginx.errors()));
            }
            let ours = [ports.tls, ports.redirect, ports.plain]
                .iter()
                .map(|port| answered_by_nginx(*port))
                .collect::<Vec<_>>();
            if ours.iter().all(|o| *o == Some(true)) {
                return Ok(nginx);
            }
            // Between free_port and nginx's bind another process (a test's app
            // or simulator) took a port: what answers there is not nginx.
            if ours.contains(&Some(false)) {
                return Err("Address already in use (by another process)".into());
            }
            if start.elapsed() > Duration::from_secs(10) {
                return Err(format!("nginx did not listen: {}", nginx.errors()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(file)).unwrap_or_default()
    }

    /// What nginx said on stderr and in its error log.
    fn errors(&self) -> String {
        format!("{}{}", self.read("stderr.log"), self.read("error.log"))
    }

    /// Waits (up to 5 s) until nginx has logged a request with `line` in it.
    async fn wait_for_in_access_log(&self, line: &str) {
        let start = Instant::now();
        while !self.access_log().contains(line) {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "no {line} through nginx: {}",
                self.access_log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn access_log(&self) -> String {
        self.read("access.log")
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its worker and exits (SIGKILL would orphan it).
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: a signal to our own child, which has not been reaped yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let start = Instant::now();
        while self.child.try_wait().ok().flatten().is_none() {
            if start.elapsed() > Duration::from_secs(5) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The app behind nginx, configured as `deploy/scanpay.service` configures it:
/// the proxy at 127.0.0.1 trusted.
struct Proxied {
    app: TestApp,
    nginx: Nginx,
    /// `https://127.0.0.1:PORT`: the shipped TLS server, as customers reach it.
    https: String,
    /// `http://127.0.0.1:PORT`: the shipped port-80 server.
    redirect: String,
    /// `http://127.0.0.1:PORT`: the shipped locations over plain http.
    plain: String,
}

impl Proxied {
    /// `None` when nginx is not installed (and not required).
    async fn start() -> Option<Proxied> {
        Proxied::start_with(|_| {}).await
    }

    async fn start_with(tweak: impl Fn(&mut scanpay::config::Settings)) -> Option<Proxied> {
        if !nginx_available() {
            return None;
        }
        let mut failures = Vec::new();
        for _ in 0..3 {
            let ports = Ports {
                tls: free_port(),
                redirect: free_port(),
                plain: free_port(),
            };
            let app = TestApp::builder()
                .env(&[("SCANPAY_HTTP_TRUSTED_PROXIES", "127.0.0.1")])
                .settings(|s| {
                    tweak(s);
                    // The simulator, the gateway, sends its notifications through the proxy.
                    let path = s.wxpay.api.notify_path();
                    s.wxpay.notify_url = Some(format!("http://127.0.0.1:{}{path}", ports.plain));
                })
                .start()
                .await;
            let app_port = app.base.rsplit(':').next().unwrap().parse().unwrap();
            match Nginx::start(ports, app_port) {
                Ok(nginx) => {
                    return Some(Proxied {
                        app,
                        nginx,
                        https: format!("https://127.0.0.1:{}", ports.tls),
                        redirect: format!("http://127.0.0.1:{}", ports.redirect),
                        plain: format!("http://127.0.0.1:{}", ports.plain),
                    });
                }
                // Another test took one of the ports between free_port and nginx: again.
                Err(e) if e.contains("Address already in use") => failures.push(e),
                Err(e) => panic!("{e}"),
            }
        }
        panic!("nginx could not get its ports: {failures:?}")
    }
}

/// The loopback address 127.0.0.N.
fn from(n: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, n])
}

/// `POST /login` with extra request `headers`: the status and the Set-Cookie.
async fn login_with(
    client: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
    headers: &[(&str, String)],
) -> (u16, Option<String>) {
    let resp = post_login(client, base, user, password, headers).await;
    let cookie = resp
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_string());
    (resp.status().as_u16(), cookie)
}

/// The statuses of `n` wrong passwords for `admin`, each with `headers(i)`.
async fn wrong_passwords(
    client: &reqwest::Client,
    base: &str,
    n: usize,
    headers: impl Fn(usize) -> Vec<(&'static str, String)>,
) -> Vec<u16> {
    let mut statuses = Vec::new();
    for i in 0..n {
        let h = headers(i);
        statuses.push(login_with(client, base, "admin", "guess", &h).await.0);
    }
    statuses
}

/// The first ten wrong passwords are answered 401, the rest 429 (the limit of
/// `checkout::repeated_login_failures_from_one_address_are_slowed_down`).
fn assert_limited(statuses: &[u16], who: &str) {
    let want: Vec<u16> = (0..statuses.len())
        .map(|i| if i < 10 { 401 } else { 429 })
        .collect();
    assert_eq!(statuses, want, "{who}: ten failures, then slowed down");
}

/// Signs in as the cashier through `base` and creates an order; its token.
async fn create_order(client: &reqwest::Client, base: &str, amount: &str) -> String {
    sign_in_at(client, base, "cashier", "cashier").await;
    order_at(client, base, amount, "tea").await
}

// ---------------------------------------------------------------- the tests

/// Through nginx the customer's pages work, the gateway's notification gets
/// in, and the paid event is pushed through at once (SSE not buffered).
#[tokio::test(flavor = "multi_thread")]
async fn an_order_is_paid_through_the_proxy_and_its_events_are_not_buffered() {
    let Some(p) = Proxied::start().await else {
        return;
    };
    let cashier = http_from(from(2));
    let token = create_order(&cashier, &p.https, "3.00").await;

    let customer = http_from(from(5));
    let order_page = customer
        .get(format!("{}/o/{token}", p.https))
        .send()
        .await
        .unwrap();
    assert_eq!(order_page.status(), 200);
    assert!(order_page.text().await.unwrap().contains("¥3.00"));
    let status: serde_json::Value = customer
        .get(format!("{}/o/{token}/status", p.https))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["state"], "open");
    assert_eq!(status["amount_fen"], 300);
    let png = customer
        .get(format!("{}/o/{token}/qr.png", p.https))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let code_url = decode_qr(&png);

    // The same order watched through nginx and straight from the app.
    let mut through = Events::order(&customer, &p.https, &token).await;
    let mut direct = Events::order(&http(), &p.app.base, &token).await;
    through
        .until_text("\"state\":\"open\"", Duration::from_secs(5))
        .await;
    direct
        .until_text("\"state\":\"open\"", Duration::from_secs(5))
        .await;

    // The phone pays at the gateway (the simulator, not behind the shop's
    // proxy), which notifies the shop through nginx.
    let paid_at = Instant::now();
    let (status, (via_proxy, _), (straight, _)) = tokio::join!(
        p.app.pay(&code_url),
        through.until_text("\"state\":\"paid\"", Duration::from_secs(1)),
        direct.until_text("\"state\":\"paid\"", Duration::from_secs(1)),
    );
    assert_eq!(status, 200);
    let (via_proxy, straight) = (via_proxy - paid_at, straight - paid_at);
    eprintln!(
        "pay → paid event: {straight:?} from the app, {via_proxy:?} through nginx \
         (the proxy adds {:?})",
        via_proxy.saturating_sub(straight)
    );
    assert!(via_proxy < Duration::from_secs(1), "{via_proxy:?}");

    let status: serde_json::Value = customer
        .get(format!("{}/o/{token}/status", p.https))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["state"], "paid");
    // The simulator's notification went through nginx and was answered.
    p.nginx
        .wait_for_in_access_log("\"POST /wxpay/notify HTTP/1.1\" 200")
        .await;

    // A refund's notification (v2: POST /wxpay/refund-notify) gets in too.
    p.app.login_as("admin", "admin").await;
    let order_no = status["order_no"].as_str().unwrap();
    let no = crate::refunds::refund(&p.app, order_no, "1.00", "through the proxy").await;
    crate::refunds::wait_refund(&p.app, &no, "succeeded").await;
    p.nginx
        .wait_for_in_access_log("\"POST /wxpay/refund-notify HTTP/1.1\" 200")
        .await;
}

/// On API v3 through nginx: the cashier's counter and the paired customer
/// display get their events at once (SSE not buffered on those streams
/// either), and WeChat Pay's v3 notification gets in and is answered 204.
#[tokio::test(flavor = "multi_thread")]
async fn v3_notifications_and_the_counter_and_display_streams_through_the_proxy() {
    let Some(p) = Proxied::start_with(|s| s.wxpay.api = Api::V3).await else {
        return;
    };
    let cashier = http_from(from(2));
    assert_eq!(
        login_with(&cashier, &p.https, "cashier", "cashier", &[])
            .await
            .0,
        303
    );
    let display = pair_display_at(&cashier, &p.https).await;
    let tablet = http_from(from(6));
    let mut shown = Events::open(&tablet, &format!("{}/display/{display}/events", p.https)).await;
    let mut counter = Events::open(&cashier, &format!("{}/counter/events", p.https)).await;
    shown
        .until_text("\"mode\":\"idle\"", Duration::from_secs(5))
        .await;
    counter
        .until_text("\"created\":0", Duration::from_secs(5))
        .await;

    let created = Instant::now();
    let resp = charge_at(&cashier, &p.https, "8.00", "tea").await;
    let token = location(&resp).strip_prefix("/o/").unwrap().to_string();
    let (open, _) = shown
        .until_text("\"mode\":\"open\"", Duration::from_secs(1))
        .await;
    counter
        .until_text("\"created\":1", Duration::from_secs(1))
        .await;
    eprintln!(
        "through nginx: order → QR on the display in {:?}",
        open - created
    );

    let code_url = p.app.scan_qr(&token).await;
    let paying = Instant::now();
    let (status, (paid, _), _) = tokio::join!(
        p.app.pay(&code_url),
        shown.until_text("\"mode\":\"paid\"", Duration::from_secs(1)),
        counter.until_text("\"state\":\"paid\"", Duration::from_secs(1)),
    );
    assert_eq!(status, 200);
    eprintln!(
        "through nginx: payment → 支付成功 on the display in {:?}",
        paid - paying
    );
    p.nginx
        .wait_for_in_access_log("\"POST /wxpay/v3/notify HTTP/1.1\" 204")
        .await;
}

/// What the proxy adds between a notification and the paid event: the same
/// signed notification posted to the app and watched from it, or posted
/// through nginx and watched through nginx, twenty orders each, interleaved.
#[tokio::test(flavor = "multi_thread")]
async fn what_the_proxy_adds_to_notify_to_sse() {
    let Some(p) = Proxied::start_with(|s| {
        s.sim.faults = "drop_notify=1.0".into();
        s.checkout.max_orders_per_minute = 0;
    })
    .await
    else {
        return;
    };
    p.app.login_as("cashier", "cashier").await;
    let gateway = http_from(from(9));
    let watcher = http_from(from(5));
    let (mut direct, mut proxied) = (Vec::new(), Vec::new());
    for i in 0..40 {
        let through = i % 2 == 1;
        let base = if through {
            p.https.as_str()
        } else {
            p.app.base.as_str()
        };
        let token = p.app.create_order("1.00", "x").await;
        let no = p.app.out_trade_no(&token).await;
        let mut stream = Events::order(&watcher, base, &token).await;
        stream
            .until_text("\"state\":\"open\"", Duration::from_secs(5))
            .await;
        let body = signed_notification(
            &demo_merchant(SignType::Md5),
            &no,
            100,
            &format!("42000000000000000000{i:08}"),
        );
        let sent = Instant::now();
        let (resp, (seen, _)) = tokio::join!(
            gateway
                .post(format!("{base}/wxpay/notify"))
                .body(body)
                .send(),
            stream.until_text("\"state\":\"paid\"", Duration::from_secs(2)),
        );
        assert_eq!(resp.unwrap().status(), 200);
        if through {
            proxied.push(seen - sent);
        } else {
            direct.push(seen - sent);
        }
    }
    direct.sort();
    proxied.sort();
    let median = |v: &[Duration]| v[v.len() / 2];
    eprintln!(
        "notify → paid event, 20 each: from the app median {:?} (max {:?}), through nginx \
         median {:?} (max {:?}): the proxy adds about {:?}",
        median(&direct),
        direct[direct.len() - 1],
        median(&proxied),
        proxied[proxied.len() - 1],
        median(&proxied).saturating_sub(median(&direct))
    );
    assert!(
        proxied[proxied.len() - 1] < Duration::from_secs(1),
        "{proxied:?}"
    );
}

/// A signed notification posted through nginx is accepted and pays; a body
/// over the app's 64 KiB is refused by nginx before the app reads it.
#[tokio::test(flavor = "multi_thread")]
async fn a_notification_through_the_proxy_pays_and_a_huge_body_is_refused() {
    let Some(p) = Proxied::start_with(|s| s.sim.faults = "drop_notify=1.0".into()).await else {
        return;
    };
    p.app.login_as("cashier", "cashier").await;
    let token = p.app.create_order("12.50", "x").await;
    let no = p.app.out_trade_no(&token).await;

    let gateway = http_from(from(9));
    let resp = gateway
        .post(format!("{}/wxpay/notify", p.https))
        .body(signed_notification(
            &demo_merchant(SignType::Md5),
            &no,
            1250,
            "4200000000000000000000000777",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let answer = resp.text().await.unwrap();
    assert!(notify::is_success_ack(answer.as_bytes()), "{answer}");
    p.app
        .wait_for_state(&token, "paid", Duration::from_secs(2))
        .await;
    assert_eq!(p.app.count("SELECT COUNT(*) FROM notifications"), 1);

    let huge = format!("<xml>{}</xml>", "x".repeat(64 * 1024));
    let resp = gateway
        .post(format!("{}/wxpay/notify", p.https))
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let refusal = resp.text().await.unwrap();
    assert!(
        refusal.contains("nginx"),
        "refused by nginx's client_max_body_size, not read by the app: {refusal}"
    );
    assert_eq!(p.app.count("SELECT COUNT(*) FROM notifications"), 1);
}

/// Needs `http.trusted_proxies`: behind the proxy every request comes from
/// 127.0.0.1, and only the forwarded address tells the clients apart.
#[tokio::test(flavor = "multi_thread")]
async fn each_client_address_has_its_own_login_bucket() {
    let Some(p) = Proxied::start().await else {
        return;
    };
    let a = http_from(from(2));
    let statuses = wrong_passwords(&a, &p.https, 12, |_| vec![]).await;
    assert_limited(&statuses, "127.0.0.2");
    let b = http_from(from(3));
    assert_eq!(
        login_with(&b, &p.https, "admin", "admin", &[]).await.0,
        303,
        "127.0.0.3 is not slowed down by 127.0.0.2's failures"
    );
    assert_eq!(
        login_with(&a, &p.https, "admin", "admin", &[]).await.0,
        429,
        "127.0.0.2 still is"
    );
}

/// Forwarding headers a client makes up, new ones each time, do not give it a
/// fresh bucket: nginx replaces them with the address it sees.
#[tokio::test(flavor = "multi_thread")]
async fn made_up_forwarding_headers_do_not_escape_the_limit() {
    let Some(p) = Proxied::start().await else {
        return;
    };
    let attacker = http_from(from(2));
    let forged = |i: usize| {
        vec![
            ("x-forwarded-for", format!("10.0.0.{i}")),
            ("forwarded", format!("for=10.1.0.{i};proto=https")),
            ("x-real-ip", format!("10.2.0.{i}")),
        ]
    };
    let statuses = wrong_passwords(&attacker, &p.https, 12, forged).await;
    assert_limited(&statuses, "127.0.0.2 with made-up headers");
    let (status, _) = login_with(&attacker, &p.https, "admin", "admin", &forged(99)).await;
    assert_eq!(status, 429, "even with the right password and new headers");
}

/// Needs `http.trusted_proxies`: a client naming another client's address in
/// its forwarding headers fills its own bucket, not the other's.
#[tokio::test(flavor = "multi_thread")]
async fn a_forged_forwarded_for_cannot_lock_out_another_address() {
    let Some(p) = Proxied::start().await else {
        return;
    };
    let attacker = http_from(from(3));
    let victim = from(4).to_string();
    let statuses = wrong_passwords(&attacker, &p.https, 12, |_| {
        vec![
            ("x-forwarded-for", victim.clone()),
            ("forwarded", format!("for={victim}")),
            ("x-real-ip", victim.clone()),
        ]
    })
    .await;
    assert_limited(&statuses, "127.0.0.3 posing as 127.0.0.4");
    assert_eq!(
        login_with(&http_from(from(4)), &p.https, "admin", "admin", &[])
            .await
            .0,
        303,
        "127.0.0.4 signs in"
    );
}

/// `/metrics` and the simulator are not reachable through the proxy, however
/// the path is spelled; `/healthz` is.
#[tokio::test(flavor = "multi_thread")]
async fn metrics_and_the_simulator_are_not_served_through_the_proxy() {
    let Some(p) = Proxied::start().await else {
        return;
    };
    let outsider = http_from(from(6));
    for path in [
        "/metrics",
        "/metrics?format=prometheus",
        "/metrics/",
        "//metrics",
        "/%6detrics",
        "/./metrics",
        "/sim",
        "/sim/",
        "/sim/orders",
        "/%73im/",
    ] {
        let resp = outsider
            .get(format!("{}{path}", p.https))
            .header("authorization", "Bearer guess")
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body = resp.text().await.unwrap();
        assert_eq!(status, 404, "{path}: {body}");
        assert!(!body.contains("scanpay_"), "{path}: {body}");
    }
    let pay = outsider
        .post(format!("{}/sim/pay", p.https))
        .form(&[("code_url", "weixin://wxpay/bizpayurl?pr=x")])
        .send()
        .await
        .unwrap();
    assert_eq!(pay.status(), 404, "the simulated phone");
    let health = outsider
        .get(format!("{}/healthz", p.https))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");
}

/// The session cookie is `Secure` when the proxy says the client came over
/// https, and not when a client over plain http only claims it did.
#[tokio::test(flavor = "multi_thread")]
async fn the_session_cookie_is_secure_when_the_proxy_says_https() {
    let Some(p) = Proxied::start().await else {
        return;
    };
    let (status, cookie) = login_with(&http_from(from(2)), &p.https, "admin", "admin", &[]).await;
    assert_eq!(status, 303);
    let cookie = cookie.expect("a session cookie");
    assert!(cookie.contains("; Secure"), "over https: {cookie}");
    assert!(cookie.contains("; HttpOnly"), "{cookie}");

    let claims = [
        ("x-forwarded-proto", "https".to_string()),
        ("forwarded", "proto=https".to_string()),
    ];
    let (status, cookie) =
        login_with(&http_from(from(3)), &p.plain, "admin", "admin", &claims).await;
    assert_eq!(status, 303);
    let cookie = cookie.expect("a session cookie");
    assert!(!cookie.contains("Secure"), "over plain http: {cookie}");
}

/// Needs the security headers: HSTS on what the client got over https only.
#[tokio::test(flavor = "multi_thread")]
async fn hsts_is_sent_when_the_proxy_says_https() {
    let Some(p) = Proxied::start().await else {
        return;
    };
    let client = http_from(from(2));
    let tls = client
        .get(format!("{}/login", p.https))
        .send()
        .await
        .unwrap();
    assert_eq!(tls.status(), 200);
    assert!(
        tls.headers().contains_key("strict-transport-security"),
        "over https: {:?}",
        tls.headers()
    );
    let plain = client
        .get(format!("{}/login", p.plain))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    assert!(
        !plain.headers().contains_key("strict-transport-security"),
        "over plain http: {:?}",
        plain.headers()
    );
}

/// The shipped port-80 server sends everyone to https.
#[tokio::test(flavor = "multi_thread")]
async fn plain_http_is_sent_to_https() {
    let Some(p) = Proxied::start().await else {
        return;
    };
    let resp = http_from(from(2))
        .get(format!("{}/o/abc?x=1", p.redirect))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 301);
    assert_eq!(resp.headers()["location"], "https://127.0.0.1/o/abc?x=1");
}

/// The shipped systemd unit starts the binary with flags it knows and with
/// settings that load.
#[test]
fn the_systemd_unit_uses_flags_and_settings_the_binary_knows() {
    let unit = include_str!("../../deploy/scanpay.service");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    let mut args = exec.split_whitespace();
    assert_eq!(args.next(), Some("/usr/local/bin/scanpay"));
    let args: Vec<&str> = args.collect();
    assert_eq!(args.first(), Some(&"serve"), "{exec}");
    for flag in ["--config", "--data-dir", "--listen"] {
        assert!(args.contains(&flag), "{exec} sets {flag}");
    }
    // clap refuses an unknown flag before it reaches --help.
    let out = Command::new(env!("CARGO_BIN_EXE_scanpay"))
        .args(&args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{exec}: {out:?}");

    let env: Vec<(String, String)> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("Environment="))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert!(
        env.iter()
            .any(|(k, v)| k == "SCANPAY_HTTP_TRUSTED_PROXIES" && v == "127.0.0.1"),
        "the unit trusts the proxy on 127.0.0.1: {env:?}"
    );
    scanpay::config::Settings::load(None, env).expect("the unit's settings load");
}
