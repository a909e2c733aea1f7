//! Who a request comes from, as the limits count it: the peer address ([`ClientIp`]), the block it
//! belongs to ([`AddressKey`]: IPv6 by its /64), and the per-address count of open websockets
//! ([`SocketGate`]). Behind a reverse proxy every client is the proxy's address.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

/// The peer address when the server runs with connect info (the binary and the tests do).
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
    }
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
