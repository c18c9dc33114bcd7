//! The gateway's refund notifications.

use rusqlite::Transaction;

use super::{Overrule, apply_in, believable};
use crate::checkout::gateway::{Ack, Notice};
use crate::store::StoreError;
use crate::store::payments::NotificationRow;
use crate::store::refunds;
use crate::values::clock::Millis;
use crate::values::order::OrderToken;

/// A verified refund notification, applied (at most once, whatever the
/// poller learnt first) inside the caller's transaction, which logs it with
/// the outcome set here: the gateway's answer and the order whose page
/// changed, if one did.
pub(in crate::checkout) fn take_refund_notice(
    tx: &Transaction<'_>,
    notice: Notice,
    log: &mut NotificationRow,
    now: Millis,
) -> Result<(Ack, Option<OrderToken>), StoreError> {
    let Notice::Refund {
        out_refund_no,
        out_trade_no,
        transaction_id,
        status,
    } = notice
    else {
        return Ok((Ack::Refused("not a refund"), None));
    };
    let Some(r) = refunds::refund_by_no(tx, &out_refund_no)? else {
        log.outcome = format!("refused: unknown out_refund_no {out_refund_no}");
        return Ok((Ack::Refused("unknown out_refund_no"), None));
    };
    if let Some(job) = refunds::job_by_id(tx, r.id)? {
        // A notice about our refund names the payment that refund is of: a
        // real notice about another trade must not settle ours.
        let other = match (&out_trade_no, &transaction_id) {
            (Some(n), _) if *n != job.out_trade_no => Some(format!(
                "refund {out_refund_no} is of out_trade_no {}, the notice says {n}",
                job.out_trade_no
            )),
            (_, Some(t)) if *t != job.transaction_id => Some(format!(
                "refund {out_refund_no} is of transaction {}, the notice says {t}",
                job.transaction_id
            )),
            _ => None,
        };
        log.out_trade_no = Some(job.out_trade_no.clone());
        log.transaction_id = Some(job.transaction_id.clone());
        if let Some(why) = other {
            log.outcome = format!("refused: {why}");
            return Ok((Ack::Refused("the refund does not match ours"), None));
        }
    }
    if let Err(why) = believable(&r, status.facts()) {
        log.outcome = format!("refused: {why}");
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
    Ok((Ack::Received, token))
}
