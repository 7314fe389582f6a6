//! Typed configuration: read from TOML, overridden by `BEFFROI_<SECTION>__<KEY>` environment
//! variables, then validated. Every error names the offending key and says why.
//!
//! This module must never log or echo a secret: secrets live in files referenced by `*_file`
//! keys, and the contents of those files are only read into [`SecretString`]s.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use secrecy::SecretString;
use serde::Deserialize;

/// Where `serve` looks when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/beffroi/beffroi.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
    #[error("{path}: {reason}")]
    UnsafeFile { path: PathBuf, reason: String },
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub tls: TlsConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub session: SessionConfig,
    #[serde(default)]
    pub security: SecurityConfig,
    #[serde(default)]
    pub local_sign_in: LocalSignInConfig,
    /// Single sign-on; absent means agents cannot sign in (only the break-glass account can).
    pub oidc: Option<OidcConfig>,
    /// SCIM 2.0 provisioning by the agency's directory; absent means `/scim/v2` answers 404.
    pub scim: Option<ScimConfig>,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    /// Encrypted backups; absent means `beffroi backup create` refuses to run.
    pub backup: Option<BackupConfig>,
    /// The vulnerability disclosure contact served at `/.well-known/security.txt` (RFC 9116);
    /// absent means that URL answers 404.
    pub security_txt: Option<SecurityTxtConfig>,
    /// The agency's mail relay; absent means no e-mail is sent (reminders of mandatory reads
    /// show on the wall only).
    pub smtp: Option<SmtpConfig>,
    /// The organisation's time zone for every time the pages show or read.
    #[serde(default)]
    pub locale: LocaleConfig,
}

/// `[locale]`: how people see times. Absent means Europe/Paris.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocaleConfig {
    /// An IANA name (`Europe/Paris`, `America/Cayenne`, `Pacific/Noumea`), checked against the
    /// database embedded in the binary when the config is read: an unknown name refuses to start.
    #[serde(default)]
    pub timezone: crate::timefmt::OrgZone,
}

/// RFC 9116 fields. `contact` and `expires` are required by the RFC.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityTxtConfig {
    /// `mailto:`, `https://` or `tel:` URIs, most preferred first.
    pub contact: Vec<String>,
    /// When the file goes stale, as `YYYY-MM-DDTHH:MM:SSZ` (the RFC advises less than a year ahead).
    pub expires: String,
    /// The key to encrypt reports with (`https://…`).
    pub encryption: Option<String>,
    /// The disclosure policy (`https://…`).
    pub policy: Option<String>,
    /// Hall of fame (`https://…`).
    pub acknowledgments: Option<String>,
    /// Languages reports may be written in, e.g. `["fr", "en"]`.
    #[serde(default)]
    pub preferred_languages: Vec<String>,
}

impl SecurityTxtConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.contact.is_empty() {
            return Err(invalid(
                "security_txt.contact",
                "give at least one contact URI",
            ));
        }
        for contact in &self.contact {
            let ok = ["mailto:", "https://", "tel:"]
                .iter()
                .any(|p| contact.starts_with(p))
                && url::Url::parse(contact).is_ok()
                && !contact.chars().any(char::is_control);
            if !ok {
                return Err(invalid(
                    "security_txt.contact",
                    format!("{contact:?} is not a mailto:, https:// or tel: URI"),
                ));
            }
        }
        if !is_utc_timestamp(&self.expires) {
            return Err(invalid(
                "security_txt.expires",
                "expected a UTC time such as 2027-06-30T00:00:00Z",
            ));
        }
        for (key, value) in [
            ("security_txt.encryption", &self.encryption),
            ("security_txt.policy", &self.policy),
            ("security_txt.acknowledgments", &self.acknowledgments),
        ] {
            if let Some(v) = value {
                if !v.starts_with("https://") || url::Url::parse(v).is_err() {
                    return Err(invalid(key, "must be an https:// URL"));
                }
            }
        }
        for lang in &self.preferred_languages {
            if lang.is_empty()
                || lang.len() > 35
                || !lang.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                return Err(invalid(
                    "security_txt.preferred_languages",
                    format!("{lang:?} is not a language tag"),
                ));
            }
        }
        Ok(())
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` with plausible values.
pub fn is_utc_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r.clone())
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
            && s.get(r).and_then(|d| d.parse::<u32>().ok()).is_some()
    };
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|d| d.parse::<u32>().ok());
    b.len() == 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'Z'
        && num(5..7).is_some_and(|m| (1..=12).contains(&m))
        && num(8..10).is_some_and(|d| (1..=31).contains(&d))
        && num(11..13).is_some_and(|h| h < 24)
        && num(14..16).is_some_and(|m| m < 60)
        && num(17..19).is_some_and(|s| s < 60)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the HTTPS listener.
    pub listen: SocketAddr,
    /// Optional plain-HTTP listener whose only job is to redirect to HTTPS.
    pub http_redirect_listen: Option<SocketAddr>,
    /// The URL agents type, e.g. `https://intranet.example.gouv.fr`. Used for redirects and
    /// for the Origin check; when absent the request's Host header is used.
    pub public_url: Option<String>,
    /// Reverse proxies whose `X-Forwarded-For` header is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Largest file upload form (`multipart/form-data`) accepted, in bytes.
    pub max_upload_bytes: usize,
    /// Time allowed to a handler before the request is answered 503.
    pub request_timeout_secs: u64,
    /// Time given to open connections to finish on shutdown.
    pub shutdown_grace_secs: u64,
    /// Connections served at once by each listener; beyond it new ones are closed at once.
    pub max_connections: usize,
    /// Connections served at once to one client address (one /64 for IPv6); trusted proxies
    /// are exempt, as they carry many agents.
    pub max_connections_per_ip: usize,
    /// Time a client has to complete the TLS handshake.
    pub tls_handshake_timeout_secs: u64,
    /// Time a client has to send a request's headers (HTTP/1.1).
    pub header_read_timeout_secs: u64,
    /// A connection on which nothing was read or written for this long is closed.
    pub idle_timeout_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 443)),
            http_redirect_listen: None,
            public_url: None,
            trusted_proxies: Vec::new(),
            max_body_bytes: 1024 * 1024,
            max_upload_bytes: 10 * 1024 * 1024,
            request_timeout_secs: 30,
            shutdown_grace_secs: 20,
            max_connections: 2048,
            max_connections_per_ip: 256,
            tls_handshake_timeout_secs: 10,
            header_read_timeout_secs: 15,
            idle_timeout_secs: 120,
        }
    }
}

impl ServerConfig {
    /// The transport limits: each bounded both ways, since zero would refuse everyone and a
    /// huge value would let one client hold the server's memory or file descriptors.
    fn validate_connection_limits(&self) -> Result<(), ConfigError> {
        if !(1..=1_000_000).contains(&self.max_connections) {
            return Err(invalid(
                "server.max_connections",
                "must be between 1 and 1000000",
            ));
        }
        if !(1..=self.max_connections).contains(&self.max_connections_per_ip) {
            return Err(invalid(
                "server.max_connections_per_ip",
                "must be between 1 and server.max_connections",
            ));
        }
        for (key, value, max) in [
            (
                "server.tls_handshake_timeout_secs",
                self.tls_handshake_timeout_secs,
                300,
            ),
            (
                "server.header_read_timeout_secs",
                self.header_read_timeout_secs,
                300,
            ),
            ("server.idle_timeout_secs", self.idle_timeout_secs, 3600),
        ] {
            if !(1..=max).contains(&value) {
                return Err(invalid(key, format!("must be between 1 and {max} seconds")));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum TlsMinVersion {
    #[serde(rename = "1.3")]
    Tls13,
    #[serde(rename = "1.2")]
    Tls12,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain. When both files are absent, a self-signed pair is generated in
    /// `<data_dir>/tls/` on first start.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// "1.3" (default) or "1.2" to also accept TLS 1.2 with ECDHE + AEAD suites only.
    pub min_version: TlsMinVersion,
    /// How often the certificate files are checked for change (SIGHUP reloads at once).
    pub reload_check_secs: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert_file: None,
            key_file: None,
            min_version: TlsMinVersion::Tls13,
            reload_check_secs: 10,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    /// `sqlite://…` (default: `<data_dir>/beffroi.db`) or `postgres://user@host/db`.
    pub database_url: Option<String>,
    /// File holding the PostgreSQL password, never the password itself.
    pub database_password_file: Option<PathBuf>,
    /// PostgreSQL only: the role that owns the schema and runs migrations, restores and the
    /// audit purge. When set, `database_url` should name a separate runtime role, which
    /// Beffroi grants only what the running server needs: no UPDATE, DELETE or TRUNCATE on
    /// the audit log, no DDL, so it cannot disable the log's triggers either.
    pub migration_database_url: Option<String>,
    /// File holding the migration role's password.
    pub migration_password_file: Option<PathBuf>,
    /// The pool size; unset, chosen by [`StorageConfig::pool_size`].
    pub max_connections: Option<u32>,
    /// Where uploaded files are kept: `<data_dir>/files` or an S3-compatible server.
    pub blob_store: BlobStoreKind,
    /// The S3-compatible server, with `blob_store = "s3"`.
    pub s3: Option<crate::blobs::s3::S3Config>,
}

/// `storage.blob_store`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BlobStoreKind {
    /// `<data_dir>/files`: one node, or several sharing the directory.
    #[default]
    Local,
    /// An S3-compatible server (`[storage.s3]`), shared by every node.
    S3,
}

impl StorageConfig {
    /// Connections in the pool: `max_connections` when set. Otherwise, for SQLite, two per core
    /// (at least 4): each connection is a thread of this machine running queries, and more of
    /// them than the cores can run only take turns, which lengthens the slowest requests (on 2
    /// cores, 4 connections gave the wall a p99 of 43–56 ms against 52–65 ms with 16; see
    /// BENCHMARKS.md). For PostgreSQL, 10: its connections mostly wait on the server.
    pub fn pool_size(&self, sqlite: bool) -> u32 {
        self.max_connections.unwrap_or_else(|| {
            if sqlite {
                let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
                u32::try_from(cores.saturating_mul(2))
                    .unwrap_or(u32::MAX)
                    .max(4)
            } else {
                10
            }
        })
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("/var/lib/beffroi"),
            database_url: None,
            database_password_file: None,
            migration_database_url: None,
            migration_password_file: None,
            max_connections: None,
            blob_store: BlobStoreKind::Local,
            s3: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// A session unused for this long ends.
    pub idle_timeout_minutes: u64,
    /// A session ends this long after sign-in whatever happens.
    pub absolute_timeout_hours: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout_minutes: 30,
            absolute_timeout_hours: 10,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Sustained requests per second allowed from one client address.
    pub requests_per_second: u32,
    /// Burst allowed above the sustained rate.
    pub request_burst: u32,
    /// Sign-in attempts per minute allowed from one client address.
    pub sign_in_attempts_per_minute: u32,
    /// Failed sign-ins for one account before exponential backoff starts.
    pub backoff_free_failures: u32,
    /// First backoff delay, doubled at each further failure.
    pub backoff_base_secs: u64,
    /// Longest backoff delay.
    pub backoff_max_secs: u64,
    /// Password hashes computed at the same time (each takes 64 MiB).
    pub max_concurrent_hashes: usize,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            requests_per_second: 20,
            request_burst: 100,
            sign_in_attempts_per_minute: 10,
            backoff_free_failures: 3,
            backoff_base_secs: 2,
            backoff_max_secs: 15 * 60,
            max_concurrent_hashes: 2,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalSignInConfig {
    /// The break-glass administrator's password sign-in. Turn off once SSO works.
    pub enabled: bool,
}

impl Default for LocalSignInConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's issuer URL, exactly as its discovery document states it.
    pub issuer: String,
    pub client_id: String,
    /// File holding the client secret (never the secret itself).
    pub client_secret_file: PathBuf,
    /// Label of the sign-in button, e.g. "ProConnect" or "Compte de l'agence".
    #[serde(default = "default_provider_name")]
    pub provider_name: String,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Defaults to `<server.public_url>/auth/oidc/callback`.
    pub redirect_url: Option<String>,
    /// Signature algorithms accepted on ID and logout tokens.
    #[serde(default = "default_algorithms")]
    pub allowed_algorithms: Vec<String>,
    /// Claim carrying the agent's groups (a list of strings, or one string).
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Groups whose members get each role; every signed-in agent has the `agent` role.
    #[serde(default)]
    pub admin_groups: Vec<String>,
    #[serde(default)]
    pub editor_groups: Vec<String>,
    #[serde(default)]
    pub auditor_groups: Vec<String>,
    /// When not empty, only e-mail addresses in these domains may sign in.
    #[serde(default)]
    pub allowed_email_domains: Vec<String>,
    /// Requested authentication context (e.g. "eidas1"); the ID token's `acr` must be one of them.
    #[serde(default)]
    pub acr_values: Vec<String>,
    /// Read claims from the UserInfo endpoint too (its `sub` must match the ID token's).
    #[serde(default = "default_true")]
    pub use_userinfo: bool,
    /// Seconds allowed to each request to the provider.
    #[serde(default = "default_oidc_timeout")]
    pub http_timeout_secs: u64,
    /// Least seconds between two JWKS fetches caused by a token naming an unknown key (a key
    /// rotation at the provider); bounds what forged tokens can make us fetch.
    #[serde(default = "default_jwks_refetch")]
    pub jwks_refetch_min_secs: u64,
}

fn default_jwks_refetch() -> u64 {
    10
}

fn default_provider_name() -> String {
    "SSO".into()
}
fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "profile".into(), "email".into()]
}
fn default_algorithms() -> Vec<String> {
    ["RS256", "ES256", "PS256", "EdDSA"]
        .map(String::from)
        .to_vec()
}
fn default_groups_claim() -> String {
    "groups".into()
}
fn default_true() -> bool {
    true
}
fn default_oidc_timeout() -> u64 {
    10
}

impl OidcConfig {
    pub fn client_secret(&self) -> Result<SecretString, ConfigError> {
        read_secret_file("oidc.client_secret_file", &self.client_secret_file)
    }

    fn validate(&self, public_url: Option<&str>) -> Result<(), ConfigError> {
        let issuer = url::Url::parse(&self.issuer)
            .map_err(|e| invalid("oidc.issuer", format!("not a URL: {e}")))?;
        let loopback = matches!(issuer.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if issuer.scheme() != "https" && !(issuer.scheme() == "http" && loopback) {
            return Err(invalid("oidc.issuer", "must be an https:// URL"));
        }
        if self.client_id.trim().is_empty() {
            return Err(invalid("oidc.client_id", "must not be empty"));
        }
        if !self.client_secret_file.is_absolute() {
            return Err(invalid(
                "oidc.client_secret_file",
                "expected an absolute path to a file; secrets are never written in the config itself",
            ));
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            return Err(invalid("oidc.scopes", "must include \"openid\""));
        }
        if self.allowed_algorithms.is_empty() {
            return Err(invalid(
                "oidc.allowed_algorithms",
                "must name at least one algorithm",
            ));
        }
        for alg in &self.allowed_algorithms {
            if crate::auth::oidc::jwt::Algorithm::parse(alg).is_none() {
                return Err(invalid(
                    "oidc.allowed_algorithms",
                    format!(
                        "{alg} is not accepted (only RS256/384/512, PS256/384/512, ES256/384, EdDSA; never none or HS*)"
                    ),
                ));
            }
        }
        match (&self.redirect_url, public_url) {
            (Some(url), _) => {
                let parsed = url::Url::parse(url)
                    .map_err(|e| invalid("oidc.redirect_url", format!("not a URL: {e}")))?;
                if parsed.scheme() != "https" || parsed.path() != "/auth/oidc/callback" {
                    return Err(invalid(
                        "oidc.redirect_url",
                        "must be https://<this host>/auth/oidc/callback",
                    ));
                }
            }
            (None, Some(_)) => {}
            (None, None) => {
                return Err(invalid(
                    "oidc.redirect_url",
                    "set server.public_url (or oidc.redirect_url) so the provider knows where to send agents back",
                ));
            }
        }
        if self.jwks_refetch_min_secs == 0 || self.jwks_refetch_min_secs > 3600 {
            return Err(invalid(
                "oidc.jwks_refetch_min_secs",
                "must be between 1 and 3600",
            ));
        }
        if self.http_timeout_secs == 0 || self.http_timeout_secs > 60 {
            return Err(invalid(
                "oidc.http_timeout_secs",
                "must be between 1 and 60",
            ));
        }
        for domain in &self.allowed_email_domains {
            if domain.is_empty() || domain.contains('@') {
                return Err(invalid(
                    "oidc.allowed_email_domains",
                    format!("{domain:?} is not a domain name"),
                ));
            }
        }
        Ok(())
    }

    /// Where the provider sends agents back.
    pub fn redirect_url(&self, public_url: Option<&str>) -> String {
        match (&self.redirect_url, public_url) {
            (Some(url), _) => url.clone(),
            (None, Some(public)) => format!("{}/auth/oidc/callback", public.trim_end_matches('/')),
            (None, None) => String::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Client addresses allowed to read `/metrics` without a token.
    pub allow_from: Vec<IpNet>,
    /// File holding a bearer token that also grants access to `/metrics`.
    pub bearer_token_file: Option<PathBuf>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            allow_from: vec![
                IpNet::from(IpAddr::from([127, 0, 0, 1])),
                IpNet::from(IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
            ],
            bearer_token_file: None,
        }
    }
}

/// The audit log: retention and how often the server signs a checkpoint by itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Entries older than this many days have their personal fields purged by
    /// `beffroi audit purge` (CNIL guidance for access logs: 6 to 12 months).
    pub retention_days: u32,
    /// Sign a checkpoint once this many entries were appended since the last one…
    pub checkpoint_every_entries: u64,
    /// …or once this many minutes passed with new entries, whichever comes first.
    pub checkpoint_every_minutes: u64,
    /// Live forwarding to a SIEM (`[audit.syslog]`); absent means off.
    pub syslog: Option<crate::audit::forward::SyslogConfig>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention_days: 365,
            checkpoint_every_entries: 1000,
            checkpoint_every_minutes: 60,
            syslog: None,
        }
    }
}

/// Which SCIM User attribute carries the agent's OpenID Connect `sub`, so that the account a
/// directory provisions and the one its agent signs in to are the same row.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub enum ScimSubjectAttribute {
    #[default]
    #[serde(rename = "userName")]
    UserName,
    #[serde(rename = "externalId")]
    ExternalId,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScimConfig {
    /// File holding the bearer token the directory presents (never the token itself).
    pub token_file: PathBuf,
    /// `userName` (default) or `externalId`: the attribute whose value is the agent's `sub`.
    #[serde(default)]
    pub subject_attribute: ScimSubjectAttribute,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupConfig {
    /// age X25519 public keys (`age1…`) every archive is encrypted to. Their identities (private
    /// keys) are kept offline: the server can write backups it cannot read.
    pub recipients: Vec<String>,
    /// Where archives are written; `<data_dir>/backups` when absent.
    pub dir: Option<PathBuf>,
    /// Rotation: the newest archive of each of the last N days, weeks and months is kept.
    #[serde(default = "default_keep_daily")]
    pub keep_daily: u32,
    #[serde(default = "default_keep_weekly")]
    pub keep_weekly: u32,
    #[serde(default = "default_keep_monthly")]
    pub keep_monthly: u32,
}

fn default_keep_daily() -> u32 {
    7
}
fn default_keep_weekly() -> u32 {
    4
}
fn default_keep_monthly() -> u32 {
    12
}

impl BackupConfig {
    /// The recipients as age keys (validated at load, so this fails only on a config built by
    /// hand).
    pub fn parsed_recipients(&self) -> Result<Vec<age::x25519::Recipient>, ConfigError> {
        self.recipients
            .iter()
            .enumerate()
            .map(|(i, r)| {
                if r.to_ascii_uppercase().contains("AGE-SECRET-KEY") {
                    // Never echo it: this is the key that decrypts every backup.
                    return Err(invalid(
                        &format!("backup.recipients[{i}]"),
                        "is an age SECRET key; the server must only hold public keys (age1…). \
                         Treat this key as leaked",
                    ));
                }
                r.trim().parse::<age::x25519::Recipient>().map_err(|_| {
                    invalid(
                        &format!("backup.recipients[{i}]"),
                        format!(
                            "{:?} is not an age X25519 public key (age1…, as printed by \
                             age-keygen)",
                            r.chars().take(80).collect::<String>()
                        ),
                    )
                })
            })
            .collect()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.recipients.is_empty() {
            return Err(invalid(
                "backup.recipients",
                "must list at least one age public key (age1…)",
            ));
        }
        self.parsed_recipients()?;
        if let Some(dir) = &self.dir {
            if !dir.is_absolute() {
                return Err(invalid("backup.dir", "must be an absolute path"));
            }
        }
        for (key, value) in [
            ("backup.keep_daily", self.keep_daily),
            ("backup.keep_weekly", self.keep_weekly),
            ("backup.keep_monthly", self.keep_monthly),
        ] {
            if value > 1000 {
                return Err(invalid(key, "must be at most 1000"));
            }
        }
        Ok(())
    }
}

/// How the connection to the mail relay is protected.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain SMTP upgraded by STARTTLS, which must succeed (submission, port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (submissions, port 465).
    Tls,
    /// No encryption: only to a relay on this machine (loopback), e.g. a local Postfix.
    None,
}

impl SmtpSecurity {
    pub fn name(self) -> &'static str {
        match self {
            Self::Starttls => "starttls",
            Self::Tls => "tls",
            Self::None => "none",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// The relay's DNS name or IP address, as its certificate names it.
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    #[serde(default)]
    pub security: SmtpSecurity,
    /// Account on the relay; with `password_file`, or neither (a relay that trusts this
    /// server's address).
    pub username: Option<String>,
    /// File holding the relay account's password (never the password itself).
    pub password_file: Option<PathBuf>,
    /// The sender, `intranet@agence.gouv.fr` or `Intranet <intranet@agence.gouv.fr>`.
    pub from: String,
    /// PEM bundle of the authorities that may sign the relay's certificate (an agency PKI);
    /// without it, the system's trusted authorities.
    pub ca_file: Option<PathBuf>,
    /// Time allowed to connect, to finish TLS, and to each exchange with the relay.
    #[serde(default = "default_smtp_timeout")]
    pub timeout_seconds: u64,
}

fn default_smtp_port() -> u16 {
    587
}
fn default_smtp_timeout() -> u64 {
    30
}

/// A host name that can only mean this machine.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl SmtpConfig {
    fn validate(&self, public_url: Option<&str>) -> Result<(), ConfigError> {
        let host = self.host.trim();
        if host.is_empty() || host != self.host || host.chars().any(|c| c.is_control()) {
            return Err(invalid(
                "smtp.host",
                "must be the relay's DNS name or IP address, without spaces",
            ));
        }
        if rustls::pki_types::ServerName::try_from(host.to_owned()).is_err() {
            return Err(invalid(
                "smtp.host",
                format!("{host:?} is not a DNS name or an IP address"),
            ));
        }
        if self.port == 0 {
            return Err(invalid("smtp.port", "must be between 1 and 65535"));
        }
        if self.security == SmtpSecurity::None && !is_loopback_host(host) {
            return Err(invalid(
                "smtp.security",
                "\"none\" sends messages and credentials in clear: only allowed to a relay on \
                 this machine (localhost, 127.0.0.1, ::1); use \"starttls\" or \"tls\"",
            ));
        }
        if self.security == SmtpSecurity::None && self.ca_file.is_some() {
            return Err(invalid(
                "smtp.ca_file",
                "is only used with security = \"starttls\" or \"tls\"",
            ));
        }
        match (&self.username, &self.password_file) {
            (Some(_), None) => {
                return Err(invalid(
                    "smtp.password_file",
                    "smtp.username needs smtp.password_file (or leave both out)",
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "smtp.username",
                    "smtp.password_file needs smtp.username (or leave both out)",
                ));
            }
            _ => {}
        }
        if let Some(user) = &self.username {
            if user.is_empty() || user.chars().any(|c| c.is_control()) {
                return Err(invalid(
                    "smtp.username",
                    "must not be empty or hold control characters",
                ));
            }
        }
        for (key, path) in [
            ("smtp.password_file", &self.password_file),
            ("smtp.ca_file", &self.ca_file),
        ] {
            if let Some(p) = path {
                if !p.is_absolute() {
                    return Err(invalid(key, "expected an absolute path to a file"));
                }
            }
        }
        crate::mail::message::Mailbox::parse(&self.from)
            .map_err(|reason| invalid("smtp.from", reason))?;
        if !(1..=300).contains(&self.timeout_seconds) {
            return Err(invalid("smtp.timeout_seconds", "must be between 1 and 300"));
        }
        // Every message links to the item it is about, at the address agents use.
        if public_url.is_none() {
            return Err(invalid(
                "server.public_url",
                "is needed with [smtp]: e-mails link to pages at this address",
            ));
        }
        Ok(())
    }

    /// The relay account's password, read from `password_file`; `None` without one.
    pub fn password(&self) -> Result<Option<SecretString>, ConfigError> {
        self.password_file
            .as_deref()
            .map(|p| read_secret_file("smtp.password_file", p))
            .transpose()
    }

    /// `host:port (security)`, for messages.
    pub fn describe(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{host}:{} ({})", self.port, self.security.name())
    }
}

/// A SCIM token shorter than this is refused: it is the only credential of an endpoint that
/// creates accounts and grants roles.
pub const SCIM_TOKEN_MIN_CHARS: usize = 32;

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON when stderr is not a terminal (journald), pretty otherwise.
    Auto,
    Json,
    Pretty,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter such as `info` or `beffroi=debug,info`.
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Auto,
        }
    }
}

/// Keys people are tempted to fill with a secret, and the key that should hold its file path.
const INLINE_SECRET_KEYS: &[(&str, &str)] = &[
    (
        "storage.database_password",
        "storage.database_password_file",
    ),
    (
        "storage.migration_password",
        "storage.migration_password_file",
    ),
    ("metrics.bearer_token", "metrics.bearer_token_file"),
    ("tls.key", "tls.key_file"),
    ("oidc.client_secret", "oidc.client_secret_file"),
    ("scim.token", "scim.token_file"),
    ("scim.bearer_token", "scim.token_file"),
    ("smtp.password", "smtp.password_file"),
    (
        "storage.s3.secret_access_key",
        "storage.s3.secret_access_key_file",
    ),
    ("storage.s3.secret_key", "storage.s3.secret_access_key_file"),
];

/// Which database the URL points at.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    Sqlite(PathBuf),
    Postgres(String),
}

impl fmt::Debug for DatabaseTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(p) => write!(f, "SQLite at {}", p.display()),
            Self::Postgres(_) => write!(f, "PostgreSQL"),
        }
    }
}

impl Config {
    /// Reads the file, applies `BEFFROI_*` overrides from `env`, validates.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, path, env)
    }

    pub fn from_toml(
        text: &str,
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        if text.contains("AGE-SECRET-KEY") {
            return Err(ConfigError::Parse {
                path: path.to_owned(),
                message: "contains an age secret key (AGE-SECRET-KEY-…); the server must only \
                          hold backup recipients' public keys"
                    .into(),
            });
        }
        let mut table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path: path.to_owned(),
                    message: e.to_string(),
                })?;
        apply_env_overrides(&mut table, env)?;
        reject_inline_secrets(&table)?;
        let config: Config = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| describe_toml_error(path, &e))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(security_txt) = &self.security_txt {
            security_txt.validate()?;
        }
        if let Some(url) = &self.server.public_url {
            let parsed = url::Url::parse(url)
                .map_err(|e| invalid("server.public_url", format!("not a URL: {e}")))?;
            if parsed.scheme() != "https" {
                return Err(invalid("server.public_url", "must start with https://"));
            }
            if parsed.path() != "/" || parsed.query().is_some() || parsed.fragment().is_some() {
                return Err(invalid(
                    "server.public_url",
                    "must be an origin only, such as https://intranet.example.gouv.fr",
                ));
            }
        }
        if !(30..=3650).contains(&self.audit.retention_days) {
            return Err(invalid(
                "audit.retention_days",
                "must be between 30 and 3650 days",
            ));
        }
        if self.audit.checkpoint_every_entries == 0 {
            return Err(invalid(
                "audit.checkpoint_every_entries",
                "must be at least 1",
            ));
        }
        if self.audit.checkpoint_every_minutes == 0 {
            return Err(invalid(
                "audit.checkpoint_every_minutes",
                "must be at least 1",
            ));
        }
        if let Some(syslog) = &self.audit.syslog {
            syslog.validate()?;
        }
        if let Some(url) = &self.storage.migration_database_url {
            if url::Url::parse(url).is_ok_and(|u| u.password().is_some()) {
                return Err(invalid(
                    "storage.migration_database_url",
                    "contains a password; put it in a file and set \
                     storage.migration_password_file",
                ));
            }
            if !matches!(self.database_target(), DatabaseTarget::Postgres(_)) {
                return Err(invalid(
                    "storage.migration_database_url",
                    "only applies when storage.database_url is a postgres:// URL",
                ));
            }
            if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
                return Err(invalid(
                    "storage.migration_database_url",
                    "must be a postgres:// URL",
                ));
            }
            if Some(url) == self.storage.database_url.as_ref() {
                return Err(invalid(
                    "storage.migration_database_url",
                    "must name a different role from storage.database_url (or be left out)",
                ));
            }
        }
        if self.storage.migration_password_file.is_some()
            && self.storage.migration_database_url.is_none()
        {
            return Err(invalid(
                "storage.migration_password_file",
                "needs storage.migration_database_url",
            ));
        }
        if self.server.max_body_bytes < 1024 {
            return Err(invalid("server.max_body_bytes", "must be at least 1024"));
        }
        if !(1024..=1024 * 1024 * 1024).contains(&self.server.max_upload_bytes) {
            return Err(invalid(
                "server.max_upload_bytes",
                "must be between 1024 and 1073741824 (1 GiB)",
            ));
        }
        if self.server.request_timeout_secs == 0 {
            return Err(invalid("server.request_timeout_secs", "must be at least 1"));
        }
        self.server.validate_connection_limits()?;
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            return Err(invalid(
                "tls.cert_file",
                "tls.cert_file and tls.key_file must be given together",
            ));
        }
        if self.tls.reload_check_secs == 0 {
            return Err(invalid("tls.reload_check_secs", "must be at least 1"));
        }
        for (key, path) in [
            ("tls.cert_file", &self.tls.cert_file),
            ("tls.key_file", &self.tls.key_file),
            (
                "storage.database_password_file",
                &self.storage.database_password_file,
            ),
            (
                "storage.migration_password_file",
                &self.storage.migration_password_file,
            ),
            ("metrics.bearer_token_file", &self.metrics.bearer_token_file),
        ] {
            if let Some(p) = path {
                if !p.is_absolute() {
                    return Err(invalid(
                        key,
                        "expected an absolute path to a file; secrets are never written in the \
                         config itself",
                    ));
                }
            }
        }
        if !self.storage.data_dir.is_absolute() {
            return Err(invalid("storage.data_dir", "must be an absolute path"));
        }
        if let Some(url) = &self.storage.database_url {
            if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                let parsed = url::Url::parse(url)
                    .map_err(|e| invalid("storage.database_url", format!("not a URL: {e}")))?;
                if parsed.password().is_some() {
                    return Err(invalid(
                        "storage.database_url",
                        "contains a password; put it in a file and set \
                         storage.database_password_file",
                    ));
                }
            } else if !url.starts_with("sqlite://") {
                return Err(invalid(
                    "storage.database_url",
                    "must start with sqlite:// or postgres://",
                ));
            }
        }
        if self.storage.max_connections == Some(0) {
            return Err(invalid("storage.max_connections", "must be at least 1"));
        }
        match (self.storage.blob_store, &self.storage.s3) {
            (BlobStoreKind::S3, Some(s3)) => s3.validate()?,
            (BlobStoreKind::S3, None) => {
                return Err(invalid(
                    "storage.s3",
                    "storage.blob_store = \"s3\" needs the [storage.s3] section (endpoint, \
                     bucket, region, access_key_id, secret_access_key_file)",
                ));
            }
            (BlobStoreKind::Local, Some(_)) => {
                return Err(invalid(
                    "storage.blob_store",
                    "[storage.s3] is set but blob_store is \"local\"; set blob_store = \"s3\" \
                     or remove [storage.s3]",
                ));
            }
            (BlobStoreKind::Local, None) => {}
        }
        if self.session.idle_timeout_minutes == 0 {
            return Err(invalid(
                "session.idle_timeout_minutes",
                "must be at least 1",
            ));
        }
        if self.session.absolute_timeout_hours == 0 {
            return Err(invalid(
                "session.absolute_timeout_hours",
                "must be at least 1",
            ));
        }
        if self.session.idle_timeout_minutes > self.session.absolute_timeout_hours * 60 {
            return Err(invalid(
                "session.idle_timeout_minutes",
                "must not exceed session.absolute_timeout_hours",
            ));
        }
        for (key, value) in [
            (
                "security.requests_per_second",
                self.security.requests_per_second,
            ),
            ("security.request_burst", self.security.request_burst),
            (
                "security.sign_in_attempts_per_minute",
                self.security.sign_in_attempts_per_minute,
            ),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if self.security.max_concurrent_hashes == 0 {
            return Err(invalid(
                "security.max_concurrent_hashes",
                "must be at least 1",
            ));
        }
        if self.security.backoff_base_secs == 0
            || self.security.backoff_max_secs < self.security.backoff_base_secs
        {
            return Err(invalid(
                "security.backoff_max_secs",
                "backoff_base_secs must be at least 1 and not exceed backoff_max_secs",
            ));
        }
        if let Some(oidc) = &self.oidc {
            oidc.validate(self.server.public_url.as_deref())?;
        }
        if let Some(scim) = &self.scim {
            if !scim.token_file.is_absolute() {
                return Err(invalid(
                    "scim.token_file",
                    "expected an absolute path to a file; secrets are never written in the \
                     config itself",
                ));
            }
            // Provisioned accounts are keyed by (oidc.issuer, subject) so that the agent's
            // SSO sign-in lands on the account the directory created.
            if self.oidc.is_none() {
                return Err(invalid(
                    "scim",
                    "needs the [oidc] section: provisioned accounts are keyed by oidc.issuer \
                     and the agent's subject",
                ));
            }
        }
        if let Some(backup) = &self.backup {
            backup.validate()?;
        }
        if let Some(smtp) = &self.smtp {
            smtp.validate(self.server.public_url.as_deref())?;
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| invalid("log.level", format!("not a valid filter: {e}")))?;
        Ok(())
    }

    /// The database the config points at.
    pub fn database_target(&self) -> DatabaseTarget {
        match &self.storage.database_url {
            Some(url) if url.starts_with("postgres") => DatabaseTarget::Postgres(url.clone()),
            Some(url) => DatabaseTarget::Sqlite(PathBuf::from(url.trim_start_matches("sqlite://"))),
            None => DatabaseTarget::Sqlite(self.storage.data_dir.join("beffroi.db")),
        }
    }

    pub fn tls_cert_path(&self) -> PathBuf {
        self.tls
            .cert_file
            .clone()
            .unwrap_or_else(|| self.storage.data_dir.join("tls").join("cert.pem"))
    }

    pub fn tls_key_path(&self) -> PathBuf {
        self.tls
            .key_file
            .clone()
            .unwrap_or_else(|| self.storage.data_dir.join("tls").join("key.pem"))
    }

    /// Whether the certificate is ours to generate (no path given in the config).
    pub fn tls_is_self_managed(&self) -> bool {
        self.tls.cert_file.is_none()
    }

    /// Files that hold secrets and must be readable by the owner only.
    pub fn secret_files(&self) -> Vec<(&'static str, PathBuf)> {
        let mut files = vec![("tls.key_file", self.tls_key_path())];
        if let Some(p) = &self.storage.database_password_file {
            files.push(("storage.database_password_file", p.clone()));
        }
        if let Some(p) = &self.storage.migration_password_file {
            files.push(("storage.migration_password_file", p.clone()));
        }
        if let Some(p) = &self.metrics.bearer_token_file {
            files.push(("metrics.bearer_token_file", p.clone()));
        }
        if let Some(oidc) = &self.oidc {
            files.push(("oidc.client_secret_file", oidc.client_secret_file.clone()));
        }
        if let Some(scim) = &self.scim {
            files.push(("scim.token_file", scim.token_file.clone()));
        }
        if let Some(p) = self.smtp.as_ref().and_then(|s| s.password_file.as_ref()) {
            files.push(("smtp.password_file", p.clone()));
        }
        if let Some(s3) = &self.storage.s3 {
            files.push((
                "storage.s3.secret_access_key_file",
                s3.secret_access_key_file.clone(),
            ));
        }
        files
    }

    /// The SCIM bearer token, read once at start; `None` when SCIM is not configured.
    pub fn scim_token(&self) -> Result<Option<SecretString>, ConfigError> {
        let Some(scim) = &self.scim else {
            return Ok(None);
        };
        let token = read_secret_file("scim.token_file", &scim.token_file)?;
        if secrecy::ExposeSecret::expose_secret(&token).chars().count() < SCIM_TOKEN_MIN_CHARS {
            return Err(invalid(
                "scim.token_file",
                format!(
                    "the token must be at least {SCIM_TOKEN_MIN_CHARS} characters; generate one \
                     with `openssl rand -hex 32`"
                ),
            ));
        }
        Ok(Some(token))
    }

    pub fn metrics_token(&self) -> Result<Option<SecretString>, ConfigError> {
        self.metrics
            .bearer_token_file
            .as_deref()
            .map(|p| read_secret_file("metrics.bearer_token_file", p))
            .transpose()
    }

    pub fn database_password(&self) -> Result<Option<SecretString>, ConfigError> {
        self.storage
            .database_password_file
            .as_deref()
            .map(|p| read_secret_file("storage.database_password_file", p))
            .transpose()
    }

    pub fn migration_password(&self) -> Result<Option<SecretString>, ConfigError> {
        self.storage
            .migration_password_file
            .as_deref()
            .map(|p| read_secret_file("storage.migration_password_file", p))
            .transpose()
    }
}

/// Reads a one-line secret file, refusing it when others can read it.
pub fn read_secret_file(key: &str, path: &Path) -> Result<SecretString, ConfigError> {
    check_private_file(path).map_err(|e| invalid(key, e.to_string()))?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(key, format!("{}: {e}", path.display())))?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(invalid(key, format!("{} is empty", path.display())));
    }
    Ok(SecretString::from(trimmed.to_owned()))
}

/// Refuses a file that its group or other users can read or write: config and key files hold
/// secrets, or point at them, and a readable copy is how they leak.
pub fn check_private_file(path: &Path) -> Result<(), ConfigError> {
    let meta = std::fs::metadata(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ConfigError::UnsafeFile {
            path: path.to_owned(),
            reason: format!(
                "mode {mode:04o} lets other users read or change it; run `chmod 600 {}`",
                path.display()
            ),
        });
    }
    Ok(())
}

/// `BEFFROI_SERVER__LISTEN=0.0.0.0:8443` sets `server.listen`. Values are read as TOML when they
/// parse as such (numbers, booleans, arrays), else as strings.
fn apply_env_overrides(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix("BEFFROI_") else {
            continue;
        };
        if rest == "CONFIG" || rest == "LOG" {
            continue;
        }
        let Some((section, key)) = rest.split_once("__") else {
            return Err(invalid(
                &name,
                "environment overrides are named BEFFROI_<SECTION>__<KEY>, e.g. \
                 BEFFROI_SERVER__LISTEN",
            ));
        };
        let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
        let value = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(toml::Value::String(raw));
        let entry = table
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        match entry {
            toml::Value::Table(t) => {
                t.insert(key, value);
            }
            _ => return Err(invalid(&section, "is not a section")),
        }
    }
    Ok(())
}

fn reject_inline_secrets(table: &toml::Table) -> Result<(), ConfigError> {
    for (dotted, file_key) in INLINE_SECRET_KEYS {
        let Some((parents, key)) = dotted.rsplit_once('.') else {
            continue;
        };
        let mut section = Some(table);
        for name in parents.split('.') {
            section = section.and_then(|t| t.get(name)).and_then(|v| v.as_table());
        }
        if section.is_some_and(|s| s.contains_key(key)) {
            return Err(invalid(
                dotted,
                format!(
                    "secrets are never written in the config; put it in a file readable only by \
                     the service (chmod 600) and set {file_key} to its path"
                ),
            ));
        }
    }
    Ok(())
}

/// serde's message plus the dotted key it is about, so a typo reads
/// "server: unknown field `lsiten`, expected one of …" and a bad value "server.listen: …".
fn describe_toml_error(
    path: &Path,
    e: &serde_path_to_error::Error<toml::de::Error>,
) -> ConfigError {
    let key = e.path().to_string();
    let message = e.inner().message().trim().to_owned();
    if key == "." || key.is_empty() {
        ConfigError::Parse {
            path: path.to_owned(),
            message,
        }
    } else {
        ConfigError::Invalid {
            key,
            reason: message,
        }
    }
}

/// The keys accepted by the config, for documentation tests.
pub fn known_sections() -> BTreeSet<&'static str> {
    [
        "server",
        "tls",
        "storage",
        "session",
        "security",
        "local_sign_in",
        "oidc",
        "scim",
        "metrics",
        "log",
        "audit",
        "backup",
        "locale",
        "smtp",
    ]
    .into_iter()
    .collect()
}

/// The commented config printed by `beffroi default-config`. It parses to the defaults.
pub const DEFAULT_CONFIG: &str = include_str!("default-config.toml");

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("test.toml"), Vec::new())
    }

    #[test]
    fn security_txt_fields_are_checked() {
        let ok = parse(
            "[security_txt]\ncontact = [\"mailto:securite@example.gouv.fr\"]\n\
             expires = \"2027-06-30T00:00:00Z\"\npreferred_languages = [\"fr\", \"en\"]\n",
        )
        .unwrap();
        assert_eq!(ok.security_txt.unwrap().contact.len(), 1);
        for (text, key) in [
            (
                "contact = []\nexpires = \"2027-06-30T00:00:00Z\"\n",
                "security_txt.contact",
            ),
            (
                "contact = [\"javascript:alert(1)\"]\nexpires = \"2027-06-30T00:00:00Z\"\n",
                "security_txt.contact",
            ),
            (
                "contact = [\"mailto:a@b.fr\"]\nexpires = \"30/06/2027\"\n",
                "security_txt.expires",
            ),
            (
                "contact = [\"mailto:a@b.fr\"]\nexpires = \"2027-13-30T00:00:00Z\"\n",
                "security_txt.expires",
            ),
            (
                "contact = [\"mailto:a@b.fr\"]\nexpires = \"2027-06-30T00:00:00Z\"\n\
                 policy = \"http://example.fr\"\n",
                "security_txt.policy",
            ),
        ] {
            let err = parse(&format!("[security_txt]\n{text}"))
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn migration_role_needs_postgres_a_distinct_url_and_no_inline_password() {
        let pg = "[storage]\ndatabase_url = \"postgres://beffroi@db/beffroi\"\n";
        let ok = parse(&format!(
            "{pg}migration_database_url = \"postgres://owner@db/beffroi\"\n"
        ))
        .unwrap();
        assert!(ok.storage.migration_database_url.is_some());
        for (text, reason) in [
            (
                "[storage]\nmigration_database_url = \"postgres://owner@db/b\"\n".to_owned(),
                "only applies",
            ),
            (
                format!("{pg}migration_database_url = \"postgres://beffroi@db/beffroi\"\n"),
                "different role",
            ),
            (
                format!("{pg}migration_database_url = \"postgres://owner:pw@db/beffroi\"\n"),
                "contains a password",
            ),
            (
                format!("{pg}migration_password_file = \"/etc/beffroi/owner\"\n"),
                "needs storage.migration_database_url",
            ),
        ] {
            let err = parse(&text).err().unwrap().to_string();
            assert!(err.contains("storage.migration_"), "{err}");
            assert!(err.contains(reason), "{err}");
        }
    }

    #[test]
    fn locale_timezone_is_an_iana_name_or_refused() {
        assert_eq!(parse("").unwrap().locale.timezone.name(), "Europe/Paris");
        let c = parse("[locale]\ntimezone = \"America/Cayenne\"\n").unwrap();
        assert_eq!(c.locale.timezone.name(), "America/Cayenne");
        for bad in ["\"Europe/Lutece\"", "\"\"", "3"] {
            let err = parse(&format!("[locale]\ntimezone = {bad}\n"))
                .err()
                .unwrap()
                .to_string();
            assert!(err.starts_with("locale.timezone: "), "{err}");
        }
        let env = vec![("BEFFROI_LOCALE__TIMEZONE".into(), "Pacific/Noumea".into())];
        let c = Config::from_toml("", Path::new("t"), env).unwrap();
        assert_eq!(c.locale.timezone.name(), "Pacific/Noumea");
    }

    #[test]
    fn default_config_parses_and_lists_every_section() {
        let config = parse(DEFAULT_CONFIG).unwrap();
        assert_eq!(config.server.max_body_bytes, 1024 * 1024);
        for section in known_sections() {
            assert!(
                DEFAULT_CONFIG.contains(&format!("[{section}]")),
                "default config lacks [{section}]"
            );
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let err = parse("[server]\nlsiten = \"0.0.0.0:443\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("lsiten"), "{err}");
    }

    #[test]
    fn env_override_applies_and_unknown_env_key_is_named() {
        let env = vec![("BEFFROI_SERVER__MAX_BODY_BYTES".into(), "4096".into())];
        let c = Config::from_toml("", Path::new("t"), env).unwrap();
        assert_eq!(c.server.max_body_bytes, 4096);
        let env = vec![("BEFFROI_SERVER__NOPE".into(), "1".into())];
        let err = Config::from_toml("", Path::new("t"), env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn inline_secrets_are_refused() {
        let err = parse("[metrics]\nbearer_token = \"abc\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("metrics.bearer_token:"), "{err}");
        let err = parse("[storage]\ndatabase_url = \"postgres://u:pw@h/db\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("storage.database_url:"), "{err}");
        let err = parse("[metrics]\nbearer_token_file = \"s3cr3t-t0ken\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("metrics.bearer_token_file:"), "{err}");
        let err = parse("# AGE-SECRET-KEY-1QQQ\n").unwrap_err().to_string();
        assert!(err.contains("AGE-SECRET-KEY"), "{err}");
    }

    #[test]
    fn scim_needs_oidc_and_a_token_file() {
        let err = parse("[scim]\ntoken_file = \"/etc/beffroi/scim-token\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("scim:") && err.contains("[oidc]"), "{err}");
        let err = parse("[scim]\ntoken = \"abc\"\n").unwrap_err().to_string();
        assert!(err.starts_with("scim.token:"), "{err}");
        let err = parse("[scim]\ntoken_file = \"relative\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("scim.token_file:"), "{err}");
        let err = parse("[scim]\ntoken_file = \"/x\"\nsubject_attribute = \"email\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("subject_attribute"), "{err}");
    }

    #[test]
    fn backup_section_is_validated_naming_the_key() {
        let good = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
        let c = parse(&format!("[backup]\nrecipients = [\"{good}\"]\n")).unwrap();
        let b = c.backup.unwrap();
        assert_eq!((b.keep_daily, b.keep_weekly, b.keep_monthly), (7, 4, 12));
        for (text, key) in [
            ("[backup]\nrecipients = []\n", "backup.recipients:"),
            (
                "[backup]\nrecipients = [\"age1notakey\"]\n",
                "backup.recipients[0]:",
            ),
            (
                &format!("[backup]\nrecipients = [\"{good}\", \"ssh-ed25519 AAAA\"]\n"),
                "backup.recipients[1]:",
            ),
            (
                &format!("[backup]\nrecipients = [\"{good}\"]\ndir = \"rel\"\n"),
                "backup.dir:",
            ),
            (
                &format!("[backup]\nrecipients = [\"{good}\"]\nkeep_daily = 5000\n"),
                "backup.keep_daily:",
            ),
            (
                &format!("[backup]\nrecipients = [\"{good}\"]\nkeep_hourly = 1\n"),
                "keep_hourly",
            ),
            ("[backup]\ndir = \"/x\"\n", "recipients"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text} gave {err}");
        }
        // A secret key slipped in through the environment is refused without being echoed.
        let env = vec![(
            "BEFFROI_BACKUP__RECIPIENTS".into(),
            "[\"AGE-SECRET-KEY-1QQQQ\"]".into(),
        )];
        let err = Config::from_toml("", Path::new("t"), env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("SECRET key") && !err.contains("1QQQQ"),
            "{err}"
        );
    }

    #[test]
    fn smtp_section_is_validated_naming_the_key() {
        let url = "[server]\npublic_url = \"https://intranet.example.gouv.fr\"\n";
        let base =
            "host = \"smtp.agence.gouv.fr\"\nfrom = \"Intranet <intranet@agence.gouv.fr>\"\n";
        let c = parse(&format!("{url}[smtp]\n{base}")).unwrap();
        let smtp = c.smtp.unwrap();
        assert_eq!(smtp.port, 587);
        assert_eq!(smtp.security, SmtpSecurity::Starttls);
        assert_eq!(smtp.timeout_seconds, 30);
        assert_eq!(smtp.describe(), "smtp.agence.gouv.fr:587 (starttls)");
        assert!(parse("").unwrap().smtp.is_none());
        // "none" is for a relay on this machine only.
        for host in ["localhost", "127.0.0.1", "::1"] {
            let text =
                format!("{url}[smtp]\nhost = \"{host}\"\nsecurity = \"none\"\nfrom = \"a@b.fr\"\n");
            assert!(parse(&text).is_ok(), "{host}");
        }
        for (text, key) in [
            (
                format!("{url}[smtp]\n{base}security = \"none\"\n"),
                "smtp.security:",
            ),
            (
                format!("{url}[smtp]\n{base}security = \"ssl\"\n"),
                "smtp.security",
            ),
            (
                format!("{url}[smtp]\n{base}username = \"u\"\n"),
                "smtp.password_file:",
            ),
            (
                format!("{url}[smtp]\n{base}password_file = \"/etc/beffroi/smtp\"\n"),
                "smtp.username:",
            ),
            (
                format!("{url}[smtp]\n{base}username = \"u\"\npassword_file = \"rel\"\n"),
                "smtp.password_file:",
            ),
            (
                format!("{url}[smtp]\n{base}password = \"hunter2\"\n"),
                "smtp.password:",
            ),
            (
                format!("{url}[smtp]\n{base}ca_file = \"ca.pem\"\n"),
                "smtp.ca_file:",
            ),
            (format!("{url}[smtp]\n{base}port = 0\n"), "smtp.port:"),
            (format!("{url}[smtp]\n{base}port = 70000\n"), "smtp.port"),
            (
                format!("{url}[smtp]\n{base}timeout_seconds = 0\n"),
                "smtp.timeout_seconds:",
            ),
            (
                format!("{url}[smtp]\nhost = \"smtp.x.fr\"\nfrom = \"not an address\"\n"),
                "smtp.from:",
            ),
            (
                format!("{url}[smtp]\nhost = \"smtp.x.fr\"\nfrom = \"a@b.fr\\r\\nBcc: c@d.fr\"\n"),
                "smtp.from:",
            ),
            (
                format!("{url}[smtp]\nhost = \"bad host\"\nfrom = \"a@b.fr\"\n"),
                "smtp.host:",
            ),
            (format!("{url}[smtp]\nfrom = \"a@b.fr\"\n"), "host"),
            (format!("[smtp]\n{base}"), "server.public_url:"),
        ] {
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(key), "{text} gave {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn smtp_password_file_is_read_like_the_other_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("smtp-password");
        std::fs::write(&file, "relay-password\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let text = format!(
            "[server]\npublic_url = \"https://i.example.gouv.fr\"\n[smtp]\n\
             host = \"smtp.x.fr\"\nfrom = \"a@x.fr\"\nusername = \"u\"\n\
             password_file = \"{}\"\n",
            file.display()
        );
        let config = parse(&text).unwrap();
        assert!(
            config
                .secret_files()
                .iter()
                .any(|(key, path)| *key == "smtp.password_file" && *path == file)
        );
        let smtp = config.smtp.unwrap();
        // Readable by others: refused, naming the file.
        let err = smtp.password().unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let password = smtp.password().unwrap().unwrap();
        assert_eq!(
            secrecy::ExposeSecret::expose_secret(&password),
            "relay-password"
        );
        std::fs::write(&file, "\n").unwrap();
        let err = smtp.password().unwrap_err().to_string();
        assert!(err.starts_with("smtp.password_file:"), "{err}");
    }

    #[test]
    fn invalid_values_name_their_key() {
        for (text, key) in [
            ("[server]\nlisten = \"nowhere\"\n", "listen"),
            (
                "[server]\npublic_url = \"http://x.test\"\n",
                "server.public_url",
            ),
            ("[tls]\nmin_version = \"1.1\"\n", "1.1"),
            (
                "[session]\nidle_timeout_minutes = 0\n",
                "session.idle_timeout_minutes",
            ),
            ("[log]\nlevel = \"[[[\"\n", "log.level"),
            ("[storage]\ndata_dir = \"relative\"\n", "storage.data_dir"),
            ("[server]\nmax_connections = 0\n", "server.max_connections"),
            (
                "[server]\nmax_connections = 10\nmax_connections_per_ip = 11\n",
                "server.max_connections_per_ip",
            ),
            (
                "[server]\ntls_handshake_timeout_secs = 0\n",
                "server.tls_handshake_timeout_secs",
            ),
            (
                "[server]\nheader_read_timeout_secs = 301\n",
                "server.header_read_timeout_secs",
            ),
            (
                "[server]\nidle_timeout_secs = 0\n",
                "server.idle_timeout_secs",
            ),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text} gave {err}");
        }
    }
}
