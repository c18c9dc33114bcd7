//! Following a refund to its end: sending it (again, same number, after an
//! unknown outcome), asking the gateway about it, and applying its word.

use crate::store::events;
use std::time::Duration;

use super::{NOT_ENOUGH_MESSAGE, Overrule, QUERY_SCHEDULE, apply_in, believable};
use crate::checkout::gateway::{GatewayError, RefundRequest, RefundStatus, Refusal};
use crate::checkout::{Checkout, CheckoutError};
use crate::store::refunds::{self, RefundJob};
use crate::values::clock::Millis;
use crate::values::order::RefundState;

impl Checkout {
    /// The poller's step for one refund: a pending one is sent (again, same
    /// number); an accepted one is asked about.
    #[tracing::instrument(skip_all, fields(out_refund_no = %job.refund.out_refund_no))]
    pub async fn follow_refund(&self, job: &RefundJob) -> Result<(), CheckoutError> {
        match job.refund.state {
            RefundState::Pending => self.send_refund(job).await,
            RefundState::Processing | RefundState::Abnormal => self.query_refund(job).await,
            _ => Ok(()),
        }
    }

    pub(super) async fn send_refund(&self, job: &RefundJob) -> Result<(), CheckoutError> {
        let r = &job.refund;
        let req = RefundRequest {
            out_trade_no: job.out_trade_no.clone(),
            transaction_id: Some(job.transaction_id.clone()),
            out_refund_no: r.out_refund_no.clone(),
            amount: r.amount,
            total: job.payment_amount,
            reason: r.reason.clone(),
        };
        let result = self.gateway().refund(&req).await;
        match result {
            Ok(status) => self.apply_refund_status(job, status, "accepted").await,
            Err(e) if e.is_retryable() => {
                tracing::warn!(error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), "refund outcome unknown; it will be sent again");
                self.reschedule_refund(job, &e).await
            }
            Err(e) => {
                let why = match e.refusal() {
                    Some(Refusal::NotEnough) => format!("{NOT_ENOUGH_MESSAGE} ({e})"),
                    _ => e.to_string(),
                };
                tracing::warn!(error.message = %why, "refund refused");
                // A refusal of this copy is no proof that nothing moved: an
                // earlier copy (its answer lost, or sent before a crash) may
                // have been carried out. Only the gateway's "no such refund"
                // lets it fail.
                match self.gateway().query_refund(&r.out_refund_no).await {
                    Ok(status) => {
                        tracing::warn!(
                            "the refused refund is known to the gateway: its word is applied"
                        );
                        return self.apply_refund_status(job, status, "query").await;
                    }
                    Err(q) if q.refusal() == Some(Refusal::NoSuchRefund) => {}
                    Err(q) => {
                        tracing::warn!(error.message = %q, error.cause_chain = %crate::base::cause::chain(&q), "refund refused and the gateway could not be asked; it will be sent again");
                        return self.reschedule_refund(job, &e).await;
                    }
                }
                let (id, order_id, now) = (r.id, r.order_id, self.now());
                let no = r.out_refund_no.clone();
                self.store()
                    .write(move |tx| {
                        refunds::count_attempt(tx, id, now)?;
                        if refunds::set_failed(tx, id, &why, now)? {
                            events::add_event(
                                tx,
                                order_id,
                                now,
                                "refund_failed",
                                &format!("{no}: {why}"),
                            )?;
                        }
                        Ok(())
                    })
                    .await?;
                Ok(())
            }
        }
    }

    async fn query_refund(&self, job: &RefundJob) -> Result<(), CheckoutError> {
        match self.gateway().query_refund(&job.refund.out_refund_no).await {
            Ok(status) => self.apply_refund_status(job, status, "query").await,
            Err(e) => {
                tracing::warn!(error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), "refund query failed");
                self.reschedule_refund(job, &e).await
            }
        }
    }

    async fn reschedule_refund(
        &self,
        job: &RefundJob,
        e: &GatewayError,
    ) -> Result<(), CheckoutError> {
        let r = &job.refund;
        let errors = r.errors + 1;
        let now = self.now();
        let next = now.plus(self.refund_backoff(errors));
        let (id, why) = (r.id, e.to_string());
        self.store()
            .write(move |tx| {
                refunds::count_attempt(tx, id, now)?;
                refunds::schedule(tx, id, next, errors, &why)
            })
            .await?;
        Ok(())
    }

    /// 2^errors seconds, at most the poller's longest backoff.
    fn refund_backoff(&self, errors: i64) -> Duration {
        Duration::from_secs(1u64 << errors.clamp(0, 20)).min(self.cfg().max_backoff)
    }

    /// When to ask about an open refund next, by how often we have asked.
    pub(super) fn next_refund_query(
        state: RefundState,
        attempts: i64,
        now: Millis,
    ) -> Option<Millis> {
        match state {
            RefundState::Succeeded | RefundState::Closed | RefundState::Failed => None,
            RefundState::Abnormal => Some(now.plus(QUERY_SCHEDULE[QUERY_SCHEDULE.len() - 1])),
            RefundState::Pending | RefundState::Processing => {
                let i = usize::try_from(attempts.max(0)).unwrap_or(usize::MAX);
                Some(now.plus(QUERY_SCHEDULE[i.min(QUERY_SCHEDULE.len() - 1)]))
            }
        }
    }

    /// The gateway's word on a refund (answer, query or notification), applied
    /// in one transaction; the timeline gets a line only when it is news.
    async fn apply_refund_status(
        &self,
        job: &RefundJob,
        status: RefundStatus,
        source: &'static str,
    ) -> Result<(), CheckoutError> {
        if let Err(why) = believable(&job.refund, status.facts()) {
            let e = GatewayError::Unbelievable(why.into());
            tracing::error!(error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), "refund answer refused");
            return self.reschedule_refund(job, &e).await;
        }
        let r = job.refund.clone();
        let now = self.now();
        let token = self
            .store()
            .write(move |tx| {
                refunds::count_attempt(tx, r.id, now)?;
                // The queries count from acceptance: 1 min, then backing off.
                let asked = if source == "accepted" { 0 } else { r.attempts };
                apply_in(tx, &r, &status, source, now, asked, Overrule::Failed)
            })
            .await?;
        if let Some(token) = token {
            self.publish(&token);
        }
        Ok(())
    }
}
