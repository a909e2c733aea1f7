//! Several nodes (`docs/cluster.md`): a council's stream cascaded to edge nodes. The node that
//! runs the council's room (the origin) composes the program, records it and keeps its public
//! state; any other node that gets a WHEP viewer becomes an edge of that session: it opens the
//! program in its own SFU, fed by one relay leg — its offer, POSTed to the origin's WHEP endpoint
//! with a signed `x-sportello-relay` and answered there like a viewer that counts for no cap —
//! and serves its viewers from it. The origin then sends each edge one copy, whatever its viewers.
//!
//! While an edge has viewers it watches the leg: the origin dead (the leg fails, or nobody runs
//! the council), its viewers stay connected on the slate until a node takes the council over,
//! then the leg is offered to the new origin (a change of source the viewers see at its first
//! keyframe). The session over (the origin answers `410`) or nobody watching for a while, the
//! edge closes its program. An edge that takes the council over itself composes the program in
//! place (`Sfu::program_select`), its viewers staying.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use sportello_rooms::live::{AUDIO_SLOTS, program_room};
use sportello_sfu::{PeerState, SfuError};
use sportello_store::NodeRow;

/// What an edge needs of its node (`AppState::edge_context`).
#[derive(Clone)]
pub struct EdgeContext {
    pub sfu: sportello_sfu::Sfu,
    pub cluster: sportello_cluster::Cluster,
    pub tokens: Arc<sportello_backoffice::token::TokenKey>,
    pub clock: sportello_backoffice::clock::Clock,
    /// The council sessions that run on this node (their rooms write it).
    pub live: sportello_rooms::live::LiveBoard,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// The header that marks a WHEP offer as another node's relay leg: a [`RelayClaims`], signed.
pub const RELAY_HEADER: &str = "x-sportello-relay";
/// How long a signed relay claim is good for (one request).
const RELAY_VALID_SECS: i64 = 30;
/// How often an edge looks at its leg and at who runs the council.
const WATCH_EVERY: Duration = Duration::from_millis(500);
/// A leg not connected this long after it was offered is offered again.
const CONNECT_WITHIN: Duration = Duration::from_secs(4);
/// How long an edge keeps its viewers on the slate while no node runs the council (a takeover
/// takes seconds; an origin that is simply gone for good ends the stream here).
const ORPHAN_GRACE: Duration = Duration::from_secs(60);
/// How long an edge keeps a program nobody watches.
const IDLE_GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum CascadeError {
    #[error("the session is not on air")]
    NotOnAir,
    #[error("the session is over")]
    Ended,
    #[error("this node relays another session from the same node")]
    Busy,
    #[error("the council's node did not take the relay leg: {0}")]
    Origin(String),
    #[error(transparent)]
    Sfu(#[from] SfuError),
}

/// What the relay header says: which node's leg it is.
#[derive(Serialize, Deserialize)]
pub struct RelayClaims {
    pub sportello_relay_from: String,
    pub exp: i64,
}

/// Put on a WHEP request by [`crate::forward::live_to_owner`] when another node runs the
/// council: this node serves the viewer as an edge of that origin.
#[derive(Clone)]
pub struct EdgeOf(pub NodeRow);

/// This node's edge programs, by session.
#[derive(Default)]
pub struct Cascade {
    edges: Mutex<HashMap<String, Edge>>,
}

struct Edge {
    /// The node the leg goes to.
    origin: String,
}

impl Cascade {
    fn edges(&self) -> std::sync::MutexGuard<'_, HashMap<String, Edge>> {
        self.edges.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Ends every stream this node relays (it drains): the viewers' connections close, and
    /// their players ask again through the balancer, for another node.
    pub async fn end_all(&self, sfu: &sportello_sfu::Sfu) {
        let sessions: Vec<String> = self.edges().drain().map(|(session, _)| session).collect();
        for session in sessions {
            tracing::info!(session, "edge program closed: this node drains");
            let _ = sfu.program_close(program_room(&session).into()).await;
        }
    }

    /// Whether this node relays `session` now.
    pub fn relays(&self, session: &str) -> bool {
        self.edges().contains_key(session)
    }

    /// Whether this node may be an edge of `session` from `origin`: yes unless it relays another
    /// session from that node already. Two legs between the same two media sockets would share
    /// one address pair, which is how both ends tell their connections apart (a leg per node
    /// pair carrying several programs is not built); the second session's viewers play from
    /// the origin instead, as with one node.
    pub fn may_relay(&self, session: &str, origin: &str) -> bool {
        self.edges().iter().all(|(s, e)| s == session || e.origin != origin)
    }

    /// Makes this node an edge of `session`, whose council runs on `origin`, unless it is one:
    /// on return the program is open here, fed by a leg (or on the slate while its origin is
    /// replaced), and viewers can be attached to it.
    pub async fn ensure(
        self: &Arc<Self>,
        state: &EdgeContext,
        session: &str,
        origin: &NodeRow,
    ) -> Result<(), CascadeError> {
        {
            // Claimed before the leg is offered, so that a second session from the same origin
            // sees it (`may_relay`) however close together their first viewers come.
            let mut edges = self.edges();
            if edges.contains_key(session) {
                return Ok(());
            }
            if edges.values().any(|e| e.origin == origin.id) {
                return Err(CascadeError::Busy);
            }
            edges.insert(session.to_owned(), Edge { origin: origin.id.clone() });
        }
        let span = tracing::info_span!("edge", session, origin = %origin.id);
        if let Err(error) = tracing::Instrument::instrument(relay(state, session, origin), span.clone()).await {
            self.edges().remove(session);
            // Nobody watches yet: nothing to keep.
            let program = program_room(session);
            if state.sfu.participants(program.as_str().into()).await.is_ok_and(|p| p.is_empty()) {
                let _ = state.sfu.program_close(program.into()).await;
            }
            return Err(error);
        }
        span.in_scope(|| tracing::info!("this node is an edge of the session"));
        tokio::spawn(tracing::Instrument::instrument(Arc::clone(self).watch(state.clone(), session.to_owned()), span));
        Ok(())
    }

    /// Keeps an edge's leg on the council's current node until the session is over, nobody
    /// watches, or this node runs the council itself.
    async fn watch(self: Arc<Self>, state: EdgeContext, session: String) {
        let cluster = state.cluster.clone();
        let program = program_room(&session);
        let council = format!("council-{session}");
        let sfu = state.sfu.clone();
        let mut offered = Instant::now();
        let mut watched = Instant::now();
        let mut orphaned: Option<Instant> = None;
        let mut shutdown = state.shutdown.clone();
        let end = loop {
            tokio::select! {
                _ = tokio::time::sleep(WATCH_EVERY) => {}
                _ = shutdown.changed() => break "shutdown",
            }
            if state.live.get(&session).is_some() {
                // The council's room runs here now: it composes the program in place.
                self.edges().remove(&session);
                tracing::info!("this node runs the council now: no longer an edge");
                return;
            }
            match sfu.participants(program.as_str().into()).await {
                Ok(viewers) if !viewers.is_empty() => watched = Instant::now(),
                Ok(_) if watched.elapsed() < IDLE_GRACE => {}
                Ok(_) => break "nobody watches",
                Err(_) => break "program gone",
            }
            let leg = sfu.upstream_state(program.as_str().into()).await.ok().flatten();
            let Some(origin) = cluster.remote_owner(&council).await else {
                // Nobody (alive) runs the council: the slate, for a while.
                let since = *orphaned.get_or_insert_with(Instant::now);
                if leg.is_some() && leg != Some(PeerState::Connected) {
                    let _ = sfu.upstream_close(program.as_str().into()).await;
                }
                if since.elapsed() > ORPHAN_GRACE {
                    break "no node runs the council";
                }
                continue;
            };
            orphaned = None;
            let moved = self.edges().get(&session).is_none_or(|e| e.origin != origin.id);
            let stuck = leg != Some(PeerState::Connected) && offered.elapsed() > CONNECT_WITHIN;
            if !(moved || stuck) {
                continue;
            }
            tracing::info!(origin = %origin.id, ?leg, moved, "offering the relay leg again");
            offered = Instant::now();
            match relay(&state, &session, &origin).await {
                Ok(()) => {
                    if let Some(e) = self.edges().get_mut(&session) {
                        e.origin = origin.id.clone();
                    }
                }
                Err(CascadeError::Ended) => break "the session is over",
                Err(error) => tracing::warn!(%error, "relay leg not renewed; trying again"),
            }
        };
        // Closed before the edge is forgotten: a viewer arriving meanwhile finds the edge still
        // there and the program gone (409, it asks again) — never its new program closed by this.
        let _ = sfu.program_close(program.into()).await;
        self.edges().remove(&session);
        tracing::info!(why = end, "edge program closed");
    }
}

/// Offers a (new) relay leg to `origin` and applies its answer.
async fn relay(state: &EdgeContext, session: &str, origin: &NodeRow) -> Result<(), CascadeError> {
    let program = program_room(session);
    let sfu = &state.sfu;
    let offer = sfu.upstream_offer(program.as_str().into(), AUDIO_SLOTS).await?;
    let claims =
        RelayClaims { sportello_relay_from: state.cluster.id().to_owned(), exp: state.clock.now() + RELAY_VALID_SECS };
    let signed = state.tokens.sign(&claims).map_err(|e| CascadeError::Origin(e.to_string()))?;
    let url = format!("{}/api/live/{session}/whep", origin.internal_url.trim_end_matches('/'));
    let response = crate::node_http::http()
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/sdp")
        .header(RELAY_HEADER, signed)
        .body(offer)
        .send()
        .await
        .map_err(|e| CascadeError::Origin(e.to_string()))?;
    match response.status() {
        StatusCode::CREATED => {
            let answer = response.text().await.map_err(|e| CascadeError::Origin(e.to_string()))?;
            sfu.upstream_answer(program.into(), answer).await?;
            Ok(())
        }
        StatusCode::CONFLICT => Err(CascadeError::NotOnAir),
        StatusCode::GONE | StatusCode::NOT_FOUND => Err(CascadeError::Ended),
        other => Err(CascadeError::Origin(format!("answered {other}"))),
    }
}
