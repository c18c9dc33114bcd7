//! The one place an order becomes paid, whichever path learnt of the payment
//! (notification, poll, or an `ORDERPAID` answer to a close).

use crate::store::{events, qrs};
use rusqlite::Transaction;

use super::gateway::PaymentFacts;
use crate::store::StoreError;
use crate::store::orders::{self, OrderRow};
use crate::store::outbox::{self, Event};
use crate::store::payments::{self, NewPayment};
use crate::values::clock::Millis;
use crate::values::money::Fen;
use crate::values::order::{OrderNo, OrderState, OrderToken, PaymentSource};
use crate::values::trade::{OutTradeNo, TransactionId};

/// What the gateway says was paid.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub out_trade_no: OutTradeNo,
    pub payment: PaymentFacts,
    pub source: PaymentSource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Recorded now. `late`: for a superseded QR or an ended order;
    /// `double_paid`: the order was already paid (a refund is owed).
    Applied {
        token: OrderToken,
        order_no: OrderNo,
        /// WeChat Pay's number for the money: what its support asks for.
        transaction_id: TransactionId,
        late: bool,
        double_paid: bool,
    },
    /// This transaction was recorded before, for this same QR: nothing changed.
    AlreadyApplied { token: OrderToken },
    /// The facts contradict our records (this transaction is recorded for
    /// another QR): no money moved, the order is flagged and the event kept
    /// for the admin. Acknowledged, since sending it again changes nothing.
    Anomaly { token: OrderToken, detail: String },
    /// No QR of ours has this out_trade_no.
    UnknownOrder,
    /// The amount is not what we asked for: refused, nothing changed.
    AmountMismatch { expected: Fen },
}

/// How far the gateway's clock may be from ours.
const CLOCK_SLACK: std::time::Duration = std::time::Duration::from_secs(600);

/// The gateway's time of payment if it can be one: not before the QR was
/// made, not after now (each give or take `CLOCK_SLACK`). An absurd one
/// (1970, 2099) would put the money on a day of the books it never was;
/// dropped, the payment's day is when we recorded it.
pub fn plausible_paid_at(paid_at: Option<Millis>, qr_made: Millis, now: Millis) -> Option<Millis> {
    let at = paid_at?;
    if at >= qr_made.minus(CLOCK_SLACK) && at <= now.plus(CLOCK_SLACK) {
        Some(at)
    } else {
        tracing::warn!(
            paid_at = at.get(),
            "the gateway's time of payment is outside the QR's life: not kept"
        );
        None
    }
}

/// Applies a payment inside `tx`, at most once per transaction_id. Only the
/// same transaction for the same QR is a duplicate: a further transaction for
/// a paid QR or order is a second payment (kept, `double_paid`), and a
/// transaction already recorded for another QR is an anomaly (flagged).
pub fn apply_payment(
    tx: &Transaction<'_>,
    ev: &Evidence,
    now: Millis,
) -> Result<ApplyOutcome, StoreError> {
    let Some(qr) = qrs::qr_by_out_trade_no(tx, &ev.out_trade_no)? else {
        return Ok(ApplyOutcome::UnknownOrder);
    };
    let order: OrderRow = orders::order_by_id(tx, qr.order_id)?;
    if ev.payment.amount != order.amount {
        return Ok(ApplyOutcome::AmountMismatch {
            expected: order.amount,
        });
    }
    if let Some(known) = payments::payment_by_transaction(tx, &ev.payment.transaction_id)? {
        if known.qr_id == qr.id {
            return Ok(ApplyOutcome::AlreadyApplied { token: order.token });
        }
        let detail = format!(
            "transaction {} reported for out_trade_no {}, but it is recorded for another QR (order id {})",
            ev.payment.transaction_id, ev.out_trade_no, known.order_id.0
        );
        // Reported again (a poll after the notification): one event is enough.
        if !events::has_event(tx, order.id, "anomaly", &detail)? {
            payments::flag_anomaly(tx, order.id)?;
            events::add_event(tx, order.id, now, "anomaly", &detail)?;
        }
        return Ok(ApplyOutcome::Anomaly {
            token: order.token,
            detail,
        });
    }
    let double_paid = order.state == OrderState::Paid;
    let late =
        !double_paid && (order.state != OrderState::Open || order.current_qr_id != Some(qr.id));
    let inserted = payments::insert_payment(
        tx,
        &NewPayment {
            transaction_id: &ev.payment.transaction_id,
            qr_id: qr.id,
            order_id: order.id,
            amount: ev.payment.amount,
            source: ev.source,
            openid: ev.payment.payer.as_deref(),
            gateway_paid_at: plausible_paid_at(ev.payment.paid_at, qr.created_at, now),
            late,
            double_paid,
            now,
        },
    )?;
    if !inserted {
        return Ok(ApplyOutcome::AlreadyApplied { token: order.token });
    }
    // The owner's webhook, durable with the payment it reports (SPEC §10).
    outbox::enqueue(
        tx,
        &Event::payment(
            &ev.payment.transaction_id,
            &order.order_no,
            ev.payment.amount,
            now,
        ),
    )?;
    qrs::set_qr_paid(tx, qr.id)?;
    let detail = format!(
        "{} via {} (out_trade_no {}, transaction {})",
        ev.payment.amount, ev.source, ev.out_trade_no, ev.payment.transaction_id
    );
    if double_paid {
        payments::flag_double_paid(tx, order.id)?;
        events::add_event(tx, order.id, now, "double_paid", &detail)?;
    } else {
        // The order was read as not paid in this same transaction: if it did
        // not become paid now, something foreign is in the way, and a payment
        // recorded for an order that still reads open would be half-written.
        if !payments::mark_order_paid(tx, order.id, qr.id, &ev.payment.transaction_id, now, late)? {
            return Err(StoreError::NotApplied("mark the order paid"));
        }
        events::add_event(
            tx,
            order.id,
            now,
            if late { "paid_late" } else { "paid" },
            &detail,
        )?;
        // Any other QR the customer could still pay must be closed now.
        for other in qrs::qrs_of_order(tx, order.id)? {
            if other.id != qr.id {
                qrs::set_qr_closing(tx, other.id, now)?;
            }
        }
    }
    Ok(ApplyOutcome::Applied {
        token: order.token,
        order_no: order.order_no,
        transaction_id: ev.payment.transaction_id.clone(),
        late,
        double_paid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fixtures::{Sale, sale, store};

    #[test]
    fn a_payment_whose_order_cannot_become_paid_is_not_recorded_at_all() {
        let (_dir, store) = store();
        let order_no = store
            .write_blocking(|tx| {
                // What a tampered database would do: the order's update is ignored.
                tx.execute_batch(
                    "CREATE TRIGGER keep_open BEFORE UPDATE OF state ON orders
                     BEGIN SELECT RAISE(IGNORE); END;",
                )?;
                Ok(sale(
                    tx,
                    Sale {
                        paid_at: None,
                        ..Sale::default()
                    },
                )
                .1)
            })
            .unwrap();
        let ev = Evidence {
            out_trade_no: OutTradeNo::new(format!("{order_no}-1-abc")).unwrap(),
            payment: PaymentFacts {
                transaction_id: TransactionId::new("4200000001").unwrap(),
                amount: Fen::new(100),
                payer: None,
                paid_at: None,
            },
            source: PaymentSource::Notify,
        };
        let outcome = store.write_blocking(|tx| apply_payment(tx, &ev, Millis(5)));
        assert!(
            matches!(outcome, Err(StoreError::NotApplied(_))),
            "{outcome:?}"
        );
        let recorded = store
            .read_blocking(|c| payments::payment_by_transaction(c, &ev.payment.transaction_id))
            .unwrap();
        assert_eq!(recorded, None, "the payment rolled back with the order");
    }
}
