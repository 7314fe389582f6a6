//! The command line: `serve`, `check-config`, `default-config`, `migrate`, `recover-admin`,
//! `audit`, `backup`, `mail`, `bench` and `demo`. Each subcommand is a thin function over the library; errors are printed as one clear
//! line naming the key or file at fault, and the exit code is non-zero.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;

use crate::auth::password::{PasswordHasher, generate_one_time_password};
use crate::config::{Config, DEFAULT_CONFIG, DEFAULT_CONFIG_PATH};
use crate::db::{Database, pending_migrations};
use crate::{accounts, security_events, server, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "beffroi",
    version,
    about = "Security-hardened, self-hosted intranet for public bodies"
)]
pub struct Cli {
    /// Configuration file.
    #[arg(long, short, global = true, env = "BEFFROI_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (HTTPS, and the optional HTTP redirect listener).
    Serve,
    /// Print a fully commented configuration with every default.
    DefaultConfig,
    /// Validate the configuration, file permissions, TLS files and database, then exit.
    CheckConfig,
    /// Apply pending database migrations, after taking a snapshot of existing data.
    Migrate {
        /// Migrate without the pre-migration snapshot (only after taking your own backup).
        #[arg(long)]
        no_snapshot: bool,
    },
    /// Undo an upgrade: put the newest pre-migration snapshot (or the one given) back in place of
    /// the database, setting the current one aside. Stop the service first.
    Rollback {
        /// A snapshot file instead of the newest (`…pre-migration-v<N>-<time>.db` or `.dump`).
        #[arg(long)]
        snapshot: Option<std::path::PathBuf>,
        /// Really do it (without it, only say what would be done).
        #[arg(long)]
        yes: bool,
    },
    /// Create or reset the local break-glass administrator and print a one-time password.
    RecoverAdmin {
        /// Login of the local administrator.
        #[arg(long, default_value = "admin")]
        username: String,
    },
    /// The tamper-evident audit log: verify it, sign a checkpoint of it, or export it.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Encrypted backups: create, verify, restore, prune (see deploy/BACKUPS.md).
    Backup {
        #[command(subcommand)]
        command: crate::backup::cli::BackupCommand,
    },
    /// E-mail through the `[smtp]` relay (see deploy/MAIL.md).
    Mail {
        #[command(subcommand)]
        command: MailCommand,
    },
    /// Measure performance on fresh, throw-away data and print the figures (the configuration
    /// file is not read).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Start a self-contained demonstration instance with its own data directory.
    Demo {
        /// Directory for the demo's configuration and data (created if missing).
        #[arg(long, default_value = "beffroi-demo")]
        dir: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
    },
    /// Write the manual pages (beffroi.1 and one per subcommand) into a directory; used when
    /// packaging.
    #[command(hide = true)]
    Man {
        /// Directory for the pages (created if missing).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

/// Prints a line to stdout, ignoring a closed pipe (`beffroi check-config | head -1`) instead
/// of panicking as `println!` would.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Send one test message through the configured relay, with the settings the server uses
    /// (TLS, authority, credentials), and say whether the relay accepted it. Exits non-zero
    /// when it did not. Nothing is written to the database.
    Test {
        /// The address to send the test message to.
        #[arg(long)]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute every entry's hash, the tree and every checkpoint; name the first bad entry.
    /// Exits non-zero on any inconsistency.
    Verify,
    /// Sign and store a checkpoint of the log as it is now.
    Checkpoint,
    /// Empty the personal fields (who, from where, details) of entries older than
    /// `audit.retention_days`; their hashes stay, so the log still verifies.
    Purge {
        /// Show how many entries would be purged, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Export the entries matching the filters (all by default), oldest first: JSONL with
    /// proofs that `audit/verify.py` checks, or CSV for a spreadsheet. The export is recorded in
    /// the log (action `audit.export`).
    Export(ExportArgs),
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// `jsonl` (verifiable: proofs, checkpoints, signed seal) or `csv` (for reading).
    #[arg(long, value_enum)]
    pub format: ExportFormatArg,
    /// Write to this new file (mode 0600) instead of standard output; an existing file is not
    /// overwritten.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Account number, or part of the display name (case-insensitive).
    #[arg(long)]
    pub actor: Option<String>,
    /// Action, exactly (e.g. auth.sign_in).
    #[arg(long)]
    pub action: Option<String>,
    /// Part of the target (case-sensitive).
    #[arg(long)]
    pub target: Option<String>,
    /// Outcome: success, failure or denied.
    #[arg(long)]
    pub outcome: Option<String>,
    /// Entries at or after this time (RFC 3339, e.g. 2026-11-01T00:00:00Z).
    #[arg(long, value_parser = parse_rfc3339_us)]
    pub from: Option<i64>,
    /// Entries before this time (RFC 3339), excluded.
    #[arg(long, value_parser = parse_rfc3339_us)]
    pub to: Option<i64>,
    /// Client address, exactly (192.0.2.10) or by prefix ending in '*' (192.0.2.*).
    #[arg(long, value_parser = crate::audit::query::IpFilter::parse)]
    pub ip: Option<crate::audit::query::IpFilter>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExportFormatArg {
    Jsonl,
    Csv,
}

/// An RFC 3339 time as microseconds since the epoch.
fn parse_rfc3339_us(text: &str) -> Result<i64, String> {
    crate::scim::parse_time(text)
        .and_then(|ns| i64::try_from(ns.div_euclid(1000)).ok())
        .ok_or_else(|| format!("{text:?} is not an RFC 3339 time such as 2026-11-01T00:00:00Z"))
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Append throughput (one per transaction, group commit, batches) and `audit verify` time.
    Audit {
        /// Entries in the log when it is verified.
        #[arg(long, default_value_t = 1_000_000)]
        entries: u64,
        /// Concurrent callers of the group-commit appender.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// An empty PostgreSQL database to use instead of SQLite in a temporary directory.
        #[arg(long)]
        database_url: Option<String>,
        /// Also write the figures into this Markdown file (e.g. BENCHMARKS.md).
        #[arg(long)]
        write: Option<PathBuf>,
    },
    /// Backup and restore of a SQLite database against `age -r` and a plain copy.
    Backup(crate::backup::bench::BenchBackupArgs),
    /// The signed-in news wall under load, on a seeded organisation (SQLite).
    Wall {
        #[arg(long, default_value_t = 100_000)]
        agents: u64,
        #[arg(long, default_value_t = 50_000)]
        items: u64,
        /// Agents requesting their wall at the same time.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Measured requests in all (in-process client).
        #[arg(long, default_value_t = 12_800)]
        requests: u64,
        /// Who sends the requests: `internal` (tasks in this process, sharing its cores with the
        /// server) or `wrk` (Debian's wrk, a separate process, for `--seconds`).
        #[arg(long, value_enum, default_value_t = crate::news::wallbench::Client::Internal)]
        client: crate::news::wallbench::Client,
        /// How long `wrk` runs.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Also write the figures into this Markdown file (e.g. BENCHMARKS.md).
        #[arg(long)]
        write: Option<PathBuf>,
        /// Keep the seeded instance in this directory and reuse it on the next run with the
        /// same sizes (seeding takes most of a run); new sessions are issued each time.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The server's database pool size (`storage.max_connections`); unset, the server's
        /// default for SQLite (two per core, at least 4).
        #[arg(long)]
        connections: Option<u32>,
    },
}

/// The server's checkpoint signing key, in the data directory.
pub fn checkpoint_key_path(config: &Config) -> std::path::PathBuf {
    config.storage.data_dir.join("audit-checkpoint-key.pk8")
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    if let Command::DefaultConfig = cli.command {
        use std::io::Write as _;
        let _ = std::io::stdout().write_all(DEFAULT_CONFIG.as_bytes());
        return ExitCode::SUCCESS;
    }
    if let Command::Man { dir } = &cli.command {
        return match crate::manpage::write_pages(dir) {
            Ok(pages) => {
                for page in pages {
                    say!("{}", page.display());
                }
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("error: {message}");
                ExitCode::FAILURE
            }
        };
    }
    // Before any TLS use, including the database driver's.
    crate::tls::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn load_config(path: &Path) -> Result<Config, String> {
    Config::load(path, std::env::vars()).map_err(|e| e.to_string())
}

async fn dispatch(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::DefaultConfig | Command::Man { .. } => Ok(()),
        Command::Serve => {
            let config = load_config(&cli.config)?;
            telemetry::init(&config.log.level, config.log.format);
            server::serve(&cli.config, config)
                .await
                .map_err(|e| e.to_string())
        }
        Command::CheckConfig => check_config(&cli.config).await,
        Command::Migrate { no_snapshot } => {
            let (_, _, report) = open_for_admin_task(&cli.config, no_snapshot).await?;
            if let Some(snapshot) = report.snapshot {
                say!("Snapshot of the previous database: {}", snapshot.display());
            }
            if report.applied.is_empty() {
                say!("Database schema is up to date.");
            } else {
                say!("Applied migrations: {:?}", report.applied);
            }
            Ok(())
        }
        Command::Rollback { snapshot, yes } => rollback(&cli.config, snapshot, yes).await,
        Command::RecoverAdmin { username } => {
            let (config, db, _) = open_for_admin_task(&cli.config, false).await?;
            let password = recover_admin(&config, &db, &username).await?;
            say!("Local administrator: {username}");
            say!("One-time password:   {}", password.expose_secret());
            let ttl = crate::auth::password::ONE_TIME_PASSWORD_TTL_SECS;
            say!(
                "It expires in {} hours, at {} UTC, and must be changed at first sign-in. \
                 Every previous session of this account has ended.",
                ttl / 3600,
                crate::timefmt::utc_minutes(crate::db::now() + ttl)
            );
            if !config.local_sign_in.enabled {
                say!("Warning: local_sign_in.enabled is false; enable it to use this account.");
            }
            Ok(())
        }
        Command::Audit { command } => {
            let (config, db, _) = open_for_admin_task(&cli.config, false).await?;
            let appender = crate::audit::appender::GroupAppender::spawn(db.clone());
            // With PostgreSQL nothing else may have created the data directory yet.
            crate::db::create_private_dir(&config.storage.data_dir).map_err(|e| e.to_string())?;
            let signer = crate::audit::checkpoint::CheckpointSigner::load_or_create(
                &checkpoint_key_path(&config),
            )
            .map_err(|e| e.to_string())?;
            match command {
                AuditCommand::Verify => {
                    let console = security_events::Actor::console();
                    let verdict =
                        crate::audit::verify::verify(&db, Some(&signer.public_key())).await;
                    // The verification itself is audited, whatever it found.
                    let audited = match &verdict {
                        Ok(r) => {
                            security_events::audit_verified(
                                &appender,
                                &console,
                                r.entries,
                                r.checkpoints,
                                None,
                            )
                            .await
                        }
                        Err(crate::audit::verify::VerifyError::Tampered(t)) => {
                            security_events::audit_verified(
                                &appender,
                                &console,
                                0,
                                0,
                                Some(&t.to_string()),
                            )
                            .await
                        }
                        Err(_) => Ok(()),
                    };
                    let report = verdict.map_err(|e| e.to_string())?;
                    audited.map_err(|e| e.to_string())?;
                    say!(
                        "ok   audit log verified: {} entries ({} purged), {} checkpoints, root {}",
                        report.entries,
                        report.purged,
                        report.checkpoints,
                        hex::encode(report.root)
                    );
                    Ok(())
                }
                AuditCommand::Checkpoint => {
                    match crate::audit::verify::write_checkpoint(&db, &signer)
                        .await
                        .map_err(|e| e.to_string())?
                    {
                        Some(cp) => {
                            security_events::checkpoint_written(
                                &appender,
                                &security_events::Actor::console(),
                                cp.tree_size,
                                &cp.root,
                                "command",
                            )
                            .await
                            .map_err(|e| e.to_string())?;
                            say!(
                                "checkpoint signed: tree size {}, root {}, key {}",
                                cp.tree_size,
                                hex::encode(cp.root),
                                hex::encode(signer.public_key())
                            )
                        }
                        None => say!("nothing to sign: the log is empty or already covered"),
                    }
                    Ok(())
                }
                AuditCommand::Export(args) => audit_export(&db, &signer, args).await,
                AuditCommand::Purge { dry_run } => {
                    let days = config.audit.retention_days;
                    // Blanking payloads is an UPDATE, which only the owner role may do.
                    let owner = Database::connect_owner(&config)
                        .await
                        .map_err(|e| e.to_string())?;
                    let purged = purge_audit_log(&owner, days, dry_run)
                        .await
                        .map_err(|e| e.to_string())?;
                    owner.close().await;
                    if dry_run {
                        say!("{purged} entries are older than {days} days (nothing changed)");
                    } else {
                        say!(
                            "purged the personal fields of {purged} entries older than {days} days"
                        );
                    }
                    Ok(())
                }
            }
        }
        Command::Bench {
            command:
                BenchCommand::Audit {
                    entries,
                    concurrency,
                    database_url,
                    write,
                },
        } => {
            let bench = crate::bench::AuditBench {
                entries,
                concurrency,
                database_url,
                write,
            };
            let report = crate::bench::run_audit(&bench).await?;
            say!("{report}");
            Ok(())
        }
        Command::Backup { command } => crate::backup::cli::run(&cli.config, command).await,
        Command::Mail {
            command: MailCommand::Test { to },
        } => mail_test(&cli.config, &to).await,
        Command::Bench {
            command: BenchCommand::Backup(args),
        } => crate::backup::bench::run(args).await,
        Command::Bench {
            command:
                BenchCommand::Wall {
                    agents,
                    items,
                    concurrency,
                    requests,
                    client,
                    seconds,
                    write,
                    data_dir,
                    connections,
                },
        } => {
            let bench = crate::news::wallbench::WallBench {
                agents,
                items,
                concurrency,
                requests,
                client,
                seconds,
                write,
                data_dir,
                connections,
            };
            let report = crate::news::wallbench::run(&bench).await?;
            say!("{report}");
            Ok(())
        }
        Command::Demo { dir, listen } => crate::demo::run(&dir, listen).await,
    }
}

/// `beffroi audit export`: to a new private file, or to standard output with the summary on
/// standard error so that the export can be piped.
async fn audit_export(
    db: &Database,
    signer: &crate::audit::checkpoint::CheckpointSigner,
    args: ExportArgs,
) -> Result<(), String> {
    use crate::audit::export::{ExportFormat, export};
    let requester = security_events::Actor::console();
    let filter = crate::audit::query::Filter {
        actor: args.actor,
        action: args.action,
        target: args.target,
        outcome: args.outcome,
        from_us: args.from,
        to_us: args.to,
        ip: args.ip,
    };
    let format = match args.format {
        ExportFormatArg::Jsonl => ExportFormat::Jsonl,
        ExportFormatArg::Csv => ExportFormat::Csv,
    };
    let summary = match &args.out {
        Some(path) => {
            use std::os::unix::fs::OpenOptionsExt;
            // The export holds personal data (names, addresses): owner only, like the database.
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let result = export(
                db,
                signer,
                &filter,
                format,
                &requester,
                tokio::fs::File::from_std(file),
            )
            .await;
            if result.is_err() {
                // A partial export is worse than none: it would only verify as truncated.
                let _ = std::fs::remove_file(path);
            }
            result.map_err(|e| e.to_string())?
        }
        None => export(db, signer, &filter, format, &requester, tokio::io::stdout())
            .await
            .map_err(|e| e.to_string())?,
    };
    let mut line = format!(
        "exported {} entries ({} purged) of the log up to entry {}",
        summary.entries, summary.purged, summary.log_size
    );
    if let Some(cp) = &summary.checkpoint {
        line.push_str(&format!(
            "; proofs against the checkpoint at tree size {} (root {}), key {}",
            cp.tree_size,
            hex::encode(cp.root),
            hex::encode(signer.public_key())
        ));
    }
    line.push_str(&format!("; recorded as entry {}", summary.record_seq));
    match &args.out {
        Some(path) => say!("{line}; written to {}", path.display()),
        None => eprintln!("{line}"),
    }
    Ok(())
}

/// Purges entries older than `retention_days` and records the purge in the same transaction;
/// returns how many entries were (or, with `dry_run`, would be) purged.
pub async fn purge_audit_log(
    db: &crate::db::Database,
    retention_days: u32,
    dry_run: bool,
) -> Result<u64, crate::db::DbError> {
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let before_us = now_us.saturating_sub(i64::from(retention_days) * 86_400 * 1_000_000);
    let mut tx = db.begin().await?;
    let purged = crate::audit::store::purge_before(&mut tx, before_us).await?;
    if dry_run {
        // Rolled back: only the count is kept.
        drop(tx);
        return Ok(purged);
    }
    security_events::audit_purged(
        &mut tx,
        &security_events::Actor::console(),
        before_us,
        purged,
        retention_days,
    )
    .await?;
    tx.commit().await?;
    Ok(purged)
}

/// `beffroi rollback`: says what it would do, and does it only with `--yes`. The database is
/// opened without migrating: migrating first would defeat the point.
async fn rollback(
    config_path: &Path,
    snapshot: Option<std::path::PathBuf>,
    yes: bool,
) -> Result<(), String> {
    let config = load_config(config_path)?;
    server::check_file_modes(config_path, &config).map_err(|e| e.to_string())?;
    telemetry::init("warn", config.log.format);
    let chosen = match &snapshot {
        Some(path) => path.clone(),
        None => crate::db::rollback::snapshots(&config)
            .map_err(|e| e.to_string())?
            .into_iter()
            .next()
            .map(|s| s.path)
            .ok_or("no pre-migration snapshot found: nothing to roll back to")?,
    };
    if !yes {
        say!(
            "Would put {} back in place of the database, setting the current one aside; what \
             was written since that snapshot stays only in the set-aside copy. Stop the service, \
             then run again with --yes.",
            chosen.display()
        );
        return Err("not rolled back (add --yes)".into());
    }
    let report = crate::db::rollback::rollback(&config, Some(&chosen))
        .await
        .map_err(|e| e.to_string())?;
    say!(
        "Rolled back from schema version {} to {} ({}). The replaced database is in {}. \
         Audit log verified: {} entries. Start the release that matches schema version {}.",
        report.replaced_version,
        report.snapshot.schema_version,
        report.snapshot.path.display(),
        report.set_aside.display(),
        report.audit_entries,
        report.snapshot.schema_version
    );
    Ok(())
}

/// What every console task does first: load and check the configuration and its files, quiet
/// logs, connect, and migrate (with the pre-migration snapshot unless told otherwise).
pub(crate) async fn open_for_admin_task(
    config_path: &Path,
    skip_snapshot: bool,
) -> Result<(Config, Database, crate::db::MigrationReport), String> {
    let config = load_config(config_path)?;
    server::check_file_modes(config_path, &config).map_err(|e| e.to_string())?;
    telemetry::init("warn", config.log.format);
    let policy = server::snapshot_policy(&config, skip_snapshot).map_err(|e| e.to_string())?;
    let (db, report) = Database::open(&config, &policy)
        .await
        .map_err(|e| e.to_string())?;
    Ok((config, db, report))
}

/// Creates or resets the break-glass administrator; returns its one-time password, which
/// expires after `auth::password::ONE_TIME_PASSWORD_TTL_SECS`.
pub async fn recover_admin(
    config: &Config,
    db: &Database,
    username: &str,
) -> Result<secrecy::SecretString, String> {
    let username = username.trim();
    if username.is_empty()
        || username.len() > 64
        || !username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Err("the username must be 1 to 64 letters, digits, '.', '_' or '-'".into());
    }
    let password =
        generate_one_time_password().map_err(|e| format!("no randomness available: {e}"))?;
    let hasher =
        PasswordHasher::new(config.security.max_concurrent_hashes).map_err(|e| e.to_string())?;
    let hash = hasher.hash(&password).await.map_err(|e| e.to_string())?;
    let record = async {
        let mut tx = db.begin().await?;
        let (id, ended) =
            accounts::upsert_break_glass_admin(&mut tx, username, "Administrateur local", &hash)
                .await?;
        security_events::break_glass_reset(
            &mut tx,
            &security_events::Actor::console(),
            id,
            username,
            ended,
        )
        .await?;
        tx.commit().await
    };
    record
        .await
        .map_err(|e: crate::db::DbError| e.to_string())?;
    Ok(password)
}

async fn check_config(path: &Path) -> Result<(), String> {
    let config = load_config(path)?;
    say!("ok   {} parses and every value is valid", path.display());
    server::check_file_modes(path, &config).map_err(|e| e.to_string())?;
    say!("ok   configuration and secret files are readable by their owner only");
    let cert = config.tls_cert_path();
    if cert.exists() {
        let store = crate::tls::CertStore::load(cert.clone(), config.tls_key_path())
            .map_err(|e| e.to_string())?;
        say!(
            "ok   TLS certificate {} loads (SHA-256 {})",
            cert.display(),
            store.fingerprint()
        );
    } else if config.tls_is_self_managed() {
        say!(
            "note no certificate yet: a self-signed one will be generated at {}",
            cert.display()
        );
    } else {
        return Err(format!("tls.cert_file: {} does not exist", cert.display()));
    }
    if let Some(token) = config.metrics_token().map_err(|e| e.to_string())? {
        let _ = token;
        say!("ok   metrics bearer token file is readable");
    }
    // The same check `serve` makes when it reads the token (ASVS 2.10.2): too short is refused.
    if config.scim_token().map_err(|e| e.to_string())?.is_some() {
        say!("ok   scim.token_file is readable and at least 32 characters long");
    }
    if let Some(oidc) = &config.oidc {
        let provider =
            crate::auth::oidc::OidcProvider::new(oidc.clone(), config.server.public_url.as_deref())
                .map_err(|e| e.to_string())?;
        let metadata = provider
            .discover()
            .await
            .map_err(|e| format!("oidc.issuer: {e}"))?;
        say!(
            "ok   identity provider {} answers: PKCE {}, algorithms {:?}",
            metadata.issuer,
            if metadata.code_challenge_methods_supported.is_empty() {
                "not announced (S256 is sent anyway)"
            } else {
                "S256"
            },
            metadata.id_token_signing_alg_values_supported
        );
        if metadata.end_session_endpoint.is_none() {
            say!(
                "note the provider has no end_session_endpoint: signing out will not end its session"
            );
        }
        if !metadata.backchannel_logout_supported {
            say!("note the provider does not announce back-channel logout");
        }
        say!(
            "note register this redirect URI at the provider: {}",
            provider.redirect_url
        );
    }
    if let Some(syslog) = &config.audit.syslog {
        check_syslog(syslog).await?;
    }
    if let Some(smtp) = &config.smtp {
        check_smtp(&config, smtp).await?;
    }
    let blobs = crate::blobs::BlobStore::from_config(&config).map_err(|e| e.to_string())?;
    if blobs.s3().is_some() {
        blobs.ping().await.map_err(|e| format!("storage.s3: {e}"))?;
        say!(
            "ok   file store {} answers and accepts the credentials",
            blobs.describe()
        );
    }
    if let crate::config::DatabaseTarget::Sqlite(path) = config.database_target() {
        // check-config changes nothing: a missing database is reported, not created.
        if !path.exists() {
            say!(
                "note database {} does not exist yet; `serve` or `migrate` will create it",
                path.display()
            );
            return Ok(());
        }
    }
    let db = Database::connect(&config)
        .await
        .map_err(|e| format!("database: {e}"))?;
    if !db.ping().await {
        return Err("database: does not answer".into());
    }
    let pending = pending_migrations(&db).await.map_err(|e| e.to_string())?;
    say!(
        "ok   database {:?} answers; pending migrations: {pending:?}",
        config.database_target()
    );
    Ok(())
}

/// `[smtp]`: the password and CA files load, then the relay is tried as a delivery would (TLS,
/// authentication), sending nothing. A relay that cannot be reached is only a note (messages
/// wait in the outbox); one whose certificate does not verify, or that refuses the credentials,
/// is an error: nothing would ever be delivered.
async fn check_smtp(config: &Config, smtp: &crate::config::SmtpConfig) -> Result<(), String> {
    let mailer = crate::mail::Mailer::from_config(smtp, config.server.public_url.as_deref())
        .map_err(|e| e.to_string())?;
    if let Some(ca) = &smtp.ca_file {
        let certs = crate::mail::read_ca_file(ca).map_err(|e| e.to_string())?;
        say!(
            "ok   smtp.ca_file {} holds {} certificate(s)",
            ca.display(),
            certs.len()
        );
    }
    if smtp.password_file.is_some() {
        say!("ok   smtp.password_file is readable");
    }
    match mailer.probe().await {
        Ok(()) => say!(
            "ok   mail relay {} answers{}",
            mailer.describe(),
            if smtp.username.is_some() {
                " and accepts the credentials"
            } else {
                ""
            }
        ),
        Err(e) if e.kind == "tls" || e.kind == "authentication" => {
            return Err(format!("smtp: {e}"));
        }
        Err(e) => say!("note mail relay: {e}; messages will wait in the outbox until it answers"),
    }
    Ok(())
}

/// `beffroi mail test --to ADDRESS`: one message through the relay, and a verdict.
async fn mail_test(config_path: &Path, to: &str) -> Result<(), String> {
    let config = load_config(config_path)?;
    server::check_file_modes(config_path, &config).map_err(|e| e.to_string())?;
    telemetry::init("warn", config.log.format);
    let smtp = config
        .smtp
        .as_ref()
        .ok_or("smtp: the configuration has no [smtp] section; see deploy/MAIL.md")?;
    let mailer = crate::mail::Mailer::from_config(smtp, config.server.public_url.as_deref())
        .map_err(|e| e.to_string())?;
    let to = to.trim();
    if to.parse::<lettre::Address>().is_err() {
        return Err(format!(
            "--to: {to:?} is not an e-mail address (user@domain)"
        ));
    }
    let (fr, en) = (crate::i18n::Lang::Fr, crate::i18n::Lang::En);
    let subject = fr.t("mail-test-subject");
    let body = format!(
        "{}\n\n-- \n\n{}\n\n{}\n",
        fr.t("mail-test-body"),
        en.t("mail-test-body"),
        mailer.public_url()
    );
    let message_id = crate::mail::message::new_message_id(mailer.from())
        .map_err(|e| format!("no randomness available: {e}"))?;
    match mailer
        .send(to, &subject, &body, &message_id, "fr, en")
        .await
    {
        Ok(()) => {
            say!(
                "ok   the relay {} accepted the test message to {to} (Message-ID {message_id}); \
                 check that it arrived",
                mailer.describe()
            );
            Ok(())
        }
        Err(e) => Err(format!(
            "the test message was not accepted ({}): {e}",
            e.kind
        )),
    }
}

/// `[audit.syslog]`: the CA file loads, and the collector is tried (connection and TLS
/// handshake, nothing sent). A collector that does not answer is only a note: entries wait in
/// the log and are forwarded once it does. A certificate it presents that does not verify is
/// an error, since nothing would ever be sent.
async fn check_syslog(syslog: &crate::audit::forward::SyslogConfig) -> Result<(), String> {
    use crate::audit::forward::transport::LinkError;
    let forwarder =
        crate::audit::forward::Forwarder::from_config(syslog).map_err(|e| e.to_string())?;
    if let Some(ca) = &syslog.ca_file {
        let certs = crate::audit::forward::settings::read_ca_file(ca).map_err(|e| e.to_string())?;
        say!(
            "ok   audit.syslog.ca_file {} holds {} certificate(s)",
            ca.display(),
            certs.len()
        );
    }
    match forwarder.probe().await {
        Ok(()) => say!(
            "ok   audit log forwarding: {} answers",
            forwarder.destination()
        ),
        Err(LinkError::Handshake(_, e)) if e.kind() == std::io::ErrorKind::InvalidData => {
            return Err(format!(
                "audit.syslog: {} presents a certificate that does not verify against \
                 audit.syslog.ca_file (or the system's authorities) for audit.syslog.server_name: {e}",
                forwarder.destination()
            ));
        }
        Err(e) => {
            say!("note audit log forwarding: {e}; entries will wait in the log until it answers")
        }
    }
    Ok(())
}
