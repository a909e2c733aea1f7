-- Council sessions (Consiglio / Giunta): the chaired meeting, its agenda, members, log and votes.
-- Portable as 0001: TEXT ids from the application, BIGINT Unix seconds, BIGINT 0/1 booleans.

CREATE TABLE council_sessions (
    id           TEXT PRIMARY KEY,
    title        TEXT NOT NULL,
    body         TEXT NOT NULL,                        -- consiglio | giunta
    scheduled_at BIGINT NOT NULL,
    chair_id     TEXT NOT NULL REFERENCES users(id),
    status       TEXT NOT NULL,                        -- scheduled | live | ended
    quorum       TEXT NOT NULL,                        -- majority | one_third | at_least:N
    created_at   BIGINT NOT NULL
);
CREATE INDEX council_sessions_scheduled ON council_sessions (scheduled_at);

-- The agenda (ordine del giorno), in `position` order.
CREATE TABLE council_items (
    id         TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES council_sessions(id) ON DELETE CASCADE,
    position   BIGINT NOT NULL,
    title      TEXT NOT NULL
);
CREATE INDEX council_items_session ON council_items (session_id, position);

-- Who sits in the session (the chair is a member too).
CREATE TABLE council_members (
    session_id TEXT NOT NULL REFERENCES council_sessions(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id),
    PRIMARY KEY (session_id, user_id)
);

-- The session's log (domain::council::Event): arrivals, departures, items, floor, roll calls, votes
-- opened and closed. Never a ballot: who voted in a secret ballot is in ballot_voters, without time.
-- `id` is sortable (events of the same second keep their order).
CREATE TABLE council_events (
    id         TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES council_sessions(id) ON DELETE CASCADE,
    at         BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    user_id    TEXT,
    subject    TEXT                                    -- item or vote id
);
CREATE INDEX council_events_session ON council_events (session_id, at, id);

-- One row per vote; counts are filled at close (open votes: from council_open_ballots; secret
-- ballots: copied from ballot_tally).
CREATE TABLE council_votes (
    id          TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES council_sessions(id) ON DELETE CASCADE,
    item_id     TEXT NOT NULL REFERENCES council_items(id) ON DELETE CASCADE,
    secret      BIGINT NOT NULL,
    opened_at   BIGINT NOT NULL,
    closed_at   BIGINT,
    eligible    TEXT NOT NULL,                         -- user ids separated by spaces, sorted
    favourable  BIGINT,
    contrary    BIGINT,
    abstained   BIGINT,
    outcome     TEXT                                   -- approved | rejected
);
CREATE INDEX council_votes_session ON council_votes (session_id, opened_at);

-- Open votes: each choice by name (that is the point of an open vote).
CREATE TABLE council_open_ballots (
    vote_id TEXT NOT NULL REFERENCES council_votes(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    choice  TEXT NOT NULL,                             -- favourable | contrary | abstained
    PRIMARY KEY (vote_id, user_id)
);

-- Secret ballots. Two tables and nothing else, written in one transaction per ballot:
--  * ballot_voters: WHO voted (the primary key is the vote once rule). No time column and no
--    surrogate id: nothing to order the voters by time and match against anything.
--  * ballot_tally: HOW MANY per choice. Its three rows exist from the opening of the vote and every
--    ballot updates all three of them (adding 0 to two), so no row carries a trace of which choice
--    the last ballot touched (PostgreSQL's xmin/ctid, SQLite's page images are alike for all three).
-- The voter and the choice are never in the same row, and no column of either table can join them.
-- What is left is the physical history of the database (old row versions before VACUUM, WAL
-- frames before a checkpoint, server statement logs with parameters): closing a secret ballot
-- compacts it away (store/src/council.rs) and docs/council.md tells IT what not to enable.
CREATE TABLE ballot_voters (
    vote_id TEXT NOT NULL REFERENCES council_votes(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    PRIMARY KEY (vote_id, user_id)
);

CREATE TABLE ballot_tally (
    vote_id TEXT NOT NULL REFERENCES council_votes(id) ON DELETE CASCADE,
    choice  TEXT NOT NULL,
    count   BIGINT NOT NULL,
    PRIMARY KEY (vote_id, choice)
);
