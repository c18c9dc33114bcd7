//! The simulated gateway's order book and its state machine:
//! NOTPAY → SUCCESS (paid by the phone) or NOTPAY → CLOSED (closeorder).

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;
use rand::Rng;
use rand::distr::{Alphanumeric, SampleString};

use crate::values::money::Fen;
use crate::wxpay::v2::refund::{RefundInfo, RefundStatusV2};
use crate::wxpay::v2::{ErrCode, OutTradeNo, SignType};

/// A `code_url` stays scannable at most this long (and never past `time_expire`).
const CODE_URL_LIFE: Duration = Duration::from_secs(2 * 3600);

/// A validated `unifiedorder` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub out_trade_no: OutTradeNo,
    pub body: String,
    pub attach: Option<String>,
    pub total_fee: Fen,
    pub notify_url: String,
    pub product_id: String,
    pub spbill_create_ip: String,
    pub time_expire: Option<Timestamp>,
    pub sign_type: SignType,
    /// Set for an order placed through API v3 (`sim::v3`).
    pub v3: Option<V3Terms>,
}

/// What an API v3 order adds: its request as sent (a re-order must repeat it
/// exactly) and the key WeChat Pay signs this merchant's answers and
/// notifications with (the serial the merchant asked for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V3Terms {
    pub appid: String,
    pub mchid: String,
    pub request: serde_json::Value,
    pub sign_serial: String,
}

impl NewOrder {
    /// The parameters that must match when an out_trade_no is submitted again.
    fn same_order_as(&self, other: &NewOrder) -> bool {
        self.body == other.body
            && self.total_fee == other.total_fee
            && self.notify_url == other.notify_url
            && self.product_id == other.product_id
            && self.time_expire == other.time_expire
            && self.attach == other.attach
            && self.v3.as_ref().map(|v| &v.request) == other.v3.as_ref().map(|v| &v.request)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub transaction_id: String,
    pub openid: String,
    pub time_end: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimTradeState {
    NotPay,
    Paid(Payment),
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOrder {
    pub req: NewOrder,
    pub prepay_id: String,
    pub code_url: String,
    pub created_at: Timestamp,
    /// When the current `code_url` was issued (a v3 re-order issues a new one).
    pub code_issued_at: Timestamp,
    pub state: SimTradeState,
    /// Deliveries of the payment notification tried, and whether one was acknowledged.
    pub notify_attempts: u32,
    pub notify_acked: bool,
}

impl SimOrder {
    /// The last moment the QR can be paid.
    pub fn payable_until(&self) -> Timestamp {
        let cap = self
            .code_issued_at
            .checked_add(CODE_URL_LIFE)
            .unwrap_or(self.code_issued_at);
        match self.req.time_expire {
            Some(t) if t < cap => t,
            _ => cap,
        }
    }

    pub fn is_payable(&self, now: Timestamp) -> bool {
        self.state == SimTradeState::NotPay && now < self.payable_until()
    }
}

/// A refusal with the gateway's error code and description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrCode,
    pub description: String,
}

fn refuse(code: ErrCode, description: &str) -> Refusal {
    Refusal {
        code,
        description: description.to_string(),
    }
}

/// Why the phone cannot pay a code_url.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PayRefusal {
    #[error("this QR code is not known to WeChat Pay")]
    Unknown,
    #[error("this order has already been paid")]
    AlreadyPaid,
    #[error("this order has been closed by the merchant")]
    Closed,
    #[error("this QR code has expired")]
    Expired,
}

fn new_code_url() -> String {
    format!(
        "weixin://wxpay/bizpayurl?pr={}",
        Alphanumeric.sample_string(&mut rand::rng(), 10)
    )
}

#[derive(Debug, Default)]
pub struct Ledger {
    orders: HashMap<String, SimOrder>,
    by_code_url: HashMap<String, String>,
    by_transaction: HashMap<String, String>,
    /// Refunds of paid orders (`sim/refunds.rs`), under the same lock.
    pub refunds: RefundBook,
}

impl Ledger {
    /// `unifiedorder`: a new order, or the same one again for identical
    /// parameters. In v3 the same parameters again issue a new `code_url`
    /// and the old one stops working.
    pub fn create(&mut self, req: NewOrder, now: Timestamp) -> Result<SimOrder, Refusal> {
        if let Some(existing) = self.orders.get_mut(req.out_trade_no.as_str()) {
            return match existing.state {
                SimTradeState::Paid(_) => Err(refuse(ErrCode::OrderPaid, "该订单已支付")),
                SimTradeState::Closed => Err(refuse(ErrCode::OrderClosed, "该订单已关")),
                SimTradeState::NotPay if existing.req.same_order_as(&req) => {
                    if req.v3.is_some() {
                        let old = std::mem::replace(&mut existing.code_url, new_code_url());
                        existing.code_issued_at = now;
                        let reissued = existing.clone();
                        self.by_code_url.remove(&old);
                        self.by_code_url.insert(
                            reissued.code_url.clone(),
                            reissued.req.out_trade_no.to_string(),
                        );
                        Ok(reissued)
                    } else {
                        Ok(existing.clone())
                    }
                }
                SimTradeState::NotPay => Err(refuse(ErrCode::InvalidRequest, "201 商户订单号重复")),
            };
        }
        let mut rng = rand::rng();
        let prepay_id = format!(
            "wx{}{}",
            now.strftime("%Y%m%d%H%M%S"),
            Alphanumeric
                .sample_string(&mut rng, 18)
                .to_ascii_lowercase()
        );
        let code_url = new_code_url();
        let order = SimOrder {
            req,
            prepay_id,
            code_url: code_url.clone(),
            created_at: now,
            code_issued_at: now,
            state: SimTradeState::NotPay,
            notify_attempts: 0,
            notify_acked: false,
        };
        let key = order.req.out_trade_no.as_str().to_string();
        self.by_code_url.insert(code_url, key.clone());
        self.orders.insert(key, order.clone());
        Ok(order)
    }

    /// Every order, in no particular order (the bill sorts what it lists).
    pub fn orders(&self) -> impl Iterator<Item = &SimOrder> {
        self.orders.values()
    }

    pub fn get(&self, out_trade_no: &str) -> Option<&SimOrder> {
        self.orders.get(out_trade_no)
    }

    pub fn get_by_transaction(&self, transaction_id: &str) -> Option<&SimOrder> {
        self.by_transaction
            .get(transaction_id)
            .and_then(|o| self.orders.get(o))
    }

    pub fn get_by_code_url(&self, code_url: &str) -> Option<&SimOrder> {
        self.by_code_url
            .get(code_url)
            .and_then(|o| self.orders.get(o))
    }

    /// `closeorder`: refused when paid, when already closed, or inside `min_age`.
    pub fn close(
        &mut self,
        out_trade_no: &str,
        now: Timestamp,
        min_age: Duration,
    ) -> Result<(), Refusal> {
        let order = self
            .orders
            .get_mut(out_trade_no)
            .ok_or_else(|| refuse(ErrCode::OrderNotExist, "此交易订单号不存在"))?;
        match order.state {
            SimTradeState::Paid(_) => Err(refuse(ErrCode::OrderPaid, "订单已支付，不能发起关单")),
            SimTradeState::Closed => Err(refuse(ErrCode::OrderClosed, "订单已关闭，无法重复关闭")),
            SimTradeState::NotPay => {
                let age = now.duration_since(order.created_at);
                if age
                    < jiff::SignedDuration::try_from(min_age).unwrap_or(jiff::SignedDuration::MAX)
                {
                    return Err(refuse(
                        ErrCode::InvalidRequest,
                        "订单生成后不能马上调用关单接口，最短调用时间间隔为5分钟",
                    ));
                }
                order.state = SimTradeState::Closed;
                Ok(())
            }
        }
    }

    /// The customer pays a `code_url`.
    pub fn pay(&mut self, code_url: &str, now: Timestamp) -> Result<SimOrder, PayRefusal> {
        let key = self
            .by_code_url
            .get(code_url)
            .ok_or(PayRefusal::Unknown)?
            .clone();
        let order = self.orders.get_mut(&key).ok_or(PayRefusal::Unknown)?;
        match order.state {
            SimTradeState::Paid(_) => return Err(PayRefusal::AlreadyPaid),
            SimTradeState::Closed => return Err(PayRefusal::Closed),
            SimTradeState::NotPay if !order.is_payable(now) => return Err(PayRefusal::Expired),
            SimTradeState::NotPay => {}
        }
        let mut rng = rand::rng();
        let transaction_id = format!(
            "42000{}{}{:010}",
            rng.random_range(10_000..100_000u32),
            now.to_zoned(crate::wxpay::v2::types::beijing())
                .strftime("%Y%m%d"),
            rng.random_range(0..10_000_000_000u64)
        );
        let openid = format!("oUpF8u{}", Alphanumeric.sample_string(&mut rng, 22));
        order.state = SimTradeState::Paid(Payment {
            transaction_id: transaction_id.clone(),
            openid,
            time_end: now,
        });
        self.by_transaction.insert(transaction_id, key);
        Ok(order.clone())
    }

    pub fn record_delivery(&mut self, out_trade_no: &str, acked: bool) {
        if let Some(o) = self.orders.get_mut(out_trade_no) {
            o.notify_attempts += 1;
            o.notify_acked |= acked;
        }
    }

    /// Orders a customer could pay now, newest first.
    pub fn payable(&self, now: Timestamp) -> Vec<SimOrder> {
        let mut v: Vec<SimOrder> = self
            .orders
            .values()
            .filter(|o| o.is_payable(now))
            .cloned()
            .collect();
        v.sort_by_key(|o| std::cmp::Reverse(o.created_at));
        v
    }

    /// The most recent paid orders, newest first.
    pub fn recently_paid(&self, limit: usize) -> Vec<SimOrder> {
        let mut v: Vec<SimOrder> = self
            .orders
            .values()
            .filter(|o| matches!(o.state, SimTradeState::Paid(_)))
            .cloned()
            .collect();
        v.sort_by_key(|o| std::cmp::Reverse(o.created_at));
        v.truncate(limit);
        v
    }
}

/// Where simulated refunds go back to: the customer's change wallet.
pub const SIM_ACCOUNT: &str = "支付用户零钱";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRefund {
    pub out_refund_no: String,
    pub out_trade_no: String,
    pub transaction_id: String,
    pub refund_id: String,
    pub refund_fee: Fen,
    pub total_fee: Fen,
    pub status: RefundStatusV2,
    pub notify_url: Option<String>,
    pub success_time: Option<Timestamp>,
    pub notify_attempts: u32,
    pub notify_acked: bool,
    /// Made through API v3: the serial its notification is signed with.
    pub v3_serial: Option<String>,
    pub created_at: Timestamp,
}

impl SimRefund {
    pub fn info(&self) -> RefundInfo {
        RefundInfo {
            out_refund_no: self.out_refund_no.clone(),
            out_trade_no: Some(self.out_trade_no.clone()),
            transaction_id: Some(self.transaction_id.clone()),
            refund_id: Some(self.refund_id.clone()),
            refund_fee: Some(self.refund_fee),
            status: self.status.clone(),
            account: Some(SIM_ACCOUNT.to_string()),
            success_time: self.success_time.map(|t| {
                t.to_zoned(crate::wxpay::v2::types::beijing())
                    .strftime("%Y-%m-%d %H:%M:%S")
                    .to_string()
            }),
        }
    }
}

/// Every refund the simulated gateway accepted, by out_refund_no.
#[derive(Debug, Default)]
pub struct RefundBook {
    refunds: HashMap<String, SimRefund>,
}

impl RefundBook {
    pub fn get(&self, out_refund_no: &str) -> Option<&SimRefund> {
        self.refunds.get(out_refund_no)
    }

    /// How many refunds the gateway holds (a test counts them).
    pub fn len(&self) -> usize {
        self.refunds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.refunds.is_empty()
    }

    /// Marks a refund as made through API v3 (its notification is v3's).
    pub fn mark_v3(&mut self, out_refund_no: &str, serial: &str) {
        if let Some(r) = self.refunds.get_mut(out_refund_no) {
            r.v3_serial = Some(serial.to_string());
        }
    }

    /// Counts one delivery of a refund's notification.
    pub fn record_delivery(&mut self, out_refund_no: &str, acked: bool) {
        if let Some(r) = self.refunds.get_mut(out_refund_no) {
            r.notify_attempts += 1;
            r.notify_acked |= acked;
        }
    }

    /// Records a refund the gateway just accepted.
    pub fn insert(&mut self, refund: SimRefund) {
        self.refunds.insert(refund.out_refund_no.clone(), refund);
    }

    pub fn get_mut(&mut self, out_refund_no: &str) -> Option<&mut SimRefund> {
        self.refunds.get_mut(out_refund_no)
    }

    /// Every refund, in no particular order (the bill sorts what it lists).
    pub fn all(&self) -> impl Iterator<Item = &SimRefund> {
        self.refunds.values()
    }

    pub fn of_trade(&self, out_trade_no: &str) -> impl Iterator<Item = &SimRefund> {
        self.refunds
            .values()
            .filter(move |r| r.out_trade_no == out_trade_no)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(no: &str, fee: i64) -> NewOrder {
        NewOrder {
            out_trade_no: OutTradeNo::new(no).unwrap(),
            body: "coffee".into(),
            attach: None,
            total_fee: Fen::new(fee),
            notify_url: "http://127.0.0.1/wxpay/notify".into(),
            product_id: "p".into(),
            spbill_create_ip: "127.0.0.1".into(),
            time_expire: None,
            sign_type: SignType::Md5,
            v3: None,
        }
    }

    #[test]
    fn state_machine() {
        let now = Timestamp::now();
        let mut l = Ledger::default();
        let a = l.create(order("A", 100), now).unwrap();
        let again = l.create(order("A", 100), now).unwrap();
        assert_eq!(a.code_url, again.code_url, "same parameters, same order");
        assert_eq!(
            l.create(order("A", 101), now).unwrap_err().code,
            ErrCode::InvalidRequest
        );
        let paid = l.pay(&a.code_url, now).unwrap();
        assert!(matches!(paid.state, SimTradeState::Paid(_)));
        assert_eq!(l.pay(&a.code_url, now), Err(PayRefusal::AlreadyPaid));
        assert_eq!(
            l.create(order("A", 100), now).unwrap_err().code,
            ErrCode::OrderPaid
        );
        assert_eq!(
            l.close("A", now, Duration::ZERO).unwrap_err().code,
            ErrCode::OrderPaid
        );

        let b = l.create(order("B", 100), now).unwrap();
        assert_eq!(
            l.close("B", now, Duration::from_secs(300))
                .unwrap_err()
                .code,
            ErrCode::InvalidRequest,
            "too early to close"
        );
        l.close("B", now, Duration::ZERO).unwrap();
        assert_eq!(l.pay(&b.code_url, now), Err(PayRefusal::Closed));
        assert_eq!(
            l.close("B", now, Duration::ZERO).unwrap_err().code,
            ErrCode::OrderClosed
        );
        assert_eq!(
            l.create(order("B", 100), now).unwrap_err().code,
            ErrCode::OrderClosed
        );
        assert_eq!(
            l.close("C", now, Duration::ZERO).unwrap_err().code,
            ErrCode::OrderNotExist
        );
        assert_eq!(l.pay("weixin://nothing", now), Err(PayRefusal::Unknown));
    }

    #[test]
    fn a_v3_reorder_with_identical_parameters_kills_the_old_code() {
        let now = Timestamp::now();
        let mut l = Ledger::default();
        let v3 = |total: i64| {
            let mut o = order("V3A", total);
            o.v3 = Some(V3Terms {
                appid: "wx".into(),
                mchid: "1".into(),
                request: serde_json::json!({"out_trade_no": "V3A", "amount": {"total": total}}),
                sign_serial: "PUB_KEY_ID_X".into(),
            });
            o
        };
        let first = l.create(v3(100), now).unwrap();
        let later = now + jiff::SignedDuration::from_secs(60);
        let second = l.create(v3(100), later).unwrap();
        assert_ne!(first.code_url, second.code_url, "a fresh code_url");
        assert_eq!(second.code_issued_at, later);
        assert_eq!(
            l.pay(&first.code_url, later),
            Err(PayRefusal::Unknown),
            "the old one is dead"
        );
        assert_eq!(
            l.create(v3(101), later).unwrap_err().code,
            ErrCode::InvalidRequest,
            "changed parameters are refused"
        );
        assert!(l.pay(&second.code_url, later).is_ok());
    }

    #[test]
    fn expired_orders_cannot_be_paid() {
        let now = Timestamp::now();
        let mut l = Ledger::default();
        let mut req = order("E", 1);
        req.time_expire = Some(now + jiff::SignedDuration::from_secs(1));
        let e = l.create(req, now).unwrap();
        assert_eq!(l.payable(now).len(), 1);
        let later = now + jiff::SignedDuration::from_secs(2);
        assert!(l.payable(later).is_empty());
        assert_eq!(l.pay(&e.code_url, later), Err(PayRefusal::Expired));
        let much_later = now + jiff::SignedDuration::from_secs(3 * 3600);
        let f = l.create(order("F", 1), now).unwrap();
        assert_eq!(
            l.pay(&f.code_url, much_later),
            Err(PayRefusal::Expired),
            "2 h cap"
        );
    }
}
