//! Appending to and reading the audit log table. An entry is appended inside the caller's
//! transaction, so it commits or rolls back with the change it records; its sequence number is
//! the next one, taken under a lock (SQLite's write lock; a transaction-scoped advisory lock on
//! PostgreSQL, so several nodes append without gaps or duplicates).
//!
//! This module has no update and no delete: the table refuses them anyway (migration 0005).

use serde_json::Value;

use crate::audit::entry::Entry;
use crate::audit::merkle::{self, Hash};
use crate::db::{Database, DbError, Tx};
use crate::{with_db, with_tx};

/// Advisory lock key serialising appends on PostgreSQL ("BEFFROI" in ASCII).
const APPEND_LOCK: i64 = 0x0042_4546_4652_4f49;

/// What a caller records; the log adds the sequence number, the time and the hash.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub actor_id: Option<i64>,
    pub actor_name: Option<String>,
    pub actor_ip: Option<String>,
    pub request_id: Option<String>,
    pub action: &'static str,
    pub target: Option<String>,
    pub outcome: &'static str,
    pub details: Value,
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Appends `new` in `tx`; returns the stored entry.
pub async fn append(tx: &mut Tx, new: NewEntry) -> Result<Entry, DbError> {
    if let Tx::Postgres(t) = tx {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(APPEND_LOCK)
            .execute(&mut **t)
            .await?;
    }
    let last: Option<i64> = with_tx!(tx, conn => sqlx::query_scalar("SELECT MAX(seq) FROM audit_log").fetch_one(conn).await?);
    let seq = u64::try_from(last.unwrap_or(0)).unwrap_or(0) + 1;
    let details = match &new.details {
        Value::Object(_) => new.details.to_string(),
        other => serde_json::json!({ "value": other }).to_string(),
    };
    let entry = Entry {
        seq,
        time_us: now_us(),
        actor_id: new.actor_id,
        actor_name: new.actor_name,
        actor_ip: new.actor_ip,
        request_id: new.request_id,
        action: new.action.to_owned(),
        target: new.target,
        outcome: new.outcome.to_owned(),
        details,
    };
    let leaf = entry
        .leaf_hash()
        .map_err(|e| DbError::Snapshot(format!("audit entry too large: {e}")))?;
    let seq_db =
        i64::try_from(entry.seq).map_err(|_| DbError::Snapshot("audit log full".into()))?;
    with_tx!(tx, conn => sqlx::query(
        "INSERT INTO audit_log (seq, time_us, actor_id, actor_name, actor_ip, request_id, action, \
                                target, outcome, details, leaf_hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    )
    .bind(seq_db)
    .bind(entry.time_us)
    .bind(entry.actor_id)
    .bind(&entry.actor_name)
    .bind(&entry.actor_ip)
    .bind(&entry.request_id)
    .bind(&entry.action)
    .bind(&entry.target)
    .bind(&entry.outcome)
    .bind(&entry.details)
    .bind(leaf.to_vec())
    .execute(conn).await.map(|_| ())?);
    Ok(entry)
}

/// An entry as stored: its fields, the leaf hash stored beside them (which a verifier compares
/// with the hash it recomputes), and whether its personal fields were purged.
#[derive(Debug, Clone)]
pub struct StoredEntry {
    /// The sequence number as stored (checked by the verifier before anything else).
    pub stored_seq: i64,
    pub entry: Entry,
    pub leaf_hash: Vec<u8>,
    pub purged: bool,
}

/// An `audit_log` row as selected by [`ENTRY_COLUMNS`].
pub(crate) type EntryRow = (
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
    Vec<u8>,
    Option<i64>,
);

/// The columns every reader of entries selects, in the order of [`EntryRow`].
pub(crate) const ENTRY_COLUMNS: &str = "seq, time_us, actor_id, actor_name, actor_ip, request_id, \
     action, target, outcome, details, leaf_hash, purged_at";

impl From<EntryRow> for StoredEntry {
    fn from(
        (
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
            leaf_hash,
            purged_at,
        ): EntryRow,
    ) -> Self {
        StoredEntry {
            stored_seq: seq,
            entry: Entry {
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
            leaf_hash,
            purged: purged_at.is_some(),
        }
    }
}

/// Every entry in sequence order.
pub async fn stored_entries(db: &Database) -> Result<Vec<StoredEntry>, DbError> {
    let rows: Vec<EntryRow> = with_db!(db, pool => sqlx::query_as(
        "SELECT seq, time_us, actor_id, actor_name, actor_ip, request_id, action, target, outcome, \
                details, leaf_hash, purged_at FROM audit_log ORDER BY seq"
    ).fetch_all(pool).await?);
    Ok(rows.into_iter().map(StoredEntry::from).collect())
}

/// The stored leaf hashes in sequence order, with the first sequence number that breaks the
/// chain of numbers (a gap or a reordering), if any.
pub async fn leaf_hashes(db: &Database) -> Result<Vec<(i64, Hash)>, DbError> {
    let rows: Vec<(i64, Vec<u8>)> = with_db!(db, pool => sqlx::query_as(
        "SELECT seq, leaf_hash FROM audit_log ORDER BY seq"
    ).fetch_all(pool).await?);
    rows.into_iter()
        .map(|(seq, bytes)| {
            let hash: Hash = bytes.try_into().map_err(|_| {
                DbError::Snapshot(format!("audit entry {seq}: leaf hash is not 32 bytes"))
            })?;
            Ok((seq, hash))
        })
        .collect()
}

/// The Merkle tree head of the whole log.
pub async fn tree_head(db: &Database) -> Result<(u64, Hash), DbError> {
    let leaves: Vec<Hash> = leaf_hashes(db).await?.into_iter().map(|(_, h)| h).collect();
    Ok((leaves.len() as u64, merkle::root(&leaves)))
}
