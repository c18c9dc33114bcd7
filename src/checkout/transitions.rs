//! The order's state changes that need no gateway answer, each a plain function
//! over one transaction (so they can be tested, and interleaved, without I/O).

use crate::store::{events, qrs};
use std::time::Duration;

use rand::distr::{Alphanumeric, SampleString};
use rusqlite::Transaction;

use crate::store::StoreError;
use crate::store::orders::{self, OrderRow};
use crate::store::qrs::{NewQr, QrRow};
use crate::values::clock::Millis;
use crate::values::order::{OrderId, OrderNo, OrderState, QrId, QrState};
use crate::values::trade::OutTradeNo;

/// The gateway refuses a NATIVE `time_expire` closer than 5 minutes; we add a margin
/// and let the QR's life on screen be our own timer.
const MIN_GATEWAY_LIFE: Duration = Duration::from_secs(5 * 60);
pub const GATEWAY_MARGIN: Duration = Duration::from_secs(60);

/// The parameters of a QR's gateway order, fixed when its row is written so
/// that sending it again sends exactly the same.
#[derive(Debug, Clone)]
pub struct QrPlan {
    pub out_trade_no: OutTradeNo,
    pub time_start: Millis,
    pub time_expire: Millis,
    pub display_until: Millis,
    pub client_ip: String,
}

pub fn plan_qr(
    qr_ttl: Duration,
    order_no: &OrderNo,
    version: i64,
    order_expires_at: Millis,
    ip: &str,
    now: Millis,
) -> QrPlan {
    // Readable (order number, version) and unique (random tail); should an order
    // number ever grow past the 32 characters allowed, a random number still works.
    let out_trade_no = OutTradeNo::new(format!(
        "{order_no}-{version}-{}",
        Alphanumeric.sample_string(&mut rand::rng(), 6)
    ))
    .unwrap_or_else(|_| OutTradeNo::random());
    // Whole seconds: the gateway's times have none smaller.
    let time_start = Millis(now.get() - now.get().rem_euclid(1000));
    QrPlan {
        out_trade_no,
        time_start,
        time_expire: time_start.plus(qr_ttl.max(MIN_GATEWAY_LIFE) + GATEWAY_MARGIN),
        display_until: now.plus(qr_ttl).min(order_expires_at),
        client_ip: ip.to_string(),
    }
}

/// Writes a planned QR (state `creating`) as the order's current QR.
pub fn insert_planned(
    tx: &Transaction<'_>,
    order_id: OrderId,
    version: i64,
    plan: &QrPlan,
    now: Millis,
) -> Result<QrRow, StoreError> {
    let id = qrs::insert_qr(
        tx,
        &NewQr {
            order_id,
            version,
            out_trade_no: &plan.out_trade_no,
            time_start: plan.time_start,
            time_expire: plan.time_expire,
            display_until: plan.display_until,
            client_ip: &plan.client_ip,
            now,
        },
    )?;
    qrs::qr_by_id(tx, id)
}

/// Replaces an open order's current QR `old_id` with a new one (new out_trade_no):
/// an open or still-creating QR goes to `closing` (the close queue ends it at the
/// gateway), a failed one to `closed`. `None` when the order or QR moved on meanwhile.
pub fn replace_current_qr(
    tx: &Transaction<'_>,
    qr_ttl: Duration,
    order_id: OrderId,
    old_id: QrId,
    now: Millis,
    why: &str,
) -> Result<Option<(OrderRow, QrRow)>, StoreError> {
    let order = orders::order_by_id(tx, order_id)?;
    if order.state != OrderState::Open || order.current_qr_id != Some(old_id) {
        return Ok(None);
    }
    let old = qrs::qr_by_id(tx, old_id)?;
    let superseded = match old.state {
        QrState::Failed => qrs::set_failed_qr_closed(tx, old_id)?,
        QrState::Open | QrState::Creating => qrs::set_qr_closing(tx, old_id, now)?,
        QrState::Closing | QrState::Closed | QrState::Paid => false,
    };
    if !superseded {
        return Ok(None);
    }
    let version = old.version + 1;
    let plan = plan_qr(
        qr_ttl,
        &order.order_no,
        version,
        order.expires_at,
        &old.client_ip,
        now,
    );
    let qr = insert_planned(tx, order.id, version, &plan, now)?;
    events::add_event(
        tx,
        order.id,
        now,
        "qr_issued",
        &format!(
            "QR {} → QR {version}: {} ({why})",
            old.version, plan.out_trade_no
        ),
    )?;
    Ok(Some((orders::order_by_id(tx, order.id)?, qr)))
}

/// Ends an open order (`expired` or `cancelled`); every QR that could still be
/// paid goes to the close queue. Returns the order's state afterwards (it may
/// have been paid or ended meanwhile).
pub fn end_order(
    tx: &Transaction<'_>,
    order_id: OrderId,
    to: OrderState,
    now: Millis,
    why: &str,
) -> Result<OrderState, StoreError> {
    if !orders::set_order_state(tx, order_id, OrderState::Open, to, now)? {
        return Ok(orders::order_by_id(tx, order_id)?.state);
    }
    for qr in qrs::qrs_of_order(tx, order_id)? {
        match qr.state {
            QrState::Open | QrState::Creating => {
                qrs::set_qr_closing(tx, qr.id, now)?;
            }
            QrState::Failed => {
                qrs::set_failed_qr_closed(tx, qr.id)?;
            }
            QrState::Closing | QrState::Closed | QrState::Paid => {}
        }
    }
    events::add_event(tx, order_id, now, to.as_str(), why)?;
    Ok(to)
}
