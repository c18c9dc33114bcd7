//! Property test: any interleaving of payments, notifications, polls,
//! refreshes, closes, cancels and expiries accounts for the money exactly once.

use crate::store::qrs;
use std::time::Duration;

use proptest::prelude::*;

use super::apply::{ApplyOutcome, Evidence, apply_payment};
use super::gateway::PaymentFacts;
use super::transitions::{end_order, insert_planned, plan_qr, replace_current_qr};
use crate::store::orders::{self, NewOrder};
use crate::store::{Store, payments};
use crate::values::clock::Millis;
use crate::values::money::Fen;
use crate::values::order::{OrderId, OrderState, OrderToken, PaymentSource, QrId, QrState};
use crate::values::trade::{OutTradeNo, TransactionId};

const AMOUNT: Fen = Fen::new(1250);
const TTL: Duration = Duration::from_secs(300);
const LIFE: Duration = Duration::from_secs(1800);

#[derive(Debug, Clone)]
enum Op {
    /// The QR's screen life ends: a new QR replaces the current one.
    Refresh,
    /// The customer pays the gateway order of QR `i` (if still payable there).
    Pay(usize),
    /// Notification or poll result `j` reaches the app (again, perhaps).
    Deliver(usize, bool),
    /// The close queue reaches QR `i`.
    Close(usize),
    Cancel,
    Expire,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Refresh),
        3 => (0..6usize).prop_map(Op::Pay),
        4 => (0..6usize, any::<bool>()).prop_map(|(j, n)| Op::Deliver(j, n)),
        2 => (0..6usize).prop_map(Op::Close),
        1 => Just(Op::Cancel),
        1 => Just(Op::Expire),
    ]
}

#[derive(Debug, Clone, PartialEq)]
enum Gateway {
    NotPay,
    Paid,
    Closed,
}

struct World {
    store: Store,
    _dir: tempfile::TempDir,
    order_id: OrderId,
    /// The gateway's view of each QR, by our QR id.
    gateway: Vec<(QrId, OutTradeNo, Gateway)>,
    /// What the gateway reports for each payment made.
    evidence: Vec<Evidence>,
    now: Millis,
}

impl World {
    fn new() -> World {
        // tmpfs when there is one: this test commits thousands of transactions.
        let dir = tempfile::tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .unwrap();
        let store = Store::open(dir.path()).unwrap();
        let now = Millis(1_700_000_000_000);
        let token = OrderToken::parse("0123456789abcdef0123456789abcdef").unwrap();
        let (order_id, qr) = store
            .write_blocking(|tx| {
                let (id, no) = orders::insert_order(
                    tx,
                    &NewOrder {
                        token: &token,
                        amount: AMOUNT,
                        description: "",
                        cashier_id: None,
                        now,
                        expires_at: now.plus(LIFE),
                        day: "20231114",
                    },
                )?;
                let qr = insert_planned(
                    tx,
                    id,
                    1,
                    &plan_qr(TTL, &no, 1, now.plus(LIFE), "127.0.0.1", now),
                    now,
                )?;
                qrs::set_qr_open(tx, qr.id, Some("prepay"), "weixin://1", now)?;
                Ok((id, qr))
            })
            .unwrap();
        World {
            store,
            _dir: dir,
            order_id,
            gateway: vec![(qr.id, qr.out_trade_no, Gateway::NotPay)],
            evidence: Vec::new(),
            now,
        }
    }

    fn deliver(&self, ev: &Evidence) -> ApplyOutcome {
        self.store
            .write_blocking(|tx| apply_payment(tx, ev, self.now))
            .unwrap()
    }

    fn qr_state(&self, qr_id: QrId) -> QrState {
        self.store
            .read_blocking(|c| qrs::qr_by_id(c, qr_id))
            .unwrap()
            .state
    }

    fn run(&mut self, op: &Op) {
        self.now = self.now.plus(Duration::from_secs(1));
        let now = self.now;
        let order_id = self.order_id;
        match op {
            Op::Refresh => {
                let order = self
                    .store
                    .read_blocking(|c| orders::order_by_id(c, order_id))
                    .unwrap();
                let Some(current) = order.current_qr_id else {
                    return;
                };
                let replaced = self
                    .store
                    .write_blocking(|tx| {
                        let r = replace_current_qr(tx, TTL, order_id, current, now, "refresh")?;
                        if let Some((_, qr)) = &r {
                            qrs::set_qr_open(tx, qr.id, Some("prepay"), "weixin://n", now)?;
                        }
                        Ok(r)
                    })
                    .unwrap();
                if let Some((_, qr)) = replaced {
                    self.gateway.push((qr.id, qr.out_trade_no, Gateway::NotPay));
                }
            }
            Op::Pay(i) => {
                let i = i % self.gateway.len();
                let (_, no, state) = &mut self.gateway[i];
                if *state == Gateway::NotPay {
                    *state = Gateway::Paid;
                    self.evidence.push(Evidence {
                        out_trade_no: no.clone(),
                        payment: PaymentFacts {
                            transaction_id: TransactionId::new(format!("42000000{i:020}")).unwrap(),
                            amount: AMOUNT,
                            payer: None,
                            paid_at: None,
                        },
                        source: PaymentSource::Notify,
                    });
                }
            }
            Op::Deliver(j, by_notify) => {
                if self.evidence.is_empty() {
                    return;
                }
                let mut ev = self.evidence[j % self.evidence.len()].clone();
                ev.source = if *by_notify {
                    PaymentSource::Notify
                } else {
                    PaymentSource::Poll
                };
                self.deliver(&ev);
            }
            Op::Close(i) => {
                let i = i % self.gateway.len();
                let (qr_id, no, gw) = self.gateway[i].clone();
                if self.qr_state(qr_id) != QrState::Closing {
                    return;
                }
                match gw {
                    Gateway::NotPay | Gateway::Closed => {
                        self.gateway[i].2 = Gateway::Closed;
                        self.store
                            .write_blocking(|tx| qrs::set_qr_closed(tx, qr_id))
                            .unwrap();
                    }
                    Gateway::Paid => {
                        // ORDERPAID: a payment, never a failure.
                        let mut ev = self
                            .evidence
                            .iter()
                            .find(|e| e.out_trade_no == no)
                            .unwrap()
                            .clone();
                        ev.source = PaymentSource::Close;
                        self.deliver(&ev);
                    }
                }
            }
            Op::Cancel | Op::Expire => {
                let to = if matches!(op, Op::Cancel) {
                    OrderState::Cancelled
                } else {
                    OrderState::Expired
                };
                self.store
                    .write_blocking(|tx| end_order(tx, order_id, to, now, "test"))
                    .unwrap();
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn money_is_accounted_for_exactly_once(ops in prop::collection::vec(op(), 1..40)) {
        let mut w = World::new();
        for op in &ops {
            w.run(op);
        }
        // The poller eventually asks about every QR: each payment reaches us at least once more.
        for ev in w.evidence.clone() {
            w.deliver(&Evidence { source: PaymentSource::Poll, ..ev });
        }
        let paid_at_gateway = w.gateway.iter().filter(|g| g.2 == Gateway::Paid).count();
        prop_assert_eq!(paid_at_gateway, w.evidence.len());
        let order_id = w.order_id;
        let (order, recorded) = w
            .store
            .read_blocking(|c| Ok((orders::order_by_id(c, order_id)?, payments::payments_of(c, order_id)?)))
            .unwrap();
        prop_assert_eq!(recorded.len(), paid_at_gateway, "each payment recorded once");
        let sum: i64 = recorded.iter().map(|p| p.amount.get()).sum();
        prop_assert_eq!(sum, AMOUNT.get() * paid_at_gateway as i64);
        prop_assert_eq!(order.state == OrderState::Paid, paid_at_gateway >= 1);
        prop_assert_eq!(order.double_paid, paid_at_gateway >= 2);
        prop_assert_eq!(recorded.iter().filter(|p| p.double_paid).count(), paid_at_gateway.saturating_sub(1));
        for p in &recorded {
            prop_assert_eq!(w.qr_state(p.qr_id), QrState::Paid);
        }
        if paid_at_gateway >= 1 {
            prop_assert!(order.transaction_id.is_some() && order.paid_at.is_some());
        }
        // Nothing the customer could still pay is left open once the order ended.
        if order.state != OrderState::Open {
            for (qr_id, _, _) in &w.gateway {
                prop_assert_ne!(w.qr_state(*qr_id), QrState::Open);
            }
        }
    }
}
