//! `GET /admin/webhooks`: where each owner's webhook delivery stands
//! (pending with its next attempt, delivered, or given up after 24 hours).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::base::http::redact_url;
use crate::store::outbox::DeliveryState;
use crate::store::reports;
use crate::values::clock::Millis;
use crate::values::shop_time::shop_time;
use crate::web::auth::CurrentUser;
use crate::web::error::WebError;
use crate::web::i18n::Texts;
use crate::web::i18n::webhooks::WebhookTexts;
use crate::web::render::html;
use crate::web::{AppState, Layout};

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
    state_label: &'static str,
    attempts: i64,
    last: String,
    next_attempt: String,
    delivered_at: String,
}

#[derive(Template)]
#[template(path = "admin/webhooks.html")]
struct WebhooksPage<'a> {
    t: &'static Texts,
    w: &'static WebhookTexts,
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
    let deliveries = state
        .checkout
        .read_model()
        .read(|c| reports::deliveries(c, LISTED))
        .await?;
    let tz = &state.tz;
    let w = WebhookTexts::of(state.t.language);
    let rows = deliveries
        .recent
        .into_iter()
        .map(|d| Row {
            event: d.event.kind.as_str(),
            event_id: d.event.event_id,
            order_no: d.event.order_no.map(|n| n.to_string()).unwrap_or_default(),
            amount: d.event.amount.to_string(),
            at: shop_time(tz, d.event.at),
            url: redact_url(&d.url),
            state: d.state.as_str(),
            state_label: match d.state {
                DeliveryState::Pending => w.pending,
                DeliveryState::Delivered => w.delivered,
                DeliveryState::GivenUp => w.given_up,
            },
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
    let reports::Deliveries {
        pending,
        delivered,
        given_up,
        waiting,
        ..
    } = deliveries;
    let page = WebhooksPage {
        t: state.t,
        w,
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

/// When a delivery's next attempt is, as the admin page shows it.
fn shown(tz: &jiff::tz::TimeZone, at: Option<Millis>) -> String {
    at.map(|a| shop_time(tz, a)).unwrap_or_default()
}
