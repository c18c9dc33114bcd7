//! One error type for every handler, turned into a response in one place, in
//! the shop's language: `error_response` has no request, so `localise` (a
//! middleware) renders the page again with the `AppState`'s texts.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError, web};
use askama::Template;

use super::i18n::{self, Texts};
use super::respond::see_other;
use super::{AppState, Layout};
use crate::checkout::{CashierLimit, CheckoutError};
use crate::config::Language;
use crate::store::StoreError;
use crate::values::order::OrderState;

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
    #[error("the order is already {0}")]
    OrderEnded(OrderState),
    #[error("the cashier's limit is reached: {0:?}")]
    CashierLimit(CashierLimit),
    #[error("the order's QR code is not waiting for a retry")]
    NothingToRetry,
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
            CheckoutError::Ended(state) => WebError::OrderEnded(state),
            CheckoutError::NothingToRetry => WebError::NothingToRetry,
            CheckoutError::CashierLimit(limit) => WebError::CashierLimit(limit),
            CheckoutError::BadDay(why) => WebError::BadRequest(why),
            CheckoutError::Store(s) => s.into(),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    t: &'static Texts,
    layout: Layout<'a>,
    title: &'a str,
    message: &'a str,
}

impl WebError {
    /// The response, its page in the language of `t` with the chrome of `layout`.
    pub fn render(&self, t: &'static Texts, layout: Layout<'_>) -> HttpResponse {
        let message: String = match self {
            WebError::LoginRequired { next } => {
                return see_other(&format!("/login?next={}", urlencode(next)));
            }
            WebError::Forbidden => t.forbidden.into(),
            WebError::NotFound => t.not_found.into(),
            WebError::Csrf => t.csrf.into(),
            WebError::BadRequest(m) => format!("{} {m}", t.bad_request),
            WebError::OrderEnded(_) => t.order_ended.into(),
            WebError::NothingToRetry => t.nothing_to_retry.into(),
            WebError::CashierLimit(limit) => t.cashier_limit(*limit),
            // The cause goes to the log only (see `error_response`); the page says something safe.
            WebError::Internal(_) => t.server_error.into(),
        };
        let status = self.status_code();
        crate::web::render::html(
            status,
            &ErrorPage {
                t,
                layout,
                title: status.canonical_reason().unwrap_or("Error"),
                message: &message,
            },
        )
    }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::LoginRequired { .. } => StatusCode::SEE_OTHER,
            WebError::Forbidden | WebError::Csrf => StatusCode::FORBIDDEN,
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::OrderEnded(_) | WebError::NothingToRetry => StatusCode::CONFLICT,
            WebError::CashierLimit(_) => StatusCode::TOO_MANY_REQUESTS,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Logs an internal error's cause chain (inside the request's span) and renders
    /// the page in the default language; `localise` puts it in the shop's.
    fn error_response(&self) -> HttpResponse {
        if let WebError::Internal(e) = self {
            tracing::error!(error.message = %e, error.cause_chain = %crate::base::cause::chain(e.as_ref()), "request failed");
        }
        let layout = Layout {
            shop_name: "",
            simulator: false,
        };
        self.render(i18n::texts(Language::default()), layout)
    }
}

/// Middleware: a response that carries a `WebError` gets its page again in the
/// language and chrome of the app's `AppState` (responses without one pass untouched).
pub async fn localise(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let res = next.call(req).await?;
    let state = res.request().app_data::<web::Data<AppState>>().cloned();
    let page = match (state, res.response().error()) {
        (Some(state), Some(e)) => e
            .as_error::<WebError>()
            .map(|e| e.render(state.t, state.layout())),
        _ => None,
    };
    Ok(match page {
        Some(page) => res.into_response(page),
        None => res.map_into_boxed_body(),
    })
}

pub fn urlencode(s: &str) -> String {
    crate::base::http::percent_encode(s, b"/")
}
