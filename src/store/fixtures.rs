//! Test fixtures shared by the store's unit tests: a fresh store and a sale
//! recorded through the real insert functions, so each test states only what
//! differs.

use super::qrs;
use rusqlite::Transaction;

use super::Store;
use super::orders::{self, NewOrder};
use super::payments::{self, NewPayment};
use super::qrs::NewQr;
use crate::values::clock::Millis;
use crate::values::money::Fen;

/// A UTC instant written as RFC 3339, in the milliseconds every column uses.
pub fn ms(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

/// One order to record; `Sale::default()` is a 1-yuan order paid on 1 June 2024.
pub struct Sale<'a> {
    pub amount: i64,
    pub description: &'a str,
    pub cashier: Option<i64>,
    pub paid_at: Option<&'a str>,
    pub transaction_id: &'a str,
    pub late: bool,
}

impl Default for Sale<'_> {
    fn default() -> Self {
        Sale {
            amount: 100,
            description: "",
            cashier: None,
            paid_at: Some("2024-06-01T04:00:00Z"),
            transaction_id: "",
            late: false,
        }
    }
}

/// Records an order with one QR, paid at `paid_at` unless `None`; returns `(id, order_no)`.
pub fn sale(tx: &Transaction<'_>, s: Sale<'_>) -> (i64, crate::values::order::OrderNo) {
    let token = crate::values::order::OrderToken::generate();
    let (id, order_no) = orders::insert_order(
        tx,
        &NewOrder {
            token: &token,
            amount: Fen::new(s.amount),
            description: s.description,
            cashier_id: s.cashier.map(crate::values::order::UserId),
            now: Millis(0),
            expires_at: Millis(1),
            day: "20240601",
        },
    )
    .unwrap();
    let out_trade_no = crate::values::trade::OutTradeNo::new(format!("{order_no}-1-abc")).unwrap();
    let qr_id = qrs::insert_qr(
        tx,
        &NewQr {
            order_id: id,
            version: 1,
            out_trade_no: &out_trade_no,
            time_start: Millis(0),
            time_expire: Millis(1),
            display_until: Millis(1),
            client_ip: "127.0.0.1",
            now: Millis(0),
        },
    )
    .unwrap();
    if let Some(at) = s.paid_at {
        let at = Millis(ms(at));
        let txid = crate::values::trade::TransactionId::new(if s.transaction_id.is_empty() {
            format!("TX{order_no}")
        } else {
            s.transaction_id.to_string()
        })
        .unwrap();
        payments::insert_payment(
            tx,
            &NewPayment {
                transaction_id: &txid,
                qr_id,
                order_id: id,
                amount: Fen::new(s.amount),
                source: crate::values::order::PaymentSource::Notify,
                openid: None,
                gateway_paid_at: None,
                late: s.late,
                double_paid: false,
                now: at,
            },
        )
        .unwrap();
        payments::mark_order_paid(tx, id, qr_id, &txid, at, s.late).unwrap();
    }
    (id.0, order_no)
}

/// A store in a fresh temporary directory, removed when the `TempDir` drops.
pub fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}
