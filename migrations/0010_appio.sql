-- App IO notifications (issue 19, docs/appio.md): a citizen who asks for them, with their fiscal
-- code, gets the booking's messages in the IO app too; councillors get convocations. Email stays
-- the primary channel. Portable as 0001: TEXT ids from the application, BIGINT Unix seconds.

-- Set only when the citizen chose App IO for this booking; NULL after opting out, and blanked by
-- the retention pass once the appointment is over.
ALTER TABLE appointments ADD COLUMN appio_fiscal_code TEXT;

-- A councillor's or chair's fiscal code, set by an administrator, for council convocations.
ALTER TABLE users ADD COLUMN fiscal_code TEXT;

-- The outbox: each message is composed when its event happens and sent later by the back office's
-- delivery task, so IO being slow or down never holds up a booking. The fiscal code is kept whole
-- only while the message may still be sent; a finished row keeps its masked form (for the log),
-- blanked after 30 days, the row deleted after 90.
CREATE TABLE appio_messages (
    id                 TEXT PRIMARY KEY,                 -- sortable: the log lists in order
    appointment_id     TEXT REFERENCES appointments(id) ON DELETE CASCADE,
    council_session_id TEXT REFERENCES council_sessions(id) ON DELETE CASCADE,
    user_id            TEXT REFERENCES users(id) ON DELETE CASCADE,
    kind               TEXT NOT NULL,                    -- booked | moved | cancelled | reminder | convocation
    fiscal_code        TEXT NOT NULL,
    subject            TEXT NOT NULL,
    markdown           TEXT NOT NULL,
    due_date           BIGINT,                           -- the appointment's or session's start
    status             TEXT NOT NULL,                    -- queued | sent | refused | failed | cancelled
    attempts           BIGINT NOT NULL DEFAULT 0,
    next_attempt_at    BIGINT,                           -- NULL once finished
    last_error         TEXT,
    io_message_id      TEXT,                             -- IO's id of the message (201)
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX appio_messages_due ON appio_messages (status, next_attempt_at);
CREATE INDEX appio_messages_appointment ON appio_messages (appointment_id);
CREATE INDEX appio_messages_updated ON appio_messages (updated_at);
