//! `/healthz` and `/metrics`.

use std::sync::atomic::Ordering;

use actix_web::{HttpRequest, HttpResponse, web};

use super::AppState;
use crate::store::now_ms;

/// The poller turns at least this often when alive (it may be slow under load).
const POLLER_STALE_MS: i64 = 60_000;

pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let db = state.checkout.store().ping().await;
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
        .store()
        .read(|c| {
            let mut out = Vec::new();
            let mut st = c.prepare("SELECT state, COUNT(*) FROM orders GROUP BY state")?;
            let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            for r in rows {
                out.push(r?);
            }
            let payments: i64 = c.query_row("SELECT COUNT(*) FROM payments", [], |r| r.get(0))?;
            let notifications: i64 =
                c.query_row("SELECT COUNT(*) FROM notifications", [], |r| r.get(0))?;
            Ok((out, payments, notifications))
        })
        .await;
    let Ok((states, payments, notifications)) = counts else {
        return HttpResponse::ServiceUnavailable().finish();
    };
    let mut body = String::from("# TYPE scanpay_orders gauge\n");
    for (s, n) in states {
        body.push_str(&format!("scanpay_orders{{state=\"{s}\"}} {n}\n"));
    }
    body.push_str(&format!(
        "# TYPE scanpay_payments_total counter\nscanpay_payments_total {payments}\n"
    ));
    body.push_str(&format!(
        "# TYPE scanpay_notifications_total counter\nscanpay_notifications_total {notifications}\n"
    ));
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body)
}
