//! `beffroi rollback`: undo an upgrade. Every migration of a database that holds data is
//! preceded by a snapshot (`<db>.pre-migration-v<N>-<time>.db` beside a SQLite file,
//! `<data_dir>/snapshots/postgres.pre-migration-v<N>-<time>.dump` for PostgreSQL). Rolling back
//! puts the newest such snapshot (or the one named) back in place of the live database, after
//! checking it and setting the live database aside as a `pre-rollback` copy, so that nothing is
//! destroyed: what was written since the migration is in that copy. The service must be stopped,
//! and the previous release's binary installed, before or after; the rollback itself is recorded
//! in the restored audit log.

use std::path::{Path, PathBuf};

use crate::config::{Config, DatabaseTarget};
use crate::db::{Database, DbError, now};

/// A pre-migration snapshot found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub path: PathBuf,
    /// The schema version the database had when the snapshot was taken.
    pub schema_version: i64,
    /// When it was taken (Unix seconds).
    pub taken_at: i64,
    /// 1, or 2, 3… for later snapshots of the same version taken in the same second.
    pub nth: u32,
}

#[derive(Debug)]
pub struct RollbackReport {
    pub snapshot: Snapshot,
    /// The schema version the live database had before the rollback.
    pub replaced_version: i64,
    /// Where the replaced database was set aside.
    pub set_aside: PathBuf,
    /// Audit entries in the restored log, all verified.
    pub audit_entries: u64,
}

/// Reads `…pre-migration-v<N>-<time>.<ext>` file names.
fn parse_snapshot_name(path: &Path) -> Option<Snapshot> {
    let name = path.file_name()?.to_str()?;
    let rest = &name[name.find(".pre-migration-v")? + ".pre-migration-v".len()..];
    let (version, rest) = rest.split_once('-')?;
    let (stamp, _ext) = rest.split_once('.')?;
    // `<time>` or `<time>-<n>` for a second snapshot of the same version in the same second.
    let (stamp, nth) = stamp.split_once('-').unwrap_or((stamp, "1"));
    Some(Snapshot {
        path: path.to_owned(),
        schema_version: version.parse().ok()?,
        taken_at: stamp.parse().ok()?,
        nth: nth.parse().ok()?,
    })
}

/// Every pre-migration snapshot of the configured database, newest first.
pub fn snapshots(config: &Config) -> Result<Vec<Snapshot>, DbError> {
    let (dir, prefix) = match config.database_target() {
        DatabaseTarget::Sqlite(path) => {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("beffroi.db")
                .to_owned();
            (path.parent().map(Path::to_owned).unwrap_or_default(), name)
        }
        DatabaseTarget::Postgres(_) => {
            (config.storage.data_dir.join("snapshots"), "postgres".into())
        }
    };
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(DbError::Snapshot(format!("{}: {e}", dir.display()))),
    };
    let mut found: Vec<Snapshot> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{prefix}.pre-migration-v")))
        })
        .filter_map(|p| parse_snapshot_name(&p))
        .collect();
    found.sort_by_key(|s| std::cmp::Reverse((s.taken_at, s.nth)));
    Ok(found)
}

/// The newest applied migration of a database.
async fn schema_version(db: &Database) -> Result<i64, DbError> {
    Ok(
        crate::with_db!(db, pool => sqlx::query_scalar::<_, Option<i64>>(
        "SELECT MAX(version) FROM _sqlx_migrations WHERE success"
    ).fetch_one(pool).await?)
        .unwrap_or(0),
    )
}

/// Puts `chosen` (or the newest snapshot) back in place of the live database.
pub async fn rollback(config: &Config, chosen: Option<&Path>) -> Result<RollbackReport, DbError> {
    let snapshot = match chosen {
        Some(path) => parse_snapshot_name(path).ok_or_else(|| {
            DbError::Snapshot(format!(
                "{} is not a pre-migration snapshot (…pre-migration-v<N>-<time>.db or .dump)",
                path.display()
            ))
        })?,
        None => snapshots(config)?.into_iter().next().ok_or_else(|| {
            DbError::Snapshot(
                "no pre-migration snapshot found: nothing to roll back to (restore a backup \
                 instead, see deploy/BACKUPS.md)"
                    .into(),
            )
        })?,
    };
    let stamp = now();
    let (replaced_version, set_aside) = match config.database_target() {
        DatabaseTarget::Sqlite(live) => rollback_sqlite(config, &live, &snapshot, stamp).await?,
        DatabaseTarget::Postgres(_) => rollback_postgres(config, &snapshot, stamp).await?,
    };
    // The restored database, as the previous release will see it: recorded and verified.
    let db = Database::connect(config).await?;
    let mut tx = db.begin().await?;
    crate::security_events::record(
        &mut tx,
        &crate::security_events::Actor::console(),
        "schema.rollback",
        Some(snapshot.path.display().to_string()),
        "success",
        serde_json::json!({
            "snapshot": snapshot.path.display().to_string(),
            "from_version": replaced_version,
            "to_version": snapshot.schema_version,
            "set_aside": set_aside.display().to_string(),
        }),
    )
    .await?;
    tx.commit().await?;
    let verified = crate::audit::verify::verify(&db, None)
        .await
        .map_err(|e| DbError::Snapshot(format!("rolled back, but: {e}")))?;
    db.close().await;
    Ok(RollbackReport {
        snapshot,
        replaced_version,
        set_aside,
        audit_entries: verified.entries,
    })
}

async fn rollback_sqlite(
    config: &Config,
    live: &Path,
    snapshot: &Snapshot,
    stamp: i64,
) -> Result<(i64, PathBuf), DbError> {
    // The snapshot must open, pass SQLite's own check and be at the version its name says.
    let candidate = Database::connect_sqlite(&snapshot.path, 1).await?;
    let check: String = crate::with_db!(&candidate, pool => sqlx::query_scalar(
        "PRAGMA quick_check"
    ).fetch_one(pool).await?);
    let version = schema_version(&candidate).await?;
    candidate.close().await;
    if check != "ok" || version != snapshot.schema_version {
        return Err(DbError::Snapshot(format!(
            "{} is damaged (quick_check: {check}; schema version {version}, expected {}): \
             nothing changed",
            snapshot.path.display(),
            snapshot.schema_version
        )));
    }
    // The live database is copied aside whole (the copy folds in its WAL) before anything
    // is replaced.
    let live_db = Database::connect_sqlite(live, config.storage.pool_size(true)).await?;
    let replaced_version = schema_version(&live_db).await?;
    let name = live
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("beffroi.db");
    let set_aside = live.with_file_name(format!("{name}.pre-rollback-{stamp}.db"));
    live_db.close().await;
    super::sqlite_copy::copy_live(live, &set_aside, super::sqlite_copy::Durability::Synced).await?;
    // Copy into a temporary file beside the live one, sync, then rename over it: a crash
    // leaves either the old database or the snapshot, never half of one.
    let dir = live.parent().unwrap_or(Path::new("."));
    let io = |e: std::io::Error| DbError::Snapshot(format!("{}: {e}", dir.display()));
    let temp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    std::fs::copy(&snapshot.path, temp.path()).map_err(io)?;
    temp.as_file().sync_all().map_err(io)?;
    for suffix in ["-wal", "-shm"] {
        let mut side = live.as_os_str().to_owned();
        side.push(suffix);
        match std::fs::remove_file(PathBuf::from(side)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
    }
    temp.persist(live).map_err(|e| io(e.error))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)?;
    {
        use std::os::unix::fs::PermissionsExt;
        for path in [live, set_aside.as_path()] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
    }
    Ok((replaced_version, set_aside))
}

async fn rollback_postgres(
    config: &Config,
    snapshot: &Snapshot,
    stamp: i64,
) -> Result<(i64, PathBuf), DbError> {
    let backup_err = |e: crate::backup::BackupError| DbError::Snapshot(e.to_string());
    let owner = Database::connect_owner(config).await?;
    let Database::Postgres(pool) = &owner else {
        return Err(DbError::Snapshot("not a PostgreSQL database".into()));
    };
    let password = match config.storage.migration_database_url {
        Some(_) => config.migration_password()?,
        None => config.database_password()?,
    };
    // The dump must read back before anything is touched.
    crate::backup::pg::check_dump(&snapshot.path)
        .await
        .map_err(backup_err)?;
    let replaced_version = schema_version(&owner).await?;
    let dir = config.storage.data_dir.join("snapshots");
    crate::db::create_private_dir(&dir)?;
    let set_aside = dir.join(format!("postgres.pre-rollback-{stamp}.dump"));
    crate::backup::pg::dump(pool, password.as_ref(), &set_aside)
        .await
        .map_err(backup_err)?;
    // Tables that later migrations created are not in the snapshot: the schema is emptied so
    // that the restored database is exactly the snapshot, not the snapshot plus leftovers.
    let mut tx = pool.begin().await?;
    sqlx::query("DROP SCHEMA public CASCADE")
        .execute(&mut *tx)
        .await?;
    sqlx::query("CREATE SCHEMA public")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    crate::backup::pg::restore(pool, password.as_ref(), &snapshot.path)
        .await
        .map_err(|e| {
            DbError::Snapshot(format!(
                "{e}; the database was set aside first in {}",
                set_aside.display()
            ))
        })?;
    owner.close().await;
    Ok((replaced_version, set_aside))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_are_read_back() {
        let s =
            parse_snapshot_name(Path::new("/d/beffroi.db.pre-migration-v7-1764000000.db")).unwrap();
        assert_eq!((s.schema_version, s.taken_at), (7, 1_764_000_000));
        let p = parse_snapshot_name(Path::new("/d/postgres.pre-migration-v12-1764.dump")).unwrap();
        assert_eq!((p.schema_version, p.taken_at, p.nth), (12, 1764, 1));
        let again =
            parse_snapshot_name(Path::new("/d/postgres.pre-migration-v12-1764-3.dump")).unwrap();
        assert_eq!((again.taken_at, again.nth), (1764, 3));
        assert_eq!(parse_snapshot_name(Path::new("/d/beffroi.db")), None);
        assert_eq!(
            parse_snapshot_name(Path::new("/d/x.pre-migration-vX-1.db")),
            None
        );
    }
}
