-- Single sign-on: accounts keyed by (issuer, subject), groups from the identity provider,
-- pending authorization requests, and what a session needs for logout at the provider.

ALTER TABLE accounts ADD COLUMN issuer TEXT;
ALTER TABLE accounts ADD COLUMN subject TEXT;
-- Claims kept as given by the provider (uid, siret, idp_id, given_name, usual_name…), JSON.
ALTER TABLE accounts ADD COLUMN attributes TEXT;
ALTER TABLE accounts ADD COLUMN last_sign_in_at INTEGER;
CREATE UNIQUE INDEX accounts_by_issuer_subject ON accounts (issuer, subject);

CREATE TABLE groups (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    source     TEXT    NOT NULL CHECK (source IN ('oidc', 'scim', 'local')),
    created_at INTEGER NOT NULL
);

CREATE TABLE account_groups (
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    group_id   INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (account_id, group_id)
);

-- One row per sign-in started; consumed (deleted) by the callback, so state is single use.
-- Only the hash of the state is stored; the browser binding is a hash of a cookie value.
CREATE TABLE oidc_requests (
    state_hash      TEXT    PRIMARY KEY,
    browser_hash    TEXT    NOT NULL,
    nonce           TEXT    NOT NULL,
    pkce_verifier   TEXT    NOT NULL,
    return_to       TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
);
CREATE INDEX oidc_requests_by_expiry ON oidc_requests (expires_at);

ALTER TABLE sessions ADD COLUMN oidc_sid TEXT;
ALTER TABLE sessions ADD COLUMN oidc_id_token TEXT;
CREATE INDEX sessions_by_oidc_sid ON sessions (oidc_sid);

-- Logout tokens already acted on (jti), so a replayed token is refused.
CREATE TABLE oidc_logout_tokens (
    jti        TEXT    PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
