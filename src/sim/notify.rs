//! Which sender tells the merchant: an order or refund made through API v3
//! is notified by `v3::notify`, any other by the v2 `notifier`.

use super::Simulator;
use super::faults::roll;
use super::ledger::{SimOrder, SimRefund};

/// Starts the deliveries of a paid order's notification.
pub fn dispatch_payment(sim: &Simulator, order: &SimOrder) {
    if order.req.v3.is_some() {
        super::v3::notify::dispatch(sim, order);
    } else {
        super::notifier::dispatch(sim, order);
    }
}

/// Starts the deliveries of a finished refund's notification, if it asked for one.
pub fn dispatch_refund(sim: &Simulator, refund: &SimRefund) {
    let Some(url) = refund.notify_url.as_deref() else {
        return;
    };
    if roll(sim.faults().drop_notify) {
        tracing::info!(out_refund_no = %refund.out_refund_no, "sim: refund notification dropped (fault)");
        return;
    }
    match &refund.v3_serial {
        Some(serial) => super::v3::notify::dispatch_refund(sim, refund, url, serial),
        None => super::notifier::dispatch_refund(sim, refund, url),
    }
}
