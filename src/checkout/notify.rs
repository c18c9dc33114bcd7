//! The gateway's notifications: the protocol reads and verifies one (parsing
//! it once), the domain applies what it says and logs it in the same
//! transaction, and only then does the protocol's answer say "received".

use rusqlite::Transaction;

use super::Checkout;
use super::apply::{ApplyOutcome, Evidence, apply_payment};
use super::gateway::{Ack, Notice, NotifyReply, NotifyRequest};
use super::logs::REFUSED_BODY_BYTES;
use super::refund::notice::take_refund_notice;
use crate::store::StoreError;
use crate::store::payments::{self, NotificationRow};
use crate::values::clock::Millis;
use crate::values::order::{OrderToken, PaymentSource};

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

/// What the one write of a verified notification did.
enum Taken {
    /// Its id came before with another body: nothing written (the log is
    /// handed back to be kept as a refusal).
    Replay(NotificationRow, String),
    Done(Ack, After),
}

/// What to tell the pages once the write is committed.
enum After {
    Nothing,
    Payment(ApplyOutcome),
    Page(OrderToken),
}

/// Applies what a verified notification says, inside the transaction that
/// logs it; `log.outcome` says what happened.
fn take_verified(
    tx: &Transaction<'_>,
    notice: Notice,
    log: &mut NotificationRow,
    now: Millis,
) -> Result<Taken, StoreError> {
    let (ack, after) = match notice {
        Notice::Unhandled { what } => {
            log.outcome = format!("verified, not applied: {what}");
            (Ack::Received, After::Nothing)
        }
        Notice::PaymentFailed {
            out_trade_no,
            reason,
        } => {
            log.out_trade_no = out_trade_no;
            log.outcome = format!("payment failed at the gateway: {reason}");
            (Ack::Received, After::Nothing)
        }
        notice @ Notice::Refund { .. } => {
            let (ack, token) = take_refund_notice(tx, notice, log, now)?;
            (ack, token.map_or(After::Nothing, After::Page))
        }
        Notice::Payment {
            out_trade_no,
            facts,
        } => {
            log.out_trade_no = Some(out_trade_no.clone());
            log.transaction_id = Some(facts.transaction_id.clone());
            let ev = Evidence {
                out_trade_no,
                payment: facts,
                source: PaymentSource::Notify,
            };
            let outcome = apply_payment(tx, &ev, now)?;
            log.outcome = log_text(&outcome, &ev);
            (ack_of(&outcome), After::Payment(outcome))
        }
    };
    Ok(Taken::Done(ack, after))
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
        let read = self.gateway().read_notification(req);
        let mut log = NotificationRow {
            received_at: self.now(),
            remote_addr,
            out_trade_no: None,
            transaction_id: None,
            verified: false,
            outcome: String::new(),
            body: read.loggable_body,
        };
        let notice = match read.notice {
            Ok(notice) => notice,
            Err(why) => return self.refuse(log, why).await,
        };
        // One transaction for a verified notification: its id claimed (v3),
        // what it says applied, and its log; so "claimed but not applied"
        // cannot exist, and a store failure is "try again", never a refusal.
        let key = read.replay_key;
        let now = self.now();
        let taken = self
            .store()
            .write(move |tx| {
                if let Some(k) = &key
                    && !payments::claim_notification_id(tx, &k.id, &k.body_sha256, now)?
                {
                    return Ok(Taken::Replay(log, k.id.clone()));
                }
                log.verified = true;
                let taken = take_verified(tx, notice, &mut log, now)?;
                payments::log_notification(tx, &log)?;
                Ok(taken)
            })
            .await;
        match taken {
            Ok(Taken::Replay(log, id)) => {
                let why =
                    format!("notification id {id:?} was seen before with another body: a replay");
                self.refuse(log, why).await
            }
            Ok(Taken::Done(ack, after)) => {
                match after {
                    After::Nothing => {}
                    After::Payment(outcome) => self.after_apply(&outcome),
                    After::Page(token) => self.publish(&token),
                }
                ack
            }
            Err(e) => {
                tracing::error!(error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), "notification could not be recorded");
                Ack::Refused("try again")
            }
        }
    }

    /// A notification that cannot be believed: kept short, and a flood from
    /// one address only counted (in the log file too: one warning per stored
    /// refusal).
    async fn refuse(&self, mut log: NotificationRow, why: String) -> Ack {
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
