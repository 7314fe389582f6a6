//! The `Database`: one type over the two supported backends, SQLite (embedded default) and
//! PostgreSQL (several nodes). Queries are written once with `$1` placeholders, which both
//! backends accept, and compiled once per backend by [`with_db!`]; where the SQL dialects differ,
//! the call site matches on the backend instead. Migrations live per backend in
//! `migrations/sqlite` and `migrations/postgres`.
//!
//! This module never builds SQL from user input: every value is bound.

mod migrate;
pub mod privileges;
pub mod rollback;
pub mod sqlite_copy;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use migrate::{MigrationReport, SnapshotPolicy, latest_migration, pending_migrations};

use crate::config::{Config, DatabaseTarget};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Snapshot(String),
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    /// An audit entry that cannot be recorded (unknown action, too large).
    #[error("audit log: {0}")]
    Audit(String),
}

/// A connection pool to one of the two backends.
#[derive(Clone, Debug)]
pub enum Database {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same block against whichever pool `db` holds; `$pool` is bound to `&SqlitePool` or
/// `&PgPool`. The block is type-checked once per backend, so a query that does not decode on
/// one of them fails to compile rather than at run time.
#[macro_export]
macro_rules! with_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Database::Sqlite($pool) => $body,
            $crate::db::Database::Postgres($pool) => $body,
        }
    };
}

/// A write transaction on either backend. On SQLite it starts with `BEGIN IMMEDIATE`, taking
/// the write lock at once, so two transactions that read then write (the audit log reads the
/// last sequence number) cannot both read the same state.
pub enum Tx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// Runs the same block against the connection of a [`Tx`]; `$conn` is `&mut SqliteConnection`
/// or `&mut PgConnection`.
#[macro_export]
macro_rules! with_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            $crate::db::Tx::Sqlite(t) => {
                let $conn = &mut **t;
                $body
            }
            $crate::db::Tx::Postgres(t) => {
                let $conn = &mut **t;
                $body
            }
        }
    };
}

impl Tx {
    pub async fn commit(self) -> Result<(), DbError> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}

/// Which backend a database is, for the few places where SQL differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Database {
    /// Connects to the database named by the config. Does not migrate.
    pub async fn connect(config: &Config) -> Result<Self, DbError> {
        match config.database_target() {
            DatabaseTarget::Sqlite(path) => {
                Self::connect_sqlite(&path, config.storage.pool_size(true)).await
            }
            DatabaseTarget::Postgres(url) => {
                let password = config.database_password()?;
                Self::connect_postgres(&url, password.as_ref(), config.storage.pool_size(false))
                    .await
            }
        }
    }

    /// Connects as the schema's owner: `storage.migration_database_url` when set, otherwise
    /// the one configured database. Used for migrations, restores and the audit purge.
    pub async fn connect_owner(config: &Config) -> Result<Self, DbError> {
        match &config.storage.migration_database_url {
            Some(url) => {
                let password = config.migration_password()?;
                Self::connect_postgres(url, password.as_ref(), 2).await
            }
            None => Self::connect(config).await,
        }
    }

    /// Migrates as the owner, then (with a separate runtime role) grants that role what the
    /// server needs, and returns the runtime connection. What `serve` and every console task
    /// call first.
    pub async fn open(
        config: &Config,
        policy: &SnapshotPolicy,
    ) -> Result<(Self, MigrationReport), DbError> {
        if config.storage.migration_database_url.is_none() {
            let db = Self::connect(config).await?;
            let report = db.migrate(policy).await?;
            return Ok((db, report));
        }
        let owner = Self::connect_owner(config).await?;
        let runtime = Self::connect(config).await?;
        let (Self::Postgres(owner_pool), Self::Postgres(runtime_pool)) = (&owner, &runtime) else {
            return Err(DbError::Snapshot(
                "storage.migration_database_url applies to PostgreSQL only".into(),
            ));
        };
        // Checked before anything is migrated: one role on both sides would leave the server
        // owning its tables, the very thing the separate owner is there to prevent.
        let owner_role = privileges::current_role(owner_pool).await?;
        let runtime_role = privileges::current_role(runtime_pool).await?;
        if owner_role == runtime_role {
            owner.close().await;
            return Err(DbError::Config(crate::config::ConfigError::Invalid {
                key: "storage.migration_database_url".into(),
                reason: format!(
                    "connects as {owner_role}, the same role as storage.database_url; \
                     the runtime role must be a different one"
                ),
            }));
        }
        let report = owner.migrate(policy).await;
        let granted = match &report {
            Ok(_) => privileges::grant_runtime_privileges(owner_pool, &runtime_role).await,
            Err(_) => Ok(()),
        };
        owner.close().await;
        let report = report?;
        granted?;
        Ok((runtime, report))
    }

    pub async fn connect_sqlite(path: &Path, max_connections: u32) -> Result<Self, DbError> {
        if let Some(dir) = path.parent() {
            create_private_dir(dir)?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            // WAL lets readers run while one writer commits; FULL sync makes a commit survive
            // a power cut, which an audit log and a session table need.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .pragma("mmap_size", "268435456")
            .busy_timeout(Duration::from_secs(10));
        // No ping before handing out a connection: an embedded database has no peer to lose,
        // and the ping is a round trip to the connection's thread before every query (a third
        // of the thread hand-offs of a wall page).
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        restrict_file_mode(path);
        Ok(Self::Sqlite(pool))
    }

    pub async fn connect_postgres(
        url: &str,
        password: Option<&SecretString>,
        max_connections: u32,
    ) -> Result<Self, DbError> {
        let mut options = PgConnectOptions::from_str(url)?.application_name("beffroi");
        if let Some(password) = password {
            options = options.password(password.expose_secret());
        }
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Self::Postgres(pool))
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Tx, DbError> {
        Ok(match self {
            Self::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Self::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        with_db!(self, pool => sqlx::query("SELECT 1").execute(pool).await.is_ok())
    }

    /// Connections open and idle, for `/metrics`.
    pub fn pool_stats(&self) -> (u32, usize) {
        with_db!(self, pool => (pool.size(), pool.num_idle()))
    }

    /// Applies pending migrations, first taking a snapshot when the database already holds data.
    pub async fn migrate(&self, policy: &SnapshotPolicy) -> Result<MigrationReport, DbError> {
        migrate::run(self, policy, None).await
    }

    /// Applies migrations up to and including `version` only (used to test upgrades).
    pub async fn migrate_to(
        &self,
        policy: &SnapshotPolicy,
        version: i64,
    ) -> Result<MigrationReport, DbError> {
        migrate::run(self, policy, Some(version)).await
    }

    pub async fn close(&self) {
        with_db!(self, pool => pool.close().await)
    }
}

/// Creates a directory (and its parents) readable by the service user only, whatever the umask.
pub fn create_private_dir(dir: &Path) -> Result<(), DbError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| DbError::Snapshot(format!("cannot create {}: {e}", dir.display())))
}

/// The SQLite file holds session hashes and password hashes: owner only.
fn restrict_file_mode(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for p in [
        path.to_path_buf(),
        with_suffix(path, "-wal"),
        with_suffix(path, "-shm"),
    ] {
        if p.exists() {
            if let Err(e) = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)) {
                tracing::warn!(path = %p.display(), error = %e, "cannot restrict database file mode");
            }
        }
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Seconds since the Unix epoch, the one time representation stored in the database.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
