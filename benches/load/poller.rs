//! Phase `poller`: 10,000 open orders in live mode against a `scanpay sim` in
//! its own process; what does keeping an eye on them cost?

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};

use super::{
    DEMO_APPID, DEMO_KEY, DEMO_MCH_ID, PHASE_LIMIT, ProcSample, Server, bin, clock_ticks_per_sec,
    env_usize, login_many, make_orders, spawn,
};

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn add_user(data_dir: &Path, name: &str, role: &str, password: &str) -> Result<()> {
    use std::io::Write;
    let dir = data_dir
        .to_str()
        .ok_or_else(|| anyhow!("temp dir not UTF-8"))?;
    let mut child = Command::new(bin())
        .args(["user", "add", name, "--role", role, "--data-dir", dir])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    writeln!(
        child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?,
        "{password}"
    )?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("user add: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// 10,000 open orders, nothing due to refresh or expire: what does keeping an
/// eye on them cost? The gateway is a `scanpay sim` in its own process, so the
/// server's CPU is the poller's (plus its HTTP client), not the simulator's.
pub async fn poller_phase(n: usize) -> Result<()> {
    let window = Duration::from_secs(env_usize("LOAD_POLLER_SECS", 30) as u64);
    let cap = env_usize("LOAD_POLLER_MAX_PER_SEC", 50).max(1);
    let cap_s = cap.to_string();
    let sim_dir = tempfile::tempdir()?;
    let (sim_child, sim_url) = spawn(
        &["sim", "--listen", "127.0.0.1:0"],
        &[],
        &sim_dir.path().join("sim.log"),
    )?;
    let sim = Server {
        child: sim_child,
        base: sim_url.clone(),
        addr: String::new(),
        data_dir: sim_dir.path().to_path_buf(),
    };
    let dir = tempfile::tempdir()?;
    add_user(dir.path(), "admin", "admin", "admin-password")?;
    add_user(dir.path(), "cashier", "cashier", "cashier-password")?;
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let notify_url = format!("http://{listen}/wxpay/notify");
    let server = Server::start(
        dir.path(),
        &[
            ("LISTEN", listen.as_str()),
            ("SCANPAY_WXPAY_GATEWAY", sim_url.as_str()),
            ("SCANPAY_WXPAY_APPID", DEMO_APPID),
            ("SCANPAY_WXPAY_MCH_ID", DEMO_MCH_ID),
            ("SCANPAY_WXPAY_API_KEY", DEMO_KEY),
            ("SCANPAY_WXPAY_NOTIFY_URL", notify_url.as_str()),
            // Nothing refreshes or expires during the run: only polls are due.
            ("SCANPAY_CHECKOUT_QR_TTL_SECS", "86400"),
            ("SCANPAY_CHECKOUT_ORDER_TTL_SECS", "172800"),
            ("SCANPAY_POLLER_MAX_PER_SEC", cap_s.as_str()),
        ],
    )?;
    println!(
        "\n== poller: {n} open orders, live mode against `scanpay sim` (pid {}), poller.max_per_sec = {cap} ==",
        sim.pid()
    );
    let sessions = login_many(&server.base, "cashier-password", 16).await?;
    let t0 = Instant::now();
    make_orders(&sessions, n).await?;
    println!(
        "  created {n} orders in {:.1} s ({:.0}/s, while the poller runs)",
        t0.elapsed().as_secs_f64(),
        n as f64 / t0.elapsed().as_secs_f64()
    );
    drop(sessions);
    server.report_rss("after creating them");
    // Let connection pools and the first burst of due polls settle.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let hz = clock_ticks_per_sec();
    let polls = || server.count("SELECT COALESCE(SUM(polls), 0) FROM qrs");
    let first = (
        ProcSample::of(server.pid()),
        ProcSample::of(sim.pid()),
        polls()?,
    );
    let mut prev = first;
    let mut max_rate = 0.0f64;
    // Polls are counted when recorded, and the poller records them once per tick
    // (250 ms), so rates are taken over 5 s windows to smooth that out.
    let mut history: Vec<(Instant, i64)> = vec![(first.0.at, first.2)];
    let mut max_rss = first.0.rss_kb;
    let mut max_cpu = 0.0f64;
    let end = Instant::now() + window.min(PHASE_LIMIT);
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = (
            ProcSample::of(server.pid()),
            ProcSample::of(sim.pid()),
            polls()?,
        );
        let dt = now.0.at.duration_since(prev.0.at).as_secs_f64();
        history.push((now.0.at, now.2));
        if history.len() > 5 {
            let (t0, n0) = history[history.len() - 6];
            let window = now.0.at.duration_since(t0).as_secs_f64();
            max_rate = max_rate.max((now.2 - n0) as f64 / window);
        }
        max_cpu = max_cpu.max((now.0.cpu_ticks - prev.0.cpu_ticks) as f64 / hz / dt);
        max_rss = max_rss.max(now.0.rss_kb);
        prev = now;
    }
    let last = prev;
    let dt = last.0.at.duration_since(first.0.at).as_secs_f64();
    let cpu = (last.0.cpu_ticks - first.0.cpu_ticks) as f64 / hz / dt;
    let sim_cpu = (last.1.cpu_ticks - first.1.cpu_ticks) as f64 / hz / dt;
    let rate = (last.2 - first.2) as f64 / dt;
    let now_ms = scanpay::values::clock::Millis::wall().get();
    let overdue = server.count(&format!(
        "SELECT COUNT(*) FROM qrs WHERE state = 'open' AND next_poll_at < {}",
        now_ms - 10_000
    ))?;
    let open = server.count("SELECT COUNT(*) FROM qrs WHERE state = 'open'")?;
    println!(
        "  over {dt:.0} s: server CPU {:.1} % of one core (busiest second {:.1} %), RSS {:.1} MB (max {:.1} MB)",
        cpu * 100.0,
        max_cpu * 100.0,
        last.0.rss_kb as f64 / 1024.0,
        max_rss as f64 / 1024.0
    );
    println!(
        "  gateway orderquery rate {rate:.1}/s (busiest 5 s {max_rate:.1}/s) against a cap of {cap}/s; simulator CPU {:.1} %",
        sim_cpu * 100.0
    );
    println!(
        "  {open} open QRs; {overdue} more than 10 s past their next_poll_at; at this rate each QR is asked every {:.0} s",
        open as f64 / rate.max(0.001)
    );
    drop(server);
    drop(sim);
    Ok(())
}
