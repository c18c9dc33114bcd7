//! Order → QR: record the order and its first QR, then ask the gateway for a
//! payable code; the cashier's retry after a failed QR; resuming a creation a
//! crash interrupted.

use crate::store::{events, qrs};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use super::gateway::{CodeRequest, MAX_DESCRIPTION_BYTES};
use super::transitions::{insert_planned, plan_qr, replace_current_qr};
use super::{CashierLimit, Checkout, CheckoutError, NewOrderInput};
use crate::base::lock::LockExt;
use crate::store::orders::{self, NewOrder, OrderRow};
use crate::store::qrs::QrRow;
use crate::values::clock::Millis;
use crate::values::order::{OrderState, OrderToken, QrState, UserId};

/// How often one code request is sent again (same parameters) on an unknown outcome.
const ISSUE_ATTEMPTS: u32 = 4;

/// What the customer sees in WeChat: "shop-description", cut on a character boundary.
fn gateway_description(shop: &str, description: &str) -> String {
    let mut s = if description.is_empty() {
        shop.to_string()
    } else {
        format!("{shop}-{description}")
    };
    s.truncate(s.floor_char_boundary(MAX_DESCRIPTION_BYTES));
    s
}

/// When each cashier created their orders of the last minute. In memory: a
/// rate needs no history across restarts, and the open-order cap is counted
/// in the database.
#[derive(Default)]
pub(super) struct RecentCreations(Mutex<HashMap<UserId, VecDeque<Millis>>>);

const RATE_WINDOW: Duration = Duration::from_secs(60);

impl RecentCreations {
    /// Counts one creation now, unless `limit` were passed in the last minute.
    fn admit(&self, cashier: UserId, now: Millis, limit: u32) -> bool {
        if limit == 0 {
            return true;
        }
        let mut all = self.0.lock_or_recover();
        let since = now.minus(RATE_WINDOW);
        all.retain(|_, times| {
            while times.front().is_some_and(|t| *t <= since) {
                times.pop_front();
            }
            !times.is_empty()
        });
        let times = all.entry(cashier).or_default();
        if times.len() >= limit as usize {
            return false;
        }
        times.push_back(now);
        true
    }
}

impl Checkout {
    /// Records the order and its first QR, then asks the gateway for the QR.
    /// A gateway failure leaves the order recorded with a failed QR (shown with a retry).
    #[tracing::instrument(skip_all, fields(amount = %input.amount, order_no = tracing::field::Empty))]
    pub async fn create_order(&self, input: NewOrderInput) -> Result<OrderToken, CheckoutError> {
        let token = OrderToken::generate();
        let now = self.now();
        let cfg = self.cfg();
        let expires_at = now.plus(cfg.order_ttl);
        let day = now
            .to_timestamp()
            .to_zoned(cfg.shop_tz.clone())
            .strftime("%Y%m%d")
            .to_string();
        let qr_ttl = cfg.qr_ttl;
        let limits = cfg.cashier_limits;
        if let Some(cashier) = input.cashier_id
            && !self.inner.creations.admit(cashier, now, limits.per_minute)
        {
            return Err(CheckoutError::CashierLimit(CashierLimit::PerMinute(
                limits.per_minute,
            )));
        }
        let tok = token.clone();
        let (order, qr) = self
            .store()
            .write(move |tx| {
                if let Some(cashier) = input.cashier_id
                    && limits.open_orders > 0
                    && orders::open_orders_of(tx, cashier, limits.open_orders)?
                        >= u64::from(limits.open_orders)
                {
                    let limit = CashierLimit::OpenOrders(limits.open_orders);
                    return Ok(Err(CheckoutError::CashierLimit(limit)));
                }
                let (order_id, order_no) = orders::insert_order(
                    tx,
                    &NewOrder {
                        token: &tok,
                        amount: input.amount,
                        description: &input.description,
                        cashier_id: input.cashier_id,
                        now,
                        expires_at,
                        day: &day,
                    },
                )?;
                let plan = plan_qr(qr_ttl, &order_no, 1, expires_at, &input.client_ip, now);
                let qr = insert_planned(tx, order_id, 1, &plan, now)?;
                let created = format!("{} {}", input.amount, input.description);
                events::add_event(tx, order_id, now, "created", &created)?;
                let issued = format!("QR 1: {}", plan.out_trade_no);
                events::add_event(tx, order_id, now, "qr_issued", &issued)?;
                Ok(Ok((orders::order_by_id(tx, order_id)?, qr)))
            })
            .await??;
        tracing::Span::current().record("order_no", order.order_no.as_str());
        // The cashier's display shows the new order at once ("preparing"), then its QR.
        self.publish_cashier(order.cashier_id);
        self.issue(&order, &qr).await?;
        Ok(token)
    }

    /// Sends a QR's code request (again, with the same parameters, on an unknown
    /// outcome) and records the answer.
    #[tracing::instrument(skip_all, fields(out_trade_no = %qr.out_trade_no))]
    pub(super) async fn issue(&self, order: &OrderRow, qr: &QrRow) -> Result<(), CheckoutError> {
        let cfg = self.cfg();
        let req = CodeRequest {
            out_trade_no: qr.out_trade_no.clone(),
            description: gateway_description(&cfg.shop_name, &order.description),
            amount: order.amount,
            client_ip: qr.client_ip.clone(),
            time_start: qr.time_start.to_timestamp(),
            time_expire: qr.time_expire.to_timestamp(),
            order_no: order.order_no.clone(),
        };
        let mut attempt = 1;
        let result = loop {
            match self.gateway().create_code(&req).await {
                Err(e) if e.is_retryable() && attempt < ISSUE_ATTEMPTS => {
                    tracing::warn!(attempt, error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), "code request failed; sending it again");
                    let pause = Duration::from_millis(200 * u64::from(attempt));
                    self.inner.clock.pause(pause).await;
                    attempt += 1;
                }
                other => break other,
            }
        };
        let now = self.now();
        let (qr_id, order_id, version) = (qr.id, order.id, qr.version);
        let next_poll = now.plus(cfg.poll_fast);
        match result {
            Ok(code) => {
                self.store()
                    .write(move |tx| {
                        if qrs::set_qr_open(
                            tx,
                            qr_id,
                            code.prepay_id.as_deref(),
                            &code.code_url,
                            next_poll,
                        )? {
                            let ready = format!("QR {version} ready");
                            events::add_event(tx, order_id, now, "qr_ready", &ready)?;
                        }
                        Ok(())
                    })
                    .await?;
            }
            Err(e) => {
                tracing::warn!(error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), "code request failed");
                let reason = e.to_string();
                self.store()
                    .write(move |tx| {
                        if qrs::set_qr_failed(tx, qr_id, &reason)? {
                            events::add_event(tx, order_id, now, "qr_failed", &reason)?;
                        }
                        Ok(())
                    })
                    .await?;
            }
        }
        self.publish(&order.token);
        Ok(())
    }

    /// The cashier's retry after a failed QR: a new QR (new out_trade_no).
    pub async fn retry(&self, token: &OrderToken) -> Result<(), CheckoutError> {
        let token = token.clone();
        let qr_ttl = self.cfg().qr_ttl;
        let now = self.now();
        let (order, qr) = self
            .store()
            .write(move |tx| {
                let Some(order) = orders::order_by_token(tx, &token)? else {
                    return Ok(Err(CheckoutError::NotFound));
                };
                if order.state != OrderState::Open {
                    return Ok(Err(CheckoutError::Ended(order.state)));
                }
                let Some(current) = order
                    .current_qr_id
                    .map(|id| qrs::qr_by_id(tx, id))
                    .transpose()?
                else {
                    return Ok(Err(CheckoutError::NothingToRetry));
                };
                if current.state != QrState::Failed {
                    return Ok(Err(CheckoutError::NothingToRetry));
                }
                match replace_current_qr(tx, qr_ttl, order.id, current.id, now, "retry")? {
                    Some(planned) => Ok(Ok(planned)),
                    None => Ok(Err(CheckoutError::NothingToRetry)),
                }
            })
            .await??;
        self.issue(&order, &qr).await
    }

    /// Sends again a QR whose creation was interrupted (crash, lost answer).
    pub async fn resume_creation(&self, qr: &QrRow) -> Result<(), CheckoutError> {
        let order_id = qr.order_id;
        let order = self
            .store()
            .read(move |c| orders::order_by_id(c, order_id))
            .await?;
        self.issue(&order, qr).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_description_is_cut_on_a_character_boundary() {
        assert_eq!(gateway_description("Shop", ""), "Shop");
        assert_eq!(gateway_description("Shop", "tea"), "Shop-tea");
        let long = gateway_description("店", &"茶".repeat(100));
        assert!(long.len() <= MAX_DESCRIPTION_BYTES);
        assert!(long.starts_with("店-茶"));
    }
}
