-- News: items written in a space for an audience, their edit history, their audience keys,
-- read receipts for mandatory reads and reminders. See src/news/mod.rs for the rules.

CREATE TABLE news_items (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    space_id    BIGINT NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
    author_id   BIGINT REFERENCES accounts (id) ON DELETE SET NULL,
    title       TEXT    NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    body        TEXT    NOT NULL,
    -- SHA-256 (hex) of the current body, copied into each read receipt.
    body_sha256 TEXT    NOT NULL,
    category    TEXT    NOT NULL,
    important   BOOLEAN NOT NULL DEFAULT FALSE,
    pinned      BOOLEAN NOT NULL DEFAULT FALSE,
    -- 'published' with publish_at in the future means scheduled; visibility is decided by the
    -- wall's query against the clock, so no job has to flip anything at publish or expiry time.
    status      TEXT    NOT NULL CHECK (status IN ('draft', 'pending', 'published', 'rejected', 'archived')),
    rejection_reason TEXT,
    publish_at  BIGINT NOT NULL,
    expire_at   BIGINT,
    image_sha256 TEXT,
    image_type  TEXT,
    ack_required BOOLEAN NOT NULL DEFAULT FALSE,
    ack_deadline BIGINT,
    -- Incremented by a material change: receipts of earlier rounds stay, as history.
    ack_round   BIGINT NOT NULL DEFAULT 1,
    current_version_id BIGINT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    CHECK (expire_at IS NULL OR expire_at > publish_at)
);
-- The wall walks this index in its display order and stops after one page.
CREATE INDEX news_items_wall ON news_items (status, pinned, publish_at, id);
-- Mandatory reads are few: the wall finds an agent's unacknowledged ones through this.
CREATE INDEX news_items_mandatory ON news_items (ack_required, status, publish_at);
CREATE INDEX news_items_by_space ON news_items (space_id, status);

CREATE TABLE news_versions (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    news_id     BIGINT NOT NULL REFERENCES news_items (id) ON DELETE CASCADE,
    title       TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    body_sha256 TEXT    NOT NULL,
    author_id   BIGINT REFERENCES accounts (id) ON DELETE SET NULL,
    author_name TEXT    NOT NULL,
    -- 'create', 'minor' (receipts kept) or 'material' (receipts asked again).
    change_kind TEXT    NOT NULL CHECK (change_kind IN ('create', 'minor', 'material')),
    created_at  BIGINT NOT NULL
);
CREATE INDEX news_versions_by_item ON news_versions (news_id, id);

-- Who an item is for (keys as in src/audience.rs).
CREATE TABLE news_audience (
    news_id      BIGINT NOT NULL REFERENCES news_items (id) ON DELETE CASCADE,
    audience_key TEXT    NOT NULL,
    PRIMARY KEY (news_id, audience_key)
);
CREATE INDEX news_audience_by_key ON news_audience (audience_key, news_id);

-- "I have read this": who, which round and version of the text (and its hash), when.
CREATE TABLE news_receipts (
    news_id     BIGINT NOT NULL REFERENCES news_items (id) ON DELETE CASCADE,
    account_id  BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    ack_round   BIGINT NOT NULL,
    version_id  BIGINT NOT NULL REFERENCES news_versions (id),
    body_sha256 TEXT    NOT NULL,
    acknowledged_at BIGINT NOT NULL,
    PRIMARY KEY (news_id, ack_round, account_id)
);
CREATE INDEX news_receipts_by_account ON news_receipts (account_id, news_id);

CREATE TABLE news_reminders (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    news_id   BIGINT NOT NULL REFERENCES news_items (id) ON DELETE CASCADE,
    ack_round BIGINT NOT NULL,
    sent_by   BIGINT REFERENCES accounts (id) ON DELETE SET NULL,
    sent_at   BIGINT NOT NULL
);
CREATE INDEX news_reminders_by_item ON news_reminders (news_id, ack_round);
