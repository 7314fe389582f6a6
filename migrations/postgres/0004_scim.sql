-- SCIM 2.0 provisioning (RFC 7643/7644). A SCIM User is an SSO account (accounts.kind = 'oidc',
-- keyed by issuer and subject); a SCIM Group is a row of `groups` with source 'scim'. These
-- tables hold what SCIM adds: the server-assigned resource id, the attributes Beffroi does not
-- otherwise keep, and times. Times are Unix seconds.

CREATE TABLE scim_users (
    -- Server-assigned, random, never reused (RFC 7643 §3.1).
    id            TEXT    PRIMARY KEY,
    account_id    BIGINT  NOT NULL UNIQUE REFERENCES accounts (id) ON DELETE CASCADE,
    user_name     TEXT    NOT NULL,
    -- userName lower-cased: its uniqueness is case-insensitive (RFC 7643 §4.1.1).
    user_name_key TEXT    NOT NULL,
    external_id   TEXT,
    -- name, displayName, emails and whether active was given, as JSON (the SCIM view); the
    -- columns Beffroi reads (accounts.display_name, email, disabled) are derived from it.
    resource      TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    -- Optimistic concurrency: every write checks and bumps it.
    version       BIGINT  NOT NULL DEFAULT 0,
    -- Set by DELETE: the resource is gone from SCIM, the account row stays (disabled) for
    -- history; a later POST for the same subject revives it under a new id.
    deleted_at    BIGINT
);
CREATE UNIQUE INDEX scim_users_by_user_name ON scim_users (user_name_key) WHERE deleted_at IS NULL;

CREATE TABLE scim_groups (
    id          TEXT    PRIMARY KEY,
    group_id    BIGINT  NOT NULL UNIQUE REFERENCES groups (id) ON DELETE CASCADE,
    external_id TEXT,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    version     BIGINT  NOT NULL DEFAULT 0
);

-- Group members are looked up by group (SCIM Group reads and membership changes).
CREATE INDEX account_groups_by_group ON account_groups (group_id);
