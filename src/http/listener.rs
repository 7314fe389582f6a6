//! Accepting connections for the HTTPS listener and the plain-HTTP redirect listener, with a
//! bound on what a client holding sockets may cost. Each listener serves at most
//! `server.max_connections` connections at once, and one client address (one /64 for IPv6) at
//! most `server.max_connections_per_ip`; beyond either, a new connection is closed at once,
//! before any TLS work. A client gets `server.tls_handshake_timeout_secs` to finish its
//! handshake and `server.header_read_timeout_secs` to send a request's headers (HTTP/1.1 by
//! hyper; HTTP/2 by `http::h2_headers`, which watches for header blocks left open); a
//! connection on which nothing was read or written for `server.idle_timeout_secs` is closed.
//! HTTP/2 is configured explicitly rather than on hyper's defaults, which may change: streams,
//! header lists, frames and reset streams are capped, and the server sends no pings.
//!
//! This module never reads or answers a request itself: it hands connections to hyper and the
//! router, or closes them.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::config::ServerConfig;
use crate::http::client_ip::PeerAddr;
use crate::http::h2_headers::{self, FrameScanner};
use crate::http::metrics::Metrics;

/// Largest HTTP/1.1 read buffer: the request line and headers must fit in it.
const MAX_HTTP1_BUFFER: usize = 64 * 1024;
/// Most header fields in one HTTP/1.1 request.
const MAX_HTTP1_HEADERS: usize = 100;
/// Streams one HTTP/2 connection may have open at once.
const MAX_HTTP2_STREAMS: u32 = 100;
/// Largest decoded header list of one HTTP/2 request (the size of the HTTP/1.1 limit). h2 also
/// derives from it, and from the frame size, how many CONTINUATION frames one block may take
/// (RUSTSEC-2024-0332, the CONTINUATION flood): here 5.
const MAX_HTTP2_HEADER_LIST: u32 = 64 * 1024;
/// Largest frame the client may send: the protocol's minimum (RFC 9113 §4.2), so that a
/// header block is many small frames rather than a few large ones.
const MAX_HTTP2_FRAME: u32 = 16 * 1024;
/// Streams the client may open and reset before the server has even accepted them, before the
/// connection is closed (the "Rapid Reset" attack, CVE-2023-44487; h2's default).
const MAX_HTTP2_PENDING_ACCEPT_RESETS: usize = 20;
/// Streams the server may reset because of the client's errors before the connection is
/// closed (RUSTSEC-2024-0003): a browser makes none; a client making hundreds is abusive.
const MAX_HTTP2_LOCAL_ERROR_RESETS: usize = 256;
/// A refused connection is logged at most this often, so a flood does not flood the journal.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(60);

/// The transport limits of one listener, from `[server]`.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub tls_handshake_timeout: Duration,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    /// Reverse proxies carry many agents on one address: they are exempt from the per-address cap.
    pub trusted_proxies: Vec<IpNet>,
}

impl Limits {
    pub fn from_config(server: &ServerConfig) -> Self {
        Self {
            max_connections: server.max_connections,
            max_connections_per_ip: server.max_connections_per_ip,
            tls_handshake_timeout: Duration::from_secs(server.tls_handshake_timeout_secs),
            header_read_timeout: Duration::from_secs(server.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(server.idle_timeout_secs),
            trusted_proxies: server.trusted_proxies.clone(),
        }
    }
}

/// What a connection arrives through.
#[derive(Clone)]
pub enum Transport {
    Tls(TlsAcceptor),
    /// Plain HTTP/1.1, for the redirect listener only.
    Plain,
}

impl Transport {
    /// The listener's label in the metrics.
    fn label(&self) -> &'static str {
        match self {
            Transport::Tls(_) => "https",
            Transport::Plain => "http",
        }
    }
}

/// Accepts connections until `shutdown` turns true, then gives open ones `grace` to finish.
pub async fn accept_loop(
    listener: TcpListener,
    transport: Transport,
    router: Router,
    limits: Limits,
    metrics: Metrics,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) {
    let gate = Arc::new(Gate::new(&limits, metrics.clone(), transport.label()));
    let limits = Arc::new(limits);
    let graceful = GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Usually EMFILE: back off rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = stop_requested(&mut shutdown) => break,
        };
        // Closed before any TLS work: a refused connection costs an accept and a close.
        let Some(admission) = gate.admit(peer.ip()) else {
            drop(tcp);
            continue;
        };
        let (transport, router, limits) = (transport.clone(), router.clone(), limits.clone());
        let metrics = metrics.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _admission = admission;
            serve_one(tcp, peer, transport, router, &limits, &metrics, watcher).await;
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(grace) => tracing::warn!("grace period over; closing remaining connections"),
    }
}

async fn stop_requested(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn serve_one(
    tcp: TcpStream,
    peer: SocketAddr,
    transport: Transport,
    router: Router,
    limits: &Limits,
    metrics: &Metrics,
    watcher: Watcher,
) {
    match transport {
        Transport::Plain => serve_http(tcp, peer, router, limits, metrics, false, watcher).await,
        Transport::Tls(acceptor) => {
            // A client that never finishes its handshake must not hold a slot for long.
            let tls = match tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(tcp))
                .await
            {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    metrics.count_tls_handshake_failure("error");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    metrics.count_tls_handshake_failure("timeout");
                    return;
                }
            };
            // ALPN decides the protocol (RFC 9113 §3.2): no sniffing of a preface that a slow
            // client could trickle in.
            let http2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
            serve_http(tls, peer, router, limits, metrics, http2, watcher).await;
        }
    }
}

async fn serve_http<I>(
    io: I,
    peer: SocketAddr,
    router: Router,
    limits: &Limits,
    metrics: &Metrics,
    http2: bool,
    watcher: Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    // HTTP/2 only: HTTP/1.1 has hyper's header_read_timeout. Until the first request's
    // headers are in, the connection itself counts as an open header block.
    let (header_blocks, mut open_block) = if http2 {
        let started = Instant::now();
        let (tx, rx) = watch::channel(Some(started));
        (Some((FrameScanner::new(started), tx)), Some(rx))
    } else {
        (None, None)
    };
    let io = TokioIo::new(Watched {
        inner: io,
        activity: activity.clone(),
        header_blocks,
    });
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(PeerAddr(peer));
        router.clone().oneshot(request)
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HTTP1_BUFFER)
        .max_headers(MAX_HTTP1_HEADERS);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_HTTP2_STREAMS)
        .max_header_list_size(MAX_HTTP2_HEADER_LIST)
        .max_frame_size(MAX_HTTP2_FRAME)
        .max_pending_accept_reset_streams(MAX_HTTP2_PENDING_ACCEPT_RESETS)
        .max_local_error_reset_streams(MAX_HTTP2_LOCAL_ERROR_RESETS)
        // No keep-alive pings: they would count as activity and keep an idle connection open.
        .keep_alive_interval(None);
    let builder = if http2 {
        builder.http2_only()
    } else {
        builder.http1_only()
    };
    let connection = watcher.watch(
        builder
            .serve_connection_with_upgrades(io, service)
            .into_owned(),
    );
    tokio::select! {
        result = connection => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        }
        () = activity.idle_for(limits.idle_timeout) => {
            tracing::debug!(%peer, "idle connection closed");
        }
        () = header_deadline(open_block.as_mut(), limits.header_read_timeout, metrics) => {
            // Dropped without a GOAWAY: the client is not sending frames the server could
            // answer, and a polite close would wait on it.
            tracing::debug!(%peer, "HTTP/2 header block left open too long; connection closed");
        }
    }
}

/// Resolves when an HTTP/2 header block has been open for `limit`, counted in the metrics
/// before the connection is dropped; never for HTTP/1.1.
async fn header_deadline(
    open_block: Option<&mut watch::Receiver<Option<Instant>>>,
    limit: Duration,
    metrics: &Metrics,
) {
    match open_block {
        Some(rx) => {
            h2_headers::block_open_for(rx, limit).await;
            metrics.count_http2_header_timeout();
        }
        None => std::future::pending().await,
    }
}

/// Counts connections per listener and per client address.
struct Gate {
    global: Arc<Semaphore>,
    per_client: Mutex<HashMap<IpAddr, usize>>,
    max_per_client: usize,
    exempt: Vec<IpNet>,
    last_refusal_logged: Mutex<Option<Instant>>,
    metrics: Metrics,
    /// The listener's label in the metrics.
    listener: &'static str,
}

/// A connection's place in the counts, given back when it is dropped.
struct Admission {
    _global: OwnedSemaphorePermit,
    client: Option<IpAddr>,
    gate: Arc<Gate>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.gate
            .metrics
            .track_connection(self.gate.listener, false);
        if let Some(client) = self.client {
            let mut counts = self.gate.lock_counts();
            if let Some(n) = counts.get_mut(&client) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    counts.remove(&client);
                }
            }
        }
    }
}

/// The address a client is counted under: IPv4 as is (IPv4-mapped IPv6 unwrapped), IPv6 by
/// its /64, since one host commonly holds a whole /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & (u128::MAX << 64);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

impl Gate {
    fn new(limits: &Limits, metrics: Metrics, listener: &'static str) -> Self {
        Self {
            global: Arc::new(Semaphore::new(limits.max_connections)),
            per_client: Mutex::new(HashMap::new()),
            max_per_client: limits.max_connections_per_ip,
            exempt: limits.trusted_proxies.clone(),
            last_refusal_logged: Mutex::new(None),
            metrics,
            listener,
        }
    }

    fn lock_counts(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        // A poisoned lock means a panic mid-update of a counter; the counts are still usable.
        match self.per_client.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Admission> {
        let Ok(global) = Arc::clone(&self.global).try_acquire_owned() else {
            self.log_refusal(peer, "server.max_connections");
            return None;
        };
        let peer = peer.to_canonical();
        if self.exempt.iter().any(|net| net.contains(&peer)) {
            self.metrics.track_connection(self.listener, true);
            return Some(Admission {
                _global: global,
                client: None,
                gate: Arc::clone(self),
            });
        }
        let key = client_key(peer);
        {
            let mut counts = self.lock_counts();
            let n = counts.entry(key).or_insert(0);
            if *n >= self.max_per_client {
                drop(counts);
                self.log_refusal(peer, "server.max_connections_per_ip");
                return None;
            }
            *n += 1;
        }
        self.metrics.track_connection(self.listener, true);
        Some(Admission {
            _global: global,
            client: Some(key),
            gate: Arc::clone(self),
        })
    }

    fn log_refusal(&self, peer: IpAddr, limit: &'static str) {
        self.metrics.count_connection_refused(self.listener, limit);
        let mut last = match self.last_refusal_logged.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let now = Instant::now();
        if last.is_none_or(|at| now.duration_since(at) >= REFUSAL_LOG_EVERY) {
            *last = Some(now);
            tracing::warn!(%peer, limit,
                "connection refused: limit reached (further refusals are not logged for a minute)");
        }
    }
}

/// When a connection last read or wrote a byte.
#[derive(Clone)]
struct Activity {
    start: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once nothing has moved for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + limit;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// A stream that records its reads and writes in an [`Activity`], and for HTTP/2 follows the
/// client's frames to publish since when a header block has been open.
struct Watched<T> {
    inner: T,
    activity: Activity,
    header_blocks: Option<(FrameScanner, watch::Sender<Option<Instant>>)>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
            if let Some((scanner, open_since)) = &mut self.header_blocks {
                scanner.feed(&buf.filled()[before..], Instant::now());
                let now_open = scanner.open_since();
                open_since.send_if_modified(|published| {
                    let changed = *published != now_open;
                    *published = now_open;
                    changed
                });
            }
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize, per_ip: usize, proxies: &[&str]) -> Limits {
        Limits {
            max_connections: max,
            max_connections_per_ip: per_ip,
            tls_handshake_timeout: Duration::from_secs(1),
            header_read_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            trusted_proxies: proxies.iter().map(|p| p.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn per_client_cap_counts_an_ipv6_64_as_one_client_and_frees_slots() {
        let gate = Arc::new(Gate::new(&limits(10, 2, &[]), Metrics::default(), "https"));
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2::ffff".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let first = gate.admit(a).unwrap();
        let _second = gate.admit(b).unwrap();
        assert!(gate.admit(a).is_none(), "a third from the same /64");
        assert!(gate.admit(other).is_some(), "another /64 is another client");
        drop(first);
        assert!(
            gate.admit(b).is_some(),
            "a closed connection frees its slot"
        );
    }

    #[test]
    fn global_cap_holds_and_trusted_proxies_skip_only_the_per_client_cap() {
        let gate = Arc::new(Gate::new(
            &limits(4, 1, &["10.0.0.10/32"]),
            Metrics::default(),
            "https",
        ));
        let proxy: IpAddr = "10.0.0.10".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let plain: IpAddr = "192.0.2.1".parse().unwrap();
        let mut held = vec![gate.admit(proxy).unwrap(), gate.admit(proxy).unwrap()];
        let _one = gate.admit(mapped).unwrap();
        // Three of four slots taken: this refusal is the per-client cap's.
        assert!(
            gate.admit(plain).is_none(),
            "IPv4-mapped is the same client"
        );
        held.push(gate.admit(proxy).unwrap());
        assert!(
            gate.admit(proxy).is_none(),
            "the global cap binds proxies too"
        );
        drop(held);
        assert!(gate.admit(proxy).is_some());
        assert!(gate.lock_counts().get(&plain).is_some_and(|n| *n == 1));
        // The refusals and the open connections are in the metrics.
        let text = gate.metrics.render((0, 0));
        assert!(
            text.contains(
                "beffroi_connections_refused_total{listener=\"https\",limit=\"server.max_connections_per_ip\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "beffroi_connections_refused_total{listener=\"https\",limit=\"server.max_connections\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("beffroi_connections_open{listener=\"https\"} 1"),
            "only the mapped client's connection is still open (the proxy's was dropped): {text}"
        );
    }
}
