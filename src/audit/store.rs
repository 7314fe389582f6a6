//! Appending to and reading the audit log table. An entry is appended inside the caller's
//! transaction, so it commits or rolls back with the change it records; its sequence number is
//! the next one, taken under a lock (SQLite's write lock; a transaction-scoped advisory lock on
//! PostgreSQL, so several nodes append without gaps or duplicates).
//!
//! This module has no update and no delete: the table refuses them anyway (migration 0005).

use futures_util::TryStreamExt;
use serde_json::Value;

use crate::audit::catalogue;
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

/// Now, in microseconds since the Unix epoch (the log's clock).
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Refuses an entry whose action or outcome is not in the catalogue.
pub fn check_catalogue(new: &NewEntry) -> Result<(), DbError> {
    if !catalogue::is_action(new.action) || !catalogue::is_outcome(new.outcome) {
        return Err(DbError::Audit(format!(
            "{}/{} is not in the catalogue (src/audit/catalogue.rs)",
            new.action, new.outcome
        )));
    }
    Ok(())
}

/// Appends `new` in `tx`; returns the stored entry.
pub async fn append(tx: &mut Tx, new: NewEntry) -> Result<Entry, DbError> {
    let mut stored = append_batch(tx, vec![new]).await?;
    stored
        .pop()
        .ok_or_else(|| DbError::Audit("nothing appended".into()))
}

/// Rows per INSERT statement in a batch: 11 parameters each, well under both backends' limits.
const ROWS_PER_INSERT: usize = 200;

/// Appends `entries` in `tx`, in order, with consecutive sequence numbers: one lock, one
/// lookup of the last number and one INSERT per [`ROWS_PER_INSERT`] entries. Nothing is
/// appended if any entry is refused.
pub async fn append_batch(tx: &mut Tx, entries: Vec<NewEntry>) -> Result<Vec<Entry>, DbError> {
    for new in &entries {
        check_catalogue(new)?;
    }
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    if let Tx::Postgres(t) = tx {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(APPEND_LOCK)
            .execute(&mut **t)
            .await?;
    }
    let last: Option<i64> = with_tx!(tx, conn => sqlx::query_scalar("SELECT MAX(seq) FROM audit_log").fetch_one(conn).await?);
    let first = u64::try_from(last.unwrap_or(0)).unwrap_or(0) + 1;
    let time_us = now_us();
    let mut stored = Vec::with_capacity(entries.len());
    let mut hashes = Vec::with_capacity(entries.len());
    for (seq, new) in (first..).zip(entries) {
        let details = match &new.details {
            Value::Object(_) => new.details.to_string(),
            other => serde_json::json!({ "value": other }).to_string(),
        };
        let entry = Entry {
            seq,
            time_us,
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
            .map_err(|e| DbError::Audit(format!("entry too large: {e}")))?;
        i64::try_from(entry.seq).map_err(|_| DbError::Audit("the log is full".into()))?;
        hashes.push(leaf.to_vec());
        stored.push(entry);
    }
    for (chunk, chunk_hashes) in stored
        .chunks(ROWS_PER_INSERT)
        .zip(hashes.chunks(ROWS_PER_INSERT))
    {
        with_tx!(tx, conn => {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO audit_log (seq, time_us, actor_id, actor_name, actor_ip, \
                 request_id, action, target, outcome, details, leaf_hash) ",
            );
            insert.push_values(chunk.iter().zip(chunk_hashes), |mut row, (e, leaf)| {
                row.push_bind(i64::try_from(e.seq).unwrap_or(i64::MAX))
                    .push_bind(e.time_us)
                    .push_bind(e.actor_id)
                    .push_bind(e.actor_name.clone())
                    .push_bind(e.actor_ip.clone())
                    .push_bind(e.request_id.clone())
                    .push_bind(e.action.clone())
                    .push_bind(e.target.clone())
                    .push_bind(e.outcome.clone())
                    .push_bind(e.details.clone())
                    .push_bind(leaf.clone());
            });
            insert.build().execute(conn).await.map(|_| ())?
        });
    }
    Ok(stored)
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

/// The columns every reader of entries selects, in the order of [`EntryRow`] (the auditors'
/// search builds its queries around them).
pub(crate) const ENTRY_COLUMNS: &str = "seq, time_us, actor_id, actor_name, actor_ip, request_id, \
     action, target, outcome, details, leaf_hash, purged_at";

const SELECT_ENTRIES: &str = "SELECT seq, time_us, actor_id, actor_name, actor_ip, request_id, \
     action, target, outcome, details, leaf_hash, purged_at FROM audit_log ORDER BY seq";

pub(crate) fn stored_entry(row: EntryRow) -> StoredEntry {
    let (
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
    ) = row;
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

/// Every entry in sequence order.
pub async fn stored_entries(db: &Database) -> Result<Vec<StoredEntry>, DbError> {
    let mut all = Vec::new();
    each_entry(db, |e| {
        all.push(e);
        Ok::<(), DbError>(())
    })
    .await?;
    Ok(all)
}

/// Calls `visit` with every entry in sequence order, streaming: memory stays flat however
/// long the log is. Stops at the first error `visit` returns.
pub async fn each_entry<E: From<DbError>>(
    db: &Database,
    mut visit: impl FnMut(StoredEntry) -> Result<(), E>,
) -> Result<(), E> {
    with_db!(db, pool => {
        let mut rows = sqlx::query_as::<_, EntryRow>(SELECT_ENTRIES).fetch(pool);
        while let Some(row) = rows.try_next().await.map_err(DbError::from)? {
            visit(stored_entry(row))?;
        }
    });
    Ok(())
}

/// The entries with `lo <= seq < hi`, in order, as ONE JSON text: an array of arrays
/// `[seq, time_us, actor_id, actor_name, actor_ip, request_id, action, target, outcome, details,
/// leaf_hash (hex), purged (0 or 1)]`. `audit verify` reads a million rows; sent one row at a
/// time through the driver, each row's values are copied twice, and that was most of its time.
/// JSON carries every value exactly (text as escaped strings, integers as integers), and the
/// verifier still recomputes every hash from the fields itself.
pub async fn range_as_json(db: &Database, lo: i64, hi: i64) -> Result<String, DbError> {
    let json: Option<String> =
        match db {
            Database::Sqlite(pool) => sqlx::query_scalar(
                "SELECT json_group_array(json_array(seq, time_us, actor_id, actor_name, actor_ip, \
             request_id, action, target, outcome, details, hex(leaf_hash), \
             CASE WHEN purged_at IS NULL THEN 0 ELSE 1 END) ORDER BY seq) \
             FROM audit_log WHERE seq >= $1 AND seq < $2",
            )
            .bind(lo)
            .bind(hi)
            .fetch_one(pool)
            .await?,
            Database::Postgres(pool) => sqlx::query_scalar(
                "SELECT json_agg(json_build_array(seq, time_us, actor_id, actor_name, actor_ip, \
             request_id, action, target, outcome, details, encode(leaf_hash, 'hex'), \
             CASE WHEN purged_at IS NULL THEN 0 ELSE 1 END) ORDER BY seq)::text \
             FROM audit_log WHERE seq >= $1 AND seq < $2",
            )
            .bind(lo)
            .bind(hi)
            .fetch_one(pool)
            .await?,
        };
    Ok(json.unwrap_or_else(|| "[]".to_owned()))
}

/// The highest sequence number stored (0 for an empty log).
pub async fn max_seq(db: &Database) -> Result<i64, DbError> {
    Ok(with_db!(db, pool => sqlx::query_scalar::<_, Option<i64>>(
        "SELECT MAX(seq) FROM audit_log"
    ).fetch_one(pool).await?)
    .unwrap_or(0))
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

/// The retention purge: empties the personal fields of entries older than `before_us` (the
/// only UPDATE the table's triggers allow); returns how many entries were purged.
pub async fn purge_before(tx: &mut Tx, before_us: i64) -> Result<u64, DbError> {
    let purged = with_tx!(tx, conn => sqlx::query(
        "UPDATE audit_log SET actor_id = NULL, actor_name = NULL, actor_ip = NULL, \
             request_id = NULL, target = NULL, details = '{}', purged_at = $1 \
         WHERE time_us < $2 AND purged_at IS NULL"
    ).bind(now_us()).bind(before_us).execute(conn).await?.rows_affected());
    Ok(purged)
}

/// The details of the latest entry with `action`, if any (e.g. the previous `server.start`).
pub async fn latest_details(db: &Database, action: &str) -> Result<Option<Value>, DbError> {
    let text: Option<String> = with_db!(db, pool => sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = $1 ORDER BY seq DESC LIMIT 1"
    ).bind(action).fetch_optional(pool).await?);
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}
