//! `beffroi backup restore`: put an archive's data back, in this order, so that a bad archive
//! changes nothing:
//!
//! 1. check the envelope (signature, instance, size, SHA-256) and that the live database may be
//!    replaced (`--force` when one exists);
//! 2. decrypt every member into a private work directory inside the data directory and check it
//!    against the signed manifests; check the database (integrity, schema, audit log);
//! 3. with an S3 blob store, upload the archived files to the bucket (each checked against its
//!    name, and by the server against its checksum): objects are named by their content, so
//!    this adds what is missing and changes nothing a live row refers to;
//! 4. only then set aside what is replaced (the database file or a `pg_dump` of it, the files
//!    folder of a local store) under a `pre-restore-<time>` name, and move the restored data in;
//! 5. migrate if the archive is older than this binary, verify the audit log, and record the
//!    restore in it.
//!
//! The server must be stopped (every node, on PostgreSQL) while this runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::create::{
    CONFIG_MEMBER, INSTANCE_ID_MEMBER, POSTGRES_MEMBER, SIGNING_KEY_MEMBER, SQLITE_MEMBER,
    file_name,
};
use super::progress::Progress;
use super::read::{self, Keep};
use super::{BackupError, audit};
use crate::config::{Config, DatabaseTarget};
use crate::db::{Database, DbError};

pub struct RestoreOptions {
    pub identity: PathBuf,
    /// The key the manifests must be signed with; the data directory's own key when `None`.
    pub public_key: Option<[u8; 32]>,
    /// Replace an existing database.
    pub force: bool,
    pub progress: Arc<Progress>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub archive: PathBuf,
    pub instance_id: String,
    pub created: String,
    pub schema_version: i64,
    /// Where the replaced database and files were set aside, if anything was replaced.
    pub set_aside: Vec<PathBuf>,
    pub files: usize,
    /// Where the files went: a directory or a bucket.
    pub files_into: String,
    /// Archived files whose names are not blob ids, which an S3 store cannot hold: left out.
    pub skipped: Vec<String>,
    /// The archived configuration, for comparison with the one in use (never installed).
    pub archived_config: PathBuf,
    pub migrations_applied: Vec<i64>,
    pub audit_entries: u64,
    pub signing_key: String,
}

pub async fn restore(
    config: &Config,
    archive: &Path,
    options: &RestoreOptions,
) -> Result<RestoreReport, BackupError> {
    let data_dir = config.storage.data_dir.clone();
    crate::db::create_private_dir(&data_dir)?;
    let local_key = super::instance_public_key(config)?;
    let key = options.public_key.or(local_key).ok_or_else(|| {
        BackupError::Config(
            "this data directory has no signing key to check the archive against: pass \
             --public-key with the instance's key (printed by `beffroi backup create`, and in \
             `signing_key` of every manifest you recorded); never take it from the manifest you \
             are checking"
                .into(),
        )
    })?;
    let local_instance = super::read_instance_id(&data_dir)?;
    let identities = read::read_identities(&options.identity)?;

    // 1. Envelope, then the live database: both refusals come before any work.
    let archive_owned = archive.to_owned();
    let expected = local_instance.clone();
    let progress = options.progress.clone();
    // Size and signature now; the SHA-256 while decrypting (one pass over the file), still
    // before anything live is touched.
    let content = read::Content::Later;
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
    let manifest = &envelope.manifest;
    let target = config.database_target();
    match (&target, manifest.backend.as_str()) {
        (DatabaseTarget::Sqlite(_), "sqlite") | (DatabaseTarget::Postgres(_), "postgres") => {}
        (_, other) => {
            return Err(BackupError::Refused(format!(
                "the archive holds a {other} database but the configuration uses {target:?}; \
                 restore into the same kind of database"
            )));
        }
    }
    let backend = match target {
        DatabaseTarget::Sqlite(_) => crate::db::Backend::Sqlite,
        DatabaseTarget::Postgres(_) => crate::db::Backend::Postgres,
    };
    let known = super::known_schema_version(backend);
    if manifest.schema_version > known {
        return Err(BackupError::Refused(format!(
            "the archive is at schema version {}, newer than this binary knows ({known}); \
             restore it with the release that made it",
            manifest.schema_version
        )));
    }
    let live = LiveDatabase::open(config).await?;
    if live.exists() && !options.force {
        return Err(BackupError::Restore(format!(
            "{} already holds a database; restoring replaces it. Stop Beffroi (every node), \
             then run again with --force: what is replaced is set aside first",
            live.describe()
        )));
    }

    // 2. Decrypt and check everything into the work directory.
    let work = tempfile::Builder::new()
        .prefix(".restore-")
        .tempdir_in(&data_dir)
        .map_err(BackupError::io(&data_dir))?;
    let archive_owned = archive.to_owned();
    let into = work.path().to_owned();
    let progress = options.progress.clone();
    let envelope_for_task = envelope.clone();
    let signed = tokio::task::spawn_blocking(move || {
        read::unpack(
            &archive_owned,
            &envelope_for_task,
            &key,
            &identities,
            &into,
            Keep::Everything,
            &progress,
        )
    })
    .await
    .map_err(|e| BackupError::Refused(format!("the check stopped: {e}")))??;
    options.progress.finish();
    read::check_database(
        work.path(),
        &signed.manifest,
        &key,
        read::DatabaseCheck::Quick,
    )
    .await?;
    let archived_id = std::fs::read_to_string(work.path().join(INSTANCE_ID_MEMBER))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    if archived_id != manifest.instance_id {
        return Err(BackupError::Refused(
            "the archived instance id differs from the manifest's".into(),
        ));
    }
    let archived_key = work.path().join(SIGNING_KEY_MEMBER);
    if !archived_key.exists() {
        return Err(BackupError::Refused(
            "the archive holds no signing key".into(),
        ));
    }
    let archived_signer = crate::audit::checkpoint::CheckpointSigner::load_or_create(&archived_key)
        .map_err(|e| BackupError::Refused(format!("the archived signing key: {e}")))?;
    if archived_signer.public_key() != key {
        return Err(BackupError::Refused(
            "the archived signing key is not the key that signed the manifest".into(),
        ));
    }

    // 3. The files into the bucket, before anything live is replaced: a store that refuses them
    // leaves this instance as it was.
    let blobs = crate::blobs::BlobStore::from_config(config)?;
    let files_restored = work.path().join("files");
    let mut skipped = Vec::new();
    if blobs.s3().is_some() {
        upload_files(&blobs, &signed.manifest, work.path(), &mut skipped).await?;
    }

    // 4. Set aside what is replaced, then move the restored data in.
    let stamp = super::rfc3339(crate::db::now()).replace(['-', ':'], "");
    let mut set_aside = Vec::new();
    match (&live, config.database_target()) {
        (LiveDatabase::Sqlite { exists, .. }, DatabaseTarget::Sqlite(path)) => {
            if *exists {
                set_aside.extend(set_aside_sqlite(&path, &stamp)?);
            }
            if let Some(dir) = path.parent() {
                crate::db::create_private_dir(dir)?;
            }
            move_file(&work.path().join(SQLITE_MEMBER), &path)?;
        }
        (LiveDatabase::Postgres { db, exists }, _) => {
            let Database::Postgres(pool) = db else {
                return Err(BackupError::Restore("not a PostgreSQL pool".into()));
            };
            // The owner's credentials: restoring replaces tables the runtime role cannot touch.
            let password = match config.storage.migration_database_url {
                Some(_) => config.migration_password()?,
                None => config.database_password()?,
            };
            if *exists {
                let dir = data_dir.join("snapshots");
                crate::db::create_private_dir(&dir)?;
                let snapshot = dir.join(format!("postgres.pre-restore-{stamp}.dump"));
                super::pg::dump(pool, password.as_ref(), &snapshot).await?;
                set_aside.push(snapshot);
            }
            super::pg::restore(pool, password.as_ref(), &work.path().join(POSTGRES_MEMBER)).await?;
        }
        _ => return Err(BackupError::Restore("database kind changed".into())),
    }
    live.close().await;
    let files = signed
        .manifest
        .members
        .iter()
        .filter(|m| m.name.starts_with(super::create::FILES_PREFIX))
        .count()
        .saturating_sub(skipped.len());
    if blobs.s3().is_none() {
        let files_live = data_dir.join("files");
        if files_live.exists() {
            let aside = data_dir.join(format!("files.pre-restore-{stamp}"));
            std::fs::rename(&files_live, &aside).map_err(BackupError::io(&files_live))?;
            set_aside.push(aside);
        }
        if files_restored.exists() {
            std::fs::rename(&files_restored, &files_live).map_err(BackupError::io(&files_live))?;
        }
    }
    if local_instance.is_none() {
        super::write_private_atomic(
            &super::instance_id_path(&data_dir),
            format!("{}\n", manifest.instance_id).as_bytes(),
        )?;
    }
    let key_path = crate::cli::checkpoint_key_path(config);
    if local_key != Some(key) {
        if key_path.exists() {
            let aside = data_dir.join(format!("audit-checkpoint-key.pk8.pre-restore-{stamp}"));
            std::fs::rename(&key_path, &aside).map_err(BackupError::io(&key_path))?;
            set_aside.push(aside);
        }
        move_file(&archived_key, &key_path)?;
    }
    let snapshots = data_dir.join("snapshots");
    crate::db::create_private_dir(&snapshots)?;
    let archived_config = snapshots.join(format!("config-from-backup-{stamp}.toml"));
    move_file(&work.path().join(CONFIG_MEMBER), &archived_config)?;
    drop(work);

    // 5. The restored database as the server will see it.
    let policy = crate::server::snapshot_policy(config, false)?;
    let (db, migrations) = Database::open(config, &policy).await?;
    let verified = crate::audit::verify::verify(&db, Some(&key))
        .await
        .map_err(|e| BackupError::Restore(format!("restored, but: {e}")))?;
    let file = file_name(archive);
    audit(
        &db,
        "backup.restore",
        &file,
        "success",
        serde_json::json!({
            "file": file,
            "sha256": envelope.archive.sha256,
            "created": manifest.created,
            "schema_version": manifest.schema_version,
            "set_aside": set_aside.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        }),
    )
    .await?;
    db.close().await;
    Ok(RestoreReport {
        archive: archive.to_owned(),
        instance_id: manifest.instance_id.clone(),
        created: manifest.created.clone(),
        schema_version: manifest.schema_version,
        set_aside,
        files,
        files_into: blobs.describe(),
        skipped,
        archived_config,
        migrations_applied: migrations.applied,
        audit_entries: verified.entries,
        signing_key: hex::encode(key),
    })
}

/// Puts every archived `files/ab/cdef…` member into the S3 store, reading each from the work
/// directory (where it was checked against the signed manifest) and checking it hashes to its
/// name. A member that is not named by a blob id (a local store can hold stray files) is listed
/// in `skipped`: nothing refers to it.
async fn upload_files(
    blobs: &crate::blobs::BlobStore,
    manifest: &super::manifest::Manifest,
    work: &Path,
    skipped: &mut Vec<String>,
) -> Result<(), BackupError> {
    for member in &manifest.members {
        let Some(key) = member.name.strip_prefix(super::create::FILES_PREFIX) else {
            continue;
        };
        let Some(sha256) = crate::blobs::id_of_key(key) else {
            skipped.push(member.name.clone());
            continue;
        };
        let path = work.join(&member.name);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(BackupError::io(&path))?;
        blobs
            .put_expecting(&sha256, bytes)
            .await
            .map_err(|e| BackupError::Blobs(format!("{}: {e}", member.name)))?;
    }
    Ok(())
}

/// The database a restore would replace.
enum LiveDatabase {
    Sqlite { path: PathBuf, exists: bool },
    Postgres { db: Database, exists: bool },
}

impl LiveDatabase {
    /// Looks without creating anything: a SQLite file is not opened at all.
    async fn open(config: &Config) -> Result<Self, BackupError> {
        match config.database_target() {
            DatabaseTarget::Sqlite(path) => Ok(Self::Sqlite {
                exists: path.exists(),
                path,
            }),
            DatabaseTarget::Postgres(_) => {
                let db = Database::connect_owner(config).await?;
                let tables: i64 = crate::with_db!(&db, pool => sqlx::query_scalar(
                    "SELECT COUNT(*) FROM information_schema.tables \
                     WHERE table_schema = current_schema()"
                ).fetch_one(pool).await.map_err(DbError::from)?);
                Ok(Self::Postgres {
                    db,
                    exists: tables > 0,
                })
            }
        }
    }

    fn exists(&self) -> bool {
        match self {
            Self::Sqlite { exists, .. } | Self::Postgres { exists, .. } => *exists,
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Sqlite { path, .. } => format!("the SQLite file {}", path.display()),
            Self::Postgres { .. } => "the PostgreSQL database".into(),
        }
    }

    async fn close(&self) {
        if let Self::Postgres { db, .. } = self {
            db.close().await;
        }
    }
}

/// Renames the database file and its WAL companions to `<file>.pre-restore-<stamp>.db[-wal|-shm]`,
/// which SQLite opens as a database in its own right.
fn set_aside_sqlite(path: &Path, stamp: &str) -> Result<Vec<PathBuf>, BackupError> {
    let mut moved = Vec::new();
    let mut base = path.as_os_str().to_owned();
    base.push(format!(".pre-restore-{stamp}.db"));
    for suffix in ["", "-wal", "-shm"] {
        let mut from = path.as_os_str().to_owned();
        from.push(suffix);
        let from = PathBuf::from(from);
        if !from.exists() {
            continue;
        }
        let mut to = base.clone();
        to.push(suffix);
        let to = PathBuf::from(to);
        std::fs::rename(&from, &to).map_err(BackupError::io(&from))?;
        if suffix.is_empty() {
            moved.push(to);
        }
    }
    Ok(moved)
}

/// Moves a file, copying when source and target are on different file systems.
fn move_file(from: &Path, to: &Path) -> Result<(), BackupError> {
    if std::fs::rename(from, to).is_err() {
        let tmp = {
            let mut s = to.as_os_str().to_owned();
            s.push(".restoring");
            PathBuf::from(s)
        };
        let _ = std::fs::remove_file(&tmp);
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut src = std::fs::File::open(from).map_err(BackupError::io(from))?;
            let mut dst = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(BackupError::io(&tmp))?;
            std::io::copy(&mut src, &mut dst).map_err(BackupError::io(&tmp))?;
            dst.sync_all().map_err(BackupError::io(&tmp))?;
        }
        std::fs::rename(&tmp, to).map_err(BackupError::io(to))?;
    }
    super::sync_parent(to);
    Ok(())
}
