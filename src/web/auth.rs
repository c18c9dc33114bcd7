//! Login, logout, the session cookie, roles, CSRF tokens and the login rate limit.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use askama::Template;
use subtle::ConstantTimeEq;

use super::AppState;
use super::client::ClientInfo;
use super::error::WebError;
use super::i18n::Texts;
use super::respond::see_other_with_cookie;
use crate::accounts::{AccountError, SESSION_LIFE, SessionUser};
use crate::lock::LockExt;
use crate::render::html;
use crate::role::Role;

pub const SESSION_COOKIE: &str = "scanpay_session";
/// Failed logins allowed per IP per window.
const MAX_FAILURES: u32 = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(300);

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
                None => {
                    let next = match req.query_string() {
                        "" => req.path().to_string(),
                        q => format!("{}?{q}", req.path()),
                    };
                    Err(WebError::LoginRequired { next })
                }
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

/// Password checks run at once, whoever asks: each argon2 check holds 19 MiB
/// and a core, so a burst of logins must queue rather than exhaust memory.
const MAX_CONCURRENT_HASHES: usize = 2;

/// Failed logins per client IP in a sliding window, and the password-check slots.
pub struct LoginLimiter {
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    hashing: tokio::sync::Semaphore,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter {
            failures: Mutex::default(),
            hashing: tokio::sync::Semaphore::new(MAX_CONCURRENT_HASHES),
        }
    }
}

impl LoginLimiter {
    fn blocked(&self, ip: IpAddr) -> bool {
        let map = self.failures.lock_or_recover();
        map.get(&bucket(ip))
            .is_some_and(|(n, since)| *n >= MAX_FAILURES && since.elapsed() < FAILURE_WINDOW)
    }

    fn fail(&self, ip: IpAddr) {
        let mut map = self.failures.lock_or_recover();
        if map.len() > 10_000 {
            map.retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
        }
        let entry = map.entry(bucket(ip)).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= FAILURE_WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    fn succeed(&self, ip: IpAddr) {
        self.failures.lock_or_recover().remove(&bucket(ip));
    }
}

/// The rate-limit bucket of a client: its IPv4 address, or its IPv6 /64 (one
/// subscriber gets a whole /64, so single addresses would be free for the taking).
fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let mut s = v6.segments();
            s[4..].fill(0);
            IpAddr::from(s)
        }
        v4 => v4,
    }
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
    shop_name: &'a str,
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
            shop_name: &state.shop_name,
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
                shop_name: &state.shop_name,
                username: &form.username,
                next: &next,
                error: Some(error),
            },
        )
    };
    if state.limiter.blocked(ip) {
        tracing::warn!(%ip, "login refused: too many failures");
        return Ok(page(
            StatusCode::TOO_MANY_REQUESTS,
            state.t.too_many_attempts,
        ));
    }
    let user = {
        // The semaphore is never closed, so acquiring only waits.
        let _slot = state.limiter.hashing.acquire().await;
        state
            .accounts
            .authenticate(form.username.trim(), &form.password)
            .await
            .map_err(internal)?
    };
    let Some(user) = user else {
        state.limiter.fail(ip);
        tracing::info!(%ip, username = %form.username, "login failed");
        return Ok(page(StatusCode::UNAUTHORIZED, state.t.login_failed));
    };
    state.limiter.succeed(ip);
    let session = state
        .accounts
        .open_session(user.id)
        .await
        .map_err(internal)?;
    tracing::info!(username = %user.username, "signed in");
    // https as the client sees it (a trusted proxy's word), never a header from anyone.
    let cookie = Cookie::build(SESSION_COOKIE, session.id)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(client.https)
        .max_age(CookieDuration::seconds(SESSION_LIFE.as_secs() as i64))
        .finish();
    Ok(see_other_with_cookie(&next, cookie))
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

    #[test]
    fn limiter_blocks_after_repeated_failures() {
        let l = LoginLimiter::default();
        let ip = IpAddr::from([10, 0, 0, 1]);
        for _ in 0..MAX_FAILURES {
            assert!(!l.blocked(ip));
            l.fail(ip);
        }
        assert!(l.blocked(ip));
        assert!(!l.blocked(IpAddr::from([10, 0, 0, 2])));
        l.succeed(ip);
        assert!(!l.blocked(ip));
    }

    #[test]
    fn an_ipv6_client_is_limited_by_its_slash_64() {
        let l = LoginLimiter::default();
        for i in 0..MAX_FAILURES {
            l.fail(IpAddr::from([0x2001, 0xdb8, 1, 2, 0, 0, 0, i as u16]));
        }
        assert!(l.blocked("2001:db8:1:2:ffff::1".parse().unwrap()));
        assert!(!l.blocked("2001:db8:1:3::1".parse().unwrap()));
    }
}
