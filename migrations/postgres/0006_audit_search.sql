-- Indexes for the auditors' search (src/audit/query.rs), which lists entries newest first. With
-- seq as the second column, "every entry of this account" or "of this action" is read in seq
-- order from the index, and the first page of a million-entry log costs a few rows. A time range
-- is read from its own index. Other criteria (a part of a name, of a target, an address prefix)
-- cannot use a B-tree and filter the rows these indexes, or the primary key, lead to.

CREATE INDEX audit_log_by_actor ON audit_log (actor_id, seq);
CREATE INDEX audit_log_by_action ON audit_log (action, seq);
CREATE INDEX audit_log_by_time ON audit_log (time_us);
