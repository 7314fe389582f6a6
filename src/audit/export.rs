//! Exporting the audit log for auditors: JSONL that an independent verifier (`audit/verify.py`)
//! checks against the server's public key alone, and CSV for spreadsheets. Both formats are
//! specified in `audit/FORMAT.md` §5–6.
//!
//! A JSONL export is a header (the filter, the public key, the covering checkpoint and every
//! checkpoint before it, with consistency proofs between successive ones), one line per entry
//! with its stored fields, its leaf hash and its inclusion proof, and a seal: the count and
//! SHA-256 of everything above it, signed with the checkpoint key, so that a line removed,
//! changed or reordered after the export is detected even when the filter leaves gaps.
//!
//! Every export is itself recorded (`audit.export`) before anything is written, and [`export`]
//! is the only way to produce one, so an export cannot skip its record. It exports the log as it
//! stood when asked: the matching entries up to the last one appended before the request. Its own
//! record comes right after that point, so it is never in the export it describes; a checkpoint
//! written for the export covers it, and the next export contains it.
//!
//! Memory: the leaf hashes of the log, and its Merkle tree (about 100 MB for a million entries);
//! entries are read and written in chunks, never all at once.

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};

use crate::audit::checkpoint::{Checkpoint, CheckpointSigner};
use crate::audit::merkle::{Hash, MerkleTree};
use crate::audit::query::{self, Filter};
use crate::audit::store::{self, StoredEntry};
use crate::audit::verify::{Tampering, write_checkpoint};
use crate::db::{Database, DbError};
use crate::security_events::{self, Actor};
use crate::{with_db, with_tx};

/// The `format` of a JSONL export's header.
pub const EXPORT_FORMAT: &str = "beffroi-audit-export/v1";

/// First line of the seal's signed text: distinct from a checkpoint's, so neither can pass for
/// the other.
pub const SEAL_CONTEXT: &str = "beffroi-audit-export-seal/v1";

/// Entries read from the database at a time.
const CHUNK: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Verifiable: proofs, checkpoints and a signed seal.
    Jsonl,
    /// For reading in a spreadsheet; not verifiable, formulas neutralised.
    Csv,
}

impl ExportFormat {
    pub fn name(self) -> &'static str {
        match self {
            Self::Jsonl => "jsonl",
            Self::Csv => "csv",
        }
    }
}

/// What an export contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    pub entries: u64,
    pub purged: u64,
    /// The export holds matching entries up to this sequence number.
    pub log_size: u64,
    /// The `audit.export` entry recording this export.
    pub record_seq: u64,
    /// The checkpoint the inclusion proofs lead to (JSONL only).
    pub checkpoint: Option<Checkpoint>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot write the export: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot encode the export: {0}")]
    Json(#[from] serde_json::Error),
    /// The stored log cannot yield proofs (entries missing under a checkpoint).
    #[error("audit log TAMPERED: {0}; nothing can be proved, run `beffroi audit verify`")]
    Tampered(Tampering),
    #[error("no checkpoint covers entry {0}, even after signing one")]
    NotCovered(u64),
}

/// Records the export, then writes the entries matching `filter` to `out` in `format`.
/// For JSONL, signs a checkpoint first if none covers the exported entries, and seals the export
/// with `signer`.
pub async fn export<W: AsyncWrite + Unpin>(
    db: &Database,
    signer: &CheckpointSigner,
    filter: &Filter,
    format: ExportFormat,
    requester: &Actor,
    out: W,
) -> Result<ExportSummary, ExportError> {
    let log_size: i64 = with_db!(db, pool => sqlx::query_scalar(
        "SELECT COALESCE(MAX(seq), 0) FROM audit_log"
    ).fetch_one(pool).await.map_err(DbError::from)?);
    let log_size = u64::try_from(log_size).unwrap_or(0);
    let (count, last_seq) = query::count(db, filter, Some(log_size)).await?;
    let record_seq = record(db, filter, format, requester, count, log_size).await?;
    let mut writer = LineWriter::new(out);
    let mut summary = ExportSummary {
        entries: 0,
        purged: 0,
        log_size,
        record_seq,
        checkpoint: None,
    };
    match format {
        ExportFormat::Csv => write_csv(db, filter, log_size, &mut writer, &mut summary).await?,
        ExportFormat::Jsonl => {
            write_jsonl(db, signer, filter, last_seq, &mut writer, &mut summary).await?
        }
    }
    writer.out.flush().await?;
    Ok(summary)
}

/// Appends the `audit.export` entry, committed before anything is written: an export that fails
/// half-way is still on record. Returns its sequence number.
async fn record(
    db: &Database,
    filter: &Filter,
    format: ExportFormat,
    requester: &Actor,
    count: u64,
    log_size: u64,
) -> Result<u64, ExportError> {
    let mut tx = db.begin().await?;
    security_events::audit_exported(&mut tx, requester, format.name(), filter, count, log_size)
        .await?;
    // The transaction holds the append lock until it commits: the last entry is ours.
    let seq: i64 = with_tx!(&mut tx, conn => sqlx::query_scalar(
        "SELECT MAX(seq) FROM audit_log"
    ).fetch_one(conn).await.map_err(DbError::from)?);
    tx.commit().await?;
    Ok(u64::try_from(seq).unwrap_or(0))
}

/// Writes lines and keeps the SHA-256 of every byte written, for the seal.
struct LineWriter<W: AsyncWrite + Unpin> {
    out: BufWriter<W>,
    digest: Sha256,
}

impl<W: AsyncWrite + Unpin> LineWriter<W> {
    fn new(out: W) -> Self {
        Self {
            out: BufWriter::with_capacity(64 * 1024, out),
            digest: Sha256::new(),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), std::io::Error> {
        self.digest.update(bytes);
        self.out.write_all(bytes).await
    }

    async fn json_line(&mut self, value: &impl Serialize) -> Result<(), ExportError> {
        let mut line = serde_json::to_vec(value)?;
        line.push(b'\n');
        self.write(&line).await?;
        Ok(())
    }
}

/// A checkpoint as stored, signature included.
#[derive(Debug, Clone, Serialize)]
struct CheckpointLine {
    tree_size: u64,
    #[serde(serialize_with = "as_hex")]
    root: Vec<u8>,
    time_us: i64,
    #[serde(serialize_with = "as_hex")]
    public_key: Vec<u8>,
    #[serde(serialize_with = "as_hex")]
    signature: Vec<u8>,
}

#[derive(Debug, Serialize)]
struct Consistency {
    from: u64,
    to: u64,
    proof: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Header<'a> {
    format: &'static str,
    exported_at: String,
    filter: &'a Filter,
    log_size: u64,
    record_seq: u64,
    public_key: String,
    checkpoints: &'a [CheckpointLine],
    consistency: Vec<Consistency>,
}

#[derive(Debug, Serialize)]
struct EntryLine<'a> {
    seq: u64,
    time_us: i64,
    actor_id: Option<i64>,
    actor_name: Option<&'a str>,
    actor_ip: Option<&'a str>,
    request_id: Option<&'a str>,
    action: &'a str,
    target: Option<&'a str>,
    outcome: &'a str,
    /// The stored JSON text, as a string: hashed as stored, never re-serialised.
    details: &'a str,
    leaf_hash: String,
    purged: bool,
    prev_seq: u64,
    proof: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Seal {
    entries: u64,
    sha256: String,
    signature: String,
}

#[derive(Debug, Serialize)]
struct SealLine {
    seal: Seal,
}

/// The text the seal's signature covers: three lines, each ending in `\n`.
pub fn seal_message(entries: u64, sha256: &[u8; 32]) -> Vec<u8> {
    format!("{SEAL_CONTEXT}\n{entries}\n{}\n", hex::encode(sha256)).into_bytes()
}

fn as_hex<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(bytes))
}

fn hexes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

type CheckpointRow = (i64, Vec<u8>, i64, Vec<u8>, Vec<u8>);

async fn checkpoints_up_to(db: &Database, size: i64) -> Result<Vec<CheckpointLine>, DbError> {
    let rows: Vec<CheckpointRow> = with_db!(db, pool => sqlx::query_as(
        "SELECT tree_size, root, time_us, public_key, signature FROM audit_checkpoints \
         WHERE tree_size <= $1 ORDER BY tree_size"
    ).bind(size).fetch_all(pool).await?);
    Ok(rows
        .into_iter()
        .map(
            |(tree_size, root, time_us, public_key, signature)| CheckpointLine {
                tree_size: u64::try_from(tree_size).unwrap_or(0),
                root,
                time_us,
                public_key,
                signature,
            },
        )
        .collect())
}

async fn latest_checkpoint_size(db: &Database) -> Result<u64, DbError> {
    let size: Option<i64> = with_db!(db, pool => sqlx::query_scalar(
        "SELECT MAX(tree_size) FROM audit_checkpoints"
    ).fetch_one(pool).await?);
    Ok(size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0))
}

/// The size of the latest checkpoint, signing one now if none covers entry `needed`.
async fn covering_size(
    db: &Database,
    signer: &CheckpointSigner,
    needed: u64,
) -> Result<u64, ExportError> {
    // The log is never empty here (the export's own record is in it), so a checkpoint can always
    // be signed; one is needed even for an export without entries, to state the key's view.
    let needed = needed.max(1);
    let mut size = latest_checkpoint_size(db).await?;
    if size < needed {
        write_checkpoint(db, signer).await?;
        size = latest_checkpoint_size(db).await?;
    }
    if size < needed {
        return Err(ExportError::NotCovered(needed));
    }
    Ok(size)
}

/// The tree of the first `size` stored leaves, refusing a log whose sequence numbers do not run
/// 1..=size (proofs would then be about another tree).
async fn stored_tree(db: &Database, size: u64) -> Result<MerkleTree, ExportError> {
    let stored = store::leaf_hashes(db).await?;
    let mut leaves = Vec::with_capacity(stored.len());
    for (i, (seq, hash)) in stored.into_iter().enumerate() {
        if leaves.len() as u64 == size {
            break;
        }
        let expected = i as u64 + 1;
        if u64::try_from(seq).ok() != Some(expected) {
            return Err(ExportError::Tampered(Tampering::Gap {
                expected,
                found: seq,
            }));
        }
        leaves.push(hash);
    }
    if (leaves.len() as u64) < size {
        return Err(ExportError::Tampered(Tampering::Truncated {
            tree_size: size,
            entries: leaves.len() as u64,
        }));
    }
    Ok(MerkleTree::new(leaves))
}

async fn write_jsonl<W: AsyncWrite + Unpin>(
    db: &Database,
    signer: &CheckpointSigner,
    filter: &Filter,
    last_seq: u64,
    writer: &mut LineWriter<W>,
    summary: &mut ExportSummary,
) -> Result<(), ExportError> {
    let size = covering_size(db, signer, last_seq).await?;
    let size_db = i64::try_from(size).unwrap_or(i64::MAX);
    let checkpoints = checkpoints_up_to(db, size_db).await?;
    let tree = stored_tree(db, size).await?;
    let consistency = checkpoints
        .windows(2)
        .map(|pair| {
            let (from, to) = (pair[0].tree_size, pair[1].tree_size);
            tree.consistency_proof(from, to)
                .map(|proof| Consistency {
                    from,
                    to,
                    proof: hexes(&proof),
                })
                .ok_or(ExportError::NotCovered(to))
        })
        .collect::<Result<Vec<_>, _>>()?;
    summary.checkpoint = checkpoints.last().map(|c| Checkpoint {
        tree_size: c.tree_size,
        root: Hash::try_from(c.root.as_slice()).unwrap_or([0; 32]),
        time_us: c.time_us,
    });
    writer
        .json_line(&Header {
            format: EXPORT_FORMAT,
            exported_at: rfc3339_us(store::now_us()),
            filter,
            log_size: summary.log_size,
            record_seq: summary.record_seq,
            public_key: hex::encode(signer.public_key()),
            checkpoints: &checkpoints,
            consistency,
        })
        .await?;
    let mut prev_seq = 0;
    let mut after = 0;
    loop {
        let chunk = query::ascending(db, filter, after, summary.log_size, CHUNK).await?;
        let Some(last) = chunk.last() else { break };
        after = last.entry.seq;
        for stored in &chunk {
            let seq = stored.entry.seq;
            let proof = seq
                .checked_sub(1)
                .and_then(|index| tree.inclusion_proof(index, size))
                .ok_or(ExportError::NotCovered(seq))?;
            writer
                .json_line(&entry_line(stored, prev_seq, &proof))
                .await?;
            prev_seq = seq;
            summary.entries += 1;
            summary.purged += u64::from(stored.purged);
        }
    }
    let digest: [u8; 32] = writer.digest.clone().finalize().into();
    let signature = signer.sign_message(&seal_message(summary.entries, &digest));
    writer
        .json_line(&SealLine {
            seal: Seal {
                entries: summary.entries,
                sha256: hex::encode(digest),
                signature: hex::encode(signature),
            },
        })
        .await
}

fn entry_line<'a>(stored: &'a StoredEntry, prev_seq: u64, proof: &[Hash]) -> EntryLine<'a> {
    let e = &stored.entry;
    EntryLine {
        seq: e.seq,
        time_us: e.time_us,
        actor_id: e.actor_id,
        actor_name: e.actor_name.as_deref(),
        actor_ip: e.actor_ip.as_deref(),
        request_id: e.request_id.as_deref(),
        action: &e.action,
        target: e.target.as_deref(),
        outcome: &e.outcome,
        details: &e.details,
        leaf_hash: hex::encode(&stored.leaf_hash),
        purged: stored.purged,
        prev_seq,
        proof: hexes(proof),
    }
}

const CSV_COLUMNS: [&str; 13] = [
    "seq",
    "time",
    "time_us",
    "actor_id",
    "actor_name",
    "actor_ip",
    "request_id",
    "action",
    "target",
    "outcome",
    "details",
    "leaf_hash",
    "purged",
];

async fn write_csv<W: AsyncWrite + Unpin>(
    db: &Database,
    filter: &Filter,
    log_size: u64,
    writer: &mut LineWriter<W>,
    summary: &mut ExportSummary,
) -> Result<(), ExportError> {
    writer.write(csv_row(CSV_COLUMNS).as_bytes()).await?;
    let mut after = 0;
    loop {
        let chunk = query::ascending(db, filter, after, log_size, CHUNK).await?;
        let Some(last) = chunk.last() else { break };
        after = last.entry.seq;
        for stored in &chunk {
            let e = &stored.entry;
            let text = |v: &Option<String>| v.clone().unwrap_or_default();
            let row = csv_row([
                e.seq.to_string(),
                rfc3339_us(e.time_us),
                e.time_us.to_string(),
                e.actor_id.map(|id| id.to_string()).unwrap_or_default(),
                text(&e.actor_name),
                text(&e.actor_ip),
                text(&e.request_id),
                e.action.clone(),
                text(&e.target),
                e.outcome.clone(),
                e.details.clone(),
                hex::encode(&stored.leaf_hash),
                stored.purged.to_string(),
            ]);
            writer.write(row.as_bytes()).await?;
            summary.entries += 1;
            summary.purged += u64::from(stored.purged);
        }
    }
    Ok(())
}

/// One CSV record (RFC 4180), ending in CRLF.
fn csv_row<S: AsRef<str>>(cells: impl IntoIterator<Item = S>) -> String {
    let mut row = String::new();
    for (i, cell) in cells.into_iter().enumerate() {
        if i > 0 {
            row.push(',');
        }
        row.push_str(&csv_cell(cell.as_ref()));
    }
    row.push_str("\r\n");
    row
}

/// A cell, neutralised then quoted. A spreadsheet runs a cell that starts with `=`, `+`, `-` or
/// `@` as a formula (and strips a leading tab or CR before looking), so a display name such as
/// `=HYPERLINK(…)` typed by anyone who can sign in would run on the auditor's machine (OWASP
/// "CSV injection"). Such cells get a leading `'`, which spreadsheets show as text. Then RFC 4180
/// §2: a cell with a comma, a double quote, CR or LF is enclosed in double quotes, and each double
/// quote inside is doubled.
pub fn csv_cell(value: &str) -> String {
    let neutralised = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if neutralised.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", neutralised.replace('"', "\"\""))
    } else {
        neutralised
    }
}

/// `2026-11-25T14:27:45.493932Z`: RFC 3339, UTC, microseconds.
pub fn rfc3339_us(us: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_neutralised() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell(""), "");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_cell("=1+1"), "'=1+1");
        assert_eq!(csv_cell("+33 1 23"), "'+33 1 23");
        assert_eq!(csv_cell("-2"), "'-2");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("\tx"), "'\tx");
        assert_eq!(csv_cell("\r=x"), "\"'\r=x\"");
        assert_eq!(
            csv_cell("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        // Only the first character counts.
        assert_eq!(csv_cell("a=b"), "a=b");
        assert_eq!(csv_row(["1", "x,y", "=z"]), "1,\"x,y\",'=z\r\n");
    }

    #[test]
    fn times_are_rfc3339_with_microseconds() {
        assert_eq!(
            rfc3339_us(1_764_079_200_000_001),
            "2025-11-25T14:00:00.000001Z"
        );
        assert_eq!(rfc3339_us(0), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn the_seal_is_its_own_kind_of_statement() {
        let message = seal_message(3, &[0xab; 32]);
        assert_eq!(
            String::from_utf8(message).unwrap(),
            format!("beffroi-audit-export-seal/v1\n3\n{}\n", "ab".repeat(32))
        );
        assert_ne!(SEAL_CONTEXT, crate::audit::checkpoint::CHECKPOINT_CONTEXT);
    }
}
