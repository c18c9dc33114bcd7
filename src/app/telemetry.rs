//! Logging: `RUST_LOG` filters (default `info`), lines go to stderr; one line per
//! HTTP request, in a span that tags whatever the request logs with its id.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

/// What is logged when `RUST_LOG` is not set.
pub const DEFAULT_FILTER: &str = "info,actix_server=warn,actix_web=warn";

/// `RUST_LOG`, else `DEFAULT_FILTER`, to stderr; `log` records (actix, reqwest) too.
pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The path as logged: a customer display's link is its key (SPEC §10), and
/// a customer's order link is the key to their order page (and, for a
/// counter code, to paying it), so neither token reaches the log, as a
/// display's stays out of the database.
fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    for prefix in ["/display/", "/o/"] {
        match path.strip_prefix(prefix) {
            Some(rest) if !rest.is_empty() && rest != "revoke" => {
                let tail = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
                return format!("{prefix}…{tail}").into();
            }
            _ => {}
        }
    }
    path.into()
}

/// Middleware: each request runs in a `request{id client_ip method path}` span and is
/// logged once with its status and latency. `client_ip` is the client as
/// `http.trusted_proxies` lets us believe it (see `web::client`). The path is logged without its
/// query string, which may carry a `next=` or a search.
pub async fn log_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = format!("{:016x}", rand::random::<u64>());
    let span = tracing::info_span!(
        "request",
        id = %id,
        client_ip = %crate::web::client::ClientInfo::of(req.request()).ip,
        method = %req.method(),
        path = %loggable_path(req.path()),
    );
    let started = Instant::now();
    let result = next.call(req).instrument(span.clone()).await;
    let status = match &result {
        Ok(res) => res.status(),
        Err(e) => e.as_response_error().status_code(),
    };
    let latency_ms = (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
    span.in_scope(|| tracing::info!(status = status.as_u16(), latency_ms, "served"));
    let mut res = result?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_in_paths_are_not_logged() {
        for (path, logged) in [
            ("/o/AbCdEf0123456789AbCdEf/qr.png", "/o/…/qr.png"),
            ("/o/AbCdEf0123456789AbCdEf", "/o/…"),
            ("/display/Zz9Zz9Zz9Zz9/events", "/display/…/events"),
            ("/display/revoke", "/display/revoke"),
            ("/display", "/display"),
            ("/orders", "/orders"),
            ("/admin/orders/202612010001", "/admin/orders/202612010001"),
        ] {
            assert_eq!(loggable_path(path), logged, "{path}");
        }
    }
}
