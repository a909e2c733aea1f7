-- Staff sessions, one row per login (issue 20, item 4): the session cookie's JWT names the row's id
-- and every staff request checks that the row still exists, so logout (the row deleted), a password
-- change and a deactivation (all the user's rows deleted) end a session at once, not when its JWT
-- expires. Portable as 0001: TEXT ids from the application, BIGINT Unix seconds.
-- Rows past `expires_at` are swept by the retention pass.

CREATE TABLE staff_sessions (
    id         TEXT PRIMARY KEY,                       -- random, 128 bits; only inside the signed cookie
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX staff_sessions_user ON staff_sessions (user_id);
CREATE INDEX staff_sessions_expires ON staff_sessions (expires_at);
