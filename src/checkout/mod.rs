//! The domain: orders, their QRs, and every state change, each in one SQLite
//! transaction. No web framework and no payment protocol here: the gateway is
//! reached through the [`gateway::Gateway`] seam, in the shop's terms.
//!
//! One file per flow: `create` (order → QR), `sync` (poll, close, refresh),
//! `lifecycle` (expire, cancel), `notify` (the gateway's notifications),
//! `view` (what pages and the poller read). `apply` is the one place an order
//! becomes paid; `transitions` are the state changes that need no gateway.
//! `refund` and `reconcile` follow the money back and against the bill;
//! `accounts` holds staff and sessions.
//!
//! Imported by `web`, `jobs` and `app` (and `gateway`, for the port's types);
//! it imports only `store`, `values` and `base`.

pub mod accounts;
pub mod apply;
pub mod counter;
pub mod gateway;
pub mod hub;
pub mod reconcile;
pub mod refund;
pub mod transitions;

mod create;
mod lifecycle;
mod logs;
mod notify;
mod sync;
mod view;

#[cfg(test)]
mod interleavings;

use std::sync::Arc;
use std::time::Duration;

use crate::store::{ReadStore, Store, StoreError};
use crate::values::clock::{Clock, Millis};
use crate::values::money::Fen;
use crate::values::order::{OrderState, OrderToken, UserId};
pub use apply::{ApplyOutcome, Evidence, apply_payment};
pub use gateway::Gateway;
pub use hub::Hub;
pub use sync::PollSchedule;
pub use view::{DueWork, OrderView};

/// A QR left `creating` this long was interrupted (crash, lost answer): send it again.
pub const STALE_CREATION: Duration = Duration::from_secs(15);

/// The domain's settings (built from `Settings` at start-up).
#[derive(Debug, Clone)]
pub struct CheckoutConfig {
    /// How long one QR stays on screen before it is replaced.
    pub qr_ttl: Duration,
    /// How long an unpaid order stays open.
    pub order_ttl: Duration,
    /// The shop's name, the first part of what the customer sees in WeChat.
    pub shop_name: String,
    /// The shop's time zone: the day in an order number is the shop's day.
    pub shop_tz: jiff::tz::TimeZone,
    /// Poll interval while a QR is young, and for how long it counts as young.
    pub poll_fast: Duration,
    pub poll_fast_period: Duration,
    /// Poll interval afterwards.
    pub poll_slow: Duration,
    /// The longest wait between two attempts after gateway errors.
    pub max_backoff: Duration,
    pub cashier_limits: CashierLimits,
    /// When (Beijing time) the previous day's bill is fetched and reconciled.
    pub bill_fetch_at: jiff::civil::Time,
    pub retention: RetentionPolicy,
}

/// What one cashier may have going at once (settings `checkout.max_*`; 0: no limit).
#[derive(Debug, Clone, Copy, Default)]
pub struct CashierLimits {
    pub open_orders: u32,
    pub per_minute: u32,
}

/// Which of the cashier's limits an order would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CashierLimit {
    OpenOrders(u32),
    PerMinute(u32),
}

/// How much of the notification log is kept (settings `retention.*`).
#[derive(Debug, Clone)]
pub struct RetentionPolicy {
    /// How long a verified notification is kept.
    pub verified_for: Duration,
    /// How many refused notifications are kept (the newest).
    pub refused_kept: u64,
    /// Refused notifications stored per source and minute; the rest only counted.
    pub refused_per_source_per_minute: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no such order")]
    NotFound,
    #[error("the order is already {0}")]
    Ended(OrderState),
    #[error("the order's QR code is not in a state that can be retried")]
    NothingToRetry,
    #[error("the cashier's limit is reached: {0:?}")]
    CashierLimit(CashierLimit),
    #[error("not a day that can be reconciled: {0}")]
    BadDay(String),
}

pub struct NewOrderInput {
    pub amount: Fen,
    pub description: String,
    pub cashier_id: Option<UserId>,
    pub client_ip: String,
}

#[derive(Clone)]
pub struct Checkout {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    gateway: Arc<dyn Gateway>,
    hub: Hub,
    cfg: CheckoutConfig,
    clock: Clock,
    refusals: logs::RefusalLog,
    creations: create::RecentCreations,
    /// When the poller next asks whether a day's bill is due (ms).
    next_bill_check: std::sync::atomic::AtomicI64,
}

impl Checkout {
    pub fn new(store: Store, gateway: Arc<dyn Gateway>, hub: Hub, cfg: CheckoutConfig) -> Self {
        Self::with_clock(store, gateway, hub, cfg, Clock::system())
    }

    /// As `new`, on a given clock (tests move a manual one).
    pub fn with_clock(
        store: Store,
        gateway: Arc<dyn Gateway>,
        hub: Hub,
        cfg: CheckoutConfig,
        clock: Clock,
    ) -> Self {
        Checkout {
            inner: Arc::new(Inner {
                store,
                gateway,
                hub,
                cfg,
                clock,
                refusals: logs::RefusalLog::default(),
                creations: create::RecentCreations::default(),
                next_bill_check: std::sync::atomic::AtomicI64::new(0),
            }),
        }
    }

    /// The time the domain acts on.
    pub fn now(&self) -> Millis {
        self.inner.clock.now()
    }

    /// The clock the domain acts on (moved by hand in tests).
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Pages that follow an order subscribe here (before they read it, so no change is missed).
    pub fn subscribe(&self, token: &OrderToken) -> hub::Subscription {
        self.inner.hub.subscribe(token.as_str())
    }

    /// A read-only handle for the admin's reports and the metrics (a read model:
    /// `store::reports` and `store::metrics` run there, and nothing can write).
    pub fn read_model(&self) -> ReadStore {
        self.inner.store.read_only()
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }

    fn gateway(&self) -> &dyn Gateway {
        self.inner.gateway.as_ref()
    }

    fn cfg(&self) -> &CheckoutConfig {
        &self.inner.cfg
    }

    fn publish(&self, token: &OrderToken) {
        self.inner.hub.publish(token.as_str());
    }
}
