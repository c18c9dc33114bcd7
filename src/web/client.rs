//! Who the client is: its IP and whether it reached us over https.
//!
//! scanpay never terminates TLS itself, so a direct connection is plain http
//! from its TCP peer. Behind a reverse proxy every request comes from the
//! proxy, so its forwarding headers are believed — but only when the TCP peer
//! is one of `http.trusted_proxies`; from anyone else they are the client's
//! own words and change nothing. This file is the one place that decides.
//!
//! Headers read (when the peer is trusted): `X-Forwarded-For` with
//! `X-Forwarded-Proto`, the pair nginx and Caddy maintain; RFC 7239
//! `Forwarded` (`for=`, `proto=`) only when no `X-Forwarded-For` came, so a
//! client cannot slip a `Forwarded` past a proxy that only appends to
//! `X-Forwarded-For`. The client is the right-most address of the chain that
//! is not a trusted proxy (the left part is whatever the client claimed).

use std::future::{Ready, ready};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use actix_web::dev::Payload;
use actix_web::http::header::HeaderMap;
use actix_web::{FromRequest, HttpMessage, HttpRequest};

use crate::config::proxies::{TrustedProxies, canonical};

/// The client of one request, as far as we can believe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientInfo {
    pub ip: IpAddr,
    /// The client's own connection (to the outermost trusted proxy) was https.
    pub https: bool,
}

impl ClientInfo {
    /// The client of `req` (computed once per request, then kept in its extensions).
    pub fn of(req: &HttpRequest) -> ClientInfo {
        if let Some(c) = req.extensions().get::<ClientInfo>() {
            return *c;
        }
        let peer = req
            .peer_addr()
            .map(|a| a.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let trusted = req.app_data::<TrustedProxies>();
        let mut c = match trusted {
            Some(t) => resolve(peer, req.headers(), t),
            None => ClientInfo {
                ip: canonical(peer),
                https: false,
            },
        };
        // A client on our own TLS listener (`scanpay sim --tls-cert`) came over
        // https whatever the headers say.
        if c.ip == canonical(peer) && req.app_config().secure() {
            c.https = true;
        }
        req.extensions_mut().insert(c);
        c
    }
}

impl FromRequest for ClientInfo {
    type Error = std::convert::Infallible;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(ClientInfo::of(req)))
    }
}

/// One hop of a forwarding chain: the address a proxy saw (None when it is
/// not an address: `unknown`, an obfuscated name, garbage) and, for
/// `Forwarded`, the protocol that hop used.
#[derive(Debug, Clone, PartialEq)]
struct Hop {
    ip: Option<IpAddr>,
    proto: Option<String>,
}

/// The decision, pure: the TCP peer, the request's headers, the trusted set.
fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> ClientInfo {
    let peer = canonical(peer);
    let direct = ClientInfo {
        ip: peer,
        https: false,
    };
    if !trusted.contains(peer) {
        return direct;
    }
    let values = |name: &str| -> Vec<&str> {
        headers
            .get_all(name)
            .filter_map(|v| v.to_str().ok())
            .collect()
    };
    let xff = values("x-forwarded-for");
    let (hops, proto_of_client): (Vec<Hop>, Option<String>) = if !xff.is_empty() {
        let hops = xff
            .iter()
            .flat_map(|v| v.split(','))
            .map(|s| Hop {
                ip: parse_node(s),
                proto: None,
            })
            .collect();
        // A proxy sets (overwrites) X-Forwarded-Proto with what it received:
        // the right-most value is the nearest trusted proxy's.
        let proto = values("x-forwarded-proto")
            .iter()
            .flat_map(|v| v.split(','))
            .next_back()
            .map(|p| p.trim().to_ascii_lowercase());
        (hops, proto)
    } else {
        (
            values("forwarded")
                .iter()
                .flat_map(|v| forwarded(v))
                .collect(),
            None,
        )
    };
    if hops.is_empty() {
        // A trusted proxy that names no client is the client (e.g. its own
        // health check), but its word on the scheme still counts.
        let proto = values("x-forwarded-proto")
            .iter()
            .flat_map(|v| v.split(','))
            .next_back()
            .map(|p| p.trim().to_ascii_lowercase());
        return ClientInfo {
            ip: peer,
            https: proto.as_deref() == Some("https"),
        };
    }
    // Walk from the right: each trusted hop vouches for the one to its left.
    let mut client = ClientInfo {
        ip: peer,
        https: false,
    };
    let mut client_proto = None;
    for hop in hops.iter().rev() {
        client_proto = hop.proto.clone().or(client_proto);
        let Some(ip) = hop.ip.map(canonical) else {
            // A trusted proxy wrote something that is not an address: we know
            // no more than the last trusted hop.
            break;
        };
        client.ip = ip;
        if !trusted.contains(ip) {
            break;
        }
    }
    let proto = proto_of_client.or(client_proto);
    client.https = proto.as_deref() == Some("https");
    client
}

/// A node as proxies write it: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`,
/// `[2001:db8::1]`, `[2001:db8::1]:443`, optionally quoted.
fn parse_node(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_matches('"').trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    inner.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
}

/// The hops of one `Forwarded` header value (RFC 7239): elements separated by
/// commas, pairs by semicolons, values maybe quoted (commas inside quotes kept).
fn forwarded(value: &str) -> Vec<Hop> {
    split_outside_quotes(value, ',')
        .into_iter()
        .filter(|e| !e.trim().is_empty())
        .map(|element| {
            let mut hop = Hop {
                ip: None,
                proto: None,
            };
            for pair in split_outside_quotes(element, ';') {
                let Some((k, v)) = pair.split_once('=') else {
                    continue;
                };
                let v = v.trim().trim_matches('"');
                match k.trim().to_ascii_lowercase().as_str() {
                    "for" => hop.ip = parse_node(v),
                    "proto" => hop.proto = Some(v.to_ascii_lowercase()),
                    _ => {}
                }
            }
            hop
        })
        .collect()
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in s.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&s[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(list).unwrap()
    }

    fn client(peer: &str, trusted: &[&str], h: &[(&str, &str)]) -> ClientInfo {
        resolve(ip(peer), &headers(h), &proxies(trusted))
    }

    #[test]
    fn entries_are_addresses_or_networks() {
        let t = proxies(&[
            "127.0.0.1",
            "10.0.0.0/8",
            "::1",
            "fd00::/8",
            " 192.168.1.7/24 ",
        ]);
        for yes in [
            "127.0.0.1",
            "10.9.8.7",
            "::1",
            "fd12::3",
            "192.168.1.200",
            "::ffff:10.1.1.1",
        ] {
            assert!(t.contains(ip(yes)), "{yes}");
        }
        for no in ["127.0.0.2", "11.0.0.1", "::2", "fe80::1", "192.168.2.1"] {
            assert!(!t.contains(ip(no)), "{no}");
        }
        for bad in ["", "localhost", "10.0.0.0/33", "1.2.3", "::1/129"] {
            let err = TrustedProxies::parse(&[bad]).unwrap_err();
            assert!(err.contains("not an IP"), "{bad}: {err}");
        }
        assert!(TrustedProxies::default().is_empty());
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let forged = [
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
            ("forwarded", "for=198.51.100.1;proto=https"),
        ];
        let c = client("127.0.0.2", &["127.0.0.1"], &forged);
        assert_eq!(
            c,
            ClientInfo {
                ip: ip("127.0.0.2"),
                https: false
            }
        );
        // No proxies trusted at all (the default): the same.
        let c = client("127.0.0.1", &[], &forged);
        assert_eq!(
            c,
            ClientInfo {
                ip: ip("127.0.0.1"),
                https: false
            }
        );
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_hop() {
        let t = ["127.0.0.1", "10.0.0.0/8"];
        // The client forged a first entry; nginx appended the real peer.
        let c = client(
            "127.0.0.1",
            &t,
            &[
                ("x-forwarded-for", "1.1.1.1, 203.0.113.9"),
                ("x-forwarded-proto", "https"),
            ],
        );
        assert_eq!(
            c,
            ClientInfo {
                ip: ip("203.0.113.9"),
                https: true
            }
        );
        // Two proxies in a row, the inner one trusted; two header lines.
        let c = client(
            "127.0.0.1",
            &t,
            &[
                ("x-forwarded-for", "6.6.6.6, 198.51.100.7"),
                ("x-forwarded-for", "10.1.2.3"),
            ],
        );
        assert_eq!(
            c,
            ClientInfo {
                ip: ip("198.51.100.7"),
                https: false
            }
        );
        // Every hop a proxy: the left-most one is the client.
        let c = client("127.0.0.1", &t, &[("x-forwarded-for", "10.0.0.5,10.0.0.6")]);
        assert_eq!(c.ip, ip("10.0.0.5"));
        // No header from a trusted proxy: the proxy itself, its scheme believed.
        let c = client("127.0.0.1", &t, &[("x-forwarded-proto", "HTTPS")]);
        assert_eq!(
            c,
            ClientInfo {
                ip: ip("127.0.0.1"),
                https: true
            }
        );
        let c = client(
            "127.0.0.1",
            &t,
            &[
                ("x-forwarded-for", "203.0.113.9"),
                ("x-forwarded-proto", "http"),
            ],
        );
        assert!(!c.https);
    }

    #[test]
    fn ipv6_ports_and_quotes() {
        let t = ["::1", "127.0.0.1"];
        for (xff, want) in [
            ("2001:db8::1", "2001:db8::1"),
            ("[2001:db8::1]:4711", "2001:db8::1"),
            ("[2001:db8::2]", "2001:db8::2"),
            ("192.0.2.60:8080", "192.0.2.60"),
            ("::ffff:192.0.2.61", "192.0.2.61"),
        ] {
            let c = client("::1", &t, &[("x-forwarded-for", xff)]);
            assert_eq!(c.ip, ip(want), "{xff}");
        }
        let c = client(
            "127.0.0.1",
            &t,
            &[(
                "forwarded",
                r#"for="[2001:db8:cafe::17]:4711";proto=https, for=127.0.0.1"#,
            )],
        );
        assert_eq!(
            c,
            ClientInfo {
                ip: ip("2001:db8:cafe::17"),
                https: true
            }
        );
        let c = client(
            "127.0.0.1",
            &t,
            &[(
                "forwarded",
                r#"For="192.0.2.43:47011"; Proto=HTTP; by=203.0.113.43"#,
            )],
        );
        assert_eq!(
            c,
            ClientInfo {
                ip: ip("192.0.2.43"),
                https: false
            }
        );
    }

    #[test]
    fn forwarded_counts_only_without_x_forwarded_for() {
        let c = client(
            "127.0.0.1",
            &["127.0.0.1"],
            &[
                ("forwarded", "for=6.6.6.6;proto=https"),
                ("x-forwarded-for", "203.0.113.9"),
            ],
        );
        assert_eq!(
            c,
            ClientInfo {
                ip: ip("203.0.113.9"),
                https: false
            }
        );
    }

    #[test]
    fn garbage_names_no_one() {
        let t = ["127.0.0.1"];
        for xff in [
            "unknown",
            "not an ip",
            "",
            " , ",
            "[::1",
            "1.2.3.4.5",
            "300.1.1.1",
        ] {
            let c = client("127.0.0.1", &t, &[("x-forwarded-for", xff)]);
            assert_eq!(c.ip, ip("127.0.0.1"), "{xff:?}");
        }
        // Garbage to the left of a real client does not matter.
        let c = client(
            "127.0.0.1",
            &t,
            &[("x-forwarded-for", "garbage, 203.0.113.9")],
        );
        assert_eq!(c.ip, ip("203.0.113.9"));
        for fwd in [
            "for=unknown",
            "for=_hidden",
            "for",
            ";;;,,,",
            "for=\"",
            "proto=https",
        ] {
            let c = client("127.0.0.1", &t, &[("forwarded", fwd)]);
            assert_eq!(c.ip, ip("127.0.0.1"), "{fwd:?}");
        }
        let c = client(
            "127.0.0.1",
            &t,
            &[("forwarded", "for=\"[::1]:1,2\";proto=https")],
        );
        assert_eq!(c.ip, ip("127.0.0.1"), "a quoted comma is not a separator");
    }
}
