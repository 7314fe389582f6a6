//! `beffroi backup create`: snapshot the database while the server runs, then stream the
//! snapshot, the uploaded files, the configuration and the instance's identity through tar and
//! age into `<dir>/beffroi-<time>-<instance>.tar.age`, hashing each member on the way, and
//! write the signed manifests.
//!
//! The files come from the configured blob store: `<data_dir>/files`, or the S3 bucket, whose
//! objects are listed, read one at a time (each re-hashed against its key) and archived under the
//! same `files/ab/cdef…` names, so that an archive restores to either kind of store.
//!
//! The only plaintext written to disk is the database snapshot, in a private temporary
//! directory inside the data directory (where the live database already is), removed at the end.
//! The archive is first written as `….partial` and renamed once complete and synced, so a crash
//! never leaves something that looks like a finished backup.

use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::hashing::{HashingReader, HashingWriter};
use super::manifest::{
    ArchiveInfo, AuditCheckpoint, Envelope, FORMAT_VERSION, MANIFEST_MEMBER, Manifest, Member,
};
use super::pipeline;
use super::progress::Progress;
use super::{ARCHIVE_SUFFIX, BackupError, audit, backup_dir, envelope_path};
use crate::audit::checkpoint::CheckpointSigner;
use crate::config::{Config, DatabaseTarget};
use crate::db::{Database, DbError};
use crate::with_db;

/// Members of every archive, by role.
pub const SQLITE_MEMBER: &str = "database/beffroi.db";
pub const POSTGRES_MEMBER: &str = "database/postgres.dump";
pub const CONFIG_MEMBER: &str = "config/beffroi.toml";
pub const INSTANCE_ID_MEMBER: &str = "instance/instance-id";
pub const SIGNING_KEY_MEMBER: &str = "instance/audit-checkpoint-key.pk8";
pub const FILES_PREFIX: &str = "files/";

pub struct CreateOptions {
    /// Directory for the archive; `backup.dir` when `None`.
    pub to: Option<PathBuf>,
    /// The configuration file, stored in the archive as it is (it holds no secret: those are in
    /// the files it names, which are not backed up).
    pub config_path: PathBuf,
    pub progress: Arc<Progress>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CreateReport {
    pub archive: PathBuf,
    pub manifest: PathBuf,
    pub size: u64,
    pub sha256: String,
    /// Bytes of plaintext archived (database snapshot, files, configuration).
    pub plaintext_bytes: u64,
    pub members: usize,
    pub instance_id: String,
    pub schema_version: i64,
    pub audit_tree_size: Option<u64>,
    pub signing_key: String,
    pub seconds: f64,
    /// Of which taking the database snapshot (SQLite's backup API or pg_dump).
    pub snapshot_seconds: f64,
    /// Entries under `<data_dir>/files` that are not regular files and were left out.
    pub skipped: Vec<String>,
}

/// A file to archive under `name`.
struct Source {
    name: String,
    origin: Origin,
}

enum Origin {
    /// A file on this machine.
    File(PathBuf),
    /// An object of the S3 blob store, of the size its listing gave.
    Blob { sha256: String, size: u64 },
}

impl Source {
    fn file(name: impl Into<String>, path: PathBuf) -> Self {
        Self {
            name: name.into(),
            origin: Origin::File(path),
        }
    }

    fn describe(&self) -> String {
        match &self.origin {
            Origin::File(path) => path.display().to_string(),
            Origin::Blob { sha256, .. } => format!("object {sha256}"),
        }
    }
}

/// Takes a backup, records it in the audit log (success or failure) and returns what it wrote.
pub async fn create(
    config: &Config,
    db: &Database,
    options: &CreateOptions,
) -> Result<CreateReport, BackupError> {
    let dir = options.to.clone().unwrap_or_else(|| backup_dir(config));
    let result = create_unaudited(config, db, options, &dir).await;
    match &result {
        Ok(report) => {
            let file = file_name(&report.archive);
            audit(
                db,
                "backup.create",
                &file,
                "success",
                serde_json::json!({
                    "file": file,
                    "size": report.size,
                    "sha256": report.sha256,
                    "schema_version": report.schema_version,
                    "audit_tree_size": report.audit_tree_size,
                }),
            )
            .await?;
        }
        Err(e) => {
            // Best effort: the database may be what failed.
            let _ = audit(
                db,
                "backup.create",
                &dir.display().to_string(),
                "failure",
                serde_json::json!({ "error": e.to_string() }),
            )
            .await;
        }
    }
    result
}

pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

async fn create_unaudited(
    config: &Config,
    db: &Database,
    options: &CreateOptions,
    dir: &Path,
) -> Result<CreateReport, BackupError> {
    let started = std::time::Instant::now();
    let backup = config.backup.as_ref().ok_or_else(|| {
        BackupError::Config(
            "backup: the configuration has no [backup] section; add one with the recipients' \
             public keys (see deploy/BACKUPS.md)"
                .into(),
        )
    })?;
    let recipients = backup
        .parsed_recipients()
        .map_err(|e| BackupError::Config(e.to_string()))?;
    crate::db::create_private_dir(dir)?;
    let data_dir = &config.storage.data_dir;
    let instance_id = super::ensure_instance_id(data_dir)?;
    let key_path = crate::cli::checkpoint_key_path(config);
    let signer = CheckpointSigner::load_or_create(&key_path)
        .map_err(|e| BackupError::Config(e.to_string()))?;
    // A fresh checkpoint first, so the manifest's one covers the log up to this backup.
    crate::audit::verify::write_checkpoint(db, &signer).await?;
    let audit_checkpoint = latest_checkpoint(db).await?;
    let schema_version = super::schema_version(db).await?;

    let created_unix = crate::db::now();
    let name = archive_name(created_unix, &instance_id);
    let work = tempfile::Builder::new()
        .prefix(".backup-")
        .tempdir_in(data_dir)
        .map_err(BackupError::io(data_dir))?;
    let snapshot_started = std::time::Instant::now();
    let (db_member, snapshot) = match db {
        Database::Sqlite(pool) => {
            let target = work.path().join("beffroi.db");
            // A page copy in one read transaction: consistent while the server writes. A
            // scratch file, deleted once the (synced) archive holds it.
            crate::db::sqlite_copy::copy_live(
                pool.connect_options().get_filename(),
                &target,
                crate::db::sqlite_copy::Durability::Scratch,
            )
            .await?;
            (SQLITE_MEMBER, target)
        }
        Database::Postgres(pool) => {
            let target = work.path().join("postgres.dump");
            super::pg::dump(pool, config.database_password()?.as_ref(), &target).await?;
            (POSTGRES_MEMBER, target)
        }
    };

    let snapshot_seconds = snapshot_started.elapsed().as_secs_f64();
    let mut sources = vec![Source::file(db_member, snapshot)];
    // The files after the database: a row written during the backup may miss its file in the
    // archive only if that file was also written after the snapshot.
    let mut skipped = Vec::new();
    let blobs = crate::blobs::BlobStore::from_config(config)?;
    if let Some(s3) = blobs.s3() {
        let objects = s3
            .list()
            .await
            .map_err(|e| BackupError::Blobs(e.to_string()))?;
        for object in objects {
            match crate::blobs::id_of_key(&object.key) {
                Some(sha256) => sources.push(Source {
                    name: format!("{FILES_PREFIX}{}", object.key),
                    origin: Origin::Blob {
                        sha256,
                        size: object.size,
                    },
                }),
                // Not one Beffroi wrote: nothing refers to it, and a restore could not check it.
                None => skipped.push(format!(
                    "{}{} in bucket {} (not a blob id)",
                    s3.prefix, object.key, s3.bucket
                )),
            }
        }
    } else {
        let files_dir = data_dir.join("files");
        if files_dir.is_dir() {
            collect_files(&files_dir, &files_dir, &mut sources, &mut skipped)?;
        }
    }
    sources.push(Source::file(CONFIG_MEMBER, options.config_path.clone()));
    sources.push(Source::file(
        INSTANCE_ID_MEMBER,
        super::instance_id_path(data_dir),
    ));
    // The signing key travels with the data so that a restored instance is the same instance:
    // its audit checkpoints and later backups verify with the key auditors recorded. Only the
    // holders of the recipients' identities can read it, and they can read every row anyway.
    sources.push(Source::file(SIGNING_KEY_MEMBER, key_path.clone()));

    let mut total = 0u64;
    for s in &sources {
        total += match &s.origin {
            Origin::File(path) => std::fs::metadata(path)
                .map_err(BackupError::io(path))?
                .len(),
            Origin::Blob { size, .. } => *size,
        };
    }
    options.progress.set_total(total);

    let manifest = Manifest {
        format: FORMAT_VERSION,
        created: super::rfc3339(created_unix),
        created_unix,
        beffroi_version: env!("CARGO_PKG_VERSION").into(),
        schema_version,
        backend: match config.database_target() {
            DatabaseTarget::Sqlite(_) => "sqlite".into(),
            DatabaseTarget::Postgres(_) => "postgres".into(),
        },
        instance_id: instance_id.clone(),
        signing_key: hex::encode(signer.public_key()),
        recipients: backup.recipients.clone(),
        members: Vec::new(),
        audit_checkpoint,
    };
    let archive = dir.join(&name);
    let partial = dir.join(format!("{name}.partial"));
    let progress = options.progress.clone();
    let signer = Arc::new(signer);
    let signer_for_task = signer.clone();
    let partial_for_task = partial.clone();
    // The archive is written on a blocking thread, which fetches S3 objects through the runtime.
    let fetcher = BlobFetcher {
        runtime: tokio::runtime::Handle::current(),
        blobs,
    };
    let written = tokio::task::spawn_blocking(move || {
        write_archive(
            &partial_for_task,
            &sources,
            &fetcher,
            &recipients,
            manifest,
            &signer_for_task,
            &progress,
        )
    })
    .await
    .map_err(|e| BackupError::Encrypt(format!("the archive writer stopped: {e}")));
    let (manifest, size, sha256, plaintext_bytes) = match written {
        Ok(Ok(w)) => w,
        Ok(Err(e)) | Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    drop(work);
    options.progress.finish();
    std::fs::rename(&partial, &archive).map_err(BackupError::io(&archive))?;
    super::sync_parent(&archive);
    let envelope = Envelope::sign(
        manifest.clone(),
        ArchiveInfo {
            file: name.clone(),
            size,
            sha256: sha256.clone(),
        },
        &signer,
    )?;
    let manifest_path = envelope_path(&archive);
    envelope.write(&manifest_path)?;
    Ok(CreateReport {
        archive,
        manifest: manifest_path,
        size,
        sha256,
        plaintext_bytes,
        members: manifest.members.len() + 1,
        instance_id,
        schema_version,
        audit_tree_size: manifest.audit_checkpoint.as_ref().map(|c| c.tree_size),
        signing_key: manifest.signing_key.clone(),
        seconds: started.elapsed().as_secs_f64(),
        snapshot_seconds,
        skipped,
    })
}

/// `beffroi-20261125T170000Z-0011223344556677.tar.age`: sorts by time, names the instance.
pub fn archive_name(created_unix: i64, instance_id: &str) -> String {
    let stamp = super::rfc3339(created_unix).replace(['-', ':'], "");
    format!(
        "beffroi-{stamp}-{}{ARCHIVE_SUFFIX}",
        instance_id.get(..16).unwrap_or(instance_id)
    )
}

async fn latest_checkpoint(db: &Database) -> Result<Option<AuditCheckpoint>, BackupError> {
    type Row = (i64, Vec<u8>, i64, Vec<u8>, Vec<u8>);
    let row: Option<Row> = with_db!(db, pool => sqlx::query_as(
        "SELECT tree_size, root, time_us, public_key, signature FROM audit_checkpoints \
         ORDER BY tree_size DESC LIMIT 1"
    ).fetch_optional(pool).await.map_err(DbError::from)?);
    Ok(row.map(
        |(tree_size, root, time_us, key, signature)| AuditCheckpoint {
            tree_size: u64::try_from(tree_size).unwrap_or(0),
            root: hex::encode(root),
            time_us,
            public_key: hex::encode(key),
            signature: hex::encode(signature),
        },
    ))
}

/// Regular files under `dir`, sorted, as `files/<relative path>`. Symbolic links and special
/// files are left out and listed: following a link could archive a file outside the data
/// directory.
fn collect_files(
    root: &Path,
    dir: &Path,
    out: &mut Vec<Source>,
    skipped: &mut Vec<String>,
) -> Result<(), BackupError> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(BackupError::io(dir))?
        .collect::<Result<_, _>>()
        .map_err(BackupError::io(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let kind = entry.file_type().map_err(BackupError::io(&path))?;
        let relative = path.strip_prefix(root).unwrap_or(&path);
        let Some(relative) = relative.to_str() else {
            skipped.push(format!("{} (name is not UTF-8)", path.display()));
            continue;
        };
        if kind.is_dir() {
            collect_files(root, &path, out, skipped)?;
        } else if kind.is_file() {
            out.push(Source::file(format!("{FILES_PREFIX}{relative}"), path));
        } else {
            skipped.push(format!("{} (not a regular file)", path.display()));
        }
    }
    Ok(())
}

/// tar → age → file, hashing members and ciphertext, on three threads (see `pipeline`): this
/// one builds the tar stream and hashes members, one encrypts, one hashes the ciphertext and
/// writes it. Returns the signed manifest's content, the archive's size and SHA-256, and the
/// plaintext bytes archived.
fn write_archive(
    partial: &Path,
    sources: &[Source],
    fetcher: &BlobFetcher,
    recipients: &[age::x25519::Recipient],
    manifest: Manifest,
    signer: &CheckpointSigner,
    progress: &Progress,
) -> Result<(Manifest, u64, String, u64), BackupError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(partial)
        .map_err(BackupError::io(partial))?;
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| BackupError::Encrypt(e.to_string()))?;
    let (plain_tx, plain_rx) = pipeline::channel();
    let (cipher_tx, cipher_rx) = pipeline::channel();
    let (produced, encrypted, written) = std::thread::scope(|scope| {
        let encrypt = scope.spawn(move || -> io::Result<()> {
            let mut out = encryptor.wrap_output(cipher_tx)?;
            plain_rx.for_each_block(|block| out.write_all(block))?;
            out.finish()?.finish()
        });
        let write = scope.spawn(move || -> io::Result<(u64, String)> {
            let mut out = HashingWriter::new(file);
            cipher_rx.for_each_block(|block| out.write_all(block))?;
            let (file, size, sha256) = out.finish();
            file.sync_all()?;
            Ok((size, sha256))
        });
        let produced = write_tar(plain_tx, sources, fetcher, manifest, signer, progress);
        (produced, pipeline::join(encrypt), pipeline::join(write))
    });
    // The first real failure, from the end of the line back: a stage that failed only because
    // the next one stopped reports a broken pipe.
    let (size, sha256) = written.map_err(BackupError::io(partial))?;
    if let Err(e) = encrypted {
        if !pipeline::is_echo(&e) {
            return Err(BackupError::Encrypt(e.to_string()));
        }
    }
    let (manifest, plaintext) = produced?;
    Ok((manifest, size, sha256, plaintext))
}

/// Reads S3 objects for the archive writer, from its blocking thread.
struct BlobFetcher {
    runtime: tokio::runtime::Handle,
    blobs: crate::blobs::BlobStore,
}

impl BlobFetcher {
    /// The object's bytes, checked against their id; an object gone or altered since the
    /// listing fails the backup rather than archiving something a restore would refuse.
    fn fetch(&self, sha256: &str) -> Result<Vec<u8>, BackupError> {
        self.runtime
            .block_on(self.blobs.get(sha256))
            .map_err(|e| BackupError::Blobs(e.to_string()))?
            .ok_or_else(|| {
                BackupError::Blobs(format!(
                    "object {sha256} was listed but is gone from {}",
                    self.blobs.describe()
                ))
            })
    }
}

fn write_tar(
    out: pipeline::BlockWriter,
    sources: &[Source],
    fetcher: &BlobFetcher,
    mut manifest: Manifest,
    signer: &CheckpointSigner,
    progress: &Progress,
) -> Result<(Manifest, u64), BackupError> {
    let stage = Path::new("(archive stream)");
    let mut tar = tar::Builder::new(out);
    let mtime = u64::try_from(manifest.created_unix).unwrap_or(0);
    let mut plaintext = 0u64;
    for source in sources {
        let (content, size): (Box<dyn Read>, u64) = match &source.origin {
            Origin::File(path) => {
                let file = std::fs::File::open(path).map_err(BackupError::io(path))?;
                let size = file.metadata().map_err(BackupError::io(path))?.len();
                (Box::new(file), size)
            }
            Origin::Blob { sha256, .. } => {
                let bytes = fetcher.fetch(sha256)?;
                let size = bytes.len() as u64;
                (Box::new(io::Cursor::new(bytes)), size)
            }
        };
        let mut header = member_header(size, mtime);
        // A file that grows while archived is cut at the size in its header; one that shrinks
        // is caught below. Either way the header and the bytes agree.
        let mut reader = BufReader::with_capacity(
            pipeline::BLOCK,
            HashingReader::new(content.take(size), Some(progress)),
        );
        tar.append_data(&mut header, &source.name, &mut reader)
            .map_err(BackupError::io(stage))?;
        let (count, sha256) = reader.into_inner().finish();
        if count != size {
            return Err(BackupError::Encrypt(format!(
                "{} changed size while being archived ({size} bytes expected, {count} read); \
                 run the backup again",
                source.describe()
            )));
        }
        plaintext += size;
        manifest.members.push(Member {
            name: source.name.clone(),
            size,
            sha256,
        });
    }
    let signed = manifest.sign(signer)?;
    let mut bytes = serde_json::to_vec_pretty(&signed)
        .map_err(|e| BackupError::Encrypt(format!("cannot encode the manifest: {e}")))?;
    bytes.push(b'\n');
    let mut header = member_header(bytes.len() as u64, mtime);
    tar.append_data(&mut header, MANIFEST_MEMBER, bytes.as_slice())
        .map_err(BackupError::io(stage))?;
    tar.into_inner()
        .and_then(pipeline::BlockWriter::finish)
        .map_err(BackupError::io(stage))?;
    Ok((signed.manifest, plaintext))
}

/// A plain file header: owner-only mode, no owner names, the backup's time, so two archives of
/// the same data differ only by what must differ.
fn member_header(size: u64, mtime: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(0o600);
    header.set_mtime(mtime);
    header.set_uid(0);
    header.set_gid(0);
    header
}
