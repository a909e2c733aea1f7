-- OpenID Connect login (issue 19, docs/identity.md): staff single sign-on through the
-- municipality's directory, and citizens through a SPID/CIE gateway. Portable as 0001: TEXT ids,
-- BIGINT Unix seconds. What a citizen's login leaves here is `appointments.citizen_key` alone (a
-- keyed hash, set when they book while logged in): no name, no fiscal code.

-- A login on its way through the provider: written when the browser is sent there, taken (deleted)
-- by the callback, so a `state` works once and on any node. Rows past `expires_at` are swept by the
-- retention pass.
CREATE TABLE oidc_logins (
    state_hash    TEXT PRIMARY KEY,                -- SHA-256 hex of the `state` the provider echoes
    kind          TEXT NOT NULL,                   -- staff | citizen
    pkce_verifier TEXT NOT NULL,                   -- the PKCE S256 verifier of the code exchange
    nonce         TEXT NOT NULL,                   -- expected in the ID token
    return_path   TEXT NOT NULL,                   -- a same-origin path, checked when written
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX oidc_logins_expires ON oidc_logins (expires_at);

-- Which directory account is which staff member: the provider's issuer and subject (`sub`, stable
-- where an email may be reassigned), linked at the first login.
CREATE TABLE staff_identities (
    issuer     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX staff_identities_user ON staff_identities (user_id);

-- The logged-in citizen who booked: HMAC-SHA256 of their fiscal code under a server key (hex), so
-- that they find their appointments again; NULL for a booking without login.
ALTER TABLE appointments ADD COLUMN citizen_key TEXT;
CREATE INDEX appointments_citizen_key ON appointments (citizen_key, starts_at);
