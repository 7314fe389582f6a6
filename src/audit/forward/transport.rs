//! Connections to the collector: TCP, TLS (rustls on *ring*), and local datagram or stream
//! sockets. Streams carry octet-counted frames; a datagram carries one message.
//!
//! Every network wait is bounded by `audit.syslog.timeout_secs`: a collector that stops reading
//! costs a timeout and a reconnection, never a stuck forwarder. Nothing here retries; the
//! caller decides.

use std::path::PathBuf;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixDatagram, UnixStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::format::octet_counted;
use super::settings::{SyslogConfig, Transport};
use crate::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot connect to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("TLS handshake with {0} failed: {1}")]
    Handshake(String, std::io::Error),
    #[error("{0}: timed out")]
    Timeout(&'static str),
    #[error("sending failed: {0}")]
    Send(std::io::Error),
    #[error("the collector closed the connection")]
    Closed,
}

/// Where to connect, resolved from the config once.
#[derive(Clone)]
pub enum Endpoint {
    Tcp {
        host: String,
        port: u16,
    },
    Tls {
        host: String,
        port: u16,
        connector: TlsConnector,
        server_name: ServerName<'static>,
    },
    UnixDatagram(PathBuf),
    UnixStream(PathBuf),
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp { host, port } => write!(f, "tcp {host}:{port}"),
            Self::Tls { host, port, .. } => write!(f, "tls {host}:{port}"),
            Self::UnixDatagram(p) => write!(f, "unix {}", p.display()),
            Self::UnixStream(p) => write!(f, "unix-stream {}", p.display()),
        }
    }
}

impl Endpoint {
    /// Resolves the config; for TLS this reads `ca_file`.
    pub fn from_config(config: &SyslogConfig) -> Result<Self, ConfigError> {
        Ok(match config.transport {
            Transport::Tcp => {
                let target = config.host_port()?;
                Self::Tcp {
                    host: target.host,
                    port: target.port,
                }
            }
            Transport::Tls => {
                let target = config.host_port()?;
                Self::Tls {
                    host: target.host,
                    port: target.port,
                    connector: TlsConnector::from(config.tls_client_config()?),
                    server_name: config.tls_server_name()?,
                }
            }
            Transport::Unix => Self::UnixDatagram(PathBuf::from(&config.address)),
            Transport::UnixStream => Self::UnixStream(PathBuf::from(&config.address)),
        })
    }

    fn label(&self) -> String {
        format!("{self:?}")
    }

    /// Connects (and for TLS completes the handshake) within `timeout`.
    pub async fn connect(&self, timeout: Duration) -> Result<Link, LinkError> {
        let connect = async {
            match self {
                Self::Tcp { host, port } => {
                    let tcp = TcpStream::connect((host.as_str(), *port))
                        .await
                        .map_err(|e| LinkError::Connect(self.label(), e))?;
                    let _ = tcp.set_nodelay(true);
                    Ok(Link::Tcp(tcp))
                }
                Self::Tls {
                    host,
                    port,
                    connector,
                    server_name,
                } => {
                    let tcp = TcpStream::connect((host.as_str(), *port))
                        .await
                        .map_err(|e| LinkError::Connect(self.label(), e))?;
                    let _ = tcp.set_nodelay(true);
                    let tls = connector
                        .connect(server_name.clone(), tcp)
                        .await
                        .map_err(|e| LinkError::Handshake(self.label(), e))?;
                    Ok(Link::Tls(Box::new(tls)))
                }
                Self::UnixDatagram(path) => {
                    let socket =
                        UnixDatagram::unbound().map_err(|e| LinkError::Connect(self.label(), e))?;
                    socket
                        .connect(path)
                        .map_err(|e| LinkError::Connect(self.label(), e))?;
                    Ok(Link::UnixDatagram(socket))
                }
                Self::UnixStream(path) => {
                    let stream = UnixStream::connect(path)
                        .await
                        .map_err(|e| LinkError::Connect(self.label(), e))?;
                    Ok(Link::UnixStream(stream))
                }
            }
        };
        tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| LinkError::Timeout("connecting"))?
    }
}

/// An open connection to the collector.
pub enum Link {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    UnixStream(UnixStream),
    UnixDatagram(UnixDatagram),
}

impl Link {
    /// Sends `messages` in order: on a stream, all frames then a flush; on a datagram socket,
    /// one datagram each. `Ok` means the kernel (and for TLS, rustls) accepted every byte.
    pub async fn send(&mut self, messages: &[Vec<u8>], timeout: Duration) -> Result<(), LinkError> {
        let send = async {
            match self {
                Self::Tcp(s) => write_frames(s, messages).await,
                Self::Tls(s) => write_frames(s.as_mut(), messages).await,
                Self::UnixStream(s) => write_frames(s, messages).await,
                Self::UnixDatagram(s) => {
                    for message in messages {
                        s.send(message).await?;
                    }
                    Ok(())
                }
            }
        };
        tokio::time::timeout(timeout, send)
            .await
            .map_err(|_| LinkError::Timeout("sending"))?
            .map_err(LinkError::Send)
    }

    /// Whether the collector has not closed or reset the connection, looked at without waiting.
    /// A collector that dies with frames still unread in its socket resets the connection; the
    /// frames written before are then sent again rather than counted as delivered. A syslog
    /// collector sends nothing, so anything it does send is read and dropped. A datagram
    /// socket has no connection: its sends fail when nobody listens.
    pub async fn is_open(&mut self) -> bool {
        match self {
            Self::Tcp(s) => still_open(s).await,
            Self::Tls(s) => still_open(s.as_mut()).await,
            Self::UnixStream(s) => still_open(s).await,
            Self::UnixDatagram(_) => true,
        }
    }
}

async fn write_frames<W: AsyncWrite + Unpin>(
    w: &mut W,
    messages: &[Vec<u8>],
) -> std::io::Result<()> {
    let mut buffer = Vec::with_capacity(messages.iter().map(|m| m.len() + 8).sum());
    for message in messages {
        buffer.extend_from_slice(&octet_counted(message));
    }
    w.write_all(&buffer).await?;
    w.flush().await
}

async fn still_open<R: AsyncRead + Unpin>(r: &mut R) -> bool {
    let mut scratch = [0u8; 512];
    // A zero timeout polls the read once: pending means open and quiet.
    for _ in 0..64 {
        match tokio::time::timeout(Duration::ZERO, r.read(&mut scratch)).await {
            Err(_) => return true,
            Ok(Ok(0)) | Ok(Err(_)) => return false,
            Ok(Ok(_)) => continue,
        }
    }
    true
}
