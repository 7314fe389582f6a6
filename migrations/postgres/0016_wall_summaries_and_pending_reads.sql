-- The wall lists an agent's first few unconfirmed mandatory reads, earliest deadline first.
-- Walking this index in that order lets the query stop after those few, instead of reading and
-- sorting every live mandatory read of the organisation on every wall (see BENCHMARKS.md).
-- The expression and the WHERE terms are written exactly as the query writes them, so that the
-- planner recognises both.
CREATE INDEX news_items_pending_reads ON news_items ((COALESCE(ack_deadline, 9000000000000)), id)
    WHERE ack_required = TRUE AND status = 'published';

-- The wall shows each item as a short plain-text summary of its Markdown. It is computed when the
-- item is written, so a wall page neither reads whole bodies nor parses them; rows written
-- before this column existed have none and are summarised from their body when shown.
ALTER TABLE news_items ADD COLUMN summary TEXT;
