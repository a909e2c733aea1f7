//! A council session created as its chair creates it — over REST, with a chair and three
//! councillors who can log in — and the websocket helpers the council tests share.

use serde_json::{Value, json};
use sportello_backoffice::secrets::hash_password_blocking;
use sportello_store::{NewUser, StaffRole, User};

use crate::server::{TestServer, WsClient};

/// Every staff member's password in these sessions.
pub const PASSWORD: &str = "consiglio-di-prova-2027";

/// A staff member `<name>@comune.example` with [`PASSWORD`].
pub async fn staff(server: &TestServer, name: &str, role: StaffRole) -> User {
    let store = &server.server.store;
    let new = NewUser { email: format!("{name}@comune.example"), display_name: name.to_owned(), role };
    let user = store.create_user(&new, 0).await.expect("user");
    let hash = hash_password_blocking(PASSWORD).expect("hash");
    store.set_password(&user.id, &hash, 0).await.expect("password");
    user
}

/// "Consiglio comunale", chaired by `presidente`, with councillors anna, bruno and carla, created
/// and given its join links through the API by the chair (logged in on `http`).
pub struct RestCouncil {
    pub http: reqwest::Client,
    pub id: String,
    pub items: Vec<String>,
    pub chair: User,
    pub councillors: Vec<User>,
    /// user id → join token
    pub tokens: Vec<(String, String)>,
}

impl RestCouncil {
    pub async fn create(server: &TestServer, agenda: &[&str]) -> RestCouncil {
        let chair = staff(server, "presidente", StaffRole::Chair).await;
        let mut councillors = Vec::new();
        for name in ["anna", "bruno", "carla"] {
            councillors.push(staff(server, name, StaffRole::Councillor).await);
        }
        let http = reqwest::Client::builder().cookie_store(true).build().expect("client");
        let url = server.url();
        let login = http
            .post(format!("{url}/api/auth/login"))
            .json(&json!({"email": "presidente@comune.example", "password": PASSWORD}))
            .send()
            .await
            .expect("login");
        assert_eq!(login.status(), 200);
        let created: Value = http
            .post(format!("{url}/api/council/sessions"))
            .json(&json!({
                "title": "Consiglio comunale",
                "body": "consiglio",
                "scheduled_at": sportello_backoffice::token::unix_now(),
                "chair_id": chair.id,
                "quorum": "majority",
                "members": councillors.iter().map(|u| u.id.clone()).collect::<Vec<_>>(),
                "agenda": agenda,
            }))
            .send()
            .await
            .expect("create")
            .json()
            .await
            .expect("JSON");
        let id = created["session"]["id"].as_str().unwrap_or_else(|| panic!("no session in {created}")).to_owned();
        let items = created["agenda"]
            .as_array()
            .expect("agenda")
            .iter()
            .map(|i| i["id"].as_str().expect("item id").to_owned())
            .collect();
        let links: Value = http
            .post(format!("{url}/api/council/sessions/{id}/links"))
            .send()
            .await
            .expect("links")
            .json()
            .await
            .expect("JSON");
        let tokens: Vec<(String, String)> = links
            .as_array()
            .unwrap_or_else(|| panic!("links: {links}"))
            .iter()
            .map(|l| {
                let token = l["url"].as_str().and_then(|u| u.split_once("t=")).expect("a join link").1.to_owned();
                let role = if l["user_id"] == chair.id.as_str() { "host" } else { "participant" };
                assert_eq!(l["role"], role, "{l}");
                (l["user_id"].as_str().expect("user id").to_owned(), token)
            })
            .collect();
        assert_eq!(tokens.len(), 4);
        RestCouncil { http, id, items, chair, councillors, tokens }
    }

    /// The council room's name.
    pub fn room(&self) -> String {
        format!("council-{}", self.id)
    }

    /// `user`'s join token.
    pub fn token(&self, user: &User) -> &str {
        &self.tokens.iter().find(|(u, _)| *u == user.id).expect("a link for every member").1
    }
}

/// Sends one protocol message (version 1).
pub async fn send(client: &mut WsClient, mut message: Value) {
    message["v"] = json!(1);
    client.send_json(&message).await;
}

/// Skips `council.state` messages until one satisfies `ok`.
pub async fn state_until(client: &mut WsClient, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let mut seen = Vec::new();
    for _ in 0..40 {
        let state = client.recv_until("council.state").await;
        if ok(&state) {
            return state;
        }
        seen.push(state);
    }
    panic!("no council.state with {what}: {seen:?}");
}
