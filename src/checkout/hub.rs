//! In-process publish/subscribe of order changes, published after each commit,
//! so open pages learn of a payment the moment it is recorded.
//!
//! Subscriptions are per order: a publish wakes only the streams of that
//! order's token, so its cost does not grow with the pages open on other
//! orders. Each watched token has one `watch` channel carrying a change
//! counter; it is made by the first subscriber and removed with the last.
//!
//! Beside the per-order feeds there is one feed per cashier (the counter: a
//! new order of theirs, a display paired or revoked), so a customer display
//! learns of the order the moment it is created without watching any other.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::base::lock::LockExt;
use crate::values::order::UserId;

/// Called with the token on every publish, before subscribers are woken.
type Listener = Arc<dyn Fn(&str) + Send + Sync>;

/// Key (an order's token, a cashier) → its change counter, for keys someone watches.
type Registry<K = Box<str>> = Mutex<HashMap<K, watch::Sender<u64>>>;

#[derive(Clone)]
pub struct Hub {
    watched: Arc<Registry>,
    cashiers: Arc<Registry<UserId>>,
    listeners: Vec<Listener>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new()
    }
}

fn lock<K>(r: &Registry<K>) -> MutexGuard<'_, HashMap<K, watch::Sender<u64>>> {
    // Nothing that runs under this lock can leave the map half-updated.
    r.lock_or_recover()
}

impl Hub {
    pub fn new() -> Self {
        Hub {
            watched: Arc::default(),
            cashiers: Arc::default(),
            listeners: Vec::new(),
        }
    }

    /// Adds a synchronous listener (at start-up, before the hub is shared):
    /// what caches an order's state forgets it here, so no stale copy outlives
    /// the publish. Listeners hear every publish, watched or not.
    pub fn on_publish(mut self, f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.listeners.push(Arc::new(f));
        self
    }

    /// Tells every listener, and the subscribers of this token only, that the
    /// order with this token changed.
    pub fn publish(&self, token: impl AsRef<str>) {
        let token = token.as_ref();
        for l in &self.listeners {
            l(token);
        }
        // Not watched is fine: nobody is looking.
        if let Some(tx) = lock(&self.watched).get(token) {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Watches one order. Subscribe *before* reading the order: every publish
    /// after this call wakes [`Subscription::changed`], so a change between
    /// the read and the wait is not missed.
    pub fn subscribe(&self, token: impl AsRef<str>) -> Subscription {
        subscribe(&self.watched, Box::from(token.as_ref()))
    }

    /// Tells the subscribers of this cashier's feed that their counter changed
    /// (a new order, a display paired or revoked). No listeners: no order changed.
    pub fn publish_cashier(&self, cashier: UserId) {
        if let Some(tx) = lock(&self.cashiers).get(&cashier) {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Watches one cashier's feed; as with [`Hub::subscribe`], before reading.
    pub fn subscribe_cashier(&self, cashier: UserId) -> Subscription<UserId> {
        subscribe(&self.cashiers, cashier)
    }

    /// How many distinct orders have at least one subscriber.
    pub fn watched_orders(&self) -> usize {
        lock(&self.watched).len()
    }
}

fn subscribe<K: Eq + Hash + Clone>(registry: &Arc<Registry<K>>, key: K) -> Subscription<K> {
    let mut map = lock(registry);
    let rx = match map.get(&key) {
        Some(tx) => tx.subscribe(),
        None => {
            let (tx, rx) = watch::channel(0);
            map.insert(key.clone(), tx);
            rx
        }
    };
    Subscription {
        rx,
        token: key,
        watched: registry.clone(),
    }
}

/// One stream's interest in one order (or one cashier's feed); dropping it
/// unsubscribes (and frees the entry when it was the last).
pub struct Subscription<K: Eq + Hash = Box<str>> {
    rx: watch::Receiver<u64>,
    token: K,
    watched: Arc<Registry<K>>,
}

impl<K: Eq + Hash> Subscription<K> {
    /// Waits until the order is published after the subscription was made or
    /// after the previous `changed` returned. Several publishes in between
    /// wake it once: the caller re-reads the state anyway.
    pub async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            // The sender stays in the registry while this receiver exists
            // (see `Drop`), so this cannot happen; never wake rather than spin.
            std::future::pending::<()>().await;
        }
    }
}

impl<K: Eq + Hash> Drop for Subscription<K> {
    fn drop(&mut self) {
        let mut map = lock(&self.watched);
        // Counted under the lock that `subscribe` takes, so no subscriber can
        // join between the count and the removal; 1 is this receiver.
        if map
            .get(&self.token)
            .is_some_and(|tx| tx.receiver_count() <= 1)
        {
            map.remove(&self.token);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Whether `changed` is ready now (without waiting).
    async fn woken<K: Eq + std::hash::Hash>(s: &mut Subscription<K>) -> bool {
        tokio::time::timeout(Duration::from_millis(1), s.changed())
            .await
            .is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn a_publish_wakes_only_the_subscribers_of_its_token() {
        let hub = Hub::new();
        let mut a1 = hub.subscribe("a");
        let mut a2 = hub.subscribe("a");
        let mut b = hub.subscribe("b");
        hub.publish("a");
        assert!(woken(&mut a1).await);
        assert!(woken(&mut a2).await);
        assert!(!woken(&mut b).await, "b must not wake for a");
        // Consumed: no second wake without a second publish.
        assert!(!woken(&mut a1).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_publish_right_after_subscribing_is_not_missed() {
        let hub = Hub::new();
        // `&String` and `&str` both do (so will a token type with `AsRef<str>`).
        let token = String::from("t");
        let mut s = hub.subscribe(&token);
        // The stream reads the order here; a change commits meanwhile.
        hub.publish(token.as_str());
        assert!(woken(&mut s).await);
    }

    #[tokio::test(start_paused = true)]
    async fn publishes_coalesce_into_one_wake() {
        let hub = Hub::new();
        let mut s = hub.subscribe("t");
        for _ in 0..5 {
            hub.publish("t");
        }
        assert!(woken(&mut s).await);
        assert!(!woken(&mut s).await);
    }

    #[test]
    fn the_last_subscriber_leaving_frees_the_entry() {
        let hub = Hub::new();
        assert_eq!(hub.watched_orders(), 0);
        let a1 = hub.subscribe("a");
        let a2 = hub.clone().subscribe("a");
        let b = hub.subscribe("b");
        assert_eq!(hub.watched_orders(), 2);
        drop(a1);
        assert_eq!(hub.watched_orders(), 2, "a still has a subscriber");
        drop(a2);
        assert_eq!(hub.watched_orders(), 1);
        drop(b);
        assert_eq!(hub.watched_orders(), 0);
        // Publishing an unwatched token creates nothing.
        hub.publish("a");
        assert_eq!(hub.watched_orders(), 0);
        // Many streams opening and closing leave nothing behind.
        let subs: Vec<_> = (0..1000).map(|i| hub.subscribe(format!("o{i}"))).collect();
        assert_eq!(hub.watched_orders(), 1000);
        drop(subs);
        assert_eq!(hub.watched_orders(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn resubscribing_after_the_entry_was_freed_still_hears_publishes() {
        let hub = Hub::new();
        drop(hub.subscribe("t"));
        let mut s = hub.subscribe("t");
        hub.publish("t");
        assert!(woken(&mut s).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cashier_feed_wakes_only_that_cashier_and_no_order() {
        let hub = Hub::new();
        let mut one = hub.subscribe_cashier(UserId(1));
        let mut two = hub.subscribe_cashier(UserId(2));
        let mut order = hub.subscribe("1");
        hub.publish_cashier(UserId(1));
        assert!(woken(&mut one).await);
        assert!(!woken(&mut two).await);
        assert!(!woken(&mut order).await, "an order feed is not a cashier's");
        hub.publish("1");
        assert!(!woken(&mut one).await, "an order is not a cashier feed");
        drop((one, two));
        assert_eq!(
            lock(&hub.cashiers).len(),
            0,
            "freed with the last subscriber"
        );
    }

    #[test]
    fn listeners_hear_every_publish_watched_or_not() {
        let heard = Arc::new(AtomicUsize::new(0));
        let h = heard.clone();
        let hub = Hub::new().on_publish(move |_| {
            h.fetch_add(1, Ordering::Relaxed);
        });
        let _s = hub.subscribe("a");
        hub.publish("a");
        hub.publish("nobody-watches-this");
        assert_eq!(heard.load(Ordering::Relaxed), 2);
    }
}
