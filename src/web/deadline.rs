//! A deadline for every request body: actix bounds only the request head
//! (`client_request_timeout`), so a client that sends its headers and then a
//! byte now and then would hold its connection for as long as it likes.
//!
//! `body_deadline` wraps the payload of every request that has one: the whole
//! body must have arrived within `BodyTimeout` of the head. When it has not,
//! the handler's read fails, and the answer is replaced by a 408 that closes
//! the connection.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse};
use bytes::Bytes;
use futures_util::Stream;
use tokio::time::Sleep;

/// How long a request body may take, whole (`http.body_timeout_secs`).
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub Duration);

/// The middleware (see the module's note).
pub async fn body_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let timeout = req.app_data::<BodyTimeout>().copied();
    let Some(BodyTimeout(timeout)) = timeout.filter(|_| has_body(&req)) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let expired = Rc::new(Cell::new(false));
    let inner = req.take_payload();
    req.set_payload(Payload::Stream {
        payload: Box::pin(Deadline {
            inner: Some(inner),
            sleep: Box::pin(tokio::time::sleep(timeout)),
            expired: expired.clone(),
        }),
    });
    let res = next.call(req).await?;
    if !expired.get() {
        return Ok(res.map_into_boxed_body());
    }
    let (req, _) = res.into_parts();
    tracing::info!(
        timeout_secs = timeout.as_secs(),
        "a request body did not arrive in time: 408, connection closed"
    );
    let page = HttpResponse::RequestTimeout()
        .force_close()
        .insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"))
        .body("408 Request Timeout: the request body did not arrive in time\n");
    Ok(ServiceResponse::new(req, page))
}

fn has_body(req: &ServiceRequest) -> bool {
    let h = req.headers();
    if h.contains_key(header::TRANSFER_ENCODING) {
        return true;
    }
    h.get(header::CONTENT_LENGTH)
        .is_some_and(|v| v.to_str().map_or(true, |v| v.trim() != "0"))
}

/// The payload, failing with `TimedOut` once `sleep` is over.
struct Deadline {
    /// `None` once the body is complete or the deadline has failed it.
    inner: Option<Payload>,
    sleep: Pin<Box<Sleep>>,
    expired: Rc<Cell<bool>>,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        // The deadline first: a body that keeps trickling in is no excuse.
        if this.sleep.as_mut().poll(cx).is_ready() {
            this.inner = None;
            this.expired.set(true);
            return Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the request body did not arrive in time",
            )))));
        }
        let next = Pin::new(inner).poll_next(cx);
        if let Poll::Ready(None) = next {
            this.inner = None;
        }
        next
    }
}
