-- Sign-in attempts per client address, in the database so that every node of a cluster counts
-- against one allowance (security.sign_in_attempts_per_minute): behind a load balancer with N
-- nodes, per-node counters would give an attacker N times the allowance. The key is the
-- address the rate limiter uses: an IPv4 address, or the /64 of an IPv6 address. A window
-- opens at an address's first attempt and lasts a minute; the first attempt after it has
-- passed opens the next one. Each attempt is one INSERT … ON CONFLICT DO UPDATE … RETURNING,
-- atomic on both backends. Rows whose window has passed are deleted by the housekeeping task.
-- See src/auth/sign_in_limit.rs.

CREATE TABLE sign_in_attempts (
    client_key   TEXT    PRIMARY KEY,
    -- Unix seconds at which the current window opened.
    window_start INTEGER NOT NULL,
    attempts     INTEGER NOT NULL
);
-- The purge's question: windows that have passed.
CREATE INDEX sign_in_attempts_window ON sign_in_attempts (window_start);
