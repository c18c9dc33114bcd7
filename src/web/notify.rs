//! `POST /wxpay/notify`: the gateway's payment notification; XML in, XML out.

use actix_web::{HttpRequest, HttpResponse, web};

use super::AppState;

pub async fn receive(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let remote = req.peer_addr().map(|a| a.ip().to_string());
    let reply = state.checkout.handle_notification(&body, remote).await;
    HttpResponse::Ok()
        .content_type("text/xml; charset=utf-8")
        .body(reply.body)
}
