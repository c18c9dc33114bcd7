//! The gateway's refund notifications.

use super::{Overrule, apply_in, believable};
use crate::checkout::Checkout;
use crate::checkout::gateway::{Ack, Notice};
use crate::store::payments::{self, NotificationRow};
use crate::store::refunds;

impl Checkout {
    /// A verified refund notification: applied (at most once, whatever the
    /// poller learnt first) and logged in one transaction.
    pub(in crate::checkout) async fn take_refund_notice(
        &self,
        notice: Notice,
        mut log: NotificationRow,
    ) -> Ack {
        let Notice::Refund {
            out_refund_no,
            status,
            ..
        } = notice
        else {
            return Ack::Refused("not a refund");
        };
        let now = self.now();
        let result = self
            .store()
            .write(move |tx| {
                log.verified = true;
                let Some(r) = refunds::refund_by_no(tx, &out_refund_no)? else {
                    log.outcome = format!("refused: unknown out_refund_no {out_refund_no}");
                    payments::log_notification(tx, &log)?;
                    return Ok((Ack::Refused("unknown out_refund_no"), None));
                };
                if let Some(job) = refunds::job_by_id(tx, r.id)? {
                    log.out_trade_no = Some(job.out_trade_no.clone());
                    log.transaction_id = Some(job.transaction_id.clone());
                }
                if let Err(why) = believable(&r, status.facts()) {
                    log.outcome = format!("refused: {why}");
                    payments::log_notification(tx, &log)?;
                    return Ok((Ack::Refused("the refund does not match ours"), None));
                }
                let before = r.state;
                let token = apply_in(
                    tx,
                    &r,
                    &status,
                    "notification",
                    now,
                    r.attempts,
                    Overrule::Failed,
                )?;
                log.outcome = if token.is_some() {
                    format!("refund {out_refund_no}: {} → {}", before, status.state())
                } else {
                    format!("refund {out_refund_no}: duplicate, already {before}")
                };
                payments::log_notification(tx, &log)?;
                Ok((Ack::Received, token))
            })
            .await;
        match result {
            Ok((ack, token)) => {
                if let Some(token) = token {
                    self.publish(&token);
                }
                ack
            }
            Err(e) => {
                tracing::error!(error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), "refund notification could not be recorded");
                Ack::Refused("try again")
            }
        }
    }
}
