//! Building the app under test: `TestApp::builder()`, its knobs, then `start()`
//! (in this process) or `process()` (the binary). The `spawn_*` functions are
//! its front doors for the common cases.

use super::*;

/// A change made once to a `T` (the settings, the built app).
type Tweak<'a, T> = Box<dyn FnOnce(&mut T) + 'a>;

/// How the app under test is made. By default: simulator mode on v2, the wall
/// clock, the demo users, in this process, and **no background job**: the test
/// turns the poller and the webhooks itself (`settle`, `advance`, `tick`,
/// `wait_for`, `deliver_webhooks`), so nothing runs beside the flow it follows.
pub struct Builder<'a> {
    api: Api,
    manual_clock: bool,
    fresh_database: bool,
    /// Live mode against this gateway (a URL ending in `/`), verifying v3 so.
    live: Option<(String, V3Keys)>,
    env: Vec<(String, String)>,
    tweaks: Vec<Tweak<'a, Settings>>,
    prepare: Option<Tweak<'a, Application>>,
    background_jobs: bool,
}

impl TestApp {
    pub fn builder<'a>() -> Builder<'a> {
        Builder {
            api: Api::V2,
            manual_clock: false,
            fresh_database: false,
            live: None,
            env: Vec::new(),
            tweaks: Vec::new(),
            prepare: None,
            background_jobs: false,
        }
    }
}

impl<'a> Builder<'a> {
    /// The protocol (simulator mode: the demo merchant of that protocol).
    pub fn api(mut self, api: Api) -> Self {
        self.api = api;
        self
    }

    /// A clock only the test moves (`TestApp::advance`): QR lives, order lives,
    /// poll intervals and retry delays pass when the test says, not by waiting.
    /// The simulator keeps the wall clock, as a real gateway would.
    pub fn manual_clock(mut self) -> Self {
        self.manual_clock = true;
        self
    }

    /// Live mode against the gateway at `gateway` (a URL ending in `/`), with
    /// staff `admin` / `cashier` whose passwords are `NAME-password`; a v3 app
    /// verifies WeChat Pay by the simulator's public key.
    pub fn live(self, gateway: &str) -> Self {
        self.live_verifying(gateway, V3Keys::PublicKey)
    }

    /// As `live`, a v3 app verifying WeChat Pay as `keys` says.
    pub fn live_verifying(mut self, gateway: &str, keys: V3Keys) -> Self {
        self.live = Some((gateway.to_string(), keys));
        self
    }

    /// An empty data dir: the app creates its schema and the demo users itself.
    pub fn fresh_database(mut self) -> Self {
        self.fresh_database = true;
        self
    }

    /// `SCANPAY_*` settings read the way the binary reads its environment (a
    /// setting this build does not know is ignored, as the binary ignores it);
    /// the binary keeps them across restarts.
    pub fn env(mut self, extra: &[(&str, &str)]) -> Self {
        self.env.extend(env(extra));
        self
    }

    /// `tweak` applied to the settings (after the env).
    pub fn settings(mut self, tweak: impl FnOnce(&mut Settings) + 'a) -> Self {
        self.tweaks.push(Box::new(tweak));
        self
    }

    /// `prepare` adjusts the built app before it runs.
    pub fn prepare(mut self, prepare: impl FnOnce(&mut Application) + 'a) -> Self {
        self.prepare = Some(Box::new(prepare));
        self
    }

    /// For the tests about a background loop (the poller finding what no
    /// notification told, webhook delivery, the certificate refresh, the daily
    /// backup): every job runs beside the test as in service.
    pub fn background_jobs(mut self) -> Self {
        self.background_jobs = true;
        self
    }

    /// The settings' env: the fast test pace, live mode's wxpay settings (key
    /// files written into `dir`) for an app on `port`, then `env`.
    fn env_for(&self, port: u16, dir: &std::path::Path) -> Vec<(String, String)> {
        let mut pairs = env(FAST_ENV);
        match (&self.live, self.api) {
            (None, _) => {}
            (Some((gateway, _)), Api::V2) => pairs.extend(live_env(gateway, port)),
            (Some((gateway, keys)), Api::V3) => {
                pairs.extend(live_env_v3(gateway, port, *keys, dir))
            }
        }
        pairs.extend(self.env.iter().cloned());
        pairs
    }

    /// A data dir and the address to listen on: live mode needs its staff and
    /// its port in advance (for its notify_url).
    fn data_dir_and_listen(&self) -> (tempfile::TempDir, u16) {
        let data_dir = tempfile::tempdir().unwrap();
        if self.live.is_some() {
            add_staff(data_dir.path());
            return (data_dir, free_port());
        }
        if !self.fresh_database {
            std::fs::write(data_dir.path().join(DB_FILE), demo_database()).unwrap();
        }
        (data_dir, 0)
    }

    /// Builds the app in this process and runs it.
    pub async fn start(self) -> TestApp {
        capture_logs();
        let (data_dir, port) = self.data_dir_and_listen();
        let pairs = self.env_for(port, data_dir.path());
        let api = self.api;
        let simulated = self.live.is_none();
        let mut settings = settings(pairs, &format!("127.0.0.1:{port}"), |s| {
            if simulated {
                s.wxpay.api = api;
            }
            for tweak in self.tweaks {
                tweak(s);
            }
        });
        settings.data_dir = data_dir.path().to_path_buf();
        let api = settings.wxpay.api;
        let clock = if self.manual_clock {
            Clock::manual()
        } else {
            Clock::system()
        };
        let mut app = Application::build_with_clock(settings, clock.clone())
            .await
            .expect("the application builds");
        if let Some(prepare) = self.prepare {
            prepare(&mut app);
        }
        if !self.background_jobs {
            app.drive_jobs_by_hand();
        }
        let base = format!("http://127.0.0.1:{}", app.port());
        let poller = app.poller();
        let webhooks = app.webhooks();
        let stop = serve_until_cancelled("the application", |shutdown| app.run_until(shutdown));
        TestApp {
            base,
            data_dir,
            http: http(),
            api,
            serving: Serving::InProcess {
                stop,
                poller,
                clock,
                webhooks,
                by_hand: !self.background_jobs,
            },
        }
    }

    /// Starts the binary in live mode (against `live`'s gateway, which keeps
    /// its orders while the app is killed and restarted), its own jobs running.
    pub fn process(self) -> TestApp {
        assert!(self.live.is_some(), "the binary runs in live mode here");
        assert!(
            self.tweaks.is_empty() && self.prepare.is_none() && !self.manual_clock,
            "the binary takes its settings from the env alone"
        );
        let (data_dir, port) = self.data_dir_and_listen();
        let env = self.env_for(port, data_dir.path());
        let process = start_serve(data_dir.path(), &format!("127.0.0.1:{port}"), &env);
        TestApp {
            base: process.url.trim_end_matches('/').to_string(),
            data_dir,
            http: http(),
            api: self.api,
            serving: Serving::Process { process, env },
        }
    }
}

/// The app in simulator mode (demo users, the simulator at `/sim/`).
pub async fn spawn_app() -> TestApp {
    TestApp::builder().start().await
}

/// The app in simulator mode with `tweak` applied to the test settings. Its
/// database starts as a copy of `demo_database()`.
pub async fn spawn_app_with<'a>(tweak: impl FnOnce(&mut Settings) + 'a) -> TestApp {
    TestApp::builder().settings(tweak).start().await
}

/// `spawn_app_with` on `api` (simulator mode: the demo merchant of that protocol).
pub async fn spawn_app_on<'a>(api: Api, tweak: impl FnOnce(&mut Settings) + 'a) -> TestApp {
    TestApp::builder().api(api).settings(tweak).start().await
}

/// `spawn_app_with` on the manual clock (`Builder::manual_clock`).
pub async fn spawn_app_on_manual_clock<'a>(tweak: impl FnOnce(&mut Settings) + 'a) -> TestApp {
    TestApp::builder()
        .manual_clock()
        .settings(tweak)
        .start()
        .await
}

/// The app in live mode (staff `admin` / `cashier` with `NAME-password`) in this
/// process, against the gateway at `gateway`.
pub async fn spawn_live_app<'a>(gateway: &str, tweak: impl FnOnce(&mut Settings) + 'a) -> TestApp {
    TestApp::builder()
        .live(gateway)
        .settings(tweak)
        .start()
        .await
}

/// As `spawn_live_app`, on the manual clock (`TestApp::advance`).
pub async fn spawn_live_app_on_manual_clock<'a>(
    gateway: &str,
    tweak: impl FnOnce(&mut Settings) + 'a,
) -> TestApp {
    let builder = TestApp::builder().manual_clock().live(gateway);
    builder.settings(tweak).start().await
}

/// `spawn_live_app` on `api` (for v3, verifying WeChat Pay as `keys` says).
pub async fn spawn_live_app_on<'a>(
    api: Api,
    keys: V3Keys,
    gateway: &str,
    tweak: impl FnOnce(&mut Settings) + 'a,
) -> TestApp {
    let builder = TestApp::builder().api(api).live_verifying(gateway, keys);
    builder.settings(tweak).start().await
}

/// The binary in live mode against `sim` (which keeps its orders while the app
/// is killed and restarted), with the staff of `spawn_live_app`.
pub fn spawn_app_process(sim: &TestSim) -> TestApp {
    TestApp::builder().live(&sim.url).process()
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

/// Live mode needs an admin; both staff accounts get real passwords.
pub(crate) fn add_staff(data_dir: &std::path::Path) {
    let store = scanpay::store::Store::open(data_dir).unwrap();
    for (name, role) in [("admin", Role::Admin), ("cashier", Role::Cashier)] {
        let password = format!("{name}-password");
        scanpay::checkout::accounts::add_user(&store, name, &password, role, 8).unwrap();
    }
}

/// A data dir whose database has the staff of `spawn_live_app` (an admin
/// `admin` / `admin-password`): what live mode, and `scanpay check`, require.
pub fn staffed_data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    add_staff(dir.path());
    dir
}

/// The wxpay settings of live v2 against `gateway`, for an app whose notify_url
/// is on `port`.
pub(crate) fn live_env(gateway: &str, port: u16) -> Vec<(String, String)> {
    let notify = format!("http://127.0.0.1:{port}/wxpay/notify");
    env(&[
        ("SCANPAY_WXPAY_GATEWAY", gateway),
        ("SCANPAY_WXPAY_APPID", DEMO_APPID),
        ("SCANPAY_WXPAY_MCH_ID", DEMO_MCH_ID),
        ("SCANPAY_WXPAY_API_KEY", DEMO_API_KEY),
        ("SCANPAY_WXPAY_NOTIFY_URL", &notify),
    ])
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
    let mut env = env(&[
        ("SCANPAY_WXPAY_API", "v3"),
        ("SCANPAY_WXPAY_GATEWAY", gateway),
        ("SCANPAY_WXPAY_APPID", DEMO_V3_APPID),
        ("SCANPAY_WXPAY_MCH_ID", DEMO_V3_MCH_ID),
        ("SCANPAY_WXPAY_APIV3_KEY", DEMO_V3_APIV3_KEY),
        ("SCANPAY_WXPAY_PRIVATE_KEY_FILE", key_file.to_str().unwrap()),
        ("SCANPAY_WXPAY_CERT_SERIAL", DEMO_V3_CERT_SERIAL),
        ("SCANPAY_WXPAY_NOTIFY_URL", &notify),
    ]);
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

/// `spawn_live_app_on` on the manual clock (`TestApp::advance`), verifying v3
/// answers by the simulator's public key.
pub async fn spawn_live_app_on_manual_clock_on<'a>(
    api: Api,
    gateway: &str,
    tweak: impl FnOnce(&mut Settings) + 'a,
) -> TestApp {
    let builder = TestApp::builder().api(api).manual_clock();
    builder
        .live_verifying(gateway, V3Keys::PublicKey)
        .settings(tweak)
        .start()
        .await
}

/// The app in simulator mode built (not run) on `data_dir` as it is: for tests
/// of what start-up refuses.
pub async fn build_app_on(data_dir: &std::path::Path) -> anyhow::Result<Application> {
    let mut settings = settings(env(FAST_ENV), "127.0.0.1:0", |_| {});
    settings.data_dir = data_dir.to_path_buf();
    Application::build(settings).await
}
