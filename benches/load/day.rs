//! Phase `day` (issue 20): one cashier takes orders up to `LOAD_DAY_ORDERS`
//! (default 10,000) in one shop day, one at a time, with the cashier's own
//! counter feed open (`GET /counter/events`, as the checkout and order pages
//! keep it). At 100, 1,000 and 10,000 orders it reports `POST /orders` p50/p99
//! (the 100 creations that reached that count) and `GET /` p50/p99 and size
//! (`LOAD_DAY_GETS` requests, default 100, at that count).

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::{PHASE_LIMIT, Server, env_usize, login, ms, percentile};

/// The counts at which the day is measured.
const CHECKPOINTS: [usize; 3] = [100, 1_000, 10_000];
/// Creations per checkpoint's `POST /orders` sample.
const WINDOW: usize = 100;

struct Row {
    orders: usize,
    post: (Duration, Duration),
    get: (Duration, Duration),
    bytes: usize,
}

fn p50_p99(mut lat: Vec<Duration>) -> (Duration, Duration) {
    lat.sort();
    (percentile(&lat, 0.50), percentile(&lat, 0.99))
}

pub async fn day_phase() -> Result<()> {
    let total = env_usize("LOAD_DAY_ORDERS", 10_000);
    let gets = env_usize("LOAD_DAY_GETS", 100).max(1);
    let dir = tempfile::tempdir()?;
    // Orders stay open for the whole phase (2 h life, no payments), so the
    // last ones are created beside ~10,000 open orders of the same cashier.
    let server = Server::start(
        dir.path(),
        &[
            ("SCANPAY_CHECKOUT_ORDER_TTL_SECS", "7200"),
            ("SCANPAY_CHECKOUT_QR_TTL_SECS", "7200"),
        ],
    )?;
    println!(
        "\n== day: one cashier, {total} orders in one day (pid {}) ==",
        server.pid()
    );
    let s = login(&server.base, "cashier").await?;
    // The cashier's page is open at the till: its feed re-reads on every order.
    let mut feed = s
        .http
        .get(format!("{}/counter/events", server.base))
        .send()
        .await?;
    if feed.status() != 200 {
        bail!("GET /counter/events answered {}", feed.status());
    }
    let drain = tokio::spawn(async move {
        let mut bytes = 0usize;
        while let Ok(Some(c)) = feed.chunk().await {
            bytes += c.len();
        }
        bytes
    });

    let started = Instant::now();
    let mut post_lat: Vec<Duration> = Vec::with_capacity(total);
    let mut rows = Vec::new();
    for k in 1..=total {
        if started.elapsed() > PHASE_LIMIT {
            println!("  stopped at {} orders: the phase's time limit", k - 1);
            break;
        }
        let t0 = Instant::now();
        s.create_order(100 + (k as u64 * 7919) % 90_000).await?;
        post_lat.push(t0.elapsed());
        if CHECKPOINTS.contains(&k) {
            let mut get_lat = Vec::with_capacity(gets);
            let mut bytes = 0;
            for _ in 0..gets {
                let t0 = Instant::now();
                let resp = s.http.get(format!("{}/", server.base)).send().await?;
                if resp.status() != 200 {
                    bail!("GET / answered {}", resp.status());
                }
                bytes = resp.bytes().await?.len();
                get_lat.push(t0.elapsed());
            }
            let window = post_lat[k.saturating_sub(WINDOW)..].to_vec();
            let row = Row {
                orders: k,
                post: p50_p99(window),
                get: p50_p99(get_lat),
                bytes,
            };
            println!(
                "  {:>6} orders: POST /orders p50 {:.2} ms p99 {:.2} ms; GET / p50 {:.2} ms p99 {:.2} ms, {} bytes",
                row.orders,
                ms(row.post.0),
                ms(row.post.1),
                ms(row.get.0),
                ms(row.get.1),
                row.bytes
            );
            rows.push(row);
        }
    }
    println!(
        "  {} orders in {:.1} s",
        post_lat.len(),
        started.elapsed().as_secs_f64()
    );
    if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
        let ratio = |a: Duration, b: Duration| ms(b) / ms(a).max(1e-9);
        println!(
            "  at {} vs {} orders: GET / size ×{:.2}, GET / p50 ×{:.2}, POST /orders p50 ×{:.2} (target ≤ 1.3)",
            last.orders,
            first.orders,
            last.bytes as f64 / first.bytes.max(1) as f64,
            ratio(first.get.0, last.get.0),
            ratio(first.post.0, last.post.0)
        );
    }
    drop(server);
    let fed = drain.await.unwrap_or(0);
    println!(
        "  the counter feed carried {:.1} MB",
        fed as f64 / 1_048_576.0
    );
    Ok(())
}
