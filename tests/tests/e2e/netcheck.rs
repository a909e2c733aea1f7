//! Scenario `network_check`: the lobby's pre-join network check (issue 13) under the networks of
//! `network_paths` — a real coturn (TURN over TLS on 443) and the SFU's ICE-TCP listener beside the
//! server, nftables rules in the test's namespace playing the citizen's network. One citizen's
//! browser reloads the join page under each network and must show the verdict in words, with the
//! technical code, and expose the same verdict in `window.sportello.netcheck`:
//! open → «La connessione funziona.» (ok); UDP dropped → the fallback (ICE-TCP); UDP and ICE-TCP
//! dropped, TURN/TLS allowed → only the encrypted fallback, and entering then connects through the
//! relay over TLS (the room starts on the ladder's relay step); everything dropped (e) → «La rete
//! non permette la videochiamata», what to do, the code `U0-T0-R0`, and the join button explained.
//! axe-core runs on the lobby with the verdicts shown.

use std::time::Duration;

use serde_json::Value;
use sportello_tests::axe::assert_accessible;
use sportello_tests::browser::{Browser, Result, err};

use super::network::{
    ICE_TCP, RELAY_PORTS, TURN_PORT, TURNS_PORT, extra, firewall, reachable_server, room_paths, stop_coturn,
};
use super::{Ctx, JOIN_TIMEOUT};

const ROOM: &str = "sportello-verifica";
/// The check takes ≈ 4 s of gathering plus ≤ 8 s of connecting when a path is blocked.
const CHECK_TIMEOUT: Duration = Duration::from_secs(45);

struct Case {
    name: &'static str,
    rules: Vec<String>,
    verdict: &'static str,
    /// The flags of the code (`U…-T…-R…`), before the round trip.
    flags: &'static str,
    /// What the citizen reads first.
    text: &'static str,
}

fn cases() -> Vec<Case> {
    let ice_tcp_port = ICE_TCP.rsplit(':').next().unwrap_or_default();
    vec![
        Case {
            name: "open network",
            rules: vec![],
            verdict: "ok",
            flags: "U1-T1-R1",
            text: "La connessione funziona.",
        },
        Case {
            name: "UDP blocked",
            rules: vec!["meta l4proto udp counter drop".to_owned()],
            verdict: "fallback",
            // The relay's leg to the SFU is UDP too: blocked here as well.
            flags: "U0-T1-R0",
            text: "La connessione funziona attraverso un percorso di riserva",
        },
        Case {
            name: "only TURN over TLS",
            rules: vec![
                format!("udp sport {RELAY_PORTS} accept"),
                format!("udp dport {RELAY_PORTS} accept"),
                "meta l4proto udp counter drop".to_owned(),
                format!("tcp dport {{ {ice_tcp_port}, {TURN_PORT} }} counter drop"),
            ],
            verdict: "relay",
            flags: "U0-T0-R1",
            text: "Funziona solo il percorso cifrato di riserva",
        },
        Case {
            name: "(e) nothing allowed",
            rules: vec![
                "meta l4proto udp counter drop".to_owned(),
                format!("tcp dport {{ {ice_tcp_port}, {TURN_PORT}, {TURNS_PORT}, {} }} counter drop", TURNS_PORT + 1),
            ],
            verdict: "none",
            flags: "U0-T0-R0",
            text: "La rete non permette la videochiamata",
        },
    ]
}

/// The visible text of the check's section and of the note by the join button.
async fn lobby_text(b: &Browser) -> Result<(String, String)> {
    let v: Value = b
        .eval(
            "({ result: document.getElementById('netcheck-result').innerText, \
                note: document.getElementById('join-note').hidden ? '' : document.getElementById('join-note').innerText })",
        )
        .await?;
    Ok((v["result"].as_str().unwrap_or_default().to_owned(), v["note"].as_str().unwrap_or_default().to_owned()))
}

/// `classify` (pure) on results no loopback network gives: slow round trips and losses.
async fn classify_cases(b: &Browser) -> Result<()> {
    let v: Value = b
        .eval_async(
            "import('/web/room/netcheck.js').then(m => [\
               m.classify({ udp: { ok: true, rtt: 450.4 }, tcp: { ok: true, rtt: 20 }, relay: { ok: true, rtt: 30 } }),\
               m.classify({ udp: { ok: false }, tcp: { ok: false, available: false }, relay: { ok: true, rtt: 80, loss: 0.12 } }),\
               m.classify({ udp: { ok: false }, tcp: { ok: true, rtt: 40 }, relay: { ok: false, available: false } }),\
               m.classify({})])",
        )
        .await?;
    let got: Vec<(String, bool, String)> = v
        .as_array()
        .ok_or_else(|| err(format!("classify gave {v}")))?
        .iter()
        .map(|o| {
            (
                o["verdict"].as_str().unwrap_or("?").to_owned(),
                o["slow"] == true,
                o["code"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect();
    let want = [
        ("ok", true, "U1-T1-R1-450"),
        ("relay", true, "U0-Tx-R1-80-L12"),
        ("fallback", false, "U0-T1-Rx-40"),
        ("none", false, "U0-T0-R0"),
    ];
    for (g, w) in got.iter().zip(want.iter()) {
        if (g.0.as_str(), g.1, g.2.as_str()) != *w {
            return Err(err(format!("classify: got {got:?}, want {want:?}")));
        }
    }
    Ok(())
}

pub async fn network_check(ctx: &mut Ctx) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (coturn, server) = reachable_server(dir.path()).await?;
    let url = server.join_url(ROOM, "carla", "participant");
    ctx.server = Some(server);
    let outcome = async {
        let index = ctx.open_with("citizen", &url, &extra()).await?;
        classify_cases(&ctx.browsers[index]).await?;
        for case in cases() {
            println!("  {}", case.name);
            let fw = firewall(&case.rules)?;
            let b = &ctx.browsers[index];
            b.goto(&url).await?;
            b.wait_for("window.sportello && window.sportello.netcheck !== null", CHECK_TIMEOUT)
                .await
                .map_err(|e| err(format!("{}: no verdict: {e}", case.name)))?;
            let check: Value = b.eval("window.sportello.netcheck").await?;
            let code = check["code"].as_str().unwrap_or_default().to_owned();
            println!("    verdict {} code {code} results {}", check["verdict"], check["results"]);
            if check["verdict"] != case.verdict || !code.starts_with(case.flags) {
                return Err(err(format!(
                    "{}: window.sportello.netcheck is {check}, expected verdict {} and a code starting {}",
                    case.name, case.verdict, case.flags
                )));
            }
            let (result, note) = lobby_text(b).await?;
            if !result.contains(case.text) || !result.contains(&format!("Codice tecnico da comunicare all'ufficio: {code}")) {
                return Err(err(format!("{}: the lobby says {result:?}, expected «{}…» and the code {code}", case.name, case.text)));
            }
            let described: Option<String> =
                b.eval("document.getElementById('join-btn').getAttribute('aria-describedby')").await?;
            let enabled: bool = b.eval("!document.getElementById('join-btn').disabled").await?;
            if case.verdict == "none" {
                // What to do, in words; the join button says why entering will probably not work.
                for advice in ["un'altra rete", "hotspot", "VPN", "127.0.0.1 sulla porta 443", "email di conferma"] {
                    if !result.contains(advice) {
                        return Err(err(format!("{}: no «{advice}» in what the citizen can do: {result:?}", case.name)));
                    }
                }
                if described.as_deref() != Some("join-note") || !note.contains("non permette la videochiamata") || !enabled {
                    return Err(err(format!(
                        "{}: the join button (enabled {enabled}, aria-describedby {described:?}) is not explained: {note:?}",
                        case.name
                    )));
                }
            } else if described.is_some() || !note.is_empty() {
                return Err(err(format!("{}: a warning by the join button: {note:?}", case.name)));
            }
            if case.verdict == "ok" || case.verdict == "none" {
                assert_accessible(b, &format!("the lobby, network check «{}»", case.verdict)).await?;
            }
            if case.verdict == "none" {
                // English second: the same verdict, advice and note, re-said on the switch.
                b.click("#lang-switch").await?;
                let (result, note) = lobby_text(b).await?;
                b.click("#lang-switch").await?;
                if !result.contains("This network does not allow the video call")
                    || !result.contains(&format!("Technical code to give the office: {code}"))
                    || !note.contains("does not allow the video call")
                {
                    return Err(err(format!("{}: in English the lobby says {result:?} and {note:?}", case.name)));
                }
            }
            if case.verdict == "relay" {
                let policy: String = b.eval("window.sportello.ladder.policy").await?;
                if policy != "relay" {
                    return Err(err(format!("{}: the room would start on the ladder's {policy} step", case.name)));
                }
                b.click("#join-btn").await?;
                b.wait_for("window.sportello.state === 'in-room'", JOIN_TIMEOUT).await?;
                b.wait_for(
                    "window.sportello.paths().then(p => p.publish && p.publish.local.type === 'relay')",
                    JOIN_TIMEOUT,
                )
                .await
                .map_err(|e| err(format!("{}: no relayed publish path: {e}", case.name)))?;
                // Alone in the room the citizen receives nothing, so the subscribe connection may
                // never connect: its policy tells that it would go through the relay too.
                let policies: Vec<Option<String>> = b
                    .eval("['publish', 'subscribe'].map(k => window.sportello.pcs[k]?.getConfiguration().iceTransportPolicy ?? null)")
                    .await?;
                if policies.iter().any(|p| p.as_deref() != Some("relay")) {
                    return Err(err(format!("{}: the room's connections have ICE policies {policies:?}", case.name)));
                }
                let (publish, subscribe) = room_paths(b).await?;
                if publish != "relay-tls" || !(subscribe == "relay-tls" || subscribe == "none") {
                    return Err(err(format!(
                        "{}: publishes over {publish} and receives over {subscribe}, expected relay-tls",
                        case.name
                    )));
                }
                println!("    entered through the relay over TLS (publish {publish}, subscribe {subscribe})");
            }
            if let Some(fw) = &fw {
                let dropped = fw.dropped().map_err(|e| err(e.to_string()))?;
                if dropped == 0 {
                    return Err(err(format!("{}: the rules dropped nothing: the case was not played", case.name)));
                }
            }
            drop(fw);
        }
        Ok(())
    }
    .await;
    stop_coturn(coturn, outcome).await
}
