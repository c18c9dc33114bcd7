//! `GET /` the checkout form with the cashier's newest orders and the day's
//! figures, `POST /orders` creating an order, `GET /counter/events` the same
//! live. The whole day, paged, is `day.rs`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::auth::CurrentUser;
use super::client::ClientInfo;
use super::display::{ANNOUNCE_WITHIN, Reading};
use super::error::WebError;
use super::i18n::Texts;
use super::i18n::counter::CounterTexts;
use super::respond::see_other;
use super::{AppState, Layout};
use crate::checkout::NewOrderInput;
use crate::checkout::counter::CashierDay;
use crate::config::Language;
use crate::values::money::Fen;
use crate::values::order::{OrderState, UserId};
use crate::values::role::Role;
use crate::values::shop_time::{Range, today_and_month};
use crate::web::render::html;

const MAX_DESCRIPTION_CHARS: usize = 100;

#[derive(Template)]
#[template(path = "checkout.html")]
struct CheckoutPage<'a> {
    t: &'static Texts,
    ct: &'static CounterTexts,
    layout: Layout<'a>,
    day: DayStatus,
    username: &'a str,
    is_admin: bool,
    csrf_token: &'a str,
    amount: &'a str,
    description: &'a str,
    amount_error: Option<String>,
    description_error: Option<String>,
}

impl<'a> CheckoutPage<'a> {
    /// The form for `user`, filled with `values` and showing `errors`.
    fn new(
        state: &'a AppState,
        user: &'a CurrentUser,
        day: DayStatus,
        values: (&'a str, &'a str),
        errors: (Option<String>, Option<String>),
    ) -> Self {
        CheckoutPage {
            t: state.t,
            ct: CounterTexts::of(state.t.language),
            layout: state.layout(),
            day,
            username: &user.0.username,
            is_admin: user.0.role == Role::Admin,
            csrf_token: &user.0.csrf_token,
            amount: values.0,
            description: values.1,
            amount_error: errors.0,
            description_error: errors.1,
        }
    }
}

pub async fn form(state: web::Data<AppState>, user: CurrentUser) -> Result<HttpResponse, WebError> {
    let day = day_status(&state, cashier(&user)).await?;
    Ok(html(
        StatusCode::OK,
        &CheckoutPage::new(&state, &user, day, ("", ""), (None, None)),
    ))
}

pub(super) fn cashier(user: &CurrentUser) -> UserId {
    UserId(user.0.user_id)
}

/// The cashier's day as the page shows it and as each event says it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DayStatus {
    pub created: i64,
    pub paid: i64,
    pub total: String,
    pub orders: Vec<DayRow>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DayRow {
    pub order_no: String,
    pub link: String,
    pub time: String,
    pub amount: String,
    pub description: String,
    pub state: &'static str,
    pub state_label: &'static str,
    /// Paid within `ANNOUNCE_WITHIN`: what to say (once per order number).
    pub announce: Option<String>,
}

impl DayStatus {
    pub(super) fn of(
        day: &CashierDay,
        t: &Texts,
        lang: Language,
        tz: &jiff::tz::TimeZone,
    ) -> DayStatus {
        let orders = day
            .orders
            .iter()
            .map(|o| DayRow {
                order_no: o.order_no.to_string(),
                link: format!("/o/{}", o.token),
                time: o
                    .created_at
                    .to_timestamp()
                    .to_zoned(tz.clone())
                    .strftime("%H:%M:%S")
                    .to_string(),
                amount: o.amount.to_string(),
                description: o.description.clone(),
                state: o.state.as_str(),
                state_label: t.order_state(o.state),
                announce: o
                    .paid_at
                    .filter(|p| o.state == OrderState::Paid && day.now.since(*p) <= ANNOUNCE_WITHIN)
                    .map(|_| crate::web::i18n::speech::announcement(lang, o.amount)),
            })
            .collect();
        DayStatus {
            created: day.created,
            paid: day.paid,
            total: day.paid_total.to_string(),
            orders,
        }
    }
}

/// The shop's today, cut in the shop's time zone on the checkout's clock.
pub(super) fn today(state: &AppState) -> Result<Range, WebError> {
    let now = state
        .checkout
        .now()
        .to_timestamp()
        .to_zoned(state.tz.clone());
    let (today, _) = today_and_month(&now).map_err(|e| WebError::Internal(e.into()))?;
    Ok(today)
}

async fn read_day(state: &AppState, cashier: UserId) -> Result<CashierDay, WebError> {
    Ok(state.checkout.cashier_day(cashier, today(state)?).await?)
}

async fn day_status(state: &AppState, cashier: UserId) -> Result<DayStatus, WebError> {
    let day = read_day(state, cashier).await?;
    Ok(DayStatus::of(&day, state.t, state.t.language, &state.tz))
}

/// What a live list of `day`'s orders watches, sent as `payload`: the open
/// orders it lists, and when an announcement in it grows old.
pub(super) fn reading_of(day: &CashierDay, payload: String) -> Reading {
    Reading {
        key: payload.clone(),
        payload,
        watch: day
            .orders
            .iter()
            .filter(|o| o.state == OrderState::Open)
            .map(|o| o.token.clone())
            .collect(),
        // An announcement drops out of the list when it is old.
        changes_at: day
            .orders
            .iter()
            .filter_map(|o| o.paid_at)
            .map(|p| p.plus(ANNOUNCE_WITHIN))
            .filter(|at| *at > day.now)
            .min(),
        last: false,
    }
}

/// `GET /counter/events`: the signed-in cashier's day, on every change of it
/// (a new order, a state change of one of the orders listed).
pub async fn events(
    state: web::Data<AppState>,
    user: CurrentUser,
) -> Result<HttpResponse, WebError> {
    let me = cashier(&user);
    let feed = format!("counter:{}", me.0);
    super::display::live_stream(
        &state,
        &feed,
        me,
        move |state: web::Data<AppState>| async move {
            let day = read_day(&state, me).await.ok()?;
            let s = DayStatus::of(&day, state.t, state.t.language, &state.tz);
            Some(reading_of(&day, serde_json::to_string(&s).ok()?))
        },
    )
}

#[derive(serde::Deserialize)]
pub struct OrderForm {
    #[serde(default)]
    amount: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    csrf_token: String,
}

/// The form's values as domain types, or each field's message.
struct ValidOrder {
    amount: Fen,
    description: String,
}

fn validate(
    form: &OrderForm,
    max: Fen,
    t: &Texts,
) -> Result<ValidOrder, (Option<String>, Option<String>)> {
    let amount = Fen::parse_yuan(&form.amount, max).map_err(|e| t.amount_error(&e));
    // Control characters would corrupt receipts and the gateway's body field.
    let description: String = form
        .description
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let description = if description.chars().count() > MAX_DESCRIPTION_CHARS {
        Err(t.description_too_long.to_string())
    } else {
        Ok(description)
    };
    match (amount, description) {
        (Ok(amount), Ok(description)) => Ok(ValidOrder {
            amount,
            description,
        }),
        (a, d) => Err((a.err(), d.err())),
    }
}

pub async fn create(
    client: ClientInfo,
    state: web::Data<AppState>,
    user: CurrentUser,
    form: web::Form<OrderForm>,
) -> Result<HttpResponse, WebError> {
    user.check_csrf(&form.csrf_token)?;
    let valid = match validate(&form, state.max_amount, state.t) {
        Ok(v) => v,
        Err(errors) => {
            let values = (form.amount.as_str(), form.description.as_str());
            let day = day_status(&state, cashier(&user)).await?;
            let page = CheckoutPage::new(&state, &user, day, values, errors);
            return Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &page));
        }
    };
    // spbill_create_ip: the device that asked for the order, as `http.trusted_proxies`
    // lets us see it (behind a proxy, not the proxy's own address).
    let client_ip = client.ip.to_string();
    let token = state
        .checkout
        .create_order(NewOrderInput {
            amount: valid.amount,
            description: valid.description,
            cashier_id: Some(crate::values::order::UserId(user.0.user_id)),
            client_ip,
        })
        .await?;
    Ok(see_other(&format!("/o/{token}")))
}
