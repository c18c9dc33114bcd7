//! `GET /admin/reconciliation` (one row per day checked), and
//! `GET /admin/reconciliation/{date}` (every difference of that day, with links
//! to our orders) or `…/{date}.csv`. Read through the domain; nothing here writes.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use super::csv::{csv_download, csv_start, push_record};
use crate::store::bills::{DayRow, DifferenceRow};
use crate::values::books::{DayState, DifferenceKind};
use crate::values::clock::Millis;
use crate::values::money::Fen;
use crate::values::money::millifen_to_fen;
use crate::values::order::OrderNo;
use crate::values::shop_time::shop_time;
use crate::values::trade::{OutRefundNo, TransactionId};
use crate::web::auth::CurrentUser;
use crate::web::error::WebError;
use crate::web::i18n::Texts;
use crate::web::render::html;
use crate::web::{AppState, Layout};

/// About a year of days on one page.
const DAYS_SHOWN: usize = 400;

#[derive(Template)]
#[template(path = "admin/reconciliation.html")]
struct DaysPage<'a> {
    t: &'static Texts,
    layout: Layout<'a>,
    username: &'a str,
    csrf_token: &'a str,
    days: Vec<DayRow>,
    tz: &'a TimeZone,
}

impl DaysPage<'_> {
    fn state(&self, s: &DayState) -> &'static str {
        self.t.day_state(*s)
    }

    fn fees(&self, millifen: &i64) -> Fen {
        millifen_to_fen(*millifen)
    }

    fn time(&self, at: &Millis) -> String {
        shop_time(self.tz, *at)
    }
}

pub async fn days(state: web::Data<AppState>, user: CurrentUser) -> Result<HttpResponse, WebError> {
    user.require_admin()?;
    let days = state.checkout.reconciled_days(DAYS_SHOWN).await?;
    Ok(html(
        StatusCode::OK,
        &DaysPage {
            t: state.t,
            layout: state.layout(),
            username: &user.0.username,
            csrf_token: &user.0.csrf_token,
            days,
            tz: &state.tz,
        },
    ))
}

#[derive(Template)]
#[template(path = "admin/reconciliation_day.html")]
struct DayPage<'a> {
    t: &'static Texts,
    layout: Layout<'a>,
    username: &'a str,
    csrf_token: &'a str,
    day: DayRow,
    differences: Vec<DifferenceRow>,
    tz: &'a TimeZone,
}

impl DayPage<'_> {
    fn state(&self, s: &DayState) -> &'static str {
        self.t.day_state(*s)
    }

    fn kind(&self, k: &DifferenceKind) -> &'static str {
        self.t.difference_kind(*k)
    }

    fn fees(&self, millifen: &i64) -> Fen {
        millifen_to_fen(*millifen)
    }

    fn time(&self, at: &Millis) -> String {
        shop_time(self.tz, *at)
    }
}

/// `{date}` or `{date}.csv`.
pub async fn day(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    user.require_admin()?;
    let asked = path.into_inner();
    let (text, csv) = match asked.strip_suffix(".csv") {
        Some(d) => (d, true),
        None => (asked.as_str(), false),
    };
    let date: Date = text.parse().map_err(|_| WebError::NotFound)?;
    let (day, differences) = state
        .checkout
        .reconciled_day(date)
        .await?
        .ok_or(WebError::NotFound)?;
    if csv {
        return Ok(day_csv(&day, &differences));
    }
    Ok(html(
        StatusCode::OK,
        &DayPage {
            t: state.t,
            layout: state.layout(),
            username: &user.0.username,
            csrf_token: &user.0.csrf_token,
            day,
            differences,
            tz: &state.tz,
        },
    ))
}

const CSV_HEADER: [&str; 8] = [
    "day",
    "kind",
    "order_no",
    "out_trade_no",
    "transaction_id",
    "out_refund_no",
    "scanpay_yuan",
    "bill_yuan",
];

fn day_csv(day: &DayRow, differences: &[DifferenceRow]) -> HttpResponse {
    let mut buf = csv_start(CSV_HEADER);
    let yuan = |f: Option<Fen>| f.map(Fen::yuan_string).unwrap_or_default();
    let day_text = day.day.to_string();
    for d in differences {
        let x = &d.difference;
        let (ours, theirs) = (yuan(x.ours), yuan(x.theirs));
        push_record(
            &mut buf,
            [
                day_text.as_str(),
                x.kind.as_str(),
                d.order_no.as_ref().map_or("", OrderNo::as_str),
                x.out_trade_no.as_str(),
                x.transaction_id.as_ref().map_or("", TransactionId::as_str),
                x.out_refund_no.as_ref().map_or("", OutRefundNo::as_str),
                ours.as_str(),
                theirs.as_str(),
            ],
        );
    }
    csv_download(&format!("scanpay-reconciliation-{}.csv", day.day)).body(buf)
}
