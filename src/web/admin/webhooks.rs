//! `GET /admin/webhooks`: where each owner's webhook delivery stands
//! (pending with its next attempt, delivered, or given up after 24 hours).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::render::html;
use crate::shop_time::shop_time;
use crate::store::outbox;
use crate::web::auth::CurrentUser;
use crate::web::error::WebError;
use crate::web::i18n::Texts;
use crate::web::{AppState, Layout};
use crate::webhooks::{redact_url, shown};

/// Deliveries listed, newest first.
const LISTED: usize = 200;

struct Row {
    event: &'static str,
    event_id: String,
    order_no: String,
    amount: String,
    at: String,
    url: String,
    state: &'static str,
    attempts: i64,
    last: String,
    next_attempt: String,
    delivered_at: String,
}

#[derive(Template)]
#[template(path = "admin/webhooks.html")]
struct WebhooksPage<'a> {
    t: &'static Texts,
    layout: Layout<'a>,
    username: &'a str,
    csrf_token: &'a str,
    pending: i64,
    delivered: i64,
    given_up: i64,
    waiting: i64,
    rows: Vec<Row>,
}

pub async fn webhooks(
    state: web::Data<AppState>,
    user: CurrentUser,
) -> Result<HttpResponse, WebError> {
    user.require_admin()?;
    let (counts, list) = state
        .checkout
        .read_model()
        .read(|c| Ok((outbox::counts(c)?, outbox::recent(c, LISTED)?)))
        .await?;
    let tz = &state.tz;
    let rows = list
        .into_iter()
        .map(|d| Row {
            event: d.event.kind.as_str(),
            event_id: d.event.event_id,
            order_no: d.event.order_no.map(|n| n.to_string()).unwrap_or_default(),
            amount: d.event.amount.to_string(),
            at: shop_time(tz, d.event.at),
            url: redact_url(&d.url),
            state: d.state.as_str(),
            attempts: d.attempts,
            last: match (d.last_status, d.last_error) {
                (_, Some(e)) => e,
                (Some(s), None) => format!("HTTP {s}"),
                (None, None) => String::new(),
            },
            next_attempt: shown(tz, d.next_attempt_at),
            delivered_at: shown(tz, d.delivered_at),
        })
        .collect();
    let (pending, delivered, given_up, waiting) = counts;
    let page = WebhooksPage {
        t: state.t,
        layout: state.layout(),
        username: &user.0.username,
        csrf_token: &user.0.csrf_token,
        pending,
        delivered,
        given_up,
        waiting,
        rows,
    };
    Ok(html(StatusCode::OK, &page))
}
