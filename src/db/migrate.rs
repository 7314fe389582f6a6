//! Forward-only schema migrations, one folder per backend, embedded in the binary.
//!
//! Before touching a database that already holds data, a snapshot is taken so that an upgrade can
//! be rolled back: SQLite `VACUUM INTO` a file next to the database, PostgreSQL `pg_dump -Fc`
//! into the data directory. No snapshot, no migration.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use sqlx::migrate::Migrator;

use super::{Database, DbError, now};
use crate::with_db;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// How the pre-migration snapshot is taken.
#[derive(Debug, Clone)]
pub struct SnapshotPolicy {
    /// Where PostgreSQL dumps go (SQLite snapshots sit next to the database file).
    pub dir: PathBuf,
    /// Password for `pg_dump`, passed in its environment, never on its command line.
    pub pg_password: Option<SecretString>,
    /// Set by `beffroi migrate --no-snapshot` only.
    pub skip: bool,
}

/// What a migration run did.
#[derive(Debug, Clone, Default)]
pub struct MigrationReport {
    pub applied: Vec<i64>,
    pub snapshot: Option<PathBuf>,
}

fn migrator(db: &Database) -> &'static Migrator {
    match db {
        Database::Sqlite(_) => &SQLITE_MIGRATIONS,
        Database::Postgres(_) => &POSTGRES_MIGRATIONS,
    }
}

/// The newest schema version this binary carries for `backend`.
pub fn latest_migration(backend: super::Backend) -> i64 {
    let migrator = match backend {
        super::Backend::Sqlite => &SQLITE_MIGRATIONS,
        super::Backend::Postgres => &POSTGRES_MIGRATIONS,
    };
    migrator.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Versions already recorded as applied; empty for a brand-new database.
async fn applied_versions(db: &Database) -> Result<Vec<i64>, DbError> {
    let exists: bool = match db {
        Database::Sqlite(pool) => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_one(pool)
        .await?
            > 0,
        Database::Postgres(pool) => {
            sqlx::query_scalar::<_, bool>("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                .fetch_one(pool)
                .await?
        }
    };
    if !exists {
        return Ok(Vec::new());
    }
    let versions = with_db!(db, pool => sqlx::query_scalar::<_, i64>(
        "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version"
    ).fetch_all(pool).await?);
    Ok(versions)
}

/// Versions embedded in this binary that the database has not applied yet.
pub async fn pending_migrations(db: &Database) -> Result<Vec<i64>, DbError> {
    let applied = applied_versions(db).await?;
    Ok(migrator(db)
        .iter()
        .map(|m| m.version)
        .filter(|v| !applied.contains(v))
        .collect())
}

pub(super) async fn run(
    db: &Database,
    policy: &SnapshotPolicy,
    up_to: Option<i64>,
) -> Result<MigrationReport, DbError> {
    let applied = applied_versions(db).await?;
    // A database migrated by a newer release must not be used by an older binary: the schema
    // would not be the one this code expects. Restore the pre-migration snapshot instead.
    let known: Vec<i64> = migrator(db).iter().map(|m| m.version).collect();
    if let Some(unknown) = applied.iter().find(|v| !known.contains(v)) {
        return Err(DbError::Snapshot(format!(
            "the database is at schema version {unknown}, newer than this binary knows ({}); \
             run the newer release, or restore the snapshot taken before that migration",
            known.last().copied().unwrap_or(0)
        )));
    }
    let pending: Vec<i64> = pending_migrations(db)
        .await?
        .into_iter()
        .filter(|v| up_to.is_none_or(|max| *v <= max))
        .collect();
    let mut report = MigrationReport::default();
    if pending.is_empty() {
        return Ok(report);
    }
    if !applied.is_empty() && !policy.skip {
        let from = applied.last().copied().unwrap_or(0);
        report.snapshot = Some(snapshot(db, policy, from).await?);
    }
    let migrator = migrator(db);
    match (db, up_to) {
        (Database::Sqlite(pool), None) => migrator.run(pool).await?,
        (Database::Sqlite(pool), Some(v)) => migrator.run_to(v, pool).await?,
        (Database::Postgres(pool), None) => migrator.run(pool).await?,
        (Database::Postgres(pool), Some(v)) => migrator.run_to(v, pool).await?,
    }
    report.applied = pending;
    Ok(report)
}

async fn snapshot(
    db: &Database,
    policy: &SnapshotPolicy,
    from_version: i64,
) -> Result<PathBuf, DbError> {
    let stamp = now();
    match db {
        Database::Sqlite(pool) => {
            let db_path = pool.connect_options().get_filename().to_path_buf();
            let name = format!(
                "{}.pre-migration-v{from_version}-{stamp}.db",
                db_path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("beffroi.db")
            );
            let target = unused_name(db_path.with_file_name(name));
            // A page copy in one read transaction, synced: consistent while other
            // connections keep working, and on disk before the first migration runs.
            super::sqlite_copy::copy_live(
                &db_path,
                &target,
                super::sqlite_copy::Durability::Synced,
            )
            .await?;
            Ok(target)
        }
        Database::Postgres(pool) => {
            super::create_private_dir(&policy.dir)?;
            let options = pool.connect_options();
            let target = unused_name(policy.dir.join(format!(
                "postgres.pre-migration-v{from_version}-{stamp}.dump"
            )));
            let mut cmd = tokio::process::Command::new("pg_dump");
            cmd.arg("--format=custom")
                .arg("--file")
                .arg(&target)
                .arg("--host")
                .arg(options.get_host())
                .arg("--port")
                .arg(options.get_port().to_string())
                .arg("--username")
                .arg(options.get_username());
            if let Some(name) = options.get_database() {
                cmd.arg("--dbname").arg(name);
            }
            if let Some(pw) = &policy.pg_password {
                cmd.env("PGPASSWORD", pw.expose_secret());
            }
            let output = cmd.output().await.map_err(|e| {
                DbError::Snapshot(format!(
                    "cannot run pg_dump to snapshot the database before migrating ({e}); install \
                     postgresql-client, or run `beffroi migrate --no-snapshot` after taking your \
                     own backup"
                ))
            })?;
            if !output.status.success() {
                return Err(DbError::Snapshot(format!(
                    "pg_dump failed, database not migrated: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                )));
            }
            set_private(&target);
            Ok(target)
        }
    }
}

/// `path`, or `…-<stamp>-2.db`, `-3`… when a snapshot of the same version was already taken in
/// the same second (an upgrade, a rollback and an upgrade again, scripted).
fn unused_name(path: PathBuf) -> PathBuf {
    if !path.exists() {
        return path;
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    let (stem, ext) = name.rsplit_once('.').unwrap_or((&name, ""));
    (2..)
        .map(|n| path.with_file_name(format!("{stem}-{n}.{ext}")))
        .find(|p| !p.exists())
        .unwrap_or(path)
}

fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        tracing::warn!(path = %path.display(), error = %e, "cannot restrict snapshot file mode");
    }
}
