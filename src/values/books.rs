//! The books of one day, in the shop's terms: what scanpay recorded, what the
//! gateway's bill lists, and what does not match (SPEC §9). Values only; the
//! comparison and the run are in `checkout::reconcile`.

use crate::values::money::{Fen, millifen_to_fen};
use crate::values::trade::{OutRefundNo, OutTradeNo, TransactionId};

/// A payment as scanpay recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OurPayment {
    pub out_trade_no: OutTradeNo,
    pub transaction_id: TransactionId,
    pub amount: Fen,
}

/// A refund as scanpay recorded it (succeeded, on this day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OurRefund {
    pub out_refund_no: OutRefundNo,
    pub out_trade_no: OutTradeNo,
    pub amount: Fen,
}

/// A payment as the bill lists it (its numbers checked when the bill was read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BilledPayment {
    pub out_trade_no: OutTradeNo,
    pub transaction_id: TransactionId,
    pub amount: Fen,
}

/// A refund as the bill lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BilledRefund {
    pub out_refund_no: OutRefundNo,
    pub out_trade_no: OutTradeNo,
    /// The gateway's own id of the refund, as the bill gives it (shown, never matched).
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
        Fen::new(
            self.gross().get() - self.refunded().get() - millifen_to_fen(self.fee_millifen).get(),
        )
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

crate::values::words::text_enum!(DifferenceKind {
    MissingHere => "missing_here",
    MissingInBill => "missing_in_bill",
    AmountDiffers => "amount_differs",
    RefundMissingHere => "refund_missing_here",
    RefundMissingInBill => "refund_missing_in_bill",
});

/// Where a day stands (SPEC §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayState {
    Matched,
    Differences,
    /// The gateway has no bill: no trade that day, and none here either.
    NoBill,
    /// Not checked yet, or it could not be (the bill not ready, the gateway down).
    Pending,
}

crate::values::words::text_enum!(DayState {
    Matched => "matched",
    Differences => "differences",
    NoBill => "no_bill",
    Pending => "pending",
});

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub kind: DifferenceKind,
    pub out_trade_no: OutTradeNo,
    /// The payment's; none for refund differences.
    pub transaction_id: Option<TransactionId>,
    /// The refund's; none for payment differences.
    pub out_refund_no: Option<OutRefundNo>,
    pub ours: Option<Fen>,
    pub theirs: Option<Fen>,
}

impl Difference {
    pub(crate) fn payment(kind: DifferenceKind, p: (&OutTradeNo, &TransactionId)) -> Self {
        Difference {
            kind,
            out_trade_no: p.0.clone(),
            transaction_id: Some(p.1.clone()),
            out_refund_no: None,
            ours: None,
            theirs: None,
        }
    }

    pub(crate) fn refund(kind: DifferenceKind, r: (&OutTradeNo, &OutRefundNo)) -> Self {
        Difference {
            kind,
            out_trade_no: r.0.clone(),
            transaction_id: None,
            out_refund_no: Some(r.1.clone()),
            ours: None,
            theirs: None,
        }
    }

    /// What it is about: the refund's number, or the payment's transaction.
    pub fn key(&self) -> &str {
        match (&self.out_refund_no, &self.transaction_id) {
            (Some(r), _) => r.as_str(),
            (None, Some(t)) => t.as_str(),
            (None, None) => "",
        }
    }
}
