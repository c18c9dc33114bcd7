//! The trade bill's text (the same family in v2 and v3) → one day's bill in
//! the shop's terms. Payment rows are `SUCCESS`, refund rows `REFUND`; the
//! amount compared is the order's (`订单金额`), what the QR asked for. The
//! numbers of each row are checked here, once: a bill whose numbers break the
//! gateway's own rules is not believed.

use crate::checkout::gateway::GatewayError;
use crate::values::books::{BilledPayment, BilledRefund, DayBill};
use crate::values::trade::{OutRefundNo, OutTradeNo, TradeValueError, TransactionId};
use crate::wxpay::bill::{self, BillRow};

pub fn day_bill(text: &str, mch_id: &str) -> Result<DayBill, GatewayError> {
    let parsed = bill::parse(text).map_err(|e| {
        GatewayError::Unbelievable(crate::base::cause::Failure::because(
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
        let unbelievable = |e: TradeValueError| {
            GatewayError::Unbelievable(crate::base::cause::Failure::because(
                format!("the bill's row of trade {:?}: {e}", r.out_trade_no),
                e,
            ))
        };
        match r.trade_state.as_str() {
            "REFUND" => day.refunds.push(refund(&r).map_err(unbelievable)?),
            // A payment later revoked was still a payment of that day.
            _ => day.payments.push(payment(&r).map_err(unbelievable)?),
        }
    }
    Ok(day)
}

fn payment(r: &BillRow) -> Result<BilledPayment, TradeValueError> {
    Ok(BilledPayment {
        out_trade_no: OutTradeNo::new(r.out_trade_no.as_str())?,
        transaction_id: TransactionId::new(r.transaction_id.as_str())?,
        amount: r.order_total,
    })
}

fn refund(r: &BillRow) -> Result<BilledRefund, TradeValueError> {
    Ok(BilledRefund {
        out_refund_no: OutRefundNo::new(r.out_refund_no.as_str())?,
        out_trade_no: OutTradeNo::new(r.out_trade_no.as_str())?,
        refund_id: r.refund_id.clone(),
        amount: r.refund,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::money::Fen;

    fn row(transaction_id: &str, out_trade_no: &str, out_refund_no: &str) -> BillRow {
        let refund = !out_refund_no.is_empty();
        BillRow {
            trade_time: "2026-12-01 10:00:00".into(),
            appid: "wx2421b1c4370ec43b".into(),
            mch_id: "10000100".into(),
            transaction_id: transaction_id.into(),
            out_trade_no: out_trade_no.into(),
            trade_type: "NATIVE".into(),
            trade_state: if refund { "REFUND" } else { "SUCCESS" }.into(),
            settlement: Fen::new(100),
            coupon: Fen::ZERO,
            refund_id: if refund { "5030".into() } else { String::new() },
            out_refund_no: out_refund_no.into(),
            refund: if refund { Fen::new(50) } else { Fen::ZERO },
            refund_state: if refund { "SUCCESS" } else { "" }.into(),
            product: "Latte".into(),
            fee_millifen: 600,
            order_total: Fen::new(100),
        }
    }

    fn read(rows: Vec<BillRow>) -> Result<DayBill, GatewayError> {
        day_bill(&bill::render(&bill::Bill::of(rows)), "10000100")
    }

    #[test]
    fn rows_become_typed_payments_and_refunds() {
        let day = read(vec![row("4200001", "T1", ""), row("4200001", "T1", "R1")]).unwrap();
        assert_eq!(day.payments.len(), 1);
        assert_eq!(day.payments[0].transaction_id.as_str(), "4200001");
        assert_eq!(day.payments[0].out_trade_no.as_str(), "T1");
        assert_eq!(day.refunds.len(), 1);
        assert_eq!(day.refunds[0].out_refund_no.as_str(), "R1");
        assert_eq!(day.refunds[0].out_trade_no.as_str(), "T1");
        assert_eq!(day.refunds[0].amount, Fen::new(50));
    }

    #[test]
    fn a_row_breaking_the_gateways_rules_is_not_believed() {
        let mut refund_without_number = row("4200001", "T1", "R1");
        refund_without_number.out_refund_no = String::new();
        for bad in [
            row("", "T1", ""),
            row("4200001", &"T".repeat(33), ""),
            row("4200001", "T1", &"R".repeat(65)),
            refund_without_number,
        ] {
            let what = format!("{bad:?}");
            assert!(
                matches!(read(vec![bad]), Err(GatewayError::Unbelievable(_))),
                "{what}"
            );
        }
    }
}
