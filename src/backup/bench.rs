//! `beffroi bench backup`: measures a backup and a restore of a SQLite database of a given size
//! against the stock tools on the same bytes, in the same run: `age -r` encrypting the database
//! snapshot, and a plain copy (with fsync) of it. A throwaway instance is built in a temporary
//! directory and removed afterwards; nothing else is touched.
//!
//! Targets (from the backup issue): backup throughput at least half of `age -r`'s; restore at most
//! twice the time of a plain copy. Peak memory of the backup is reported from the kernel's
//! high-water mark, reset just before it starts.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use secrecy::ExposeSecret;

use super::{CreateOptions, Progress, RestoreOptions};
use crate::config::Config;
use crate::db::Database;
use crate::say;

#[derive(Debug, Args)]
pub struct BenchBackupArgs {
    /// Size of the database to back up, in MiB.
    #[arg(long, default_value_t = 1024)]
    pub size_mib: u64,
    /// Directory for the throwaway instance (a temporary directory is made inside).
    #[arg(long, default_value = "/var/tmp")]
    pub dir: PathBuf,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    super::write_private_new(path, text.as_bytes()).map_err(err)
}

fn config_for(data_dir: &Path, recipient: &str, path: &Path) -> Result<Config, String> {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = \"{}\"\n[backup]\nrecipients = [\"{recipient}\"]\n",
        data_dir.display()
    );
    write_file(path, &text)?;
    Config::load(path, Vec::new()).map_err(err)
}

/// Peak resident memory (VmHWM) of this process, in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn current_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets the high-water mark to the current RSS (Linux 4.0+).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn mib_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1_048_576.0 / secs.max(1e-9)
}

pub async fn run(args: BenchBackupArgs) -> Result<(), String> {
    crate::db::create_private_dir(&args.dir).map_err(err)?;
    let root = tempfile::Builder::new()
        .prefix("beffroi-bench-")
        .tempdir_in(&args.dir)
        .map_err(err)?;
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let identity_file = root.path().join("identity.txt");
    write_file(
        &identity_file,
        &format!("{}\n", identity.to_string().expose_secret()),
    )?;

    // The source instance, with a database of the requested size.
    let source = config_for(
        &root.path().join("source"),
        &recipient,
        &root.path().join("source.toml"),
    )?;
    let db = Database::connect(&source).await.map_err(err)?;
    db.migrate(&crate::server::snapshot_policy(&source, true).map_err(err)?)
        .await
        .map_err(err)?;
    say!("bench: filling a {} MiB SQLite database…", args.size_mib);
    if let Database::Sqlite(pool) = &db {
        sqlx::query("CREATE TABLE bench_blob (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
            .execute(pool)
            .await
            .map_err(err)?;
        // 64 KiB random rows: incompressible, like encrypted uploads or photos.
        let rows = i64::try_from(args.size_mib * 16).map_err(err)?;
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
             INSERT INTO bench_blob (data) SELECT randomblob(65536) FROM n",
        )
        .bind(rows)
        .execute(pool)
        .await
        .map_err(err)?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(pool)
            .await
            .map_err(err)?;
    }
    let db_path = source.storage.data_dir.join("beffroi.db");
    let db_bytes = std::fs::metadata(&db_path).map_err(err)?.len();

    // Reference 1: age -r on a snapshot of the same database (the bytes the backup encrypts).
    let snapshot = root.path().join("snapshot.db");
    crate::db::sqlite_copy::copy_live(
        &db_path,
        &snapshot,
        crate::db::sqlite_copy::Durability::Scratch,
    )
    .await
    .map_err(err)?;
    let snapshot_bytes = std::fs::metadata(&snapshot).map_err(err)?.len();
    let age_out = root.path().join("snapshot.db.age");
    let t = Instant::now();
    let status = tokio::process::Command::new("age")
        .arg("-r")
        .arg(&recipient)
        .arg("-o")
        .arg(&age_out)
        .arg(&snapshot)
        .status()
        .await
        .map_err(|e| format!("cannot run age (apt-get install age): {e}"))?;
    let age_secs = t.elapsed().as_secs_f64();
    if !status.success() {
        return Err("age -r failed".into());
    }
    std::fs::remove_file(&age_out).map_err(err)?;

    // Reference 2: a plain copy of the database file, synced like a restore syncs.
    let copy = root.path().join("copy.db");
    let t = Instant::now();
    std::fs::copy(&snapshot, &copy).map_err(err)?;
    std::fs::File::open(&copy)
        .and_then(|f| f.sync_all())
        .map_err(err)?;
    let copy_secs = t.elapsed().as_secs_f64();
    std::fs::remove_file(&copy).map_err(err)?;
    std::fs::remove_file(&snapshot).map_err(err)?;

    // The backup, end to end (snapshot, tar, age, hashes, manifests, fsync).
    let measured_peak = reset_peak_rss();
    let rss_before = current_rss_kib().unwrap_or(0);
    let backups = root.path().join("backups");
    let options = CreateOptions {
        to: Some(backups.clone()),
        config_path: root.path().join("source.toml"),
        progress: Arc::new(Progress::hidden()),
    };
    let t = Instant::now();
    let report = super::create(&source, &db, &options).await.map_err(err)?;
    let create_secs = t.elapsed().as_secs_f64();
    let peak = peak_rss_kib().unwrap_or(0);
    db.close().await;

    // The restore into a fresh data directory.
    let target = config_for(
        &root.path().join("target"),
        &recipient,
        &root.path().join("target.toml"),
    )?;
    let restore_options = RestoreOptions {
        identity: identity_file,
        public_key: Some(super::parse_public_key(&report.signing_key).map_err(err)?),
        force: false,
        progress: Arc::new(Progress::hidden()),
    };
    let t = Instant::now();
    super::restore(&target, &report.archive, &restore_options)
        .await
        .map_err(err)?;
    let restore_secs = t.elapsed().as_secs_f64();

    let age_rate = mib_s(snapshot_bytes, age_secs);
    let backup_rate = mib_s(report.plaintext_bytes, create_secs);
    let backup_ok = backup_rate >= age_rate / 2.0;
    let restore_ok = restore_secs <= copy_secs * 2.0;
    say!(
        "database {:.0} MiB on disk, snapshot {:.0} MiB, archive {:.0} MiB",
        db_bytes as f64 / 1_048_576.0,
        snapshot_bytes as f64 / 1_048_576.0,
        report.size as f64 / 1_048_576.0
    );
    say!("age -r (stock CLI) on the snapshot: {age_secs:.2} s, {age_rate:.0} MiB/s");
    say!(
        "beffroi backup create:              {create_secs:.2} s, {backup_rate:.0} MiB/s = {:.0}% of age -r (target >= 50%: {})",
        100.0 * backup_rate / age_rate,
        if backup_ok { "PASS" } else { "FAIL" }
    );
    let stream_secs = (create_secs - report.snapshot_seconds).max(1e-9);
    say!(
        "  of which snapshot (backup API) {:.2} s; tar+age+hashes+fsync {stream_secs:.2} s, {:.0} MiB/s = {:.0}% of age -r",
        report.snapshot_seconds,
        mib_s(report.plaintext_bytes, stream_secs),
        100.0 * mib_s(report.plaintext_bytes, stream_secs) / age_rate
    );
    say!("plain copy + fsync of the snapshot: {copy_secs:.2} s");
    say!(
        "beffroi backup restore:             {restore_secs:.2} s = {:.2}x the copy (target <= 2x: {})",
        restore_secs / copy_secs.max(1e-9),
        if restore_ok { "PASS" } else { "FAIL" }
    );
    if measured_peak {
        say!(
            "backup memory: peak RSS {} MiB, {} MiB above the RSS before it started (bound: 64 MiB)",
            peak / 1024,
            peak.saturating_sub(rss_before) / 1024
        );
    }
    if backup_ok && restore_ok {
        Ok(())
    } else {
        Err("a benchmark target was missed".into())
    }
}
