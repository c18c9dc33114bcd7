//! Phase `scale` (`LOAD_SCALE=1000,10000,100000`): a fresh database seeded with
//! N past paid orders, then idle CPU, create latency, status and QR throughput.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};

use super::{
    ProcSample, Server, clock_ticks_per_sec, create_orders, hammer, http_client, login_many, ms,
};

/// Fills a fresh database with `n` past orders (paid, with QR, payment and
/// events rows), as months of trading would, straight through SQL.
fn seed_history(data_dir: &Path, n: usize) -> Result<()> {
    // Creates the schema exactly as the server would.
    drop(scanpay::store::Store::open(data_dir).map_err(|e| anyhow!("{e}"))?);
    let mut c = rusqlite::Connection::open(data_dir.join("scanpay.sqlite3"))?;
    let tx = c.transaction()?;
    let day0 = scanpay::values::clock::Millis::wall().get() - 200 * 86_400_000;
    {
        let mut o = tx.prepare(
            "INSERT INTO orders (id, order_no, token, amount_fen, description, cashier_id, state, created_at,
                                 expires_at, current_qr_id, paid_at, paid_qr_id, transaction_id)
             VALUES (?1, ?2, ?3, ?4, 'history', NULL, 'paid', ?5, ?6, ?1, ?7, ?1, ?8)",
        )?;
        let mut q = tx.prepare(
            "INSERT INTO qrs (id, order_id, version, out_trade_no, state, time_start, time_expire,
                              display_until, spbill_create_ip, prepay_id, code_url, created_at, polls)
             VALUES (?1, ?1, 1, ?2, 'paid', ?3, ?4, ?4, '127.0.0.1', 'wx0', 'weixin://wxpay/bizpayurl?pr=x', ?3, 3)",
        )?;
        let mut p = tx.prepare(
            "INSERT INTO payments (transaction_id, qr_id, order_id, amount_fen, source, late, double_paid, created_at)
             VALUES (?1, ?2, ?2, ?3, 'notify', 0, 0, ?4)",
        )?;
        let mut e = tx.prepare(
            "INSERT INTO events (order_id, at, kind, detail) VALUES (?1, ?2, ?3, 'seeded')",
        )?;
        for i in 1..=n as i64 {
            let at = day0 + i * (200 * 86_400_000 / n as i64);
            let txid = format!("4299{i:024}");
            o.execute(rusqlite::params![
                i,
                format!("H{i:012}"),
                format!("{i:032x}"),
                100 + i % 10_000,
                at,
                at + 1_800_000,
                at + 30_000,
                txid
            ])?;
            q.execute(rusqlite::params![
                i,
                format!("H{i:012}-1-seeded"),
                at,
                at + 300_000
            ])?;
            p.execute(rusqlite::params![txid, i, 100 + i % 10_000, at + 30_000])?;
            for kind in ["created", "qr_issued", "qr_ready", "paid"] {
                e.execute(rusqlite::params![i, at, kind])?;
            }
        }
    }
    tx.commit()?;
    Ok(())
}

pub async fn scale_phase(n: usize, secs: Duration) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let t0 = Instant::now();
    seed_history(dir.path(), n)?;
    let size = std::fs::metadata(dir.path().join("scanpay.sqlite3"))
        .map(|m| m.len())
        .unwrap_or(0);
    let server = Server::start(dir.path(), &[])?;
    println!(
        "\n== scale: {n} past orders seeded in {:.1} s (database {:.1} MB) ==",
        t0.elapsed().as_secs_f64(),
        size as f64 / 1_048_576.0
    );
    let sessions = login_many(&server.base, "cashier", 8).await?;
    // Idle cost of the poller's scans with no open order at all.
    let hz = clock_ticks_per_sec();
    let a = ProcSample::of(server.pid());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let b = ProcSample::of(server.pid());
    println!(
        "  idle server CPU with {n} rows, nothing open: {:.1} % of one core",
        (b.cpu_ticks - a.cpu_ticks) as f64 / hz / b.at.duration_since(a.at).as_secs_f64() * 100.0
    );
    let mut one = create_orders(&sessions[..1], Duration::from_secs(3), 300).await?;
    let tokens = one.tokens.clone();
    one.report("POST /orders, 1 client");
    let mut many = create_orders(&sessions, secs.min(Duration::from_secs(4)), usize::MAX).await?;
    many.report("POST /orders, 8 clients");
    let sample: Vec<String> = tokens.iter().take(100).cloned().collect();
    let paths: Vec<String> = sample.iter().map(|t| format!("/o/{t}/status")).collect();
    hammer(&server.addr, &paths, 64, Duration::from_secs(4))
        .await?
        .report("GET /o/{token}/status", 64);
    let http = http_client(false)?;
    for t in &sample {
        http.get(format!("{}/o/{t}/qr.png", server.base))
            .send()
            .await?;
    }
    let paths: Vec<String> = sample.iter().map(|t| format!("/o/{t}/qr.png")).collect();
    hammer(&server.addr, &paths, 64, Duration::from_secs(4))
        .await?
        .report("GET /o/{token}/qr.png", 64);
    // The admin pages live on another branch; measure them where they exist.
    for path in ["/admin", "/admin/orders.csv"] {
        let admin = http_client(true)?;
        admin
            .post(format!("{}/login", server.base))
            .form(&[("username", "admin"), ("password", "admin")])
            .send()
            .await?;
        let t = Instant::now();
        let r = admin.get(format!("{}{path}", server.base)).send().await?;
        let status = r.status();
        let len = r.bytes().await?.len();
        if status == 404 {
            println!("  GET {path}: not on this branch (404)");
        } else {
            println!(
                "  GET {path}: {status} in {:.1} ms ({len} bytes)",
                ms(t.elapsed())
            );
        }
    }
    server.report_rss("at the end");
    Ok(())
}
