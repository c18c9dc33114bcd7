//! Reconciliation: one day's records held against the gateway's bill for that
//! day. Payments are matched by the gateway's transaction id (one trade number
//! can be paid twice, each payment with its own), refunds by our refund number;
//! amounts are compared in fen. What does not match is a [`Difference`] of one
//! of the kinds SPEC §9 names.

use crate::store::qrs;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use jiff::civil::Date;

use super::Checkout;
use super::CheckoutError;
use super::apply::{ApplyOutcome, Evidence, apply_payment};
use super::gateway::{BillFetch, GatewayError, PaymentFacts};
use super::refund::take_billed_refund;
use crate::store::StoreError;
use crate::store::bills::{self, DayRow, DifferenceRow};
use crate::store::orders;
use crate::store::outbox::{self, Event};
use crate::store::refunds;
use crate::values::books::{
    BilledPayment, BilledRefund, DayBill, DayState, Difference, DifferenceKind, OurPayment,
    OurRefund,
};
use crate::values::clock::Millis;
use crate::values::money::Fen;
use crate::values::order::PaymentSource;
use crate::values::shop_time::beijing;
use crate::values::trade::{OutRefundNo, TransactionId};

/// Everything that does not match, payments first, each list in a stable order.
pub fn compare(payments: &[OurPayment], refunds: &[OurRefund], bill: &DayBill) -> Vec<Difference> {
    let mut out = Vec::new();
    let ours: HashMap<&TransactionId, &OurPayment> =
        payments.iter().map(|p| (&p.transaction_id, p)).collect();
    let billed: HashMap<&TransactionId, &BilledPayment> = bill
        .payments
        .iter()
        .map(|p| (&p.transaction_id, p))
        .collect();
    for b in &bill.payments {
        match ours.get(&b.transaction_id) {
            None => out.push(Difference {
                theirs: Some(b.amount),
                ..Difference::payment(
                    DifferenceKind::MissingHere,
                    (&b.out_trade_no, &b.transaction_id),
                )
            }),
            Some(o) if o.amount != b.amount => out.push(Difference {
                ours: Some(o.amount),
                theirs: Some(b.amount),
                ..Difference::payment(
                    DifferenceKind::AmountDiffers,
                    (&o.out_trade_no, &o.transaction_id),
                )
            }),
            Some(_) => {}
        }
    }
    for o in payments {
        if !billed.contains_key(&o.transaction_id) {
            out.push(Difference {
                ours: Some(o.amount),
                ..Difference::payment(
                    DifferenceKind::MissingInBill,
                    (&o.out_trade_no, &o.transaction_id),
                )
            });
        }
    }
    let our_refunds: HashMap<&OutRefundNo, &OurRefund> =
        refunds.iter().map(|r| (&r.out_refund_no, r)).collect();
    let billed_refunds: HashMap<&OutRefundNo, &BilledRefund> =
        bill.refunds.iter().map(|r| (&r.out_refund_no, r)).collect();
    for b in &bill.refunds {
        let refund = |kind, ours| Difference {
            ours,
            theirs: Some(b.amount),
            ..Difference::refund(kind, (&b.out_trade_no, &b.out_refund_no))
        };
        match our_refunds.get(&b.out_refund_no) {
            None => out.push(refund(DifferenceKind::RefundMissingHere, None)),
            Some(o) if o.amount != b.amount => {
                out.push(refund(DifferenceKind::AmountDiffers, Some(o.amount)))
            }
            Some(_) => {}
        }
    }
    for o in refunds {
        if !billed_refunds.contains_key(&o.out_refund_no) {
            out.push(Difference {
                ours: Some(o.amount),
                ..Difference::refund(
                    DifferenceKind::RefundMissingInBill,
                    (&o.out_trade_no, &o.out_refund_no),
                )
            });
        }
    }
    out
}

/// The Beijing day of a payment: when the gateway says it was paid, else
/// when we recorded it.
fn payment_day(paid_at: Option<Millis>, recorded: Millis) -> Date {
    paid_at
        .unwrap_or(recorded)
        .to_timestamp()
        .to_zoned(beijing())
        .date()
}

/// The first moment of a Beijing day.
fn day_start(day: Date) -> Result<Millis, CheckoutError> {
    day.to_zoned(beijing())
        .map(|z| Millis(z.timestamp().as_millisecond()))
        .map_err(|e| CheckoutError::BadDay(format!("{day}: {e}")))
}

/// What one reconciliation run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DayOutcome {
    Checked {
        day: DayRow,
        differences: Vec<DifferenceRow>,
        /// Payments found only in the bill and recorded now on our orders.
        recovered: usize,
    },
    /// Could not be checked now (no bill yet, the gateway down): why.
    Pending(String),
}

/// How far back the poller catches up on days it could not check (the
/// gateway keeps bills for three months; a week covers any outage worth the name).
const CATCH_UP_DAYS: i64 = 7;
/// How often a day that could not be checked is tried again.
const PENDING_RETRY: Duration = Duration::from_secs(30 * 60);
/// How often the poller asks whether a bill is due at all.
const BILL_CHECK_EVERY: Duration = Duration::from_secs(60);

impl Checkout {
    /// The day whose bill is due now, if any: yesterday once `bill_fetch_at`
    /// has passed (Beijing time), or an earlier day of the last week that was
    /// never checked or is pending, newest first; never a day before the
    /// first order (there is nothing to hold a bill against). When nothing
    /// is due, asked again a minute later at the earliest.
    pub(super) async fn bill_due(&self) -> Result<Option<Date>, StoreError> {
        let now = self.now();
        if now.get() < self.inner.next_bill_check.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let here = now.to_timestamp().to_zoned(beijing());
        let today = here.date();
        let fetch_at = self.cfg().bill_fetch_at;
        self.store()
            .read(move |c| {
                let Some(first) = orders::first_order_at(c)? else {
                    return Ok(None);
                };
                let first = first.to_timestamp().to_zoned(beijing()).date();
                for back in 1..=CATCH_UP_DAYS {
                    let Ok(day) = today.checked_sub(jiff::Span::new().days(back)) else {
                        break;
                    };
                    if day < first {
                        break;
                    }
                    if back == 1 && here.time() < fetch_at {
                        continue;
                    }
                    match bills::day(c, day)? {
                        None => return Ok(Some(day)),
                        Some(row)
                            if row.state == DayState::Pending
                                && now.since(row.checked_at) >= PENDING_RETRY =>
                        {
                            return Ok(Some(day));
                        }
                        Some(_) => {}
                    }
                }
                Ok(None)
            })
            .await
            .inspect(|due| {
                if due.is_none() {
                    self.inner
                        .next_bill_check
                        .store(now.plus(BILL_CHECK_EVERY).get(), Ordering::Relaxed);
                }
            })
    }

    /// Downloads the gateway's bill of `day` (Beijing time), holds it against
    /// our payments and refunds of that day, and records the result (the last
    /// run of a day stands). A payment the bill has for one of our trade
    /// numbers but we never recorded is recorded now, in the same transaction.
    #[tracing::instrument(skip(self), fields(%day))]
    pub async fn reconcile_day(&self, day: Date) -> Result<DayOutcome, CheckoutError> {
        let now = self.now();
        let (bill, raw) = match self.gateway().fetch_bill(day).await {
            Ok(BillFetch::Bill { bill, raw }) => (Some(bill), Some(raw)),
            Ok(BillFetch::NoTrades) => (None, None),
            Ok(BillFetch::NotReady(why)) => return self.pending(day, now, why, None).await,
            Err(e) => return self.pending(day, now, e.to_string(), Some(&e)).await,
        };
        let (ours, refunds) = self.books_of_day(day).await?;
        let no_bill = bill.is_none();
        let bill = bill.unwrap_or_default();
        let found = compare(&ours, &refunds, &bill);
        let day_start = day_start(day)?;
        let billed_refund_ids: HashMap<OutRefundNo, String> = bill
            .refunds
            .iter()
            .map(|r| (r.out_refund_no.clone(), r.refund_id.clone()))
            .collect();
        let mut row = DayRow {
            day,
            state: DayState::Pending,
            checked_at: now,
            gross: bill.gross(),
            refunded: bill.refunded(),
            fee_millifen: bill.fee_millifen,
            net: bill.net(),
            payments: i64::try_from(bill.payments.len()).unwrap_or(i64::MAX),
            refunds: i64::try_from(bill.refunds.len()).unwrap_or(i64::MAX),
            last_error: None,
        };
        let mut record = row.clone();
        let (differences, changed, recovered, state) = self
            .store()
            .write(move |tx| {
                let mut rows = Vec::with_capacity(found.len());
                let mut changed = Vec::new();
                let mut recovered = 0;
                for d in found {
                    // A refund of ours the bill lists, though our books of
                    // the day lack it (booked as refused, closed, not yet
                    // known to have succeeded): not another system's, but
                    // ours to correct.
                    if let (DifferenceKind::RefundMissingHere, Some(no), Some(theirs)) =
                        (d.kind, &d.out_refund_no, d.theirs)
                        && let Some(r) = refunds::refund_by_no(tx, no)?
                        && r.amount == theirs
                    {
                        let refund_id = billed_refund_ids.get(no).map_or("", String::as_str);
                        if let Some(token) = take_billed_refund(tx, &r, refund_id, day_start, now)?
                        {
                            changed.push(token);
                        }
                        continue;
                    }
                    let qr = qrs::qr_by_out_trade_no(tx, &d.out_trade_no)?;
                    if let (Some(_), DifferenceKind::MissingHere, Some(amount), Some(txid)) =
                        (&qr, d.kind, d.theirs, &d.transaction_id)
                    {
                        let ev = Evidence {
                            out_trade_no: d.out_trade_no.clone(),
                            payment: PaymentFacts {
                                transaction_id: txid.clone(),
                                amount,
                                payer: None,
                                paid_at: None,
                            },
                            source: PaymentSource::Bill,
                        };
                        if let ApplyOutcome::Applied { token, .. } = apply_payment(tx, &ev, now)? {
                            recovered += 1;
                            changed.push(token);
                        }
                    }
                    let order_id = qr.map(|q| q.order_id);
                    let order_no = match order_id {
                        Some(id) => Some(orders::order_by_id(tx, id)?.order_no),
                        None => None,
                    };
                    // The owner hears of each difference once, however often
                    // the day is checked again.
                    outbox::enqueue(
                        tx,
                        &Event::reconciliation_difference(
                            &record.day.to_string(),
                            &format!("{}-{}", d.kind, d.key()),
                            order_no.as_ref(),
                            d.theirs.or(d.ours).unwrap_or(Fen::ZERO),
                            now,
                        ),
                    )?;
                    rows.push(DifferenceRow {
                        order_id,
                        order_no,
                        difference: d,
                    });
                }
                record.state = match (rows.is_empty(), no_bill) {
                    (false, _) => DayState::Differences,
                    (true, true) => DayState::NoBill,
                    (true, false) => DayState::Matched,
                };
                bills::record_day(tx, &record, raw.as_deref(), &rows)?;
                Ok((rows, changed, recovered, record.state))
            })
            .await?;
        row.state = state;
        for token in &changed {
            self.publish(token);
        }
        Ok(DayOutcome::Checked {
            day: row,
            differences,
            recovered,
        })
    }

    async fn pending(
        &self,
        day: Date,
        now: Millis,
        why: String,
        failed: Option<&GatewayError>,
    ) -> Result<DayOutcome, CheckoutError> {
        match failed {
            Some(e) => {
                tracing::warn!(%day, error.message = %e, error.cause_chain = %crate::base::cause::chain(e), "the day's bill could not be reconciled now")
            }
            None => tracing::warn!(%day, %why, "the day's bill could not be reconciled now"),
        }
        let reason = why.clone();
        self.store()
            .write(move |tx| bills::record_pending(tx, day, now, &reason))
            .await?;
        Ok(DayOutcome::Pending(why))
    }

    /// Our payments whose gateway day is `day`, and our refunds that
    /// succeeded that day (a refund is in the bill of the day it was made).
    async fn books_of_day(
        &self,
        day: Date,
    ) -> Result<(Vec<OurPayment>, Vec<OurRefund>), CheckoutError> {
        let start = day_start(day)?;
        // A payment is recorded after the gateway took it, at worst much later
        // (a poll after an outage, a restart): a wide margin, then the exact day.
        let from = start.minus(Duration::from_secs(24 * 3600));
        let until = start.plus(Duration::from_secs(3 * 24 * 3600));
        let (booked, refunded) = self
            .store()
            .read(move |c| {
                Ok((
                    bills::payments_recorded_between(c, from, until)?,
                    bills::refunds_finished_between(c, from, until)?,
                ))
            })
            .await?;
        let payments = booked
            .into_iter()
            .filter(|p| payment_day(p.paid_at, p.created_at) == day)
            .map(|p| OurPayment {
                out_trade_no: p.out_trade_no,
                transaction_id: p.transaction_id,
                amount: p.amount,
            })
            .collect();
        let refunds = refunded
            .into_iter()
            // On the bill's day: the gateway's time of success, when it gave one.
            .filter(|r| payment_day(r.succeeded_at, r.finished_at) == day)
            .map(|r| OurRefund {
                out_refund_no: r.out_refund_no,
                out_trade_no: r.out_trade_no,
                amount: r.amount,
            })
            .collect();
        Ok((payments, refunds))
    }

    /// The days reconciled, newest first (the admin's list).
    pub async fn reconciled_days(&self, limit: usize) -> Result<Vec<DayRow>, CheckoutError> {
        Ok(self.store().read(move |c| bills::days(c, limit)).await?)
    }

    /// One day and its differences, if it was checked.
    pub async fn reconciled_day(
        &self,
        day: Date,
    ) -> Result<Option<(DayRow, Vec<DifferenceRow>)>, CheckoutError> {
        Ok(self
            .store()
            .read(move |c| {
                Ok(match bills::day(c, day)? {
                    Some(row) => Some((row, bills::differences(c, day)?)),
                    None => None,
                })
            })
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::trade::OutTradeNo;
    use proptest::prelude::*;

    #[test]
    fn a_payment_falls_on_the_gateways_day_not_the_day_we_recorded_it() {
        let at = |t: &str| Millis::from(t.parse::<jiff::Timestamp>().unwrap());
        // Paid a second before midnight in Beijing, recorded after it.
        let paid = at("2026-11-30T23:59:59+08:00");
        let recorded = at("2026-12-01T00:00:30+08:00");
        assert_eq!(
            payment_day(Some(paid), recorded),
            jiff::civil::date(2026, 11, 30)
        );
        assert_eq!(payment_day(None, recorded), jiff::civil::date(2026, 12, 1));
    }

    fn ours(i: u32, fen: i64) -> OurPayment {
        OurPayment {
            out_trade_no: OutTradeNo::new(format!("T{i}")).unwrap(),
            transaction_id: TransactionId::new(format!("42{i}")).unwrap(),
            amount: Fen::new(fen),
        }
    }

    fn billed(p: &OurPayment) -> BilledPayment {
        BilledPayment {
            out_trade_no: p.out_trade_no.clone(),
            transaction_id: p.transaction_id.clone(),
            amount: p.amount,
        }
    }

    fn refund(i: u32, fen: i64) -> OurRefund {
        OurRefund {
            out_refund_no: OutRefundNo::new(format!("R{i}")).unwrap(),
            out_trade_no: OutTradeNo::new(format!("T{i}")).unwrap(),
            amount: Fen::new(fen),
        }
    }

    fn billed_refund(r: &OurRefund) -> BilledRefund {
        BilledRefund {
            out_refund_no: r.out_refund_no.clone(),
            out_trade_no: r.out_trade_no.clone(),
            refund_id: format!("50{}", r.out_refund_no),
            amount: r.amount,
        }
    }

    #[test]
    fn each_kind_of_difference_is_found() {
        let pay: Vec<_> = (1..=4).map(|i| ours(i, 100 * i64::from(i))).collect();
        let refunds = vec![refund(1, 50), refund(2, 20)];
        let mut bill = DayBill {
            payments: vec![billed(&pay[0]), billed(&pay[1]), billed(&pay[2])],
            refunds: vec![billed_refund(&refunds[0])],
            fee_millifen: 3600,
        };
        bill.payments[1].amount = Fen::new(201); // amount_differs
        bill.payments.push(billed(&ours(9, 900))); // missing_here
        bill.refunds.push(billed_refund(&refund(7, 70))); // refund_missing_here
        let kinds: Vec<(DifferenceKind, String)> = compare(&pay, &refunds, &bill)
            .into_iter()
            .map(|d| (d.kind, d.key().to_string()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (DifferenceKind::AmountDiffers, "422".into()),
                (DifferenceKind::MissingHere, "429".into()),
                (DifferenceKind::MissingInBill, "424".into()),
                (DifferenceKind::RefundMissingHere, "R7".into()),
                (DifferenceKind::RefundMissingInBill, "R2".into()),
            ]
        );
        assert_eq!(bill.gross(), Fen::new(100 + 201 + 300 + 900));
        assert_eq!(
            bill.net(),
            Fen::new(1501 - 120 - 4),
            "3.6 fen of fees round to 4"
        );
    }

    #[test]
    fn a_double_payment_is_two_payments() {
        let mut second = ours(1, 100);
        second.transaction_id = TransactionId::new("42second").unwrap();
        let pay = vec![ours(1, 100), second.clone()];
        let bill = DayBill {
            payments: vec![billed(&pay[0])],
            ..DayBill::default()
        };
        let d = compare(&pay, &[], &bill);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].kind, DifferenceKind::MissingInBill);
        assert_eq!(d[0].transaction_id, Some(second.transaction_id));
        assert_eq!(d[0].out_refund_no, None);
    }

    proptest! {
        /// The same records on both sides never differ; and every change to one
        /// side is found.
        #[test]
        fn matching_books_have_no_difference(
            amounts in proptest::collection::vec(1i64..1_000_000, 0..40),
            drop in any::<proptest::sample::Index>(),
        ) {
            let pay: Vec<_> = amounts.iter().enumerate().map(|(i, a)| ours(i as u32, *a)).collect();
            let refunds: Vec<_> = pay.iter().enumerate().filter(|(i, _)| i % 4 == 0)
                .map(|(i, p)| refund(i as u32, p.amount.get() / 2 + 1)).collect();
            let bill = DayBill {
                payments: pay.iter().map(billed).collect(),
                refunds: refunds.iter().map(billed_refund).collect(),
                fee_millifen: 0,
            };
            prop_assert!(compare(&pay, &refunds, &bill).is_empty());
            if !pay.is_empty() {
                let mut short = bill.clone();
                short.payments.remove(drop.index(pay.len()));
                let d = compare(&pay, &refunds, &short);
                prop_assert_eq!(d.len(), 1);
                prop_assert_eq!(d[0].kind, DifferenceKind::MissingInBill);
            }
        }
    }
}
