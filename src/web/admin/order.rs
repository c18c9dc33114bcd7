//! `GET /admin/orders/{order_no}`: one order's whole story.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use jiff::tz::TimeZone;

use super::refunds::{RefundLine, RefundTexts, refund_texts};
use crate::checkout::refund::{RefundedLabel, refunded_label};
use crate::store::reports::{self, OrderDetail};
use crate::values::clock::Millis;
use crate::values::money::Fen;
use crate::values::order::{OrderNo, QrState};
use crate::values::shop_time::shop_time;
use crate::web::auth::CurrentUser;
use crate::web::error::WebError;
use crate::web::i18n::Texts;
use crate::web::render::html;
use crate::web::{AppState, Layout};

#[derive(Template)]
#[template(path = "admin/order.html")]
struct OrderPage<'a> {
    t: &'static Texts,
    r: &'static RefundTexts,
    layout: Layout<'a>,
    username: &'a str,
    csrf_token: &'a str,
    d: OrderDetail,
    tz: &'a TimeZone,
    refunds: Vec<RefundLine>,
    /// The double payment's transaction_id and amount (yuan), for its one-step refund.
    second_payment: Option<(String, String)>,
    /// 已退款 / 部分退款, or empty.
    refunded: &'static str,
}

// askama hands method arguments over by reference, so these take `&`.
impl OrderPage<'_> {
    fn time(&self, at: &Millis) -> String {
        shop_time(self.tz, *at)
    }

    fn order_state(&self) -> &'static str {
        self.t.order_state(self.d.order.state)
    }

    fn qr_state(&self, s: &QrState) -> &'static str {
        self.t.qr_state_label(*s)
    }
}

pub async fn order(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    user.require_admin()?;
    let order_no = OrderNo::parse(&path.into_inner()).ok_or(WebError::NotFound)?;
    let d = state
        .checkout
        .read_model()
        .read(move |c| reports::order_detail(c, &order_no))
        .await?
        .ok_or(WebError::NotFound)?;
    // The double payment's one-step refund offers what is left of it, and
    // goes once nothing is.
    let second_payment = d.payments.get(1).and_then(|p| {
        let held: i64 = d
            .refunds
            .iter()
            .filter(|r| r.payment_id == p.id && r.state.reserves())
            .map(|r| r.amount.get())
            .sum();
        let left = p.amount.get() - held;
        (left > 0).then(|| (p.transaction_id.to_string(), Fen::new(left).yuan_string()))
    });
    let paid = Fen::new(d.payments.iter().map(|p| p.amount.get()).sum());
    let label = match refunded_label(d.order.state, paid, d.refunded) {
        RefundedLabel::None => "",
        RefundedLabel::Partly => refund_texts(state.t).refunded_partly,
        RefundedLabel::Fully => refund_texts(state.t).refunded_fully,
    };
    Ok(html(
        StatusCode::OK,
        &OrderPage {
            t: state.t,
            layout: state.layout(),
            username: &user.0.username,
            csrf_token: &user.0.csrf_token,
            r: refund_texts(state.t),
            refunds: d
                .refunds
                .iter()
                .map(|r| RefundLine::new(r, &state.tz, state.t))
                .collect(),
            second_payment,
            refunded: label,
            d,
            tz: &state.tz,
        },
    ))
}
