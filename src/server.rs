//! Serving: the HTTPS listener (rustls, HTTP/1.1 and HTTP/2), the optional plain-HTTP listener
//! that only redirects to HTTPS (both bounded by `http::listener`), background housekeeping (and
//! audit forwarding when `[audit.syslog]` is set; under `serve`, the mail outbox worker when
//! `[smtp]` is), and graceful shutdown on SIGTERM or Ctrl-C (open connections get
//! `server.shutdown_grace_secs` to finish).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, Uri, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Redirect, Response};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::audit::checkpoint::CheckpointSigner;
use crate::cli::checkpoint_key_path;
use crate::config::{Config, ConfigError, check_private_file};
use crate::db::{Database, DbError, SnapshotPolicy};
use crate::http::listener::{Limits, Transport, accept_loop};
use crate::http::middleware::security_headers;
use crate::tls::{self, CertStore, TlsError};
use crate::{AppState, app};
use sha2::Digest;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("audit checkpoint key: {0}")]
    AuditKey(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A server running in the background.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub redirect_addr: Option<SocketAddr>,
    pub certificates: Arc<CertStore>,
    pub state: AppState,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    /// Stops accepting, lets open connections finish (up to the grace period), and returns.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(main) = self.tasks.first_mut() {
            let _ = main.await;
        }
        for t in &self.tasks {
            t.abort();
        }
    }

    /// Waits until the server stops on its own (never, unless shut down).
    pub async fn wait(mut self) {
        if let Some(main) = self.tasks.first_mut() {
            let _ = main.await;
        }
    }
}

/// Snapshot policy for the configured database.
pub fn snapshot_policy(config: &Config, skip: bool) -> Result<SnapshotPolicy, ConfigError> {
    Ok(SnapshotPolicy {
        dir: config.storage.data_dir.join("snapshots"),
        // Snapshots are taken by whoever migrates: the owner role when there is one.
        pg_password: match config.storage.migration_database_url {
            Some(_) => config.migration_password()?,
            None => config.database_password()?,
        },
        skip,
    })
}

/// Refuses to run with secret-bearing files others can read.
pub fn check_file_modes(config_path: &std::path::Path, config: &Config) -> Result<(), ConfigError> {
    check_private_file(config_path)?;
    for (key, path) in config.secret_files() {
        if path.exists() || !config.tls_is_self_managed() {
            // The key too: "cannot read /etc/beffroi/x" alone does not say which setting.
            check_private_file(&path).map_err(|e| ConfigError::Invalid {
                key: key.into(),
                reason: e.to_string(),
            })?;
        }
    }
    Ok(())
}

/// Starts serving `config` with `db` (already migrated) in the background.
pub async fn start(config: Config, db: Database) -> Result<RunningServer, ServeError> {
    tls::install_crypto_provider();
    let cert_status = tls::ensure_certificate(&config)?;
    if cert_status.generated {
        tracing::warn!(path = %cert_status.cert_path.display(), fingerprint = %cert_status.fingerprint,
            "generated a self-signed TLS certificate");
    }
    let certificates = CertStore::load(config.tls_cert_path(), config.tls_key_path())?;
    let tls_config = tls::server_config(&certificates, config.tls.min_version)?;
    let listen = config.server.listen;
    let redirect_listen = config.server.http_redirect_listen;
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    let limits = Limits::from_config(&config.server);
    let reload_every = Duration::from_secs(config.tls.reload_check_secs);
    let checkpoint_signer = CheckpointSigner::load_or_create(&checkpoint_key_path(&config))
        .map_err(|e| ServeError::AuditKey(e.to_string()))?;
    // Resolved before serving, so that an unreadable CA file stops the start naming its key.
    let forwarder = config
        .audit
        .syslog
        .as_ref()
        .map(crate::audit::forward::Forwarder::from_config)
        .transpose()?;
    let state = AppState::new(config, db)?;
    let router = app(state.clone());

    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: listen,
        source,
    })?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks = vec![tokio::spawn(accept_loop(
        listener,
        Transport::Tls(TlsAcceptor::from(tls_config)),
        router,
        limits.clone(),
        state.metrics.clone(),
        shutdown_rx.clone(),
        grace,
    ))];
    tasks.push(certificates.spawn_reloader(reload_every));
    tasks.push(tokio::spawn(housekeeping(state.clone())));
    tasks.push(tokio::spawn(periodic_checkpoints(
        state.clone(),
        checkpoint_signer,
    )));
    if let Some(forwarder) = forwarder {
        tracing::info!(
            destination = forwarder.destination(),
            "forwarding the audit log"
        );
        tasks.push(tokio::spawn(
            forwarder.run(state.db.clone(), state.metrics.clone()),
        ));
    }
    // Compute the decoy hash now, so the first sign-in with an unknown login does not take
    // visibly longer than the others.
    let warm = state.clone();
    tokio::spawn(async move {
        let _ = warm
            .hasher
            .verify(&secrecy::SecretString::from(String::new()), None)
            .await;
    });

    let mut redirect_addr = None;
    if let Some(redirect_listen) = redirect_listen {
        let listener =
            TcpListener::bind(redirect_listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: redirect_listen,
                    source,
                })?;
        redirect_addr = listener.local_addr().ok();
        let router = redirect_router(state.public_origin.clone(), addr.port());
        // The same limits as the HTTPS listener, counted apart: a flood on port 80 must not
        // take the slots of agents on 443.
        tasks.push(tokio::spawn(accept_loop(
            listener,
            Transport::Plain,
            router,
            limits,
            state.metrics.clone(),
            shutdown_rx.clone(),
            grace,
        )));
    }
    tracing::info!(%addr, ?redirect_addr, "listening");
    Ok(RunningServer {
        addr,
        redirect_addr,
        certificates,
        state,
        shutdown,
        tasks,
    })
}

/// Deletes dead sessions and sign-in counts whose window has passed, and forgets idle
/// rate-limit entries, once a minute. Every node runs it; the deletes are idempotent.
async fn housekeeping(state: AppState) {
    let mut ticker = tokio::time::interval(Duration::from_secs(60));
    loop {
        ticker.tick().await;
        state.limiters.shrink();
        if let Err(e) = crate::auth::sign_in_limit::purge_expired(&state.db, crate::db::now()).await
        {
            tracing::warn!(error = %e, "purge of sign-in counts failed");
        }
        if let Err(e) = crate::auth::oidc::store::purge_expired(&state.db).await {
            tracing::warn!(error = %e, "purge of pending sign-ins failed");
        }
        match crate::auth::session::purge_expired(&state.db, state.timeouts).await {
            Ok(n) if n > 0 => tracing::debug!(sessions = n, "expired sessions purged"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "session purge failed"),
        }
    }
}

/// Signs a checkpoint of the audit log when `audit.checkpoint_every_entries` entries were
/// appended since the last one, or `audit.checkpoint_every_minutes` passed with new entries.
/// Each node checks; the database keeps one checkpoint per tree size, so two nodes signing at
/// once cost a wasted signature, nothing more.
async fn periodic_checkpoints(state: AppState, signer: CheckpointSigner) {
    let audit = &state.config.audit;
    let every_us = i64::try_from(audit.checkpoint_every_minutes)
        .unwrap_or(i64::MAX / 60_000_000)
        .saturating_mul(60_000_000);
    let mut ticker = tokio::time::interval(Duration::from_secs(CHECKPOINT_CHECK_SECS));
    loop {
        ticker.tick().await;
        let now_us = crate::audit::store::now_us();
        match crate::audit::verify::checkpoint_due(
            &state.db,
            audit.checkpoint_every_entries,
            every_us,
            now_us,
        )
        .await
        {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "audit checkpoint check failed");
                continue;
            }
        }
        // Not an audit entry of its own: the checkpoint table is its record, and an entry
        // would leave the log with a new uncovered entry after every checkpoint.
        match crate::audit::verify::write_checkpoint(&state.db, &signer).await {
            Ok(Some(cp)) => tracing::info!(tree_size = cp.tree_size, "audit checkpoint signed"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "audit checkpoint failed"),
        }
    }
}

/// How often the server looks whether a checkpoint is due (a cheap query).
const CHECKPOINT_CHECK_SECS: u64 = 5;

/// The plain-HTTP listener: every request is answered with a permanent redirect to HTTPS, and
/// nothing else (no page, no cookie) is ever served in clear.
fn redirect_router(public_origin: Option<String>, https_port: u16) -> Router {
    let handler = move |request: Request| {
        let public_origin = public_origin.clone();
        async move { redirect_to_https(&request, public_origin.as_deref(), https_port) }
    };
    Router::new().fallback(handler).layer(from_fn_with_state(
        security_headers::Policy::new(&[]),
        security_headers::add_security_headers,
    ))
}

fn redirect_to_https(request: &Request, public_origin: Option<&str>, https_port: u16) -> Response {
    let path = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let origin = match public_origin {
        Some(origin) => origin.to_owned(),
        None => {
            let host = request
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .and_then(|h| h.parse::<axum::http::uri::Authority>().ok())
                .map(|a| a.host().to_owned());
            let Some(host) = host else {
                return (StatusCode::BAD_REQUEST, "missing Host header\n").into_response();
            };
            if https_port == 443 {
                format!("https://{host}")
            } else {
                format!("https://{host}:{https_port}")
            }
        }
    };
    match format!("{origin}{path}").parse::<Uri>() {
        Ok(uri) => Redirect::permanent(&uri.to_string()).into_response(),
        Err(_) => (StatusCode::BAD_REQUEST, "bad request\n").into_response(),
    }
}

/// `beffroi serve`: check, connect, migrate, serve until told to stop.
pub async fn serve(config_path: &std::path::Path, config: Config) -> Result<(), ServeError> {
    check_file_modes(config_path, &config)?;
    let (db, report) = Database::open(&config, &snapshot_policy(&config, false)?).await?;
    if let Some(snapshot) = &report.snapshot {
        tracing::warn!(path = %snapshot.display(), "snapshot taken before migrating");
    }
    if !report.applied.is_empty() {
        tracing::info!(versions = ?report.applied, "migrations applied");
    }
    // A changed configuration file is a security-relevant change: its hash is recorded at each
    // start and compared with the previous start's.
    let config_bytes = std::fs::read(config_path).unwrap_or_default();
    let config_sha256 = hex::encode(sha2::Sha256::digest(&config_bytes));
    crate::security_events::server_started(
        &db,
        &crate::audit::appender::GroupAppender::spawn(db.clone()),
        &config_sha256,
        match db.backend() {
            crate::db::Backend::Sqlite => "sqlite",
            crate::db::Backend::Postgres => "postgres",
        },
    )
    .await?;
    if crate::security_txt::expired(&config) {
        tracing::warn!(
            "security_txt.expires has passed: /.well-known/security.txt is stale; set a new date"
        );
    }
    let server = start(config, db.clone()).await?;
    tracing::info!(fingerprint = %server.certificates.fingerprint(), "TLS certificate");
    // Only here, not in `start`: tests drive deliveries themselves, one pass at a time.
    let mail_worker = server.state.mail.clone().map(|mailer| {
        tokio::spawn(crate::mail::outbox::run(
            db.clone(),
            mailer,
            server.state.metrics.clone(),
        ))
    });
    let notifier = crate::systemd::Notifier::from_env().map(Arc::new);
    if let Some(notifier) = &notifier {
        notifier.notify(&format!("READY=1\nSTATUS=Serving on {}", server.addr));
        if let Some(every) = crate::systemd::watchdog_interval() {
            let (notifier, db) = (notifier.clone(), db.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    // Alive means able to serve: a server whose database no longer answers
                    // stops pinging, and systemd restarts it once the watchdog expires.
                    if db.ping().await {
                        notifier.notify("WATCHDOG=1");
                    } else {
                        tracing::warn!("database does not answer; withholding the watchdog ping");
                    }
                }
            });
        }
    }
    wait_for_stop_signal().await;
    tracing::info!("stopping");
    if let Some(notifier) = &notifier {
        notifier.notify("STOPPING=1");
    }
    // A message being sent when the worker stops keeps its lease; once the lease ends, the next
    // start (or another node) sends it again.
    if let Some(worker) = mail_worker {
        worker.abort();
    }
    server.shutdown().await;
    Ok(())
}

pub async fn wait_for_stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
