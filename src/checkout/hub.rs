//! In-process publish/subscribe of order changes, published after each commit,
//! so open pages learn of a payment the moment it is recorded.

use std::sync::Arc;

use tokio::sync::broadcast;

#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Arc<str>>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new()
    }
}

impl Hub {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(4096);
        Hub { tx }
    }

    /// Tells every subscriber that the order with this token changed.
    pub fn publish(&self, token: &str) {
        // No subscriber is fine: nobody is looking.
        let _ = self.tx.send(Arc::from(token));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.tx.subscribe()
    }
}
