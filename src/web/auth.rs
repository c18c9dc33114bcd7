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

use super::client::ClientInfo;
use super::error::WebError;
use super::i18n::Texts;
use super::respond::see_other_with_cookie;
use super::{AppState, Layout};
use crate::base::lock::LockExt;
use crate::checkout::accounts::{AccountError, SESSION_LIFE, SessionUser, SignIn};
use crate::values::role::Role;
use crate::web::render::html;

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

/// Password checks run at once, whoever asks: each argon2 check holds 19 MiB
/// and a core, so a burst of logins must queue rather than exhaust memory.
const MAX_CONCURRENT_HASHES: usize = 2;
/// Logins allowed to wait for a check; past it a login is refused at once
/// (so a burst never makes a staff member wait seconds behind it).
const MAX_WAITING: usize = 8;
/// Sign-ins from one address checked at the same time; more are refused at once.
const MAX_IN_FLIGHT_PER_ADDRESS: u32 = 2;
/// Failed sign-ins from one address, all user names together, in the window.
/// Higher than the per-name limit: a shop's staff share one address.
const MAX_ADDRESS_FAILURES: u32 = 3 * MAX_FAILURES;

/// Sign-in attempts in a sliding window, counted before the password is
/// checked (so a burst is refused before it is evaluated), by address and user
/// name together and by address alone. A success clears only its own
/// address-and-name count: one user's success never clears another's failures.
pub struct LoginLimiter {
    failures: Mutex<Failures>,
    hashing: tokio::sync::Semaphore,
    waiting: std::sync::atomic::AtomicUsize,
}

#[derive(Default)]
struct Failures {
    by_name: HashMap<(IpAddr, String), (u32, Instant)>,
    by_address: HashMap<IpAddr, (u32, Instant)>,
    in_flight: HashMap<IpAddr, u32>,
}

/// One counted attempt; while it lives its address has one more check in flight.
struct Attempt<'a> {
    limiter: &'a LoginLimiter,
    ip: IpAddr,
}

impl Attempt<'_> {
    /// The password was right: it is not a failure, and that name's failures
    /// from that address are forgiven (nothing else is).
    fn succeeded(&self, name: &str) {
        let mut f = self.limiter.failures.lock_or_recover();
        f.by_name.remove(&(self.ip, name.to_lowercase()));
        if let Some(e) = f.by_address.get_mut(&self.ip) {
            e.0 = e.0.saturating_sub(1);
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        let mut f = self.limiter.failures.lock_or_recover();
        if let Some(n) = f.in_flight.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                f.in_flight.remove(&self.ip);
            }
        }
    }
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter {
            failures: Mutex::default(),
            hashing: tokio::sync::Semaphore::new(MAX_CONCURRENT_HASHES),
            waiting: Default::default(),
        }
    }
}

/// Why a sign-in was refused before its password was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    TooManyFailures,
    Busy,
}

/// Counts one attempt in a window, restarting an expired one; the count before.
fn count(entry: &mut (u32, Instant)) -> u32 {
    if entry.1.elapsed() >= FAILURE_WINDOW {
        *entry = (0, Instant::now());
    }
    entry.0 += 1;
    entry.0 - 1
}

impl LoginLimiter {
    /// Counts an attempt before its check, or refuses it.
    fn begin(&self, ip: IpAddr, name: &str) -> Result<Attempt<'_>, Refusal> {
        let mut f = self.failures.lock_or_recover();
        if f.by_name.len() > 10_000 || f.by_address.len() > 10_000 {
            f.by_name
                .retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
            f.by_address
                .retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
        }
        let key = (bucket(ip), name.to_lowercase());
        let now = Instant::now();
        let live = |e: Option<&(u32, Instant)>, max| {
            e.is_some_and(|(n, since)| *n >= max && since.elapsed() < FAILURE_WINDOW)
        };
        if live(f.by_name.get(&key), MAX_FAILURES)
            || live(f.by_address.get(&key.0), MAX_ADDRESS_FAILURES)
        {
            return Err(Refusal::TooManyFailures);
        }
        let in_flight = f.in_flight.entry(key.0).or_insert(0);
        if *in_flight >= MAX_IN_FLIGHT_PER_ADDRESS {
            return Err(Refusal::Busy);
        }
        *in_flight += 1;
        count(f.by_address.entry(key.0).or_insert((0, now)));
        let ip = key.0;
        count(f.by_name.entry(key).or_insert((0, now)));
        Ok(Attempt { limiter: self, ip })
    }

    /// Waits for a password-check slot, or refuses at once when too many wait.
    async fn slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, Refusal> {
        use std::sync::atomic::Ordering;
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(Refusal::Busy);
        }
        let permit = self.hashing.acquire().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        // The semaphore is never closed.
        permit.map_err(|_| Refusal::Busy)
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
        };
        Ok(page(StatusCode::TOO_MANY_REQUESTS, text))
    };
    let attempt = match state.limiter.begin(ip, name) {
        Ok(attempt) => attempt,
        Err(why) => return refused(why),
    };
    let outcome = {
        let _slot = match state.limiter.slot().await {
            Ok(slot) => slot,
            Err(why) => return refused(why),
        };
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
    attempt.succeeded(name);
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
            assert!(l.begin(ip, "admin").is_ok());
        }
        let refused = |name| l.begin(ip, name).err();
        assert_eq!(
            refused("admin"),
            Some(Refusal::TooManyFailures),
            "counted before any check"
        );
        assert_eq!(
            refused("ADMIN"),
            Some(Refusal::TooManyFailures),
            "names fold case"
        );
        assert!(l.begin(IpAddr::from([10, 0, 0, 2]), "admin").is_ok());
        // The cashier signs in from the same address: the admin guesses stay counted.
        l.begin(ip, "cashier").unwrap().succeeded("cashier");
        assert_eq!(refused("admin"), Some(Refusal::TooManyFailures));
    }

    #[test]
    fn a_success_forgives_only_its_own_name() {
        let l = LoginLimiter::default();
        let ip = IpAddr::from([10, 0, 0, 3]);
        for _ in 0..3 {
            drop(l.begin(ip, "admin").unwrap());
            drop(l.begin(ip, "cashier").unwrap());
        }
        l.begin(ip, "admin").unwrap().succeeded("admin");
        let f = l.failures.lock_or_recover();
        assert!(!f.by_name.contains_key(&(ip, "admin".into())));
        assert_eq!(f.by_name[&(ip, "cashier".into())].0, 3);
        assert_eq!(
            f.by_address[&ip].0, 6,
            "the success itself is not a failure"
        );
    }

    #[test]
    fn one_address_has_a_ceiling_over_all_names() {
        let l = LoginLimiter::default();
        let ip = IpAddr::from([10, 0, 0, 9]);
        for i in 0..MAX_ADDRESS_FAILURES {
            assert!(l.begin(ip, &format!("user{}", i % 5)).is_ok());
        }
        assert_eq!(
            l.begin(ip, "someone-new").err(),
            Some(Refusal::TooManyFailures)
        );
    }

    #[test]
    fn one_address_has_only_two_checks_in_flight() {
        let l = LoginLimiter::default();
        let ip = IpAddr::from([10, 0, 0, 7]);
        let a = l.begin(ip, "a").unwrap();
        let _b = l.begin(ip, "b").unwrap();
        assert_eq!(
            l.begin(ip, "c").err(),
            Some(Refusal::Busy),
            "refused, not queued"
        );
        assert!(
            l.begin(IpAddr::from([10, 0, 0, 8]), "c").is_ok(),
            "another address is not"
        );
        drop(a);
        assert!(l.begin(ip, "c").is_ok(), "room again once one is checked");
    }

    #[tokio::test]
    async fn past_the_waiting_room_a_login_is_refused_at_once() {
        let l = LoginLimiter::default();
        let held: Vec<_> =
            futures_util::future::join_all((0..MAX_CONCURRENT_HASHES).map(|_| l.slot()))
                .await
                .into_iter()
                .map(Result::unwrap)
                .collect();
        l.waiting
            .store(MAX_WAITING, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(l.slot().await.err(), Some(Refusal::Busy));
        drop(held);
    }

    #[test]
    fn an_ipv6_client_is_limited_by_its_slash_64() {
        let l = LoginLimiter::default();
        for i in 0..MAX_FAILURES {
            let ip = IpAddr::from([0x2001, 0xdb8, 1, 2, 0, 0, 0, i as u16]);
            assert!(l.begin(ip, "admin").is_ok());
        }
        let same_64 = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert_eq!(
            l.begin(same_64, "admin").err(),
            Some(Refusal::TooManyFailures)
        );
        assert!(l.begin("2001:db8:1:3::1".parse().unwrap(), "admin").is_ok());
    }
}
