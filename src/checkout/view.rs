//! What the pages and the poller read, through the domain: an order with its
//! current QR, and the background work that is due.

use super::{Checkout, CheckoutError, STALE_CREATION};
use crate::store::qrs;
use std::time::Duration;

use crate::store::StoreError;
use crate::store::orders::{self, OrderRow};
use crate::store::qrs::QrRow;
use crate::values::clock::Millis;
use crate::values::order::{OrderState, OrderToken, QrState};

/// An order with its current QR, as every page of it needs, read at `now`.
#[derive(Debug, Clone)]
pub struct OrderView {
    pub order: OrderRow,
    pub qr: Option<QrRow>,
    /// What went back to the customer (succeeded refunds).
    pub refunded: crate::values::money::Fen,
    /// What the customer paid: every payment of the order (twice the amount
    /// when paid twice), what `refunded` is held against.
    pub paid: crate::values::money::Fen,
    /// The domain's time when it was read (countdowns are counted from it).
    pub now: Millis,
}

impl OrderView {
    /// The QR the customer can scan now, if any.
    pub fn scannable(&self) -> Option<&QrRow> {
        self.qr.as_ref().filter(|q| {
            self.order.state == OrderState::Open && q.state == QrState::Open && q.code_url.is_some()
        })
    }

    pub fn qr_failed(&self) -> bool {
        self.order.state == OrderState::Open
            && self.qr.as_ref().is_some_and(|q| q.state == QrState::Failed)
    }

    /// Whole seconds until `at` (never negative).
    pub fn seconds_until(&self, at: Millis) -> i64 {
        self.now.seconds_until(at)
    }
}

/// Background work due now, as the poller asks for it; each list bounded.
#[derive(Debug, Default)]
pub struct DueWork {
    pub expiries: Vec<OrderRow>,
    pub refreshes: Vec<(OrderRow, QrRow)>,
    /// QRs whose creation was interrupted: nobody is sending them.
    pub resumes: Vec<QrRow>,
    pub closes: Vec<QrRow>,
    pub polls: Vec<QrRow>,
    /// Refunds to send (again) or ask the gateway about.
    pub refunds: Vec<crate::store::refunds::RefundJob>,
    /// The notification log is due for pruning (`Checkout::prune_logs`).
    pub prune_logs: bool,
    /// A day whose bill is due (`Checkout::reconcile_day`).
    pub bill_day: Option<jiff::civil::Date>,
}

impl Checkout {
    /// The order behind a customer's link, with its current QR.
    pub async fn order_view(&self, token: &OrderToken) -> Result<OrderView, CheckoutError> {
        let token = token.clone();
        let now = self.now();
        self.store()
            .read(move |c| {
                let Some(order) = orders::order_by_token(c, &token)? else {
                    return Ok(None);
                };
                let qr = order
                    .current_qr_id
                    .map(|id| qrs::qr_by_id(c, id))
                    .transpose()?;
                let refunded = crate::store::refunds::refunded_of_order(c, order.id)?;
                let paid = crate::store::payments::paid_of_order(c, order.id)?;
                Ok(Some(OrderView {
                    order,
                    qr,
                    refunded,
                    paid,
                    now,
                }))
            })
            .await?
            .ok_or(CheckoutError::NotFound)
    }

    /// The work due now, at most `limit` of each kind. A QR left `creating`
    /// since before `resume_before` (e.g. the poller's start: an earlier process
    /// was sending it) or for longer than [`STALE_CREATION`] is resumed.
    pub async fn due_work(
        &self,
        limit: usize,
        resume_before: Millis,
    ) -> Result<DueWork, StoreError> {
        let now = self.now();
        let prune_logs = self.prune_due();
        let bill_day = self.bill_due().await?;
        let stale = now
            .minus(STALE_CREATION)
            .max(resume_before.minus(Duration::from_millis(1)));
        self.store()
            .read(move |c| {
                Ok(DueWork {
                    expiries: orders::due_expiries(c, now, limit)?,
                    refreshes: qrs::due_refreshes(c, now, limit)?,
                    resumes: qrs::stale_creations(c, stale, limit)?,
                    closes: qrs::due_closes(c, now, limit)?,
                    polls: qrs::due_polls(c, now, limit)?,
                    refunds: crate::store::refunds::due_refunds(c, now, resume_before, limit)?,
                    prune_logs,
                    bill_day,
                })
            })
            .await
    }
}
