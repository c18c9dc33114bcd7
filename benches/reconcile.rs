//! What reconciling one busy day costs: 10,000 payments and 1,000 refunds in
//! the books, and the gateway's bill of the same (its text, as downloaded).
//! `Checkout::reconcile_day` end to end: the bill parsed by header names,
//! our day read from SQLite, matched, and the day recorded in one transaction.
//! The gateway is a stand-in that hands over the prepared bill, so the
//! network is not measured. Run with `cargo bench --bench reconcile`.

use std::sync::Arc;
use std::time::Instant;

use scanpay::checkout::gateway::{
    Ack, BillFetch, CodeRequest, Gateway, GatewayError, GatewayFuture, NotifyReply, NotifyRequest,
    PayableCode, ReadNotification, RefundRequest, RefundStatus, TradeStatus,
};
use scanpay::checkout::{Checkout, Hub};
use scanpay::config::Settings;
use scanpay::store::Store;
use scanpay::values::money::Fen;
use scanpay::values::trade::{OutRefundNo, OutTradeNo};
use scanpay::wxpay::bill::{self, Bill, BillRow};

const PAYMENTS: usize = 10_000;
const REFUNDS: usize = 1_000;
const MCH_ID: &str = "10000100";

/// Hands over one prepared bill; nothing else is asked of it here.
struct PreparedBill(String);

fn not_here<T>() -> GatewayFuture<'static, T> {
    Box::pin(async { Err(GatewayError::Protocol("not used by this benchmark".into())) })
}

impl Gateway for PreparedBill {
    fn create_code<'a>(&'a self, _: &'a CodeRequest) -> GatewayFuture<'a, PayableCode> {
        not_here()
    }
    fn query<'a>(&'a self, _: &'a OutTradeNo) -> GatewayFuture<'a, TradeStatus> {
        not_here()
    }
    fn close<'a>(&'a self, _: &'a OutTradeNo) -> GatewayFuture<'a, ()> {
        not_here()
    }
    fn refund<'a>(&'a self, _: &'a RefundRequest) -> GatewayFuture<'a, RefundStatus> {
        not_here()
    }
    fn query_refund<'a>(&'a self, _: &'a OutRefundNo) -> GatewayFuture<'a, RefundStatus> {
        not_here()
    }
    fn read_notification(&self, _: &NotifyRequest<'_>) -> ReadNotification {
        unreachable!("no notification in this benchmark")
    }
    fn notify_reply(&self, _: Ack) -> NotifyReply {
        unreachable!("no notification in this benchmark")
    }
    fn fetch_bill(&self, _: jiff::civil::Date) -> GatewayFuture<'_, BillFetch> {
        let raw = self.0.clone();
        Box::pin(async move {
            let bill = scanpay::gateway::bill::day_bill(&raw, MCH_ID)?;
            Ok(BillFetch::Bill { bill, raw })
        })
    }
}

fn main() -> anyhow::Result<()> {
    let day = jiff::civil::date(2026, 11, 30);
    let noon = day
        .at(12, 0, 0, 0)
        .to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(8)))?
        .timestamp()
        .as_millisecond();
    let dir = tempfile::tempdir()?;
    drop(Store::open(dir.path())?);
    // The books: written straight into the schema, as the app would have.
    let mut c = rusqlite::Connection::open(dir.path().join(scanpay::store::DB_FILE))?;
    let tx = c.transaction()?;
    let mut rows = Vec::with_capacity(PAYMENTS + REFUNDS);
    for i in 0..PAYMENTS {
        let (no, otn, txid) = (
            format!("2026113{i:05}"),
            format!("2026113{i:05}-1-x"),
            format!("42000{i:023}"),
        );
        let amount = 100 + (i as i64 % 5000);
        let at = noon + i as i64;
        tx.execute(
            "INSERT INTO orders (id, order_no, token, amount_fen, description, state, created_at,
                                 expires_at, current_qr_id, paid_at, transaction_id)
             VALUES (?1, ?2, ?3, ?4, '', 'paid', ?5, ?5, ?1, ?5, ?6)",
            rusqlite::params![i as i64 + 1, no, format!("{i:032x}"), amount, at, txid],
        )?;
        tx.execute(
            "INSERT INTO qrs (id, order_id, version, out_trade_no, state, time_start, time_expire,
                              display_until, spbill_create_ip, created_at)
             VALUES (?1, ?1, 1, ?2, 'paid', ?3, ?3, ?3, '127.0.0.1', ?3)",
            rusqlite::params![i as i64 + 1, otn, at],
        )?;
        tx.execute(
            "INSERT INTO payments (id, transaction_id, qr_id, order_id, amount_fen, source,
                                   gateway_paid_at, late, double_paid, created_at)
             VALUES (?1, ?2, ?1, ?1, ?3, 'notify', ?4, 0, 0, ?5)",
            rusqlite::params![
                i as i64 + 1,
                txid,
                amount,
                noon + ((i as i64 / 60) % 60) * 60_000 + (i as i64 % 60) * 1000,
                at
            ],
        )?;
        rows.push(row(&otn, &txid, amount, None));
        if i < REFUNDS {
            let refund_no = format!("R{i:08}");
            tx.execute(
                "INSERT INTO refunds (out_refund_no, payment_id, order_id, amount_fen, state, username,
                                      reason, created_at, updated_at, finished_at, refund_id)
                 VALUES (?1, ?2, ?2, 50, 'succeeded', 'admin', '', ?3, ?3, ?3, ?4)",
                rusqlite::params![refund_no, i as i64 + 1, at + 1, format!("5030{i:012}")],
            )?;
            rows.push(row(&otn, &txid, amount, Some(&refund_no)));
        }
    }
    tx.commit()?;
    drop(c);
    let text = bill::render(&Bill::of(rows));

    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let store = Store::open(dir.path())?;
        let checkout = Checkout::new(
            store,
            Arc::new(PreparedBill(text.clone())),
            Hub::new(),
            Settings::default().checkout_config(),
        );
        let mut times = Vec::new();
        for _ in 0..5 {
            let start = Instant::now();
            let outcome = checkout.reconcile_day(day).await?;
            times.push(start.elapsed());
            anyhow::ensure!(
                scanpay::app::exit_code(&outcome) == 0,
                "{}",
                scanpay::app::summary_line(&outcome, day)
            );
        }
        times.sort();
        let start = Instant::now();
        let parsed = bill::parse(&text)?;
        let parse = start.elapsed();
        println!(
            "reconcile a day of {PAYMENTS} payments and {REFUNDS} refunds ({} bill rows, {} KB of bill): \
             median {:.0} ms, best {:.0} ms over {} runs; of which parsing the bill {:.0} ms",
            parsed.rows.len(),
            text.len() / 1024,
            times[times.len() / 2].as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e3,
            times.len(),
            parse.as_secs_f64() * 1e3,
        );
        Ok(())
    })
}

fn row(out_trade_no: &str, txid: &str, amount: i64, refund: Option<&str>) -> BillRow {
    BillRow {
        trade_time: "2026-11-30 12:00:00".into(),
        appid: "wxd930ea5d5a258f4f".into(),
        mch_id: MCH_ID.into(),
        transaction_id: txid.into(),
        out_trade_no: out_trade_no.into(),
        trade_type: "NATIVE".into(),
        trade_state: if refund.is_some() {
            "REFUND"
        } else {
            "SUCCESS"
        }
        .into(),
        settlement: Fen::new(amount),
        coupon: Fen::ZERO,
        refund_id: refund.map(|_| "5030".to_string()).unwrap_or_default(),
        out_refund_no: refund.unwrap_or_default().into(),
        refund: Fen::new(if refund.is_some() { 50 } else { 0 }),
        refund_state: if refund.is_some() { "SUCCESS" } else { "" }.into(),
        product: "咖啡, large".into(),
        fee_millifen: amount * 6,
        order_total: Fen::new(amount),
    }
}
