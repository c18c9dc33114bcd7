//! `GET /` the checkout form, `POST /orders` creating an order.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::auth::CurrentUser;
use super::client::ClientInfo;
use super::error::WebError;
use super::i18n::Texts;
use super::respond::see_other;
use super::{AppState, Layout};
use crate::checkout::NewOrderInput;
use crate::money::Fen;
use crate::render::html;
use crate::role::Role;

const MAX_DESCRIPTION_CHARS: usize = 100;

#[derive(Template)]
#[template(path = "checkout.html")]
struct CheckoutPage<'a> {
    t: &'static Texts,
    layout: Layout<'a>,
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
        values: (&'a str, &'a str),
        errors: (Option<String>, Option<String>),
    ) -> Self {
        CheckoutPage {
            t: state.t,
            layout: state.layout(),
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

pub async fn form(state: web::Data<AppState>, user: CurrentUser) -> HttpResponse {
    html(
        StatusCode::OK,
        &CheckoutPage::new(&state, &user, ("", ""), (None, None)),
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
            let page = CheckoutPage::new(&state, &user, values, errors);
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
            cashier_id: Some(crate::order::UserId(user.0.user_id)),
            client_ip,
        })
        .await?;
    Ok(see_other(&format!("/o/{token}")))
}
