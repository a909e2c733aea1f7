//! Council sessions (issue 5, the chaired session) over real HTTP and websockets: a chair and three
//! councillors; the floor and forced mutes, roll call and quorum, an open vote by name, a secret
//! ballot that leaves no voter↔choice link in the database or the logs, authorization, minutes.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};
use sportello_store::User;
use sportello_tests::council::{RestCouncil, send, state_until};
use sportello_tests::server::{Role, TestServer, WsClient};

const CHOICE_WORDS: [&str; 6] = ["favourable", "contrary", "abstained", "favorevole", "contrario", "astenuto"];

// --- every log line of this process, at every level ------------------------------------------------

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        // The binary's own filter, asked for everything.
        tracing_subscriber::fmt()
            .with_env_filter(sportello_server::logging::env_filter(Some("trace")))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init()
            .expect("the only subscriber of this test binary");
        captured
    })
}

fn log_text() -> String {
    String::from_utf8_lossy(&logs().0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

// --- a council with a chair and three councillors, created over REST ------------------------------

/// The session over REST (`http`, `id`, `items`, `chair`, `councillors`, tokens) on its own server.
struct Council {
    server: TestServer,
    rest: RestCouncil,
}

impl std::ops::Deref for Council {
    type Target = RestCouncil;
    fn deref(&self) -> &RestCouncil {
        &self.rest
    }
}

impl Council {
    async fn join(&self, user: &User) -> WsClient {
        let mut client = self.server.connect(&self.room()).await;
        client.join(self.token(user)).await;
        client
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let response = self.http.get(format!("{}{path}", self.server.url())).send().await.expect("request");
        (response.status().as_u16(), response.text().await.expect("body"))
    }
}

async fn council() -> Council {
    logs();
    let server = TestServer::start().await;
    let rest = RestCouncil::create(&server, &["Approvazione del bilancio", "Mozione sul verde pubblico"]).await;
    Council { server, rest }
}

fn pid(user: &User) -> String {
    format!("user-{}", user.id)
}

/// Skips messages until a `mute` of `participant` with `muted`.
async fn mute_until(client: &mut WsClient, participant: &str, muted: bool) {
    for _ in 0..30 {
        let mute = client.recv_until("mute").await;
        if mute["participant_id"] == participant && mute["muted"] == muted {
            return;
        }
    }
    panic!("no mute of {participant} = {muted}");
}

/// The chair and the three councillors in the room, everyone having seen everyone arrive.
async fn everyone_in(c: &Council) -> (WsClient, Vec<WsClient>) {
    let mut chair = c.join(&c.chair).await;
    let mut others = Vec::new();
    for u in &c.councillors {
        others.push(c.join(u).await);
    }
    state_until(&mut chair, "four members in the room", |s| {
        s["members"].as_array().is_some_and(|m| m.iter().filter(|m| m["in_room"] == true).count() == 4)
    })
    .await;
    (chair, others)
}

async fn roll_call(chair: &mut WsClient, others: &mut [WsClient], answering: &[usize]) -> Value {
    send(chair, json!({"type": "council.roll_call_start"})).await;
    for &i in answering {
        state_until(&mut others[i], "a roll call open", |s| s["roll_call"]["open"] == true).await;
        send(&mut others[i], json!({"type": "council.present"})).await;
    }
    let n = answering.len() + 1;
    state_until(chair, "the answers", |s| s["roll_call"]["present"].as_array().is_some_and(|p| p.len() == n)).await;
    send(chair, json!({"type": "council.roll_call_end"})).await;
    state_until(chair, "the roll call closed", |s| s["roll_call"]["open"] == false).await
}

// --- the scenarios --------------------------------------------------------------------------------

#[tokio::test]
async fn the_chair_gives_the_floor_and_only_the_speaker_may_unmute() {
    let c = council().await;
    let (mut chair, mut others) = everyone_in(&c).await;
    let anna = pid(&c.councillors[0]);

    send(&mut others[0], json!({"type": "council.request_floor"})).await;
    let state = state_until(&mut chair, "anna in the queue", |s| s["queue"] == json!([anna])).await;
    assert_eq!(state["floor"], Value::Null);
    state_until(&mut others[0], "herself in the queue", |s| s["queue"] == json!([anna])).await;
    send(&mut others[0], json!({"type": "council.request_floor"})).await;
    others[0].expect_error("already_requested").await;

    send(&mut chair, json!({"type": "council.give_floor", "participant_id": anna})).await;
    for other in &mut others[1..] {
        let (_, forced) = other.recv_until_collect("force_mute").await;
        assert_eq!(forced["source"], "microphone");
        state_until(other, "anna speaking", |s| s["floor"] == json!(anna)).await;
    }
    // Anna, now speaking, is not muted (her inbox was drained up to her queued state above).
    loop {
        let message = others[0].recv_json().await;
        assert_ne!(message["type"], "force_mute", "the speaker was muted");
        if message["type"] == "council.state" && message["floor"] == json!(anna) {
            assert_eq!(message["queue"], json!([]));
            break;
        }
    }

    // Bruno has no floor: his unmute is refused; Anna's goes through to the others.
    others[1].mute("microphone", false).await;
    let error = others[1].expect_error("floor_required").await;
    assert!(error["message"].as_str().unwrap().contains("parola"), "{error}");
    others[0].mute("microphone", false).await;
    mute_until(&mut chair, &anna, false).await;

    // A councillor cannot chair.
    for message in [
        json!({"type": "council.give_floor", "participant_id": pid(&c.councillors[1])}),
        json!({"type": "council.take_floor"}),
        json!({"type": "council.mute_all"}),
        json!({"type": "council.set_item", "item_id": c.items[0]}),
        json!({"type": "council.roll_call_start"}),
        json!({"type": "council.vote_open", "item_id": c.items[0], "secret": false}),
        json!({"type": "council.vote_close"}),
        // Nor suspend or end the public stream.
        json!({"type": "council.stream_suspend"}),
        json!({"type": "council.stream_resume"}),
        json!({"type": "council.end"}),
    ] {
        send(&mut others[1], message.clone()).await;
        others[1].expect_error("forbidden").await;
    }

    // Taking the floor back mutes Anna.
    send(&mut chair, json!({"type": "council.take_floor"})).await;
    let forced = others[0].recv_until("force_mute").await;
    assert_eq!(forced["source"], "microphone");
    others[0].mute("microphone", false).await;
    others[0].expect_error("floor_required").await;
    // The chair may always speak.
    chair.mute("microphone", false).await;
    mute_until(&mut others[2], &pid(&c.chair), false).await;
}

#[tokio::test]
async fn a_token_for_one_session_does_not_open_another_and_viewers_do_not_vote() {
    let a = council().await;
    // Another session on the same server.
    let other = a
        .http
        .post(format!("{}/api/council/sessions", a.server.url()))
        .json(&json!({"title": "Giunta", "body": "giunta", "scheduled_at": 1_900_000_000, "chair_id": a.chair.id}))
        .send()
        .await
        .expect("create")
        .json::<Value>()
        .await
        .expect("JSON");
    let b = other["session"]["id"].as_str().expect("id").to_owned();
    let mut client = a.server.connect(&format!("council-{b}")).await;
    client.send_json(&json!({"v": 1, "type": "join", "token": a.token(&a.councillors[0])})).await;
    let closed = client.expect_closed(4003).await;
    assert_eq!(closed.before[0]["code"], "wrong_room");

    // A viewer of session A (e.g. a public display) cannot ask to speak, answer or vote.
    let (mut viewer, _) = a.server.join(&a.room(), "viewer-1", Role::Viewer).await;
    for message in [json!({"type": "council.vote", "choice": "favourable"}), json!({"type": "council.present"})] {
        send(&mut viewer, message).await;
        viewer.expect_error("forbidden").await;
    }
    // A member of no session (a participant token for an identity that is not a member, e.g. one
    // removed after their link was issued) does not get in at all.
    let mut stranger = a.server.connect(&a.room()).await;
    let token = a.server.token(&a.room(), "user-nobody", Role::Participant);
    stranger.send_json(&json!({"v": 1, "type": "join", "token": token})).await;
    let closed = stranger.expect_closed(4004).await;
    assert_eq!(closed.before[0]["code"], "link_revoked");

    // Listing: the chair sees both sessions, a councillor of A only A.
    let (status, body) = a.get("/api/council/sessions").await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap().as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn roll_call_quorum_open_vote_secret_ballot_and_minutes() {
    let c = council().await;
    let (mut chair, mut others) = everyone_in(&c).await;
    let ids: Vec<String> = c.councillors.iter().map(pid).collect();

    send(&mut chair, json!({"type": "council.set_item", "item_id": c.items[0]})).await;
    state_until(&mut chair, "the first item", |s| s["current_item"] == json!(c.items[0])).await;
    // No vote without a roll call.
    send(&mut chair, json!({"type": "council.vote_open", "item_id": c.items[0], "secret": false})).await;
    chair.expect_error("roll_call_required").await;

    let state = roll_call(&mut chair, &mut others, &[0, 1, 2]).await;
    assert_eq!(
        state["quorum"],
        json!({"rule": "majority", "members": 4, "required": 3, "present": 4, "reached": true})
    );

    // Anna speaks for a little over a second.
    send(&mut chair, json!({"type": "council.give_floor", "participant_id": ids[0]})).await;
    state_until(&mut chair, "anna speaking", |s| s["floor"] == json!(ids[0])).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    send(&mut chair, json!({"type": "council.take_floor"})).await;
    state_until(&mut chair, "nobody speaking", |s| s["floor"].is_null()).await;

    // Open vote: by name.
    send(&mut chair, json!({"type": "council.vote_open", "item_id": c.items[0], "secret": false})).await;
    for (i, choice) in [(0, "favourable"), (1, "contrary"), (2, "abstained")] {
        state_until(&mut others[i], "the vote open", |s| s["vote"]["open"] == true).await;
        send(&mut others[i], json!({"type": "council.vote", "choice": choice})).await;
    }
    send(&mut others[0], json!({"type": "council.vote", "choice": "contrary"})).await;
    others[0].expect_error("already_voted").await;
    send(&mut chair, json!({"type": "council.vote", "choice": "favourable"})).await;
    let counting = state_until(&mut chair, "four votes cast", |s| s["vote"]["cast"] == 4).await;
    assert_eq!(counting["vote"]["results"], Value::Null, "no results while open");
    send(&mut chair, json!({"type": "council.vote_close"})).await;
    let closed = state_until(&mut others[2], "results", |s| s["vote"]["open"] == false).await;
    let results = &closed["vote"]["results"];
    assert_eq!(
        (&results["favourable"], &results["contrary"], &results["abstained"]),
        (&json!(2), &json!(1), &json!(1))
    );
    assert_eq!(results["outcome"], "approved");
    let by_name = results["by_name"].as_array().expect("by name");
    assert!(by_name.contains(&json!({"participant_id": ids[1], "choice": "contrary"})), "{by_name:?}");
    assert_eq!(by_name.len(), 4);

    // A roll call Carla does not answer: she may not vote.
    roll_call(&mut chair, &mut others, &[0, 1]).await;
    send(&mut chair, json!({"type": "council.vote_open", "item_id": c.items[1], "secret": false})).await;
    state_until(&mut others[2], "the vote open", |s| s["vote"]["open"] == true).await;
    send(&mut others[2], json!({"type": "council.vote", "choice": "favourable"})).await;
    others[2].expect_error("not_eligible").await;
    send(&mut chair, json!({"type": "council.vote_close"})).await;
    state_until(&mut chair, "closed", |s| s["vote"]["open"] == false).await;

    // Secret ballot: Anna favourable, Bruno contrary, Carla abstained, in this order.
    roll_call(&mut chair, &mut others, &[0, 1, 2]).await;
    send(&mut chair, json!({"type": "council.set_item", "item_id": c.items[1]})).await;
    send(&mut chair, json!({"type": "council.vote_open", "item_id": c.items[1], "secret": true})).await;
    let mut during = Vec::new();
    for (i, choice) in [(0, "favourable"), (1, "contrary"), (2, "abstained")] {
        state_until(&mut others[i], "the ballot open", |s| s["vote"]["open"] == true && s["vote"]["secret"] == true)
            .await;
        send(&mut others[i], json!({"type": "council.vote", "choice": choice})).await;
        during.push(state_until(&mut chair, "one more ballot", |s| s["vote"]["cast"] == i + 1).await);
    }
    for state in &during {
        let text = state.to_string();
        assert!(!CHOICE_WORDS.iter().any(|w| text.contains(w)), "a choice is visible during the ballot: {text}");
    }
    send(&mut chair, json!({"type": "council.vote_close"})).await;
    let closed = state_until(&mut others[0], "results", |s| s["vote"]["open"] == false).await;
    let results = &closed["vote"]["results"];
    assert_eq!(
        (&results["favourable"], &results["contrary"], &results["abstained"]),
        (&json!(1), &json!(1), &json!(1))
    );
    assert_eq!(results["by_name"], json!([]));
    assert_eq!(results["outcome"], "rejected");
    let secret_vote = closed["vote"]["id"].as_str().expect("vote id").to_owned();

    // --- the database, every table, once the persistence task has written the close ---------------
    let db = c.server.data_dir().join("sportello.db");
    let mut dump = String::new();
    for _ in 0..50 {
        dump = sqlite_dump(&db);
        if dump
            .lines()
            .any(|l| l.contains("INSERT INTO council_votes") && l.contains(&secret_vote) && l.contains("'rejected'"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows: Vec<&str> = dump.lines().filter(|l| l.starts_with("INSERT INTO")).collect();
    let voter_ids: Vec<&str> = c.councillors.iter().map(|u| u.id.as_str()).collect();
    let voters: Vec<&&str> = rows.iter().filter(|l| l.starts_with("INSERT INTO ballot_voters")).collect();
    assert_eq!(voters.len(), 3, "{voters:?}");
    let tally: Vec<&&str> = rows.iter().filter(|l| l.starts_with("INSERT INTO ballot_tally")).collect();
    assert_eq!(tally.len(), 3, "{tally:?}");
    for row in &tally {
        assert!(row.ends_with(",1);"), "every choice counted once: {row}");
        assert!(!voter_ids.iter().any(|v| row.contains(v)), "a tally row names a voter: {row}");
    }
    for row in &voters {
        assert!(!CHOICE_WORDS.iter().any(|w| row.contains(w)), "a voter row holds a choice: {row}");
    }
    // No row anywhere holds a secret voter next to a choice, except the open votes' rows by name.
    for row in &rows {
        let names_voter = voter_ids.iter().any(|v| row.contains(v));
        let has_choice = CHOICE_WORDS.iter().any(|w| row.contains(w));
        if names_voter && has_choice {
            assert!(row.starts_with("INSERT INTO council_open_ballots"), "voter and choice together: {row}");
            assert!(!row.contains(&secret_vote), "the secret ballot in the open ballots: {row}");
        }
        if row.contains(&secret_vote) {
            assert!(!(names_voter && has_choice), "{row}");
        }
    }
    let open_ballots = rows.iter().filter(|l| l.starts_with("INSERT INTO council_open_ballots")).count();
    assert_eq!(open_ballots, 4, "the open vote's four ballots (the refused ones stored nothing)");

    // --- the logs (every level): no choice at all -------------------------------------------------
    let logs = log_text();
    assert!(logs.contains("vote closed"), "the capture works");
    for line in logs.lines() {
        let lower = line.to_lowercase();
        if line.contains("sqlx::query") {
            // SQL text only (schema, column names, `$n` placeholders): never a value.
            for word in CHOICE_WORDS {
                assert!(!lower.contains(&format!("'{word}'")), "a choice literal in SQL: {line}");
            }
            continue;
        }
        assert!(!CHOICE_WORDS.iter().any(|w| lower.contains(w)), "a log line mentions a choice: {line}");
        for voter in &voter_ids {
            assert!(!(line.contains(voter) && line.contains(&secret_vote)), "a voter next to the ballot: {line}");
        }
        // Not even the order of the ballots (no line per secret ballot).
        assert!(!(line.contains(&secret_vote) && line.contains("cast")), "a line per secret ballot: {line}");
    }

    // --- the minutes ------------------------------------------------------------------------------
    let (status, body) = c.get(&format!("/api/council/sessions/{}/minutes", c.id)).await;
    assert_eq!(status, 200, "{body}");
    let minutes: Value = serde_json::from_str(&body).expect("JSON");
    let m = &minutes["minutes"];
    let attendance = m["attendance"].as_array().expect("attendance");
    assert_eq!(attendance.len(), 4);
    assert!(attendance.iter().all(|a| a["absent"] == false && !a["arrivals"].as_array().unwrap().is_empty()));
    assert_eq!(m["roll_calls"].as_array().unwrap().len(), 3);
    let carla = attendance.iter().find(|a| a["name"] == "carla").expect("carla");
    assert_eq!(carla["roll_calls_present"], 2);
    let items = m["items"].as_array().expect("items");
    assert!(items[0]["started_at"].is_i64() && items[0]["ended_at"].is_i64(), "{}", items[0]);
    assert!(items[1]["started_at"].is_i64());
    let speakers = m["speakers"].as_array().expect("speakers");
    assert_eq!(speakers.len(), 1);
    assert_eq!(speakers[0]["name"], "anna");
    let seconds = speakers[0]["seconds"].as_i64().unwrap();
    assert!((1..=4).contains(&seconds), "anna spoke about 2 s, minutes say {seconds}");
    assert_eq!(items[0]["speaking"][0]["seconds"], seconds);
    let votes = m["votes"].as_array().expect("votes");
    assert_eq!(votes.len(), 3);
    assert_eq!(votes[0]["secret"], false);
    assert_eq!(votes[0]["by_name"].as_array().unwrap().len(), 4);
    assert_eq!(votes[0]["tally"], json!({"favourable": 2, "contrary": 1, "abstained": 1}));
    assert_eq!(votes[2]["secret"], true);
    assert_eq!(votes[2]["by_name"], json!([]));
    assert_eq!(votes[2]["voters"].as_array().unwrap().len(), 3);
    assert_eq!(votes[2]["tally"], json!({"favourable": 1, "contrary": 1, "abstained": 1}));

    // The printable page.
    let (status, page) = c.get(&format!("/consiglio/{}/verbale", c.id)).await;
    assert_eq!(status, 200);
    assert!(page.contains("Bozza di verbale") && page.contains("scrutinio segreto") && page.contains("anna"));
    // The municipality's document: its name in the title and above the heading.
    assert!(page.contains("<p class=\"sub\">Comune</p><h1>Bozza di verbale</h1>"), "{page}");
}

/// Every table of the SQLite file as SQL (`sqlite3 .dump`), read while the server runs (WAL mode).
fn sqlite_dump(db: &std::path::Path) -> String {
    let output = std::process::Command::new("sqlite3")
        .arg(db)
        .arg(".dump")
        .output()
        .expect("the sqlite3 command-line tool (apt-get install sqlite3)");
    assert!(output.status.success(), "sqlite3: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The council room drives what the public sees: `/api/live` says "scheduled" until a chair is in
/// the room, then follows the floor and the item, shows the suspension for the current item only,
/// and "ended" after `council.end` (also stored).
#[tokio::test]
async fn the_room_drives_the_public_state() {
    async fn live(c: &Council) -> Value {
        let (status, body) = c.get(&format!("/api/live/{}", c.id)).await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("JSON")
    }
    let c = council().await;
    assert_eq!(live(&c).await["status"], "scheduled");
    let (mut chair, mut others) = everyone_in(&c).await;
    assert_eq!(live(&c).await["status"], "live", "a chair is in the room");

    send(&mut chair, json!({"type": "council.set_item", "item_id": c.items[0]})).await;
    state_until(&mut chair, "the first item", |s| s["current_item"] == json!(c.items[0])).await;
    send(&mut others[0], json!({"type": "council.request_floor"})).await;
    state_until(&mut chair, "anna asks", |s| !s["queue"].as_array().is_some_and(Vec::is_empty)).await;
    send(&mut chair, json!({"type": "council.give_floor", "participant_id": pid(&c.councillors[0])})).await;
    state_until(&mut chair, "anna speaks", |s| s["floor"] == json!(pid(&c.councillors[0]))).await;
    let state = live(&c).await;
    assert_eq!(state["speaker"], json!(c.councillors[0].display_name));
    assert!(state["item"].as_str().is_some_and(|t| !t.is_empty()), "{state}");

    send(&mut chair, json!({"type": "council.stream_suspend"})).await;
    state_until(&mut chair, "suspended", |s| s["stream"] == "suspended").await;
    assert_eq!(live(&c).await["status"], "suspended");
    // The suspension belongs to the item: the next one is on air again.
    send(&mut chair, json!({"type": "council.set_item", "item_id": c.items[1]})).await;
    state_until(&mut chair, "next item, live", |s| s["current_item"] == json!(c.items[1]) && s["stream"] == "live")
        .await;
    assert_eq!(live(&c).await["status"], "live");

    send(&mut chair, json!({"type": "council.end"})).await;
    state_until(&mut chair, "ended", |s| s["stream"] == "ended").await;
    assert_eq!(live(&c).await["status"], "ended");
    // The stored status follows (the persistence task writes it).
    let mut stored = None;
    for _ in 0..50 {
        stored = c.server.server.store.council_session(&c.id).await.expect("row");
        if stored.as_ref().is_some_and(|s| s.status == sportello_store::CouncilStatus::Ended) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(stored.map(|s| s.status), Some(sportello_store::CouncilStatus::Ended));

    // Everyone leaves; the chair coming back does not put an ended session on air again.
    drop(chair);
    drop(others);
    let mut closed = false;
    for _ in 0..100 {
        if c.server.server.rooms.is_empty() {
            closed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(closed, "the room closes when everyone has left");
    let mut chair = c.join(&c.chair).await;
    state_until(&mut chair, "still ended", |s| s["stream"] == "ended").await;
    assert_eq!(live(&c).await["status"], "ended");
}

/// Everyone leaves (the room closes) and comes back: the session carries on from what was stored —
/// the item under discussion, the last vote's result — and nothing already stored is written twice.
#[tokio::test]
async fn the_session_carries_on_after_everyone_left() {
    let c = council().await;
    let (mut chair, mut others) = everyone_in(&c).await;
    send(&mut chair, json!({"type": "council.set_item", "item_id": c.items[1]})).await;
    state_until(&mut chair, "the second item", |s| s["current_item"] == json!(c.items[1])).await;
    roll_call(&mut chair, &mut others, &[0, 1, 2]).await;
    send(&mut chair, json!({"type": "council.vote_open", "item_id": c.items[1], "secret": false})).await;
    for other in others.iter_mut() {
        send(other, json!({"type": "council.vote", "choice": "favourable"})).await;
    }
    state_until(&mut chair, "three ballots", |s| s["vote"]["cast"] == 3).await;
    send(&mut chair, json!({"type": "council.vote_close"})).await;
    state_until(&mut chair, "closed", |s| s["vote"]["open"] == false).await;

    drop(chair);
    drop(others);
    for _ in 0..100 {
        if c.server.server.rooms.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(c.server.server.rooms.is_empty(), "the room closed");
    // The four departures are written by the persistence task, maybe just after the room closed.
    let mut events_before = 0;
    for _ in 0..50 {
        let events = c.server.server.store.council_events(&c.id).await.expect("events");
        events_before = events.len();
        if events.iter().filter(|e| e.kind == "departed").count() == 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let mut chair = c.join(&c.chair).await;
    let state = state_until(&mut chair, "resumed", |s| s["current_item"] == json!(c.items[1])).await;
    assert_eq!(state["vote"]["results"]["favourable"], 3, "the last vote's result is still shown: {state}");
    assert_eq!(state["floor"], Value::Null);
    // The stored log grows by the chair's arrival only (nothing stored is written again).
    let mut events = Vec::new();
    for _ in 0..50 {
        events = c.server.server.store.council_events(&c.id).await.expect("events");
        if events.len() > events_before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(events.len(), events_before + 1, "{:?}", &events[events_before.min(events.len())..]);
    assert_eq!(events.last().map(|e| e.kind.as_str()), Some("arrived"));
    // A vote needs a new roll call after the break.
    send(&mut chair, json!({"type": "council.vote_open", "item_id": c.items[1], "secret": false})).await;
    chair.expect_error("roll_call_required").await;
}
