//! `GET /admin/webhooks`: where each owner's webhook delivery stands
//! (pending with its next attempt, delivered, or given up after 24 hours).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::base::http::redact_url;
use crate::jobs::webhooks::shown;
use crate::store::outbox::DeliveryState;
use crate::store::reports;
use crate::values::shop_time::shop_time;
use crate::web::auth::CurrentUser;
use crate::web::error::WebError;
use crate::web::i18n::Texts;
use crate::web::render::html;
use crate::web::{AppState, Layout};

/// Deliveries listed, newest first.
const LISTED: usize = 200;

/// The page's own words, beside `Texts`.
struct WebhookTexts {
    title: &'static str,
    pending: &'static str,
    delivered: &'static str,
    given_up: &'static str,
    queued: &'static str,
    given_up_alert: &'static str,
    event: &'static str,
    at: &'static str,
    attempts: &'static str,
    last: &'static str,
    next_attempt: &'static str,
    none: &'static str,
}

static ZH: WebhookTexts = WebhookTexts {
    title: "Webhook 推送",
    pending: "待重试",
    delivered: "已送达",
    given_up: "已放弃",
    queued: "排队中",
    given_up_alert: "条推送连续失败 24 小时后已放弃。",
    event: "事件",
    at: "发生时间",
    attempts: "尝试次数",
    last: "最近结果",
    next_attempt: "下次尝试",
    none: "还没有推送（设置 notify.webhook_urls 后，每笔收款都会推送）。",
};

static EN: WebhookTexts = WebhookTexts {
    title: "Webhooks",
    pending: "pending",
    delivered: "delivered",
    given_up: "given up",
    queued: "queued",
    given_up_alert: "given up after 24 hours of failed attempts.",
    event: "event",
    at: "at",
    attempts: "attempts",
    last: "last answer",
    next_attempt: "next attempt",
    none: "Nothing sent yet (set notify.webhook_urls and each payment is posted).",
};

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
    let w: &'static WebhookTexts = if state.t.lang == "en" { &EN } else { &ZH };
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
