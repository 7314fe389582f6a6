//! Consistent copies of a live SQLite database through SQLite's online backup API, for backups,
//! pre-migration snapshots and rollbacks.
//!
//! `VACUUM INTO` (used before) rebuilds every table and index row by row into the copy; the
//! backup API copies the pages as they are, which for a large database is several times faster
//! (see BENCHMARKS.md, "Backups"). The copy is taken in one step, inside one read transaction
//! of the source: a consistent snapshot while other connections keep writing (WAL mode lets
//! them), never a mix of before and after a commit.
//!
//! sqlx exposes no backup call, and reaching SQLite's C API ourselves would need `unsafe`, which
//! this crate forbids; rusqlite wraps the call safely. It links the very same SQLite library as
//! sqlx (one `libsqlite3-sys`, so Cargo refuses two), which matters: SQLite coordinates the
//! POSIX locks of all connections to one file within a process only inside one library copy.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::DbError;

/// How long a copy waits, in total, for a source locked by a writer before giving up.
const BUSY_PATIENCE: Duration = Duration::from_secs(60);

/// Whether the copy must be on disk when the call returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Synced, with its directory: a snapshot that must survive a crash (pre-migration,
    /// pre-rollback).
    Synced,
    /// Left to the page cache: a scratch copy read back at once and deleted (a backup's, whose
    /// archive is synced instead).
    Scratch,
}

/// Copies the database at `source` into a new file `target` (owner-only from its first byte;
/// refused if it exists).
pub async fn copy_live(
    source: &Path,
    target: &Path,
    durability: Durability,
) -> Result<(), DbError> {
    let source: PathBuf = source.to_owned();
    let target: PathBuf = target.to_owned();
    tokio::task::spawn_blocking(move || copy_blocking(&source, &target, durability))
        .await
        .map_err(|e| DbError::Snapshot(format!("the database copy stopped: {e}")))?
}

fn copy_blocking(source: &Path, target: &Path, durability: Durability) -> Result<(), DbError> {
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        DbError::Snapshot(format!(
            "cannot copy {} to {}: {what}: {e}",
            source.display(),
            target.display()
        ))
    };
    // An empty file is an empty SQLite database: creating it here sets its mode before a byte
    // of data reaches it.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(target)
        .map_err(|e| failed("creating the copy", &e))?;
    let result = copy_pages(source, target, durability).map_err(|e| failed("SQLite", &e));
    if result.is_err() {
        let _ = std::fs::remove_file(target);
        return result;
    }
    if durability == Durability::Synced {
        let file = std::fs::File::open(target).map_err(|e| failed("reopening the copy", &e))?;
        file.sync_all()
            .map_err(|e| failed("syncing the copy", &e))?;
        if let Some(dir) = target.parent() {
            if let Ok(dir) = std::fs::File::open(dir) {
                let _ = dir.sync_all();
            }
        }
    }
    Ok(())
}

fn copy_pages(source: &Path, target: &Path, durability: Durability) -> rusqlite::Result<()> {
    // Read-write without CREATE: a missing source is an error, not a new empty database; the
    // source is only read (a read-only open of a WAL database would need its -shm file).
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let from = Connection::open_with_flags(source, flags)?;
    from.busy_timeout(BUSY_PATIENCE)?;
    let mut to = Connection::open_with_flags(target, flags)?;
    // The copy is written in one transaction into a file nobody else sees yet: a rollback
    // journal would only double the writes. A crash mid-copy leaves a file that is deleted or
    // never named as a snapshot.
    to.query_row("PRAGMA journal_mode = OFF", [], |_| Ok(()))?;
    to.pragma_update(
        None,
        "synchronous",
        match durability {
            Durability::Synced => "NORMAL",
            Durability::Scratch => "OFF",
        },
    )?;
    let backup = Backup::new(&from, &mut to)?;
    let mut waited = Duration::ZERO;
    loop {
        // -1: every page in one step, so the whole copy is read in a single read transaction.
        match backup.step(-1)? {
            StepResult::Done => return Ok(()),
            StepResult::More => {}
            StepResult::Busy | StepResult::Locked => {
                if waited >= BUSY_PATIENCE {
                    return Err(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                        Some("the source database stayed locked".into()),
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
                waited += Duration::from_millis(50);
            }
            // StepResult is non-exhaustive.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn copies_a_live_database_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("live.db");
        let db = Connection::open(&source).unwrap();
        db.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .unwrap();
        db.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL);
             INSERT INTO t (v) VALUES ('un'), ('deux'), ('trois');",
        )
        .unwrap();
        // Still open, with its last commit only in the WAL: the copy must include it.
        let target = dir.path().join("copy.db");
        copy_live(&source, &target, Durability::Synced)
            .await
            .unwrap();
        let copy = Connection::open(&target).unwrap();
        let n: i64 = copy
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3);
        let check: String = copy
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let again = copy_live(&source, &target, Durability::Scratch).await;
        assert!(again.is_err(), "an existing file is never overwritten");
        let missing = copy_live(
            &dir.path().join("nope.db"),
            &dir.path().join("x.db"),
            Durability::Scratch,
        )
        .await;
        assert!(missing.is_err(), "a missing source is an error");
        assert!(
            !dir.path().join("x.db").exists(),
            "a failed copy leaves nothing"
        );
    }
}
