//! Building the app under test: in this process, live, or as the binary.

use super::*;

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
pub(crate) fn demo_database() -> &'static [u8] {
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

pub(crate) async fn start_in_process(settings: Settings, data_dir: tempfile::TempDir) -> TestApp {
    start_on_clock(settings, data_dir, Clock::system()).await
}

pub(crate) async fn start_on_clock(
    settings: Settings,
    data_dir: tempfile::TempDir,
    clock: Clock,
) -> TestApp {
    start_prepared(settings, data_dir, clock, |_| {}).await
}

/// Builds the app on `clock`, lets `prepare` adjust it, and runs it.
pub(crate) async fn start_prepared(
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
pub(crate) fn add_staff(data_dir: &std::path::Path) {
    let store = scanpay::store::Store::open(data_dir).unwrap();
    for (name, role) in [("admin", Role::Admin), ("cashier", Role::Cashier)] {
        let password = format!("{name}-password");
        scanpay::checkout::accounts::add_user(&store, name, &password, role, 8).unwrap();
    }
}

/// The wxpay settings of live mode against the gateway at `gateway`, for an app
/// whose notify_url is on `port`.
pub(crate) fn live_env(gateway: &str, port: u16) -> Vec<(String, String)> {
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
pub(crate) fn live_settings(
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

/// A data dir whose database has the staff of `spawn_live_app` (an admin
/// `admin` / `admin-password`): what live mode, and `scanpay check`, require.
pub fn staffed_data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    add_staff(dir.path());
    dir
}

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
pub(crate) fn live_env_v3(
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
