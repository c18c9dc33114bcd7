//! Connections per client address: one address (a script, a stuck kiosk
//! reconnecting without end) must not fill the connection table on a host
//! with a low open-files limit. Each accepted connection takes a slot of its
//! peer address for as long as it lives (a guard in the connection's own
//! data, dropped with it); a request on a connection past the address's cap
//! is answered 429 at once (a limit of this client, not of the
//! server) and the connection closed. Trusted proxies are not
//! capped: every client behind one shares its address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Extensions, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, http::header};

use crate::base::lock::LockExt;
use crate::config::proxies::{TrustedProxies, canonical};

/// Connections one address may hold at once, at most.
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 64;

/// The cap for a server that holds `total` connections in all: at most a
/// quarter of them per address, never fewer than 8.
pub(super) fn cap_for(total: usize) -> usize {
    (total / 4).clamp(8, MAX_CONNECTIONS_PER_ADDRESS)
}

/// Connections open per address, shared by every worker of one server.
#[derive(Clone)]
pub(super) struct Peers {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    cap: usize,
    proxies: TrustedProxies,
}

/// One connection's slot; `over` when its address was already at the cap.
struct Slot {
    peers: Peers,
    ip: IpAddr,
    over: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.peers.open.lock_or_recover();
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl Peers {
    pub(super) fn new(cap: usize, proxies: TrustedProxies) -> Self {
        Peers {
            open: Arc::default(),
            cap,
            proxies,
        }
    }

    /// `on_connect`: counts the connection against its peer address.
    pub(super) fn connected(&self, conn: &dyn std::any::Any, ext: &mut Extensions) {
        use actix_tls::accept::rustls_0_23::TlsStream;
        use actix_web::rt::net::TcpStream;
        let peer = conn
            .downcast_ref::<TcpStream>()
            .and_then(|s| s.peer_addr().ok())
            .or_else(|| {
                conn.downcast_ref::<TlsStream<TcpStream>>()
                    .and_then(|s| s.get_ref().0.peer_addr().ok())
            });
        let Some(ip) = peer.map(|a| canonical(a.ip())) else {
            return;
        };
        if self.proxies.contains(ip) {
            return;
        }
        let mut open = self.open.lock_or_recover();
        let n = open.entry(ip).or_insert(0);
        *n += 1;
        let over = *n > self.cap;
        drop(open);
        ext.insert(Arc::new(Slot {
            peers: self.clone(),
            ip,
            over,
        }));
    }
}

/// Middleware: a request on a connection past its address's cap gets 429
/// and the connection is closed, before anything else is done for it.
pub(super) async fn refuse_over_cap(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let over = req.conn_data::<Arc<Slot>>().is_some_and(|slot| slot.over);
    if over {
        tracing::warn!(client_ip = %req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default(), "connection refused: too many from one address");
        let resp = HttpResponse::TooManyRequests()
            .force_close()
            .insert_header((header::RETRY_AFTER, "5"))
            .content_type("text/plain; charset=utf-8")
            .body("too many connections from this address\n");
        return Ok(req.into_response(resp));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_a_quarter_of_the_table_within_bounds() {
        assert_eq!(cap_for(16), 8);
        assert_eq!(cap_for(100), 25);
        assert_eq!(cap_for(50_000), MAX_CONNECTIONS_PER_ADDRESS);
    }
}
