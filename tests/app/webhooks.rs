//! Webhooks for the owner (SPEC §10): each payment POSTed at least once per
//! URL from a durable outbox, signed, with one event id per event; a receiver
//! that is down or hangs delays no payment and no notification answer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use scanpay::wxpay::v2::SignType;
use serde_json::Value;
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::helpers::*;

const SECRET: &str = "an-owner-webhook-secret";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Hook {
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Hook {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Answer {
    Ok,
    /// Reads the request and never answers.
    Hang,
    /// Answers 200 and then an endless chunked body (up to `FLOOD_BYTES`).
    Flood,
}

/// What a flooding receiver sends at most: far more than anyone should read.
const FLOOD_BYTES: usize = 256 << 20;

/// A tiny HTTP receiver on loopback that records every request.
struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Hook>>>,
    /// Bytes of answer body the receiver managed to write.
    sent: Arc<std::sync::atomic::AtomicUsize>,
}

impl Receiver {
    async fn start(answer: Answer) -> Receiver {
        Self::on(TcpListener::bind("127.0.0.1:0").await.unwrap(), answer)
    }

    fn on(listener: TcpListener, answer: Answer) -> Receiver {
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let g = got.clone();
        let s = sent.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let g = g.clone();
                let s = s.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let (head_end, len) = loop {
                        let Ok(n) = sock.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                            let len = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            break (i + 4, len);
                        }
                    };
                    while buf.len() < head_end + len {
                        let Ok(n) = sock.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let headers = head
                        .lines()
                        .skip(1)
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
                        .collect();
                    g.lock().unwrap().push(Hook {
                        headers,
                        body: buf[head_end..head_end + len].to_vec(),
                    });
                    match answer {
                        Answer::Ok => {
                            let _ = sock
                                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                                .await;
                        }
                        Answer::Hang => tokio::time::sleep(Duration::from_secs(120)).await,
                        Answer::Flood => {
                            let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
                            if sock.write_all(head).await.is_err() {
                                return;
                            }
                            let data = vec![b'x'; 64 << 10];
                            let chunk = [
                                format!("{:x}\r\n", data.len()).into_bytes(),
                                data,
                                b"\r\n".to_vec(),
                            ]
                            .concat();
                            while s.load(std::sync::atomic::Ordering::SeqCst) < FLOOD_BYTES {
                                if sock.write_all(&chunk).await.is_err() {
                                    return;
                                }
                                s.fetch_add(64 << 10, std::sync::atomic::Ordering::SeqCst);
                            }
                        }
                    }
                });
            }
        });
        Receiver { addr, got, sent }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn hooks(&self) -> Vec<Hook> {
        self.got.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Hook> {
        let start = Instant::now();
        loop {
            let hooks = self.hooks();
            if hooks.len() >= n {
                return hooks;
            }
            assert!(
                start.elapsed() < timeout,
                "{} of {n} webhooks within {timeout:?}",
                hooks.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn sign(body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// An app posting its webhooks to `url`: these tests are about the delivery
/// loop, so it runs in the background as in service.
fn posting_to<'a>(url: String) -> Builder<'a> {
    TestApp::builder().background_jobs().settings(move |s| {
        s.notify.webhook_urls = vec![url];
        s.notify.webhook_secret = Some(SECRET.to_string().into());
    })
}

async fn app_posting_to(url: String) -> TestApp {
    posting_to(url).start().await
}

/// As `app_posting_to`, on the manual clock: retry backoffs pass when the test says.
async fn app_on_manual_clock_posting_to(url: String) -> TestApp {
    posting_to(url).manual_clock().start().await
}

/// Nothing more will be sent: every delivery is recorded delivered, none is
/// pending, and a delivery turn now finds nothing to send.
async fn nothing_left_to_send(app: &TestApp, delivered: i64) {
    outbox_drained(app, delivered).await;
    assert_eq!(
        app.deliver_webhooks().await,
        scanpay::jobs::webhooks::Turn::default(),
        "a turn finds nothing to send"
    );
}

/// Every delivery recorded delivered (`delivered` of them), none pending, no
/// event left to fan out: what the database says, for a process app too.
async fn outbox_drained(app: &TestApp, delivered: i64) {
    app.wait_count(
        "the deliveries recorded",
        "SELECT COUNT(*) FROM outbox_deliveries WHERE state = 'delivered'",
        delivered,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox_deliveries WHERE state <> 'delivered'"),
        0
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox WHERE fanned_out = 0"),
        0
    );
}

async fn paid_order(app: &TestApp, amount: &str) -> String {
    let token = app.create_order(amount, "").await;
    app.scan_and_pay(&token).await;
    app.wait_for_state(&token, "paid", Duration::from_secs(5))
        .await;
    token
}

#[tokio::test(flavor = "multi_thread")]
async fn each_payment_is_posted_once_signed_with_its_own_event_id() {
    let receiver = Receiver::start(Answer::Ok).await;
    let app = app_posting_to(receiver.url()).await;
    app.login_as("cashier", "cashier").await;
    let paid_at = Instant::now();
    let first = paid_order(&app, "12.50").await;
    let second = paid_order(&app, "0.01").await;
    let hooks = receiver.wait_for(2, Duration::from_secs(5)).await;
    eprintln!(
        "webhooks: two payments → both delivered in {:?}",
        paid_at.elapsed()
    );
    // The poller and the simulator's notification both learn of each payment:
    // once both have (the two notifications recorded, the poller idle), still
    // one event each, and nothing more comes.
    app.wait_count(
        "the simulator's notifications",
        "SELECT COUNT(*) FROM notifications",
        2,
        Duration::from_secs(5),
    )
    .await;
    app.settle().await;
    nothing_left_to_send(&app, 2).await;
    let hooks_after = receiver.hooks();
    assert_eq!(hooks_after.len(), 2, "one POST per event: {hooks_after:?}");

    let mut by_order = HashMap::new();
    for h in &hooks {
        assert_eq!(
            h.headers["x-scanpay-signature"],
            sign(&h.body),
            "signed with the secret"
        );
        // The timestamped signature: `t=<unix>.<body>`, sent just now.
        let t: i64 = h.headers["x-scanpay-timestamp"].parse().unwrap();
        let now = jiff::Timestamp::now().as_second();
        assert!((now - t).abs() < 60, "timestamp {t} vs now {now}");
        assert_eq!(
            h.headers["x-scanpay-timestamp-signature"],
            sign(&[format!("t={t}.").as_bytes(), &h.body[..]].concat()),
            "t=<unix>.<body> signed with the secret"
        );
        assert_eq!(h.headers["content-type"], "application/json");
        let b = h.json();
        assert_eq!(b["event"], "payment");
        assert_eq!(b["shop"], "Demo Shop");
        assert!(b["at"].as_str().unwrap().ends_with('Z'));
        let keys: Vec<&str> = b.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 6, "{keys:?}");
        by_order.insert(b["order_no"].as_str().unwrap().to_string(), b);
    }
    for (token, fen) in [(&first, 1250), (&second, 1)] {
        let status = app.status(token).await;
        let b = &by_order[status["order_no"].as_str().unwrap()];
        assert_eq!(b["amount_fen"], fen);
        let tx: String = app
            .db()
            .query_row(
                "SELECT transaction_id FROM orders WHERE order_no = ?1",
                [status["order_no"].as_str().unwrap()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(b["event_id"], format!("payment-{tx}"));
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox"), 2);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM outbox_deliveries WHERE state = 'delivered' AND attempts = 1"
        ),
        2
    );
    // The admin sees it; a cashier does not.
    let resp = app
        .http
        .get(app.url("/admin/webhooks"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let admin = app.signed_in("admin", "admin").await;
    let page = app.page(&admin, app.url("/admin/webhooks")).await;
    assert!(
        page.contains("<span class=\"sum\" id=\"wh-delivered\">2</span>"),
        "{page}"
    );
    assert!(!page.contains(SECRET));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_that_was_down_gets_every_event_once_it_is_up() {
    // A port with nobody listening (yet).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let app = app_on_manual_clock_posting_to(format!("http://{addr}/hook")).await;
    app.login_as("cashier", "cashier").await;
    for amount in ["1.00", "2.00", "3.00"] {
        paid_order(&app, amount).await;
    }
    app.wait_count(
        "failed attempts",
        "SELECT COUNT(*) FROM outbox_deliveries WHERE attempts >= 1 AND state = 'pending' AND last_error IS NOT NULL",
        3,
        Duration::from_secs(5),
    )
    .await;
    // The receiver comes up: everything arrives, each event once.
    let up = Instant::now();
    let receiver = Receiver::on(TcpListener::bind(addr).await.unwrap(), Answer::Ok);
    // The retry is due a second after the failed attempt (on the app's clock).
    app.advance(scanpay::jobs::webhooks::backoff(1)).await;
    let hooks = receiver.wait_for(3, Duration::from_secs(10)).await;
    eprintln!(
        "webhooks: receiver up → 3 queued events delivered in {:?}",
        up.elapsed()
    );
    nothing_left_to_send(&app, 3).await;
    let hooks = receiver.hooks().len().max(hooks.len());
    assert_eq!(hooks, 3);
    let ids: std::collections::HashSet<String> = receiver
        .hooks()
        .iter()
        .map(|h| h.json()["event_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3, "three events, three ids");
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM outbox_deliveries WHERE state = 'delivered' AND attempts >= 2"
        ),
        3
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_receiver_delays_no_payment_and_no_notification_answer() {
    let receiver = Receiver::start(Answer::Hang).await;
    let url = receiver.url();
    // Cut after three seconds, not the five of service: still longer than the
    // three notifications below may take (under a second each).
    let app = TestApp::builder()
        .background_jobs()
        .settings(move |s| {
            s.notify.webhook_urls = vec![url];
            s.notify.webhook_secret = Some(SECRET.to_string().into());
        })
        .prepare(|app| app.cut_webhooks_after(Duration::from_secs(3)).unwrap())
        .start()
        .await;
    app.login_as("cashier", "cashier").await;
    paid_order(&app, "5.00").await;
    receiver.wait_for(1, Duration::from_secs(5)).await;
    // While that request hangs, payments go on as before.
    for i in 0..3 {
        let token = app.create_order("6.00", "").await;
        let out_trade_no = app.out_trade_no(&token).await;
        let body = signed_notification(
            &demo_merchant(SignType::Md5),
            &out_trade_no,
            600,
            &format!("42000000012026120100{i:05}"),
        );
        let started = Instant::now();
        let (status, answer) = app.notify(body).await;
        let took = started.elapsed();
        assert_eq!(status, 200);
        assert!(answer.contains("SUCCESS"), "{answer}");
        assert!(
            took < Duration::from_secs(1),
            "notification answered in {took:?}"
        );
        assert_eq!(app.status(&token).await["state"], "paid");
    }
    // The hanging request is cut at its deadline and retried later.
    app.wait_count(
        "the timed-out attempt",
        "SELECT COUNT(*) FROM outbox_deliveries WHERE last_error = 'timed out'",
        1,
        Duration::from_secs(10),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_answering_without_end_is_read_a_few_kib_then_dropped() {
    let receiver = Receiver::start(Answer::Flood).await;
    let app = app_posting_to(receiver.url()).await;
    app.login_as("cashier", "cashier").await;
    paid_order(&app, "3.00").await;
    receiver.wait_for(1, Duration::from_secs(5)).await;
    // Its 200 counts; its endless answer is not waited for (the request's
    // five-second deadline would record it as timed out).
    app.wait_count(
        "the delivery recorded",
        "SELECT COUNT(*) FROM outbox_deliveries WHERE state = 'delivered'",
        1,
        Duration::from_secs(4),
    )
    .await;
    // Dropped after a few KiB: what the receiver could still write is what
    // the kernel's socket buffers hold, nowhere near the 256 MiB it offered.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = receiver.sent.load(std::sync::atomic::Ordering::SeqCst);
    assert!(sent < 32 << 20, "the receiver wrote {sent} bytes");
    // A webhook in clear text is warned about at start.
    let log = logs();
    assert!(
        log.contains("a webhook URL is not https"),
        "warned about http://"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wecom_robots_get_a_text_message() {
    let receiver = Receiver::start(Answer::Ok).await;
    let url = format!("{}?key=ROBOT-KEY", receiver.url());
    let app = spawn_app_with(move |s| {
        s.notify.webhook_urls = vec![url];
        s.notify.webhook_format = scanpay::config::WebhookFormat::Wecom;
    })
    .await;
    app.login_as("cashier", "cashier").await;
    paid_order(&app, "8.00").await;
    app.deliver_webhooks().await;
    let hooks = receiver.wait_for(1, Duration::from_secs(5)).await;
    let b = hooks[0].json();
    assert_eq!(b["msgtype"], "text");
    let text = b["text"]["content"].as_str().unwrap();
    assert!(
        text.starts_with("【Demo Shop】微信收款 ¥8.00，订单 "),
        "{text}"
    );
    // The robot's key is in its URL: never in the log.
    let log = logs();
    assert!(log.contains("webhook delivered"));
    assert!(!log.contains("ROBOT-KEY"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payment_committed_before_a_kill_9_is_delivered_after_the_restart() {
    let sim = spawn_sim().await;
    // The receiver is down until after the crash.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let mut app = TestApp::builder()
        .live(&sim.url)
        .env(&[
            ("SCANPAY_NOTIFY_WEBHOOK_URLS", url.as_str()),
            ("SCANPAY_NOTIFY_WEBHOOK_SECRET", SECRET),
        ])
        .process();
    app.login_as("cashier", "cashier-password").await;
    let token = app.create_order("9.99", "").await;
    let code_url = app.scan_qr(&token).await;
    assert_eq!(sim.pay(&code_url).await, 200);
    app.wait_for_state(&token, "paid", Duration::from_secs(10))
        .await;
    // Committed with the payment, not delivered.
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox"), 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox_deliveries WHERE state = 'delivered'"),
        0
    );

    app.restart();
    let receiver = Receiver::on(
        TcpListener::bind(("127.0.0.1", port)).await.unwrap(),
        Answer::Ok,
    );
    let hooks = receiver.wait_for(1, Duration::from_secs(15)).await;
    let b = hooks[0].json();
    assert_eq!(b["amount_fen"], 999);
    assert_eq!(b["order_no"], app.status(&token).await["order_no"]);
    assert_eq!(
        hooks[0].headers["x-scanpay-signature"],
        sign(&hooks[0].body)
    );
    // Recorded delivered, nothing pending: nothing more is sent.
    outbox_drained(&app, 1).await;
    assert_eq!(receiver.hooks().len(), 1, "once");
}

/// Measures delivery throughput (README): `cargo test --test app outbox_throughput -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement, not a check"]
async fn outbox_throughput() {
    use scanpay::store::outbox::{self, Event};
    use scanpay::values::clock::{Clock, Millis};
    use scanpay::values::money::Fen;
    use scanpay::values::order::OrderNo;
    use scanpay::values::trade::TransactionId;

    let receiver = Receiver::start(Answer::Ok).await;
    let dir = tempfile::tempdir().unwrap();
    let store = scanpay::store::Store::open(dir.path()).unwrap();
    let n = 2000;
    let started = Instant::now();
    let writes: Vec<_> = (0..n)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let e = Event::payment(
                    &TransactionId::new(format!("42{i:010}")).unwrap(),
                    &OrderNo::from_stored(format!("20261201{i:04}")),
                    Fen::new(100),
                    Millis(jiff::Timestamp::now().as_millisecond()),
                );
                store
                    .write(move |tx| outbox::enqueue(tx, &e))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for w in writes {
        assert!(w.await.unwrap());
    }
    let enqueued = started.elapsed();
    let mut settings = scanpay::config::Settings::default();
    settings.notify.webhook_urls = vec![receiver.url()];
    settings.notify.webhook_secret = Some(SECRET.to_string().into());
    let hooks = scanpay::jobs::webhooks::Webhooks::new(
        store.clone(),
        scanpay::jobs::webhooks::WebhookConfig::from_settings(&settings),
        Clock::system(),
    )
    .unwrap();
    let started = Instant::now();
    while receiver.hooks().len() < n {
        hooks.tick().await.unwrap();
    }
    let delivered = started.elapsed();
    eprintln!(
        "outbox: {n} events enqueued (one transaction each, concurrently) in {enqueued:?}; delivered in {delivered:?} = {:.0}/s",
        n as f64 / delivered.as_secs_f64()
    );
}
