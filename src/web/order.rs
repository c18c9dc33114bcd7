//! The customer's order page and what hangs off it: QR image, status JSON,
//! print page, cancel and retry.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::auth::{CsrfForm, CurrentUser, MaybeUser};
use super::error::WebError;
use super::i18n::Texts;
use super::respond::{etag_response, see_other};
use super::{AppState, Layout};
use crate::checkout::OrderView;
use crate::values::clock::Millis;
use crate::values::order::{OrderState, OrderToken};
use crate::values::shop_time::shop_time;
use crate::web::render::html;

/// `GET /o/{token}/status`, also each SSE event's data.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Status {
    pub state: OrderState,
    pub amount_fen: i64,
    pub order_no: String,
    pub out_trade_no: Option<String>,
    pub qr_version: Option<i64>,
    pub qr_expires_at: Option<String>,
    pub paid_at: Option<String>,
    /// `creating`, `failed`, `open`, …: whether a QR can be shown now.
    pub qr_state: Option<&'static str>,
    pub qr_error: Option<String>,
    pub late: bool,
    pub double_paid: bool,
    /// What went back to the customer, in fen (succeeded refunds).
    pub refunded_fen: i64,
    /// What the customer paid, in fen: every payment (a double payment
    /// counts twice), what `refunded_fen` is held against.
    pub paid_fen: i64,
}

/// Who reads an order. Staff see the gateway's diagnostics, which only they can
/// act on; a customer reads a translated, generic reason instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    Staff,
    Customer,
}

impl Reader {
    pub fn of(user: &MaybeUser) -> Reader {
        if user.0.is_some() {
            Reader::Staff
        } else {
            Reader::Customer
        }
    }
}

/// The order behind a link, through the domain; junk tokens never reach a query.
pub async fn load(state: &AppState, token: &str) -> Result<OrderView, WebError> {
    let token = OrderToken::parse(token).ok_or(WebError::NotFound)?;
    Ok(state.checkout.order_view(&token).await?)
}

fn rfc3339(at: Millis) -> String {
    at.to_timestamp().to_string()
}

impl OrderView {
    /// What `/status` and each SSE event say of the order to `reader`.
    pub fn status(&self, t: &Texts, reader: Reader) -> Status {
        let v = self;
        let o = &v.order;
        Status {
            state: o.state,
            amount_fen: o.amount.get(),
            order_no: o.order_no.to_string(),
            out_trade_no: v.qr.as_ref().map(|q| q.out_trade_no.to_string()),
            qr_version: v.qr.as_ref().map(|q| q.version),
            qr_expires_at: v.qr.as_ref().map(|q| rfc3339(q.display_until)),
            paid_at: o.paid_at.map(rfc3339),
            qr_state: v.qr.as_ref().map(|q| q.state.as_str()),
            qr_error: v.qr_error(t, reader),
            late: o.late,
            double_paid: o.double_paid,
            refunded_fen: v.refunded.get(),
            paid_fen: v.paid.get(),
        }
    }
}

impl OrderView {
    /// Why the current QR could not be created, as `reader` may read it.
    fn qr_error(&self, t: &Texts, reader: Reader) -> Option<String> {
        if !self.qr_failed() {
            return None;
        }
        match reader {
            Reader::Staff => self.qr.as_ref().and_then(|q| q.last_error.clone()),
            Reader::Customer => Some(t.qr_failed_customer.to_string()),
        }
    }
}

#[derive(Template)]
#[template(path = "order.html")]
struct OrderPage<'a> {
    t: &'static Texts,
    layout: Layout<'a>,
    token: &'a str,
    v: &'a OrderView,
    state: &'static str,
    amount: String,
    seconds_left: i64,
    qr_version: i64,
    paid_at: String,
    qr_error: Option<String>,
    csrf_token: Option<&'a str>,
    /// 已退款 / 部分退款, or empty.
    refunded: &'static str,
}

pub async fn page(
    state: web::Data<AppState>,
    path: web::Path<String>,
    user: MaybeUser,
) -> Result<HttpResponse, WebError> {
    let v = load(&state, &path).await?;
    let qr = v.scannable();
    let page = OrderPage {
        t: state.t,
        layout: state.layout(),
        token: &path,
        state: state.t.order_state(v.order.state),
        amount: v.order.amount.to_string(),
        seconds_left: qr.map(|q| v.seconds_until(q.display_until)).unwrap_or(0),
        qr_version: qr.map(|q| q.version).unwrap_or(0),
        paid_at: v
            .order
            .paid_at
            .map(|p| shop_time(&state.tz, p))
            .unwrap_or_default(),
        qr_error: v.qr_error(state.t, Reader::of(&user)),
        csrf_token: user.0.as_ref().map(|u| u.csrf_token.as_str()),
        refunded: super::admin::refunded_text(state.t, &v),
        v: &v,
    };
    Ok(html(StatusCode::OK, &page))
}

pub async fn status(
    state: web::Data<AppState>,
    path: web::Path<String>,
    user: MaybeUser,
) -> Result<HttpResponse, WebError> {
    let v = load(&state, &path).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(v.status(state.t, Reader::of(&user))))
}

#[derive(serde::Deserialize)]
pub struct SizeQuery {
    size: Option<u32>,
}

pub async fn qr_png(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<SizeQuery>,
) -> Result<HttpResponse, WebError> {
    let token = OrderToken::parse(&path).ok_or(WebError::NotFound)?;
    let size = crate::web::qr::clamp_size(q.size);
    // The hot path: an order's QR is shown (and re-fetched) many times while it
    // is scannable; memory answers until the hub says the order changed.
    if let Some((out_trade_no, png)) = state.qr_cache.cached(token.as_str(), size) {
        return Ok(png_response(&req, &out_trade_no, size, png));
    }
    let seen = state.qr_cache.generation();
    let v = load(&state, &path).await?;
    let qr = v.scannable().ok_or(WebError::NotFound)?;
    let code_url = qr.code_url.as_deref().ok_or(WebError::NotFound)?;
    let png = state
        .qr_cache
        .get_or_render(code_url, size)
        .map_err(|e| WebError::Internal(e.into()))?;
    state.qr_cache.remember(
        token.as_str(),
        crate::web::qr::Scannable {
            out_trade_no: qr.out_trade_no.to_string(),
            code_url: code_url.to_string(),
        },
        seen,
    );
    Ok(png_response(&req, qr.out_trade_no.as_str(), size, png))
}

/// The PNG, or 304 when the browser already has this QR at this size.
fn png_response(
    req: &HttpRequest,
    out_trade_no: &str,
    size: u32,
    png: bytes::Bytes,
) -> HttpResponse {
    etag_response(req, &format!("\"{out_trade_no}-{size}\""), |mut ok| {
        ok.content_type("image/png")
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .body(png)
    })
}

#[derive(Template)]
#[template(path = "print.html")]
struct PrintPage<'a> {
    t: &'static Texts,
    layout: Layout<'a>,
    token: &'a str,
    v: &'a OrderView,
    state: &'static str,
    amount: String,
    qr_version: i64,
    /// What the paper says of its QR: until when it can be paid, and how long that is.
    payable_until: String,
    /// Until the QR is replaced (the page then shows the new one, or the outcome).
    seconds_left: i64,
    /// The receipt, once paid.
    paid_at: String,
    refunded: String,
}

pub async fn print(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let v = load(&state, &path).await?;
    let qr = v.scannable();
    // A NATIVE code lives at most two hours, and scanpay replaces (and closes)
    // it when its screen life ends: the paper says so, in the shop's time.
    let seconds_left = qr.map(|q| v.seconds_until(q.display_until)).unwrap_or(0);
    let payable_until = qr
        .map(|q| {
            state
                .t
                .print_payable_until
                .replace("{time}", &shop_time(&state.tz, q.display_until))
                .replace("{minutes}", &((seconds_left + 59) / 60).to_string())
        })
        .unwrap_or_default();
    let page = PrintPage {
        t: state.t,
        layout: state.layout(),
        token: &path,
        state: state.t.order_state(v.order.state),
        amount: v.order.amount.to_string(),
        qr_version: qr.map(|q| q.version).unwrap_or(0),
        payable_until,
        seconds_left,
        paid_at: v
            .order
            .paid_at
            .map(|p| shop_time(&state.tz, p))
            .unwrap_or_default(),
        refunded: if v.refunded.get() > 0 {
            v.refunded.to_string()
        } else {
            String::new()
        },
        v: &v,
    };
    Ok(html(StatusCode::OK, &page))
}

pub async fn cancel(
    state: web::Data<AppState>,
    path: web::Path<String>,
    user: CurrentUser,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    user.check_csrf(&form.csrf_token)?;
    let token = OrderToken::parse(&path).ok_or(WebError::NotFound)?;
    state.checkout.cancel(&token, &user.0.username).await?;
    Ok(see_other(&format!("/o/{}", path.as_str())))
}

pub async fn retry(
    state: web::Data<AppState>,
    path: web::Path<String>,
    user: CurrentUser,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    user.check_csrf(&form.csrf_token)?;
    let token = OrderToken::parse(&path).ok_or(WebError::NotFound)?;
    state.checkout.retry(&token).await?;
    Ok(see_other(&format!("/o/{}", path.as_str())))
}
