//! The simulated daily trade bill (`pay/downloadbill`), drawn from the
//! simulator's own ledger in the real layout: a fee of 0.6 %, back-quoted
//! fields, the summary rows. Unlike the real gateway it also serves the
//! current day, so that a demo and the tests need not wait a day. The bill
//! faults (`bill_omit`, `bill_alter`, `bill_extra`) make it disagree on purpose.

use actix_web::{HttpResponse, web};
use jiff::civil::Date;

use super::Simulator;
use super::faults::Faults;
use super::ledger::{Ledger, SimOrder, SimTradeState};
use crate::values::money::Fen;
use crate::wxpay::bill::{self, Bill, BillRow, beijing};
use crate::wxpay::v2::notify::return_fail;
use crate::wxpay::v2::refund::RefundStatusV2;
use crate::wxpay::v2::sign;
use crate::wxpay::v2::xml::{self, Fields};

/// The fee the simulated gateway charges: 0.6 % of each payment, in
/// thousandths of a fen (0.6 % of one fen is 6).
fn fee_millifen(amount: Fen) -> i64 {
    amount.get() * 6
}

/// Which merchant a bill is for: the v2 merchant's orders, or one v3 merchant's.
#[derive(Debug, Clone, Copy)]
pub enum BillOf<'a> {
    V2,
    V3 { mchid: &'a str },
}

impl BillOf<'_> {
    fn has(&self, o: &SimOrder) -> bool {
        match (self, &o.req.v3) {
            (BillOf::V2, None) => true,
            (BillOf::V3 { mchid }, Some(v)) => v.mchid == *mchid,
            _ => false,
        }
    }
}

/// Every payment (and succeeded refund) of `day` in the ledger for `of`, as
/// the bill lists them (by time), with the faults applied.
pub fn day_bill(
    ledger: &Ledger,
    of: BillOf<'_>,
    appid: &str,
    mch_id: &str,
    day: Date,
    faults: &Faults,
) -> Bill {
    let tz = beijing();
    let mut paid: Vec<_> = ledger
        .orders()
        .filter(|o| of.has(o))
        .filter_map(|o| match &o.state {
            SimTradeState::Paid(p) if p.time_end.to_zoned(tz.clone()).date() == day => Some((o, p)),
            _ => None,
        })
        .collect();
    paid.sort_by_key(|(_, p)| (p.time_end, p.transaction_id.clone()));
    let mut rows: Vec<BillRow> = paid
        .iter()
        .map(|(o, p)| BillRow {
            trade_time: p
                .time_end
                .to_zoned(tz.clone())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string(),
            appid: appid.to_string(),
            mch_id: mch_id.to_string(),
            transaction_id: p.transaction_id.clone(),
            out_trade_no: o.req.out_trade_no.as_str().to_string(),
            trade_type: "NATIVE".into(),
            trade_state: "SUCCESS".into(),
            settlement: o.req.total_fee,
            coupon: Fen::ZERO,
            refund_id: String::new(),
            out_refund_no: String::new(),
            refund: Fen::ZERO,
            refund_state: String::new(),
            product: o.req.body.clone(),
            fee_millifen: fee_millifen(o.req.total_fee),
            order_total: o.req.total_fee,
        })
        .collect();
    // A refund is listed on the day it succeeded, as its own row.
    let mut refunds: Vec<_> = ledger
        .refunds
        .all()
        .filter(|r| r.status == RefundStatusV2::Success)
        .filter(|r| ledger.get(&r.out_trade_no).is_some_and(|o| of.has(o)))
        .filter_map(|r| r.success_time.map(|t| (r, t)))
        .filter(|(_, t)| t.to_zoned(tz.clone()).date() == day)
        .collect();
    refunds.sort_by_key(|(r, t)| (*t, r.out_refund_no.clone()));
    for (r, t) in refunds {
        let product = ledger
            .get(&r.out_trade_no)
            .map(|o| o.req.body.clone())
            .unwrap_or_default();
        rows.push(BillRow {
            trade_time: t
                .to_zoned(tz.clone())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string(),
            appid: appid.to_string(),
            mch_id: mch_id.to_string(),
            transaction_id: r.transaction_id.clone(),
            out_trade_no: r.out_trade_no.clone(),
            trade_type: "NATIVE".into(),
            trade_state: "REFUND".into(),
            settlement: r.total_fee,
            coupon: Fen::ZERO,
            refund_id: r.refund_id.clone(),
            out_refund_no: r.out_refund_no.clone(),
            refund: r.refund_fee,
            refund_state: "SUCCESS".into(),
            product,
            // The fee on the money that went back is returned.
            fee_millifen: -fee_millifen(r.refund_fee),
            order_total: r.total_fee,
        });
    }
    apply_faults(&mut rows, faults, day);
    Bill::of(rows)
}

fn apply_faults(rows: &mut Vec<BillRow>, faults: &Faults, day: Date) {
    let omit = usize::try_from(faults.bill_omit).unwrap_or(usize::MAX);
    rows.drain(..omit.min(rows.len()));
    let alter = usize::try_from(faults.bill_alter).unwrap_or(usize::MAX);
    for r in rows.iter_mut().filter(|r| !r.is_refund()).take(alter) {
        // A cent more than was paid: the smallest difference there is.
        r.settlement = Fen::new(r.settlement.get() + 1);
        r.order_total = r.settlement;
        r.fee_millifen = fee_millifen(r.settlement);
    }
    let template = rows.first().cloned();
    for i in 0..faults.bill_extra.min(10_000) {
        let mut extra = template.clone().unwrap_or_else(|| BillRow {
            trade_time: format!("{day} 12:00:00"),
            appid: String::new(),
            mch_id: String::new(),
            transaction_id: String::new(),
            out_trade_no: String::new(),
            trade_type: "NATIVE".into(),
            trade_state: "SUCCESS".into(),
            settlement: Fen::ZERO,
            coupon: Fen::ZERO,
            refund_id: String::new(),
            out_refund_no: String::new(),
            refund: Fen::ZERO,
            refund_state: String::new(),
            product: String::new(),
            fee_millifen: 0,
            order_total: Fen::ZERO,
        });
        extra.transaction_id = format!("4299{}{:010}", day.strftime("%Y%m%d"), i);
        extra.out_trade_no = format!("NOT-OURS-{}-{i}", day.strftime("%Y%m%d"));
        extra.trade_state = "SUCCESS".into();
        extra.settlement = Fen::new(1000 + i64::try_from(i).unwrap_or(0));
        extra.order_total = extra.settlement;
        extra.fee_millifen = fee_millifen(extra.settlement);
        extra.product = "bill_extra".into();
        rows.push(extra);
    }
}

fn xml_answer(fields: &Fields) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/xml; charset=utf-8")
        .body(xml::to_xml(fields))
}

/// `POST /pay/downloadbill`: signed like every v2 request; the answer is the
/// bill's text, or XML with `return_code` FAIL.
pub async fn downloadbill(sim: web::Data<Simulator>, body: web::Bytes) -> HttpResponse {
    let faults = sim.faults();
    faults.delay().await;
    let Ok(req) = xml::from_xml(&body) else {
        return xml_answer(&return_fail("XML格式错误"));
    };
    let merchant = sim.merchant();
    if req.get("mch_id") != Some(merchant.mch_id.as_str())
        || req.get("appid") != Some(merchant.appid.as_str())
    {
        return xml_answer(&return_fail("mch_id参数错误"));
    }
    if req.non_empty("nonce_str").is_none() {
        return xml_answer(&return_fail("missing parameter"));
    }
    if sign::verify(&req, &merchant.key).is_err() {
        return xml_answer(&return_fail("SIGN ERROR"));
    }
    match req.non_empty("bill_type").unwrap_or("ALL") {
        "ALL" | "SUCCESS" => {}
        _ => return xml_answer(&return_fail("invalid bill_type")),
    }
    let Some(day) = req
        .non_empty("bill_date")
        .and_then(|d| Date::strptime("%Y%m%d", d).ok())
    else {
        return xml_answer(&return_fail("data format error"));
    };
    let today = jiff::Timestamp::now().to_zoned(beijing()).date();
    if day > today {
        return xml_answer(&return_fail("Bill Creating"));
    }
    let bill = day_bill(
        &sim.ledger(),
        BillOf::V2,
        merchant.appid.as_str(),
        merchant.mch_id.as_str(),
        day,
        &faults,
    );
    if bill.rows.is_empty() {
        let mut f = return_fail("No Bill Exist");
        f.set("error_code", "20002");
        return xml_answer(&f);
    }
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(bill::render(&bill))
}
