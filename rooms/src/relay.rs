//! Sessions whose room runs on another node (several nodes, `docs/cluster.md`), the owner's end of
//! a relay over NATS ([`sportello_cluster::relay`]): [`serve`] runs each relayed session as
//! [`session::run`] runs a websocket, until the browser closes or the relaying node is judged dead.
//! (The relaying end is the session itself: [`session`] forwards its frames to the owner.)

use std::time::Duration;

use futures_util::{StreamExt, stream};
use sportello_cluster::{Accepted, Cluster, Frame};
use tracing::Instrument;

use crate::error::Lang;
use crate::session::{self, Context, Inbound, Outbound};

/// How often the owner checks that the relaying node is alive.
const PEER_CHECK: Duration = sportello_cluster::relay::PEER_CHECK;

/// The owner's end: runs every session relayed to this node until the cluster's NATS connection
/// ends.
pub async fn serve(cluster: Cluster, context: Context) {
    let accepted = match cluster.accept_relays().await {
        Ok(accepted) => accepted,
        Err(error) => {
            tracing::error!(%error, "this node cannot take relayed sessions");
            return;
        }
    };
    let mut accepted = Box::pin(accepted);
    while let Some(relay) = accepted.next().await {
        tokio::spawn(run_relayed(cluster.clone(), context.clone(), relay));
    }
}

async fn run_relayed(cluster: Cluster, context: Context, relay: Accepted) {
    let Accepted { hello, inbound, outbound } = relay;
    let id = session::next_conn_id();
    let span = tracing::info_span!(
        "session",
        conn = id,
        relayed_from = %hello.from,
        room = tracing::field::Empty,
        participant = tracing::field::Empty
    );
    // The join first, then the browser's frames; the stream ends at the browser's close, or when
    // the relaying node is judged dead (its participant then reconnects elsewhere).
    let from = hello.from.clone();
    let mut inbound = sportello_cluster::frames(inbound);
    // The relaying node confirms first that it still waits (an open read late is dropped).
    match tokio::time::timeout(sportello_cluster::relay::OPEN_TIMEOUT, inbound.next()).await {
        Ok(Some(Frame::Ping)) => {}
        _ => {
            tracing::info!(parent: &span, from = %hello.from, "relay opened too late: dropped");
            return;
        }
    }
    let browser = inbound.map(|frame| match frame {
        Frame::Text(text) => Inbound::Text(text),
        Frame::Close(_) => Inbound::Close,
        Frame::Ping => Inbound::Pong,
    });
    let relay_dead = async move {
        let mut check = tokio::time::interval(PEER_CHECK);
        loop {
            check.tick().await;
            if cluster.is_dead(&from) {
                tracing::warn!(node = %from, "the relaying node is dead: its session ends");
                return;
            }
        }
    };
    let frames = stream::once(std::future::ready(Inbound::Text(hello.join)))
        .chain(browser.take_until(Box::pin(relay_dead)))
        .scan(false, |closed, frame| {
            // After the browser's close the transport ends the stream, as a websocket's does.
            let out = if *closed { None } else { Some(frame) };
            *closed = *closed || matches!(out, Some(Inbound::Close));
            std::future::ready(out)
        })
        .map(Ok::<_, std::convert::Infallible>);
    let sink = futures_util::sink::unfold(outbound, |outbound, frame: Outbound| async move {
        let frame = match frame {
            Outbound::Text(text) => Frame::Text(text.as_str().to_owned()),
            Outbound::Close(code, _) => Frame::Close(code),
            Outbound::Ping => Frame::Ping,
        };
        outbound.send(frame).await.map(|()| outbound)
    });
    let lang = Lang::from_query(Some(&hello.lang));
    session::run(Box::pin(frames), Box::pin(sink), context, id, lang, hello.expected_room, || {}).instrument(span).await
}
