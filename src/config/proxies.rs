//! `http.trusted_proxies` parsed: the addresses and networks whose forwarding
//! headers `web::client` believes. The one place such a list is read.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

/// The addresses and networks whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<[IpNet]>);

impl TrustedProxies {
    /// Parses `http.trusted_proxies` entries: an address (`127.0.0.1`, `::1`)
    /// or a network (`10.0.0.0/8`, `fd00::/8`). The error names the bad entry.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        let nets = entries
            .iter()
            .map(|e| {
                let e = e.as_ref().trim();
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                    .map(|n| n.trunc())
                    .map_err(|_| format!("{e:?} is not an IP address or CIDR network"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TrustedProxies(nets.into()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }
}

/// `::ffff:1.2.3.4` is the IPv4 client 1.2.3.4 (a dual-stack socket's view).
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}
