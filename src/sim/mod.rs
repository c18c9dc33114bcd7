//! The simulated WeChat Pay gateway (API v2 here, v3 in `v3/`) and the
//! customer's phone. Built on the protocols (`wxpay`), never on the app's
//! domain or settings; only `app` imports it.
//!
//! Served at the root of `scanpay sim`, or under `/sim/` inside `scanpay serve`.
//! Its order book lives in memory (it is a stand-in) behind one mutex, so
//! concurrent requests see one consistent state machine.

pub mod bill;
mod delivery;
pub mod faults;
pub mod gateway;
pub mod ledger;
pub mod notifier;
pub mod notify;
pub mod phone;
pub mod refunds;
pub mod tls;
pub mod v3;

use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};

use crate::base::lock::{LockExt, RwLockExt};
use crate::wxpay::v2::Merchant;
pub use faults::Faults;
use ledger::Ledger;

/// What the simulator needs to know (built by `Settings::sim_config`).
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub merchant: Merchant,
    /// The API v3 merchant the v3 routes serve.
    pub v3: crate::wxpay::v3::Merchant,
    pub time_scale: f64,
    pub min_close_age: Duration,
    pub faults: Faults,
}

#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

struct Inner {
    merchant: Merchant,
    v3: v3::V3Side,
    ledger: Mutex<Ledger>,
    faults: RwLock<Faults>,
    time_scale: f64,
    min_close_age: Duration,
    http: reqwest::Client,
    /// Served with `--client-ca`: refunds need a client certificate.
    client_certificates: std::sync::atomic::AtomicBool,
}

/// Why the simulator cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot build the simulator's HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the simulator's API v3 keys: {0}")]
    Key(#[from] crate::wxpay::v3::KeyError),
}

impl Simulator {
    pub fn new(cfg: SimConfig) -> Result<Self, SimError> {
        crate::base::http::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        Ok(Simulator {
            inner: Arc::new(Inner {
                merchant: cfg.merchant,
                v3: v3::V3Side::new(cfg.v3)?,
                ledger: Mutex::new(Ledger::default()),
                faults: RwLock::new(cfg.faults),
                time_scale: cfg.time_scale,
                min_close_age: cfg.min_close_age,
                http,
                client_certificates: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    /// Registers the simulator's routes (and itself as app data) on `cfg`.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::new(self.clone()))
            .service(
                web::resource("/pay/unifiedorder")
                    .route(web::post().to(gateway::unifiedorder))
                    .default_service(web::to(gateway::require_post)),
            )
            .service(
                web::resource("/pay/orderquery")
                    .route(web::post().to(gateway::orderquery))
                    .default_service(web::to(gateway::require_post)),
            )
            .service(
                web::resource("/pay/closeorder")
                    .route(web::post().to(gateway::closeorder))
                    .default_service(web::to(gateway::require_post)),
            )
            .service(
                web::resource("/pay/downloadbill")
                    .route(web::post().to(bill::downloadbill))
                    .default_service(web::to(gateway::require_post)),
            )
            .service(
                web::resource("/secapi/pay/refund")
                    .route(web::post().to(gateway::refund))
                    .default_service(web::to(gateway::require_post)),
            )
            .service(
                web::resource("/pay/refundquery")
                    .route(web::post().to(gateway::refundquery))
                    .default_service(web::to(gateway::require_post)),
            )
            .configure(v3::configure)
            .route("", web::get().to(phone::add_slash))
            .route("/", web::get().to(phone::index))
            .route("/scan", web::get().to(phone::scan))
            .route("/sim.css", web::get().to(phone::stylesheet))
            .route("/pay", web::post().to(phone::pay))
            .route("/faults", web::get().to(get_faults))
            .route("/faults", web::post().to(set_faults));
    }

    pub fn merchant(&self) -> &Merchant {
        &self.inner.merchant
    }

    /// The API v3 side: its merchant and the simulator's own keys.
    pub fn v3(&self) -> &v3::V3Side {
        &self.inner.v3
    }

    /// The order book. A panic while holding it cannot leave a half-applied
    /// change (every mutation is a single assignment), so poisoning is ignored.
    pub fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.inner.ledger.lock_or_recover()
    }

    /// From now on a refund needs a verified client certificate (`--client-ca`).
    pub fn require_client_certificates(&self) {
        self.inner
            .client_certificates
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn requires_client_certificate(&self) -> bool {
        self.inner
            .client_certificates
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn faults(&self) -> Faults {
        self.inner.faults.read_or_recover().clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.inner.faults.write_or_recover() = faults;
    }

    fn time_scale(&self) -> f64 {
        self.inner.time_scale
    }

    fn min_close_age(&self) -> Duration {
        self.inner.min_close_age
    }

    fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }
}

async fn get_faults(sim: web::Data<Simulator>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(sim.faults().to_string())
}

pub(crate) fn cross_site() -> HttpResponse {
    HttpResponse::Forbidden()
        .content_type("text/plain; charset=utf-8")
        .body("cross-site request refused: use the simulator's own page")
}

/// `POST /faults` with `name=value,…`; an empty body clears every fault.
async fn set_faults(req: HttpRequest, sim: web::Data<Simulator>, body: String) -> HttpResponse {
    if !crate::web::origin::same_origin(&req) {
        return cross_site();
    }
    match body.parse::<Faults>() {
        Ok(f) => {
            tracing::info!(faults = %f, "sim: faults set");
            sim.set_faults(f);
            get_faults(sim).await
        }
        Err(e) => HttpResponse::BadRequest()
            .content_type("text/plain; charset=utf-8")
            .body(e.to_string()),
    }
}
