//! Per-account exponential backoff on failed sign-in. After `free_failures` failures, each
//! further failure locks the login for `base * 2^(n - free)` seconds, capped at `max`. The state
//! lives in the database so that every node of a cluster sees it.
//!
//! The key is the login as typed (lower-cased), whether or not the account exists, so that the
//! answers do not tell an attacker which logins are real.

use crate::config::SecurityConfig;
use crate::db::{Database, DbError, Tx, now};
use crate::{with_db, with_tx};

#[derive(Debug, Clone, Copy)]
pub struct BackoffPolicy {
    pub free_failures: u32,
    pub base_secs: u64,
    pub max_secs: u64,
}

impl From<&SecurityConfig> for BackoffPolicy {
    fn from(c: &SecurityConfig) -> Self {
        Self {
            free_failures: c.backoff_free_failures,
            base_secs: c.backoff_base_secs,
            max_secs: c.backoff_max_secs,
        }
    }
}

impl BackoffPolicy {
    /// Lock duration after the `failures`-th consecutive failure.
    pub fn delay_after(&self, failures: u32) -> u64 {
        if failures < self.free_failures.max(1) {
            return 0;
        }
        let exponent = (failures - self.free_failures.max(1)).min(32);
        self.base_secs
            .saturating_mul(1u64 << exponent)
            .min(self.max_secs)
    }
}

fn key(login: &str) -> String {
    login.trim().to_lowercase().chars().take(256).collect()
}

/// Seconds left before `login` may try again, if it is locked.
pub async fn locked_for(db: &Database, login: &str) -> Result<Option<u64>, DbError> {
    let until: Option<i64> = with_db!(db, pool => sqlx::query_scalar(
        "SELECT locked_until FROM sign_in_backoff WHERE login = $1"
    ).bind(key(login)).fetch_optional(pool).await?);
    let now = now();
    Ok(until
        .filter(|u| *u > now)
        .map(|u| u64::try_from(u - now).unwrap_or(1)))
}

/// Records a failure; returns the lock now in force, in seconds (0 when none).
pub async fn record_failure(
    tx: &mut Tx,
    login: &str,
    policy: BackoffPolicy,
) -> Result<u64, DbError> {
    let key = key(login);
    let now = now();
    // Failures older than twice the longest delay are forgiven: otherwise one attempt every
    // few minutes would keep an account locked for ever.
    let forget_before =
        now.saturating_sub(i64::try_from(policy.max_secs.saturating_mul(2)).unwrap_or(i64::MAX));
    let failures: i64 = with_tx!(tx, conn => sqlx::query_scalar(
        "INSERT INTO sign_in_backoff (login, failures, last_failure_at, locked_until) \
         VALUES ($1, 1, $2, 0) \
         ON CONFLICT (login) DO UPDATE SET \
             failures = CASE WHEN sign_in_backoff.last_failure_at < $3 THEN 1 \
                             ELSE sign_in_backoff.failures + 1 END, \
             last_failure_at = excluded.last_failure_at \
         RETURNING failures"
    ).bind(&key).bind(now).bind(forget_before).fetch_one(conn).await?);
    let delay = policy.delay_after(u32::try_from(failures).unwrap_or(u32::MAX));
    if delay > 0 {
        let until = now.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX));
        with_tx!(tx, conn => sqlx::query(
            "UPDATE sign_in_backoff SET locked_until = $1 WHERE login = $2"
        ).bind(until).bind(&key).execute(conn).await.map(|_| ())?);
    }
    Ok(delay)
}

pub async fn clear(tx: &mut Tx, login: &str) -> Result<(), DbError> {
    with_tx!(tx, conn => sqlx::query("DELETE FROM sign_in_backoff WHERE login = $1")
        .bind(key(login)).execute(conn).await.map(|_| ())?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_after_free_failures_and_is_capped() {
        let p = BackoffPolicy {
            free_failures: 3,
            base_secs: 2,
            max_secs: 60,
        };
        let delays: Vec<u64> = (1..=9).map(|n| p.delay_after(n)).collect();
        assert_eq!(delays, vec![0, 0, 2, 4, 8, 16, 32, 60, 60]);
    }
}
