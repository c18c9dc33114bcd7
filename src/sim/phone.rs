//! The customer's phone: the list of payable orders, the scan screen, and "pay".

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;
use jiff::Timestamp;

use super::Simulator;
use super::ledger::{PayRefusal, SimOrder, SimTradeState};
use super::notify;
use crate::web::render::html;

/// One order as the phone shows it.
pub struct Row {
    pub out_trade_no: String,
    pub body: String,
    pub amount: String,
    pub code_url: String,
    pub seconds_left: i64,
    pub paid: bool,
    pub notified: bool,
}

impl Row {
    fn new(o: &SimOrder, now: Timestamp) -> Self {
        Row {
            out_trade_no: o.req.out_trade_no.to_string(),
            body: o.req.body.clone(),
            amount: o.req.total_fee.to_string(),
            code_url: o.code_url.clone(),
            seconds_left: o.payable_until().duration_since(now).as_secs().max(0),
            paid: matches!(o.state, SimTradeState::Paid(_)),
            notified: o.notify_acked,
        }
    }
}

#[derive(Template)]
#[template(path = "sim/phone.html")]
struct PhonePage {
    mch_id: String,
    payable: Vec<Row>,
    paid: Vec<Row>,
}

#[derive(Template)]
#[template(path = "sim/scan.html")]
struct ScanPage {
    row: Option<Row>,
    code_url: String,
    message: String,
}

#[derive(serde::Deserialize)]
pub struct CodeUrl {
    #[serde(default)]
    code_url: String,
}

pub async fn index(sim: web::Data<Simulator>) -> HttpResponse {
    let now = Timestamp::now();
    let (payable, paid) = {
        let ledger = sim.ledger();
        (
            ledger
                .payable(now)
                .iter()
                .map(|o| Row::new(o, now))
                .collect(),
            ledger
                .recently_paid(10)
                .iter()
                .map(|o| Row::new(o, now))
                .collect(),
        )
    };
    html(
        StatusCode::OK,
        &PhonePage {
            mch_id: sim.merchant().mch_id.clone(),
            payable,
            paid,
        },
    )
}

/// `/sim` without the slash: relative links need the directory form.
pub async fn add_slash(req: HttpRequest) -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header(("location", format!("{}/", req.path())))
        .finish()
}

pub async fn scan(sim: web::Data<Simulator>, q: web::Query<CodeUrl>) -> HttpResponse {
    let now = Timestamp::now();
    let order = sim.ledger().get_by_code_url(&q.code_url).cloned();
    let (status, message) = match &order {
        None => (StatusCode::NOT_FOUND, PayRefusal::Unknown.to_string()),
        Some(o) if matches!(o.state, SimTradeState::Paid(_)) => {
            (StatusCode::OK, PayRefusal::AlreadyPaid.to_string())
        }
        Some(o) if o.state == SimTradeState::Closed => {
            (StatusCode::OK, PayRefusal::Closed.to_string())
        }
        Some(o) if !o.is_payable(now) => (StatusCode::OK, PayRefusal::Expired.to_string()),
        Some(_) => (StatusCode::OK, String::new()),
    };
    html(
        status,
        &ScanPage {
            row: order.as_ref().map(|o| Row::new(o, now)),
            code_url: q.code_url.clone(),
            message,
        },
    )
}

pub async fn pay(
    req: HttpRequest,
    sim: web::Data<Simulator>,
    form: web::Form<CodeUrl>,
) -> HttpResponse {
    if !crate::web::origin::same_origin(&req) {
        return super::cross_site();
    }
    let now = Timestamp::now();
    let result = sim.ledger().pay(&form.code_url, now);
    let (status, row, message) = match result {
        Ok(order) => {
            tracing::info!(out_trade_no = %order.req.out_trade_no, "sim: paid");
            notify::dispatch_payment(&sim, &order);
            (
                StatusCode::OK,
                Some(Row::new(&order, now)),
                "支付成功 / Paid".to_string(),
            )
        }
        Err(refusal) => {
            let status = match refusal {
                PayRefusal::Unknown => StatusCode::NOT_FOUND,
                PayRefusal::AlreadyPaid => StatusCode::CONFLICT,
                PayRefusal::Closed | PayRefusal::Expired => StatusCode::GONE,
            };
            let row = sim
                .ledger()
                .get_by_code_url(&form.code_url)
                .map(|o| Row::new(o, now));
            (status, row, refusal.to_string())
        }
    };
    html(
        status,
        &ScanPage {
            row,
            code_url: form.code_url.clone(),
            message,
        },
    )
}

/// The pages' stylesheet, beside them (relative `sim.css`) so it works at `/sim/`
/// and at the root of `scanpay sim` alike; a file rather than inline `<style>`
/// so the pages keep the Content-Security-Policy `style-src 'self'`.
pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=300"))
        .body(&include_bytes!("../../static/sim.css")[..])
}
