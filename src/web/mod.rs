//! The HTTP layer: handlers extract, parse, call `checkout`, render or redirect.
//! Errors become responses in `error`; every word is in `i18n/`. Only `app`
//! imports it (and `sim`, for `render` and `origin`); it imports `checkout`,
//! the read model of `store`, `config`, `values` and `base`.

pub mod admin;
pub mod assets;
pub mod auth;
pub mod checkout;
pub mod client;
pub mod day;
pub mod deadline;
pub mod display;
pub mod error;
pub mod events;
pub mod headers;
pub mod i18n;
pub mod notify;
pub mod ops;
pub mod order;
pub mod origin;
pub mod qr;
pub mod render;
pub mod respond;

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use actix_web::web;
use secrecy::SecretString;

use crate::checkout::Checkout;
use crate::checkout::accounts::Accounts;
use crate::config::Settings;
use crate::values::money::Fen;
use crate::web::qr::QrCache;

/// What every handler may use, built once at start-up.
pub struct AppState {
    pub checkout: Checkout,
    /// Staff logins and sessions.
    pub accounts: Accounts,
    /// The shop's language, for pages and error pages alike.
    pub t: &'static i18n::Texts,
    pub shop_name: String,
    /// Simulator mode: every page carries the simulator mark (see `Layout`).
    pub simulator: bool,
    pub tz: jiff::tz::TimeZone,
    pub max_amount: Fen,
    /// Rendered QR images; forgotten when their order changes (see start-up).
    pub qr_cache: Arc<QrCache>,
    pub limiter: auth::LoginLimiter,
    /// The poller's last turn (ms), read by `/healthz`.
    pub heartbeat: Arc<AtomicI64>,
    /// `metrics.token`: the bearer that opens `/metrics` on the main address.
    pub metrics_token: Option<SecretString>,
    /// Open event streams, capped overall (`http.max_event_streams`) and per order.
    pub streams: Arc<events::StreamLimits>,
}

impl AppState {
    pub fn new(
        settings: &Settings,
        checkout: Checkout,
        accounts: Accounts,
        qr_cache: Arc<QrCache>,
        heartbeat: Arc<AtomicI64>,
    ) -> Self {
        AppState {
            checkout,
            accounts,
            t: i18n::texts(settings.shop.language),
            shop_name: settings.shop.name.clone(),
            simulator: settings.wxpay.is_simulator(),
            tz: settings.shop_tz(),
            max_amount: settings.checkout.max_amount(),
            qr_cache,
            limiter: auth::LoginLimiter::default(),
            heartbeat,
            metrics_token: settings.metrics.token.clone(),
            streams: events::StreamLimits::new(
                usize::try_from(settings.http.max_event_streams).unwrap_or(usize::MAX),
                events::MAX_STREAMS_PER_ORDER,
            ),
        }
    }
}

/// What every page's chrome (`templates/base.html`, the error and print pages)
/// shows: the shop's name and, in simulator mode, the simulator mark.
#[derive(Debug, Clone, Copy)]
pub struct Layout<'a> {
    pub shop_name: &'a str,
    pub simulator: bool,
}

impl AppState {
    /// The chrome of a page served by this app.
    pub fn layout(&self) -> Layout<'_> {
        Layout {
            shop_name: &self.shop_name,
            simulator: self.simulator,
        }
    }
}

/// Every route of SPEC §2 (but `/sim`, mounted by start-up), grouped by page.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::get().to(auth::login_form))
        .route("/login", web::post().to(auth::login))
        .route("/logout", web::post().to(auth::logout))
        .route("/", web::get().to(checkout::form))
        .route("/orders", web::post().to(checkout::create))
        .route("/counter/events", web::get().to(checkout::events))
        // The cashier's whole day, paged (not a SPEC route: the checkout page links it).
        .route("/day", web::get().to(day::page))
        .route("/day/events", web::get().to(day::events))
        .route("/display", web::get().to(display::pairing))
        .route("/display", web::post().to(display::pair))
        .route("/display/revoke", web::post().to(display::revoke))
        .route("/display/{display_token}", web::get().to(display::page))
        .route(
            "/display/{display_token}/events",
            web::get().to(display::events),
        )
        .route("/o/{token}", web::get().to(order::page))
        .route("/o/{token}/qr.png", web::get().to(order::qr_png))
        .route("/o/{token}/status", web::get().to(order::status))
        .route("/o/{token}/events", web::get().to(events::stream))
        .route("/o/{token}/print", web::get().to(order::print))
        .route("/o/{token}/cancel", web::post().to(order::cancel))
        .route("/o/{token}/retry", web::post().to(order::retry))
        .route("/wxpay/notify", web::post().to(notify::payments))
        .route("/wxpay/refund-notify", web::post().to(notify::refunds))
        // API v3's notifications: the gateway behind the seam reads either.
        .route("/wxpay/v3/notify", web::post().to(notify::events))
        .route("/admin", web::get().to(admin::orders))
        .route("/admin/orders.csv", web::get().to(admin::orders_csv))
        .route("/admin/orders/{order_no}", web::get().to(admin::order))
        .route(
            "/admin/reconciliation",
            web::get().to(admin::reconciliation_days),
        )
        .route(
            "/admin/reconciliation/{date}",
            web::get().to(admin::reconciliation_day),
        )
        .route("/admin/webhooks", web::get().to(admin::webhooks))
        .route("/admin/displays", web::get().to(admin::displays::list))
        .route(
            "/admin/displays/{id}/revoke",
            web::post().to(admin::displays::revoke),
        )
        .route(
            "/admin/orders/{order_no}/refunds",
            web::post().to(admin::refunds::create),
        )
        .route(
            "/admin/orders/{order_no}/refunds/{out_refund_no}/retry",
            web::post().to(admin::refunds::retry),
        )
        .route("/admin/refunds", web::get().to(admin::refunds::list))
        .route("/healthz", web::get().to(ops::healthz))
        .route("/metrics", web::get().to(ops::metrics))
        .route("/static/{file}", web::get().to(assets::serve))
        // Any other address: the shop's own 404 page, not an empty answer.
        .default_service(web::to(not_found));
}

async fn not_found() -> Result<actix_web::HttpResponse, error::WebError> {
    Err(error::WebError::NotFound)
}
