//! Council sessions: the session, its agenda and members, its log, and votes — open votes by name,
//! secret ballots as "who voted" + "how many per choice", never linked (see `0003_council.sql`).

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::rows::{new_id, new_sortable_id};
use crate::{Backend, Result, Store, StoreError, is_foreign_key_violation, is_unique_violation};

/// Which body meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CouncilBody {
    Consiglio,
    Giunta,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CouncilStatus {
    Scheduled,
    Live,
    Ended,
}

text_enum!(CouncilBody { Consiglio => "consiglio", Giunta => "giunta" });
text_enum!(CouncilStatus { Scheduled => "scheduled", Live => "live", Ended => "ended" });

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCouncilSession {
    pub title: String,
    pub body: CouncilBody,
    pub scheduled_at: i64,
    pub chair_id: String,
    /// `majority`, `one_third`, `at_least:N` (checked by the caller with `domain::council::Quorum`).
    pub quorum: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CouncilSession {
    pub id: String,
    pub title: String,
    pub body: CouncilBody,
    pub scheduled_at: i64,
    pub chair_id: String,
    pub status: CouncilStatus,
    pub quorum: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CouncilItem {
    pub id: String,
    pub position: i64,
    pub title: String,
}

/// One line of the session's log (`domain::council::Event` flattened: kind, user, subject).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouncilEvent {
    pub at: i64,
    pub kind: String,
    pub user_id: Option<String>,
    /// The item or vote the event is about.
    pub subject: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCouncilVote {
    pub id: String,
    pub session_id: String,
    pub item_id: String,
    pub secret: bool,
    pub opened_at: i64,
    pub eligible: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub favourable: i64,
    pub contrary: i64,
    pub abstained: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouncilVote {
    pub id: String,
    pub item_id: String,
    pub secret: bool,
    pub opened_at: i64,
    pub closed_at: Option<i64>,
    pub eligible: Vec<String>,
    /// Who voted, sorted by id.
    pub voters: Vec<String>,
    /// Open votes: (user, choice) sorted by user. Always empty for a secret ballot.
    pub by_name: Vec<(String, String)>,
    /// Set when closed.
    pub counts: Option<Counts>,
    pub outcome: Option<String>,
}

const CHOICES: [&str; 3] = ["favourable", "contrary", "abstained"];
const SESSION_COLS: &str = "id, title, body, scheduled_at, chair_id, status, quorum, created_at";

fn text_enum<T: FromStr<Err = String>>(row: &AnyRow, column: &'static str) -> Result<T> {
    let text: String = row.try_get(column)?;
    text.parse().map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

fn session(row: &AnyRow) -> Result<CouncilSession> {
    Ok(CouncilSession {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        body: text_enum(row, "body")?,
        scheduled_at: row.try_get("scheduled_at")?,
        chair_id: row.try_get("chair_id")?,
        status: text_enum(row, "status")?,
        quorum: row.try_get("quorum")?,
        created_at: row.try_get("created_at")?,
    })
}

fn fk(e: sqlx::Error) -> StoreError {
    if is_foreign_key_violation(&e) { StoreError::NotFound } else { e.into() }
}

impl Store {
    /// Creates a session in status `scheduled`; the chair is its first member. `NotFound` if the
    /// chair is not a user.
    pub async fn create_council_session(&self, new: &NewCouncilSession, now: i64) -> Result<CouncilSession> {
        let id = &new_id();
        self.retrying("create_council_session", || async move {
            let mut tx = self.begin().await?;
            sqlx::query(
                "INSERT INTO council_sessions (id, title, body, scheduled_at, chair_id, status, quorum, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(id)
            .bind(&new.title)
            .bind(new.body.as_str())
            .bind(new.scheduled_at)
            .bind(&new.chair_id)
            .bind(CouncilStatus::Scheduled.as_str())
            .bind(&new.quorum)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(fk)?;
            sqlx::query("INSERT INTO council_members (session_id, user_id) VALUES ($1, $2)")
                .bind(id)
                .bind(&new.chair_id)
                .execute(&mut *tx)
                .await
                .map_err(fk)?;
            tx.commit().await?;
            Ok(())
        })
        .await?;
        self.council_session(id).await?.ok_or(StoreError::NotFound)
    }

    pub async fn council_session(&self, id: &str) -> Result<Option<CouncilSession>> {
        let sql = format!("SELECT {SESSION_COLS} FROM council_sessions WHERE id = $1");
        sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?.as_ref().map(session).transpose()
    }

    /// All sessions, latest first.
    pub async fn council_sessions(&self) -> Result<Vec<CouncilSession>> {
        let sql = format!("SELECT {SESSION_COLS} FROM council_sessions ORDER BY scheduled_at DESC, id");
        sqlx::query(&sql).fetch_all(&self.pool).await?.iter().map(session).collect()
    }

    /// Title, body, time, chair and quorum. The new chair becomes a member. `NotFound` if absent.
    pub async fn update_council_session(&self, id: &str, update: &NewCouncilSession) -> Result<CouncilSession> {
        self.retrying("update_council_session", || async move {
            let mut tx = self.begin().await?;
            let changed = sqlx::query(
                "UPDATE council_sessions SET title = $1, body = $2, scheduled_at = $3, chair_id = $4, quorum = $5 \
                 WHERE id = $6",
            )
            .bind(&update.title)
            .bind(update.body.as_str())
            .bind(update.scheduled_at)
            .bind(&update.chair_id)
            .bind(&update.quorum)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(fk)?
            .rows_affected();
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            insert_member(&mut tx, id, &update.chair_id).await?;
            tx.commit().await?;
            Ok(())
        })
        .await?;
        self.council_session(id).await?.ok_or(StoreError::NotFound)
    }

    pub async fn set_council_status(&self, id: &str, status: CouncilStatus) -> Result<()> {
        let changed = self
            .retrying("set_council_status", || async move {
                let mut tx = self.begin().await?;
                let changed = sqlx::query("UPDATE council_sessions SET status = $1 WHERE id = $2")
                    .bind(status.as_str())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok(changed)
            })
            .await?;
        if changed == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// Replaces the agenda with `titles`, in order. Items keep their id when `Some(id)` names one
    /// of this session's items (votes refer to them); others are removed with their votes.
    pub async fn set_council_items(
        &self,
        session_id: &str,
        items: &[(Option<String>, String)],
    ) -> Result<Vec<CouncilItem>> {
        let fresh: Vec<String> = items.iter().map(|_| new_id()).collect();
        let fresh = &fresh;
        self.retrying("set_council_items", || async move {
            let mut tx = self.begin().await?;
            let existing: Vec<String> = sqlx::query("SELECT id FROM council_items WHERE session_id = $1")
                .bind(session_id)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.try_get("id"))
                .collect::<std::result::Result<_, _>>()?;
            let keep: Vec<&str> = items
                .iter()
                .filter_map(|(id, _)| id.as_deref())
                .filter(|id| existing.iter().any(|e| e == id))
                .collect();
            for old in existing.iter().filter(|e| !keep.contains(&e.as_str())) {
                sqlx::query("DELETE FROM council_items WHERE id = $1").bind(old).execute(&mut *tx).await?;
            }
            for (position, ((id, title), fresh)) in items.iter().zip(fresh).enumerate() {
                let position = position as i64;
                match id.as_deref().filter(|id| keep.contains(id)) {
                    Some(id) => {
                        sqlx::query("UPDATE council_items SET position = $1, title = $2 WHERE id = $3")
                            .bind(position)
                            .bind(title)
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    None => {
                        sqlx::query(
                            "INSERT INTO council_items (id, session_id, position, title) VALUES ($1, $2, $3, $4)",
                        )
                        .bind(fresh)
                        .bind(session_id)
                        .bind(position)
                        .bind(title)
                        .execute(&mut *tx)
                        .await
                        .map_err(fk)?;
                    }
                }
            }
            tx.commit().await?;
            Ok(())
        })
        .await?;
        self.council_items(session_id).await
    }

    pub async fn council_items(&self, session_id: &str) -> Result<Vec<CouncilItem>> {
        let rows = sqlx::query("SELECT id, position, title FROM council_items WHERE session_id = $1 ORDER BY position")
            .bind(session_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(CouncilItem { id: r.try_get("id")?, position: r.try_get("position")?, title: r.try_get("title")? })
            })
            .collect()
    }

    /// Replaces the members (the chair always stays one). `NotFound` if a user does not exist.
    pub async fn set_council_members(&self, session_id: &str, user_ids: &[String]) -> Result<()> {
        self.retrying("set_council_members", || async move {
            let mut tx = self.begin().await?;
            let chair: String = sqlx::query("SELECT chair_id FROM council_sessions WHERE id = $1")
                .bind(session_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?
                .try_get("chair_id")?;
            sqlx::query("DELETE FROM council_members WHERE session_id = $1").bind(session_id).execute(&mut *tx).await?;
            for user in user_ids.iter().chain(std::iter::once(&chair)) {
                insert_member(&mut tx, session_id, user).await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Member user ids, sorted.
    pub async fn council_members(&self, session_id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT user_id FROM council_members WHERE session_id = $1 ORDER BY user_id")
            .bind(session_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| r.try_get("user_id")).collect::<std::result::Result<_, _>>()?)
    }

    pub async fn add_council_event(&self, session_id: &str, event: &CouncilEvent) -> Result<()> {
        let id = &new_sortable_id();
        self.retrying("add_council_event", || async move {
            let mut tx = self.begin().await?;
            sqlx::query(
                "INSERT INTO council_events (id, session_id, at, kind, user_id, subject) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(session_id)
            .bind(event.at)
            .bind(&event.kind)
            .bind(event.user_id.as_deref())
            .bind(event.subject.as_deref())
            .execute(&mut *tx)
            .await
            .map_err(fk)?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// The log in order.
    pub async fn council_events(&self, session_id: &str) -> Result<Vec<CouncilEvent>> {
        let rows =
            sqlx::query("SELECT at, kind, user_id, subject FROM council_events WHERE session_id = $1 ORDER BY at, id")
                .bind(session_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(CouncilEvent {
                    at: r.try_get("at")?,
                    kind: r.try_get("kind")?,
                    user_id: r.try_get("user_id")?,
                    subject: r.try_get("subject")?,
                })
            })
            .collect()
    }

    /// Opens a vote; a secret ballot gets its three tally rows at zero now (see the migration).
    pub async fn open_council_vote(&self, new: &NewCouncilVote) -> Result<()> {
        let eligible = join_ids(&new.eligible)?;
        let eligible = &eligible;
        self.retrying("open_council_vote", || async move {
            let mut tx = self.begin().await?;
            sqlx::query(
                "INSERT INTO council_votes (id, session_id, item_id, secret, opened_at, eligible) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&new.id)
            .bind(&new.session_id)
            .bind(&new.item_id)
            .bind(i64::from(new.secret))
            .bind(new.opened_at)
            .bind(eligible)
            .execute(&mut *tx)
            .await
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("vote") } else { fk(e) })?;
            if new.secret {
                for choice in CHOICES {
                    sqlx::query("INSERT INTO ballot_tally (vote_id, choice, count) VALUES ($1, $2, 0)")
                        .bind(&new.id)
                        .bind(choice)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// An open vote's choice, by name. `Conflict("ballot")` for a second vote.
    pub async fn record_open_ballot(&self, vote_id: &str, user_id: &str, choice: &str) -> Result<()> {
        check_choice(choice)?;
        self.retrying("record_open_ballot", || async move {
            let mut tx = self.begin().await?;
            sqlx::query("INSERT INTO council_open_ballots (vote_id, user_id, choice) VALUES ($1, $2, $3)")
                .bind(vote_id)
                .bind(user_id)
                .bind(choice)
                .execute(&mut *tx)
                .await
                .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("ballot") } else { fk(e) })?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// A secret ballot, in one transaction: the voter joins `ballot_voters`, the choice is added to
    /// `ballot_tally`. Every tally row of the vote is rewritten (+1 for the choice, +0 for the
    /// others) so that no row records which one this ballot touched. The choice is a bound
    /// parameter: the SQL text (which sqlx may log) is the same whatever the choice.
    /// `Conflict("ballot")` for a second vote (nothing is counted then).
    pub async fn record_secret_ballot(&self, vote_id: &str, user_id: &str, choice: &str) -> Result<()> {
        check_choice(choice)?;
        self.retrying("record_secret_ballot", || async move {
            let mut tx = self.begin().await?;
            sqlx::query("INSERT INTO ballot_voters (vote_id, user_id) VALUES ($1, $2)")
                .bind(vote_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("ballot") } else { fk(e) })?;
            let updated = sqlx::query(
                "UPDATE ballot_tally SET count = count + CASE WHEN choice = $1 THEN 1 ELSE 0 END WHERE vote_id = $2",
            )
            .bind(choice)
            .bind(vote_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated != CHOICES.len() as u64 {
                // Not a secret ballot that was opened here: count nothing.
                return Err(StoreError::Invalid("secret ballot not open"));
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Closes a vote with its counts and outcome. For a secret ballot the counts stored are
    /// `ballot_tally`'s (the database's own count), and the physical history is compacted.
    pub async fn close_council_vote(
        &self,
        vote_id: &str,
        closed_at: i64,
        counts: Counts,
        outcome: &str,
    ) -> Result<Counts> {
        let counts = self
            .retrying("close_council_vote", || async move {
                let mut tx = self.begin().await?;
                let row = sqlx::query("SELECT secret FROM council_votes WHERE id = $1")
                    .bind(vote_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                let secret = row.try_get::<i64, _>("secret")? != 0;
                let counts = if secret { tally(&mut tx, vote_id).await? } else { counts };
                sqlx::query(
                    "UPDATE council_votes SET closed_at = $1, favourable = $2, contrary = $3, abstained = $4, outcome = $5 \
                     WHERE id = $6",
                )
                .bind(closed_at)
                .bind(counts.favourable)
                .bind(counts.contrary)
                .bind(counts.abstained)
                .bind(outcome)
                .bind(vote_id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok((counts, secret))
            })
            .await?;
        if counts.1 {
            self.compact_ballots().await;
        }
        Ok(counts.0)
    }

    /// Erases what the engines keep of earlier row versions, so that the sequence of tally values
    /// (which, next to the order of voters, would give each vote away) cannot be read back from the
    /// files: SQLite's WAL holds every committed page image until a checkpoint; PostgreSQL keeps
    /// dead tuples until VACUUM (FULL rewrites the table into a new file).
    /// Best effort: a failure is logged, the vote stays closed.
    async fn compact_ballots(&self) {
        let statements: &[&str] = match self.backend {
            Backend::Sqlite => &["PRAGMA wal_checkpoint(TRUNCATE)"],
            Backend::Postgres => &["VACUUM FULL ballot_tally", "VACUUM FULL ballot_voters"],
        };
        for sql in statements {
            if let Err(error) = sqlx::query(sql).execute(&self.pool).await {
                tracing::warn!(%error, sql, "could not compact the secret ballot tables");
            }
        }
    }

    /// A session's votes, oldest first, with voters and (open votes only) choices by name.
    pub async fn council_votes(&self, session_id: &str) -> Result<Vec<CouncilVote>> {
        let rows = sqlx::query(
            "SELECT id, item_id, secret, opened_at, closed_at, eligible, favourable, contrary, abstained, outcome \
             FROM council_votes WHERE session_id = $1 ORDER BY opened_at, id",
        )
        .bind(session_id)
        .fetch_all(&self.pool)
        .await?;
        let mut votes = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: String = r.try_get("id")?;
            let secret = r.try_get::<i64, _>("secret")? != 0;
            let favourable: Option<i64> = r.try_get("favourable")?;
            let counts = match favourable {
                Some(favourable) => Some(Counts {
                    favourable,
                    contrary: r.try_get::<Option<i64>, _>("contrary")?.unwrap_or(0),
                    abstained: r.try_get::<Option<i64>, _>("abstained")?.unwrap_or(0),
                }),
                None => None,
            };
            let (voters, by_name) = if secret {
                let voters = sqlx::query("SELECT user_id FROM ballot_voters WHERE vote_id = $1 ORDER BY user_id")
                    .bind(&id)
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(|r| r.try_get("user_id"))
                    .collect::<std::result::Result<Vec<String>, _>>()?;
                (voters, Vec::new())
            } else {
                let by_name =
                    sqlx::query("SELECT user_id, choice FROM council_open_ballots WHERE vote_id = $1 ORDER BY user_id")
                        .bind(&id)
                        .fetch_all(&self.pool)
                        .await?
                        .iter()
                        .map(|r| Ok((r.try_get("user_id")?, r.try_get("choice")?)))
                        .collect::<Result<Vec<(String, String)>>>()?;
                (by_name.iter().map(|(u, _)| u.clone()).collect(), by_name)
            };
            let eligible: String = r.try_get("eligible")?;
            votes.push(CouncilVote {
                id,
                item_id: r.try_get("item_id")?,
                secret,
                opened_at: r.try_get("opened_at")?,
                closed_at: r.try_get("closed_at")?,
                eligible: split_ids(&eligible),
                voters,
                by_name,
                counts,
                outcome: r.try_get("outcome")?,
            });
        }
        Ok(votes)
    }
}

async fn insert_member(tx: &mut sqlx::Transaction<'static, sqlx::Any>, session_id: &str, user_id: &str) -> Result<()> {
    let exists = sqlx::query("SELECT 1 AS one FROM council_members WHERE session_id = $1 AND user_id = $2")
        .bind(session_id)
        .bind(user_id)
        .fetch_optional(&mut **tx)
        .await?
        .is_some();
    if !exists {
        sqlx::query("INSERT INTO council_members (session_id, user_id) VALUES ($1, $2)")
            .bind(session_id)
            .bind(user_id)
            .execute(&mut **tx)
            .await
            .map_err(fk)?;
    }
    Ok(())
}

async fn tally(tx: &mut sqlx::Transaction<'static, sqlx::Any>, vote_id: &str) -> Result<Counts> {
    let rows = sqlx::query("SELECT choice, count FROM ballot_tally WHERE vote_id = $1")
        .bind(vote_id)
        .fetch_all(&mut **tx)
        .await?;
    let mut counts = Counts::default();
    for r in &rows {
        let n: i64 = r.try_get("count")?;
        match r.try_get::<String, _>("choice")?.as_str() {
            "favourable" => counts.favourable = n,
            "contrary" => counts.contrary = n,
            "abstained" => counts.abstained = n,
            other => return Err(StoreError::Corrupt(format!("ballot_tally.choice {other:?}"))),
        }
    }
    Ok(counts)
}

fn check_choice(choice: &str) -> Result<()> {
    if CHOICES.contains(&choice) { Ok(()) } else { Err(StoreError::Invalid("vote choice")) }
}

/// User ids are the application's base32 ids: a space-separated list needs no escaping.
fn join_ids(items: &[String]) -> Result<String> {
    if items.iter().any(|i| i.is_empty() || i.contains(char::is_whitespace)) {
        return Err(StoreError::Invalid("user id"));
    }
    Ok(items.join(" "))
}

fn split_ids(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}
