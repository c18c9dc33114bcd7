//! Signed payment notifications sent to the order's `notify_url` on WeChat's
//! retry schedule (divided by `sim.time_scale`) until the merchant answers SUCCESS.

use std::time::Duration;

use super::Simulator;
use super::delivery::{post_xml, retry_until_acked};
use super::faults::roll;
use super::ledger::{SimOrder, SimRefund, SimTradeState};
use crate::wxpay::v2::notify::{self, PaymentNotice};
use crate::wxpay::v2::refund::build_notification;
use crate::wxpay::v2::types::format_time;
use crate::wxpay::v2::{OutTradeNo, client::nonce, xml};

/// Starts the deliveries of a paid order's notification (and the faults' copies).
pub fn dispatch(sim: &Simulator, order: &SimOrder) {
    let SimTradeState::Paid(payment) = &order.state else {
        return;
    };
    let faults = sim.faults();
    if roll(faults.drop_notify) {
        tracing::info!(out_trade_no = %order.req.out_trade_no, "sim: notification dropped (fault)");
        return;
    }
    let notice = PaymentNotice {
        out_trade_no: order.req.out_trade_no.clone(),
        transaction_id: payment.transaction_id.clone(),
        total_fee: order.req.total_fee,
        openid: Some(payment.openid.clone()),
        time_end: Some(format_time(payment.time_end)),
        bank_type: Some("OTHERS".into()),
    };
    let fields = notify::build(
        &notice,
        sim.merchant(),
        order.req.sign_type,
        &nonce(),
        order.req.attach.as_deref(),
    );
    let body = xml::to_xml(&fields);
    let delay = Duration::from_millis(faults.notify_delay_ms);
    for _ in 0..=faults.duplicate_notify {
        tokio::spawn(deliver(
            sim.clone(),
            order.req.notify_url.clone(),
            order.req.out_trade_no.clone(),
            body.clone(),
            delay,
        ));
    }
}

async fn deliver(
    sim: Simulator,
    url: String,
    out_trade_no: OutTradeNo,
    body: String,
    delay: Duration,
) {
    tokio::time::sleep(delay).await;
    let what = format!("payment notification of {out_trade_no}");
    retry_until_acked(
        &sim,
        &what,
        || post_xml(&sim, &url, &body),
        |sim, acked| sim.ledger().record_delivery(out_trade_no.as_str(), acked),
    )
    .await;
}

/// Starts the deliveries of a v2 refund's notification to `url` (and the faults' copies).
pub fn dispatch_refund(sim: &Simulator, refund: &SimRefund, url: &str) {
    let out_refund_no = refund.out_refund_no.clone();
    let faults = sim.faults();
    let body = xml::to_xml(&build_notification(
        &refund.info(),
        sim.merchant(),
        &nonce(),
    ));
    for _ in 0..=faults.duplicate_notify {
        tokio::spawn(deliver_refund(
            sim.clone(),
            url.to_string(),
            out_refund_no.clone(),
            body.clone(),
        ));
    }
}

async fn deliver_refund(sim: Simulator, url: String, out_refund_no: String, body: String) {
    let what = format!("refund notification of {out_refund_no}");
    retry_until_acked(
        &sim,
        &what,
        || post_xml(&sim, &url, &body),
        |sim, acked| sim.ledger().refunds.record_delivery(&out_refund_no, acked),
    )
    .await;
}
