-- The tamper-evident audit log (format in audit/FORMAT.md). Append-only: the triggers refuse
-- DELETE, and any UPDATE except the retention purge, which blanks the personal fields of an old
-- entry while its leaf hash (and so the Merkle tree) stays.

CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY,
    time_us    INTEGER NOT NULL,
    actor_id   INTEGER,
    actor_name TEXT,
    actor_ip   TEXT,
    request_id TEXT,
    action     TEXT    NOT NULL,
    target     TEXT,
    outcome    TEXT    NOT NULL,
    details    TEXT    NOT NULL,
    leaf_hash  BLOB    NOT NULL CHECK (length(leaf_hash) = 32),
    purged_at  INTEGER
);

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_only_purge BEFORE UPDATE ON audit_log
WHEN NOT (
    NEW.seq = OLD.seq AND NEW.time_us = OLD.time_us AND NEW.leaf_hash = OLD.leaf_hash
    AND NEW.action = OLD.action AND NEW.outcome = OLD.outcome
    AND OLD.purged_at IS NULL AND NEW.purged_at IS NOT NULL
    AND NEW.actor_id IS NULL AND NEW.actor_name IS NULL AND NEW.actor_ip IS NULL
    AND NEW.request_id IS NULL AND NEW.target IS NULL AND NEW.details = '{}'
)
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TABLE audit_checkpoints (
    tree_size  INTEGER PRIMARY KEY,
    root       BLOB    NOT NULL CHECK (length(root) = 32),
    time_us    INTEGER NOT NULL,
    public_key BLOB    NOT NULL CHECK (length(public_key) = 32),
    signature  BLOB    NOT NULL CHECK (length(signature) = 64)
);

CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;

CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;
