-- Recordings of council sessions: the program feed remuxed (not re-encoded) to one WebM file per
-- recording, under <data_dir>/recordings/<session_id>/<file_name>. Portable as 0001: TEXT ids from
-- the application, BIGINT Unix seconds (milliseconds where named _ms).
-- A session may have several recordings (e.g. the stream was restarted). Rows and files are deleted
-- together by the retention pass once `ended_at` is older than `recording_retention`.

CREATE TABLE council_recordings (
    id          TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES council_sessions(id) ON DELETE CASCADE,
    file_name   TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    ended_at    BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    bytes       BIGINT NOT NULL,
    sha256      TEXT NOT NULL,                         -- hex, of the whole file as published
    chapters    TEXT NOT NULL,                         -- JSON [{"title","start_ms","end_ms"}], agenda items
    created_at  BIGINT NOT NULL
);
CREATE INDEX council_recordings_session ON council_recordings (session_id, started_at);
CREATE INDEX council_recordings_ended ON council_recordings (ended_at);
