//! The `beffroi backup …` subcommands: argument parsing and what they print. Human lines by
//! default; `--json` prints one JSON object on stdout for monitoring (`"ok": true|false`), and
//! the exit code is non-zero on any problem either way.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Subcommand;
use serde::Serialize;

use super::rotation::{self, PruneReport};
use super::{BackupError, CreateOptions, Progress, RestoreOptions, VerifyOptions, audit};
use crate::config::{Config, DatabaseTarget};
use crate::db::Database;
use crate::say;

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Take an encrypted backup now, while the server runs; then apply rotation.
    Create {
        /// Directory for the archive (default: backup.dir, else <data_dir>/backups).
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Check an archive: signature, size and SHA-256; with --identity, also decrypt it and
    /// check every member and the database. Exits non-zero on any problem.
    Verify {
        /// The archive (`….tar.age`); its signed manifest must be beside it.
        file: PathBuf,
        /// age identity file (from age-keygen) to decrypt the archive with.
        #[arg(long, value_name = "KEYFILE")]
        identity: Option<PathBuf>,
        /// The instance's Ed25519 public key (64 hex digits), when verifying away from it.
        #[arg(long, value_name = "HEX")]
        public_key: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Restore an archive into the configured data directory and database, after checking it
    /// completely. Stop Beffroi first.
    Restore {
        file: PathBuf,
        #[arg(long, value_name = "KEYFILE")]
        identity: PathBuf,
        /// Replace an existing database (what it replaces is set aside first).
        #[arg(long)]
        force: bool,
        /// The instance's Ed25519 public key (64 hex digits); required when the data directory
        /// is new and has no key of its own.
        #[arg(long, value_name = "HEX")]
        public_key: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Delete the archives the rotation policy does not keep.
    Prune {
        /// Say what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
}

fn json_out<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => say!("{text}"),
        Err(e) => eprintln!("error: cannot encode the report: {e}"),
    }
}

/// With `--json`, a failure is also a JSON object on stdout (the message goes to stderr too).
fn fail(json: bool, e: impl std::fmt::Display) -> String {
    let message = e.to_string();
    if json {
        json_out(&serde_json::json!({ "ok": false, "error": message }));
    }
    message
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
}

pub async fn run(config_path: &Path, command: BackupCommand) -> Result<(), String> {
    match command {
        BackupCommand::Create { to, json } => create(config_path, to, json).await,
        BackupCommand::Verify {
            file,
            identity,
            public_key,
            json,
        } => verify(config_path, &file, identity, public_key, json).await,
        BackupCommand::Restore {
            file,
            identity,
            force,
            public_key,
            json,
        } => restore(config_path, &file, identity, force, public_key, json).await,
        BackupCommand::Prune { dry_run, json } => {
            let (config, db, _) = crate::cli::open_for_admin_task(config_path, false)
                .await
                .map_err(|e| fail(json, e))?;
            let report = prune(&config, &db, None, dry_run)
                .await
                .map_err(|e| fail(json, e))?;
            if json {
                json_out(&serde_json::json!({ "ok": true, "prune": report }));
            } else {
                print_prune(&report);
            }
            Ok(())
        }
    }
}

/// Applies rotation in `dir` (the configured one by default) and records deletions.
async fn prune(
    config: &Config,
    db: &Database,
    dir: Option<&Path>,
    dry_run: bool,
) -> Result<PruneReport, BackupError> {
    let backup = config.backup.as_ref().ok_or_else(|| {
        BackupError::Config("backup: the configuration has no [backup] section".into())
    })?;
    let dir = dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| super::backup_dir(config));
    let Some(instance) = super::read_instance_id(&config.storage.data_dir)? else {
        return Ok(PruneReport {
            kept: Vec::new(),
            deleted: Vec::new(),
            dry_run,
        });
    };
    let report = rotation::prune(&dir, &instance, backup.into(), dry_run)?;
    if !dry_run && !report.deleted.is_empty() {
        let names: Vec<String> = report
            .deleted
            .iter()
            .map(|p| super::create::file_name(p))
            .collect();
        audit(
            db,
            "backup.prune",
            &dir.display().to_string(),
            "success",
            serde_json::json!({ "deleted": names, "kept": report.kept.len() }),
        )
        .await?;
    }
    Ok(report)
}

fn print_prune(report: &PruneReport) {
    let verb = if report.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    say!(
        "ok   rotation: {} kept, {} {verb}",
        report.kept.len(),
        report.deleted.len()
    );
    for p in &report.deleted {
        say!("     {verb} {}", p.display());
    }
}

async fn create(config_path: &Path, to: Option<PathBuf>, json: bool) -> Result<(), String> {
    let (config, db, _) = crate::cli::open_for_admin_task(config_path, false)
        .await
        .map_err(|e| fail(json, e))?;
    let options = CreateOptions {
        to: to.clone(),
        config_path: config_path.to_owned(),
        progress: Arc::new(Progress::for_stderr("backup")),
    };
    let report = super::create(&config, &db, &options)
        .await
        .map_err(|e| fail(json, e))?;
    let pruned = prune(&config, &db, to.as_deref(), false).await;
    if json {
        let (prune, error) = match &pruned {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(e.to_string())),
        };
        json_out(&serde_json::json!({
            "ok": pruned.is_ok(),
            "backup": report,
            "prune": prune,
            "error": error,
        }));
    } else {
        say!(
            "ok   backup written: {} ({}, {} members, {} of data) in {:.1} s",
            report.archive.display(),
            mib(report.size),
            report.members,
            mib(report.plaintext_bytes),
            report.seconds
        );
        say!("ok   signed manifest: {}", report.manifest.display());
        say!("     sha256 {}", report.sha256);
        say!(
            "     instance {}, schema version {}, {}",
            report.instance_id,
            report.schema_version,
            report.audit_tree_size.map_or_else(
                || "no audit checkpoint (the audit log is empty)".into(),
                |n| format!("audit checkpoint at {n} entries")
            )
        );
        say!(
            "     signing key {} (record it: a restore on a new machine needs it)",
            report.signing_key
        );
        for s in &report.skipped {
            say!("note left out: {s}");
        }
        if let Ok(p) = &pruned {
            print_prune(p);
        }
    }
    pruned
        .map(|_| ())
        .map_err(|e| format!("the backup was written, but rotation failed: {e}"))
}

/// A database to record the outcome in, if one exists; never creates one.
async fn existing_database(config: &Config) -> Option<Database> {
    if let DatabaseTarget::Sqlite(path) = config.database_target() {
        if !path.exists() {
            return None;
        }
    }
    Database::connect(config).await.ok()
}

async fn record(
    db: Option<&Database>,
    action: &'static str,
    file: &Path,
    outcome: &'static str,
    details: serde_json::Value,
) {
    if let Some(db) = db {
        if let Err(e) = audit(
            db,
            action,
            &super::create::file_name(file),
            outcome,
            details,
        )
        .await
        {
            eprintln!("note: could not record {action} in the audit log: {e}");
        }
    }
}

async fn verify(
    config_path: &Path,
    file: &Path,
    identity: Option<PathBuf>,
    public_key: Option<String>,
    json: bool,
) -> Result<(), String> {
    let given_key = public_key
        .as_deref()
        .map(super::parse_public_key)
        .transpose()
        .map_err(|e| fail(json, e))?;
    // Away from the instance (the offline machine that holds the identity) there is no
    // configuration: the key must then be given.
    let config = if config_path.exists() {
        let config = crate::cli::load_config(config_path).map_err(|e| fail(json, e))?;
        crate::server::check_file_modes(config_path, &config).map_err(|e| fail(json, e))?;
        Some(config)
    } else {
        None
    };
    crate::telemetry::init("warn", crate::config::LogFormat::Auto);
    let (local_key, instance, work_dir, db) = match &config {
        Some(c) => (
            super::instance_public_key(c).map_err(|e| fail(json, e))?,
            super::read_instance_id(&c.storage.data_dir).map_err(|e| fail(json, e))?,
            c.storage.data_dir.clone(),
            existing_database(c).await,
        ),
        None => (None, None, std::env::temp_dir(), None),
    };
    let key = given_key.or(local_key).ok_or_else(|| {
        fail(
            json,
            "no key to check the signature against: pass --public-key with the instance's key \
             (printed by `beffroi backup create`), or run this where the configuration is",
        )
    })?;
    let options = VerifyOptions {
        identity,
        public_key: key,
        expected_instance: if given_key.is_some() { None } else { instance },
        work_dir,
        progress: Arc::new(Progress::for_stderr("verify")),
    };
    let result = super::verify(file, &options).await;
    match &result {
        Ok(r) => {
            record(
                db.as_ref(),
                "backup.verify",
                file,
                "success",
                serde_json::json!({ "file": super::create::file_name(file), "sha256": r.sha256, "decrypted": r.decrypted }),
            )
            .await
        }
        Err(e) => {
            record(
                db.as_ref(),
                "backup.verify",
                file,
                "failure",
                serde_json::json!({ "file": super::create::file_name(file), "error": e.to_string() }),
            )
            .await
        }
    }
    if let Some(db) = &db {
        db.close().await;
    }
    let report = result.map_err(|e| fail(json, e))?;
    if json {
        json_out(&serde_json::json!({ "ok": true, "verify": report }));
        return Ok(());
    }
    say!(
        "ok   signature: both manifests signed by {}{}",
        report.signing_key,
        if given_key.is_some() {
            " (the key given)"
        } else {
            " (this instance's key)"
        }
    );
    say!(
        "ok   archive: {} bytes, SHA-256 {} as signed",
        report.size,
        report.sha256
    );
    match &report.database {
        Some(db) => {
            say!(
                "ok   decrypted: all {} members match their SHA-256 in the signed manifest",
                report.members
            );
            say!("ok   database: {db}");
        }
        None => say!(
            "note not decrypted (no --identity): contents not checked beyond the archive's hash"
        ),
    }
    say!(
        "VERIFIED {} (instance {}, created {}, Beffroi {}, schema {}, {})",
        file.display(),
        report.instance_id,
        report.created,
        report.beffroi_version,
        report.schema_version,
        report.backend
    );
    Ok(())
}

async fn restore(
    config_path: &Path,
    file: &Path,
    identity: PathBuf,
    force: bool,
    public_key: Option<String>,
    json: bool,
) -> Result<(), String> {
    let config = crate::cli::load_config(config_path).map_err(|e| fail(json, e))?;
    crate::server::check_file_modes(config_path, &config).map_err(|e| fail(json, e))?;
    crate::telemetry::init("warn", config.log.format);
    let public_key = public_key
        .as_deref()
        .map(super::parse_public_key)
        .transpose()
        .map_err(|e| fail(json, e))?;
    let options = RestoreOptions {
        identity,
        public_key,
        force,
        progress: Arc::new(Progress::for_stderr("restore")),
    };
    let report = match super::restore(&config, file, &options).await {
        Ok(r) => r,
        Err(e) => {
            let db = existing_database(&config).await;
            record(
                db.as_ref(),
                "backup.restore",
                file,
                "failure",
                serde_json::json!({ "file": super::create::file_name(file), "error": e.to_string() }),
            )
            .await;
            if let Some(db) = db {
                db.close().await;
            }
            return Err(fail(json, e));
        }
    };
    if json {
        json_out(&serde_json::json!({ "ok": true, "restore": report }));
        return Ok(());
    }
    say!(
        "ok   archive verified and decrypted: every member matches the signed manifest (instance {}, created {})",
        report.instance_id,
        report.created
    );
    for p in &report.set_aside {
        say!("ok   replaced data set aside: {}", p.display());
    }
    say!(
        "ok   restored the database (schema {}) and {} uploaded files into {}",
        report.schema_version,
        report.files,
        report.files_into
    );
    for s in &report.skipped {
        say!("note left out (not a blob id, which the file store cannot hold): {s}");
    }
    if !report.migrations_applied.is_empty() {
        say!("ok   applied migrations: {:?}", report.migrations_applied);
    }
    say!(
        "ok   audit log verified: {} entries, checkpoints signed by {}",
        report.audit_entries,
        report.signing_key
    );
    say!(
        "note the archived configuration is in {}: compare it with {} (it is not installed)",
        report.archived_config.display(),
        config_path.display()
    );
    say!("RESTORED {}; start Beffroi again.", file.display());
    Ok(())
}
