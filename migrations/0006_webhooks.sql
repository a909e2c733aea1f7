-- Signed webhooks (issue 14), a transactional outbox: the change that makes an event (a booking, a
-- move, a closed vote) writes the event and one delivery per interested endpoint in the same
-- transaction; the back office's delivery task sends them later, so a slow or absent receiver never
-- holds up a booking or a room. Portable as 0001: TEXT ids from the application, BIGINT Unix
-- seconds, booleans as BIGINT 0/1, lists as JSON TEXT.

-- Where events go, set by an administrator.
CREATE TABLE webhook_endpoints (
    id          TEXT PRIMARY KEY,
    url         TEXT NOT NULL,                         -- http(s)://…
    description TEXT NOT NULL DEFAULT '',
    -- `whsec_<base64>` (Standard Webhooks). Kept as is: signing needs the key itself, so it cannot be
    -- hashed like the other secrets; the API shows it once, at creation.
    secret      TEXT NOT NULL,
    event_types TEXT NOT NULL DEFAULT '[]',            -- JSON list of event types; [] = every type
    enabled     BIGINT NOT NULL DEFAULT 1,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- What happened, once, whatever the number of endpoints. The id is the `webhook-id` header and
-- `data` the payload's `data`: every retry sends the same bytes.
CREATE TABLE webhook_events (
    id         TEXT PRIMARY KEY,                       -- msg_<sortable id>
    type       TEXT NOT NULL,                          -- appointment.booked, council.vote_closed, …
    data       TEXT NOT NULL,                          -- JSON object
    created_at BIGINT NOT NULL
);
CREATE INDEX webhook_events_created ON webhook_events (created_at);

-- One event for one endpoint.
CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    event_id        TEXT NOT NULL REFERENCES webhook_events(id) ON DELETE CASCADE,
    status          TEXT NOT NULL,                     -- pending | delivered | failed (gave up)
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,                            -- NULL once delivered or given up
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);

-- The delivery log: every attempt and what the receiver answered.
CREATE TABLE webhook_attempts (
    id          TEXT PRIMARY KEY,                      -- sortable: attempts list in order
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    attempt     BIGINT NOT NULL,                       -- 1, 2, …
    at          BIGINT NOT NULL,
    status_code BIGINT,                                -- NULL: no HTTP answer (refused, timeout)
    error       TEXT,                                  -- NULL when delivered
    duration_ms BIGINT NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id);
