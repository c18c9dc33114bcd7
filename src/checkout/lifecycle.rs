//! The end of an open order: it expires unpaid, or the cashier cancels it.
//! Either way its QR is asked once more first, so a payment is never lost.

use super::transitions::end_order;
use super::{Checkout, CheckoutError};
use crate::store::orders::{self, OrderRow};
use crate::store::qrs;
use crate::values::order::{OrderState, OrderToken, PaymentSource, QrState};

impl Checkout {
    /// Ends an open order (`expired` or `cancelled`) after one last look at its QR.
    async fn end(
        &self,
        order: &OrderRow,
        to: OrderState,
        why: &str,
    ) -> Result<OrderState, CheckoutError> {
        if let Some(qr_id) = order.current_qr_id {
            let qr = self.store().read(move |c| qrs::qr_by_id(c, qr_id)).await?;
            if matches!(qr.state, QrState::Open | QrState::Closing)
                && let Ok(s) = self.gateway().query(&qr.out_trade_no).await
                && self.apply_if_paid(&qr, &s, PaymentSource::Poll).await?
            {
                return Ok(OrderState::Paid);
            }
        }
        let now = self.now();
        let order_id = order.id;
        let why = why.to_string();
        let state = self
            .store()
            .write(move |tx| end_order(tx, order_id, to, now, &why))
            .await?;
        self.publish(&order.token);
        Ok(state)
    }

    /// An unpaid order's life is over.
    pub async fn expire(&self, order: &OrderRow) -> Result<(), CheckoutError> {
        self.end(order, OrderState::Expired, "unpaid at the end of its life")
            .await?;
        Ok(())
    }

    /// The cashier cancels an open order.
    pub async fn cancel(&self, token: &OrderToken, by: &str) -> Result<(), CheckoutError> {
        let t = token.clone();
        let order = self
            .store()
            .read(move |c| orders::order_by_token(c, &t))
            .await?
            .ok_or(CheckoutError::NotFound)?;
        if order.state != OrderState::Open {
            return Err(CheckoutError::Ended(order.state));
        }
        match self
            .end(&order, OrderState::Cancelled, &format!("cancelled by {by}"))
            .await?
        {
            OrderState::Cancelled => Ok(()),
            other => Err(CheckoutError::Ended(other)),
        }
    }
}
