//! The durable outbox (`mail_outbox`) and its delivery worker.
//!
//! A message is queued by [`enqueue`] inside the transaction of the action that causes it, so it
//! exists exactly when that action (and its audit entry) committed. The worker started by
//! `serve` calls [`deliver_due`] every few seconds on each node:
//!
//! 1. **claim**: one UPDATE sets a lease (`claimed_until`, and a token of this pass) on up to
//!    [`BATCH`] pending rows that are due and not leased by someone else. On PostgreSQL the rows
//!    are chosen `FOR UPDATE SKIP LOCKED`, so nodes claiming at the same moment take different
//!    rows instead of waiting for each other; on SQLite the single UPDATE runs alone anyway.
//! 2. **send**, one connection per message, bounded by `smtp.timeout_seconds`.
//! 3. **record**, only where the lease is still ours: sent; or one more attempt with its error
//!    and the next attempt [`backoff`] later; or, after [`MAX_ATTEMPTS`], failed for good with a
//!    `mail.failed` audit entry in the same transaction. A failure that is the relay's (it is
//!    down, its certificate does not verify, it refuses the credentials) is recorded against
//!    every message of the pass instead of trying each: it would fail them all the same.
//!
//! Delivery is at least once: a node that dies between the relay's "250 OK" and its UPDATE
//! leaves the row leased; once the lease expires another pass sends it again, with the same
//! Message-ID. Sent rows are deleted after [`SENT_KEPT_SECS`], failed ones after
//! [`FAILED_KEPT_SECS`] (they hold agents' addresses).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::db::{Database, DbError, Tx};
use crate::http::metrics::Metrics;
use crate::mail::{Mailer, SendError};
use crate::security_events::{Actor, record};
use crate::{with_db, with_tx};

/// Attempts before a message is given up (about two hours of retries, see [`backoff`]).
pub const MAX_ATTEMPTS: i64 = 8;
/// Rows claimed by one pass.
pub const BATCH: i64 = 20;
/// How often the worker looks for due messages when the outbox is quiet.
pub const POLL: Duration = Duration::from_secs(5);
/// Sent messages are kept this long (for an administrator's questions), then deleted.
pub const SENT_KEPT_SECS: i64 = 30 * 86_400;
/// Failed messages are kept this long, for the administrator to see, then deleted.
pub const FAILED_KEPT_SECS: i64 = 90 * 86_400;

/// Seconds to wait after the `attempts`-th failure: 1, 2, 4 … minutes, at most an hour.
pub fn backoff(attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.clamp(1, 7) - 1).unwrap_or(0);
    (60_i64 << doublings).min(3600)
}

/// A message to queue.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub kind: &'static str,
    pub news_id: Option<i64>,
    pub ack_round: Option<i64>,
    pub account_id: Option<i64>,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub languages: String,
}

/// Queues `message` in `tx`; returns false when the same reminder (item, round, agent) is
/// already waiting, so that a second click does not send a second copy of an unsent one.
pub async fn enqueue(tx: &mut Tx, message: &NewMessage, now: i64) -> Result<bool, DbError> {
    let done = with_tx!(tx, conn => sqlx::query(
        "INSERT INTO mail_outbox (kind, news_id, ack_round, account_id, recipient, subject, body, \
         languages, status, attempts, next_attempt_at, created_at) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, 'pending', 0, $9, $9 \
         WHERE NOT EXISTS (SELECT 1 FROM mail_outbox WHERE news_id = $2 AND ack_round = $3 \
         AND account_id = $4 AND status = 'pending')"
    ).bind(message.kind).bind(message.news_id).bind(message.ack_round).bind(message.account_id)
     .bind(&message.recipient).bind(&message.subject).bind(&message.body)
     .bind(&message.languages).bind(now).execute(conn).await?.rows_affected());
    Ok(done == 1)
}

/// A row claimed by a pass.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: i64,
    pub kind: String,
    pub news_id: Option<i64>,
    pub account_id: Option<i64>,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub languages: String,
    pub attempts: i64,
    pub created_at: i64,
}

const RETURNING: &str = "RETURNING id, kind, news_id, account_id, recipient, subject, body, \
     languages, attempts, created_at";

/// Leases up to `limit` due rows to `token` until `until`.
async fn claim(
    db: &Database,
    token: &str,
    now: i64,
    until: i64,
    limit: i64,
) -> Result<Vec<Claimed>, DbError> {
    let mut rows: Vec<Claimed> = match db {
        Database::Sqlite(pool) => {
            let sql = sqlx::AssertSqlSafe(format!(
                "UPDATE mail_outbox SET claimed_until = $1, claim_token = $2 WHERE id IN \
                 (SELECT id FROM mail_outbox WHERE status = 'pending' AND next_attempt_at <= $3 \
                  AND (claimed_until IS NULL OR claimed_until < $3) \
                  ORDER BY next_attempt_at, id LIMIT $4) {RETURNING}"
            ));
            sqlx::query_as(sql)
                .bind(until)
                .bind(token)
                .bind(now)
                .bind(limit)
                .fetch_all(pool)
                .await?
        }
        Database::Postgres(pool) => {
            let sql = sqlx::AssertSqlSafe(format!(
                "UPDATE mail_outbox SET claimed_until = $1, claim_token = $2 WHERE id IN \
                 (SELECT id FROM mail_outbox WHERE status = 'pending' AND next_attempt_at <= $3 \
                  AND (claimed_until IS NULL OR claimed_until < $3) \
                  ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) {RETURNING}"
            ));
            sqlx::query_as(sql)
                .bind(until)
                .bind(token)
                .bind(now)
                .bind(limit)
                .fetch_all(pool)
                .await?
        }
    };
    rows.sort_by_key(|r| r.id);
    Ok(rows)
}

async fn mark_sent(db: &Database, id: i64, token: &str, now: i64) -> Result<bool, DbError> {
    let done = with_db!(db, pool => sqlx::query(
        "UPDATE mail_outbox SET status = 'sent', sent_at = $3, attempts = attempts + 1, \
         last_error = NULL, claimed_until = NULL, claim_token = NULL \
         WHERE id = $1 AND claim_token = $2 AND status = 'pending'"
    ).bind(id).bind(token).bind(now).execute(pool).await?.rows_affected());
    Ok(done == 1)
}

/// What happened to a failed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterFailure {
    Retry,
    GaveUp,
    /// The lease was lost (another node took the row over): nothing recorded.
    NotOurs,
}

/// Records a failed attempt; after the last one (or for an address that can never work), marks
/// the message failed and audits it in the same transaction.
async fn record_failure(
    db: &Database,
    row: &Claimed,
    token: &str,
    error: &SendError,
    now: i64,
) -> Result<AfterFailure, DbError> {
    let attempts = row.attempts + 1;
    let give_up = attempts >= MAX_ATTEMPTS || error.kind == "address";
    let mut tx = db.begin().await?;
    let done = if give_up {
        with_tx!(&mut tx, conn => sqlx::query(
            "UPDATE mail_outbox SET status = 'failed', failed_at = $3, attempts = $4, \
             last_error = $5, claimed_until = NULL, claim_token = NULL \
             WHERE id = $1 AND claim_token = $2 AND status = 'pending'"
        ).bind(row.id).bind(token).bind(now).bind(attempts).bind(&error.text)
         .execute(conn).await?.rows_affected())
    } else {
        with_tx!(&mut tx, conn => sqlx::query(
            "UPDATE mail_outbox SET attempts = $3, last_error = $4, next_attempt_at = $5, \
             claimed_until = NULL, claim_token = NULL \
             WHERE id = $1 AND claim_token = $2 AND status = 'pending'"
        ).bind(row.id).bind(token).bind(attempts).bind(&error.text)
         .bind(now.saturating_add(backoff(attempts))).execute(conn).await?.rows_affected())
    };
    if done != 1 {
        return Ok(AfterFailure::NotOurs);
    }
    if give_up {
        // The account, not the address: the audit log outlives the outbox row, and an address
        // is not needed to know whom a reminder did not reach. The relay's text is left out for
        // the same reason (a refusal usually quotes the address); the outbox row keeps it.
        record(
            &mut tx,
            &outbox_actor(),
            "mail.failed",
            Some(format!("mail:{}", row.id)),
            "failure",
            json!({ "message_id": row.id, "kind": row.kind, "account_id": row.account_id,
                    "news_id": row.news_id, "attempts": attempts, "error_kind": error.kind,
                    "smtp_code": error.code }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(if give_up {
        AfterFailure::GaveUp
    } else {
        AfterFailure::Retry
    })
}

/// The actor of the worker's audit entries: no account, no client.
fn outbox_actor() -> Actor {
    Actor {
        name: Some("system:mail-outbox".into()),
        ..Actor::default()
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    pub claimed: usize,
    pub sent: usize,
    /// Failed this time, to be tried again later.
    pub retrying: usize,
    /// Failed for good this time.
    pub failed: usize,
}

/// The Message-ID of an outbox row: the same at every attempt, unique to this instance.
pub fn message_id(mailer: &Mailer, row: &Claimed) -> String {
    let host = url::Url::parse(mailer.public_url())
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| mailer.from().address.domain().to_owned());
    format!("<beffroi.mail.{}.{}@{host}>", row.id, row.created_at)
}

/// A failure that says nothing about this message but about the relay or the way to it.
fn relay_failure(error: &SendError) -> bool {
    matches!(
        error.kind,
        "connection" | "tls" | "authentication" | "timeout"
    )
}

/// One delivery pass at time `now`: claims due messages, sends them, records each outcome.
/// The worker calls it in a loop; tests call it directly instead of waiting.
pub async fn deliver_due(
    db: &Database,
    mailer: &Mailer,
    metrics: &Metrics,
    now: i64,
) -> Result<PassReport, DbError> {
    let token = crate::auth::session::random_token()
        .map_err(|e| DbError::Snapshot(format!("no randomness for the outbox lease: {e}")))?;
    // Longer than a pass can take on its slowest relay, so a live pass never loses its rows.
    let lease = i64::try_from(mailer.timeout.as_secs())
        .unwrap_or(300)
        .saturating_mul(4 * BATCH)
        .saturating_add(60);
    let rows = claim(db, &token, now, now.saturating_add(lease), BATCH).await?;
    let mut report = PassReport {
        claimed: rows.len(),
        ..PassReport::default()
    };
    let mut relay_down: Option<SendError> = None;
    for row in &rows {
        let outcome = match &relay_down {
            Some(error) => Err(error.clone()),
            None => {
                mailer
                    .send(
                        &row.recipient,
                        &row.subject,
                        &row.body,
                        &message_id(mailer, row),
                        &row.languages,
                    )
                    .await
            }
        };
        match outcome {
            Ok(()) => {
                metrics.count_mail_sent();
                if mark_sent(db, row.id, &token, crate::db::now().max(now)).await? {
                    report.sent += 1;
                }
            }
            Err(error) => {
                metrics.count_mail_failure(error.kind);
                if relay_down.is_none() {
                    tracing::warn!(outbox_id = row.id, error = %error.text, attempt = row.attempts + 1,
                        "e-mail not delivered");
                    if relay_failure(&error) {
                        relay_down = Some(error.clone());
                    }
                }
                match record_failure(db, row, &token, &error, now).await? {
                    AfterFailure::Retry => report.retrying += 1,
                    AfterFailure::GaveUp => report.failed += 1,
                    AfterFailure::NotOurs => {}
                }
            }
        }
    }
    Ok(report)
}

/// Deletes sent messages older than [`SENT_KEPT_SECS`] and failed ones older than
/// [`FAILED_KEPT_SECS`]; returns how many.
pub async fn purge(db: &Database, now: i64) -> Result<u64, DbError> {
    Ok(with_db!(db, pool => sqlx::query(
        "DELETE FROM mail_outbox WHERE (status = 'sent' AND sent_at < $1) \
         OR (status = 'failed' AND failed_at < $2)"
    ).bind(now - SENT_KEPT_SECS).bind(now - FAILED_KEPT_SECS).execute(pool).await?
     .rows_affected()))
}

/// Messages waiting (or being retried) and messages given up, for `/metrics`.
pub async fn counts(db: &Database) -> Result<(i64, i64), DbError> {
    let pending: i64 = with_db!(db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM mail_outbox WHERE status = 'pending'"
    ).fetch_one(pool).await?);
    let failed: i64 = with_db!(db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM mail_outbox WHERE status = 'failed'"
    ).fetch_one(pool).await?);
    Ok((pending, failed))
}

/// The worker: delivers due messages until the task is aborted, and purges old rows hourly.
pub async fn run(db: Database, mailer: Arc<Mailer>, metrics: Metrics) {
    tracing::info!(relay = mailer.describe(), "mail outbox worker started");
    let mut last_purge = 0_i64;
    loop {
        let now = crate::db::now();
        let pause = match deliver_due(&db, &mailer, &metrics, now).await {
            // A full batch went well: more may be due at once.
            Ok(r) if r.claimed == usize::try_from(BATCH).unwrap_or(0) && r.sent == r.claimed => {
                Duration::ZERO
            }
            Ok(_) => POLL,
            Err(e) => {
                tracing::warn!(error = %e, "mail outbox pass failed");
                POLL.saturating_mul(6)
            }
        };
        if now - last_purge >= 3600 {
            match purge(&db, now).await {
                Ok(n) if n > 0 => tracing::info!(deleted = n, "old outbox messages deleted"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "outbox purge failed"),
            }
            last_purge = now;
        }
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let waits: Vec<i64> = (1..=MAX_ATTEMPTS).map(backoff).collect();
        assert_eq!(waits, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(backoff(0), 60);
        assert_eq!(backoff(1000), 3600);
    }
}
