//! The admin area: `GET /admin` (paid orders, totals, a revenue chart),
//! `GET /admin/orders.csv` (the same selection, streamed) and
//! `GET /admin/orders/{order_no}` (one order's whole story).

use std::borrow::Borrow;
use std::sync::Arc;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use bytes::Bytes;
use futures_util::Stream;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use super::AppState;
use super::auth::CurrentUser;
use super::error::{WebError, urlencode};
use super::i18n::Texts;
use crate::clock::to_timestamp;
use crate::money::Fen;
use crate::order::{OrderState, QrState};
use crate::render::html;
use crate::store::reports::{
    self, Cursor, DoublePaid, Filter, Granularity, OrderDetail, PaidOrder, Period, Periods, Totals,
};
use crate::store::{Store, StoreError, now_ms};

/// Orders per page of `/admin`.
const PAGE_SIZE: usize = 50;
/// Orders read per database visit while streaming the CSV.
const CSV_CHUNK: usize = 500;
/// The default range: the last 30 shop days, today included.
const DEFAULT_DAYS: i64 = 30;
/// Longer ranges are refused (a typo'd year should not walk a century).
const MAX_RANGE_DAYS: i64 = 3660;
/// Up to this many days the chart has a bar per day, beyond a bar per month.
const MAX_DAILY_BARS: i64 = 93;
/// Longer search text is cut (no identifier we search is this long).
const MAX_SEARCH_CHARS: usize = 100;
/// The chart's drawing height in SVG units.
const CHART_HEIGHT: i64 = 100;
/// Horizontal SVG units per bar, gap included.
const BAR_SLOT: i64 = 10;

/// The query string of `/admin` and `/admin/orders.csv`, as typed.
#[derive(Debug, Default, serde::Deserialize)]
pub struct AdminQuery {
    from: Option<String>,
    to: Option<String>,
    cashier: Option<String>,
    q: Option<String>,
    flagged: Option<String>,
    page: Option<String>,
}

/// The query parsed: which paid orders the admin is looking at.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Selection {
    first: Date,
    last: Date,
    cashier: Option<i64>,
    q: String,
    flagged: bool,
    page: usize,
}

fn present(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl Selection {
    fn parse(q: &AdminQuery, today: Date, t: &Texts) -> Result<Selection, WebError> {
        let bad_date = || WebError::BadRequest(t.bad_date.into());
        let date = |s: &Option<String>| {
            present(s)
                .map(|s| s.parse::<Date>().map_err(|_| bad_date()))
                .transpose()
        };
        let last = date(&q.to)?.unwrap_or(today);
        let first = match date(&q.from)? {
            Some(d) => d,
            None => last
                .checked_sub((DEFAULT_DAYS - 1).days())
                .map_err(|_| bad_date())?,
        };
        let (first, last) = if first > last {
            (last, first)
        } else {
            (first, last)
        };
        if days_between(first, last) >= MAX_RANGE_DAYS {
            return Err(WebError::BadRequest(t.range_too_long.into()));
        }
        let cashier = present(&q.cashier)
            .map(|c| {
                c.parse::<i64>()
                    .map_err(|_| WebError::BadRequest(t.bad_cashier.into()))
            })
            .transpose()?;
        let flagged = present(&q.flagged).is_some_and(|f| matches!(f, "1" | "on" | "true"));
        let page = present(&q.page)
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        Ok(Selection {
            first,
            last,
            cashier,
            q: present(&q.q)
                .unwrap_or_default()
                .chars()
                .take(MAX_SEARCH_CHARS)
                .collect(),
            flagged,
            page,
        })
    }

    fn filter(&self, tz: &TimeZone, t: &Texts) -> Result<Filter, WebError> {
        let bad_date = |_| WebError::BadRequest(t.bad_date.into());
        let to = self.last.tomorrow().map_err(bad_date)?;
        Ok(Filter {
            from_ms: reports::day_start_ms(tz, self.first).map_err(bad_date)?,
            to_ms: reports::day_start_ms(tz, to).map_err(bad_date)?,
            cashier_id: self.cashier,
            search: (!self.q.is_empty()).then(|| self.q.clone()),
            flagged_only: self.flagged,
        })
    }

    fn granularity(&self) -> Granularity {
        if days_between(self.first, self.last) < MAX_DAILY_BARS {
            Granularity::Day
        } else {
            Granularity::Month
        }
    }

    /// The selection as a query string (without the page), for links.
    fn query_string(&self) -> String {
        let mut parts = vec![format!("from={}", self.first), format!("to={}", self.last)];
        if let Some(c) = self.cashier {
            parts.push(format!("cashier={c}"));
        }
        if !self.q.is_empty() {
            parts.push(format!("q={}", urlencode(&self.q)));
        }
        if self.flagged {
            parts.push("flagged=1".into());
        }
        parts.join("&")
    }
}

/// Whole days from `first` to `last` (0 when equal).
fn days_between(first: Date, last: Date) -> i64 {
    first.duration_until(last).as_secs() / 86_400
}

/// A UTC millisecond as the shop's wall-clock time.
fn shop_time(tz: &TimeZone, ms: i64) -> String {
    to_timestamp(ms)
        .to_zoned(tz.clone())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn internal(e: jiff::Error) -> WebError {
    WebError::Internal(anyhow::Error::new(e).context("shop time arithmetic"))
}

/// One bar of the revenue chart, in SVG units (origin top left).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bar {
    x: i64,
    y: i64,
    height: i64,
    label: String,
    count: i64,
    sum: Fen,
}

/// The revenue chart: bars scaled to the highest period, drawn by the template.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Chart {
    bars: Vec<Bar>,
    width: i64,
    height: i64,
    max: Fen,
    monthly: bool,
}

impl Chart {
    fn new(periods: &[Period], granularity: Granularity) -> Chart {
        let max = periods.iter().map(|p| p.sum).max().unwrap_or(Fen::ZERO);
        let bars = periods
            .iter()
            .enumerate()
            .map(|(i, p)| {
                // Any sale shows at least a sliver; the tallest fills the chart.
                let height = if max.get() > 0 && p.sum.get() > 0 {
                    let max = i128::from(max.get());
                    let h = (i128::from(p.sum.get()) * i128::from(CHART_HEIGHT) + max - 1) / max;
                    i64::try_from(h).unwrap_or(CHART_HEIGHT).max(1)
                } else {
                    0
                };
                Bar {
                    x: i64::try_from(i).unwrap_or(0) * BAR_SLOT,
                    y: CHART_HEIGHT - height,
                    height,
                    label: match granularity {
                        Granularity::Day => p.first_day.to_string(),
                        Granularity::Month => p.first_day.strftime("%Y-%m").to_string(),
                    },
                    count: p.count,
                    sum: p.sum,
                }
            })
            .collect::<Vec<_>>();
        Chart {
            width: (i64::try_from(bars.len()).unwrap_or(0) * BAR_SLOT).max(BAR_SLOT),
            height: CHART_HEIGHT,
            bars,
            max,
            monthly: granularity == Granularity::Month,
        }
    }

    fn first_label(&self) -> &str {
        self.bars.first().map(|b| b.label.as_str()).unwrap_or("")
    }

    fn last_label(&self) -> &str {
        self.bars.last().map(|b| b.label.as_str()).unwrap_or("")
    }
}

/// A row of the paid-orders table.
struct Row {
    order_no: String,
    paid_at: String,
    amount: Fen,
    description: String,
    cashier: String,
    transaction_id: String,
    late: bool,
    double_paid: bool,
}

#[derive(Template)]
#[template(path = "admin/orders.html")]
struct OrdersPage<'a> {
    t: &'static Texts,
    shop_name: &'a str,
    username: &'a str,
    csrf_token: &'a str,
    today: Totals,
    month: Totals,
    double_paid: i64,
    sel: &'a Selection,
    cashiers: Vec<(i64, String)>,
    selected: Totals,
    chart: Chart,
    rows: Vec<Row>,
    page: usize,
    pages: usize,
    prev_url: Option<String>,
    next_url: Option<String>,
    csv_url: String,
    flagged_url: String,
}

/// What one visit to the database brings back for `/admin`.
struct OrdersData {
    today: Totals,
    month: Totals,
    double_paid: DoublePaid,
    selected: Totals,
    revenue: Vec<Period>,
    rows: Vec<PaidOrder>,
    page: usize,
    cashiers: Vec<(i64, String)>,
}

/// The query string, read only once the user is known to be an admin.
fn admin_query(req: &HttpRequest) -> Result<AdminQuery, WebError> {
    web::Query::<AdminQuery>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| {
            tracing::debug!(error.message = %e, "admin query refused");
            WebError::BadRequest(String::new())
        })
}

pub async fn orders(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
) -> Result<HttpResponse, WebError> {
    user.require_admin()?;
    let t = state.t;
    let now = Timestamp::now().to_zoned(state.tz.clone());
    let sel = Selection::parse(&admin_query(&req)?, now.date(), t)?;
    let filter = sel.filter(&state.tz, t)?;
    let granularity = sel.granularity();
    let periods = Periods::new(&state.tz, sel.first, sel.last, granularity).map_err(internal)?;
    let (today, month) = reports::today_and_month(&now).map_err(internal)?;
    let wanted_page = sel.page;
    let data = state
        .checkout
        .store()
        .read(move |c| {
            // One snapshot, so the count, the chart and the rows agree.
            let c = c.unchecked_transaction()?;
            let c = &*c;
            let selected = reports::totals(c, &filter)?;
            let pages = page_count(selected.count);
            let page = wanted_page.min(pages);
            Ok(OrdersData {
                today: reports::totals(c, &today)?,
                month: reports::totals(c, &month)?,
                double_paid: reports::double_paid(c)?,
                selected,
                revenue: reports::revenue(c, &filter, &periods)?,
                rows: reports::paid_orders(c, &filter, PAGE_SIZE, (page - 1) * PAGE_SIZE)?,
                page,
                cashiers: reports::cashiers(c)?,
            })
        })
        .await?;

    let qs = sel.query_string();
    let pages = page_count(data.selected.count);
    let page_url = |p: usize| format!("/admin?{qs}&page={p}");
    // The warning links to every flagged order since the oldest double payment.
    let today = now.date();
    let oldest_allowed = today
        .checked_sub((MAX_RANGE_DAYS - 1).days())
        .unwrap_or(today);
    let flagged_url = format!(
        "/admin?{}",
        Selection {
            first: data
                .double_paid
                .oldest_paid_at
                .and_then(|ms| reports::shop_day(&state.tz, ms).ok())
                .unwrap_or(today)
                .clamp(oldest_allowed, today),
            last: today,
            cashier: None,
            q: String::new(),
            flagged: true,
            page: 1,
        }
        .query_string()
    );
    let page = OrdersPage {
        t,
        shop_name: &state.shop_name,
        username: &user.0.username,
        csrf_token: &user.0.csrf_token,
        today: data.today,
        month: data.month,
        double_paid: data.double_paid.count,
        sel: &sel,
        cashiers: data.cashiers,
        selected: data.selected,
        chart: Chart::new(&data.revenue, granularity),
        rows: data
            .rows
            .into_iter()
            .map(|o| Row {
                paid_at: shop_time(&state.tz, o.paid_at),
                order_no: o.order_no,
                amount: o.amount,
                description: o.description,
                cashier: o.cashier.unwrap_or_default(),
                transaction_id: o.transaction_id.unwrap_or_default(),
                late: o.late,
                double_paid: o.double_paid,
            })
            .collect(),
        page: data.page,
        pages,
        prev_url: (data.page > 1).then(|| page_url(data.page - 1)),
        next_url: (data.page < pages).then(|| page_url(data.page + 1)),
        csv_url: format!("/admin/orders.csv?{qs}"),
        flagged_url,
    };
    Ok(html(StatusCode::OK, &page))
}

/// Pages needed for `count` orders (at least one, even when empty).
fn page_count(count: i64) -> usize {
    usize::try_from(count)
        .unwrap_or(0)
        .div_ceil(PAGE_SIZE)
        .max(1)
}

const CSV_HEADER: [&str; 9] = [
    "order_no",
    "paid_at",
    "amount",
    "description",
    "cashier",
    "out_trade_no",
    "transaction_id",
    "late",
    "double_paid",
];

/// Appends one CSV cell: quoted when it holds a quote, comma or line break,
/// and prefixed with `'` when a spreadsheet would take it for a formula.
fn push_cell(buf: &mut String, value: &str) {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = value.contains(['"', ',', '\n', '\r']);
    if quote {
        buf.push('"');
    }
    if formula {
        buf.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            buf.push('"');
        }
        buf.push(c);
    }
    if quote {
        buf.push('"');
    }
}

/// Appends one CSV record, ended with CRLF (RFC 4180).
fn push_record<'a>(buf: &mut String, cells: impl IntoIterator<Item = &'a str>) {
    for (i, cell) in cells.into_iter().enumerate() {
        if i > 0 {
            buf.push(',');
        }
        push_cell(buf, cell);
    }
    buf.push_str("\r\n");
}

fn push_order(buf: &mut String, o: &PaidOrder, tz: &TimeZone) {
    let flag = |b: bool| if b { "1" } else { "0" };
    push_record(
        buf,
        [
            o.order_no.as_str(),
            &shop_time(tz, o.paid_at),
            &o.amount.yuan_string(),
            &o.description,
            o.cashier.as_deref().unwrap_or(""),
            o.out_trade_no.as_deref().unwrap_or(""),
            o.transaction_id.as_deref().unwrap_or(""),
            flag(o.late),
            flag(o.double_paid),
        ],
    );
}

enum CsvStep {
    Header,
    Rows(Option<Cursor>),
    Done,
}

/// The CSV body: the BOM and header, then the rows `CSV_CHUNK` at a time, each
/// chunk read in its own short database visit (keyset on `(paid_at, id)`), so
/// neither memory nor a read connection is held for the whole download.
fn csv_body(
    store: Store,
    filter: Filter,
    tz: TimeZone,
) -> impl Stream<Item = Result<Bytes, StoreError>> {
    let filter = Arc::new(filter);
    futures_util::stream::unfold(CsvStep::Header, move |step| {
        let store = store.clone();
        let filter = filter.clone();
        let tz = tz.clone();
        async move {
            match step {
                CsvStep::Done => None,
                CsvStep::Header => {
                    // The byte-order mark makes spreadsheets read the file as UTF-8.
                    let mut buf = String::from("\u{feff}");
                    push_record(&mut buf, CSV_HEADER);
                    Some((Ok(Bytes::from(buf)), CsvStep::Rows(None)))
                }
                CsvStep::Rows(after) => {
                    let chunk = store
                        .read(move |c| {
                            let mut buf = String::new();
                            let next =
                                reports::each_paid_order(c, &filter, after, CSV_CHUNK, |o| {
                                    push_order(&mut buf, o, &tz)
                                })?;
                            Ok((buf, next))
                        })
                        .await;
                    match chunk {
                        Ok((buf, Some(next))) => {
                            Some((Ok(Bytes::from(buf)), CsvStep::Rows(Some(next))))
                        }
                        Ok((buf, None)) => Some((Ok(Bytes::from(buf)), CsvStep::Done)),
                        Err(e) => {
                            // The download breaks off rather than end looking complete.
                            tracing::error!(error.cause_chain = ?e, "CSV export failed");
                            Some((Err(e), CsvStep::Done))
                        }
                    }
                }
            }
        }
    })
}

pub async fn orders_csv(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
) -> Result<HttpResponse, WebError> {
    user.require_admin()?;
    let now = Timestamp::now().to_zoned(state.tz.clone());
    let sel = Selection::parse(&admin_query(&req)?, now.date(), state.t)?;
    let mut filter = sel.filter(&state.tz, state.t)?;
    // Orders paid while the file is being written wait for the next export,
    // so the file is a picture of one moment.
    filter.to_ms = filter.to_ms.min(now_ms() + 1);
    let filename = format!("scanpay-orders-{}-{}.csv", sel.first, sel.last);
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(csv_body(
            state.checkout.store().clone(),
            filter,
            state.tz.clone(),
        )))
}

#[derive(Template)]
#[template(path = "admin/order.html")]
struct OrderPage<'a> {
    t: &'static Texts,
    shop_name: &'a str,
    username: &'a str,
    csrf_token: &'a str,
    d: OrderDetail,
    tz: &'a TimeZone,
}

/// A time column however deeply the template borrowed it.
trait Millis {
    fn millis(&self) -> i64;
}

impl Millis for i64 {
    fn millis(&self) -> i64 {
        *self
    }
}

impl<T: Millis + ?Sized> Millis for &T {
    fn millis(&self) -> i64 {
        (**self).millis()
    }
}

impl OrderPage<'_> {
    fn time(&self, ms: impl Millis) -> String {
        shop_time(self.tz, ms.millis())
    }

    fn order_state(&self) -> &'static str {
        match self.d.order.state {
            OrderState::Open => self.t.state_open,
            OrderState::Paid => self.t.state_paid,
            OrderState::Expired => self.t.state_expired,
            OrderState::Cancelled => self.t.state_cancelled,
        }
    }

    fn qr_state(&self, s: impl Borrow<QrState>) -> &'static str {
        match s.borrow() {
            QrState::Creating => self.t.qr_creating,
            QrState::Failed => self.t.qr_failed_state,
            QrState::Open => self.t.qr_open,
            QrState::Closing => self.t.qr_closing,
            QrState::Closed => self.t.qr_closed,
            QrState::Paid => self.t.qr_paid,
        }
    }
}

/// Order numbers are short; anything longer is not one of ours.
const MAX_ORDER_NO: usize = 64;

pub async fn order(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    user.require_admin()?;
    let order_no = path.into_inner();
    if order_no.is_empty() || order_no.len() > MAX_ORDER_NO {
        return Err(WebError::NotFound);
    }
    let d = state
        .checkout
        .store()
        .read(move |c| reports::order_detail(c, &order_no))
        .await?
        .ok_or(WebError::NotFound)?;
    Ok(html(
        StatusCode::OK,
        &OrderPage {
            t: state.t,
            shop_name: &state.shop_name,
            username: &user.0.username,
            csrf_token: &user.0.csrf_token,
            d,
            tz: &state.tz,
        },
    ))
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;
    use crate::web::i18n::EN;

    fn csv(cells: &[&str]) -> String {
        let mut buf = String::new();
        push_record(&mut buf, cells.iter().copied());
        buf
    }

    #[test]
    fn csv_cells_are_quoted_only_when_needed() {
        assert_eq!(csv(&["a", "咖啡", "12.50"]), "a,咖啡,12.50\r\n");
        assert_eq!(
            csv(&["Cake, \"large\"", "two\nlines"]),
            "\"Cake, \"\"large\"\"\",\"two\nlines\"\r\n"
        );
        assert_eq!(csv(&["", ""]), ",\r\n");
    }

    #[test]
    fn csv_cells_that_look_like_formulas_are_neutralised() {
        assert_eq!(
            csv(&["=HYPERLINK(\"x\")", "+1", "-1", "@SUM(A1)", "a=b"]),
            "\"'=HYPERLINK(\"\"x\"\")\",'+1,'-1,'@SUM(A1),a=b\r\n"
        );
        assert_eq!(csv(&["=1,2"]), "\"'=1,2\"\r\n");
    }

    fn query(pairs: &[(&str, &str)]) -> AdminQuery {
        let mut q = AdminQuery::default();
        for (k, v) in pairs {
            let v = Some(v.to_string());
            match *k {
                "from" => q.from = v,
                "to" => q.to = v,
                "cashier" => q.cashier = v,
                "q" => q.q = v,
                "flagged" => q.flagged = v,
                "page" => q.page = v,
                _ => unreachable!(),
            }
        }
        q
    }

    #[test]
    fn the_selection_defaults_to_the_last_30_days() {
        let today = date(2024, 3, 10);
        let s = Selection::parse(&query(&[("cashier", ""), ("q", "  ")]), today, &EN).unwrap();
        assert_eq!(
            s,
            Selection {
                first: date(2024, 2, 10),
                last: today,
                cashier: None,
                q: String::new(),
                flagged: false,
                page: 1,
            }
        );
        assert_eq!(s.query_string(), "from=2024-02-10&to=2024-03-10");
        assert_eq!(s.granularity(), Granularity::Day);
    }

    #[test]
    fn the_selection_parses_each_field_and_keeps_it_in_links() {
        let today = date(2024, 3, 10);
        let s = Selection::parse(
            &query(&[
                ("from", "2024-06-30"),
                ("to", "2024-01-01"),
                ("cashier", "2"),
                ("q", " 42 & x "),
                ("flagged", "1"),
                ("page", "0"),
            ]),
            today,
            &EN,
        )
        .unwrap();
        // A reversed range is put the right way round.
        assert_eq!((s.first, s.last), (date(2024, 1, 1), date(2024, 6, 30)));
        assert_eq!(s.page, 1);
        assert_eq!(
            s.query_string(),
            "from=2024-01-01&to=2024-06-30&cashier=2&q=42%20%26%20x&flagged=1"
        );
        assert_eq!(s.granularity(), Granularity::Month);
        let tz = TimeZone::get("Asia/Shanghai").unwrap();
        let f = s.filter(&tz, &EN).unwrap();
        assert_eq!(f.to_ms - f.from_ms, 182 * 86_400_000);
        assert_eq!(f.search.as_deref(), Some("42 & x"));

        for bad in [
            query(&[("from", "2024-13-01")]),
            query(&[("to", "yesterday")]),
            query(&[("cashier", "ann")]),
            query(&[("from", "1990-01-01")]),
        ] {
            assert!(matches!(
                Selection::parse(&bad, today, &EN),
                Err(WebError::BadRequest(_))
            ));
        }
    }

    #[test]
    fn pages_hold_fifty_orders() {
        let pages: Vec<usize> = [0, 1, 50, 51, 100, 101].map(page_count).to_vec();
        assert_eq!(pages, vec![1, 1, 1, 2, 2, 3]);
    }

    #[test]
    fn the_chart_scales_bars_to_the_best_period() {
        let p = |d: i8, fen: i64| Period {
            first_day: date(2024, 6, d),
            count: i64::from(fen > 0),
            sum: Fen::new(fen),
        };
        let chart = Chart::new(
            &[p(1, 1250), p(2, 0), p(3, 1), p(4, 2500)],
            Granularity::Day,
        );
        let heights: Vec<i64> = chart.bars.iter().map(|b| b.height).collect();
        assert_eq!(heights, vec![50, 0, 1, 100]);
        assert_eq!(chart.bars[3].x, 30);
        assert_eq!(chart.bars[3].y, 0);
        assert_eq!(chart.width, 40);
        assert_eq!(chart.max, Fen::new(2500));
        assert_eq!(
            (chart.first_label(), chart.last_label()),
            ("2024-06-01", "2024-06-04")
        );

        let empty = Chart::new(&[p(1, 0)], Granularity::Month);
        assert_eq!(empty.bars[0].height, 0);
        assert_eq!(empty.bars[0].label, "2024-06");
    }
}
