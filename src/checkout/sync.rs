//! Keeping our QRs in step with the gateway: scheduled queries (poll), closing
//! superseded QRs, and refreshing a QR whose screen life is over. Every path
//! that learns of a payment ends in the same `apply_payment`.

use super::apply::{ApplyOutcome, Evidence, apply_payment};
use super::gateway::{GatewayError, Refusal, TradeStatus};
use super::transitions::{GATEWAY_MARGIN, replace_current_qr};
use super::{Checkout, CheckoutError};
use crate::store::{events, qrs};
use std::time::Duration;

use crate::store::orders::{self, OrderRow};
use crate::store::qrs::QrRow;
use crate::values::clock::Millis;
use crate::values::order::{PaymentSource, QrId, QrState};

/// The least wait before a refused close is tried again.
const MIN_CLOSE_RETRY: Duration = Duration::from_secs(5);
/// How much longer a QR stays on screen while the customer is confirming.
const PAYING_GRACE: Duration = Duration::from_secs(3);

/// When to ask the gateway about a QR again, after an answer that changed nothing.
#[derive(Debug, Clone)]
pub struct PollSchedule {
    pub qr_id: QrId,
    pub next_poll_at: Millis,
    /// Consecutive gateway errors (0 after an answer), for the backoff.
    pub errors: i64,
    pub error: Option<String>,
}

impl Checkout {
    async fn query(&self, qr: &QrRow) -> Result<TradeStatus, GatewayError> {
        self.gateway().query(&qr.out_trade_no).await
    }

    /// Applies a payment in one transaction and tells the open pages.
    pub async fn apply(&self, ev: Evidence) -> Result<ApplyOutcome, CheckoutError> {
        let now = self.now();
        let outcome = self
            .store()
            .write(move |tx| apply_payment(tx, &ev, now))
            .await?;
        self.after_apply(&outcome);
        Ok(outcome)
    }

    pub(super) fn after_apply(&self, outcome: &ApplyOutcome) {
        if let ApplyOutcome::Applied {
            token,
            order_no,
            transaction_id,
            late,
            double_paid,
        } = outcome
        {
            tracing::info!(%order_no, %transaction_id, late, double_paid, "payment applied");
            self.publish(token);
        }
    }

    /// A query answer that says paid becomes a payment; `true` if the money is
    /// in our books (now or before), `false` if the answer was not paid or its
    /// payment could not be taken (amount or records contradict it: logged and
    /// flagged, and the caller goes on as for an unpaid QR, at a slower pace).
    pub(super) async fn apply_if_paid(
        &self,
        qr: &QrRow,
        status: &TradeStatus,
        source: PaymentSource,
    ) -> Result<bool, CheckoutError> {
        let TradeStatus::Paid(facts) = status else {
            return Ok(false);
        };
        let outcome = self
            .apply(Evidence {
                out_trade_no: qr.out_trade_no.clone(),
                payment: facts.clone(),
                source,
            })
            .await?;
        match outcome {
            ApplyOutcome::Applied { .. } | ApplyOutcome::AlreadyApplied { .. } => Ok(true),
            ApplyOutcome::AmountMismatch { expected } => {
                tracing::error!(out_trade_no = %qr.out_trade_no, %expected, got = %facts.amount, "the gateway reports a different amount");
                Ok(false)
            }
            ApplyOutcome::Anomaly { detail, .. } => {
                tracing::error!(out_trade_no = %qr.out_trade_no, %detail, "a payment contradicts our records");
                Ok(false)
            }
            ApplyOutcome::UnknownOrder => Ok(false),
        }
    }

    /// When to ask the gateway about a QR next.
    fn next_poll(&self, qr: &QrRow, now: Millis) -> Millis {
        let cfg = self.cfg();
        let young = now.since(qr.created_at) < cfg.poll_fast_period && qr.state == QrState::Open;
        now.plus(if young { cfg.poll_fast } else { cfg.poll_slow })
    }

    /// 2^errors seconds, at most `max_backoff`.
    fn backoff(&self, errors: i64) -> Duration {
        let exp = Duration::from_secs(1u64 << errors.clamp(0, 20));
        exp.min(self.cfg().max_backoff)
    }

    /// One scheduled query of an open or closing QR. A payment or a close is
    /// recorded at once; when the answer only means "ask again later", that
    /// bookkeeping is returned for the caller to record (`record_polls`), so the
    /// poller can write many at a time instead of one transaction each.
    #[tracing::instrument(skip_all, fields(out_trade_no = %qr.out_trade_no))]
    pub async fn poll(&self, qr: &QrRow) -> Result<Option<PollSchedule>, CheckoutError> {
        let result = self.query(qr).await;
        let now = self.now();
        let qr_id = qr.id;
        match result {
            Ok(status @ TradeStatus::Paid(_)) => {
                if !self.apply_if_paid(qr, &status, PaymentSource::Poll).await? {
                    // Paid there but not taken here: ask again, backing off, while
                    // the admin looks at the flagged order.
                    let errors = qr.errors + 1;
                    return Ok(Some(PollSchedule {
                        qr_id,
                        next_poll_at: now.plus(self.backoff(errors)),
                        errors,
                        error: Some(
                            "paid at the gateway, but the payment contradicts our records".into(),
                        ),
                    }));
                }
            }
            Ok(TradeStatus::Closed) => self.mark_closed(qr).await?,
            Ok(status) => {
                // Past its gateway expiry an unpaid code can no longer be paid: done.
                let dead =
                    status == TradeStatus::NotPaid && now > qr.time_expire.plus(GATEWAY_MARGIN);
                if dead && qr.state == QrState::Closing {
                    self.mark_closed(qr).await?;
                } else {
                    return Ok(Some(PollSchedule {
                        qr_id,
                        next_poll_at: self.next_poll(qr, now),
                        errors: 0,
                        error: None,
                    }));
                }
            }
            Err(e) => {
                let errors = qr.errors + 1;
                if e.refusal() == Some(Refusal::NoSuchTrade) && now > qr.time_expire {
                    self.mark_closed(qr).await?;
                    return Ok(None);
                }
                tracing::warn!(error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), errors, "query failed");
                return Ok(Some(PollSchedule {
                    qr_id,
                    next_poll_at: now.plus(self.backoff(errors)),
                    errors,
                    error: Some(e.to_string()),
                }));
            }
        }
        Ok(None)
    }

    /// Records when to ask about each QR next, in one transaction. Losing these
    /// (a crash before they are written) only means asking again sooner.
    pub async fn record_polls(&self, polls: Vec<PollSchedule>) -> Result<(), CheckoutError> {
        if polls.is_empty() {
            return Ok(());
        }
        self.store()
            .write(move |tx| {
                for p in &polls {
                    qrs::schedule_poll(
                        tx,
                        p.qr_id,
                        Some(p.next_poll_at),
                        p.errors,
                        p.error.as_deref(),
                    )?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    pub(super) async fn mark_closed(&self, qr: &QrRow) -> Result<(), CheckoutError> {
        let (qr_id, order_id, version) = (qr.id, qr.order_id, qr.version);
        let now = self.now();
        let changed = self
            .store()
            .write(move |tx| {
                if !qrs::set_qr_closed(tx, qr_id)? {
                    return Ok(None);
                }
                let closed = format!("QR {version} closed");
                events::add_event(tx, order_id, now, "qr_closed", &closed)?;
                Ok(Some(orders::order_by_id(tx, order_id)?.token))
            })
            .await?;
        // The gateway may close the order's current QR (e.g. CLOSED on a poll): its
        // image and status change, so pages and caches must hear of it.
        if let Some(token) = changed {
            self.publish(&token);
        }
        Ok(())
    }

    /// One close of a superseded QR; refusals are tried again later.
    #[tracing::instrument(skip_all, fields(out_trade_no = %qr.out_trade_no))]
    pub async fn close(&self, qr: &QrRow) -> Result<(), CheckoutError> {
        let result = self.gateway().close(&qr.out_trade_no).await;
        let now = self.now();
        let Err(e) = result else {
            return self.mark_closed(qr).await;
        };
        match e.refusal() {
            Some(Refusal::AlreadyClosed | Refusal::NoSuchTrade) => self.mark_closed(qr).await,
            Some(Refusal::AlreadyPaid) => {
                // It was paid: that is a payment, never a failure.
                match self.query(qr).await {
                    Ok(s) if self.apply_if_paid(qr, &s, PaymentSource::Close).await? => Ok(()),
                    _ => {
                        let why = "already paid; waiting for the payment's details";
                        self.reschedule_close(qr, now, why).await
                    }
                }
            }
            _ => {
                if now > qr.time_expire.plus(GATEWAY_MARGIN) {
                    // The gateway can no longer take money for it; confirm and stop.
                    if let Ok(s) = self.query(qr).await {
                        if self.apply_if_paid(qr, &s, PaymentSource::Close).await? {
                            return Ok(());
                        }
                        if matches!(s, TradeStatus::NotPaid | TradeStatus::Closed) {
                            return self.mark_closed(qr).await;
                        }
                    }
                }
                tracing::info!(error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), "close refused; will try again");
                self.reschedule_close(qr, now, &e.to_string()).await
            }
        }
    }

    async fn reschedule_close(
        &self,
        qr: &QrRow,
        now: Millis,
        why: &str,
    ) -> Result<(), CheckoutError> {
        let qr_id = qr.id;
        let next = now.plus(self.backoff(qr.errors + 1).max(MIN_CLOSE_RETRY));
        let why = why.to_string();
        self.store()
            .write(move |tx| qrs::schedule_close(tx, qr_id, next, &why))
            .await?;
        Ok(())
    }

    /// A QR's screen life is over: query it once more, then supersede it with a
    /// new QR (new out_trade_no); the old one is closed by the close queue.
    /// A failed QR is simply replaced (the gateway may be back).
    #[tracing::instrument(skip_all, fields(out_trade_no = %qr.out_trade_no))]
    pub async fn refresh(&self, order: &OrderRow, qr: &QrRow) -> Result<(), CheckoutError> {
        if qr.state != QrState::Failed {
            match self.query(qr).await {
                Ok(s) if self.apply_if_paid(qr, &s, PaymentSource::Poll).await? => return Ok(()),
                Ok(TradeStatus::Paying) => {
                    // The customer is entering the password: never pull the QR now.
                    let (qr_id, until) = (qr.id, self.now().plus(PAYING_GRACE));
                    self.store()
                        .write(move |tx| qrs::postpone_display(tx, qr_id, until))
                        .await?;
                    return Ok(());
                }
                _ => {}
            }
        }
        let now = self.now();
        let qr_ttl = self.cfg().qr_ttl;
        let (order_id, old_id) = (order.id, qr.id);
        let planned = self
            .store()
            .write(move |tx| replace_current_qr(tx, qr_ttl, order_id, old_id, now, "refresh"))
            .await?;
        if let Some((order, new_qr)) = planned {
            self.publish(&order.token);
            self.issue(&order, &new_qr).await?;
        }
        Ok(())
    }
}
