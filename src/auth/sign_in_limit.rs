//! Sign-in attempts per client address, counted in the database so that every node of a cluster
//! shares one allowance (`security.sign_in_attempts_per_minute`). The in-memory limiter of
//! `http::middleware::rate_limit` stays in front of it to shed floods without a database write;
//! this count is the one that decides.
//!
//! A window opens at an address's first attempt and lasts [`WINDOW_SECS`]; the first attempt
//! after it has passed opens the next one. Each attempt is counted by one upsert, atomic on
//! both backends, so two nodes counting the same address at once cannot both read the old
//! count. This module never stores a login or a password: only the address key.

use std::net::IpAddr;

use crate::db::{Database, DbError};
use crate::with_db;

/// The length of a counting window, in seconds: the "per minute" of the setting.
pub const WINDOW_SECS: i64 = 60;

/// What the database answered for one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptCount {
    /// Attempts from this address in the current window, this one included.
    pub attempts: i64,
    /// Unix seconds at which the current window opened.
    pub window_start: i64,
}

impl AttemptCount {
    /// Seconds until the window closes, as `Retry-After` says it (at least 1).
    pub fn retry_after_secs(&self, now: i64) -> u64 {
        let left = self
            .window_start
            .saturating_add(WINDOW_SECS)
            .saturating_sub(now);
        u64::try_from(left).unwrap_or(0).max(1)
    }
}

/// Counts one attempt from `key` (already reduced by `rate_limit::limit_key`) at `now`.
pub async fn count_attempt(db: &Database, key: IpAddr, now: i64) -> Result<AttemptCount, DbError> {
    // A window that opened WINDOW_SECS ago or earlier is over: this attempt opens a new one.
    // Both SET expressions read the row as it was before the update (the same on both
    // backends), so their order does not matter.
    let expired_before = now.saturating_sub(WINDOW_SECS);
    let (attempts, window_start): (i64, i64) = with_db!(db, pool => sqlx::query_as(
        "INSERT INTO sign_in_attempts (client_key, window_start, attempts) VALUES ($1, $2, 1) \
         ON CONFLICT (client_key) DO UPDATE SET \
             attempts = CASE WHEN sign_in_attempts.window_start <= $3 THEN 1 \
                             ELSE sign_in_attempts.attempts + 1 END, \
             window_start = CASE WHEN sign_in_attempts.window_start <= $3 \
                                 THEN excluded.window_start \
                                 ELSE sign_in_attempts.window_start END \
         RETURNING attempts, window_start"
    ).bind(key.to_string()).bind(now).bind(expired_before).fetch_one(pool).await?);
    Ok(AttemptCount {
        attempts,
        window_start,
    })
}

/// Deletes the counts whose window has passed (they would be reset at the next attempt
/// anyway), so the table holds only the addresses seen in the last minute.
pub async fn purge_expired(db: &Database, now: i64) -> Result<u64, DbError> {
    let expired_before = now.saturating_sub(WINDOW_SECS);
    let deleted = with_db!(db, pool => sqlx::query(
        "DELETE FROM sign_in_attempts WHERE window_start <= $1"
    ).bind(expired_before).execute(pool).await?.rows_affected());
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_counts_down_to_the_end_of_the_window_and_never_says_zero() {
        let count = AttemptCount {
            attempts: 11,
            window_start: 1_000,
        };
        assert_eq!(count.retry_after_secs(1_000), 60);
        assert_eq!(count.retry_after_secs(1_045), 15);
        assert_eq!(count.retry_after_secs(1_060), 1);
        assert_eq!(count.retry_after_secs(2_000), 1);
    }
}
