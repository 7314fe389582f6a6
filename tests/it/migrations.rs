//! Migrations: a fresh database is migrated without a snapshot; an existing one gets a snapshot
//! first, and the snapshot holds the data as it was.

use crate::both_backends;
use crate::helpers::{Backend, Options, TestDatabase, snapshot_policy, test_config};
use beffroi::db::{Database, pending_migrations};

both_backends!(
    upgrade_takes_a_snapshot_first,
    both_backends_end_with_the_same_tables,
    rollback_restores_the_pre_migration_schema_and_data
);

/// Whether a table exists.
async fn has_table(db: &Database, table: &str) -> bool {
    match db {
        Database::Sqlite(pool) => {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
            )
            .bind(table)
            .fetch_one(pool)
            .await
            .unwrap()
                > 0
        }
        Database::Postgres(pool) => {
            sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
                .bind(table)
                .fetch_one(pool)
                .await
                .unwrap()
        }
    }
}

/// An upgrade across schema versions, then `rollback`: the database is back at the old
/// version with its old data, the tables of the newer schema are gone, what was written after
/// the upgrade is kept aside, the rollback is on record, and the database upgrades again.
async fn rollback_restores_the_pre_migration_schema_and_data(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let test_db = TestDatabase::create(backend).await;
    let config = test_config(&data_dir, &test_db, &Options::default());
    let db = Database::connect(&config).await.unwrap();
    let policy = snapshot_policy(&data_dir);
    // Version 7: the audit log exists, the organisation structure (0008) does not yet.
    db.migrate_to(&policy, 7).await.unwrap();
    beffroi::with_db!(&db, pool => sqlx::query(
        "INSERT INTO accounts (kind, username, display_name, created_at, updated_at) \
         VALUES ('local', 'before-upgrade', 'Before', 0, 0)"
    ).execute(pool).await.map(|_| ()).unwrap());
    let upgrade = db.migrate(&policy).await.unwrap();
    assert!(upgrade.snapshot.is_some());
    let latest = *upgrade.applied.last().unwrap();
    assert!(latest > 7);
    beffroi::with_db!(&db, pool => sqlx::query(
        "INSERT INTO accounts (kind, username, display_name, created_at, updated_at) \
         VALUES ('local', 'after-upgrade', 'After', 0, 0)"
    ).execute(pool).await.map(|_| ()).unwrap());
    assert!(has_table(&db, "departments").await);
    db.close().await;

    let found = beffroi::db::rollback::snapshots(&config).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].schema_version, 7);
    let report = beffroi::db::rollback::rollback(&config, None)
        .await
        .unwrap();
    assert_eq!(report.snapshot.schema_version, 7);
    assert_eq!(report.replaced_version, latest);
    assert!(report.set_aside.exists());
    assert!(report.audit_entries >= 1);

    let db = Database::connect(&config).await.unwrap();
    let version: i64 = beffroi::with_db!(&db, pool => sqlx::query_scalar(
        "SELECT MAX(version) FROM _sqlx_migrations"
    ).fetch_one(pool).await.unwrap());
    assert_eq!(version, 7);
    let names: Vec<String> = beffroi::with_db!(&db, pool => sqlx::query_scalar(
        "SELECT username FROM accounts ORDER BY username"
    ).fetch_all(pool).await.unwrap());
    assert_eq!(names, vec!["before-upgrade".to_owned()]);
    assert!(!has_table(&db, "departments").await);
    let recorded = crate::helpers::audit_entries(&db, "schema.rollback").await;
    assert_eq!(recorded.len(), 1);
    let details = crate::helpers::details(&recorded[0]);
    assert_eq!(details["from_version"], latest);
    assert_eq!(details["to_version"], 7);
    if backend == Backend::Sqlite {
        // What was written after the upgrade is in the set-aside copy.
        let aside = Database::connect_sqlite(&report.set_aside, 1)
            .await
            .unwrap();
        let kept: i64 = beffroi::with_db!(&aside, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM accounts WHERE username = 'after-upgrade'"
        ).fetch_one(pool).await.unwrap());
        assert_eq!(kept, 1);
        aside.close().await;
    }
    // And the rolled-back database upgrades again.
    let again = db.migrate(&policy).await.unwrap();
    assert_eq!(again.applied.last(), Some(&latest));
    assert!(has_table(&db, "departments").await);
    db.close().await;
}

async fn upgrade_takes_a_snapshot_first(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let test_db = TestDatabase::create(backend).await;
    let config = test_config(&data_dir, &test_db, &Options::default());
    let db = Database::connect(&config).await.unwrap();
    let policy = snapshot_policy(&data_dir);

    // A brand-new database: nothing to protect, no snapshot.
    let first = db.migrate_to(&policy, 1).await.unwrap();
    assert_eq!(first.applied, vec![1]);
    assert!(first.snapshot.is_none());
    beffroi::with_db!(&db, pool => sqlx::query(
        "INSERT INTO accounts (kind, username, display_name, created_at, updated_at) \
         VALUES ('local', 'before-upgrade', 'Before', 0, 0)"
    ).execute(pool).await.map(|_| ()).unwrap());

    // An upgrade of a database holding data: snapshot first.
    // Versions from the file names: numbers need not be contiguous while branches land.
    let mut later: Vec<i64> = std::fs::read_dir("migrations/sqlite")
        .unwrap()
        .filter_map(|f| {
            f.unwrap()
                .file_name()
                .to_str()?
                .split('_')
                .next()?
                .parse()
                .ok()
        })
        .filter(|v| *v > 1)
        .collect();
    later.sort();
    assert_eq!(pending_migrations(&db).await.unwrap(), later);
    let second = db.migrate(&policy).await.unwrap();
    assert_eq!(second.applied, later);
    let snapshot = second.snapshot.expect("no snapshot before upgrading");
    assert!(snapshot.exists(), "{}", snapshot.display());
    assert!(
        snapshot.to_string_lossy().contains("pre-migration-v1-"),
        "{}",
        snapshot.display()
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&snapshot).unwrap().permissions().mode() & 0o077,
        0
    );
    match backend {
        Backend::Sqlite => {
            assert_eq!(
                snapshot.parent(),
                config.storage.data_dir.join("beffroi.db").parent()
            );
            // The snapshot is a working database at the old version, with the data.
            let copy = Database::connect_sqlite(&snapshot, 1).await.unwrap();
            let names: Vec<String> = beffroi::with_db!(&copy, pool => sqlx::query_scalar(
                "SELECT username FROM accounts").fetch_all(pool).await.unwrap());
            assert_eq!(names, vec!["before-upgrade".to_owned()]);
            assert_eq!(pending_migrations(&copy).await.unwrap(), later);
        }
        Backend::Postgres => {
            let bytes = std::fs::read(&snapshot).unwrap();
            assert!(bytes.starts_with(b"PGDMP"), "not a pg_dump custom archive");
        }
    }
    // Up to date: nothing applied, no snapshot.
    let third = db.migrate(&policy).await.unwrap();
    assert!(third.applied.is_empty() && third.snapshot.is_none());

    // A database migrated by a newer release is refused rather than used with the wrong schema.
    beffroi::with_db!(&db, pool => sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', TRUE, $1, 0)"
    ).bind(vec![0u8; 48]).execute(pool).await.map(|_| ()).unwrap());
    let err = db.migrate(&policy).await.unwrap_err().to_string();
    assert!(
        err.contains("schema version 9999, newer than this binary"),
        "{err}"
    );
}

async fn table_columns(db: &Database) -> Vec<(String, String)> {
    let rows: Vec<(String, String)> = match db {
        Database::Sqlite(pool) => sqlx::query_as(
            "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations' \
             ORDER BY m.name, p.name",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
        Database::Postgres(pool) => sqlx::query_as(
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations' \
             ORDER BY table_name, column_name",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
    };
    rows
}

/// The two migration folders must describe the same schema: same tables, same columns.
async fn both_backends_end_with_the_same_tables(backend: Backend) {
    if backend == Backend::Sqlite {
        return; // One comparison is enough; it runs under the postgres variant.
    }
    let dir = tempfile::tempdir().unwrap();
    let mut schemas = Vec::new();
    for b in [Backend::Sqlite, Backend::Postgres] {
        let test_db = TestDatabase::create(b).await;
        let data_dir = dir.path().join(format!("{b:?}"));
        let config = test_config(&data_dir, &test_db, &Options::default());
        let db = Database::connect(&config).await.unwrap();
        db.migrate(&snapshot_policy(&data_dir)).await.unwrap();
        schemas.push(table_columns(&db).await);
        db.close().await;
    }
    assert!(schemas[0].len() > 10);
    assert_eq!(schemas[0], schemas[1]);
}
