//! The command line: `serve`, `check-config`, `default-config`, `migrate`, `recover-admin`,
//! `audit`, `backup`, `bench` and `demo`. Each subcommand is a thin function over the library; errors are printed as one clear
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
    /// Create or reset the local break-glass administrator and print a one-time password.
    RecoverAdmin {
        /// Login of the local administrator.
        #[arg(long, default_value = "admin")]
        username: String,
    },
    /// The tamper-evident audit log: verify it, or sign a checkpoint of it.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Encrypted backups: create, verify, restore, prune (see deploy/BACKUPS.md).
    Backup {
        #[command(subcommand)]
        command: crate::backup::cli::BackupCommand,
    },
    /// Benchmarks on a throwaway instance.
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
pub enum AuditCommand {
    /// Recompute every entry's hash, the tree and every checkpoint; name the first bad entry.
    /// Exits non-zero on any inconsistency.
    Verify,
    /// Sign and store a checkpoint of the log as it is now.
    Checkpoint,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Backup and restore of a SQLite database against `age -r` and a plain copy.
    Backup(crate::backup::bench::BenchBackupArgs),
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
        Command::DefaultConfig => Ok(()),
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
        Command::RecoverAdmin { username } => {
            let (config, db, _) = open_for_admin_task(&cli.config, false).await?;
            let password = recover_admin(&config, &db, &username).await?;
            say!("Local administrator: {username}");
            say!("One-time password:   {}", password.expose_secret());
            say!(
                "It must be changed at first sign-in. Every previous session of this account has ended."
            );
            if !config.local_sign_in.enabled {
                say!("Warning: local_sign_in.enabled is false; enable it to use this account.");
            }
            Ok(())
        }
        Command::Audit { command } => {
            let (config, db, _) = open_for_admin_task(&cli.config, false).await?;
            let signer = crate::audit::checkpoint::CheckpointSigner::load_or_create(
                &checkpoint_key_path(&config),
            )
            .map_err(|e| e.to_string())?;
            match command {
                AuditCommand::Verify => {
                    let report = crate::audit::verify::verify(&db, Some(&signer.public_key()))
                        .await
                        .map_err(|e| e.to_string())?;
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
                        Some(cp) => say!(
                            "checkpoint signed: tree size {}, root {}, key {}",
                            cp.tree_size,
                            hex::encode(cp.root),
                            hex::encode(signer.public_key())
                        ),
                        None => say!("nothing to sign: the log is empty or already covered"),
                    }
                    Ok(())
                }
            }
        }
        Command::Backup { command } => crate::backup::cli::run(&cli.config, command).await,
        Command::Bench {
            command: BenchCommand::Backup(args),
        } => crate::backup::bench::run(args).await,
        Command::Demo { dir, listen } => crate::demo::run(&dir, listen).await,
    }
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
    let db = Database::connect(&config)
        .await
        .map_err(|e| e.to_string())?;
    let policy = server::snapshot_policy(&config, skip_snapshot).map_err(|e| e.to_string())?;
    let report = db.migrate(&policy).await.map_err(|e| e.to_string())?;
    Ok((config, db, report))
}

/// Creates or resets the break-glass administrator; returns its one-time password.
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
    let id = accounts::upsert_break_glass_admin(db, username, "Administrateur local", &hash)
        .await
        .map_err(|e| e.to_string())?;
    security_events::break_glass_reset(id, username);
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
