//! Security headers on every response of every server (`serve`, `sim`, the
//! metrics address), set in one middleware of the shared server set-up.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;

use super::client::ClientInfo;

/// What the pages need and nothing more: every script and stylesheet is a
/// file under `/static/` (or the simulator's own), QR codes are images from
/// us, the order page's SSE is same-origin. Nobody may frame us (refund
/// buttons), and forms only post to us.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'; object-src 'none'";

/// A year, the usual value; only ever sent to a client that came over https,
/// so a plain-http install (the simulator on a laptop) is never pinned to https.
pub const HSTS: &str = "max-age=31536000";

pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let https = ClientInfo::of(req.request()).https;
    let mut res = next.call(req).await?;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    // Private unless the handler said otherwise (static files, QR images,
    // SSE): pages carry orders, staff names and admin data.
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(res)
}
