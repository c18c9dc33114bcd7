//! One error type for every handler, turned into a response in one place.

use std::sync::OnceLock;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use super::i18n::{self, Texts};
use super::respond::see_other;
use crate::checkout::CheckoutError;
use crate::store::StoreError;

/// The language of error pages (set once at start-up; errors carry no request).
static ERROR_TEXTS: OnceLock<&'static Texts> = OnceLock::new();

pub fn set_error_language(t: &'static Texts) {
    let _ = ERROR_TEXTS.set(t);
}

fn texts() -> &'static Texts {
    ERROR_TEXTS.get().copied().unwrap_or(&i18n::ZH_CN)
}

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("login required")]
    LoginRequired { next: String },
    #[error("forbidden")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("invalid CSRF token")]
    Csrf,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        WebError::Internal(e.into())
    }
}

impl From<CheckoutError> for WebError {
    fn from(e: CheckoutError) -> Self {
        match e {
            CheckoutError::NotFound => WebError::NotFound,
            CheckoutError::Ended(_) => WebError::Conflict(texts().order_ended.to_string()),
            CheckoutError::NothingToRetry => WebError::Conflict(texts().order_ended.to_string()),
            CheckoutError::Store(s) => s.into(),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    t: &'static Texts,
    title: &'a str,
    message: &'a str,
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::LoginRequired { .. } => StatusCode::SEE_OTHER,
            WebError::Forbidden | WebError::Csrf => StatusCode::FORBIDDEN,
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Conflict(_) => StatusCode::CONFLICT,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let t = texts();
        let message: String = match self {
            WebError::LoginRequired { next } => {
                return see_other(&format!("/login?next={}", urlencode(next)));
            }
            WebError::Forbidden => t.forbidden.into(),
            WebError::NotFound => t.not_found.into(),
            WebError::Csrf => t.csrf.into(),
            WebError::BadRequest(m) => format!("{} {m}", t.bad_request),
            WebError::Conflict(m) => m.clone(),
            WebError::Internal(e) => {
                // The cause goes to the log only; the page says something safe.
                tracing::error!(error.cause_chain = ?e, "request failed");
                t.server_error.into()
            }
        };
        let status = self.status_code();
        crate::render::html(
            status,
            &ErrorPage {
                t,
                title: status.canonical_reason().unwrap_or("Error"),
                message: &message,
            },
        )
    }
}

pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
