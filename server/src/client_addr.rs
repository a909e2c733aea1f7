//! Who a request comes from, as the limits count it: the client address ([`ClientIp`]: the peer,
//! or behind a trusted reverse proxy the client its forwarding header names — [`TrustedProxies`]),
//! the block it belongs to ([`AddressKey`]: IPv6 by its /64), and the per-address count of open
//! websockets ([`SocketGate`]).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

use crate::config::ForwardedHeader;

/// The client's address: the peer's (when the server runs with connect info: the binary and the
/// tests do), or — when the peer is a trusted proxy — the one its forwarding header names. Rate
/// limits, caps and log lines all take this one.
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let client = match (peer, parts.extensions.get::<Arc<TrustedProxies>>()) {
            (Some(peer), Some(trusted)) => Some(trusted.client(peer, &parts.headers)),
            _ => peer,
        };
        Ok(ClientIp(client))
    }
}

/// The reverse proxies whose forwarding header is believed (`trusted_proxies`, `forwarded_header`),
/// put into every request's extensions by the router.
#[derive(Debug, Clone)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>, header: ForwardedHeader) -> TrustedProxies {
        TrustedProxies { nets, header }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request from `peer`. A peer that is not a trusted proxy is the client, whatever
    /// its headers say (so nobody dodges a limit by sending one). From a trusted proxy, the hops of
    /// the configured header are walked from the right — each proxy appends the address it saw — and
    /// the first one that is not itself a trusted proxy is the client. A hop that is not an address
    /// (`unknown`, an obfuscated name, garbage) ends the walk at the last proxy that vouched for it;
    /// a chain of trusted proxies only gives its leftmost.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if self.nets.is_empty() || !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        for hop in self.hops(headers).into_iter().rev() {
            match hop {
                Some(ip) if self.trusts(ip) => client = ip,
                Some(ip) => return ip,
                None => return client,
            }
        }
        client
    }

    /// The addresses of the configured header, left to right (every line of it, in order).
    fn hops(&self, headers: &HeaderMap) -> Vec<Option<IpAddr>> {
        let name = match self.header {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        };
        let mut hops = Vec::new();
        for value in headers.get_all(name) {
            // A header that is not text ends the chain where it is: no address can be read from it.
            let Ok(text) = value.to_str() else {
                hops.push(None);
                continue;
            };
            for element in text.split(',') {
                hops.push(match self.header {
                    ForwardedHeader::XForwardedFor => parse_node(element),
                    ForwardedHeader::Forwarded => forwarded_for(element),
                });
            }
        }
        hops
    }
}

/// The `for=` node of one `Forwarded` element (RFC 7239 §4): `for=192.0.2.43`,
/// `for="[2001:db8:cafe::17]:4711"`; `None` when absent or not an address.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim().eq_ignore_ascii_case("for").then(|| parse_node(value))?
    })
}

/// An address as proxies write it: bare, quoted, with a port, IPv6 in brackets (with or without
/// a port) — `192.0.2.1`, `"192.0.2.1:4711"`, `[2001:db8::1]`, `"[2001:db8::1]:4711"`, `2001:db8::1`.
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    text.strip_prefix('[')?.split(']').next()?.parse().ok()
}

/// The block an address belongs to for counting: IPv4 as it is, IPv6 by its /64 (an IPv4-mapped
/// IPv6 address counts as the IPv4 one). `None` (no peer address known) shares one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressKey {
    V4([u8; 4]),
    V6Net([u8; 8]),
    Unknown,
}

impl AddressKey {
    pub fn of(ip: Option<IpAddr>) -> AddressKey {
        match ip.map(|ip| ip.to_canonical()) {
            Some(IpAddr::V4(v4)) => AddressKey::V4(v4.octets()),
            Some(IpAddr::V6(v6)) => {
                let mut net = [0; 8];
                net.copy_from_slice(&v6.octets()[..8]);
                AddressKey::V6Net(net)
            }
            None => AddressKey::Unknown,
        }
    }
}

/// Websockets one address may hold open in all (an office behind one NAT included).
pub const MAX_SOCKETS_PER_ADDRESS: u32 = 200;

/// Open websockets per client address: refused with 429 before the upgrade beyond the limits.
#[derive(Debug, Default)]
pub struct SocketGate {
    counts: Mutex<HashMap<AddressKey, (u32, u32)>>,
}

/// One admitted socket, counted as unjoined until [`Ticket::joined`]; uncounted when dropped.
pub struct Ticket {
    gate: Arc<SocketGate>,
    key: AddressKey,
    joined: bool,
}

impl SocketGate {
    fn lock(&self) -> MutexGuard<'_, HashMap<AddressKey, (u32, u32)>> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for a new socket from `ip`, if it holds fewer than `max_unjoined` sockets that have
    /// not joined yet (`ws_unjoined_per_ip`: a page opens one, a reconnecting page a second;
    /// hundreds are a flood) and fewer than [`MAX_SOCKETS_PER_ADDRESS`] in all.
    pub fn admit(self: &Arc<Self>, ip: Option<IpAddr>, max_unjoined: u32) -> Option<Ticket> {
        let key = AddressKey::of(ip);
        let mut counts = self.lock();
        let (unjoined, open) = counts.entry(key).or_default();
        if *unjoined >= max_unjoined || *open >= MAX_SOCKETS_PER_ADDRESS {
            return None;
        }
        *unjoined += 1;
        *open += 1;
        Some(Ticket { gate: self.clone(), key, joined: false })
    }
}

impl Ticket {
    pub fn joined(&mut self) {
        if !self.joined {
            self.joined = true;
            if let Some((unjoined, _)) = self.gate.lock().get_mut(&self.key) {
                *unjoined = unjoined.saturating_sub(1);
            }
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut counts = self.gate.lock();
        if let Some((unjoined, open)) = counts.get_mut(&self.key) {
            if !self.joined {
                *unjoined = unjoined.saturating_sub(1);
            }
            *open = open.saturating_sub(1);
            if *open == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(name: &'static str, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(name, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn proxies(nets: &[&str], header: ForwardedHeader) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| n.parse().unwrap()).collect(), header)
    }

    #[test]
    fn a_peer_that_is_not_a_trusted_proxy_is_the_client_whatever_it_sends() {
        let t = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        let h = headers("x-forwarded-for", &["198.51.100.7"]);
        assert_eq!(t.client(ip("203.0.113.5"), &h), ip("203.0.113.5"));
        // No proxies configured: nobody is believed.
        let none = proxies(&[], ForwardedHeader::XForwardedFor);
        assert_eq!(none.client(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let t = proxies(&["10.0.0.0/8", "192.0.2.10/32"], ForwardedHeader::XForwardedFor);
        // The citizen forged the first entry; nginx appended the address it saw.
        let h = headers("x-forwarded-for", &["1.2.3.4, 198.51.100.7"]);
        assert_eq!(t.client(ip("10.1.2.3"), &h), ip("198.51.100.7"));
        // Two proxies in a row (the front at 192.0.2.10, then 10.1.2.3), over two header lines.
        let h = headers("x-forwarded-for", &["1.2.3.4, 198.51.100.7", "192.0.2.10"]);
        assert_eq!(t.client(ip("10.1.2.3"), &h), ip("198.51.100.7"));
        // Only proxies: the leftmost. No header: the proxy itself.
        let h = headers("x-forwarded-for", &["10.9.9.9"]);
        assert_eq!(t.client(ip("10.1.2.3"), &h), ip("10.9.9.9"));
        assert_eq!(t.client(ip("10.1.2.3"), &HeaderMap::new()), ip("10.1.2.3"));
    }

    #[test]
    fn a_hop_that_is_not_an_address_ends_at_the_proxy_that_reported_it() {
        let t = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        let h = headers("x-forwarded-for", &["198.51.100.7, unknown, 10.0.0.2"]);
        assert_eq!(t.client(ip("10.0.0.1"), &h), ip("10.0.0.2"));
    }

    #[test]
    fn addresses_as_proxies_write_them() {
        for (text, want) in [
            ("192.0.2.1", "192.0.2.1"),
            (" \"192.0.2.1:4711\" ", "192.0.2.1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("\"[2001:db8::1]:4711\"", "2001:db8::1"),
            ("2001:db8::1", "2001:db8::1"),
        ] {
            assert_eq!(parse_node(text), Some(ip(want)), "{text}");
        }
        for bad in ["unknown", "_hidden", "", "[nope]", "300.1.1.1"] {
            assert_eq!(parse_node(bad), None, "{bad}");
        }
    }

    #[test]
    fn forwarded_is_read_only_when_configured() {
        let t = proxies(&["10.0.0.0/8"], ForwardedHeader::Forwarded);
        let mut h = headers("forwarded", &["for=1.2.3.4;proto=https, For=\"[2001:db8:cafe::17]:4711\";by=10.0.0.1"]);
        h.append("x-forwarded-for", HeaderValue::from_static("198.51.100.99"));
        assert_eq!(t.client(ip("10.0.0.1"), &h), ip("2001:db8:cafe::17"));
        // The other way round: with X-Forwarded-For configured, a `Forwarded` header is ignored.
        let x = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        assert_eq!(x.client(ip("10.0.0.1"), &h), ip("198.51.100.99"));
    }

    #[test]
    fn an_ipv4_mapped_peer_matches_its_ipv4_block() {
        let t = proxies(&["127.0.0.1/32"], ForwardedHeader::XForwardedFor);
        let h = headers("x-forwarded-for", &["198.51.100.7"]);
        assert_eq!(t.client(ip("::ffff:127.0.0.1"), &h), ip("198.51.100.7"));
    }
}
