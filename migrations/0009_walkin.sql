-- The walk-in video desk (issue 18, docs/walkin.md): desk hours per office, the persisted queue,
-- calls between officials, and the attendance instants the office figures are computed from.
-- Portable as 0001: TEXT ids, BIGINT Unix seconds.

-- Seven lists (Monday first) of "HH:MM-HH:MM", as `opening_hours`; all empty = no video desk.
ALTER TABLE offices ADD COLUMN desk_hours TEXT NOT NULL DEFAULT '[[],[],[],[],[],[],[]]';

-- Attendance of an appointment: first time in the waiting room, and the end of the meeting
-- (`citizen_joined_at`, the admission, is in 0001).
ALTER TABLE appointments ADD COLUMN citizen_arrived_at BIGINT;
ALTER TABLE appointments ADD COLUMN meeting_ended_at BIGINT;

-- One citizen at an office's video desk, from queueing to the end. The queue is the `waiting`
-- rows of an office ordered by `seq` (a number taken once, at queueing: a ticket never moves back).
CREATE TABLE walkins (
    id            TEXT PRIMARY KEY,
    office_id     TEXT NOT NULL REFERENCES offices(id) ON DELETE CASCADE,
    seq           BIGINT NOT NULL,
    secret_hash   TEXT NOT NULL,                   -- SHA-256 hex of the citizen's ticket secret
    name          TEXT NOT NULL,
    email         TEXT NOT NULL DEFAULT '',
    topic         TEXT NOT NULL DEFAULT '',
    service_id    TEXT REFERENCES services(id) ON DELETE SET NULL,
    lang          TEXT NOT NULL DEFAULT 'it',
    state         TEXT NOT NULL,                   -- waiting | serving | transferring | callback | done | left | abandoned
    official_id   TEXT REFERENCES users(id) ON DELETE SET NULL,   -- who serves them (or last did)
    transfer_to   TEXT REFERENCES users(id) ON DELETE SET NULL,   -- the colleague a hand-off names
    transfer_note TEXT NOT NULL DEFAULT '',
    queued_at     BIGINT NOT NULL,
    seen_at       BIGINT NOT NULL,                 -- the citizen's page last asked (grace period)
    called_at     BIGINT,                          -- taken by an official (Prossimo, a callback)
    ended_at      BIGINT,                          -- done, left or abandoned
    updated_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX walkins_office_seq ON walkins (office_id, seq);
CREATE INDEX walkins_state ON walkins (state, office_id);
CREATE INDEX walkins_queued ON walkins (queued_at);

-- What happened to a walk-in (who, when, what): the same audit as appointments'.
CREATE TABLE walkin_events (
    id        TEXT PRIMARY KEY,
    walkin_id TEXT NOT NULL REFERENCES walkins(id) ON DELETE CASCADE,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,                       -- "citizen", "system" or "user:<id>"
    action    TEXT NOT NULL,                       -- queued | called | handed_off | accepted | callback | done | left | abandoned
    detail    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX walkin_events_walkin ON walkin_events (walkin_id, at);

-- An official calling a colleague into a room (a staff room `staff-<id>`, or the room they serve in).
CREATE TABLE staff_calls (
    id         TEXT PRIMARY KEY,
    room       TEXT NOT NULL,
    from_user  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    to_user    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    note       TEXT NOT NULL DEFAULT '',
    state      TEXT NOT NULL,                      -- ringing | answered | declined
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX staff_calls_to ON staff_calls (to_user, state);
CREATE INDEX staff_calls_room ON staff_calls (room);
