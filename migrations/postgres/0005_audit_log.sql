-- The tamper-evident audit log (format in audit/FORMAT.md). Append-only: the triggers refuse
-- DELETE and TRUNCATE, and any UPDATE except the retention purge, which blanks the personal
-- fields of an old entry while its leaf hash (and so the Merkle tree) stays.

CREATE TABLE audit_log (
    seq        BIGINT PRIMARY KEY,
    time_us    BIGINT NOT NULL,
    actor_id   BIGINT,
    actor_name TEXT,
    actor_ip   TEXT,
    request_id TEXT,
    action     TEXT   NOT NULL,
    target     TEXT,
    outcome    TEXT   NOT NULL,
    details    TEXT   NOT NULL,
    leaf_hash  BYTEA  NOT NULL CHECK (length(leaf_hash) = 32),
    purged_at  BIGINT
);

CREATE FUNCTION audit_log_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Nested IFs: NEW and OLD do not exist for TRUNCATE, so they are only read for UPDATE.
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'audit_log' THEN
        IF NEW.seq = OLD.seq AND NEW.time_us = OLD.time_us AND NEW.leaf_hash = OLD.leaf_hash
           AND NEW.action = OLD.action AND NEW.outcome = OLD.outcome
           AND OLD.purged_at IS NULL AND NEW.purged_at IS NOT NULL
           AND NEW.actor_id IS NULL AND NEW.actor_name IS NULL AND NEW.actor_ip IS NULL
           AND NEW.request_id IS NULL AND NEW.target IS NULL AND NEW.details = '{}' THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;

CREATE TRIGGER audit_log_guard_rows BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_guard();
-- Row triggers do not fire on TRUNCATE.
CREATE TRIGGER audit_log_guard_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_guard();

CREATE TABLE audit_checkpoints (
    tree_size  BIGINT PRIMARY KEY,
    root       BYTEA  NOT NULL CHECK (length(root) = 32),
    time_us    BIGINT NOT NULL,
    public_key BYTEA  NOT NULL CHECK (length(public_key) = 32),
    signature  BYTEA  NOT NULL CHECK (length(signature) = 64)
);

CREATE TRIGGER audit_checkpoints_guard_rows BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_log_guard();
CREATE TRIGGER audit_checkpoints_guard_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_guard();
