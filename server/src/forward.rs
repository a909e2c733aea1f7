//! Several nodes (`docs/cluster.md`): a request about a council's live stream — `/api/live/<id>`
//! (the public state), its WHEP viewers and its WHIP encoder — answered by the node that runs the
//! council's room, where the program, the recording and the public state live. A request that
//! lands elsewhere is forwarded to that node's `internal_url`; the SDP answer it returns names the
//! owner's media address, so media goes straight there.
//!
//! WHEP viewers are the exception: they are served where they land, this node becoming an edge of
//! the council's node (`cascade.rs`); a viewer's `DELETE` goes to the node its id names, and so do
//! the offers and the end of a network-check probe (the lobby's check, `api/network_check.rs`).
//!
//! The owner's per-address limits must see the viewer, not the forwarding node: the forwarder
//! adds `x-sportello-client`, the client's address signed with the cluster's key, and the owner
//! takes it as the peer's address. A forged or stale one is ignored.

use std::net::{IpAddr, SocketAddr};

use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::api::live::MAX_SDP;
use crate::client_addr::ClientIp;
use crate::state::AppState;

/// The forwarded client's address, signed.
const CLIENT_HEADER: &str = "x-sportello-client";
/// How long a signed client address is good for (one forwarded request).
const CLIENT_VALID_SECS: i64 = 30;

#[derive(Serialize, Deserialize)]
struct ForwardedClient {
    sportello_forwarded_client: IpAddr,
    exp: i64,
}

/// Sends a request to the node that must answer it, when that is another live node: a council's
/// `/api/live/<id>…` to the node that runs it (but WHEP viewers, served here as an edge), and a
/// request about a network-check probe or a viewer to the node the id names. Takes a forwarded
/// request's signed client address as its peer's.
pub async fn to_the_right_node(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(cluster) = state.cluster.clone() else { return next.run(request).await };
    if request.headers().contains_key(crate::cascade::RELAY_HEADER) {
        // An edge's relay leg, for this node as the origin (whose handler checks the claim).
        return next.run(request).await;
    }
    if let Some(forwarded) = request.headers().get(CLIENT_HEADER).and_then(|v| v.to_str().ok()) {
        // From another node: its client is ours (if the cluster's key signed it, lately).
        if let Ok(claims) = state.tokens.decode::<ForwardedClient>(forwarded)
            && claims.exp >= state.clock.now()
        {
            request.extensions_mut().insert(ConnectInfo(SocketAddr::new(claims.sportello_forwarded_client, 0)));
        }
        return next.run(request).await;
    }
    // A probe's offers and a viewer's end go where the probe or the viewer lives.
    if let Some(node) = named_node(request.uri().path())
        && node != cluster.id()
    {
        let Some(node) = cluster.live_nodes().into_iter().find(|n| n.id == node) else {
            return next.run(request).await; // gone with its node: not found here either
        };
        return forward_or_unavailable(&state, &node, client, request).await;
    }
    let Some(session) = request
        .uri()
        .path()
        .strip_prefix("/api/live/")
        .map(|rest| rest.split('/').next().unwrap_or_default().to_owned())
    else {
        return next.run(request).await;
    };
    let Some(owner) = cluster.remote_owner(&format!("council-{session}")).await else {
        return next.run(request).await;
    };
    if request.method() == Method::POST
        && request.uri().path() == format!("/api/live/{session}/whep")
        && state.cascade.may_relay(&session, &owner.id)
    {
        // A viewer is served here, as an edge of the council's node: one relay leg from there,
        // however many viewers here (`cascade.rs`).
        request.extensions_mut().insert(crate::cascade::EdgeOf(owner));
        return next.run(request).await;
    }
    forward_or_unavailable(&state, &owner, client, request).await
}

/// The node an id in the path names, with several nodes: a WHEP viewer's
/// (`/api/live/<id>/whep/viewer-<hex>.<node>`) or a network-check probe's
/// (`/api/network-check/probe-<hex>.<node>`).
pub fn named_node(path: &str) -> Option<&str> {
    let id = match path.strip_prefix("/api/network-check/") {
        Some(probe) => probe,
        None => path.strip_prefix("/api/live/")?.split_once("/whep/")?.1,
    };
    id.rsplit_once('.').map(|(_, node)| node).filter(|n| !n.is_empty() && !n.contains('/'))
}

async fn forward_or_unavailable(
    state: &AppState,
    owner: &sportello_store::NodeRow,
    client: Option<IpAddr>,
    request: Request,
) -> Response {
    match forward(state, &owner.internal_url, client, request).await {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(owner = %owner.id, %error, "live request not forwarded to the council's node");
            (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "2")]).into_response()
        }
    }
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) and those the client library sets itself.
fn passes(name: &HeaderName) -> bool {
    ![header::CONNECTION, header::HOST, header::CONTENT_LENGTH, header::TRANSFER_ENCODING, header::UPGRADE]
        .contains(name)
        && name.as_str() != "keep-alive"
        && name.as_str() != CLIENT_HEADER
}

async fn forward(
    state: &AppState,
    base: &str,
    client: Option<IpAddr>,
    request: Request,
) -> Result<Response, Box<dyn std::error::Error + Send + Sync>> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let body = to_bytes(body, MAX_SDP).await?;
    let mut out = crate::node_http::http()
        .request(parts.method.clone(), format!("{}{path}", base.trim_end_matches('/')))
        .body(body);
    for (name, value) in parts.headers.iter().filter(|(n, _)| passes(n)) {
        out = out.header(name, value);
    }
    if let Some(ip) = client {
        let signed = state
            .tokens
            .sign(&ForwardedClient { sportello_forwarded_client: ip, exp: state.clock.now() + CLIENT_VALID_SECS })?;
        out = out.header(CLIENT_HEADER, signed);
    }
    let answer = out.send().await?;
    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers().iter().filter(|(n, _)| passes(n)) {
        if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
            response = response.header(name.as_str(), value);
        }
    }
    Ok(response.body(Body::from(answer.bytes().await?))?)
}

#[cfg(test)]
mod tests {
    use super::named_node;

    #[test]
    fn ids_name_their_node() {
        assert_eq!(named_node("/api/network-check/probe-ab12.n2"), Some("n2"));
        assert_eq!(named_node("/api/live/s1/whep/viewer-ab12.nodo-3"), Some("nodo-3"));
        assert_eq!(named_node("/api/network-check/probe-ab12"), None, "one node: no suffix");
        assert_eq!(named_node("/api/live/s1/whep"), None);
        assert_eq!(named_node("/api/live/s1"), None);
        assert_eq!(named_node("/api/rooms/a.b"), None);
        assert_eq!(named_node("/api/network-check/probe-ab12."), None);
    }
}
