-- Restart safety (issue 14): what must survive a restart, also `kill -9`. Portable as 0001: TEXT ids,
-- BIGINT Unix seconds.

-- Who a host let into a room through its waiting room. The lobby and the room's participants live
-- in memory; this row is what survives: a `wait` token whose identity has a row here joins straight
-- in instead of waiting again. The room writes the row when the person enters and deletes it when
-- they leave or their reconnection grace runs out, so only people who were inside when the server
-- stopped keep one.
CREATE TABLE room_admissions (
    room        TEXT NOT NULL,
    identity    TEXT NOT NULL,
    admitted_at BIGINT NOT NULL,
    PRIMARY KEY (room, identity)
);

-- When the booking's confirmation email went out. The email is sent after the booking commits; a
-- process that dies in between (or a mail server that refuses) leaves it NULL, and the reminder
-- pass sends it then. Appointments booked before this migration had theirs sent at booking.
ALTER TABLE appointments ADD COLUMN confirmation_sent_at BIGINT;
UPDATE appointments SET confirmation_sent_at = created_at;
