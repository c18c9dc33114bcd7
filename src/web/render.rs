//! Turning an askama page into a response: the one place HTML leaves the process.

use actix_web::{HttpResponse, http::StatusCode};

/// Renders `page` with `status`; a template error becomes a plain 500 (and a log line).
pub fn html(status: StatusCode, page: &impl askama::Template) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header(("cache-control", "no-store"))
            .body(body),
        Err(e) => {
            tracing::error!(error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), "template rendering failed");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("Internal error: the page could not be rendered.")
        }
    }
}
