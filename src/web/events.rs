//! `GET /o/{token}/events`: Server-Sent Events pushed from the in-process hub
//! the moment a change of this order is committed; a keep-alive comment after
//! 15 s without anything written.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use super::AppState;
use super::auth::MaybeUser;
use super::error::WebError;
use super::order::Reader;
use crate::base::lock::LockExt;
use crate::checkout::hub::Subscription;
use crate::values::order::OrderToken;

const KEEP_ALIVE: Duration = Duration::from_secs(15);
const KEEP_ALIVE_COMMENT: &[u8] = b": keep-alive\n\n";

/// Streams of one order open at once (a few screens and phones at most).
pub const MAX_STREAMS_PER_ORDER: usize = 20;
/// What a refused stream is told to wait before trying again (seconds).
const RETRY_AFTER_SECS: &str = "10";

/// How many event streams are open, overall and per order: each holds a
/// connection for as long as its page is open, so they are capped well below
/// the connections the server accepts, and the pages, `/healthz` and
/// `/wxpay/notify` keep being answered when the caps are hit.
pub struct StreamLimits {
    max: usize,
    per_order: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    by_order: HashMap<String, usize>,
}

impl StreamLimits {
    pub fn new(max: usize, per_order: usize) -> Arc<Self> {
        Arc::new(StreamLimits {
            max,
            per_order,
            open: Mutex::new(Open::default()),
        })
    }

    /// A place for one more stream of `token`, held until the permit drops;
    /// `None` when either cap is reached.
    pub fn admit(self: &Arc<Self>, token: &str) -> Option<StreamPermit> {
        let mut open = self.open.lock_or_recover();
        let of_order = open.by_order.get(token).copied().unwrap_or(0);
        if open.total >= self.max || of_order >= self.per_order {
            return None;
        }
        open.total += 1;
        open.by_order.insert(token.to_string(), of_order + 1);
        Some(StreamPermit {
            limits: self.clone(),
            token: token.to_string(),
        })
    }

    /// Streams open now, over all orders.
    pub fn open(&self) -> usize {
        self.open.lock_or_recover().total
    }
}

/// One open stream's place (see `StreamLimits::admit`).
pub struct StreamPermit {
    limits: Arc<StreamLimits>,
    token: String,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock_or_recover();
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_order.get_mut(&self.token) {
            *n -= 1;
            if *n == 0 {
                open.by_order.remove(&self.token);
            }
        }
    }
}

/// The answer when the stream caps are reached; pages fall back to polling.
pub(super) fn busy() -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS))
        .insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body("503: too many open event streams; the page falls back to polling\n")
}

pub(super) fn event(status: &str) -> Bytes {
    Bytes::from(format!("event: status\ndata: {status}\n\n"))
}

pub async fn stream(
    state: web::Data<AppState>,
    path: web::Path<String>,
    user: MaybeUser,
) -> Result<HttpResponse, WebError> {
    let reader = Reader::of(&user);
    let token = path.into_inner();
    let order = OrderToken::parse(&token).ok_or(WebError::NotFound)?;
    let Some(permit) = state.streams.admit(&token) else {
        tracing::warn!("an event stream refused: the stream caps are reached");
        return Ok(busy());
    };
    // Subscribe before reading, so no change between the read and the stream is missed.
    let changes = state.checkout.subscribe(&order);
    let first = state.checkout.order_view(&order).await?;
    let last = serde_json::to_string(&first.status(state.t, reader))
        .map_err(|e| WebError::Internal(e.into()))?;
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    let _ = tx.try_send(Bytes::from(format!(
        "retry: 2000\n\n{}",
        String::from_utf8_lossy(&event(&last))
    )));
    tokio::spawn(pump(changes, tx, last, move || {
        let (state, order) = (state.clone(), order.clone());
        async move {
            let v = state.checkout.order_view(&order).await.ok()?;
            serde_json::to_string(&v.status(state.t, reader)).ok()
        }
    }));
    Ok(sse_response(rx, permit))
}

/// An event stream of what arrives on `rx`, holding `permit` (its place under
/// the stream caps) as long as the body lives: until the client goes. Never
/// stored (it carries orders), never buffered by a proxy.
pub(super) fn sse_response<P: 'static>(rx: mpsc::Receiver<Bytes>, permit: P) -> HttpResponse {
    let body = futures_util::stream::unfold((rx, permit), |(mut rx, permit)| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(b), (rx, permit)))
    });
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body)
}

/// Feeds one stream after its first event until the client goes: on each
/// change of its order, `read` the status and send it if it differs from the
/// last one sent; after `KEEP_ALIVE` without writing anything, a comment.
///
/// The keep-alive timer lives outside the loop and is reset only by a write,
/// so neither changes of other orders (which do not wake this stream at all)
/// nor changes that leave the status as it was can postpone it.
async fn pump<F, Fut>(
    mut changes: Subscription,
    tx: mpsc::Sender<Bytes>,
    mut last: String,
    mut read: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<String>>,
{
    let mut keep_alive = tokio::time::interval_at(Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
    keep_alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = changes.changed() => {}
            _ = keep_alive.tick() => {
                if tx.send(Bytes::from_static(KEEP_ALIVE_COMMENT)).await.is_err() {
                    break;
                }
                continue;
            }
            () = tx.closed() => break,
        }
        let Some(now) = read().await else {
            continue;
        };
        if now != last {
            if tx.send(event(&now)).await.is_err() {
                break;
            }
            last = now;
            keep_alive.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkout::Hub;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A stream of `token` whose `read` counts its calls and answers
    /// `status(n)` for the n-th call.
    fn open(
        hub: &Hub,
        token: &str,
        status: impl Fn(usize) -> String + Send + 'static,
    ) -> (mpsc::Receiver<Bytes>, Arc<AtomicUsize>) {
        let reads = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel(8);
        let r = reads.clone();
        tokio::spawn(pump(hub.subscribe(token), tx, status(0), move || {
            let n = r.fetch_add(1, Ordering::Relaxed) + 1;
            let s = status(n);
            async move { Some(s) }
        }));
        (rx, reads)
    }

    /// Order B changes every 100 ms for `secs`; returns how many publishes.
    fn busy_neighbour(hub: &Hub, secs: u64) -> tokio::task::JoinHandle<usize> {
        let hub = hub.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            let end = Instant::now() + Duration::from_secs(secs);
            let mut n = 0;
            while tick.tick().await < end {
                hub.publish("B");
                n += 1;
            }
            n
        })
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_stream_keeps_its_keep_alive_while_another_order_is_busy() {
        let hub = Hub::new();
        let start = Instant::now();
        let (mut a, a_reads) = open(&hub, "A", |_| "a".into());
        let (mut b, b_reads) = open(&hub, "B", |n| format!("b{n}"));
        // B's page reads its stream as a browser would, until 40 s.
        let b_page = tokio::spawn(async move {
            let (mut events, mut keep_alives) = (0, 0);
            let end = tokio::time::sleep_until(start + Duration::from_millis(40_050));
            tokio::pin!(end);
            loop {
                tokio::select! {
                    m = b.recv() => match m {
                        Some(m) if &m[..] == KEEP_ALIVE_COMMENT => keep_alives += 1,
                        Some(_) => events += 1,
                        None => break,
                    },
                    () = &mut end => break,
                }
            }
            (events, keep_alives)
        });
        let publisher = busy_neighbour(&hub, 40);

        // A: silent until 15 s, then a keep-alive, and again at 30 s.
        for k in 1..=2 {
            let got = a.recv().await.expect("stream A open");
            let at = start.elapsed();
            assert_eq!(&got[..], KEEP_ALIVE_COMMENT);
            assert!(
                at >= KEEP_ALIVE * k && at < KEEP_ALIVE * k + Duration::from_millis(5),
                "keep-alive {k} of A came at {at:?}"
            );
        }
        let published = publisher.await.unwrap();
        assert_eq!(published, 400);
        // None of B's publishes woke A: it never re-read its order, and got
        // nothing but its two keep-alives.
        assert_eq!(a_reads.load(Ordering::Relaxed), 0);
        assert!(a.try_recv().is_err(), "nothing else for A");

        // B was woken once per publish, got each new status, and, being
        // written to every 100 ms, no keep-alive.
        let (events, keep_alives) = b_page.await.unwrap();
        assert_eq!(b_reads.load(Ordering::Relaxed), published);
        assert_eq!(events, published);
        assert_eq!(keep_alives, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_is_sent_and_postpones_the_keep_alive() {
        let hub = Hub::new();
        let start = Instant::now();
        let (mut a, a_reads) = open(&hub, "A", |n| if n == 0 { "open" } else { "paid" }.into());
        tokio::time::sleep(Duration::from_secs(10)).await;
        hub.publish("A");
        let got = a.recv().await.unwrap();
        assert_eq!(got, event("paid"));
        assert_eq!(a_reads.load(Ordering::Relaxed), 1);
        // The next keep-alive is 15 s after that write, not at 15 s.
        let got = a.recv().await.unwrap();
        assert_eq!(&got[..], KEEP_ALIVE_COMMENT);
        let at = start.elapsed();
        assert!(
            at >= Duration::from_secs(25) && at < Duration::from_millis(25_005),
            "{at:?}"
        );
        // A publish that leaves the status as it was sends nothing and does
        // not postpone the keep-alive.
        tokio::time::sleep(Duration::from_secs(5)).await;
        hub.publish("A");
        let got = a.recv().await.unwrap();
        assert_eq!(&got[..], KEEP_ALIVE_COMMENT);
        let at = start.elapsed();
        assert!(
            at >= Duration::from_secs(40) && at < Duration::from_millis(40_005),
            "{at:?}"
        );
        assert_eq!(a_reads.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn streams_are_capped_overall_and_per_order_and_freed_on_drop() {
        let limits = StreamLimits::new(3, 2);
        let a1 = limits.admit("A").unwrap();
        let a2 = limits.admit("A").unwrap();
        assert!(limits.admit("A").is_none(), "per order");
        let b1 = limits.admit("B").unwrap();
        assert!(limits.admit("C").is_none(), "overall");
        assert_eq!(limits.open(), 3);
        drop(a1);
        let _a3 = limits.admit("A").unwrap();
        drop((a2, b1));
        assert_eq!(limits.open(), 1);
        let _c = limits.admit("C").unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn the_stream_ends_and_unsubscribes_when_the_client_goes() {
        let hub = Hub::new();
        let (a, _) = open(&hub, "A", |_| "a".into());
        tokio::task::yield_now().await;
        assert_eq!(hub.watched_orders(), 1);
        drop(a);
        // The pump notices the closed channel and drops its subscription.
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(hub.watched_orders(), 0);
    }
}
