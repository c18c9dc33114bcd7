//! `GET /o/{token}/events`: Server-Sent Events pushed from the in-process hub
//! the moment a change is committed; a keep-alive comment every 15 s.

use std::convert::Infallible;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use bytes::Bytes;
use tokio::sync::{broadcast, mpsc};

use super::AppState;
use super::error::WebError;
use super::order::load;

const KEEP_ALIVE: Duration = Duration::from_secs(15);

fn event(status: &str) -> Bytes {
    Bytes::from(format!("event: status\ndata: {status}\n\n"))
}

pub async fn stream(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let token = path.into_inner();
    // Subscribe before reading, so no change between the read and the stream is missed.
    let mut changes = state.checkout.subscribe();
    let first = load(&state, &token).await?;
    let mut last =
        serde_json::to_string(&first.status()).map_err(|e| WebError::Internal(e.into()))?;
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    let _ = tx.try_send(Bytes::from(format!(
        "retry: 2000\n\n{}",
        String::from_utf8_lossy(&event(&last))
    )));
    tokio::spawn(async move {
        loop {
            let changed = tokio::select! {
                m = changes.recv() => match m {
                    Ok(t) => &*t == token.as_str(),
                    Err(broadcast::error::RecvError::Lagged(_)) => true,
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = tokio::time::sleep(KEEP_ALIVE) => {
                    if tx.send(Bytes::from_static(b": keep-alive\n\n")).await.is_err() {
                        break;
                    }
                    false
                }
                _ = tx.closed() => break,
            };
            if !changed {
                continue;
            }
            let Ok(v) = load(&state, &token).await else {
                continue;
            };
            let Ok(now) = serde_json::to_string(&v.status()) else {
                continue;
            };
            if now != last {
                if tx.send(event(&now)).await.is_err() {
                    break;
                }
                last = now;
            }
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}
