//! `beffroi backup verify`: everything that can be proved about an archive without restoring
//! it. Without an identity: the envelope's signature, the instance, the archive's size and
//! SHA-256. With one: also decrypt (to a private temporary directory), check every member's
//! hash against the signed manifest inside, and that the database opens and passes its checks.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::BackupError;
use super::progress::Progress;
use super::read::{self, Keep};

pub struct VerifyOptions {
    pub identity: Option<PathBuf>,
    /// The instance's Ed25519 public key the manifests must be signed with.
    pub public_key: [u8; 32],
    /// This instance's id, when verifying on the instance: an archive of another is refused.
    pub expected_instance: Option<String>,
    /// Where the database is decrypted to for its check (a private temporary directory is
    /// made inside and removed).
    pub work_dir: PathBuf,
    pub progress: Arc<Progress>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub archive: PathBuf,
    pub instance_id: String,
    pub created: String,
    pub beffroi_version: String,
    pub schema_version: i64,
    pub backend: String,
    pub size: u64,
    pub sha256: String,
    pub members: usize,
    pub signing_key: String,
    pub audit_tree_size: Option<u64>,
    /// Whether the archive was decrypted and every member checked.
    pub decrypted: bool,
    /// What the database check found, when decrypted.
    pub database: Option<String>,
}

pub async fn verify(archive: &Path, options: &VerifyOptions) -> Result<VerifyReport, BackupError> {
    let key = options.public_key;
    let archive_owned = archive.to_owned();
    let expected = options.expected_instance.clone();
    let progress = options.progress.clone();
    // With an identity the hash is computed while decrypting: one pass over the file.
    let content = if options.identity.is_some() {
        read::Content::Later
    } else {
        read::Content::Hash
    };
    let envelope = tokio::task::spawn_blocking(move || {
        read::check_envelope(
            &archive_owned,
            &key,
            expected.as_deref(),
            content,
            &progress,
        )
    })
    .await
    .map_err(|e| BackupError::Refused(format!("the check stopped: {e}")))??;
    options.progress.finish();
    let mut report = VerifyReport {
        archive: archive.to_owned(),
        instance_id: envelope.manifest.instance_id.clone(),
        created: envelope.manifest.created.clone(),
        beffroi_version: envelope.manifest.beffroi_version.clone(),
        schema_version: envelope.manifest.schema_version,
        backend: envelope.manifest.backend.clone(),
        size: envelope.archive.size,
        sha256: envelope.archive.sha256.clone(),
        members: envelope.manifest.members.len() + 1,
        signing_key: envelope.manifest.signing_key.clone(),
        audit_tree_size: envelope
            .manifest
            .audit_checkpoint
            .as_ref()
            .map(|c| c.tree_size),
        decrypted: false,
        database: None,
    };
    let Some(identity) = &options.identity else {
        return Ok(report);
    };
    let identities = read::read_identities(identity)?;
    crate::db::create_private_dir(&options.work_dir)?;
    let work = tempfile::Builder::new()
        .prefix(".verify-")
        .tempdir_in(&options.work_dir)
        .map_err(BackupError::io(&options.work_dir))?;
    let archive_owned = archive.to_owned();
    let into = work.path().to_owned();
    let progress = options.progress.clone();
    let signed = tokio::task::spawn_blocking(move || {
        read::unpack(
            &archive_owned,
            &envelope,
            &key,
            &identities,
            &into,
            Keep::Database,
            &progress,
        )
    })
    .await
    .map_err(|e| BackupError::Refused(format!("the check stopped: {e}")))??;
    options.progress.finish();
    report.database = Some(
        read::check_database(
            work.path(),
            &signed.manifest,
            &key,
            read::DatabaseCheck::Full,
        )
        .await?,
    );
    report.decrypted = true;
    Ok(report)
}
