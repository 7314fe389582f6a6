//! The `[audit.syslog]` section: where audit entries are forwarded and how. It lives here rather
//! than in `src/config.rs` because only forwarding reads it; `config.rs` embeds it in
//! `AuditConfig` and calls [`SyslogConfig::validate`], so every error still names its key.
//!
//! Nothing here is secret: a CA bundle is public, and client certificates are not supported.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde::Deserialize;

use crate::config::ConfigError;

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: format!("audit.syslog.{key}"),
        reason: reason.into(),
    }
}

/// How messages reach the collector.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// TCP with RFC 6587 octet counting.
    Tcp,
    /// TLS over TCP, RFC 5425 (octet counting inside TLS).
    Tls,
    /// A local datagram socket such as `/dev/log` (rsyslog imuxsock, journald, syslog-ng
    /// `unix-dgram`): one message per datagram.
    Unix,
    /// A local stream socket (rsyslog imptcp `path=`), with octet counting as over TCP.
    UnixStream,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Tls => "tls",
            Self::Unix => "unix",
            Self::UnixStream => "unix-stream",
        }
    }

    pub fn is_local(self) -> bool {
        matches!(self, Self::Unix | Self::UnixStream)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    pub transport: Transport,
    /// `host:port` for tcp and tls (`[2001:db8::1]:6514` for an IPv6 address), an absolute path
    /// for the local sockets.
    pub address: String,
    /// PEM bundle of the authorities that may sign the collector's certificate (tls only).
    /// Without it, the system's trusted authorities.
    pub ca_file: Option<PathBuf>,
    /// Name checked against the collector's certificate; defaults to the host of `address`.
    pub server_name: Option<String>,
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// Defaults to the machine's host name.
    pub hostname: Option<String>,
    #[serde(default = "default_facility")]
    pub facility: String,
    /// How often new entries are looked for.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// Longest wait between two attempts while the collector is unreachable.
    #[serde(default = "default_retry_max_secs")]
    pub retry_max_secs: u64,
    /// Time allowed to connect, to finish the TLS handshake, and to each write.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Largest message; longer ones are cut and marked `truncated="true"`.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
}

fn default_app_name() -> String {
    "beffroi".into()
}
fn default_facility() -> String {
    "authpriv".into()
}
fn default_poll_interval_ms() -> u64 {
    1000
}
fn default_retry_max_secs() -> u64 {
    60
}
fn default_timeout_secs() -> u64 {
    10
}
fn default_max_message_bytes() -> usize {
    8192
}

/// RFC 5424 Table 1, with the names rsyslog and syslog-ng use.
const FACILITIES: &[(&str, u8)] = &[
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("ntp", 12),
    ("audit", 13),
    ("alert", 14),
    ("clock", 15),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// Where a tcp or tls `address` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// A DNS name or an IP address (without brackets).
    pub host: String,
    pub port: u16,
}

fn parse_host_port(address: &str) -> Option<HostPort> {
    let (host, port) = address.rsplit_once(':')?;
    let host = match host.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']')?,
        // An unbracketed IPv6 address would be ambiguous with the port.
        None if host.contains(':') => return None,
        None => host,
    };
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    if host.is_empty() || !host.chars().all(|c| c.is_ascii_graphic()) {
        return None;
    }
    Some(HostPort {
        host: host.to_owned(),
        port,
    })
}

fn printable_ascii(value: &str, max: usize) -> bool {
    !value.is_empty() && value.len() <= max && value.chars().all(|c| c.is_ascii_graphic())
}

impl SyslogConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.transport {
            Transport::Tcp | Transport::Tls => {
                let target = self.host_port()?;
                if self.transport == Transport::Tls && self.server_name.is_none() {
                    ServerName::try_from(target.host.clone()).map_err(|_| {
                        invalid(
                            "address",
                            "its host is not a DNS name or an IP address a certificate can \
                             name; set audit.syslog.server_name",
                        )
                    })?;
                }
            }
            Transport::Unix | Transport::UnixStream => {
                if !Path::new(&self.address).is_absolute() {
                    return Err(invalid(
                        "address",
                        format!(
                            "with transport = \"{}\", the absolute path of the socket, such as \
                             /dev/log",
                            self.transport.name()
                        ),
                    ));
                }
            }
        }
        if self.transport != Transport::Tls {
            if self.ca_file.is_some() {
                return Err(invalid("ca_file", "is only used with transport = \"tls\""));
            }
            if self.server_name.is_some() {
                return Err(invalid(
                    "server_name",
                    "is only used with transport = \"tls\"",
                ));
            }
        }
        if let Some(ca) = &self.ca_file {
            if !ca.is_absolute() {
                return Err(invalid("ca_file", "must be an absolute path"));
            }
        }
        if let Some(name) = &self.server_name {
            ServerName::try_from(name.clone())
                .map_err(|_| invalid("server_name", "is not a DNS name or an IP address"))?;
        }
        if !printable_ascii(&self.app_name, 48) {
            return Err(invalid(
                "app_name",
                "must be 1 to 48 printable ASCII characters without spaces (RFC 5424 APP-NAME)",
            ));
        }
        if let Some(host) = &self.hostname {
            if !printable_ascii(host, 255) {
                return Err(invalid(
                    "hostname",
                    "must be 1 to 255 printable ASCII characters without spaces (RFC 5424 \
                     HOSTNAME)",
                ));
            }
        }
        self.facility_code()?;
        if !(10..=60_000).contains(&self.poll_interval_ms) {
            return Err(invalid("poll_interval_ms", "must be between 10 and 60000"));
        }
        if !(1..=3600).contains(&self.retry_max_secs) {
            return Err(invalid("retry_max_secs", "must be between 1 and 3600"));
        }
        if !(1..=300).contains(&self.timeout_secs) {
            return Err(invalid("timeout_secs", "must be between 1 and 300"));
        }
        // 2048 is what every receiver must accept (RFC 5425 §4.3.1, RFC 5426 §3.2). A datagram
        // larger than the socket allows would be refused again at every retry, and forwarding
        // would stop at that entry: datagrams stay far below Linux's default limit.
        let max = if self.transport == Transport::Unix {
            65_536
        } else {
            1_048_576
        };
        if !(2048..=max).contains(&self.max_message_bytes) {
            return Err(invalid(
                "max_message_bytes",
                format!(
                    "must be between 2048 and {max} with transport = \"{}\"",
                    self.transport.name()
                ),
            ));
        }
        Ok(())
    }

    /// The facility's code (RFC 5424 Table 1).
    pub fn facility_code(&self) -> Result<u8, ConfigError> {
        FACILITIES
            .iter()
            .find(|(name, _)| *name == self.facility)
            .map(|(_, code)| *code)
            .ok_or_else(|| {
                invalid(
                    "facility",
                    format!(
                        "{:?} is not a facility; one of {}",
                        self.facility,
                        FACILITIES
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
    }

    /// Host and port of a tcp or tls `address`.
    pub fn host_port(&self) -> Result<HostPort, ConfigError> {
        parse_host_port(&self.address).ok_or_else(|| {
            invalid(
                "address",
                format!(
                    "with transport = \"{}\", host:port such as siem.example.internal:6514 \
                     ([address]:port for IPv6)",
                    self.transport.name()
                ),
            )
        })
    }

    /// The name the progress table knows this destination by, e.g. `tls://siem.example:6514`
    /// or `unix:///dev/log`: a new destination starts from the first entry.
    pub fn destination(&self) -> String {
        format!("{}://{}", self.transport.name(), self.address)
    }

    /// The HOSTNAME of every message: the configured one, or the machine's.
    pub fn effective_hostname(&self) -> String {
        match &self.hostname {
            Some(h) => h.clone(),
            None => machine_hostname(),
        }
    }

    /// The TLS client configuration: rustls on *ring*, TLS 1.2 or 1.3 with the process's AEAD
    /// suites, trusting `ca_file` alone when given (so a public CA cannot vouch for an internal
    /// collector), else the system's authorities. Reads the CA file: called at start and by
    /// `check-config`.
    pub fn tls_client_config(&self) -> Result<Arc<rustls::ClientConfig>, ConfigError> {
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca_file {
            Some(path) => {
                let certs = read_ca_file(path)?;
                for cert in certs {
                    roots
                        .add(cert)
                        .map_err(|e| invalid("ca_file", format!("{}: {e}", path.display())))?;
                }
            }
            None => {
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
                if roots.is_empty() {
                    return Err(invalid(
                        "ca_file",
                        "not set, and the system has no trusted authorities; give the PEM \
                         bundle of the collector's authority",
                    ));
                }
            }
        }
        let config =
            rustls::ClientConfig::builder_with_provider(Arc::new(crate::tls::crypto_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| invalid("transport", e.to_string()))?
                .with_root_certificates(roots)
                .with_no_client_auth();
        Ok(Arc::new(config))
    }

    /// The name the collector's certificate must carry.
    pub fn tls_server_name(&self) -> Result<ServerName<'static>, ConfigError> {
        let name = match &self.server_name {
            Some(name) => name.clone(),
            None => self.host_port()?.host,
        };
        ServerName::try_from(name)
            .map_err(|_| invalid("server_name", "is not a DNS name or an IP address"))
    }
}

/// The certificates of a PEM bundle; an unreadable file, a malformed PEM block or a file
/// without any certificate is an error naming `audit.syslog.ca_file`.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| invalid("ca_file", format!("{}: {e}", path.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| invalid("ca_file", format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(invalid(
            "ca_file",
            format!("{}: no PEM certificate found", path.display()),
        ));
    }
    Ok(certs)
}

/// The kernel's host name, cleaned to what a syslog HOSTNAME may hold; the NILVALUE when there
/// is none.
fn machine_hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    super::format::header_field(raw.trim(), 255)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    fn parse(section: &str) -> Result<Config, crate::config::ConfigError> {
        Config::from_toml(
            &format!("[audit.syslog]\n{section}"),
            Path::new("test.toml"),
            Vec::new(),
        )
    }

    #[test]
    fn absent_means_off_and_defaults_apply() {
        let c = Config::from_toml("", Path::new("t"), Vec::new()).unwrap();
        assert!(c.audit.syslog.is_none());
        let c = parse("transport = \"tls\"\naddress = \"siem.example.internal:6514\"\n").unwrap();
        let s = c.audit.syslog.unwrap();
        assert_eq!(s.app_name, "beffroi");
        assert_eq!(s.facility_code().unwrap(), 10);
        assert_eq!(s.poll_interval_ms, 1000);
        assert_eq!(s.retry_max_secs, 60);
        assert_eq!(s.max_message_bytes, 8192);
        assert_eq!(s.destination(), "tls://siem.example.internal:6514");
        assert_eq!(
            s.tls_server_name().unwrap().to_str(),
            "siem.example.internal"
        );
        assert!(!s.effective_hostname().is_empty());
    }

    #[test]
    fn addresses_by_transport() {
        for ok in [
            "transport = \"tcp\"\naddress = \"127.0.0.1:514\"\n",
            "transport = \"tcp\"\naddress = \"[2001:db8::1]:514\"\n",
            "transport = \"unix\"\naddress = \"/dev/log\"\n",
            "transport = \"unix-stream\"\naddress = \"/run/rsyslog/beffroi.sock\"\n",
            "transport = \"tls\"\naddress = \"10.0.0.5:6514\"\nserver_name = \"siem.example\"\n",
        ] {
            parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for (bad, key) in [
            (
                "transport = \"tcp\"\naddress = \"siem\"\n",
                "audit.syslog.address:",
            ),
            (
                "transport = \"tcp\"\naddress = \"siem:0\"\n",
                "audit.syslog.address:",
            ),
            (
                "transport = \"tcp\"\naddress = \"2001:db8::1:514\"\n",
                "audit.syslog.address:",
            ),
            (
                "transport = \"tls\"\naddress = \":6514\"\n",
                "audit.syslog.address:",
            ),
            (
                "transport = \"unix\"\naddress = \"dev/log\"\n",
                "audit.syslog.address:",
            ),
            (
                "transport = \"udp\"\naddress = \"h:514\"\n",
                "audit.syslog.transport",
            ),
            ("address = \"h:514\"\n", "transport"),
            (
                "transport = \"tcp\"\naddress = \"h:514\"\nca_file = \"/etc/ca.pem\"\n",
                "audit.syslog.ca_file:",
            ),
            (
                "transport = \"tls\"\naddress = \"h:514\"\nca_file = \"ca.pem\"\n",
                "audit.syslog.ca_file:",
            ),
            (
                "transport = \"unix\"\naddress = \"/dev/log\"\nserver_name = \"h\"\n",
                "audit.syslog.server_name:",
            ),
            (
                "transport = \"tls\"\naddress = \"h:514\"\nserver_name = \"not a name\"\n",
                "audit.syslog.server_name:",
            ),
            (
                "transport = \"tcp\"\naddress = \"h:514\"\nport = 1\n",
                "port",
            ),
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains(key), "{bad} gave {err}");
        }
    }

    #[test]
    fn header_fields_and_limits_name_their_key() {
        let base = "transport = \"tcp\"\naddress = \"h:514\"\n";
        for (extra, key) in [
            ("app_name = \"bef froi\"\n", "audit.syslog.app_name:"),
            ("app_name = \"\"\n", "audit.syslog.app_name:"),
            ("hostname = \"a\\nb\"\n", "audit.syslog.hostname:"),
            ("facility = \"authpriv2\"\n", "audit.syslog.facility:"),
            ("poll_interval_ms = 0\n", "audit.syslog.poll_interval_ms:"),
            ("retry_max_secs = 0\n", "audit.syslog.retry_max_secs:"),
            ("timeout_secs = 0\n", "audit.syslog.timeout_secs:"),
            (
                "max_message_bytes = 100\n",
                "audit.syslog.max_message_bytes:",
            ),
            (
                "max_message_bytes = 2000000\n",
                "audit.syslog.max_message_bytes:",
            ),
        ] {
            let err = parse(&format!("{base}{extra}")).unwrap_err().to_string();
            assert!(err.starts_with(key), "{extra} gave {err}");
        }
        // A datagram must fit the socket: smaller limit for transport = "unix".
        let err =
            parse("transport = \"unix\"\naddress = \"/dev/log\"\nmax_message_bytes = 100000\n")
                .unwrap_err()
                .to_string();
        assert!(err.starts_with("audit.syslog.max_message_bytes:"), "{err}");
        parse("transport = \"tcp\"\naddress = \"h:514\"\nmax_message_bytes = 100000\n").unwrap();
        let c = parse(&format!(
            "{base}facility = \"local3\"\nhostname = \"node-1\"\n"
        ))
        .unwrap();
        let s = c.audit.syslog.unwrap();
        assert_eq!(s.facility_code().unwrap(), 19);
        assert_eq!(s.effective_hostname(), "node-1");
    }

    #[test]
    fn the_ca_file_must_hold_pem_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["siem.test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, cert.pem()).unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let config = |path: &Path| {
            parse(&format!(
                "transport = \"tls\"\naddress = \"siem.test:6514\"\nca_file = \"{}\"\n",
                path.display()
            ))
            .unwrap()
            .audit
            .syslog
            .unwrap()
        };
        config(&good).tls_client_config().unwrap();
        for path in [empty, dir.path().join("missing.pem")] {
            let err = config(&path).tls_client_config().unwrap_err().to_string();
            assert!(err.starts_with("audit.syslog.ca_file:"), "{err}");
        }
    }
}
