//! The gateway's notifications: the protocol reads and verifies one (parsing
//! it once), the domain applies what it says and logs it in the same
//! transaction, and only then does the protocol's answer say "received".

use super::Checkout;
use super::apply::{ApplyOutcome, Evidence, apply_payment};
use super::gateway::{Ack, Notice, NotifyReply, NotifyRequest};
use super::logs::REFUSED_BODY_BYTES;
use crate::store::payments::{self, NotificationRow};
use crate::store::refunds;
use crate::values::order::PaymentSource;

/// What the log says a payment notification did.
fn log_text(outcome: &ApplyOutcome, ev: &Evidence) -> String {
    match outcome {
        ApplyOutcome::Applied { late: true, .. } => "applied (late)".into(),
        ApplyOutcome::Applied {
            double_paid: true, ..
        } => "applied (double payment)".into(),
        ApplyOutcome::Applied { .. } => "applied".into(),
        ApplyOutcome::AlreadyApplied { .. } => "duplicate: already applied".into(),
        ApplyOutcome::Anomaly { detail, .. } => format!("anomaly, flagged: {detail}"),
        ApplyOutcome::UnknownOrder => "refused: unknown out_trade_no".into(),
        ApplyOutcome::AmountMismatch { expected } => format!(
            "refused: amount {} but the order is {expected}",
            ev.payment.amount
        ),
    }
}

/// What the gateway is told about a payment notification.
fn ack_of(outcome: &ApplyOutcome) -> Ack {
    match outcome {
        // An anomaly is acknowledged: it is kept and flagged, and sending it
        // again would change nothing.
        ApplyOutcome::Applied { .. }
        | ApplyOutcome::AlreadyApplied { .. }
        | ApplyOutcome::Anomaly { .. } => Ack::Received,
        ApplyOutcome::UnknownOrder => Ack::Refused("unknown out_trade_no"),
        ApplyOutcome::AmountMismatch { .. } => Ack::Refused("the amount does not match the order"),
    }
}

impl Checkout {
    /// One notification: verify, apply, log; "received" only after the commit.
    #[tracing::instrument(skip_all)]
    pub async fn handle_notification(
        &self,
        req: &NotifyRequest<'_>,
        remote_addr: Option<String>,
    ) -> NotifyReply {
        let ack = self.take_notification(req, remote_addr).await;
        self.gateway().notify_reply(ack)
    }

    async fn take_notification(&self, req: &NotifyRequest<'_>, remote_addr: Option<String>) -> Ack {
        let mut read = self.gateway().read_notification(req);
        if read.notice.is_ok()
            && let Some(key) = read.replay_key.take()
            && let Err(why) = self.check_replay(key).await
        {
            read.notice = Err(why);
        }
        let mut log = NotificationRow {
            received_at: self.now(),
            remote_addr,
            out_trade_no: None,
            transaction_id: None,
            verified: false,
            outcome: String::new(),
            body: read.loggable_body,
        };
        match read.notice {
            Err(why) => {
                // Junk is kept short, and a flood from one address only counted
                // (in the log file too: one warning per stored refusal).
                if self.admit_refusal(log.remote_addr.as_deref()) {
                    tracing::warn!(error.message = ?why, "notification refused");
                    log.outcome = format!("refused: {why}");
                    log.body
                        .truncate(log.body.floor_char_boundary(REFUSED_BODY_BYTES));
                    self.log_notification(log).await;
                } else {
                    tracing::debug!(error.message = ?why, "notification refused, not stored");
                }
                Ack::Refused("invalid notification")
            }
            Ok(Notice::Unhandled { what }) => {
                log.verified = true;
                log.outcome = format!("verified, not applied: {what}");
                if self.log_notification(log).await {
                    Ack::Received
                } else {
                    Ack::Refused("try again")
                }
            }
            Ok(Notice::PaymentFailed {
                out_trade_no,
                reason,
            }) => {
                log.verified = true;
                log.out_trade_no = out_trade_no;
                log.outcome = format!("payment failed at the gateway: {reason}");
                if self.log_notification(log).await {
                    Ack::Received
                } else {
                    Ack::Refused("try again")
                }
            }
            Ok(notice @ Notice::Refund { .. }) => match self.refund_notice_matches(&notice).await {
                Ok(()) => self.take_refund_notice(notice, log).await,
                Err(why) => {
                    log.verified = true;
                    log.outcome = format!("refused: {why}");
                    self.log_notification(log).await;
                    Ack::Refused("the refund does not match ours")
                }
            },
            Ok(Notice::Payment {
                out_trade_no,
                facts,
            }) => {
                log.verified = true;
                log.out_trade_no = Some(out_trade_no.clone());
                log.transaction_id = Some(facts.transaction_id.clone());
                let ev = Evidence {
                    out_trade_no,
                    payment: facts,
                    source: PaymentSource::Notify,
                };
                let now = self.now();
                let result = self
                    .store()
                    .write(move |tx| {
                        let outcome = apply_payment(tx, &ev, now)?;
                        log.outcome = log_text(&outcome, &ev);
                        payments::log_notification(tx, &log)?;
                        Ok(outcome)
                    })
                    .await;
                match result {
                    Ok(outcome) => {
                        self.after_apply(&outcome);
                        ack_of(&outcome)
                    }
                    Err(e) => {
                        tracing::error!(error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), "notification could not be recorded");
                        Ack::Refused("try again")
                    }
                }
            }
        }
    }

    /// A verified notification's id seen before with another body is a replay;
    /// the same body again is the gateway's retry, applied as ever (idempotently).
    async fn check_replay(&self, key: super::gateway::ReplayKey) -> Result<(), String> {
        let now = self.now();
        let id = key.id.clone();
        match self
            .store()
            .write(move |tx| payments::claim_notification_id(tx, &key.id, &key.body_sha256, now))
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!(
                "notification id {id:?} was seen before with another body: a replay"
            )),
            Err(e) => {
                tracing::error!(error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), "notification id could not be recorded");
                Err("try again: the notification id could not be recorded".into())
            }
        }
    }

    /// A refund notice is about our refund only if the payment it names (its
    /// `out_trade_no` and `transaction_id`, when given) is the one that refund
    /// is of: a real notice about another trade must not settle ours. An
    /// unknown refund is left to `take_refund_notice`, which says so.
    async fn refund_notice_matches(&self, notice: &Notice) -> Result<(), String> {
        let Notice::Refund {
            out_refund_no,
            out_trade_no,
            transaction_id,
            ..
        } = notice
        else {
            return Ok(());
        };
        let no = out_refund_no.clone();
        let job = self
            .store()
            .read(move |c| match refunds::refund_by_no(c, &no)? {
                Some(r) => refunds::job_by_id(c, r.id),
                None => Ok(None),
            })
            .await
            .map_err(|e| {
                tracing::error!(error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), "refund notification could not be checked");
                "try again: the refund could not be read".to_string()
            })?;
        let Some(job) = job else { return Ok(()) };
        if let Some(n) = out_trade_no.as_ref().filter(|n| **n != job.out_trade_no) {
            return Err(format!(
                "refund {out_refund_no} is of out_trade_no {}, the notice says {n}",
                job.out_trade_no
            ));
        }
        if let Some(t) = transaction_id
            .as_ref()
            .filter(|t| **t != job.transaction_id)
        {
            return Err(format!(
                "refund {out_refund_no} is of transaction {}, the notice says {t}",
                job.transaction_id
            ));
        }
        Ok(())
    }

    async fn log_notification(&self, log: NotificationRow) -> bool {
        match self
            .store()
            .write(move |tx| payments::log_notification(tx, &log))
            .await
        {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), "notification log failed");
                false
            }
        }
    }
}
