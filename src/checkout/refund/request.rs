//! Making a refund: its plan for the confirmation, recording it (the rules
//! checked and the amount reserved in the same transaction), sending it, and
//! an admin's retry of a refused one.

use super::{MAX_REASON_CHARS, RESEND_AFTER, RefundError, RefundInput, RefundPlan, check};
use crate::checkout::{Checkout, CheckoutError};
use crate::store::StoreError;
use crate::store::events;
use crate::store::orders;
use crate::store::payments;
use crate::store::refunds::{self, NewRefund, RefundJob, RefundRow};
use crate::values::clock::Millis;
use crate::values::money::Fen;
use crate::values::order::{OrderNo, RefundId, RefundState};
use crate::values::trade::{OutRefundNo, TransactionId};

/// Records a refund in `tx`: the same number again is the refund already
/// recorded (`false`); otherwise the rules are checked and the amount reserved
/// by the row itself, in this one transaction (`true`).
pub(super) fn record(
    tx: &rusqlite::Transaction<'_>,
    input: &RefundInput,
    no: &OutRefundNo,
    now: Millis,
) -> Result<Result<(RefundRow, bool), RefundError>, StoreError> {
    if let Some(existing) = refunds::refund_by_no(tx, no)? {
        // A number is one refund of one order: another order's is not this one's.
        let of = orders::order_by_id(tx, existing.order_id)?;
        if of.order_no != input.order_no || existing.amount != input.amount {
            return Ok(Err(RefundError::NoRefund));
        }
        return Ok(Ok((existing, false)));
    }
    let (order, payment, _) = match check(
        tx,
        &input.order_no,
        input.transaction_id.as_ref(),
        Some(input.amount),
        None,
        now,
    )? {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    let reason: String = input.reason.chars().take(MAX_REASON_CHARS).collect();
    let Some(row) = refunds::insert_refund(
        tx,
        &NewRefund {
            out_refund_no: no,
            payment_id: payment.id,
            order_id: order.id,
            amount: input.amount,
            user_id: input.user_id,
            username: &input.username,
            reason: &reason,
            now,
            resend_at: now.plus(RESEND_AFTER),
        },
    )?
    else {
        return Ok(Err(RefundError::NoRefund));
    };
    let detail = format!(
        "{no}: {} of payment {} by {}: {reason}",
        input.amount, payment.transaction_id, input.username
    );
    events::add_event(tx, order.id, now, "refund_requested", &detail)?;
    Ok(Ok((row, true)))
}

impl Checkout {
    /// What a refund of `order_no`'s payment would be, for its confirmation.
    pub async fn refund_plan(
        &self,
        order_no: &OrderNo,
        transaction_id: Option<TransactionId>,
        amount: Option<Fen>,
    ) -> Result<RefundPlan, RefundError> {
        let order_no = order_no.clone();
        let now = self.now();
        let (order, payment, refundable) = self
            .store()
            .read(move |c| check(c, &order_no, transaction_id.as_ref(), amount, None, now))
            .await??;
        Ok(RefundPlan {
            order,
            payment,
            refundable,
            out_refund_no: OutRefundNo::random(),
        })
    }

    /// Records a refund (checking and reserving what is refundable in the same
    /// transaction), then sends it. The same out_refund_no again (a retried
    /// form) is the refund already recorded, not a new one.
    #[tracing::instrument(skip_all, fields(order_no = %input.order_no, amount = %input.amount))]
    pub async fn request_refund(&self, input: RefundInput) -> Result<RefundRow, RefundError> {
        let now = self.now();
        let no = input
            .out_refund_no
            .clone()
            .unwrap_or_else(OutRefundNo::random);
        let recorded = self
            .store()
            .write(move |tx| record(tx, &input, &no, now))
            .await??;
        let (row, new) = recorded;
        if new && let Some(job) = self.refund_job(row.id).await? {
            self.send_refund(&job).await?;
        }
        Ok(self.refund_job(row.id).await?.map_or(row, |j| j.refund))
    }

    /// An admin retries a refused refund (NOTENOUGH once topped up): the same
    /// out_refund_no, its amount checked and reserved again.
    pub async fn retry_refund(
        &self,
        order_no: &OrderNo,
        out_refund_no: &OutRefundNo,
    ) -> Result<RefundRow, RefundError> {
        let now = self.now();
        let (order_no, no) = (order_no.clone(), out_refund_no.clone());
        let id = self
            .store()
            .write(move |tx| {
                let Some(r) = refunds::refund_by_no(tx, &no)? else {
                    return Ok(Err(RefundError::NoRefund));
                };
                let order = orders::order_by_id(tx, r.order_id)?;
                if order.order_no != order_no {
                    return Ok(Err(RefundError::NoRefund));
                }
                if r.state != RefundState::Failed {
                    return Ok(Err(RefundError::NotRetryable));
                }
                let paid = payments::payments_of(tx, r.order_id)?;
                let Some(p) = paid.iter().find(|p| p.id == r.payment_id) else {
                    return Ok(Err(RefundError::NoPayment));
                };
                if let Err(e) = check(
                    tx,
                    &order_no,
                    Some(&p.transaction_id),
                    Some(r.amount),
                    Some(r.id),
                    now,
                )? {
                    return Ok(Err(e));
                }
                refunds::set_retrying(tx, r.id, now, now.plus(RESEND_AFTER))?;
                events::add_event(
                    tx,
                    r.order_id,
                    now,
                    "refund_retried",
                    r.out_refund_no.as_str(),
                )?;
                Ok(Ok(r.id))
            })
            .await??;
        if let Some(job) = self.refund_job(id).await? {
            self.send_refund(&job).await?;
        }
        self.refund_job(id)
            .await?
            .map(|j| j.refund)
            .ok_or(RefundError::NoRefund)
    }

    async fn refund_job(&self, id: RefundId) -> Result<Option<RefundJob>, CheckoutError> {
        Ok(self
            .store()
            .read(move |c| refunds::job_by_id(c, id))
            .await?)
    }
}
