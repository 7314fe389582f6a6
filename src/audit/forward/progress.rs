//! What the forwarder reads and writes in the database: committed audit entries after a
//! sequence number, and the `audit_forwarding` table (migration 0007) that remembers, per
//! destination, the last entry the collector is known to have. That table is updated in place;
//! the audit log itself is only read.
//!
//! On PostgreSQL several nodes share one log and only one of them may forward it: the forwarder
//! works on a connection of its own, outside the pool, holding a session-level advisory lock.
//! Closing that connection (on any error, or when the node stops) releases the lock, and another
//! node takes over.

use sqlx::{Connection, PgConnection, SqlitePool};

use crate::audit::entry::Entry;
use crate::db::{Database, DbError};

/// Advisory lock key of the forwarder ("BFSYSLOG" in ASCII), distinct from the append lock.
const FORWARD_LOCK: i64 = 0x4246_5359_534c_4f47;

/// The database as the forwarder uses it.
pub enum Session {
    /// SQLite is one node: the pool, no lock.
    Sqlite(SqlitePool),
    /// A dedicated connection holding the forwarding lock.
    Postgres(PgConnection),
}

/// Runs the same block on the session's executor (`&SqlitePool` or `&mut PgConnection`).
macro_rules! with_session {
    ($session:expr, $exec:ident => $body:expr) => {
        match $session {
            Session::Sqlite(pool) => {
                let $exec = &*pool;
                $body
            }
            Session::Postgres(conn) => {
                let $exec = &mut *conn;
                $body
            }
        }
    };
}

type EntryRow = (
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    String,
    String,
);

impl Session {
    /// Opens a session that may forward, or `None` when another node holds the lock.
    pub async fn open(db: &Database) -> Result<Option<Self>, DbError> {
        match db {
            Database::Sqlite(pool) => Ok(Some(Self::Sqlite(pool.clone()))),
            Database::Postgres(pool) => {
                let mut conn = PgConnection::connect_with(&pool.connect_options()).await?;
                let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(FORWARD_LOCK)
                    .fetch_one(&mut conn)
                    .await?;
                if locked {
                    Ok(Some(Self::Postgres(conn)))
                } else {
                    let _ = conn.close().await;
                    Ok(None)
                }
            }
        }
    }

    /// Ends the session; on PostgreSQL this releases the lock.
    pub async fn close(self) {
        if let Self::Postgres(conn) = self {
            let _ = conn.close().await;
        }
    }

    /// The last sequence number `destination` is known to have received (0: none yet).
    pub async fn last_seq(&mut self, destination: &str) -> Result<u64, DbError> {
        let last: Option<i64> = with_session!(self, exec => sqlx::query_scalar(
            "SELECT last_seq FROM audit_forwarding WHERE destination = $1"
        ).bind(destination).fetch_optional(exec).await?);
        Ok(last.and_then(|s| u64::try_from(s).ok()).unwrap_or(0))
    }

    /// Records that `destination` has every entry up to `seq`. Never moves backwards.
    pub async fn set_last_seq(&mut self, destination: &str, seq: u64) -> Result<(), DbError> {
        let seq = i64::try_from(seq).map_err(|_| DbError::Audit("sequence overflow".into()))?;
        with_session!(self, exec => sqlx::query(
            "INSERT INTO audit_forwarding (destination, last_seq, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (destination) DO UPDATE SET last_seq = excluded.last_seq, \
                 updated_at = excluded.updated_at \
             WHERE audit_forwarding.last_seq <= excluded.last_seq"
        ).bind(destination).bind(seq).bind(crate::db::now()).execute(exec).await.map(|_| ())?);
        Ok(())
    }

    /// Up to `limit` committed entries after `after`, in sequence order. Another connection's
    /// uncommitted append is invisible here, and appends hold their lock until they commit, so
    /// what is seen is always a prefix of the final log: nothing is skipped.
    pub async fn entries_after(&mut self, after: u64, limit: u32) -> Result<Vec<Entry>, DbError> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let rows: Vec<EntryRow> = with_session!(self, exec => sqlx::query_as(
            "SELECT seq, time_us, actor_id, actor_name, actor_ip, request_id, action, target, \
                    outcome, details \
             FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
        ).bind(after).bind(i64::from(limit)).fetch_all(exec).await?);
        Ok(rows
            .into_iter()
            .map(
                |(
                    seq,
                    time_us,
                    actor_id,
                    actor_name,
                    actor_ip,
                    request_id,
                    action,
                    target,
                    outcome,
                    details,
                )| Entry {
                    seq: u64::try_from(seq).unwrap_or(0),
                    time_us,
                    actor_id,
                    actor_name,
                    actor_ip,
                    request_id,
                    action,
                    target,
                    outcome,
                    details,
                },
            )
            .collect())
    }

    /// The highest sequence number committed (0 for an empty log).
    pub async fn max_seq(&mut self) -> Result<u64, DbError> {
        let max: Option<i64> = with_session!(self, exec => sqlx::query_scalar(
            "SELECT MAX(seq) FROM audit_log"
        ).fetch_one(exec).await?);
        Ok(max.and_then(|s| u64::try_from(s).ok()).unwrap_or(0))
    }
}
