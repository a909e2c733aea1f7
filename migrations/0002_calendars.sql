-- Smart-working calendars (issue 4): absences, officials' own calendars (busy times), feed tokens.
-- Portable as 0001: TEXT ids from the application, BIGINT Unix seconds, BIGINT 0/1 booleans.

-- Absences. Whole days are stored as local (Europe/Rome) midnight → midnight after the last day;
-- hourly leave (which lifts the contact obligation) with its times.
CREATE TABLE absences (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,                          -- holiday | sick | training | other
    starts_at  BIGINT NOT NULL,
    ends_at    BIGINT NOT NULL,
    all_day    BIGINT NOT NULL,                        -- 1: whole local days, 0: with times
    note       TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);
CREATE INDEX absences_user_start ON absences (user_id, starts_at);

-- An official's own calendar: a subscription URL fetched periodically, or an uploaded file.
-- The URL is a secret (it usually carries a private token): never logged, never returned whole.
CREATE TABLE calendar_sources (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind          TEXT NOT NULL,                       -- url | upload
    label         TEXT NOT NULL,
    url           TEXT,                                -- NULL for uploads
    created_at    BIGINT NOT NULL,
    last_fetch_at BIGINT,
    last_ok_at    BIGINT,
    last_error    TEXT                                 -- Italian, shown to the official; NULL after a success
);
CREATE INDEX calendar_sources_user ON calendar_sources (user_id);

-- The busy set of a source, replaced as a whole by a successful import only.
CREATE TABLE busy_intervals (
    source_id TEXT NOT NULL REFERENCES calendar_sources(id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL,
    starts_at BIGINT NOT NULL,
    ends_at   BIGINT NOT NULL
);
CREATE INDEX busy_intervals_user_start ON busy_intervals (user_id, starts_at);
CREATE INDEX busy_intervals_source ON busy_intervals (source_id);

-- Secret feed URLs. The secret is derived (HMAC with the server key of kind, subject, generation),
-- so only its hash is stored; rotating bumps the generation and replaces the row.
CREATE TABLE feed_tokens (
    token_hash TEXT PRIMARY KEY,                       -- SHA-256 hex of the secret in the URL
    kind       TEXT NOT NULL,                          -- official | office
    subject_id TEXT NOT NULL,                          -- user id or office id
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (kind, subject_id)
);
