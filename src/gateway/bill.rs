//! The trade bill's text (the same family in v2 and v3) → one day's bill in
//! the shop's terms. Payment rows are `SUCCESS`, refund rows `REFUND`; the
//! amount compared is the order's (`订单金额`), what the QR asked for.

use crate::bill::{self, BillRow};
use crate::checkout::gateway::GatewayError;
use crate::checkout::reconcile::{BilledPayment, BilledRefund, DayBill};

pub fn day_bill(text: &str, mch_id: &str) -> Result<DayBill, GatewayError> {
    let parsed = bill::parse(text).map_err(|e| {
        GatewayError::Unbelievable(crate::cause::Failure::because(
            format!("the bill cannot be read: {e}"),
            e,
        ))
    })?;
    if let Some(foreign) = parsed.rows.iter().find(|r| r.mch_id != mch_id) {
        return Err(GatewayError::Unbelievable(
            format!("the bill lists a trade of merchant {:?}", foreign.mch_id).into(),
        ));
    }
    let mut day = DayBill {
        fee_millifen: parsed.rows.iter().map(|r| r.fee_millifen).sum(),
        ..DayBill::default()
    };
    for r in parsed.rows {
        match r.trade_state.as_str() {
            "REFUND" => day.refunds.push(refund(r)),
            // A payment later revoked was still a payment of that day.
            _ => day.payments.push(payment(r)),
        }
    }
    Ok(day)
}

fn payment(r: BillRow) -> BilledPayment {
    BilledPayment {
        out_trade_no: r.out_trade_no,
        transaction_id: r.transaction_id,
        amount: r.order_total,
    }
}

fn refund(r: BillRow) -> BilledRefund {
    BilledRefund {
        out_refund_no: r.out_refund_no,
        out_trade_no: r.out_trade_no,
        refund_id: r.refund_id,
        amount: r.refund,
    }
}
