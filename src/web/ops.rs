//! `/healthz` and `/metrics`.
//!
//! `/metrics` is never open "because the request looks local": behind a
//! reverse proxy every request does. It is served on `metrics.listen` (a
//! separate address the operator keeps private), and on the main address only
//! with `Authorization: Bearer <metrics.token>`; to anyone else it does not exist.

use std::sync::atomic::Ordering;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use super::AppState;
use crate::values::clock::Millis;

/// The poller turns at least this often when alive (it may be slow under load).
const POLLER_STALE_MS: i64 = 60_000;

pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let db = state.checkout.read_model().ping().await;
    let poller_age = Millis::wall().get() - state.heartbeat.load(Ordering::Relaxed);
    match db {
        Ok(()) if poller_age < POLLER_STALE_MS => {
            HttpResponse::Ok().content_type("text/plain").body("ok")
        }
        Ok(()) => HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body("poller stalled"),
        Err(e) => {
            tracing::error!(error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), "health check: database");
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain")
                .body("database unavailable")
        }
    }
}

/// `/metrics` on the main address: with the bearer token, else a plain 404.
pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if !bearer_matches(&req, &state) {
        return HttpResponse::NotFound().finish();
    }
    metrics_text(state).await
}

/// Whether the request carries `Authorization: Bearer <metrics.token>` (compared
/// in constant time); never, when no token is configured.
fn bearer_matches(req: &HttpRequest, state: &AppState) -> bool {
    let Some(token) = &state.metrics_token else {
        return false;
    };
    // The scheme name is case-insensitive (RFC 9110 §11.1).
    let Some((scheme, given)) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
    else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer")
        && bool::from(
            given
                .trim()
                .as_bytes()
                .ct_eq(token.expose_secret().as_bytes()),
        )
}

/// The routes of the `metrics.listen` server: `/metrics` for whoever reaches that address.
pub fn metrics_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics_text));
}

/// Prometheus text of the read model's counts.
async fn metrics_text(state: web::Data<AppState>) -> HttpResponse {
    let counts = state
        .checkout
        .read_model()
        .read(crate::store::metrics::counts)
        .await;
    let Ok(counts) = counts else {
        return HttpResponse::ServiceUnavailable().finish();
    };
    let mut body = String::from("# TYPE scanpay_orders gauge\n");
    for (s, n) in counts.orders {
        body.push_str(&format!("scanpay_orders{{state=\"{s}\"}} {n}\n"));
    }
    body.push_str(&format!(
        "# TYPE scanpay_payments_total counter\nscanpay_payments_total {}\n",
        counts.payments
    ));
    body.push_str(&format!(
        "# TYPE scanpay_notifications_total counter\nscanpay_notifications_total {}\n",
        counts.notifications
    ));
    body.push_str(&format!(
        "# TYPE scanpay_notifications_refused_unstored_total counter\nscanpay_notifications_refused_unstored_total {}\n",
        state.checkout.refused_unstored()
    ));
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body)
}
