//! v3 payment notifications: `TRANSACTION.SUCCESS`, the transaction encrypted
//! with the merchant's APIv3 key (associated data `transaction`, a 12-char
//! nonce), the body signed with the key the merchant asked for when ordering,
//! signed afresh at each delivery (the body and its id stay the same), sent on
//! WeChat Pay's schedule divided by `sim.time_scale` until answered 200 or 204.

use std::time::Duration;

use rand::Rng;
use rand::distr::{Alphanumeric, SampleString};

use super::super::Simulator;
use super::super::delivery::retry_until_acked;
use super::super::faults::roll;
use super::super::ledger::SimRefund;
use super::super::ledger::{SimOrder, SimTradeState};
use crate::wxpay::v3::api;
use crate::wxpay::v3::notify::{EventHead, TRANSACTION_SUCCESS, seal};
use crate::wxpay::v3::refund::RefundNotice;
use crate::wxpay::v3::sign::SCHEME;
use crate::wxpay::v3::verify::response_message;

/// An id like the ones real deliveries carry (UUID-shaped, treated as opaque).
fn notification_id() -> String {
    let mut rng = rand::rng();
    let h: String = (0..32)
        .map(|_| char::from_digit(rng.random_range(0..16u32), 16).unwrap_or('0'))
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The notification body of a paid v3 order.
pub fn body(sim: &Simulator, order: &SimOrder) -> Option<Vec<u8>> {
    let plain = serde_json::to_vec(&super::json::transaction(order)).ok()?;
    sealed(sim, TRANSACTION_SUCCESS, "支付成功", "transaction", &plain)
}

/// An envelope for `plain`, fresh id, time and nonce, as the simulator sends it.
fn sealed(
    sim: &Simulator,
    event_type: &str,
    summary: &str,
    kind: &str,
    plain: &[u8],
) -> Option<Vec<u8>> {
    let nonce = Alphanumeric.sample_string(&mut rand::rng(), 12);
    let (id, create_time) = (notification_id(), api::format_time(jiff::Timestamp::now()));
    let head = EventHead {
        id: &id,
        create_time: &create_time,
        event_type,
        summary,
    };
    let envelope = seal(&sim.v3().merchant.apiv3_key, &nonce, &head, kind, plain).ok()?;
    serde_json::to_vec(&envelope).ok()
}

/// Starts the deliveries of a paid v3 order's notification (and the faults' copies).
pub fn dispatch(sim: &Simulator, order: &SimOrder) {
    let (SimTradeState::Paid(_), Some(v3)) = (&order.state, &order.req.v3) else {
        return;
    };
    let faults = sim.faults();
    if roll(faults.drop_notify) {
        tracing::info!(out_trade_no = %order.req.out_trade_no, "sim: v3 notification dropped (fault)");
        return;
    }
    let Some(body) = body(sim, order) else {
        tracing::error!(out_trade_no = %order.req.out_trade_no, "sim: cannot build the v3 notification");
        return;
    };
    let delay = Duration::from_millis(faults.notify_delay_ms);
    for _ in 0..=faults.duplicate_notify {
        let out_trade_no = order.req.out_trade_no.clone();
        tokio::spawn(deliver(
            sim.clone(),
            order.req.notify_url.clone(),
            body.clone(),
            v3.sign_serial.clone(),
            delay,
            move |sim: &Simulator, acked| {
                sim.ledger().record_delivery(out_trade_no.as_str(), acked);
            },
        ));
    }
}

/// The notification of a refund's outcome: `REFUND.SUCCESS` (or ABNORMAL,
/// CLOSED), the refund encrypted with associated data `refund`.
pub fn refund_body(sim: &Simulator, refund: &SimRefund) -> Option<Vec<u8>> {
    let answer = super::json::refund_object(refund);
    let notice = RefundNotice {
        mchid: sim.v3().merchant.mchid.clone(),
        transaction_id: answer.transaction_id,
        out_trade_no: answer.out_trade_no,
        refund_id: answer.refund_id,
        out_refund_no: answer.out_refund_no,
        refund_status: answer.status.clone(),
        success_time: answer.success_time,
        user_received_account: answer.user_received_account,
        amount: answer.amount,
    };
    let plain = serde_json::to_vec(&notice).ok()?;
    let (event, summary) = match answer.status.as_str() {
        "SUCCESS" => ("REFUND.SUCCESS", "退款成功"),
        "CLOSED" => ("REFUND.CLOSED", "退款关闭"),
        _ => ("REFUND.ABNORMAL", "退款异常"),
    };
    sealed(sim, event, summary, "refund", &plain)
}

/// Starts the deliveries of a v3 refund's notification (and the faults' copies).
pub fn dispatch_refund(sim: &Simulator, refund: &SimRefund, url: &str, sign_serial: &str) {
    let Some(body) = refund_body(sim, refund) else {
        tracing::error!(out_refund_no = %refund.out_refund_no, "sim: cannot build the v3 refund notification");
        return;
    };
    let faults = sim.faults();
    let delay = Duration::from_millis(faults.notify_delay_ms);
    for _ in 0..=faults.duplicate_notify {
        let no = refund.out_refund_no.clone();
        tokio::spawn(deliver(
            sim.clone(),
            url.to_string(),
            body.clone(),
            sign_serial.to_string(),
            delay,
            move |sim: &Simulator, acked| sim.ledger().refunds.record_delivery(&no, acked),
        ));
    }
}

/// Delivers `body` until it is acknowledged (the simulator's one retry loop),
/// `record`ing each attempt.
async fn deliver(
    sim: Simulator,
    url: String,
    body: Vec<u8>,
    sign_serial: String,
    delay: Duration,
    record: impl Fn(&Simulator, bool) + Send + 'static,
) {
    tokio::time::sleep(delay).await;
    let what = format!("v3 notification to {url}");
    retry_until_acked(
        &sim,
        &what,
        || send(&sim, &url, &body, &sign_serial),
        record,
    )
    .await;
}

/// One delivery, signed now; acknowledged only by 200 or 204 (the status decides).
async fn send(sim: &Simulator, url: &str, body: &[u8], sign_serial: &str) -> bool {
    let Some((serial, signer)) = sim.v3().keys().for_serial(Some(sign_serial)) else {
        return false;
    };
    let ts = jiff::Timestamp::now().as_second().to_string();
    let nonce = Alphanumeric.sample_string(&mut rand::rng(), 32);
    let Ok(signature) = signer.sign(&response_message(&ts, &nonce, body)) else {
        return false;
    };
    match sim
        .http()
        .post(url)
        .header("content-type", "application/json")
        .header("Wechatpay-Timestamp", ts)
        .header("Wechatpay-Nonce", nonce)
        .header("Wechatpay-Signature", signature)
        .header("Wechatpay-Serial", serial)
        .header("Wechatpay-Signature-Type", SCHEME)
        .body(body.to_vec())
        .send()
        .await
    {
        Ok(resp) => matches!(resp.status().as_u16(), 200 | 204),
        Err(_) => false,
    }
}
