//! E-mail: the connection to the agency's relay (`[smtp]`), the durable outbox every message
//! goes through ([`outbox`]), and how a message is written ([`message`]).
//!
//! Nothing is sent from a request: an action that causes e-mails (a reminder of a mandatory
//! read) writes them to the outbox in its own transaction, and the worker started by `serve`
//! delivers them. The relay is reached with lettre over rustls on *ring*, trusting
//! `smtp.ca_file` alone when it is given (so that a public authority cannot vouch for an
//! internal relay), else the system's authorities. The relay's password is read from
//! `smtp.password_file` at start, held as a [`SecretString`], and scrubbed from any error text
//! before that text is stored or logged.

pub mod admin;
pub mod message;
pub mod outbox;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use secrecy::{ExposeSecret, SecretString};

use crate::config::{ConfigError, SmtpConfig, SmtpSecurity};
use message::{Content, Mailbox};

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// Why a message could not be handed to the relay. The text never holds the relay's password.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{text}")]
pub struct SendError {
    /// A stable word for metrics and the audit log: `connection`, `tls`, `authentication`,
    /// `rejected`, `timeout` or `address`.
    pub kind: &'static str,
    /// The relay's reply code, when it answered with one.
    pub code: Option<u16>,
    pub text: String,
}

/// The relay, ready to send.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    public_url: String,
    describe: String,
    timeout: Duration,
    /// Kept only to scrub it from error texts.
    password: Option<SecretString>,
    /// The organisation's time zone, for the times a message names.
    zone: crate::timefmt::OrgZone,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mailer({})", self.describe)
    }
}

/// The certificates of a PEM bundle, naming `smtp.ca_file` when it cannot be used.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| invalid("smtp.ca_file", format!("{}: {e}", path.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| invalid("smtp.ca_file", format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(invalid(
            "smtp.ca_file",
            format!("{}: no PEM certificate found", path.display()),
        ));
    }
    Ok(certs)
}

/// The name this server gives in EHLO: the host agents reach it by, else the machine's name.
fn hello_name(public_url: &str) -> ClientId {
    let from_url = url::Url::parse(public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned));
    let name = from_url.unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default()
    });
    let clean = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c));
    if name.is_empty() || !clean {
        ClientId::Domain("localhost".into())
    } else {
        ClientId::Domain(name)
    }
}

impl Mailer {
    /// Builds the transport from `[smtp]`: reads the password file and the CA file (errors name
    /// their key). Connects to nothing.
    pub fn from_config(config: &SmtpConfig, public_url: Option<&str>) -> Result<Self, ConfigError> {
        let public_url = public_url
            .ok_or_else(|| invalid("server.public_url", "is needed with [smtp]"))?
            .trim_end_matches('/')
            .to_owned();
        let from = Mailbox::parse(&config.from).map_err(|reason| invalid("smtp.from", reason))?;
        let password = config.password()?;
        let timeout = Duration::from_secs(config.timeout_seconds);
        let tls = match config.security {
            SmtpSecurity::None => Tls::None,
            SmtpSecurity::Starttls => Tls::Required(tls_parameters(config)?),
            SmtpSecurity::Tls => Tls::Wrapper(tls_parameters(config)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .tls(tls)
            .timeout(Some(timeout))
            .hello_name(hello_name(&public_url));
        if let (Some(user), Some(password)) = (&config.username, &password) {
            builder = builder
                .credentials(Credentials::new(
                    user.clone(),
                    password.expose_secret().to_owned(),
                ))
                .authentication(vec![Mechanism::Plain, Mechanism::Login]);
        }
        Ok(Self {
            transport: builder.build(),
            from,
            public_url,
            describe: config.describe(),
            timeout,
            password,
            zone: crate::timefmt::OrgZone::default(),
        })
    }

    /// The time zone the messages' times are written in (`locale.timezone`).
    pub fn with_zone(mut self, zone: crate::timefmt::OrgZone) -> Self {
        self.zone = zone;
        self
    }

    pub fn zone(&self) -> &crate::timefmt::OrgZone {
        &self.zone
    }

    /// The sender of every message.
    pub fn from(&self) -> &Mailbox {
        &self.from
    }

    /// `server.public_url` without a trailing slash, for links.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// `host:port (security)`.
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// Hands one message to the relay.
    pub async fn send(
        &self,
        to: &str,
        subject: &str,
        body: &str,
        message_id: &str,
        languages: &str,
    ) -> Result<(), SendError> {
        let address: lettre::Address = to.parse().map_err(|_| SendError {
            kind: "address",
            code: None,
            text: "the recipient's address is not valid".into(),
        })?;
        let raw = message::render(&Content {
            from: &self.from,
            to: &address,
            subject,
            body,
            message_id,
            languages,
            date: crate::db::now(),
        });
        let envelope =
            lettre::address::Envelope::new(Some(self.from.address.clone()), vec![address])
                .map_err(|e| self.error(&e))?;
        // lettre bounds each step by the timeout; this bounds the whole exchange, so that a relay
        // trickling its replies cannot hold a worker for ever.
        let whole = self.timeout.saturating_mul(4);
        match tokio::time::timeout(whole, self.transport.send_raw(&envelope, &raw)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(self.error(&e)),
            Err(_) => Err(SendError {
                kind: "timeout",
                code: None,
                text: format!("{}: no answer within {} s", self.describe, whole.as_secs()),
            }),
        }
    }

    /// Connects, upgrades to TLS and authenticates as a delivery would, then says goodbye
    /// without sending anything (`check-config`).
    pub async fn probe(&self) -> Result<(), SendError> {
        let whole = self.timeout.saturating_mul(4);
        match tokio::time::timeout(whole, self.transport.test_connection()).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(SendError {
                kind: "connection",
                code: None,
                text: format!("{}: the relay did not answer NOOP", self.describe),
            }),
            Ok(Err(e)) => Err(self.error(&e)),
            Err(_) => Err(SendError {
                kind: "timeout",
                code: None,
                text: format!("{}: no answer within {} s", self.describe, whole.as_secs()),
            }),
        }
    }

    /// A lettre error as a [`SendError`], its text (with its causes) scrubbed of the password.
    fn error(&self, e: &(dyn std::error::Error + 'static)) -> SendError {
        let mut text = e.to_string();
        let mut source = e.source();
        while let Some(cause) = source {
            let more = cause.to_string();
            if !text.contains(&more) {
                text.push_str(": ");
                text.push_str(&more);
            }
            source = cause.source();
        }
        let (kind, code) = match e.downcast_ref::<lettre::transport::smtp::Error>() {
            Some(smtp) => {
                let code = smtp.status().map(u16::from);
                let kind = if smtp.is_timeout() {
                    "timeout"
                } else if smtp.is_tls() || tls_failure(e) {
                    "tls"
                } else if matches!(code, Some(530 | 534 | 535 | 538 | 454)) {
                    "authentication"
                } else if smtp.is_permanent() || smtp.is_transient() {
                    "rejected"
                } else {
                    "connection"
                };
                (kind, code)
            }
            None => ("connection", None),
        };
        SendError {
            kind,
            code,
            text: format!(
                "{}: {}",
                self.describe,
                scrub(&without_repeats(&text), self.password.as_ref())
            ),
        }
    }
}

/// Whether a TLS error is somewhere in the chain: lettre reports a certificate that does not
/// verify as a connection error wrapping the I/O error wrapping rustls's.
fn tls_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if err.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
            {
                return true;
            }
        }
        current = err.source();
    }
    false
}

/// `a: a: b` as `a: b`: lettre repeats its kind in nested errors.
fn without_repeats(text: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in text.split(": ") {
        if parts.last() != Some(&part) {
            parts.push(part);
        }
    }
    parts.join(": ")
}

/// `text` without the password, nor its base64 forms as AUTH PLAIN and LOGIN send it, and cut
/// to a length a log line and a table cell can hold.
fn scrub(text: &str, password: Option<&SecretString>) -> String {
    use base64::Engine as _;
    let mut out = one_line_lossy(text);
    if let Some(password) = password {
        let secret = password.expose_secret();
        if !secret.is_empty() {
            let b64 = base64::engine::general_purpose::STANDARD.encode(secret.as_bytes());
            out = out
                .replace(secret, "[password]")
                .replace(&b64, "[password]");
        }
    }
    out.chars().take(1000).collect()
}

fn one_line_lossy(text: &str) -> String {
    message::one_line(text)
}

/// The root certificates: `ca_file` alone when given, else the system's.
fn tls_parameters(config: &SmtpConfig) -> Result<TlsParameters, ConfigError> {
    let roots: Vec<CertificateDer<'static>> = match &config.ca_file {
        Some(path) => read_ca_file(path)?,
        None => {
            let native = rustls_native_certs::load_native_certs().certs;
            if native.is_empty() {
                return Err(invalid(
                    "smtp.ca_file",
                    "not set, and the system has no trusted authorities; give the PEM bundle \
                     of the relay's authority",
                ));
            }
            native
        }
    };
    let mut builder = TlsParameters::builder(config.host.clone())
        .certificate_store(CertificateStore::None)
        .set_min_tls_version(lettre::transport::smtp::client::TlsVersion::Tlsv12);
    let mut added = 0usize;
    for cert in roots {
        // A system bundle can hold a certificate rustls cannot use; skip it rather than fail.
        if let Ok(c) = Certificate::from_der(cert.to_vec()) {
            builder = builder.add_root_certificate(c);
            added += 1;
        }
    }
    if added == 0 {
        return Err(invalid("smtp.ca_file", "no usable certificate"));
    }
    builder
        .build_rustls()
        .map_err(|e| invalid("smtp.ca_file", e.to_string()))
}

/// The mailer of a configuration, when `[smtp]` is set.
pub fn from_config(config: &crate::config::Config) -> Result<Option<Arc<Mailer>>, ConfigError> {
    config
        .smtp
        .as_ref()
        .map(|smtp| {
            Mailer::from_config(smtp, config.server.public_url.as_deref())
                .map(|m| Arc::new(m.with_zone(config.locale.timezone.clone())))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_survives_in_an_error() {
        let password = SecretString::from("s3cr3t-P@ss".to_owned());
        let plain = "AUTH PLAIN failed: 535 bad s3cr3t-P@ss\r\nnext";
        assert_eq!(
            scrub(plain, Some(&password)),
            "AUTH PLAIN failed: 535 bad [password] next"
        );
        assert_eq!(
            without_repeats("Connection error: Connection error: invalid peer certificate"),
            "Connection error: invalid peer certificate"
        );
        let encoded = "sent czNjcjN0LVBAc3M=";
        assert_eq!(scrub(encoded, Some(&password)), "sent [password]");
        assert_eq!(scrub(&"x".repeat(5000), None).len(), 1000);
    }
}
