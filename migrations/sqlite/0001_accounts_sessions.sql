-- Accounts, their roles, server-side sessions and per-account sign-in backoff.
-- Times are Unix seconds (UTC) in INTEGER columns on both backends.

CREATE TABLE accounts (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    kind                 TEXT    NOT NULL CHECK (kind IN ('local', 'oidc')),
    -- Local (break-glass) accounts sign in with a username, stored lower-case.
    username             TEXT    UNIQUE,
    display_name         TEXT    NOT NULL,
    email                TEXT,
    -- argon2id PHC string; NULL for accounts that never sign in with a password.
    password_hash        TEXT,
    password_must_change INTEGER NOT NULL DEFAULT 0 CHECK (password_must_change IN (0, 1)),
    locale               TEXT    CHECK (locale IN ('fr', 'en')),
    disabled             INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    CHECK (kind <> 'local' OR username IS NOT NULL)
);

CREATE TABLE account_roles (
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    role       TEXT    NOT NULL CHECK (role IN ('agent', 'editor', 'admin', 'auditor')),
    PRIMARY KEY (account_id, role)
);

-- Only the SHA-256 of the session token is stored: a copy of this table cannot be replayed.
CREATE TABLE sessions (
    id_hash      TEXT    PRIMARY KEY,
    account_id   INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    csrf_token   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    client_ip    TEXT,
    user_agent   TEXT
);
CREATE INDEX sessions_by_account ON sessions (account_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- Keyed by the login typed, whether or not such an account exists, so that backoff does not
-- reveal which accounts exist.
CREATE TABLE sign_in_backoff (
    login           TEXT    PRIMARY KEY,
    failures        INTEGER NOT NULL,
    last_failure_at INTEGER NOT NULL,
    locked_until    INTEGER NOT NULL
);
