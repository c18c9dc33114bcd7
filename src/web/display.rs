//! The counter's pages (SPEC §10): the customer display `GET /display/{token}`
//! (no login: the token is the key) and its event stream, the cashier's
//! pairing page `GET /display`, and the live feeds both share.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use base64::Engine;
use bytes::Bytes;
use futures_util::future::{BoxFuture, FutureExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use super::auth::{CsrfForm, CurrentUser};
use super::client::ClientInfo;
use super::error::WebError;
use super::events::{busy, event, sse_response};
use super::i18n::Texts;
use super::respond::see_other;
use super::{AppState, Layout};
use crate::checkout::OrderView;
use crate::checkout::counter::{DisplayToken, DisplayView};
use crate::checkout::hub::Subscription;
use crate::config::Language;
use crate::values::clock::Millis;
use crate::values::order::{OrderState, OrderToken, UserId};
use crate::values::shop_time::shop_time;
use crate::web::i18n::counter::CounterTexts;
use crate::web::render::html;

const KEEP_ALIVE: Duration = Duration::from_secs(15);
const KEEP_ALIVE_COMMENT: &[u8] = b": keep-alive\n\n";
/// The display's QR, drawn large: a tablet's short side.
const DISPLAY_QR_PX: u32 = 640;
/// A payment is announced by pages that learn of it this long after it (a
/// page opened later, or reconnecting, still says it once; see `counter.js`).
pub const ANNOUNCE_WITHIN: Duration = Duration::from_secs(60);

/// What the display shows, as its page is rendered and as each event says it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DisplayStatus {
    /// `disconnected`, `idle`, `preparing`, `open`, `paid`, `expired`, `cancelled`.
    pub mode: &'static str,
    pub amount: String,
    pub description: String,
    /// The QR image of the order shown (its customer link's image).
    pub qr: Option<String>,
    pub qr_version: i64,
    /// Seconds this QR stays on screen, counted when the event was written.
    pub seconds_left: i64,
    /// For `paid`: what to say, once per `id`.
    pub announce: Option<Announce>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Announce {
    pub id: String,
    pub text: String,
}

impl DisplayStatus {
    fn of(view: &DisplayView, lang: Language) -> DisplayStatus {
        let blank = |mode| DisplayStatus {
            mode,
            amount: String::new(),
            description: String::new(),
            qr: None,
            qr_version: 0,
            seconds_left: 0,
            announce: None,
        };
        let v: &OrderView = match view {
            DisplayView::Disconnected => return blank("disconnected"),
            DisplayView::Idle => return blank("idle"),
            DisplayView::Order(v) => v,
        };
        let o = &v.order;
        let qr = v.scannable();
        let mode = match o.state {
            OrderState::Open if qr.is_some() => "open",
            OrderState::Open => "preparing",
            OrderState::Paid => "paid",
            OrderState::Expired => "expired",
            OrderState::Cancelled => "cancelled",
        };
        DisplayStatus {
            mode,
            amount: o.amount.to_string(),
            description: o.description.clone(),
            qr: qr.map(|q| format!("/o/{}/qr.png?size={DISPLAY_QR_PX}&v={}", o.token, q.version)),
            qr_version: qr.map(|q| q.version).unwrap_or(0),
            seconds_left: qr.map(|q| v.seconds_until(q.display_until)).unwrap_or(0),
            announce: (o.state == OrderState::Paid).then(|| Announce {
                id: o.order_no.to_string(),
                text: crate::web::i18n::speech::announcement(lang, o.amount),
            }),
        }
    }

    /// What decides whether an event is news (the countdown moves by itself).
    fn key(&self) -> String {
        format!(
            "{}|{}|{:?}|{}",
            self.mode, self.amount, self.qr, self.description
        )
    }
}

#[derive(Template)]
#[template(path = "display.html")]
struct DisplayPage<'a> {
    t: &'static Texts,
    ct: &'static CounterTexts,
    layout: Layout<'a>,
    token: &'a str,
    s: DisplayStatus,
}

/// `GET /display/{display_token}`: the customer display. An unknown token is
/// 404; a revoked one shows "disconnected".
pub async fn page(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let token = DisplayToken::parse(&path).ok_or(WebError::NotFound)?;
    if state.checkout.display_owner(&token).await?.is_none() {
        return Err(WebError::NotFound);
    }
    let view = state.checkout.display_view(&token).await?;
    let page = DisplayPage {
        t: state.t,
        ct: CounterTexts::of(state.t.language),
        layout: state.layout(),
        token: &path,
        s: DisplayStatus::of(&view, state.t.language),
    };
    let mut resp = html(StatusCode::OK, &page);
    // The link is the display's key: never kept by caches, never sent on as a referrer.
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    resp.headers_mut().insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    Ok(resp)
}

/// `GET /display/{display_token}/events`: the display's state on every change
/// of its cashier's counter or of the order it shows.
pub async fn events(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let token = DisplayToken::parse(&path).ok_or(WebError::NotFound)?;
    let owner = state
        .checkout
        .display_owner(&token)
        .await?
        .ok_or(WebError::NotFound)?;
    let lang = state.t.language;
    let feed = format!("display:{}", token.as_str());
    live_stream(&state, &feed, owner, move |state: web::Data<AppState>| {
        let token = token.clone();
        async move {
            let view = state.checkout.display_view(&token).await.ok()?;
            let s = DisplayStatus::of(&view, lang);
            let watch = match &view {
                DisplayView::Order(v) => vec![v.order.token.clone()],
                _ => Vec::new(),
            };
            Some(Reading {
                key: s.key(),
                payload: serde_json::to_string(&s).ok()?,
                watch,
                changes_at: view.changes_at(),
                last: matches!(view, DisplayView::Disconnected),
            })
        }
        .boxed()
    })
}

/// One read of a live feed: what to send, and what to wait on next.
pub struct Reading {
    /// Compared with the previous reading's: only news is sent.
    pub key: String,
    /// The event's data.
    pub payload: String,
    /// The orders whose changes change this reading.
    pub watch: Vec<OrderToken>,
    /// When this reading changes by itself (the domain's time).
    pub changes_at: Option<Millis>,
    /// Nothing will follow (a revoked display): the stream ends after it.
    pub last: bool,
}

type Read = dyn Fn(web::Data<AppState>) -> BoxFuture<'static, Option<Reading>> + Send + Sync;

/// An SSE stream of `read`'s readings for one cashier's counter: re-read on
/// every change of the cashier's feed or of the orders the last reading
/// watched, and when it said it would change by itself. Under the same caps
/// as the order streams (`http.max_event_streams`, and per feed as per order).
pub fn live_stream<F, Fut>(
    state: &web::Data<AppState>,
    feed: &str,
    cashier: UserId,
    read: F,
) -> Result<HttpResponse, WebError>
where
    F: Fn(web::Data<AppState>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<Reading>> + Send + 'static,
{
    let Some(permit) = state.streams.admit(feed) else {
        tracing::warn!("a counter event stream refused: the stream caps are reached");
        return Ok(busy());
    };
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    let read: Box<Read> = Box::new(move |s| read(s).boxed());
    // Subscribed before the first read, so no change between the two is missed.
    let counter = state.checkout.subscribe_cashier(cashier);
    tokio::spawn(pump(state.clone(), counter, read, tx));
    Ok(sse_response(rx, permit))
}

async fn pump(
    state: web::Data<AppState>,
    mut counter: Subscription<UserId>,
    read: Box<Read>,
    tx: mpsc::Sender<Bytes>,
) {
    let mut watched: HashMap<OrderToken, Subscription> = HashMap::new();
    let mut last_key: Option<String> = None;
    let mut keep_alive = tokio::time::interval_at(Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
    keep_alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    if tx.try_send(Bytes::from_static(b"retry: 2000\n\n")).is_err() {
        return;
    }
    loop {
        // Read until the orders it names are all watched (subscribed before the read that counts).
        let reading = loop {
            let Some(r) = read(state.clone()).await else {
                break None;
            };
            watched.retain(|t, _| r.watch.contains(t));
            let mut added = false;
            for t in &r.watch {
                if !watched.contains_key(t) {
                    watched.insert(t.clone(), state.checkout.subscribe(t));
                    added = true;
                }
            }
            if !added {
                break Some(r);
            }
        };
        let mut wake_at = None;
        if let Some(r) = reading {
            if last_key.as_deref() != Some(r.key.as_str()) {
                if tx.send(event(&r.payload)).await.is_err() {
                    return;
                }
                keep_alive.reset();
                last_key = Some(r.key);
            }
            if r.last {
                return;
            }
            wake_at = r.changes_at;
        }
        // `never` keeps the list non-empty when no order is watched.
        let orders = futures_util::future::select_all(
            watched
                .values_mut()
                .map(|s| s.changed().boxed())
                .chain(std::iter::once(never().boxed())),
        );
        tokio::select! {
            () = counter.changed() => {}
            _ = orders => {}
            () = sleep_until(state.checkout.clock(), wake_at) => {}
            _ = keep_alive.tick() => {
                if tx.send(Bytes::from_static(KEEP_ALIVE_COMMENT)).await.is_err() {
                    return;
                }
            }
            () = tx.closed() => return,
        }
    }
}

async fn never() {
    std::future::pending::<()>().await
}

/// Until `at` on the domain's clock (which a test may move by hand), or never.
async fn sleep_until(
    clock: &crate::values::clock::Clock,
    at: Option<crate::values::clock::Millis>,
) {
    match at {
        Some(at) => clock.sleep_until(at).await,
        None => never().await,
    }
}

#[derive(Template)]
#[template(path = "display_pair.html")]
struct PairPage<'a> {
    t: &'static Texts,
    ct: &'static CounterTexts,
    layout: Layout<'a>,
    username: &'a str,
    csrf_token: &'a str,
    paired_since: Option<String>,
    /// Right after pairing: the link and its QR (shown this once).
    link: Option<String>,
    link_qr: Option<String>,
}

fn cashier(user: &CurrentUser) -> UserId {
    UserId(user.0.user_id)
}

/// `GET /display`: the cashier's pairing page.
pub async fn pairing(
    state: web::Data<AppState>,
    user: CurrentUser,
) -> Result<HttpResponse, WebError> {
    let since = state.checkout.active_display(cashier(&user)).await?;
    let page = PairPage {
        t: state.t,
        ct: CounterTexts::of(state.t.language),
        layout: state.layout(),
        username: &user.0.username,
        csrf_token: &user.0.csrf_token,
        paired_since: since.map(|at| shop_time(&state.tz, at)),
        link: None,
        link_qr: None,
    };
    Ok(html(StatusCode::OK, &page))
}

/// `POST /display`: pairs a new display (the old one disconnects) and shows
/// its link and QR, this once: only the token's hash is kept.
pub async fn pair(
    req: HttpRequest,
    client: ClientInfo,
    state: web::Data<AppState>,
    user: CurrentUser,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    user.check_csrf(&form.csrf_token)?;
    let token = state.checkout.pair_display(cashier(&user)).await?;
    let scheme = if client.https { "https" } else { "http" };
    // The address the cashier's own browser used (forwarding headers are
    // `web::client`'s business alone; a wrong Host only misleads this cashier).
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| req.app_config().host().to_string());
    let link = format!("{scheme}://{host}/display/{}", token.as_str());
    let png = crate::web::qr::render_png(&link, 320).map_err(|e| WebError::Internal(e.into()))?;
    let link_qr = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    );
    let since = state.checkout.active_display(cashier(&user)).await?;
    let page = PairPage {
        t: state.t,
        ct: CounterTexts::of(state.t.language),
        layout: state.layout(),
        username: &user.0.username,
        csrf_token: &user.0.csrf_token,
        paired_since: since.map(|at| shop_time(&state.tz, at)),
        link: Some(link),
        link_qr: Some(link_qr),
    };
    let mut resp = html(StatusCode::OK, &page);
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

/// `POST /display/revoke`: the paired display shows "disconnected" at once.
pub async fn revoke(
    state: web::Data<AppState>,
    user: CurrentUser,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    user.check_csrf(&form.csrf_token)?;
    state.checkout.revoke_display(cashier(&user)).await?;
    Ok(see_other("/display"))
}
