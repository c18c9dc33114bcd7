//! `GET /admin/orders.csv`: the selection's paid orders as a CSV download,
//! streamed a chunk at a time.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use futures_util::Stream;
use jiff::tz::TimeZone;

use super::selection::admin_selection;
use crate::store::reports::{self, Cursor, Filter, PaidOrder};
use crate::store::{ReadStore, StoreError};
use crate::values::shop_time::shop_time;
use crate::values::trade::{OutTradeNo, TransactionId};
use crate::web::AppState;
use crate::web::auth::CurrentUser;
use crate::web::error::WebError;

/// Orders read per database visit while streaming the CSV.
const CSV_CHUNK: usize = 500;

const CSV_HEADER: [&str; 10] = [
    "order_no",
    "paid_at",
    "amount",
    "description",
    "cashier",
    "out_trade_no",
    "transaction_id",
    "late",
    "double_paid",
    "refunded",
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

/// A CSV file's start: the byte-order mark (spreadsheets then read the file
/// as UTF-8) and the header record.
pub(super) fn csv_start<'a>(header: impl IntoIterator<Item = &'a str>) -> String {
    let mut buf = String::from("\u{feff}");
    push_record(&mut buf, header);
    buf
}

/// The answer that downloads a CSV file as `filename`, never kept by caches.
pub(super) fn csv_download(filename: &str) -> actix_web::HttpResponseBuilder {
    let mut answer = HttpResponse::Ok();
    answer
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    answer
}

/// Appends one CSV record, ended with CRLF (RFC 4180).
pub(super) fn push_record<'a>(buf: &mut String, cells: impl IntoIterator<Item = &'a str>) {
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
            // What was taken, so the rows add up to the gross (a double payment twice).
            &o.paid.yuan_string(),
            &o.description,
            o.cashier.as_deref().unwrap_or(""),
            o.out_trade_no.as_ref().map_or("", OutTradeNo::as_str),
            o.transaction_id.as_ref().map_or("", TransactionId::as_str),
            flag(o.late),
            flag(o.double_paid),
            &o.refunded.yuan_string(),
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
    store: ReadStore,
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
                    Some((Ok(Bytes::from(csv_start(CSV_HEADER))), CsvStep::Rows(None)))
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
                            tracing::error!(error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), "CSV export failed");
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
    let (sel, mut filter, _) = admin_selection(&req, &state, &user)?;
    // Orders paid while the file is being written wait for the next export,
    // so the file is a picture of one moment (of the domain's clock, like the
    // payments' times).
    filter.to_ms = filter.to_ms.min(state.checkout.now().get() + 1);
    let filename = format!("scanpay-orders-{}-{}.csv", sel.first, sel.last);
    Ok(csv_download(&filename).streaming(csv_body(
        state.checkout.read_model(),
        filter,
        state.tz.clone(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
