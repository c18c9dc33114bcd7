//! Login, logout, the session cookie, roles, CSRF tokens and the login rate limit.

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use askama::Template;
use subtle::ConstantTimeEq;

use super::client::ClientInfo;
use super::error::WebError;
use super::i18n::Texts;
use super::respond::see_other_with_cookie;
use super::{AppState, Layout};
use crate::checkout::accounts::{AccountError, SESSION_LIFE, SessionUser, SignIn};
use crate::values::role::Role;
use crate::web::render::html;

mod limiter;

pub use limiter::LoginLimiter;
use limiter::{KNOWN_FOR, Refusal};

pub const SESSION_COOKIE: &str = "scanpay_session";
/// The device cookie a success leaves: that browser is then known to the
/// login limit for that name (`limiter`), so a burst of strangers' guesses
/// against the account never locks it out.
pub const DEVICE_COOKIE: &str = "scanpay_device";

fn internal(e: AccountError) -> WebError {
    WebError::Internal(e.into())
}

/// The signed-in user of a request; extracting it redirects to the login page when absent.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub SessionUser);

impl CurrentUser {
    pub fn require_admin(&self) -> Result<(), WebError> {
        if self.0.role == Role::Admin {
            Ok(())
        } else {
            Err(WebError::Forbidden)
        }
    }

    /// Checks a form's CSRF token against the session's, in constant time.
    pub fn check_csrf(&self, token: &str) -> Result<(), WebError> {
        if bool::from(self.0.csrf_token.as_bytes().ct_eq(token.as_bytes())) {
            Ok(())
        } else {
            Err(WebError::Csrf)
        }
    }
}

/// The user if signed in, without redirecting.
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<SessionUser>);

async fn session_of(req: &HttpRequest) -> Result<Option<SessionUser>, WebError> {
    let Some(cookie) = req.cookie(SESSION_COOKIE) else {
        return Ok(None);
    };
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return Ok(None);
    };
    state
        .accounts
        .session(cookie.value())
        .await
        .map_err(internal)
}

impl FromRequest for CurrentUser {
    type Error = WebError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match session_of(&req).await? {
                Some(u) => Ok(CurrentUser(u)),
                None => Err(WebError::LoginRequired {
                    next: after_login(&req),
                }),
            }
        })
    }
}

impl FromRequest for MaybeUser {
    type Error = WebError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Ok(MaybeUser(session_of(&req).await?)) })
    }
}

/// Where to go once signed in. A page asked for is shown again; a form posted
/// after the session ended cannot be replayed by a GET (most such routes are
/// POST-only), so the page the form was on is shown instead, else the start page.
fn after_login(req: &HttpRequest) -> String {
    let here = |path: &str, query: &str| match query {
        "" => path.to_string(),
        q => format!("{path}?{q}"),
    };
    if matches!(
        *req.method(),
        actix_web::http::Method::GET | actix_web::http::Method::HEAD
    ) {
        return here(req.path(), req.query_string());
    }
    let host = req.connection_info().host().to_string();
    req.headers()
        .get(actix_web::http::header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| r.parse::<actix_web::http::Uri>().ok())
        .filter(|r| {
            r.authority()
                .is_some_and(|a| a.as_str().eq_ignore_ascii_case(&host))
        })
        .map(|r| here(r.path(), r.query().unwrap_or("")))
        .unwrap_or_else(|| "/".to_string())
}

/// Only local paths are followed after login (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        // Browsers drop tabs and newlines from URLs, so "/\t/evil" would become "//evil".
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    t: &'static Texts,
    layout: Layout<'a>,
    username: &'a str,
    next: &'a str,
    error: Option<&'a str>,
}

#[derive(serde::Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

pub async fn login_form(state: web::Data<AppState>, q: web::Query<NextQuery>) -> HttpResponse {
    let next = safe_next(q.next.as_deref());
    html(
        StatusCode::OK,
        &LoginPage {
            t: state.t,
            layout: state.layout(),
            username: "",
            next: &next,
            error: None,
        },
    )
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

pub async fn login(
    req: HttpRequest,
    client: ClientInfo,
    state: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, WebError> {
    // Behind a trusted proxy this is the real client, so each gets its own bucket.
    let ip = client.ip;
    let next = safe_next(form.next.as_deref());
    let page = |status: StatusCode, error: &str| {
        html(
            status,
            &LoginPage {
                t: state.t,
                layout: state.layout(),
                username: &form.username,
                next: &next,
                error: Some(error),
            },
        )
    };
    // Login CSRF: another site must not sign a visitor's browser in to an
    // account of its choosing (its orders would then be made under that name).
    if !crate::web::origin::same_origin(&req) {
        tracing::warn!(%ip, "login refused: posted from another site");
        return Ok(page(StatusCode::FORBIDDEN, state.t.login_cross_site));
    }
    let name = form.username.trim();
    let refused = |why: Refusal| {
        tracing::warn!(%ip, ?why, "login refused before its check");
        let text = match why {
            Refusal::TooManyFailures => state.t.too_many_attempts,
            Refusal::Busy => state.t.login_busy,
            Refusal::AccountBusy => state.t.login_account_busy,
        };
        Ok(page(StatusCode::TOO_MANY_REQUESTS, text))
    };
    let device = req.cookie(DEVICE_COOKIE);
    let mut attempt = match state
        .limiter
        .begin(ip, name, device.as_ref().map(|c| c.value()))
    {
        Ok(attempt) => attempt,
        Err(why) => return refused(why),
    };
    let outcome = {
        let _slot = match state.limiter.slot(&attempt).await {
            Ok(slot) => slot,
            Err(why) => return refused(why),
        };
        // Counted only now, when the password is about to be checked: a
        // refusal before this point was no guess.
        if let Err(why) = attempt.charge() {
            return refused(why);
        }
        state
            .accounts
            .authenticate(name, &form.password)
            .await
            .map_err(internal)?
    };
    let user = match outcome {
        SignIn::Granted(user) => user,
        SignIn::WrongPassword => {
            // Debug-quoted: a name with a line break cannot forge a log line.
            tracing::info!(%ip, username = ?name, "login failed: wrong password");
            return Ok(page(StatusCode::UNAUTHORIZED, state.t.login_failed));
        }
        SignIn::Disabled => {
            tracing::info!(%ip, username = ?name, "login refused: the user is disabled");
            return Ok(page(StatusCode::UNAUTHORIZED, state.t.login_failed));
        }
        SignIn::UnknownUser => {
            // No such user: perhaps a password typed into the name box, so
            // only its length is logged.
            let unknown_name_chars = name.chars().count();
            tracing::info!(%ip, unknown_name_chars, "login failed: no such user");
            return Ok(page(StatusCode::UNAUTHORIZED, state.t.login_failed));
        }
    };
    let device = attempt.succeeded();
    drop(attempt);
    let session = state
        .accounts
        .open_session(user.id)
        .await
        .map_err(internal)?;
    tracing::info!(username = ?user.username, "signed in");
    // https as the client sees it (a trusted proxy's word), never a header from anyone.
    let cookie = Cookie::build(SESSION_COOKIE, session.id)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(client.https)
        .max_age(CookieDuration::seconds(SESSION_LIFE.as_secs() as i64))
        .finish();
    let device = Cookie::build(DEVICE_COOKIE, device)
        .path("/login")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(client.https)
        .max_age(CookieDuration::seconds(KNOWN_FOR.as_secs() as i64))
        .finish();
    let mut resp = see_other_with_cookie(&next, cookie);
    resp.add_cookie(&device)
        .map_err(|e| WebError::Internal(e.into()))?;
    Ok(resp)
}

#[derive(serde::Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf_token: String,
}

pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    user.check_csrf(&form.csrf_token)?;
    if let Some(cookie) = req.cookie(SESSION_COOKIE) {
        state
            .accounts
            .close_session(cookie.value())
            .await
            .map_err(internal)?;
    }
    let mut gone = Cookie::build(SESSION_COOKIE, "").path("/").finish();
    gone.make_removal();
    Ok(see_other_with_cookie("/login", gone))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_local_only() {
        assert_eq!(safe_next(Some("/admin?x=1")), "/admin?x=1");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil")), "/");
        assert_eq!(safe_next(Some("/\t/evil.example")), "/");
        assert_eq!(safe_next(Some("/\n/evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
