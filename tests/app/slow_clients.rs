//! Slow clients cannot take the shop offline: hundreds of connections that send
//! a request head and then a body byte by byte are closed within the body
//! deadline, and meanwhile the gateway's notification and an order page are
//! answered within a second.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use scanpay::wxpay::v2::SignType;
use scanpay::wxpay::v2::notify;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// `http.body_timeout_secs` in this test (10 by default).
const BODY_TIMEOUT: Duration = Duration::from_secs(3);
/// What "answered at once" means here.
const PROMPT: Duration = Duration::from_secs(1);

/// How many slow clients (`SCANPAY_TEST_SLOW_CLIENTS` to measure with more).
fn slow_clients() -> usize {
    std::env::var("SCANPAY_TEST_SLOW_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// Each slow client holds a socket here and one in the app (same process):
/// the soft open-files limit up to the hard one, as the app does for itself.
fn raise_open_files_limit() -> u64 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit / setrlimit read or write only the struct passed.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl), 0);
        rl.rlim_cur = rl.rlim_max;
        let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl), 0);
    }
    rl.rlim_cur
}

/// How a slow client's connection ended.
struct Ended {
    /// When the server's answer began, after the head was sent.
    answered: Option<Duration>,
    /// When the server closed, after the head was sent.
    after: Duration,
    /// What the server said before closing.
    said: String,
}

/// Connects, sends a `POST /wxpay/notify` head announcing 1000 bytes, then a
/// byte a second, until the server closes (or `give_up` after the head).
/// `ready` counts the heads sent; `open` the connections not closed yet.
async fn slow_client(
    addr: String,
    from: std::net::Ipv4Addr,
    ready: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    give_up: Duration,
) -> Option<Ended> {
    // Each from its own address (all of 127.0.0.0/8 is this machine): one
    // address alone is capped well below hundreds of connections.
    let sock = tokio::net::TcpSocket::new_v4().expect("a socket");
    sock.bind((from, 0).into()).expect("bind");
    let mut s: TcpStream = sock
        .connect(addr.parse().expect("an address"))
        .await
        .expect("connect");
    s.write_all(
        b"POST /wxpay/notify HTTP/1.1\r\nHost: shop\r\nContent-Type: text/xml\r\n\
          Content-Length: 1000\r\n\r\n<",
    )
    .await
    .expect("send the head");
    let sent = Instant::now();
    open.fetch_add(1, Ordering::SeqCst);
    ready.fetch_add(1, Ordering::SeqCst);
    let (mut said, mut buf) = (Vec::new(), [0u8; 1024]);
    let mut answered = None;
    let mut next_byte = tokio::time::Instant::now() + Duration::from_secs(1);
    let ended = loop {
        if sent.elapsed() > give_up {
            break false;
        }
        tokio::select! {
            r = s.read(&mut buf) => match r {
                Ok(0) | Err(_) => break true,
                Ok(n) => {
                    answered.get_or_insert(sent.elapsed());
                    said.extend_from_slice(&buf[..n]);
                }
            },
            () = tokio::time::sleep_until(next_byte) => {
                next_byte += Duration::from_secs(1);
                if s.write_all(b"x").await.is_err() {
                    break true;
                }
            }
        }
    };
    if !ended {
        return None;
    }
    open.fetch_sub(1, Ordering::SeqCst);
    Some(Ended {
        answered,
        after: sent.elapsed(),
        said: String::from_utf8_lossy(&said).into_owned(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_are_cut_off_while_notifications_and_pages_are_answered() {
    let n = slow_clients();
    let files = raise_open_files_limit();
    assert!(
        files > 2 * n as u64 + 256,
        "{n} slow clients need more than {files} open files"
    );
    let app = spawn_app_with(|s| s.http.body_timeout_secs = BODY_TIMEOUT.as_secs()).await;
    app.login_as("cashier", "cashier").await;
    let token = app.create_order("1.00", "").await;
    let no = app.out_trade_no(&token).await;
    let addr = app.base.strip_prefix("http://").unwrap().to_string();

    let (ready, open) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let give_up = BODY_TIMEOUT + Duration::from_secs(8);
    let clients: Vec<_> = (0..n)
        .map(|i| {
            tokio::spawn(slow_client(
                addr.clone(),
                std::net::Ipv4Addr::new(127, 3, (i >> 8) as u8, i as u8),
                ready.clone(),
                open.clone(),
                give_up,
            ))
        })
        .collect();
    let start = Instant::now();
    while ready.load(Ordering::SeqCst) < n {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "only {} of {n} slow clients connected",
            ready.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connected_in = start.elapsed();

    // With every slow client holding its connection: the gateway is answered,
    // the customer's page and the health check too, each within a second.
    let t = Instant::now();
    let (status, answer) = app
        .notify(signed_notification(
            &demo_merchant(SignType::Md5),
            &no,
            100,
            "4200000000000000000000000140",
        ))
        .await;
    let notified_in = t.elapsed();
    let held = open.load(Ordering::SeqCst);
    assert_eq!(status, 200);
    assert!(notify::is_success_ack(answer.as_bytes()), "{answer}");
    let t = Instant::now();
    let page = app.get_anonymous(&format!("/o/{token}")).await;
    let page_in = t.elapsed();
    assert_eq!(page.status(), 200);
    let t = Instant::now();
    let health = app.get_anonymous("/healthz").await;
    let health_in = t.elapsed();
    assert_eq!(health.status(), 200);
    eprintln!(
        "slow clients: {n} connected in {connected_in:?}; with {held} held open, \
         notification answered in {notified_in:?}, order page in {page_in:?}, \
         /healthz in {health_in:?}"
    );
    assert_eq!(held, n, "no slow client was closed before the deadline");
    assert!(notified_in < PROMPT, "notification took {notified_in:?}");
    assert!(page_in < PROMPT, "order page took {page_in:?}");
    assert!(health_in < PROMPT, "/healthz took {health_in:?}");
    assert_eq!(app.status(&token).await["state"], "paid");

    // Every slow client is answered 408 at the deadline and cut off within
    // the server's second for handing over a last answer (and some slack),
    // not held for as long as it keeps dribbling.
    let (mut latest_408, mut slowest) = (Duration::ZERO, Duration::ZERO);
    for c in clients {
        let ended = c
            .await
            .unwrap()
            .expect("the server closed the slow connection");
        assert!(
            ended.said.starts_with("HTTP/1.1 408"),
            "a slow client was told {:?}",
            ended.said
        );
        let answered = ended.answered.unwrap();
        assert!(
            answered >= BODY_TIMEOUT - Duration::from_millis(100)
                && answered < BODY_TIMEOUT + Duration::from_millis(500),
            "a slow client was answered {answered:?} after its head"
        );
        assert!(
            ended.after < BODY_TIMEOUT + Duration::from_millis(1500),
            "a slow connection lasted {:?}",
            ended.after
        );
        latest_408 = latest_408.max(answered);
        slowest = slowest.max(ended.after);
    }
    eprintln!(
        "slow clients: all {n} answered 408, the last {latest_408:?} after its head, \
         and closed, the last {slowest:?} after it"
    );
    assert_eq!(open.load(Ordering::SeqCst), 0);
}

/// Event streams are capped per order (20) and overall (`http.max_event_streams`):
/// beyond, 503 with `Retry-After`, while the order's page and `/healthz` are
/// still answered. (A stream's place is freed when its body drops: at the
/// next write after its client has gone, the 15 s keep-alive at the latest;
/// see the unit test in `web::events`.)
#[tokio::test]
async fn event_streams_are_capped_per_order_and_overall() {
    let app = spawn_app_with(|s| s.http.max_event_streams = 25).await;
    app.login_as("cashier", "cashier").await;
    let (a, b) = (
        app.create_order("1.00", "").await,
        app.create_order("2.00", "").await,
    );
    let customer = app.anonymous();
    let open = |token: &str| {
        let req = customer.get(app.url(&format!("/o/{token}/events")));
        async move { req.send().await.unwrap() }
    };
    let mut streams = Vec::new();
    for _ in 0..20 {
        let s = open(&a).await;
        assert_eq!(s.status(), 200);
        streams.push(s);
    }
    let refused = open(&a).await;
    assert_eq!(refused.status(), 503, "the 21st stream of one order");
    assert!(refused.headers().contains_key("retry-after"));
    for _ in 0..5 {
        let s = open(&b).await;
        assert_eq!(s.status(), 200);
        streams.push(s);
    }
    assert_eq!(open(&b).await.status(), 503, "the 26th stream overall");
    for path in [
        format!("/o/{a}"),
        format!("/o/{a}/status"),
        "/healthz".into(),
    ] {
        let t = Instant::now();
        assert_eq!(app.get_anonymous(&path).await.status(), 200, "{path}");
        assert!(t.elapsed() < PROMPT, "{path} took {:?}", t.elapsed());
    }
    drop(streams);
}

/// A request on a fresh connection from `from`: the answer's status (the
/// connection is kept, open, with the answer read up to its head).
async fn held_request(app: &TestApp, from: [u8; 4]) -> (u16, tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind((std::net::Ipv4Addr::from(from), 0).into())
        .unwrap();
    let addr: std::net::SocketAddr = app
        .base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let mut s = sock.connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: shop\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "closed before an answer: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    let status = String::from_utf8_lossy(&got[9..12]).parse().unwrap();
    (status, s)
}

/// Issue 19 item 6: one address cannot hold more than its share of the
/// connection table; the next one is answered 429 and closed, another
/// address is served, and a slot given back is there to take again.
#[tokio::test(flavor = "multi_thread")]
async fn one_address_cannot_fill_the_connection_table() {
    use tokio::io::AsyncReadExt;
    let app = spawn_app().await;
    let cap = scanpay::app::peers::MAX_CONNECTIONS_PER_ADDRESS;
    let mut held = Vec::new();
    for _ in 0..cap {
        let (status, s) = held_request(&app, [127, 0, 0, 5]).await;
        assert_eq!(status, 200);
        held.push(s);
    }
    let (status, mut over) = held_request(&app, [127, 0, 0, 5]).await;
    assert_eq!(status, 429, "past the cap");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(2), over.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "and that connection is closed");
    let (status, _) = held_request(&app, [127, 0, 0, 6]).await;
    assert_eq!(status, 200, "another address is served");
    held.truncate(cap - 4);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _) = held_request(&app, [127, 0, 0, 5]).await;
    assert_eq!(status, 200, "a closed connection gives its slot back");
}
