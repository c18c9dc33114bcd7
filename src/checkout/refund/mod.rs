//! Money going back. A refund is recorded (its out_refund_no fixed) before it
//! is sent; what is still refundable is checked and reserved in that same
//! transaction. On an unknown outcome (timeout, SYSTEMERROR, a crash) it is sent
//! again with the same number; once accepted it is followed to its end by the
//! poller's refund queries and by the gateway's notifications, each answer
//! applied at most once by the row's state (`store::refunds::apply_outcome`).
//!
//! The invariant every path keeps: the refunds of a payment that may have
//! moved money (every state but `closed` and `failed`, `RefundState::reserves`)
//! never add up to more than the payment, and a row's state changes only in
//! the transaction that writes the event saying so. `request` records and
//! sends, `follow` asks the gateway until a refund ends, `notice` takes the
//! gateway's notifications.

mod follow;
pub(super) mod notice;
mod request;

use crate::store::events;
use std::time::Duration;

use super::gateway::{RefundFacts, RefundStatus};
use super::{Checkout, CheckoutError};
use crate::store::StoreError;
use crate::store::orders::{self, OrderRow};
use crate::store::outbox::{self, Event};
use crate::store::payments::{self, PaymentRow};
use crate::store::refunds::{self, RefundRow};
use crate::values::clock::Millis;
use crate::values::money::Fen;
use crate::values::order::{OrderNo, OrderState, RefundId, RefundState, UserId};
use crate::values::trade::{OutRefundNo, TransactionId};

/// The gateway takes at most this many refunds of one payment.
pub const MAX_REFUNDS_PER_PAYMENT: i64 = 50;
/// No refund later than this after the payment.
pub const REFUND_WINDOW: Duration = Duration::from_secs(365 * 24 * 3600);
/// What the admin is told when the merchant account cannot pay a refund.
pub const NOT_ENOUGH_MESSAGE: &str = "the merchant account lacks the balance; top it up and retry";
/// The longest reason kept (the gateway takes 80 bytes; the rest is for us).
pub const MAX_REASON_CHARS: usize = 200;
/// A refund just recorded is sent at once; should this process not hear back
/// (a crash), the poller sends it again after this.
const RESEND_AFTER: Duration = Duration::from_secs(15);
/// After acceptance: ask about 1 minute later, then back off (5, 10, 20, 30
/// minutes), then every 30 minutes until it ends.
const QUERY_SCHEDULE: [Duration; 5] = [
    Duration::from_secs(60),
    Duration::from_secs(300),
    Duration::from_secs(600),
    Duration::from_secs(1200),
    Duration::from_secs(1800),
];

/// Why a refund cannot be made (each shown to the admin, 422).
#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    #[error("no such order")]
    NoOrder,
    #[error("this order has no payment to refund")]
    NoPayment,
    #[error("this order has no payment with that transaction_id")]
    UnknownPayment,
    #[error("only {refundable} of this payment can still be refunded")]
    TooMuch { refundable: Fen },
    #[error("this payment has had {MAX_REFUNDS_PER_PAYMENT} refunds, the most the gateway takes")]
    TooMany,
    #[error("this payment is more than a year old and can no longer be refunded")]
    TooLate,
    #[error("that refund cannot be retried: it is not refused")]
    NotRetryable,
    #[error("no such refund")]
    NoRefund,
    #[error(transparent)]
    Checkout(#[from] CheckoutError),
}

impl From<StoreError> for RefundError {
    fn from(e: StoreError) -> Self {
        RefundError::Checkout(CheckoutError::Store(e))
    }
}

/// What an admin asks for.
#[derive(Debug, Clone)]
pub struct RefundInput {
    pub order_no: OrderNo,
    pub amount: Fen,
    pub reason: String,
    /// Which payment; the order's first when absent.
    pub transaction_id: Option<TransactionId>,
    /// The number the confirmation page chose: the same form sent twice is
    /// the same refund.
    pub out_refund_no: Option<OutRefundNo>,
    pub user_id: Option<UserId>,
    pub username: String,
}

/// What a confirmation shows: the order, the payment that money goes back to,
/// and how much of it is still refundable.
#[derive(Debug, Clone)]
pub struct RefundPlan {
    pub order: OrderRow,
    pub payment: PaymentRow,
    pub refundable: Fen,
    /// A new number for this refund, carried by the confirmation form.
    pub out_refund_no: OutRefundNo,
}

/// The payment a refund is for, and the rules it must pass at `now`.
fn check(
    conn: &rusqlite::Connection,
    order_no: &OrderNo,
    transaction_id: Option<&TransactionId>,
    amount: Option<Fen>,
    except: Option<RefundId>,
    now: Millis,
) -> Result<Result<(OrderRow, PaymentRow, Fen), RefundError>, StoreError> {
    let Some(order) = orders::order_by_no(conn, order_no)? else {
        return Ok(Err(RefundError::NoOrder));
    };
    let paid = payments::payments_of(conn, order.id)?;
    let payment = match transaction_id {
        None => paid.into_iter().next(),
        Some(t) => {
            let found = paid.into_iter().find(|p| &p.transaction_id == t);
            if found.is_none() {
                return Ok(Err(RefundError::UnknownPayment));
            }
            found
        }
    };
    let Some(payment) = payment else {
        return Ok(Err(RefundError::NoPayment));
    };
    if now > payment.created_at.plus(REFUND_WINDOW) {
        return Ok(Err(RefundError::TooLate));
    }
    let held = refunds::reserved(conn, payment.id, except)?;
    let refundable = Fen::new((payment.amount.get() - held.sum.get()).max(0));
    if except.is_none() && held.count >= MAX_REFUNDS_PER_PAYMENT {
        return Ok(Err(RefundError::TooMany));
    }
    if let Some(a) = amount
        && a > refundable
    {
        return Ok(Err(RefundError::TooMuch { refundable }));
    }
    if refundable == Fen::ZERO {
        return Ok(Err(RefundError::TooMuch { refundable }));
    }
    Ok(Ok((order, payment, refundable)))
}

/// An answer about a refund is ours only if its amount (when given) is ours.
fn believable(r: &RefundRow, facts: &RefundFacts) -> Result<(), String> {
    match facts.amount {
        Some(a) if a != r.amount => Err(format!(
            "the gateway reports {a} for refund {} of {}",
            r.out_refund_no, r.amount
        )),
        _ => Ok(()),
    }
}

/// Which of our own final states the gateway's word overrules when it says
/// money moved: a `failed` refund (a refusal of one copy is no proof that an
/// earlier copy did not land), and for the bill, the gateway's settled record,
/// also a `closed` one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Overrule {
    Failed,
    FailedOrClosed,
}

impl Overrule {
    fn covers(self, s: RefundState) -> bool {
        match self {
            Overrule::Failed => s == RefundState::Failed,
            Overrule::FailedOrClosed => matches!(s, RefundState::Failed | RefundState::Closed),
        }
    }
}

/// Applies a refund status in `tx`; the order's token when it changed (its pages hear of it).
fn apply_in(
    tx: &rusqlite::Transaction<'_>,
    r: &RefundRow,
    status: &RefundStatus,
    source: &str,
    now: Millis,
    asked: i64,
    overrule: Overrule,
) -> Result<Option<crate::values::order::OrderToken>, StoreError> {
    let state = status.state();
    let facts = status.facts();
    let next = Checkout::next_refund_query(state, asked, now);
    let word = refunds::GatewayWord {
        state,
        refund_id: facts.refund_id.as_deref(),
        account: facts.account.as_deref(),
        gateway_succeeded_at: facts.succeeded_at,
        next_query_at: next,
    };
    // `r.state` is the row as read; each statement moves it only from the
    // state it names, so a stale read changes nothing.
    let corrected =
        overrule.covers(r.state) && refunds::correct_outcome(tx, r.id, r.state, &word, now)?;
    let changed = corrected || refunds::apply_outcome(tx, r.id, &word, now)?;
    if !changed {
        return Ok(None);
    }
    if corrected {
        let held = refunds::reserved(tx, r.payment_id, None)?;
        let paid = payments::payment_amount(tx, r.payment_id)?;
        let mut detail = format!(
            "{}: booked as {}, but the gateway says {state} ({source}); its {} counts as refunded again",
            r.out_refund_no, r.state, r.amount
        );
        if held.sum > paid {
            // Another refund took what this one freed; the gateway, which
            // refunds no more than was paid, will refuse or close it.
            detail.push_str(&format!(
                "; {} is now held against a payment of {paid}",
                held.sum
            ));
        }
        events::add_event(tx, r.order_id, now, "refund_corrected", &detail)?;
    }
    let kind = match state {
        RefundState::Succeeded => "refund_succeeded",
        RefundState::Closed => "refund_closed",
        RefundState::Abnormal => "refund_abnormal",
        _ => "refund_processing",
    };
    let mut detail = format!("{}: {} ({source})", r.out_refund_no, r.amount);
    if let Some(a) = &facts.account {
        detail.push_str(&format!(" to {a}"));
    }
    events::add_event(tx, r.order_id, now, kind, &detail)?;
    let order = orders::order_by_id(tx, r.order_id)?;
    if state == RefundState::Succeeded {
        // The owner hears of money that went back, in the same transaction.
        let event = Event::refund(r.out_refund_no.as_str(), &order.order_no, r.amount, now);
        outbox::enqueue(tx, &event)?;
    }
    Ok(Some(order.token))
}

/// The day's bill lists refund `r` as carried out (`refund_id` is the
/// bill's): ours is made to agree in `tx`, whatever we had booked, for the
/// bill is the gateway's settled record. It falls on the bill's day
/// (`succeeded_at`, unless the gateway gave us its time before). The order's
/// token when it changed.
pub(in crate::checkout) fn take_billed_refund(
    tx: &rusqlite::Transaction<'_>,
    r: &RefundRow,
    refund_id: &str,
    succeeded_at: Millis,
    now: Millis,
) -> Result<Option<crate::values::order::OrderToken>, StoreError> {
    let status = RefundStatus::Succeeded(RefundFacts {
        refund_id: Some(refund_id.to_string()),
        account: None,
        amount: Some(r.amount),
        succeeded_at: Some(succeeded_at),
    });
    apply_in(
        tx,
        r,
        &status,
        "bill",
        now,
        r.attempts,
        Overrule::FailedOrClosed,
    )
}

/// What an order's page says of its refunds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundedLabel {
    None,
    Partly,
    Fully,
}

/// 已退款 when everything paid went back, 部分退款 when some did.
pub fn refunded_label(state: OrderState, paid: Fen, refunded: Fen) -> RefundedLabel {
    if state != OrderState::Paid || refunded == Fen::ZERO {
        RefundedLabel::None
    } else if refunded >= paid {
        RefundedLabel::Fully
    } else {
        RefundedLabel::Partly
    }
}

#[cfg(test)]
mod tests {
    use super::request::record;
    use super::*;
    use proptest::prelude::*;

    const PAID: i64 = 1000;

    /// What can happen to refunds of one 10-yuan payment, in any order.
    #[derive(Debug, Clone)]
    enum Op {
        /// An admin asks for `amount`, with the number of earlier request `reuse`
        /// (a retried form) or a new one.
        Request {
            amount: i64,
            reuse: Option<usize>,
        },
        /// The gateway's word on refund `k` (a send's answer, a query's, or a
        /// notification: the same code applies them), perhaps again.
        Answer {
            k: usize,
            state: u8,
        },
        /// The gateway refused refund `k` (NOTENOUGH); then an admin retries it.
        Refuse(usize),
        Retry(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1..600i64, proptest::option::of(0..8usize))
                .prop_map(|(amount, reuse)| Op::Request { amount, reuse }),
            5 => (0..8usize, 0..4u8).prop_map(|(k, state)| Op::Answer { k, state }),
            1 => (0..8usize).prop_map(Op::Refuse),
            1 => (0..8usize).prop_map(Op::Retry),
        ]
    }

    fn status(state: u8, amount: Fen) -> RefundStatus {
        let f = RefundFacts {
            refund_id: Some("5000".into()),
            account: Some("支付用户零钱".into()),
            amount: Some(amount),
            succeeded_at: None,
        };
        match state {
            0 => RefundStatus::Processing(f),
            1 => RefundStatus::Succeeded(f),
            2 => RefundStatus::Closed(f),
            _ => RefundStatus::Abnormal(f),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn any_interleaving_never_refunds_more_than_was_paid(ops in proptest::collection::vec(op(), 1..40)) {
            let (_dir, store) = crate::store::fixtures::store();
            let order_no = store
                .write_blocking(|tx| {
                    Ok(crate::store::fixtures::sale(tx, crate::store::fixtures::Sale {
                        amount: PAID,
                        ..Default::default()
                    }).1)
                })
                .unwrap();
            let now = Millis(crate::store::fixtures::ms("2024-06-02T00:00:00Z"));
            let mut numbers: Vec<OutRefundNo> = Vec::new();
            for op in ops {
                match op {
                    Op::Request { amount, reuse } => {
                        let no = reuse
                            .and_then(|i| numbers.get(i).cloned())
                            .unwrap_or_else(OutRefundNo::random);
                        let input = RefundInput {
                            order_no: order_no.clone(),
                            amount: Fen::new(amount),
                            reason: String::new(),
                            transaction_id: None,
                            out_refund_no: Some(no.clone()),
                            user_id: None,
                            username: "admin".into(),
                        };
                        let n = no.clone();
                        if let Ok((_, true)) = store.write_blocking(move |tx| record(tx, &input, &n, now)).unwrap() {
                            numbers.push(no);
                        }
                    }
                    Op::Answer { k, state } => {
                        let Some(no) = numbers.get(k).cloned() else { continue };
                        store.write_blocking(move |tx| {
                            let r = refunds::refund_by_no(tx, &no)?.unwrap();
                            let answer = status(state, r.amount);
                            // The gateway refunds no more than was paid: it says
                            // money moved for a refund we booked as refused only
                            // if that money was still there for it.
                            if r.state == RefundState::Failed
                                && answer.state().reserves()
                                && refunds::reserved(tx, r.payment_id, Some(r.id))?.sum.get() + r.amount.get() > PAID
                            {
                                return Ok(());
                            }
                            apply_in(tx, &r, &answer, "test", now, r.attempts, Overrule::Failed)?;
                            Ok(())
                        }).unwrap();
                    }
                    Op::Refuse(k) => {
                        let Some(no) = numbers.get(k).cloned() else { continue };
                        store.write_blocking(move |tx| {
                            let r = refunds::refund_by_no(tx, &no)?.unwrap();
                            refunds::set_failed(tx, r.id, NOT_ENOUGH_MESSAGE, now)?;
                            Ok(())
                        }).unwrap();
                    }
                    Op::Retry(k) => {
                        let Some(no) = numbers.get(k).cloned() else { continue };
                        let order_no = order_no.clone();
                        store.write_blocking(move |tx| {
                            let r = refunds::refund_by_no(tx, &no)?.unwrap();
                            if r.state == RefundState::Failed {
                                let p = &payments::payments_of(tx, r.order_id)?[0];
                                if check(tx, &order_no, Some(&p.transaction_id), Some(r.amount), Some(r.id), now)?.is_ok() {
                                    refunds::set_retrying(tx, r.id, now, now)?;
                                }
                            }
                            Ok(())
                        }).unwrap();
                    }
                }
                let (reserved, succeeded, rows, distinct, applied): (i64, i64, i64, i64, i64) = store
                    .write_blocking(|tx| {
                        Ok(tx.query_row(
                            "SELECT COALESCE(SUM(amount_fen) FILTER (WHERE state NOT IN ('closed', 'failed')), 0),
                                    COALESCE(SUM(amount_fen) FILTER (WHERE state = 'succeeded'), 0),
                                    COUNT(*), COUNT(DISTINCT out_refund_no),
                                    (SELECT COUNT(*) FROM events WHERE kind = 'refund_succeeded')
                             FROM refunds",
                            [],
                            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                        )?)
                    })
                    .unwrap();
                prop_assert!(reserved <= PAID, "reserved {reserved} of {PAID}");
                prop_assert!(succeeded <= PAID, "refunded {succeeded} of {PAID}");
                prop_assert_eq!(rows, distinct, "one row per out_refund_no");
                prop_assert_eq!(rows, numbers.len() as i64);
                let succeeded_rows: i64 = store
                    .write_blocking(|tx| Ok(tx.query_row("SELECT COUNT(*) FROM refunds WHERE state = 'succeeded'", [], |r| r.get(0))?))
                    .unwrap();
                prop_assert_eq!(applied, succeeded_rows, "each success applied once");
            }
        }
    }

    #[test]
    fn the_gateways_success_overrules_our_refused_once() {
        let (_dir, store) = crate::store::fixtures::store();
        let order_no = store
            .write_blocking(|tx| {
                Ok(crate::store::fixtures::sale(
                    tx,
                    crate::store::fixtures::Sale {
                        amount: PAID,
                        ..Default::default()
                    },
                )
                .1)
            })
            .unwrap();
        let now = Millis(crate::store::fixtures::ms("2024-06-02T00:00:00Z"));
        let no = OutRefundNo::random();
        let input = RefundInput {
            order_no,
            amount: Fen::new(PAID),
            reason: String::new(),
            transaction_id: None,
            out_refund_no: Some(no.clone()),
            user_id: None,
            username: "admin".into(),
        };
        let (states, corrected, held) = store
            .write_blocking(move |tx| {
                let (r, _) = record(tx, &input, &no, now)?.unwrap();
                refunds::set_failed(tx, r.id, NOT_ENOUGH_MESSAGE, now)?;
                let mut states = Vec::new();
                for _ in 0..2 {
                    let r = refunds::refund_by_no(tx, &no)?.unwrap();
                    let ok = status(1, r.amount);
                    apply_in(tx, &r, &ok, "notification", now, 0, Overrule::Failed)?;
                    states.push(refunds::refund_by_no(tx, &no)?.unwrap().state);
                }
                let corrected: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM events WHERE kind = 'refund_corrected'",
                    [],
                    |r| r.get(0),
                )?;
                let r = refunds::refund_by_no(tx, &no)?.unwrap();
                Ok((
                    states,
                    corrected,
                    refunds::reserved(tx, r.payment_id, None)?.sum,
                ))
            })
            .unwrap();
        assert_eq!(states, [RefundState::Succeeded, RefundState::Succeeded]);
        assert_eq!(corrected, 1, "corrected once, with its event");
        assert_eq!(held, Fen::new(PAID), "its amount is reserved again");
    }

    #[test]
    fn queries_back_off_from_a_minute_to_half_an_hour() {
        let now = Millis::from(jiff::Timestamp::UNIX_EPOCH);
        let at =
            |state, n| Checkout::next_refund_query(state, n, now).map(|m| m.since(now).as_secs());
        assert_eq!(at(RefundState::Processing, 0), Some(60));
        assert_eq!(at(RefundState::Processing, 1), Some(300));
        assert_eq!(at(RefundState::Processing, 4), Some(1800));
        assert_eq!(at(RefundState::Processing, 400), Some(1800));
        assert_eq!(at(RefundState::Abnormal, 0), Some(1800));
        assert_eq!(at(RefundState::Succeeded, 0), None);
        assert_eq!(at(RefundState::Closed, 3), None);
    }

    #[test]
    fn labels_say_fully_or_partly_refunded() {
        let paid = Fen::new(1000);
        assert_eq!(
            refunded_label(OrderState::Paid, paid, Fen::ZERO),
            RefundedLabel::None
        );
        assert_eq!(
            refunded_label(OrderState::Paid, paid, Fen::new(1)),
            RefundedLabel::Partly
        );
        assert_eq!(
            refunded_label(OrderState::Paid, paid, paid),
            RefundedLabel::Fully
        );
    }
}
