//! `beffroi audit verify` and `beffroi audit checkpoint`: recompute every entry's leaf hash from
//! its stored fields, check the sequence has no gap, rebuild the tree, and check every signed
//! checkpoint against the log prefix it covers (which also proves consistency between
//! checkpoints: they are all recomputed from the same leaves). The first bad sequence number is
//! named.

use std::borrow::Cow;

use serde::Deserialize as _;

use futures_util::StreamExt;

use crate::audit::checkpoint::{Checkpoint, CheckpointSigner};
use crate::audit::entry::EntryFields;
use crate::audit::merkle::{self, Hash};
use crate::db::{Database, DbError};
use crate::with_db;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub entries: u64,
    pub root: Hash,
    pub checkpoints: usize,
    pub purged: u64,
}

/// What is wrong, at the first sequence number where it shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Tampering {
    #[error("entry {expected} is missing (the next stored entry is {found})")]
    Gap { expected: u64, found: i64 },
    #[error("entry {seq} does not match its hash (a field was changed)")]
    Altered { seq: u64 },
    #[error(
        "checkpoint at tree size {tree_size} covers entries the log no longer has (log has {entries})"
    )]
    Truncated { tree_size: u64, entries: u64 },
    #[error(
        "checkpoint at tree size {tree_size}: the log's entries 1..={tree_size} give another root (history rewritten)"
    )]
    Rewritten { tree_size: u64 },
    #[error("checkpoint at tree size {tree_size}: bad signature")]
    BadSignature { tree_size: u64 },
    #[error("checkpoint at tree size {tree_size} was signed by another key")]
    ForeignKey { tree_size: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("audit log TAMPERED: {0}")]
    Tampered(Tampering),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// tree_size, root, time_us, public_key, signature
type CheckpointRow = (i64, Vec<u8>, i64, Vec<u8>, Vec<u8>);

/// Verifies the whole log in one ordered pass (read in parallel ranges, checked in order). `expected_key` is the server's checkpoint
/// public key, when known: a checkpoint signed by any other key is reported. Problems are
/// reported in log order: each checkpoint is checked as soon as the entries it covers are read.
pub async fn verify(db: &Database, expected_key: Option<&[u8; 32]>) -> Result<Report, VerifyError> {
    let checkpoints: Vec<CheckpointRow> = with_db!(db, pool => sqlx::query_as(
        "SELECT tree_size, root, time_us, public_key, signature FROM audit_checkpoints ORDER BY tree_size"
    ).fetch_all(pool).await.map_err(DbError::from)?);
    let mut pending = checkpoints.iter().peekable();
    // A checkpoint of size 0 (never written, but a forged row could claim it) is checked first.
    let mut tree = merkle::CompactTree::default();
    let mut purged = 0;
    while let Some(cp) = pending.next_if(|cp| cp.0 <= 0) {
        check_checkpoint(cp, &tree, expected_key)?;
    }
    // The log is read in ranges of sequence numbers, several at once on separate connections,
    // and each range's leaf hashes are recomputed on its own task: reading rows is what costs,
    // and it parallelises. Ranges are then consumed strictly in order, so the checks below see
    // the log exactly as one pass would, and memory stays bounded by the ranges in flight.
    // The maximum is read after the checkpoints, so every checkpoint's size is within it.
    let max_seq = crate::audit::store::max_seq(db).await?;
    let mut chunks = futures_util::stream::iter(seq_ranges(max_seq))
        .map(|(lo, hi)| {
            let db = db.clone();
            tokio::spawn(async move { checked_range(&db, lo, hi).await })
        })
        .buffered(RANGES_IN_FLIGHT);
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| DbError::Snapshot(format!("audit verify task: {e}")))??;
        for row in chunk {
            let expected = tree.size() + 1;
            let seq = row
                .seq
                .unwrap_or(i64::try_from(expected).unwrap_or(i64::MAX));
            if u64::try_from(seq).ok() != Some(expected) {
                return Err(VerifyError::Tampered(Tampering::Gap {
                    expected,
                    found: seq,
                }));
            }
            let stored = match row.hash {
                RowHash::Purged(stored) => {
                    // The personal fields are gone by design; the stored hash still anchors it.
                    purged += 1;
                    stored
                }
                RowHash::Matches(stored) => stored,
                RowHash::Mismatch => {
                    return Err(VerifyError::Tampered(Tampering::Altered { seq: expected }));
                }
            };
            tree.push(stored);
            while let Some(cp) = pending.next_if(|cp| u64::try_from(cp.0).ok() == Some(tree.size()))
            {
                check_checkpoint(cp, &tree, expected_key)?;
            }
        }
    }
    // Checkpoints beyond the last entry: the tail of the log is gone.
    if let Some(cp) = pending.next() {
        let tree_size = u64::try_from(cp.0).unwrap_or(u64::MAX);
        check_signature(cp, tree_size, expected_key)?;
        return Err(VerifyError::Tampered(Tampering::Truncated {
            tree_size,
            entries: tree.size(),
        }));
    }
    Ok(Report {
        entries: tree.size(),
        root: tree.root(),
        checkpoints: checkpoints.len(),
        purged,
    })
}

/// Entries per range read by one task.
const RANGE_LEN: i64 = 16_384;
/// Ranges read at the same time.
const RANGES_IN_FLIGHT: usize = 4;

/// Contiguous ranges covering every possible sequence number: the first starts at the lowest
/// `i64` and the last ends at the highest, so a forged row numbered 0, negative, or beyond the
/// maximum read at the start is still read (and reported as a gap).
fn seq_ranges(max_seq: i64) -> Vec<(i64, i64)> {
    let mut ranges = Vec::new();
    let mut lo = i64::MIN;
    let mut hi = 1i64.saturating_add(RANGE_LEN);
    while hi <= max_seq {
        ranges.push((lo, hi));
        lo = hi;
        hi = hi.saturating_add(RANGE_LEN);
    }
    ranges.push((lo, i64::MAX));
    ranges
}

/// What one row's stored hash says.
enum RowHash {
    /// Recomputed from the fields and equal to the stored hash.
    Matches(Hash),
    /// Purged row: the stored hash is taken as it is.
    Purged(Hash),
    /// The fields do not give the stored hash (or it is not 32 bytes).
    Mismatch,
}

struct CheckedRow {
    /// The stored sequence number; `None` when the row is so damaged that even it cannot be
    /// read, in which case it is reported at the position it occupies.
    seq: Option<i64>,
    hash: RowHash,
}

/// One row of [`crate::audit::store::range_as_json`], borrowing its text where the JSON has no
/// escapes.
#[derive(serde::Deserialize)]
struct JsonRow<'a>(
    i64,
    i64,
    Option<i64>,
    #[serde(borrow)] Option<Text<'a>>,
    #[serde(borrow)] Option<Text<'a>>,
    #[serde(borrow)] Option<Text<'a>>,
    #[serde(borrow)] Text<'a>,
    #[serde(borrow)] Option<Text<'a>>,
    #[serde(borrow)] Text<'a>,
    #[serde(borrow)] Text<'a>,
    #[serde(borrow)] Text<'a>,
    i64,
);

/// A JSON string, borrowed from the input when it has no escapes. (serde's own `Cow` does not
/// borrow inside an `Option`.)
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
        }
        deserializer.deserialize_str(Visitor).map(Text)
    }
}

impl Text<'_> {
    fn as_str(&self) -> &str {
        &self.0
    }
}

/// Reads one range and recomputes its leaf hashes.
async fn checked_range(db: &Database, lo: i64, hi: i64) -> Result<Vec<CheckedRow>, DbError> {
    let json = crate::audit::store::range_as_json(db, lo, hi).await?;
    let mut buffer = Vec::with_capacity(1024);
    if let Ok(rows) = serde_json::from_str::<Vec<JsonRow>>(&json) {
        return Ok(rows.iter().map(|row| check_row(row, &mut buffer)).collect());
    }
    // Some row does not have the log's shape (a text where a number belongs, say): row by row,
    // so that it is reported as altered at its own position.
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json)
        .map_err(|e| DbError::Snapshot(format!("audit verify: entries {lo}..{hi}: {e}")))?;
    Ok(rows
        .iter()
        .map(|value| match JsonRow::deserialize(value) {
            Ok(row) => check_row(&row, &mut buffer),
            Err(_) => CheckedRow {
                seq: value.get(0).and_then(serde_json::Value::as_i64),
                hash: RowHash::Mismatch,
            },
        })
        .collect())
}

fn check_row(row: &JsonRow<'_>, buffer: &mut Vec<u8>) -> CheckedRow {
    let JsonRow(
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
        leaf_hex,
        purged,
    ) = row;
    let mut stored = [0u8; 32];
    let hash = if hex::decode_to_slice(leaf_hex.as_str(), &mut stored).is_err() {
        RowHash::Mismatch
    } else if *purged != 0 {
        RowHash::Purged(stored)
    } else {
        let fields = EntryFields {
            seq: u64::try_from(*seq).unwrap_or(0),
            time_us: *time_us,
            actor_id: *actor_id,
            actor_name: actor_name.as_ref().map(Text::as_str),
            actor_ip: actor_ip.as_ref().map(Text::as_str),
            request_id: request_id.as_ref().map(Text::as_str),
            action: action.as_str(),
            target: target.as_ref().map(Text::as_str),
            outcome: outcome.as_str(),
            details: details.as_str(),
        };
        match fields.leaf_hash_with(buffer) {
            Ok(recomputed) if recomputed == stored => RowHash::Matches(stored),
            _ => RowHash::Mismatch,
        }
    };
    CheckedRow {
        seq: Some(*seq),
        hash,
    }
}

/// The checkpoint's signature, and that it was made with the expected key.
fn check_signature(
    cp: &CheckpointRow,
    tree_size: u64,
    expected_key: Option<&[u8; 32]>,
) -> Result<Hash, VerifyError> {
    let (_, root, time_us, key, signature) = cp;
    let Ok(root) = Hash::try_from(root.as_slice()) else {
        return Err(VerifyError::Tampered(Tampering::BadSignature { tree_size }));
    };
    let checkpoint = Checkpoint {
        tree_size,
        root,
        time_us: *time_us,
    };
    if !checkpoint.verify(key, signature) {
        return Err(VerifyError::Tampered(Tampering::BadSignature { tree_size }));
    }
    if expected_key.is_some_and(|k| k.as_slice() != key.as_slice()) {
        return Err(VerifyError::Tampered(Tampering::ForeignKey { tree_size }));
    }
    Ok(root)
}

/// A checkpoint reached by the stream: signed right, and the root of the entries read so far.
fn check_checkpoint(
    cp: &CheckpointRow,
    tree: &merkle::CompactTree,
    expected_key: Option<&[u8; 32]>,
) -> Result<(), VerifyError> {
    let tree_size = tree.size();
    let root = check_signature(cp, tree_size, expected_key)?;
    if tree.root() != root {
        return Err(VerifyError::Tampered(Tampering::Rewritten { tree_size }));
    }
    Ok(())
}

/// Signs and stores a checkpoint of the log as it is now (nothing if it is already covered).
pub async fn write_checkpoint(
    db: &Database,
    signer: &CheckpointSigner,
) -> Result<Option<Checkpoint>, DbError> {
    let (tree_size, root) = crate::audit::store::tree_head(db).await?;
    let size_db =
        i64::try_from(tree_size).map_err(|_| DbError::Snapshot("audit log too large".into()))?;
    let exists: i64 = with_db!(db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_checkpoints WHERE tree_size = $1"
    ).bind(size_db).fetch_one(pool).await?);
    if exists > 0 || tree_size == 0 {
        return Ok(None);
    }
    let time_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let checkpoint = Checkpoint {
        tree_size,
        root,
        time_us,
    };
    Ok(store_checkpoint(db, &checkpoint, signer)
        .await?
        .then_some(checkpoint))
}

/// Signs `checkpoint` and stores it; false if one of that tree size exists already (another
/// node may sign the same tree size at the same moment: the first one stays).
pub async fn store_checkpoint(
    db: &Database,
    checkpoint: &Checkpoint,
    signer: &CheckpointSigner,
) -> Result<bool, DbError> {
    let size_db =
        i64::try_from(checkpoint.tree_size).map_err(|_| DbError::Audit("tree too large".into()))?;
    let (root, time_us) = (checkpoint.root, checkpoint.time_us);
    let signature = signer.sign(checkpoint);
    let inserted = with_db!(db, pool => sqlx::query(
        "INSERT INTO audit_checkpoints (tree_size, root, time_us, public_key, signature) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tree_size) DO NOTHING"
    )
    .bind(size_db)
    .bind(root.to_vec())
    .bind(time_us)
    .bind(signer.public_key().to_vec())
    .bind(signature.to_vec())
    .execute(pool).await?.rows_affected());
    Ok(inserted == 1)
}

/// Whether a periodic checkpoint is due: `every_entries` entries appended since the last
/// checkpoint, or an entry left uncovered for `every_us`. Cheap (three indexed lookups), so it
/// can run often; an idle log gets no new checkpoint.
pub async fn checkpoint_due(
    db: &Database,
    every_entries: u64,
    every_us: i64,
    now_us: i64,
) -> Result<bool, DbError> {
    let last_seq: Option<i64> = with_db!(db, pool => sqlx::query_scalar(
        "SELECT MAX(seq) FROM audit_log"
    ).fetch_one(pool).await?);
    let covered: Option<i64> = with_db!(db, pool => sqlx::query_scalar(
        "SELECT MAX(tree_size) FROM audit_checkpoints"
    ).fetch_one(pool).await?);
    let covered = covered.unwrap_or(0);
    let new_entries = u64::try_from(last_seq.unwrap_or(0) - covered).unwrap_or(0);
    if new_entries == 0 {
        return Ok(false);
    }
    if new_entries >= every_entries {
        return Ok(true);
    }
    let oldest_uncovered: Option<i64> = with_db!(db, pool => sqlx::query_scalar(
        "SELECT time_us FROM audit_log WHERE seq = $1"
    ).bind(covered + 1).fetch_optional(pool).await?);
    Ok(oldest_uncovered.is_some_and(|t| now_us - t >= every_us))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_every_sequence_number_without_overlap() {
        for max in [0, 1, RANGE_LEN, RANGE_LEN + 1, 5 * RANGE_LEN + 7] {
            let ranges = seq_ranges(max);
            assert_eq!(ranges.first().map(|r| r.0), Some(i64::MIN));
            assert_eq!(ranges.last().map(|r| r.1), Some(i64::MAX));
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].1, pair[1].0, "contiguous for max {max}");
                assert!(pair[0].0 < pair[0].1);
            }
            // The last range starts at or below the maximum, so no range is empty by design.
            assert!(ranges.last().map(|r| r.0).unwrap() <= max.max(1));
        }
        assert_eq!(seq_ranges(5 * RANGE_LEN + 7).len(), 6);
    }
}
