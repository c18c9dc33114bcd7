//! `POST /wxpay/notify`: the gateway's notification, handed to the domain as it
//! came (exact body and headers); the protocol behind the seam reads it once
//! and writes the answer.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::AppState;
use super::client::ClientInfo;
use crate::checkout::gateway::{NotifyEndpoint, NotifyRequest};

/// `POST /wxpay/notify`.
pub async fn payments(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    receive(req, state, body, NotifyEndpoint::Payments).await
}

/// `POST /wxpay/refund-notify`.
pub async fn refunds(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    receive(req, state, body, NotifyEndpoint::Refunds).await
}

/// `POST /wxpay/v3/notify`.
pub async fn events(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    receive(req, state, body, NotifyEndpoint::Events).await
}

async fn receive(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
    endpoint: NotifyEndpoint,
) -> HttpResponse {
    // Behind a trusted proxy, the gateway's address rather than the proxy's.
    let remote = Some(ClientInfo::of(&req).ip.to_string());
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let notification = NotifyRequest {
        endpoint,
        body: &body,
        headers: &headers,
    };
    let reply = state
        .checkout
        .handle_notification(&notification, remote)
        .await;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status)
        .content_type(reply.content_type)
        .body(reply.body)
}
