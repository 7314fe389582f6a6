-- Live forwarding of the audit log to a SIEM (src/audit/forward): per destination, the last
-- entry the collector is known to have, so a forwarder that was down catches up from there.
-- Unlike audit_log, this table is updated in place: it is progress, not evidence.

CREATE TABLE audit_forwarding (
    destination TEXT    PRIMARY KEY,
    last_seq    INTEGER NOT NULL CHECK (last_seq >= 0),
    updated_at  INTEGER NOT NULL
);
