//! TLS with rustls and the *ring* provider, installed explicitly and alone (two providers in one
//! process make rustls refuse to pick). TLS 1.3 only by default; TLS 1.2 on request, and then
//! with ECDHE key exchange and AEAD ciphers only (ANSSI's recommendations).
//!
//! The certificate lives behind a resolver that can swap it: files are re-read on SIGHUP and
//! when they change on disk, so a renewed certificate is served without a restart and without
//! dropping open connections. A certificate that fails to load is refused and the old one kept.
//!
//! On first start without a configured certificate, a self-signed one is generated into
//! `<data_dir>/tls/` (key mode 0600) and its SHA-256 fingerprint printed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::crypto::ring::cipher_suite;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, SupportedProtocolVersion};
use sha2::{Digest, Sha256};

use crate::config::{Config, TlsMinVersion, check_private_file};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("certificate generation failed: {0}")]
    Generate(String),
}

fn file_error(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// The one crypto provider of the process: *ring*, restricted to AEAD suites.
pub fn crypto_provider() -> CryptoProvider {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = vec![
        cipher_suite::TLS13_AES_256_GCM_SHA384,
        cipher_suite::TLS13_AES_128_GCM_SHA256,
        cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    provider
}

/// Installs the process-wide provider. Called once at start; later calls are no-ops.
pub fn install_crypto_provider() {
    let _ = crypto_provider().install_default();
}

/// SHA-256 of the DER certificate, as colon-separated hex (what browsers display).
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    Sha256::digest(cert.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The certificate currently served, and where it comes from.
#[derive(Debug)]
pub struct CertStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    stamp: RwLock<Option<FileStamp>>,
    provider: Arc<CryptoProvider>,
}

/// What we last loaded, to notice a change on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    cert: (Option<SystemTime>, u64),
    key: (Option<SystemTime>, u64),
}

fn stamp_of(path: &Path) -> (Option<SystemTime>, u64) {
    std::fs::metadata(path)
        .map(|m| (m.modified().ok(), m.len()))
        .unwrap_or((None, 0))
}

fn load_pair(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    check_private_file(key_path).map_err(|e| file_error(key_path, e))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| file_error(cert_path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(cert_path, e))?;
    if chain.is_empty() {
        return Err(file_error(
            cert_path,
            "no certificate found in the PEM file",
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| file_error(key_path, e))?;
    CertifiedKey::from_der(chain, key, provider)
        .map_err(|e| file_error(key_path, format!("key does not fit the certificate: {e}")))
}

impl CertStore {
    pub fn load(cert_path: PathBuf, key_path: PathBuf) -> Result<Arc<Self>, TlsError> {
        let provider = Arc::new(crypto_provider());
        let stamp = FileStamp {
            cert: stamp_of(&cert_path),
            key: stamp_of(&key_path),
        };
        let pair = load_pair(&cert_path, &key_path, &provider)?;
        Ok(Arc::new(Self {
            cert_path,
            key_path,
            current: RwLock::new(Arc::new(pair)),
            stamp: RwLock::new(Some(stamp)),
            provider,
        }))
    }

    fn current(&self) -> Arc<CertifiedKey> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Fingerprint of the certificate being served.
    pub fn fingerprint(&self) -> String {
        self.current()
            .cert
            .first()
            .map(fingerprint)
            .unwrap_or_default()
    }

    /// Re-reads the files; on failure the old certificate stays.
    pub fn reload(&self) -> Result<String, TlsError> {
        let stamp = FileStamp {
            cert: stamp_of(&self.cert_path),
            key: stamp_of(&self.key_path),
        };
        let pair = load_pair(&self.cert_path, &self.key_path, &self.provider)?;
        let fp = pair.cert.first().map(fingerprint).unwrap_or_default();
        if let Ok(mut g) = self.current.write() {
            *g = Arc::new(pair);
        }
        if let Ok(mut s) = self.stamp.write() {
            *s = Some(stamp);
        }
        Ok(fp)
    }

    fn changed_on_disk(&self) -> bool {
        let now = FileStamp {
            cert: stamp_of(&self.cert_path),
            key: stamp_of(&self.key_path),
        };
        match self.stamp.read() {
            Ok(s) => s.as_ref() != Some(&now),
            Err(_) => true,
        }
    }

    /// Watches for SIGHUP and for changes of the files, reloading on either.
    pub fn spawn_reloader(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let store = Arc::clone(self);
        tokio::spawn(async move {
            let mut hangup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let by_signal = tokio::select! {
                    _ = ticker.tick() => false,
                    Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
                };
                if !by_signal && !store.changed_on_disk() {
                    continue;
                }
                match store.reload() {
                    Ok(fp) => {
                        tracing::info!(fingerprint = %fp, by_signal, "TLS certificate reloaded")
                    }
                    Err(e) => {
                        // Remember the broken files so the error is logged once, not every tick.
                        if let Ok(mut s) = store.stamp.write() {
                            *s = Some(FileStamp {
                                cert: stamp_of(&store.cert_path),
                                key: stamp_of(&store.key_path),
                            });
                        }
                        tracing::error!(error = %e, "TLS certificate reload refused; still serving the previous one");
                    }
                }
            }
        })
    }
}

#[derive(Debug)]
struct Resolver(Arc<CertStore>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current())
    }
}

pub fn server_config(
    store: &Arc<CertStore>,
    min_version: TlsMinVersion,
) -> Result<Arc<ServerConfig>, TlsError> {
    let versions: &[&'static SupportedProtocolVersion] = match min_version {
        TlsMinVersion::Tls13 => &[&rustls::version::TLS13],
        TlsMinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let mut config = ServerConfig::builder_with_provider(Arc::clone(&store.provider))
        .with_protocol_versions(versions)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Resolver(Arc::clone(store))));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What `ensure_certificate` did.
pub struct CertificateStatus {
    pub generated: bool,
    pub fingerprint: String,
    pub cert_path: PathBuf,
}

/// Generates a self-signed certificate when the config names none and none exists yet.
pub fn ensure_certificate(config: &Config) -> Result<CertificateStatus, TlsError> {
    let cert_path = config.tls_cert_path();
    let key_path = config.tls_key_path();
    let mut generated = false;
    if config.tls_is_self_managed() && !cert_path.exists() && !key_path.exists() {
        let mut names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        if let Some(host) = config
            .server
            .public_url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
            .and_then(|u| u.host_str().map(str::to_owned))
        {
            names.insert(0, host);
        }
        generate_self_signed(&cert_path, &key_path, names)?;
        generated = true;
    }
    let pem = std::fs::read(&cert_path).map_err(|e| file_error(&cert_path, e))?;
    let first = CertificateDer::pem_slice_iter(&pem)
        .next()
        .ok_or_else(|| file_error(&cert_path, "no certificate found in the PEM file"))?
        .map_err(|e| file_error(&cert_path, e))?;
    Ok(CertificateStatus {
        generated,
        fingerprint: fingerprint(&first),
        cert_path,
    })
}

/// Writes a fresh self-signed ECDSA P-256 certificate and key (0600).
pub fn generate_self_signed(
    cert_path: &Path,
    key_path: &Path,
    names: Vec<String>,
) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let generate = || -> Result<(rcgen::Certificate, rcgen::KeyPair), rcgen::Error> {
        let mut params = rcgen::CertificateParams::new(names)?;
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CommonName, "Beffroi self-signed certificate");
        params.distinguished_name = dn;
        // Valid from yesterday (clock skew) for 825 days, the longest browsers accept.
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(825);
        let key = rcgen::KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok((cert, key))
    };
    let (cert, key) = generate().map_err(|e| TlsError::Generate(e.to_string()))?;
    for path in [cert_path, key_path] {
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| file_error(dir, e))?;
        }
    }
    let write = |path: &Path, mode: u32, bytes: &[u8]| -> Result<(), TlsError> {
        // Write beside, then rename: a reader (the reloader) never sees half a file.
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| file_error(&tmp, e))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| file_error(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| file_error(path, e))
    };
    write(key_path, 0o600, key.serialize_pem().as_bytes())?;
    write(cert_path, 0o644, cert.pem().as_bytes())?;
    Ok(())
}
