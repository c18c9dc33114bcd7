//! `GET /admin/displays`, `POST /admin/displays/{id}/revoke`: every paired
//! customer display, and the admin's way to end any of them (a lost tablet,
//! a cashier who left) without that cashier's session.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::values::shop_time::shop_time;
use crate::web::auth::{CsrfForm, CurrentUser};
use crate::web::error::WebError;
use crate::web::i18n::Texts;
use crate::web::render::html;
use crate::web::respond::see_other;
use crate::web::{AppState, Layout};

/// The page's own words, beside `Texts`.
struct DisplayTexts {
    title: &'static str,
    cashier: &'static str,
    paired_at: &'static str,
    revoke: &'static str,
    none: &'static str,
}

static ZH: DisplayTexts = DisplayTexts {
    title: "顾客屏",
    cashier: "收银员",
    paired_at: "配对时间",
    revoke: "停用",
    none: "没有已配对的顾客屏。",
};

static EN: DisplayTexts = DisplayTexts {
    title: "Customer displays",
    cashier: "cashier",
    paired_at: "paired at",
    revoke: "Revoke",
    none: "No display is paired.",
};

struct Row {
    id: i64,
    cashier: String,
    paired_at: String,
}

#[derive(Template)]
#[template(path = "admin/displays.html")]
struct DisplaysPage<'a> {
    t: &'static Texts,
    d: &'static DisplayTexts,
    layout: Layout<'a>,
    username: &'a str,
    csrf_token: &'a str,
    rows: Vec<Row>,
}

pub async fn list(state: web::Data<AppState>, user: CurrentUser) -> Result<HttpResponse, WebError> {
    user.require_admin()?;
    let rows = state
        .checkout
        .active_displays()
        .await?
        .into_iter()
        .map(|a| Row {
            id: a.id,
            cashier: a.username,
            paired_at: shop_time(&state.tz, a.created_at),
        })
        .collect();
    let page = DisplaysPage {
        t: state.t,
        d: if state.t.lang == "en" { &EN } else { &ZH },
        layout: state.layout(),
        username: &user.0.username,
        csrf_token: &user.0.csrf_token,
        rows,
    };
    Ok(html(StatusCode::OK, &page))
}

/// Revokes one display; an unknown or already revoked id changes nothing.
pub async fn revoke(
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    user.require_admin()?;
    user.check_csrf(&form.csrf_token)?;
    state.checkout.revoke_display_by_id(id.into_inner()).await?;
    Ok(see_other("/admin/displays"))
}
