-- Several nodes (issue 16). Portable as 0001: TEXT ids, BIGINT times. A single node on SQLite uses
-- `room_owners` and `leases` too (it owns every room, wins every lease); `nodes` stays empty there.

-- The nodes of a cluster. A node writes its own row at start (a new `epoch` each start) and
-- renews `heartbeat_at` every second; `lock_key` names the PostgreSQL session-level advisory lock
-- it holds for as long as its process lives, so a killed node is seen at once (its connection
-- closes, its lock goes). Milliseconds since the Unix epoch, from the nodes' own clocks.
CREATE TABLE nodes (
    id           TEXT PRIMARY KEY,
    lock_key     BIGINT NOT NULL UNIQUE,
    epoch        BIGINT NOT NULL,
    internal_url TEXT NOT NULL,                        -- where other nodes reach its HTTP side
    media_addr   TEXT NOT NULL,                        -- its announced UDP address
    state        TEXT NOT NULL,                        -- serving | draining | fenced | stopped
    load         BIGINT NOT NULL DEFAULT 0,            -- sessions it runs
    key_id       TEXT NOT NULL DEFAULT '',             -- which token signing key it holds (a MAC, not the key)
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);

-- Which node runs a room's actor, and the fencing token of that ownership: `epoch` grows at every
-- change of owner, and every write a room makes checks it in the write's own transaction, so an
-- owner that lost the room (hung, cut off, killed late) can no longer change what it held.
CREATE TABLE room_owners (
    room       TEXT PRIMARY KEY,
    node       TEXT NOT NULL,
    epoch      BIGINT NOT NULL,
    claimed_at BIGINT NOT NULL                         -- ms
);
CREATE INDEX room_owners_node ON room_owners (node);

-- Work that one node must do at a time: a pass (`retention`), or one item (`reminder:<id>`,
-- `calendar:<id>`). Taken while free or expired, held until `expires_at` (ms), released when done.
CREATE TABLE leases (
    name   TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
