//! Reconciliation: one day's records held against the gateway's bill for that
//! day. Payments are matched by the gateway's transaction id (one trade number
//! can be paid twice, each payment with its own), refunds by our refund number;
//! amounts are compared in fen. What does not match is a [`Difference`] of one
//! of the kinds SPEC §9 names.

use std::collections::HashMap;

use crate::money::Fen;

/// A payment as scanpay recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OurPayment {
    pub out_trade_no: String,
    pub transaction_id: String,
    pub amount: Fen,
}

/// A refund as scanpay recorded it (succeeded, on this day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OurRefund {
    pub out_refund_no: String,
    pub out_trade_no: String,
    pub amount: Fen,
}

/// A payment as the bill lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BilledPayment {
    pub out_trade_no: String,
    pub transaction_id: String,
    pub amount: Fen,
}

/// A refund as the bill lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BilledRefund {
    pub out_refund_no: String,
    pub out_trade_no: String,
    pub refund_id: String,
    pub amount: Fen,
}

/// One day's bill in the shop's terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayBill {
    pub payments: Vec<BilledPayment>,
    pub refunds: Vec<BilledRefund>,
    /// The gateway's fees for the day, in thousandths of a fen.
    pub fee_millifen: i64,
}

impl DayBill {
    pub fn gross(&self) -> Fen {
        Fen::new(self.payments.iter().map(|p| p.amount.get()).sum())
    }

    pub fn refunded(&self) -> Fen {
        Fen::new(self.refunds.iter().map(|r| r.amount.get()).sum())
    }

    /// What the day settles: payments less refunds less fees (fees rounded to the fen).
    pub fn net(&self) -> Fen {
        let fees_fen = (self.fee_millifen + 500).div_euclid(1000);
        Fen::new(self.gross().get() - self.refunded().get() - fees_fen)
    }
}

/// The kinds of difference (SPEC §9), as they are stored and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DifferenceKind {
    /// The bill has money scanpay never recorded.
    MissingHere,
    /// scanpay recorded a payment the bill does not have.
    MissingInBill,
    /// Both have it, with different amounts.
    AmountDiffers,
    RefundMissingHere,
    RefundMissingInBill,
}

crate::order::text_enum!(DifferenceKind {
    MissingHere => "missing_here",
    MissingInBill => "missing_in_bill",
    AmountDiffers => "amount_differs",
    RefundMissingHere => "refund_missing_here",
    RefundMissingInBill => "refund_missing_in_bill",
});

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub kind: DifferenceKind,
    pub out_trade_no: String,
    /// Empty for refund differences.
    pub transaction_id: String,
    /// Empty for payment differences.
    pub out_refund_no: String,
    pub ours: Option<Fen>,
    pub theirs: Option<Fen>,
}

/// Everything that does not match, payments first, each list in a stable order.
pub fn compare(payments: &[OurPayment], refunds: &[OurRefund], bill: &DayBill) -> Vec<Difference> {
    let mut out = Vec::new();
    let ours: HashMap<&str, &OurPayment> = payments
        .iter()
        .map(|p| (p.transaction_id.as_str(), p))
        .collect();
    let billed: HashMap<&str, &BilledPayment> = bill
        .payments
        .iter()
        .map(|p| (p.transaction_id.as_str(), p))
        .collect();
    for b in &bill.payments {
        match ours.get(b.transaction_id.as_str()) {
            None => out.push(Difference {
                kind: DifferenceKind::MissingHere,
                out_trade_no: b.out_trade_no.clone(),
                transaction_id: b.transaction_id.clone(),
                out_refund_no: String::new(),
                ours: None,
                theirs: Some(b.amount),
            }),
            Some(o) if o.amount != b.amount => out.push(Difference {
                kind: DifferenceKind::AmountDiffers,
                out_trade_no: o.out_trade_no.clone(),
                transaction_id: o.transaction_id.clone(),
                out_refund_no: String::new(),
                ours: Some(o.amount),
                theirs: Some(b.amount),
            }),
            Some(_) => {}
        }
    }
    for o in payments {
        if !billed.contains_key(o.transaction_id.as_str()) {
            out.push(Difference {
                kind: DifferenceKind::MissingInBill,
                out_trade_no: o.out_trade_no.clone(),
                transaction_id: o.transaction_id.clone(),
                out_refund_no: String::new(),
                ours: Some(o.amount),
                theirs: None,
            });
        }
    }
    let our_refunds: HashMap<&str, &OurRefund> = refunds
        .iter()
        .map(|r| (r.out_refund_no.as_str(), r))
        .collect();
    let billed_refunds: HashMap<&str, &BilledRefund> = bill
        .refunds
        .iter()
        .map(|r| (r.out_refund_no.as_str(), r))
        .collect();
    for b in &bill.refunds {
        let refund = |kind, ours| Difference {
            kind,
            out_trade_no: b.out_trade_no.clone(),
            transaction_id: String::new(),
            out_refund_no: b.out_refund_no.clone(),
            ours,
            theirs: Some(b.amount),
        };
        match our_refunds.get(b.out_refund_no.as_str()) {
            None => out.push(refund(DifferenceKind::RefundMissingHere, None)),
            Some(o) if o.amount != b.amount => {
                out.push(refund(DifferenceKind::AmountDiffers, Some(o.amount)))
            }
            Some(_) => {}
        }
    }
    for o in refunds {
        if !billed_refunds.contains_key(o.out_refund_no.as_str()) {
            out.push(Difference {
                kind: DifferenceKind::RefundMissingInBill,
                out_trade_no: o.out_trade_no.clone(),
                transaction_id: String::new(),
                out_refund_no: o.out_refund_no.clone(),
                ours: Some(o.amount),
                theirs: None,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ours(i: u32, fen: i64) -> OurPayment {
        OurPayment {
            out_trade_no: format!("T{i}"),
            transaction_id: format!("42{i}"),
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
            out_refund_no: format!("R{i}"),
            out_trade_no: format!("T{i}"),
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
            .map(|d| (d.kind, format!("{}{}", d.transaction_id, d.out_refund_no)))
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
        second.transaction_id = "42second".into();
        let pay = vec![ours(1, 100), second.clone()];
        let bill = DayBill {
            payments: vec![billed(&pay[0])],
            ..DayBill::default()
        };
        let d = compare(&pay, &[], &bill);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].kind, DifferenceKind::MissingInBill);
        assert_eq!(d[0].transaction_id, "42second");
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
