//! `GET /admin`: today's and this month's totals, the selection's totals, a
//! revenue chart and one page of paid orders.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use jiff::tz::TimeZone;

use super::chart::Chart;
use super::selection::{Selection, admin_selection};
use crate::store::reports::{self, OrdersReport, Page, PaidOrder, Totals};
use crate::values::money::Fen;
use crate::values::order::OrderNo;
use crate::values::shop_time::{self, Granularity, Periods, shop_time};
use crate::web::auth::CurrentUser;
use crate::web::error::WebError;
use crate::web::i18n::Texts;
use crate::web::render::html;
use crate::web::{AppState, Layout};

/// Orders per page of `/admin`.
const PAGE_SIZE: usize = 50;

/// A row of the paid-orders table.
struct Row {
    order_no: OrderNo,
    paid_at: String,
    amount: Fen,
    description: String,
    cashier: String,
    transaction_id: String,
    late: bool,
    double_paid: bool,
}

impl Row {
    fn new(o: PaidOrder, tz: &TimeZone) -> Row {
        Row {
            paid_at: shop_time(tz, o.paid_at),
            order_no: o.order_no,
            // What was taken: the rows add up to the gross.
            amount: o.paid,
            description: o.description,
            cashier: o.cashier.unwrap_or_default(),
            transaction_id: o.transaction_id.map(|t| t.to_string()).unwrap_or_default(),
            late: o.late,
            double_paid: o.double_paid,
        }
    }
}

#[derive(Template)]
#[template(path = "admin/orders.html")]
struct OrdersPage<'a> {
    t: &'static Texts,
    layout: Layout<'a>,
    username: &'a str,
    csrf_token: &'a str,
    today: Totals,
    month: Totals,
    double_paid: i64,
    sel: &'a Selection,
    cashiers: Vec<(i64, String)>,
    selected: Totals,
    /// What went back of the selection (succeeded refunds), and gross less that.
    refunded: Fen,
    net: Fen,
    r: &'static super::refunds::RefundTexts,
    chart: Chart,
    rows: Vec<Row>,
    page: usize,
    pages: usize,
    prev_url: Option<String>,
    next_url: Option<String>,
    csv_url: String,
    flagged_url: String,
}

impl<'a> OrdersPage<'a> {
    fn new(
        state: &'a AppState,
        user: &'a CurrentUser,
        sel: &'a Selection,
        granularity: Granularity,
        today: jiff::civil::Date,
        data: OrdersReport,
        refunded: Fen,
    ) -> OrdersPage<'a> {
        let qs = sel.query_string();
        let page_url = |p: usize| format!("/admin?{qs}&page={p}");
        // The warning links to every flagged order since the oldest double payment.
        let oldest = data
            .double_paid
            .oldest_paid_at
            .and_then(|at| shop_time::shop_day(&state.tz, at.get()).ok());
        let flagged_url = format!(
            "/admin?{}",
            Selection::flagged_since(oldest, today).query_string()
        );
        OrdersPage {
            t: state.t,
            layout: state.layout(),
            username: &user.0.username,
            csrf_token: &user.0.csrf_token,
            today: data.today,
            month: data.month,
            double_paid: data.double_paid.count,
            sel,
            cashiers: data.cashiers,
            selected: data.selected,
            refunded,
            net: Fen::new(data.selected.sum.get() - refunded.get()),
            r: super::refunds::refund_texts(state.t),
            chart: Chart::new(&data.revenue, granularity),
            rows: data
                .rows
                .into_iter()
                .map(|o| Row::new(o, &state.tz))
                .collect(),
            page: data.page,
            pages: data.pages,
            prev_url: (data.page > 1).then(|| page_url(data.page - 1)),
            next_url: (data.page < data.pages).then(|| page_url(data.page + 1)),
            csv_url: format!("/admin/orders.csv?{qs}"),
            flagged_url,
        }
    }
}

fn internal(e: jiff::Error) -> WebError {
    WebError::Internal(anyhow::Error::new(e).context("shop time arithmetic"))
}

pub async fn orders(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
) -> Result<HttpResponse, WebError> {
    let (sel, filter, now) = admin_selection(&req, &state, &user)?;
    let granularity = sel.granularity();
    let periods = Periods::new(&state.tz, sel.first, sel.last, granularity).map_err(internal)?;
    let today_and_month = shop_time::today_and_month(&now).map_err(internal)?;
    let page = Page {
        number: sel.page,
        size: PAGE_SIZE,
    };
    let (data, refunded) = state
        .checkout
        .read_model()
        .read(move |c| {
            Ok((
                reports::orders_page(c, &filter, &periods, today_and_month, page)?,
                reports::refunded_total(c, &filter)?,
            ))
        })
        .await?;
    let page = OrdersPage::new(&state, &user, &sel, granularity, now.date(), data, refunded);
    Ok(html(StatusCode::OK, &page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_hold_fifty_orders() {
        let page = Page {
            number: 1,
            size: PAGE_SIZE,
        };
        let pages: Vec<usize> = [0, 1, 50, 51, 100, 101].map(|n| page.count(n)).to_vec();
        assert_eq!(pages, vec![1, 1, 1, 2, 2, 3]);
    }
}
