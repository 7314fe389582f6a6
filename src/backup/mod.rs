//! Encrypted, verifiable backups: `beffroi backup create|verify|restore|prune`.
//!
//! A backup is a tar stream (database snapshot, uploaded files, the configuration file, the
//! instance's identity, and a signed manifest as the last member) encrypted with age to the X25519
//! recipients listed in `[backup]`, written straight to disk while being hashed. Beside it, a
//! second signed manifest (the "envelope") adds the ciphertext's size and SHA-256, so an archive
//! can be checked for completeness and tampering by anyone holding the instance's public key,
//! without decrypting it. Manifests are signed with the audit checkpoint key
//! (`<data_dir>/audit-checkpoint-key.pk8`): one public key for an auditor to record.
//!
//! This module must never hold an age identity that can decrypt a backup except when an operator
//! passes one on the command line (`verify --identity`, `restore --identity`), and it never reads
//! a whole member into memory: every copy is a bounded, streaming one.

pub mod bench;
pub mod cli;
pub mod create;
mod hashing;
pub mod manifest;
pub(crate) mod pg;
mod pipeline;
mod progress;
mod read;
mod restore;
pub mod rotation;
mod verify;

use std::path::{Path, PathBuf};

pub use create::{CreateOptions, CreateReport, create};
pub use progress::Progress;
pub use restore::{RestoreOptions, RestoreReport, restore};
pub use verify::{VerifyOptions, VerifyReport, verify};

use crate::audit::store::NewEntry;
use crate::config::Config;
use crate::db::{Database, DbError};

/// What went wrong, phrased for the operator: each variant names the file or the check at fault.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    ConfigFile(#[from] crate::config::ConfigError),
    #[error("database snapshot failed: {0}")]
    Snapshot(String),
    #[error("encryption failed: {0}")]
    Encrypt(String),
    /// The archive or its manifest is not what the instance wrote: refused.
    #[error("REFUSED: {0}")]
    Refused(String),
    #[error("{0}")]
    Restore(String),
    /// The blob store (S3) could not be listed, read or written.
    #[error("file store: {0}")]
    Blobs(String),
}

impl BackupError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
        move |source| BackupError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Suffix of an archive, and of the signed manifest written beside it.
pub const ARCHIVE_SUFFIX: &str = ".tar.age";
pub const ENVELOPE_SUFFIX: &str = ".tar.age.manifest.json";

/// The signed manifest beside `archive`.
pub fn envelope_path(archive: &Path) -> PathBuf {
    let mut s = archive.as_os_str().to_owned();
    s.push(".manifest.json");
    PathBuf::from(s)
}

/// Where backups go: `backup.dir`, else `<data_dir>/backups`.
pub fn backup_dir(config: &Config) -> PathBuf {
    config
        .backup
        .as_ref()
        .and_then(|b| b.dir.clone())
        .unwrap_or_else(|| config.storage.data_dir.join("backups"))
}

/// The file naming this instance across backups and restores: 128 random bits in hex.
pub fn instance_id_path(data_dir: &Path) -> PathBuf {
    data_dir.join("instance-id")
}

/// The instance id, if this data directory has one.
pub fn read_instance_id(data_dir: &Path) -> Result<Option<String>, BackupError> {
    let path = instance_id_path(data_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim().to_owned();
            if !is_instance_id(&id) {
                return Err(BackupError::Config(format!(
                    "{}: not an instance id (32 lowercase hex digits)",
                    path.display()
                )));
            }
            Ok(Some(id))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(BackupError::io(&path)(e)),
    }
}

pub(crate) fn is_instance_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The instance id, created (random, mode 0600) on first use. It is stable: a restore writes the
/// archive's id back, so that the restored instance is the same one and its next backups say so.
pub fn ensure_instance_id(data_dir: &Path) -> Result<String, BackupError> {
    if let Some(id) = read_instance_id(data_dir)? {
        return Ok(id);
    }
    crate::db::create_private_dir(data_dir)?;
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| BackupError::Config(format!("no randomness available: {e}")))?;
    let id = hex::encode(bytes);
    write_private_new(&instance_id_path(data_dir), format!("{id}\n").as_bytes())?;
    Ok(id)
}

/// Writes a new file readable by the owner only, refusing to replace an existing one.
pub(crate) fn write_private_new(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(BackupError::io(path))?;
    file.write_all(bytes).map_err(BackupError::io(path))?;
    file.sync_all().map_err(BackupError::io(path))
}

/// Replaces `path` atomically with `bytes` (written to a sibling, synced, renamed).
pub(crate) fn write_private_atomic(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    write_private_new(&tmp, bytes)?;
    std::fs::rename(&tmp, path).map_err(BackupError::io(path))?;
    sync_parent(path);
    Ok(())
}

/// Makes a rename durable: the directory entry must reach the disk too.
pub(crate) fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// The database's schema version: the highest migration applied.
pub async fn schema_version(db: &Database) -> Result<i64, BackupError> {
    let v: Option<i64> = crate::with_db!(db, pool => sqlx::query_scalar(
        "SELECT MAX(version) FROM _sqlx_migrations WHERE success"
    ).fetch_one(pool).await.map_err(DbError::from)?);
    Ok(v.unwrap_or(0))
}

/// The highest schema version this binary knows, per backend.
pub fn known_schema_version(backend: crate::db::Backend) -> i64 {
    crate::db::latest_migration(backend)
}

/// Appends one audit entry for a backup operation in its own transaction. A failure to record it
/// is returned: a backup whose audit entry is missing must not look like a clean success.
pub async fn audit(
    db: &Database,
    action: &'static str,
    target: &str,
    outcome: &'static str,
    details: serde_json::Value,
) -> Result<(), BackupError> {
    let mut tx = db.begin().await?;
    crate::audit::store::append(
        &mut tx,
        NewEntry {
            actor_id: None,
            actor_name: Some("console".into()),
            actor_ip: None,
            request_id: None,
            action,
            target: Some(target.to_owned()),
            outcome,
            details,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The Ed25519 public key in `--public-key`: 64 hex digits.
pub fn parse_public_key(text: &str) -> Result<[u8; 32], BackupError> {
    let bytes = hex::decode(text.trim())
        .map_err(|_| BackupError::Config("--public-key: expected 64 hexadecimal digits".into()))?;
    bytes
        .try_into()
        .map_err(|_| BackupError::Config("--public-key: expected 64 hexadecimal digits".into()))
}

/// The public key of the instance's signing key, when the data directory has one. Never creates
/// the key: a verification must not invent the key it checks against.
pub fn instance_public_key(config: &Config) -> Result<Option<[u8; 32]>, BackupError> {
    let path = crate::cli::checkpoint_key_path(config);
    if !path.exists() {
        return Ok(None);
    }
    let signer = crate::audit::checkpoint::CheckpointSigner::load_or_create(&path)
        .map_err(|e| BackupError::Config(e.to_string()))?;
    Ok(Some(signer.public_key()))
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => unix.to_string(),
    }
}
