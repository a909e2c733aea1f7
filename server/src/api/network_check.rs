//! The pre-join network check (`web/room/netcheck.js`): before entering a room the citizen's page
//! opens throwaway peer connections to the SFU — plain UDP, ICE-TCP, and through the TURN relay over
//! TLS — and tells from which of them connect what the network lets through. See "Network check"
//! in `docs/signaling.md`.
//!
//! - `GET /api/network-check` → `{ice_servers, probe}`: the TURN servers with a credential of the
//!   probe's own (none when TURN is not configured) and the probe id the offers go to. Counted per
//!   client address (`network_checks_per_ip_minute`).
//! - `POST /api/network-check/{probe}` (`application/sdp`, complete offer, no trickle, as WHEP) →
//!   `201` with the answer. At most [`PEERS_PER_PROBE`] offers per probe, within [`PROBE_TTL_SECS`]
//!   of its GET: the POSTs are bounded by the rate-limited GET that issued the probe.
//! - `DELETE /api/network-check/{probe}` → `204`: the page is done; the probe's peers go now.
//!
//! The SFU side is a receive-only viewer of [`NETWORK_CHECK_PROGRAM`], a program opened for the
//! first probe and closed with the last one (so an idle server holds nothing for the check), that
//! never gets a source: the probe connects (ICE, DTLS) and receives nothing. Each peer is removed
//! on the DELETE or [`PEER_LIFETIME`] after its answer, whatever the browser does.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use sportello_rooms::live::NETWORK_CHECK_PROGRAM;
use sportello_sfu::SfuError;
use utoipa::{OpenApi, ToSchema};

use super::ApiError;
use super::error::Path;
use super::live::{MAX_SDP, SDP, sdp_body};
use super::public::RateLimiter;
use crate::client_addr::ClientIp;
use crate::state::AppState;

/// Offers one probe may post: UDP, ICE-TCP, relay.
pub const PEERS_PER_PROBE: u8 = 3;
/// How long after its GET a probe takes offers (the page gathers for a few seconds at most).
pub const PROBE_TTL_SECS: i64 = 60;
/// How long a probe's peer lives on the SFU: the page decides within ≈ 8 s and closes.
pub const PEER_LIFETIME: Duration = Duration::from_secs(20);
/// Probe peers alive at once, all addresses together (each costs the SFU a peer connection).
pub const MAX_LIVE_PEERS: usize = 300;
/// Probes issued and not yet expired, all addresses together (each is a few bytes).
const MAX_PROBES: usize = 10_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/network-check", get(start))
        .route("/network-check/{probe}", post(offer).delete(done))
        .layer(DefaultBodyLimit::max(MAX_SDP))
        // One registry per router, i.e. per server (tests run several servers in one process).
        .layer(Extension(Arc::new(Checks::default())))
}

/// This module's part of `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(OpenApi)]
    #[openapi(
        paths(start, offer, done),
        components(schemas(NetworkCheck, ProbeIceServer)),
        tags((name = "network-check", description = "The pre-join network check: throwaway connections to the SFU"))
    )]
    struct NetworkCheckApi;
    NetworkCheckApi::openapi()
}

/// What a check starts with.
#[derive(Debug, Serialize, ToSchema)]
pub struct NetworkCheck {
    /// The TURN servers (an `RTCIceServer` each) with this probe's credential; empty without TURN.
    pub ice_servers: Vec<ProbeIceServer>,
    /// Where the offers go: `POST /api/network-check/{probe}`.
    pub probe: String,
}

/// A browser `RTCIceServer` with a time-limited TURN credential (coturn `use-auth-secret`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProbeIceServer {
    pub urls: Vec<String>,
    pub username: String,
    pub credential: String,
}

#[derive(Default)]
pub struct Checks {
    limiter: RateLimiter,
    /// probe id → (issued at, offers taken).
    probes: Mutex<HashMap<String, (i64, u8)>>,
    /// The probe peers on the SFU. Held across the SFU calls that open and close the program, so
    /// that closing it with the last peer never races a new peer into it.
    peers: tokio::sync::Mutex<HashSet<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Checks {
    /// A new probe; with several nodes its id names this node (`probe-<hex>.<node>`), where the
    /// balancer's next requests about it are forwarded (`forward.rs`).
    fn issue(&self, now: i64, node: Option<&str>) -> Result<String, ApiError> {
        let mut probes = lock(&self.probes);
        if probes.len() >= MAX_PROBES {
            probes.retain(|_, (at, _)| now - *at < PROBE_TTL_SECS);
            if probes.len() >= MAX_PROBES {
                return Err(ApiError::Unavailable("too many network checks under way"));
            }
        }
        let mut probe = format!("probe-{}", hex::encode(rand::random::<[u8; 16]>()));
        if let Some(node) = node {
            probe = format!("{probe}.{node}");
        }
        probes.insert(probe.clone(), (now, 0));
        Ok(probe)
    }

    /// Takes one of the probe's offers: its peer's id on the SFU. Unknown, expired or used up: 404
    /// (the probe stays known until its DELETE, which still removes its peers).
    fn take(&self, probe: &str, now: i64) -> Result<String, ApiError> {
        let mut probes = lock(&self.probes);
        let Some((at, taken)) = probes.get_mut(probe) else { return Err(ApiError::NotFound) };
        if now - *at >= PROBE_TTL_SECS || *taken >= PEERS_PER_PROBE {
            return Err(ApiError::NotFound);
        }
        *taken += 1;
        Ok(format!("{probe}-{taken}"))
    }

    /// Gives back an offer the SFU refused (nothing was made for it).
    fn give_back(&self, probe: &str) {
        if let Some((_, taken)) = lock(&self.probes).get_mut(probe) {
            *taken = taken.saturating_sub(1);
        }
    }
}

/// Starts a check: the relay's credentials and a probe id.
#[utoipa::path(get, path = "/api/network-check", tag = "network-check",
    responses((status = 200, body = NetworkCheck),
              (status = 429, description = "More than `network_checks_per_ip_minute` checks from this address (`Retry-After`)", body = super::error::ErrorBody),
              (status = 503, body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(probe = tracing::field::Empty))]
pub async fn start(
    State(state): State<AppState>,
    Extension(checks): Extension<Arc<Checks>>,
    ClientIp(ip): ClientIp,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    if !checks.limiter.allow(ip, now, state.config.network_checks_per_ip_minute) {
        tracing::info!("network check rate limit reached");
        return Err(ApiError::RateLimited);
    }
    let probe = checks.issue(now, state.cluster.as_ref().map(|c| c.id()))?;
    tracing::Span::current().record("probe", probe.as_str());
    let ice_servers = state
        .config
        .turn()
        .and_then(|turn| turn.ice_server(&probe, now))
        .map(|s| ProbeIceServer {
            urls: s.urls,
            username: s.username.unwrap_or_default(),
            credential: s.credential.unwrap_or_default(),
        })
        .into_iter()
        .collect();
    let mut response = Json(NetworkCheck { ice_servers, probe }).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// One probe connection: the browser's complete offer (one receive-only audio m-line) gets the
/// SFU's answer. The peer receives nothing and is removed after [`PEER_LIFETIME`].
#[utoipa::path(post, path = "/api/network-check/{probe}", tag = "network-check",
    request_body(content = String, content_type = "application/sdp"),
    params(("probe" = String, Path, description = "The id from `GET /api/network-check`")),
    responses(
        (status = 201, description = "The SDP answer", content_type = "application/sdp"),
        (status = 400, description = "Not an SDP offer the SFU can answer", body = super::error::ErrorBody),
        (status = 404, description = "Unknown or expired probe, or its offers used up", body = super::error::ErrorBody),
        (status = 413, body = super::error::ErrorBody), (status = 415, body = super::error::ErrorBody),
        (status = 503, description = "Too many probes at once (`Retry-After`)", body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all, fields(peer = tracing::field::Empty))]
pub async fn offer(
    State(state): State<AppState>,
    Extension(checks): Extension<Arc<Checks>>,
    Path(probe): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let sdp = sdp_body(&headers, body)?;
    let peer = checks.take(&probe, state.clock.now())?;
    tracing::Span::current().record("peer", peer.as_str());
    let sfu = state.rooms.sfu().clone();
    let answer = {
        let mut peers = checks.peers.lock().await;
        if peers.len() >= MAX_LIVE_PEERS {
            checks.give_back(&probe);
            return Err(ApiError::Unavailable("max network-check peers reached"));
        }
        match answer(&sfu, &peer, sdp, peers.is_empty()).await {
            Ok(answer) => {
                peers.insert(peer.clone());
                answer
            }
            Err(e) => {
                checks.give_back(&probe);
                if peers.is_empty() {
                    close_program(&sfu).await;
                }
                return Err(e.into());
            }
        }
    };
    let (checks, peer) = (checks.clone(), peer.clone());
    tokio::spawn(async move {
        tokio::time::sleep(PEER_LIFETIME).await;
        checks.remove(&sfu, [peer]).await;
    });
    tracing::debug!("network-check peer answered");
    Response::builder()
        .status(StatusCode::CREATED)
        .header(header::CONTENT_TYPE, SDP)
        .header(header::CACHE_CONTROL, "no-store")
        .body(answer.into())
        .map_err(ApiError::internal)
}

/// Ends a check: the probe's peers leave the SFU now (the page calls it when it has its verdict).
#[utoipa::path(delete, path = "/api/network-check/{probe}", tag = "network-check",
    params(("probe" = String, Path, description = "The id from `GET /api/network-check`")),
    responses((status = 204, description = "Ended"),
              (status = 404, description = "Unknown or expired probe", body = super::error::ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn done(
    State(state): State<AppState>,
    Extension(checks): Extension<Arc<Checks>>,
    Path(probe): Path<String>,
) -> Result<StatusCode, ApiError> {
    let Some((_, taken)) = lock(&checks.probes).remove(&probe) else { return Err(ApiError::NotFound) };
    checks.remove(state.rooms.sfu(), (1..=taken).map(|n| format!("{probe}-{n}"))).await;
    Ok(StatusCode::NO_CONTENT)
}

impl Checks {
    /// Removes these peers from the SFU (those still there), and the program with the last one.
    async fn remove(&self, sfu: &sportello_sfu::Sfu, gone: impl IntoIterator<Item = String>) {
        let mut peers = self.peers.lock().await;
        let before = peers.len();
        for peer in gone {
            if !peers.remove(&peer) {
                continue;
            }
            // Already gone when its connection failed or closed: removed either way.
            if let Err(e) = sfu.leave(NETWORK_CHECK_PROGRAM.into(), peer.as_str().into()).await
                && !matches!(e, SfuError::UnknownParticipant(_) | SfuError::UnknownProgram(_))
            {
                tracing::warn!(%peer, error = %e, "network-check peer not removed");
            }
        }
        if before > 0 && peers.is_empty() {
            close_program(sfu).await;
        }
    }
}

/// The SFU's answer; the probe program is opened for the first peer (`first`), or when missing.
async fn answer(sfu: &sportello_sfu::Sfu, peer: &str, sdp: String, first: bool) -> Result<String, SfuError> {
    if first {
        open_program(sfu).await?;
    }
    match sfu.whep_offer(NETWORK_CHECK_PROGRAM.into(), peer.into(), sdp.clone()).await {
        Err(SfuError::UnknownProgram(_)) => {
            open_program(sfu).await?;
            sfu.whep_offer(NETWORK_CHECK_PROGRAM.into(), peer.into(), sdp).await
        }
        other => other,
    }
}

async fn open_program(sfu: &sportello_sfu::Sfu) -> Result<(), SfuError> {
    // The page offers no video; one audio slot answers its one audio m-line.
    match sfu.program_open(NETWORK_CHECK_PROGRAM.into(), 1).await {
        Ok(()) | Err(SfuError::ProgramExists(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn close_program(sfu: &sportello_sfu::Sfu) {
    match sfu.program_close(NETWORK_CHECK_PROGRAM.into()).await {
        Ok(()) | Err(SfuError::UnknownProgram(_)) => {}
        Err(e) => tracing::warn!(error = %e, "network-check program not closed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_takes_three_offers_within_its_time() {
        let checks = Checks::default();
        let probe = checks.issue(1_000, None).unwrap();
        assert!(probe.starts_with("probe-") && probe.len() == 6 + 32);
        for n in 1..=PEERS_PER_PROBE {
            assert_eq!(checks.take(&probe, 1_000 + 5).unwrap(), format!("{probe}-{n}"));
        }
        assert!(matches!(checks.take(&probe, 1_005), Err(ApiError::NotFound)), "used up");
        let late = checks.issue(2_000, None).unwrap();
        assert!(matches!(checks.take(&late, 2_000 + PROBE_TTL_SECS), Err(ApiError::NotFound)), "expired");
        assert!(matches!(checks.take("probe-nope", 2_000), Err(ApiError::NotFound)));
    }
}
