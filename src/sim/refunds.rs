//! The simulated gateway's refunds (v2): `secapi/pay/refund` and
//! `pay/refundquery`. A refund stays PROCESSING for `refund_delay_ms`, then
//! succeeds (or turns CHANGE, abnormal, under `refund_abnormal_rate`) and the
//! encrypted refund notification is sent, retried like payment notifications.
//! The book refuses more than was paid and more than 50 refunds per payment;
//! the same out_refund_no again is the same refund.

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;
use rand::Rng;

use super::Simulator;
use super::faults::roll;
use super::ledger::{Ledger, Refusal, SimTradeState};
use super::notifier::{post_xml, retry_until_acked};
use crate::values::money::Fen;
use crate::wxpay::v2::refund::{RefundInfo, RefundStatusV2, build_notification};
use crate::wxpay::v2::xml::Fields;
use crate::wxpay::v2::{ErrCode, client::nonce, xml};

/// Where simulated refunds go back to: the customer's change wallet.
pub const SIM_ACCOUNT: &str = "支付用户零钱";
const MAX_REFUNDS: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRefund {
    pub out_refund_no: String,
    pub out_trade_no: String,
    pub transaction_id: String,
    pub refund_id: String,
    pub refund_fee: Fen,
    pub total_fee: Fen,
    pub status: RefundStatusV2,
    pub notify_url: Option<String>,
    pub success_time: Option<Timestamp>,
    pub notify_attempts: u32,
    pub notify_acked: bool,
    /// Made through API v3: the serial its notification is signed with.
    pub v3_serial: Option<String>,
    pub created_at: Timestamp,
}

impl SimRefund {
    pub fn info(&self) -> RefundInfo {
        RefundInfo {
            out_refund_no: self.out_refund_no.clone(),
            out_trade_no: Some(self.out_trade_no.clone()),
            transaction_id: Some(self.transaction_id.clone()),
            refund_id: Some(self.refund_id.clone()),
            refund_fee: Some(self.refund_fee),
            status: self.status.clone(),
            account: Some(SIM_ACCOUNT.to_string()),
            success_time: self.success_time.map(|t| {
                t.to_zoned(crate::wxpay::v2::types::beijing())
                    .strftime("%Y-%m-%d %H:%M:%S")
                    .to_string()
            }),
        }
    }
}

/// Every refund the simulated gateway accepted, by out_refund_no.
#[derive(Debug, Default)]
pub struct RefundBook {
    refunds: HashMap<String, SimRefund>,
}

impl RefundBook {
    pub fn get(&self, out_refund_no: &str) -> Option<&SimRefund> {
        self.refunds.get(out_refund_no)
    }

    /// How many refunds the gateway holds (a test counts them).
    pub fn len(&self) -> usize {
        self.refunds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.refunds.is_empty()
    }

    /// Marks a refund as made through API v3 (its notification is v3's).
    pub fn mark_v3(&mut self, out_refund_no: &str, serial: &str) {
        if let Some(r) = self.refunds.get_mut(out_refund_no) {
            r.v3_serial = Some(serial.to_string());
        }
    }

    /// Counts one delivery of a refund's notification.
    pub fn record_delivery(&mut self, out_refund_no: &str, acked: bool) {
        if let Some(r) = self.refunds.get_mut(out_refund_no) {
            r.notify_attempts += 1;
            r.notify_acked |= acked;
        }
    }

    /// Every refund, in no particular order (the bill sorts what it lists).
    pub fn all(&self) -> impl Iterator<Item = &SimRefund> {
        self.refunds.values()
    }

    fn of_trade(&self, out_trade_no: &str) -> impl Iterator<Item = &SimRefund> {
        self.refunds
            .values()
            .filter(move |r| r.out_trade_no == out_trade_no)
    }
}

fn refuse(code: ErrCode, description: &str) -> Refusal {
    Refusal {
        code,
        description: description.to_string(),
    }
}

fn err(description: &str) -> Refusal {
    refuse(ErrCode::Other("ERROR".into()), description)
}

/// A validated `secapi/pay/refund`.
pub struct RefundAsk<'a> {
    pub transaction_id: Option<&'a str>,
    pub out_trade_no: Option<&'a str>,
    pub out_refund_no: &'a str,
    pub total_fee: Fen,
    pub refund_fee: Fen,
    pub notify_url: Option<&'a str>,
}

/// The refund (new, or the one already under that number), or the refusal.
pub fn accept(
    ledger: &mut Ledger,
    ask: &RefundAsk<'_>,
    now: Timestamp,
) -> Result<(SimRefund, bool), Refusal> {
    let order = match (ask.transaction_id, ask.out_trade_no) {
        (Some(t), _) => ledger.get_by_transaction(t),
        (None, Some(o)) => ledger.get(o),
        (None, None) => None,
    }
    .ok_or_else(|| refuse(ErrCode::OrderNotExist, "订单不存在"))?
    .clone();
    let SimTradeState::Paid(payment) = &order.state else {
        return Err(refuse(ErrCode::OrderNotExist, "订单未支付"));
    };
    if let Some(existing) = ledger.refunds.get(ask.out_refund_no) {
        if existing.refund_fee != ask.refund_fee
            || existing.total_fee != ask.total_fee
            || existing.out_trade_no != order.req.out_trade_no.as_str()
        {
            return Err(err("订单金额或退款金额与之前请求不一致，请核实后再试"));
        }
        return Ok((existing.clone(), false));
    }
    if ask.total_fee != order.req.total_fee {
        return Err(refuse(ErrCode::InvalidRequest, "订单金额与支付金额不一致"));
    }
    if now.duration_since(payment.time_end) > jiff::SignedDuration::from_hours(365 * 24) {
        return Err(refuse(ErrCode::TradeOverdue, "订单已经超过退款期限"));
    }
    let book = &ledger.refunds;
    let taken: Vec<&SimRefund> = book
        .of_trade(order.req.out_trade_no.as_str())
        .filter(|r| r.status != RefundStatusV2::Closed)
        .collect();
    if taken.len() >= MAX_REFUNDS {
        return Err(err("退款次数超过限制"));
    }
    let refunded: i64 = taken.iter().map(|r| r.refund_fee.get()).sum();
    if refunded + ask.refund_fee.get() > order.req.total_fee.get() {
        return Err(err(if refunded >= order.req.total_fee.get() {
            "订单已全额退款"
        } else {
            "申请退款金额超过订单可退金额"
        }));
    }
    let refund = SimRefund {
        out_refund_no: ask.out_refund_no.to_string(),
        out_trade_no: order.req.out_trade_no.to_string(),
        transaction_id: payment.transaction_id.clone(),
        refund_id: format!(
            "50000{}{:012}",
            now.to_zoned(crate::wxpay::v2::types::beijing())
                .strftime("%Y%m%d"),
            rand::rng().random_range(0..1_000_000_000_000u64)
        ),
        refund_fee: ask.refund_fee,
        total_fee: ask.total_fee,
        status: RefundStatusV2::Processing,
        notify_url: ask.notify_url.map(str::to_string),
        success_time: None,
        notify_attempts: 0,
        notify_acked: false,
        v3_serial: None,
        created_at: now,
    };
    ledger
        .refunds
        .refunds
        .insert(refund.out_refund_no.clone(), refund.clone());
    Ok((refund, true))
}

fn need<'a>(f: &'a Fields, key: &str) -> Result<&'a str, Refusal> {
    f.non_empty(key)
        .ok_or_else(|| refuse(ErrCode::LackParams, &format!("缺少参数{key}")))
}

fn fen(f: &Fields, key: &str) -> Result<Fen, Refusal> {
    need(f, key)?
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .map(Fen::new)
        .ok_or_else(|| refuse(ErrCode::InvalidRequest, &format!("{key}参数错误")))
}

/// `secapi/pay/refund`, after the envelope and signature were checked.
pub fn refund(sim: &Simulator, req: &Fields) -> Result<Fields, Refusal> {
    let faults = sim.faults();
    if roll(faults.refund_systemerror_rate) {
        return Err(refuse(ErrCode::SystemError, "系统繁忙，请稍后再试"));
    }
    let out_refund_no = need(req, "out_refund_no")?;
    if crate::values::trade::OutRefundNo::new(out_refund_no).is_err() {
        return Err(refuse(ErrCode::InvalidRequest, "out_refund_no参数格式错误"));
    }
    let ask = RefundAsk {
        transaction_id: req.non_empty("transaction_id"),
        out_trade_no: req.non_empty("out_trade_no"),
        out_refund_no,
        total_fee: fen(req, "total_fee")?,
        refund_fee: fen(req, "refund_fee")?,
        notify_url: req.non_empty("notify_url"),
    };
    if ask.transaction_id.is_none() && ask.out_trade_no.is_none() {
        return Err(refuse(
            ErrCode::LackParams,
            "缺少参数transaction_id或out_trade_no",
        ));
    }
    if roll(faults.refund_notenough_rate) {
        return Err(refuse(
            ErrCode::NotEnough,
            "基本账户余额不足,请充值后重新发起",
        ));
    }
    let (r, new) = accept(&mut sim.ledger(), &ask, Timestamp::now())?;
    if new {
        let abnormal = roll(faults.refund_abnormal_rate);
        tokio::spawn(finish(
            sim.clone(),
            r.out_refund_no.clone(),
            Duration::from_millis(faults.refund_delay_ms),
            abnormal,
        ));
    }
    let mut f = Fields::new();
    f.set("transaction_id", r.transaction_id.as_str());
    f.set("out_trade_no", r.out_trade_no.as_str());
    f.set("out_refund_no", r.out_refund_no.as_str());
    f.set("refund_id", r.refund_id.as_str());
    f.set("refund_fee", r.refund_fee.get().to_string());
    f.set("total_fee", r.total_fee.get().to_string());
    f.set("cash_fee", r.total_fee.get().to_string());
    f.set("cash_refund_fee", r.refund_fee.get().to_string());
    Ok(f)
}

/// `pay/refundquery` by out_refund_no (or every refund of a trade).
pub fn query(sim: &Simulator, req: &Fields) -> Result<Fields, Refusal> {
    let ledger = sim.ledger();
    let listed: Vec<SimRefund> = if let Some(no) = req.non_empty("out_refund_no") {
        ledger.refunds.get(no).cloned().into_iter().collect()
    } else if let Some(o) = req.non_empty("out_trade_no") {
        ledger.refunds.of_trade(o).cloned().collect()
    } else if let Some(t) = req.non_empty("transaction_id") {
        ledger
            .refunds
            .refunds
            .values()
            .filter(|r| r.transaction_id == t)
            .cloned()
            .collect()
    } else {
        return Err(refuse(ErrCode::LackParams, "缺少参数out_refund_no"));
    };
    let Some(first) = listed.first() else {
        return Err(refuse(ErrCode::RefundNotExist, "退款单不存在"));
    };
    let mut f = Fields::new();
    f.set("transaction_id", first.transaction_id.as_str());
    f.set("out_trade_no", first.out_trade_no.as_str());
    f.set("total_fee", first.total_fee.get().to_string());
    f.set("cash_fee", first.total_fee.get().to_string());
    f.set("refund_count", listed.len().to_string());
    for (n, r) in listed.iter().enumerate() {
        f.set(format!("out_refund_no_{n}"), r.out_refund_no.as_str());
        f.set(format!("refund_id_{n}"), r.refund_id.as_str());
        f.set(format!("refund_channel_{n}"), "ORIGINAL");
        f.set(format!("refund_fee_{n}"), r.refund_fee.get().to_string());
        f.set(format!("refund_status_{n}"), r.status.as_str());
        f.set(
            format!("refund_account_{n}"),
            "REFUND_SOURCE_UNSETTLED_FUNDS",
        );
        f.set(format!("refund_recv_accout_{n}"), SIM_ACCOUNT);
        if let Some(t) = r.success_time {
            f.set(
                format!("refund_success_time_{n}"),
                t.to_zoned(crate::wxpay::v2::types::beijing())
                    .strftime("%Y-%m-%d %H:%M:%S")
                    .to_string(),
            );
        }
    }
    Ok(f)
}

/// After the delay the refund reaches its outcome, and the merchant is told.
pub(crate) async fn finish(sim: Simulator, out_refund_no: String, delay: Duration, abnormal: bool) {
    tokio::time::sleep(delay).await;
    let refund = {
        let mut ledger = sim.ledger();
        let Some(r) = ledger.refunds.refunds.get_mut(&out_refund_no) else {
            return;
        };
        if abnormal {
            r.status = RefundStatusV2::Change;
        } else {
            r.status = RefundStatusV2::Success;
            r.success_time = Some(Timestamp::now());
        }
        r.clone()
    };
    tracing::info!(%out_refund_no, status = refund.status.as_str(), "sim: refund done");
    let Some(url) = refund.notify_url.clone() else {
        return;
    };
    let faults = sim.faults();
    if roll(faults.drop_notify) {
        tracing::info!(%out_refund_no, "sim: refund notification dropped (fault)");
        return;
    }
    if let Some(serial) = &refund.v3_serial {
        super::v3::notify::dispatch_refund(&sim, &refund, &url, serial);
        return;
    }
    let body = xml::to_xml(&build_notification(
        &refund.info(),
        sim.merchant(),
        &nonce(),
    ));
    for _ in 0..=faults.duplicate_notify {
        tokio::spawn(deliver(
            sim.clone(),
            url.clone(),
            out_refund_no.clone(),
            body.clone(),
        ));
    }
}

async fn deliver(sim: Simulator, url: String, out_refund_no: String, body: String) {
    let what = format!("refund notification of {out_refund_no}");
    retry_until_acked(
        &sim,
        &what,
        || post_xml(&sim, &url, &body),
        |sim, acked| sim.ledger().refunds.record_delivery(&out_refund_no, acked),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wxpay::v2::{OutTradeNo, SignType};

    fn paid_ledger(fee: i64) -> (Ledger, String) {
        let now = Timestamp::now();
        let mut l = Ledger::default();
        let o = l
            .create(
                super::super::ledger::NewOrder {
                    out_trade_no: OutTradeNo::new("T1").unwrap(),
                    body: "b".into(),
                    attach: None,
                    total_fee: Fen::new(fee),
                    notify_url: "http://127.0.0.1/wxpay/notify".into(),
                    product_id: "p".into(),
                    spbill_create_ip: "127.0.0.1".into(),
                    time_expire: None,
                    sign_type: SignType::Md5,
                    v3: None,
                },
                now,
            )
            .unwrap();
        l.pay(&o.code_url, now).unwrap();
        (l, "T1".into())
    }

    fn ask(no: &str, fee: i64) -> RefundAsk<'_> {
        RefundAsk {
            transaction_id: None,
            out_trade_no: Some("T1"),
            out_refund_no: no,
            total_fee: Fen::new(1000),
            refund_fee: Fen::new(fee),
            notify_url: None,
        }
    }

    #[test]
    fn the_book_never_refunds_more_than_was_paid() {
        let (mut l, _) = paid_ledger(1000);
        let now = Timestamp::now();
        let (a, new) = accept(&mut l, &ask("R1", 600), now).unwrap();
        assert!(new);
        let (again, new) = accept(&mut l, &ask("R1", 600), now).unwrap();
        assert!(!new, "the same number is the same refund");
        assert_eq!(a.refund_id, again.refund_id);
        assert!(
            accept(&mut l, &ask("R1", 500), now).is_err(),
            "same number, other amount"
        );
        let over = accept(&mut l, &ask("R2", 401), now).unwrap_err();
        assert_eq!(over.code, ErrCode::Other("ERROR".into()));
        accept(&mut l, &ask("R3", 400), now).unwrap();
        assert_eq!(
            accept(&mut l, &ask("R4", 1), now).unwrap_err().description,
            "订单已全额退款"
        );
        let mut unknown = ask("R5", 1);
        unknown.out_trade_no = Some("T9");
        assert_eq!(
            accept(&mut l, &unknown, now).unwrap_err().code,
            ErrCode::OrderNotExist
        );
        assert_eq!(l.refunds.len(), 2);
    }

    #[test]
    fn at_most_fifty_refunds_per_payment() {
        let (mut l, _) = paid_ledger(1000);
        let now = Timestamp::now();
        for i in 0..50 {
            accept(&mut l, &ask(&format!("R{i}"), 1), now).unwrap();
        }
        assert_eq!(
            accept(&mut l, &ask("R50", 1), now).unwrap_err().description,
            "退款次数超过限制"
        );
    }
}
