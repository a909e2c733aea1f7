//! Scenario `firefox_paths`: a citizen on Firefox ESR and an official on Chromium in one room
//! (issue 13), the server with ICE-TCP on. For each network the two open their links afresh, join,
//! must decode each other's camera and hear each other's microphone, and Firefox's `getStats()`
//! must show the expected path for both of its peer connections:
//! (a) open network → UDP, local candidate a UDP host candidate;
//! (c) UDP blocked (nftables, both directions) → ICE-TCP.
//! The other browser's path is checked too (the same network, so the same path), and so is
//! `selectedPath`'s fallback for Firefox releases without a selected pair on the transport entry,
//! against this Firefox's real `getStats()` report.

use std::net::SocketAddr;

use serde_json::Value;
use sportello_tests::browser::{Browser, Engine, Result, err};
use sportello_tests::netns::Firewall;

use super::{Ctx, MEDIA_TIMEOUT, app, join, media_condition, wait_camera_progress};

const ROOM: &str = "sportello-firefox";
const ICE_TCP: &str = "127.0.0.1:4443";

/// Both peer connections' selected pairs (`window.sportello.paths()`) and their `pathKind`.
async fn paths(b: &Browser) -> Result<Value> {
    let v: Value = b
        .eval_async(
            "import('/web/shared/ice.js').then(async m => { const p = await window.sportello.paths(); \
               return { publish: m.pathKind(p.publish), subscribe: m.pathKind(p.subscribe), raw: p }; })",
        )
        .await?;
    println!(
        "    [{} on {}] publish {}, subscribe {}: {}",
        b.label(),
        b.engine(),
        v["publish"],
        v["subscribe"],
        v["raw"]
    );
    Ok(v)
}

/// `selectedPath` has a fallback for Firefox releases that name no selected pair on a `transport`
/// entry (the `selected` flag of `candidate-pair`). Fed this Firefox's real report without its
/// transport entries, the fallback must find the same pair as the standard path.
const FALLBACK_PROBE: &str = r#"import('/web/shared/ice.js').then(async m => {
  const out = {};
  for (const [name, pc] of Object.entries(window.sportello.pcs)) {
    const report = await pc.getStats();
    const withoutTransport = new Map([...report].filter(([, s]) => s.type !== 'transport'));
    const standard = await m.selectedPath({ connectionState: pc.connectionState, getStats: async () => report });
    const fallback = await m.selectedPath({ connectionState: pc.connectionState, getStats: async () => withoutTransport });
    const same = !!standard && JSON.stringify({ ...standard, rtt: null }) === JSON.stringify({ ...fallback, rtt: null });
    const onTransport = [...report.values()].some(s => s.type === 'transport' && s.selectedCandidatePairId);
    out[name] = { same, onTransport, standard, fallback };
  }
  return out;
})"#;

pub async fn firefox_paths(ctx: &mut Ctx) -> Result<()> {
    let ice_tcp: SocketAddr = ICE_TCP.parse().map_err(|e| err(format!("{ICE_TCP}: {e}")))?;
    let server = app::App::start_with(|c| c.media_tcp_bind = Some(ice_tcp)).await?;
    // The citizen on Firefox, the official (host) on Chromium.
    let felice = server.join_url(ROOM, "felice", "participant");
    let chiara = server.join_url(ROOM, "chiara", "host");
    ctx.server = Some(server);

    for (case, block_udp, want) in [("(a) open network", false, "udp"), ("(c) UDP blocked", true, "tcp")] {
        println!("  {case}");
        let fw = if block_udp { Some(Firewall::block_udp().map_err(|e| err(e.to_string()))?) } else { None };
        let fx = ctx.open_firefox("felice", &felice).await?;
        let cr = ctx.open("chiara", &chiara).await?;
        let (fx, cr) = (&ctx.browsers[fx], &ctx.browsers[cr]);
        tokio::try_join!(join(fx), join(cr)).map_err(|e| err(format!("{case}: {e}")))?;
        let (fx_sees, cr_sees) = (
            media_condition(&["chiara/camera"], &["chiara/microphone"]),
            media_condition(&["felice/camera"], &["felice/microphone"]),
        );
        tokio::try_join!(fx.wait_for(&fx_sees, MEDIA_TIMEOUT), cr.wait_for(&cr_sees, MEDIA_TIMEOUT))
            .map_err(|e| err(format!("{case}: {e}")))?;
        // Not one lucky keyframe: the pictures keep moving both ways.
        tokio::try_join!(
            wait_camera_progress(fx, "chiara", 30, MEDIA_TIMEOUT),
            wait_camera_progress(cr, "felice", 30, MEDIA_TIMEOUT),
        )
        .map_err(|e| err(format!("{case}: {e}")))?;

        for b in [fx, cr] {
            let v = paths(b).await?;
            for pc in ["publish", "subscribe"] {
                if v[pc] != want {
                    return Err(err(format!(
                        "{case}: [{} on {}] the {pc} connection goes over {}, expected {want}: {}",
                        b.label(),
                        b.engine(),
                        v[pc],
                        v["raw"][pc]
                    )));
                }
                // Open network: Firefox's own end is a UDP host candidate (no relay, no reflexive).
                let local = &v["raw"][pc]["local"];
                if b.engine() == Engine::Firefox
                    && !block_udp
                    && (local["protocol"] != "udp" || local["type"] != "host")
                {
                    return Err(err(format!(
                        "{case}: [{}] {pc} local candidate {local}, expected a UDP host",
                        b.label()
                    )));
                }
            }
        }
        let probe: Value = fx.eval_async(FALLBACK_PROBE).await?;
        for pc in ["publish", "subscribe"] {
            if probe[pc]["same"] != true {
                return Err(err(format!(
                    "{case}: [felice] selectedPath's Firefox fallback disagrees with the transport's pair: {}",
                    probe[pc]
                )));
            }
        }
        println!(
            "    Firefox names the selected pair on its transport entry: {}; the `selected` fallback finds the same pair",
            probe["publish"]["onTransport"]
        );
        if let Some(fw) = &fw {
            let dropped = fw.dropped().map_err(|e| err(e.to_string()))?;
            if dropped == 0 {
                return Err(err(format!("{case}: the rules dropped nothing: the case was not played")));
            }
        }
        println!("    Firefox and Chromium decode each other over {want}");
        for b in ctx.browsers.drain(..) {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), b.close()).await;
        }
        drop(fw);
    }
    Ok(())
}
