-- The mail outbox: every e-mail Beffroi sends is first a row here, written in the same
-- transaction as the action that causes it (a reminder and its audit entry), so a crash never
-- loses a message nor sends one for an action that did not commit. A background worker on each
-- node claims due rows (claimed_until is its lease), sends them, and marks them sent; a failure
-- is retried with a growing delay, and after the last attempt the row stays as 'failed' with
-- its last error (never a password). Its Message-ID is made from its id, the same at every
-- attempt, so that a relay can spot a copy sent twice. See src/mail/outbox.rs.

CREATE TABLE mail_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- What caused the message; only reminders of mandatory reads for now.
    kind            TEXT    NOT NULL CHECK (kind IN ('news.reminder')),
    news_id         INTEGER REFERENCES news_items (id) ON DELETE CASCADE,
    ack_round       INTEGER,
    -- The agent it is for: their address is personal data, gone with the account.
    account_id      INTEGER REFERENCES accounts (id) ON DELETE CASCADE,
    recipient       TEXT    NOT NULL,
    -- The message as composed when queued: subject (one line) and plain-text body.
    subject         TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    -- Content-Language: the recipient's language first ("fr, en" or "en, fr").
    languages       TEXT    NOT NULL DEFAULT 'fr, en',
    status          TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    -- A worker holds a claimed row until this time; past it, another may take it over.
    claimed_until   INTEGER,
    claim_token     TEXT,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    failed_at       INTEGER
);
-- The worker's question: pending rows due now, oldest first.
CREATE INDEX mail_outbox_due ON mail_outbox (status, next_attempt_at, id);
-- "Is a reminder to this agent for this round still waiting?" (no second copy is queued).
CREATE INDEX mail_outbox_by_item ON mail_outbox (news_id, ack_round, account_id);
