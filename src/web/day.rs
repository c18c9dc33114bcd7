//! `GET /day`: the signed-in cashier's whole day, newest first, in pages of
//! `DAY_PAGE` (`?after=ORDER_NO` starts below that order, so a page never
//! repeats or skips an order however many are created meanwhile), each order
//! with its live state (`GET /day/events?after=…`). The checkout page lists
//! only the newest orders and links here.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::auth::CurrentUser;
use super::checkout::{DayStatus, cashier, reading_of, today};
use super::error::WebError;
use super::i18n::Texts;
use super::i18n::counter::CounterTexts;
use super::render::html;
use super::{AppState, Layout};
use crate::checkout::counter::{CashierDayPage, DAY_PAGE};
use crate::values::order::{OrderNo, UserId};
use crate::values::role::Role;

#[derive(serde::Deserialize)]
pub struct PageQuery {
    /// The page starts below the order with this number (absent: the newest).
    after: Option<String>,
}

impl PageQuery {
    /// The cursor, parsed once; a malformed one is a bad link, not an empty page.
    fn after(&self) -> Result<Option<OrderNo>, WebError> {
        match self.after.as_deref() {
            None | Some("") => Ok(None),
            Some(s) => OrderNo::parse(s)
                .map(Some)
                .ok_or_else(|| WebError::BadRequest("after: not an order number".into())),
        }
    }
}

/// One page as the page shows it and as each of its events says it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DayPageStatus {
    #[serde(flatten)]
    pub day: DayStatus,
    /// The next (older) page's address, when there is one.
    pub older: Option<String>,
}

fn older_link(page: &CashierDayPage) -> Option<String> {
    page.older.as_ref().map(|no| format!("/day?after={no}"))
}

fn events_link(after: Option<&OrderNo>) -> String {
    match after {
        Some(no) => format!("/day/events?after={no}"),
        None => "/day/events".to_string(),
    }
}

#[derive(Template)]
#[template(path = "day.html")]
struct DayPage<'a> {
    t: &'static Texts,
    ct: &'static CounterTexts,
    layout: Layout<'a>,
    page: DayPageStatus,
    /// Not the first page: a link back to the newest orders.
    later: bool,
    events: String,
    username: &'a str,
    is_admin: bool,
    csrf_token: &'a str,
}

async fn read_page(
    state: &AppState,
    me: UserId,
    after: Option<OrderNo>,
) -> Result<(CashierDayPage, DayPageStatus), WebError> {
    let page = state
        .checkout
        .cashier_day_page(me, today(state)?, after, DAY_PAGE)
        .await?;
    let status = DayPageStatus {
        day: DayStatus::of(&page.day, state.t, state.t.language, &state.tz),
        older: older_link(&page),
    };
    Ok((page, status))
}

/// `GET /day`: one page of the cashier's day.
pub async fn page(
    state: web::Data<AppState>,
    user: CurrentUser,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, WebError> {
    let after = query.after()?;
    let events = events_link(after.as_ref());
    let later = after.is_some();
    let (_, page) = read_page(&state, cashier(&user), after).await?;
    Ok(html(
        StatusCode::OK,
        &DayPage {
            t: state.t,
            ct: CounterTexts::of(state.t.language),
            layout: state.layout(),
            page,
            later,
            events,
            username: &user.0.username,
            is_admin: user.0.role == Role::Admin,
            csrf_token: &user.0.csrf_token,
        },
    ))
}

/// `GET /day/events`: the same page, on every change of it.
pub async fn events(
    state: web::Data<AppState>,
    user: CurrentUser,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, WebError> {
    let after = query.after()?;
    let me = cashier(&user);
    let feed = format!("day:{}", me.0);
    super::display::live_stream(&state, &feed, me, move |state: web::Data<AppState>| {
        let after = after.clone();
        async move {
            let (page, status) = read_page(&state, me, after).await.ok()?;
            Some(reading_of(&page.day, serde_json::to_string(&status).ok()?))
        }
    })
}
