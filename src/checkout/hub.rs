//! In-process publish/subscribe of order changes, published after each commit,
//! so open pages learn of a payment the moment it is recorded.

use std::sync::Arc;

use tokio::sync::broadcast;

/// Called with the token on every publish, before subscribers are woken.
type Listener = Arc<dyn Fn(&str) + Send + Sync>;

#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Arc<str>>,
    listeners: Vec<Listener>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new()
    }
}

impl Hub {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(4096);
        Hub {
            tx,
            listeners: Vec::new(),
        }
    }

    /// Adds a synchronous listener (at start-up, before the hub is shared):
    /// what caches an order's state forgets it here, so no stale copy outlives
    /// the publish.
    pub fn on_publish(mut self, f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.listeners.push(Arc::new(f));
        self
    }

    /// Tells every listener and subscriber that the order with this token changed.
    pub fn publish(&self, token: &str) {
        for l in &self.listeners {
            l(token);
        }
        // No subscriber is fine: nobody is looking.
        let _ = self.tx.send(Arc::from(token));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.tx.subscribe()
    }
}
