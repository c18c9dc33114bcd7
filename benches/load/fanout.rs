//! Phase `fanout`: does a change cost in proportion to the streams that watch
//! *that* order, or to all open streams?
//!
//! `LOAD_FANOUT_STREAMS` (default 2,000) customers keep their order pages open
//! (one SSE stream each, raw sockets) and nothing happens to their orders;
//! meanwhile `LOAD_FANOUT_RATE` (default 200) payments per second of *other*
//! orders are notified for `LOAD_FANOUT_SECS` (default 10) seconds, and every
//! 50 ms one watched order is opened, paid and timed from the notification to
//! its `paid` event. Reported: the server's CPU over the window (utime + stime
//! from /proc), the watched order's notify → SSE latency, and how many bytes
//! the idle streams received (nothing happened to them, so nothing is due).
//!
//! Then the idle clients hang up while other orders are still paid (10/s for
//! 35 s), and the server's open file descriptors are counted: the server only
//! notices a gone client when it writes to it, i.e. at a keep-alive, so this
//! shows whether keep-alives still happen in a busy shop.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{
    PHASE_LIMIT, ProcSample, Server, Session, clock_ticks_per_sec, env_usize, find, http_client,
    latency_line, make_orders, notifications_for, wait_for_event,
};

/// One sample of the watched order every this often.
const WATCH_EVERY: Duration = Duration::from_millis(50);
/// After the idle clients hang up, the shop stays (mildly) busy this long:
/// one keep-alive period and a bit, with `LINGER_PAID` payments spread over it.
const LINGER: Duration = Duration::from_secs(35);
const LINGER_PAID: usize = 350;

/// Lets this process (and the server it starts, which inherits the limit) hold
/// a few thousand sockets.
pub fn raise_fd_limit(want: u64) {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return;
        }
        if lim.rlim_cur >= want as libc::rlim_t {
            return;
        }
        lim.rlim_cur = (want as libc::rlim_t).min(lim.rlim_max);
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur < want as libc::rlim_t {
            eprintln!(
                "  warning: open-file limit is {} (< {want}); the fanout phase may fail",
                lim.rlim_cur
            );
        }
    }
}

/// An open `/o/{token}/events` stream on a raw socket, past its first event.
async fn open_raw_stream(addr: &str, token: &str) -> Result<tokio::net::TcpStream> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let req = format!(
        "GET /o/{token}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while find(&seen, b"event: status").is_none() {
        let n = tokio::time::timeout_at(deadline, s.read(&mut chunk))
            .await
            .map_err(|_| anyhow!("no first SSE event within 10 s"))??;
        if n == 0 {
            bail!("SSE stream closed before its first event");
        }
        seen.extend_from_slice(&chunk[..n]);
    }
    if !seen.starts_with(b"HTTP/1.1 200") {
        bail!("SSE answered {}", String::from_utf8_lossy(&seen[..12]));
    }
    Ok(s)
}

/// Open file descriptors of a process (its sockets, mostly).
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

pub async fn fanout_phase(server: &Server, sessions: &[Session]) -> Result<()> {
    let fds_before = open_fds(server.pid());
    let streams = env_usize("LOAD_FANOUT_STREAMS", 2_000);
    let rate = env_usize("LOAD_FANOUT_RATE", 200).max(1);
    let secs = env_usize("LOAD_FANOUT_SECS", 10).max(1) as u64;
    let window = Duration::from_secs(secs).min(PHASE_LIMIT / 2);
    let paid_n = rate * window.as_secs() as usize;
    let watched_n = (window.as_millis() / WATCH_EVERY.as_millis()) as usize;

    let prep = Instant::now();
    let tokens = make_orders(sessions, streams + paid_n + watched_n + LINGER_PAID).await?;
    let (idle_tokens, rest) = tokens.split_at(streams);
    let (paid_tokens, rest) = rest.split_at(paid_n);
    let (watched_tokens, linger_tokens) = rest.split_at(watched_n);
    let paid_bodies = notifications_for(sessions, paid_tokens, 3_000_000).await?;
    let watched_bodies = notifications_for(sessions, watched_tokens, 4_000_000).await?;
    let linger_bodies = notifications_for(sessions, linger_tokens, 5_000_000).await?;

    // The idle customers: open in parallel, 32 at a time, each then read by a
    // task that counts what arrives (nothing should: their orders never change).
    let idle_bytes = Arc::new(AtomicU64::new(0));
    let idle_events = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::with_capacity(streams);
    for chunk in idle_tokens.chunks(32) {
        let opened = chunk.iter().map(|t| open_raw_stream(&server.addr, t));
        for s in futures_util::future::join_all(opened).await {
            let mut s = s?;
            let (bytes, events) = (idle_bytes.clone(), idle_events.clone());
            readers.push(tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    bytes.fetch_add(n as u64, Ordering::Relaxed);
                    let status = buf[..n]
                        .windows(13)
                        .filter(|w| w == b"event: status")
                        .count();
                    events.fetch_add(status as u64, Ordering::Relaxed);
                }
            }));
        }
    }
    println!(
        "\n  fanout: {streams} idle SSE streams open, {paid_n} + {watched_n} orders and notifications prepared in {:.1} s",
        prep.elapsed().as_secs_f64()
    );
    server.report_rss(&format!("with {streams} SSE streams open"));
    tokio::time::sleep(Duration::from_secs(1)).await;

    let hz = clock_ticks_per_sec();
    let cpu0 = ProcSample::of(server.pid());
    let me0 = ProcSample::of(std::process::id());
    let started = Instant::now();
    let deadline = started + window + Duration::from_secs(30);

    // Background payments of other orders, paced at `rate` per second.
    let http = http_client(false)?;
    let url = server.base.clone();
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let payer = {
        let (http, url, ok, failed) = (http.clone(), url.clone(), ok.clone(), failed.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1) / rate as u32);
            let mut posts = Vec::with_capacity(paid_bodies.len());
            for body in paid_bodies {
                tick.tick().await;
                if Instant::now() > deadline {
                    break;
                }
                let (http, url, ok, failed) =
                    (http.clone(), url.clone(), ok.clone(), failed.clone());
                posts.push(tokio::spawn(async move {
                    let acked = body.post(&http, &url).await.unwrap_or(false);
                    if acked { &ok } else { &failed }.fetch_add(1, Ordering::Relaxed);
                }));
            }
            for p in posts {
                let _ = p.await;
            }
        })
    };

    // The watched order: one at a time, every WATCH_EVERY, during the payments.
    let mut lat = Vec::with_capacity(watched_n);
    let mut missed = 0usize;
    let mut tick = tokio::time::interval(WATCH_EVERY);
    for (t, body) in watched_tokens.iter().zip(watched_bodies) {
        tick.tick().await;
        if Instant::now() > deadline {
            break;
        }
        let mut events = http
            .get(format!("{}/o/{t}/events", server.base))
            .send()
            .await?;
        if !wait_for_event(&mut events, "event: status", Duration::from_secs(5)).await {
            bail!("no first SSE event on the watched order");
        }
        let t0 = Instant::now();
        let post = {
            let (http, url) = (http.clone(), url.clone());
            tokio::spawn(async move { body.post(&http, &url).await })
        };
        if wait_for_event(&mut events, "\"state\":\"paid\"", Duration::from_secs(5)).await {
            lat.push(t0.elapsed());
        } else {
            missed += 1;
        }
        let _ = post.await;
    }
    payer.await?;
    let elapsed = started.elapsed();
    let cpu1 = ProcSample::of(server.pid());
    let me1 = ProcSample::of(std::process::id());
    let cpu = (cpu1.cpu_ticks - cpu0.cpu_ticks) as f64 / hz / elapsed.as_secs_f64();
    let me = (me1.cpu_ticks - me0.cpu_ticks) as f64 / hz / elapsed.as_secs_f64();
    let n_ok = ok.load(Ordering::Relaxed);
    println!(
        "  fanout: {n_ok} payments of other orders ({} failed) in {:.1} s = {:.0}/s, {streams} idle streams open",
        failed.load(Ordering::Relaxed),
        elapsed.as_secs_f64(),
        n_ok as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  fanout: server CPU {:.1} % of one core over the window (load generator {:.1} %)",
        cpu * 100.0,
        me * 100.0
    );
    println!(
        "  fanout: watched order notify → SSE `paid` ({} samples, every {} ms): {}; {missed} missed",
        lat.len(),
        WATCH_EVERY.as_millis(),
        latency_line(&mut lat)
    );
    // Give anything in flight to the idle streams a moment to arrive.
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!(
        "  fanout: the idle streams received {} bytes ({} status events) after their first event",
        idle_bytes.load(Ordering::Relaxed),
        idle_events.load(Ordering::Relaxed)
    );
    for r in readers {
        r.abort();
    }
    // Does the server let go of the streams whose clients left, while other
    // orders keep changing? It only notices a closed socket when it writes.
    let closed = Instant::now();
    let mut tick = tokio::time::interval(LINGER / LINGER_PAID as u32);
    let mut fds_2s = None;
    for body in linger_bodies {
        tick.tick().await;
        if fds_2s.is_none() && closed.elapsed() >= Duration::from_secs(2) {
            fds_2s = Some(open_fds(server.pid()));
        }
        let _ = body.post(&http, &url).await;
    }
    tick.tick().await;
    println!(
        "  fanout: server open fds: {fds_before} before the phase; after its {streams} clients hung up (other orders paid at {:.0}/s meanwhile): {} at 2 s, {} at {:.0} s",
        LINGER_PAID as f64 / LINGER.as_secs_f64(),
        fds_2s.unwrap_or(0),
        open_fds(server.pid()),
        closed.elapsed().as_secs_f64()
    );
    Ok(())
}
