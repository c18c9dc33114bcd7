//! `/healthz` and `/metrics`.

use std::sync::atomic::Ordering;

use actix_web::{HttpRequest, HttpResponse, web};

use super::AppState;
use crate::store::now_ms;

/// The poller turns at least this often when alive (it may be slow under load).
const POLLER_STALE_MS: i64 = 60_000;

pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let db = state.checkout.read_model().ping().await;
    let poller_age = now_ms() - state.heartbeat.load(Ordering::Relaxed);
    match db {
        Ok(()) if poller_age < POLLER_STALE_MS => {
            HttpResponse::Ok().content_type("text/plain").body("ok")
        }
        Ok(()) => HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body("poller stalled"),
        Err(e) => {
            tracing::error!(error.message = %e, "health check: database");
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain")
                .body("database unavailable")
        }
    }
}

pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let local = req.peer_addr().is_some_and(|a| a.ip().is_loopback());
    if !local {
        return HttpResponse::Forbidden().finish();
    }
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
