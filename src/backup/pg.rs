//! PostgreSQL's own tools, run as child processes: `pg_dump -Fc` takes a consistent snapshot
//! (one repeatable-read transaction) while the servers keep writing; `pg_restore` checks and
//! restores it. The password goes in the child's environment, never on its command line, where
//! any local user could read it in `ps`.

use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;

use super::BackupError;

/// `program` with the connection arguments of `pool`.
pub fn command(
    program: &str,
    pool: &PgPool,
    password: Option<&SecretString>,
) -> tokio::process::Command {
    let options = pool.connect_options();
    let mut cmd = tokio::process::Command::new(program);
    cmd.arg("--host")
        .arg(options.get_host())
        .arg("--port")
        .arg(options.get_port().to_string())
        .arg("--username")
        .arg(options.get_username())
        .arg("--no-password");
    if let Some(name) = options.get_database() {
        cmd.arg("--dbname").arg(name);
    }
    if let Some(pw) = password {
        cmd.env("PGPASSWORD", pw.expose_secret());
    }
    cmd.kill_on_drop(true);
    cmd
}

async fn run(mut cmd: tokio::process::Command, what: &str) -> Result<(), BackupError> {
    let output = cmd.output().await.map_err(|e| {
        BackupError::Snapshot(format!(
            "cannot run {what} ({e}); install postgresql-client (the same major version as the \
             server or newer)"
        ))
    })?;
    if !output.status.success() {
        return Err(BackupError::Snapshot(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}

/// Dumps the database to `target` in pg_dump's custom format.
pub async fn dump(
    pool: &PgPool,
    password: Option<&SecretString>,
    target: &Path,
) -> Result<(), BackupError> {
    let mut cmd = command("pg_dump", pool, password);
    cmd.arg("--format=custom").arg("--file").arg(target);
    run(cmd, "pg_dump").await
}

/// Restores a custom-format dump over the database, in one transaction: either all of it is
/// restored or nothing changes.
pub async fn restore(
    pool: &PgPool,
    password: Option<&SecretString>,
    dump: &Path,
) -> Result<(), BackupError> {
    let mut cmd = command("pg_restore", pool, password);
    cmd.args([
        "--clean",
        "--if-exists",
        "--no-owner",
        "--no-privileges",
        "--single-transaction",
        "--exit-on-error",
    ])
    .arg(dump);
    run(cmd, "pg_restore").await
}

/// Checks that a dump is a readable pg_dump archive (its table of contents parses).
pub async fn check_dump(dump: &Path) -> Result<(), BackupError> {
    let mut cmd = tokio::process::Command::new("pg_restore");
    cmd.arg("--list").arg(dump).kill_on_drop(true);
    let output = cmd.output().await.map_err(|e| {
        BackupError::Snapshot(format!(
            "cannot run pg_restore to check the dump ({e}); install postgresql-client"
        ))
    })?;
    if !output.status.success() {
        return Err(BackupError::Refused(format!(
            "the database dump does not read back (pg_restore --list: {})",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}
