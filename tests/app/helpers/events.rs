//! The one reader of server-sent events (an order's, the counter's, a
//! display's): one event at a time, by its `status` data or by its text.

use super::*;

use futures_util::StreamExt;

type Body =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// An open event stream.
pub struct Events {
    url: String,
    body: Body,
    buf: String,
}

impl Events {
    /// Opens the event stream at `url` as `client` (within 5 s: a stream held
    /// in a buffer never opens).
    pub async fn open(client: &reqwest::Client, url: impl Into<String>) -> Events {
        let url = url.into();
        let resp = tokio::time::timeout(Duration::from_secs(5), client.get(&url).send())
            .await
            .unwrap_or_else(|_| panic!("{url}: no event stream within 5 s (held in a buffer?)"))
            .unwrap();
        assert_eq!(resp.status(), 200, "{url}: the event stream");
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Events {
            url,
            body: Box::pin(resp.bytes_stream()),
            buf: String::new(),
        }
    }

    /// The event stream of order `token` at `base`, as `client`.
    pub async fn order(client: &reqwest::Client, base: &str, token: &str) -> Events {
        Events::open(client, format!("{base}/o/{token}/events")).await
    }

    /// The next event, whole (its `event:` and `data:` lines), or `None` if
    /// none comes by `deadline` (or the stream ended).
    async fn next_block(&mut self, deadline: tokio::time::Instant) -> Option<String> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                return Some(self.buf.drain(..end + 2).collect());
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }

    /// The next status event's data, or `None` if none comes within `wait`
    /// (or the stream ended).
    pub async fn next(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let block = self.next_block(deadline).await?;
            if let Some(data) = block
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .filter(|_| block.contains("event: status"))
            {
                return Some(serde_json::from_str(data).unwrap());
            }
        }
    }

    /// Waits for a status event whose `key` is `want`, skipping others.
    pub async fn until(&mut self, key: &str, want: &str, wait: Duration) -> Value {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ev = self
                .next(left)
                .await
                .unwrap_or_else(|| panic!("no event with {key} = {want} within {wait:?}"));
            if ev[key] == want {
                return ev;
            }
        }
    }

    /// Reads events until one whose text holds `needle` arrives (or `timeout`
    /// passes): when it did, and the event.
    pub async fn until_text(&mut self, needle: &str, timeout: Duration) -> (Instant, String) {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut seen = String::new();
        loop {
            let Some(block) = self.next_block(deadline).await else {
                panic!("{}: no {needle} within {timeout:?}; saw {seen:?}", self.url);
            };
            if block.contains(needle) {
                return (Instant::now(), block);
            }
            seen.push_str(&block);
        }
    }
}
