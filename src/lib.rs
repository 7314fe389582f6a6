//! Beffroi: a security-hardened, self-hosted intranet for public bodies.
//!
//! [`app`] builds the router with its middleware stack; [`server`] serves it over TLS;
//! [`cli`] holds the administration subcommands. Each capability keeps its own folder.

#![forbid(unsafe_code)]

pub mod accounts;
pub mod admin;
pub mod audience;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod bench;
pub mod blobs;
pub mod branding;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod directory;
pub mod home;
pub mod http;
pub mod i18n;
pub mod mail;
pub mod manpage;
pub mod markdown;
pub mod news;
pub mod ops;
pub mod organisation;
pub mod routes;
pub mod scim;
pub mod security_events;
pub mod security_txt;
pub mod server;
pub mod spaces;
pub mod systemd;
pub mod telemetry;
pub mod timefmt;
pub mod tls;

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware::{from_fn, from_fn_with_state};
use secrecy::SecretString;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

use crate::auth::backoff::BackoffPolicy;
use crate::auth::password::PasswordHasher;
use crate::auth::session::SessionTimeouts;
use crate::config::Config;
use crate::db::Database;
use crate::http::error::AppError;
use crate::http::metrics::Metrics;
use crate::http::middleware::{
    admin_gate, csrf, error_pages, rate_limit, refusals, security_headers, session,
};

/// Shared state of a running instance.
pub struct AppInner {
    pub config: Config,
    pub db: Database,
    pub hasher: PasswordHasher,
    pub limiters: rate_limit::RateLimiters,
    pub metrics: Metrics,
    pub metrics_token: Option<SecretString>,
    pub timeouts: SessionTimeouts,
    pub backoff: BackoffPolicy,
    /// `server.public_url` reduced to its origin, for the CSRF Origin check.
    pub public_origin: Option<String>,
    /// Single sign-on, when configured.
    pub oidc: Option<Arc<auth::oidc::OidcProvider>>,
    /// SCIM provisioning, when configured (its bearer token is read once, here).
    pub scim: Option<Arc<scim::ScimSettings>>,
    /// The Content-Security-Policy of every response.
    pub csp: security_headers::Policy,
    /// Where uploaded files are kept (local directory or S3), built once at start.
    pub blobs: blobs::BlobStore,
    /// Group commit for audit entries that record no other change.
    pub audit: audit::appender::GroupAppender,
    /// The organisation's name, colours, images and footer links, as every page shows them.
    pub branding: branding::BrandingCache,
    /// The time news publication and expiry are decided against (tests move it).
    pub clock: news::clock::Clock,
    /// The mail relay, when `[smtp]` is set (its password and CA file are read once, here).
    pub mail: Option<Arc<mail::Mailer>>,
}

#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

impl Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl AppState {
    pub fn new(config: Config, db: Database) -> Result<Self, config::ConfigError> {
        let hasher = PasswordHasher::new(config.security.max_concurrent_hashes).map_err(|e| {
            config::ConfigError::Invalid {
                key: "security".into(),
                reason: e.to_string(),
            }
        })?;
        let metrics_token = config.metrics_token()?;
        let timeouts = SessionTimeouts {
            idle_secs: i64::try_from(config.session.idle_timeout_minutes.saturating_mul(60))
                .unwrap_or(i64::MAX),
            absolute_secs: i64::try_from(
                config.session.absolute_timeout_hours.saturating_mul(3600),
            )
            .unwrap_or(i64::MAX),
        };
        let public_origin = config
            .server
            .public_url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
            .map(|u| u.origin().ascii_serialization());
        let oidc = match &config.oidc {
            Some(c) => Some(Arc::new(auth::oidc::OidcProvider::new(
                c.clone(),
                config.server.public_url.as_deref(),
            )?)),
            None => None,
        };
        // Sign-out posts a form that ends at the provider's end-session endpoint, on its origin.
        let form_origins: Vec<String> = oidc
            .as_ref()
            .and_then(|p| url::Url::parse(&p.config.issuer).ok())
            .map(|u| vec![u.origin().ascii_serialization()])
            .unwrap_or_default();
        let scim = scim::ScimSettings::from_config(&config)?.map(Arc::new);
        let mail = mail::from_config(&config)?;
        let blobs = blobs::BlobStore::from_config(&config)?;
        Ok(Self(Arc::new(AppInner {
            blobs,
            mail,
            audit: audit::appender::GroupAppender::spawn(db.clone()),
            branding: branding::BrandingCache::default(),
            clock: news::clock::Clock::default(),
            scim,
            csp: security_headers::Policy::new(&form_origins),
            oidc,
            limiters: rate_limit::RateLimiters::new(&config.security),
            backoff: BackoffPolicy::from(&config.security),
            metrics: Metrics::default(),
            hasher,
            metrics_token,
            timeouts,
            public_origin,
            db,
            config,
        })))
    }
}

async fn not_found() -> AppError {
    AppError::NotFound
}

/// The application: routes, fallback and the middleware stack, outermost first:
/// security headers (so every response has them, even a panic's) → request id and tracing →
/// client address → metrics → error pages (so every error below becomes a page) → SCIM errors
/// (so that below `/scim/v2` every error is a SCIM JSON Error instead) → panic catcher → timeout
/// → rate limit (before any database work) → session → refusals (403s below become audit
/// entries) → CSRF → the admin gate (`/admin` and
/// below: administrators only, refusals recorded) → body limit.
pub fn app(state: AppState) -> Router {
    app_with_routes(state, routes::table())
}

/// [`app`] over another route table: the same stack around `table`. Tests use it to put a
/// route of their own (one that panics, say) inside the real stack; no such route ships.
pub fn app_with_routes(state: AppState, table: routes::RouteTable) -> Router {
    let max_body = state.config.server.max_body_bytes;
    let timeout = Duration::from_secs(state.config.server.request_timeout_secs);
    let stack = ServiceBuilder::new()
        .layer(from_fn_with_state(
            state.csp.clone(),
            security_headers::add_security_headers,
        ))
        .layer(from_fn(telemetry::trace_request))
        .layer(from_fn_with_state(
            state.clone(),
            http::client_ip::resolve_client_ip,
        ))
        .layer(from_fn_with_state(state.clone(), http::metrics::record))
        .layer(from_fn_with_state(
            state.clone(),
            error_pages::render_error_pages,
        ))
        .layer(from_fn_with_state(state.clone(), scim::error::json_errors))
        .layer(CatchPanicLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(from_fn_with_state(
            state.clone(),
            rate_limit::limit_requests,
        ))
        .layer(from_fn_with_state(state.clone(), session::load_session))
        .layer(from_fn_with_state(state.clone(), refusals::record_refusals))
        .layer(from_fn_with_state(state.clone(), csrf::verify_csrf))
        .layer(from_fn_with_state(
            state.clone(),
            admin_gate::require_admin_role,
        ))
        .layer(DefaultBodyLimit::max(max_body));
    table
        .into_router()
        .fallback(not_found)
        .layer(stack)
        .with_state(state)
}
