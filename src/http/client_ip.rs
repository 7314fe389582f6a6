//! The client's address. It is the TCP peer, unless the peer is a configured trusted proxy, in
//! which case `X-Forwarded-For` is read from the right, skipping trusted proxies, and the first
//! address that is not one is the client. A header from anyone else is ignored: believing it
//! would let a client choose the address it is rate-limited and audited under.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

use crate::AppState;
use crate::http::error::AppError;

/// The TCP peer of the connection, inserted by the server for each request.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// The client address after trusted-proxy handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

pub fn resolve(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(header) = forwarded_for else {
        return peer;
    };
    let hops: Vec<IpAddr> = header
        .split(',')
        .map(str::trim)
        .filter_map(|s| {
            s.parse::<IpAddr>()
                .ok()
                .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        })
        .collect();
    hops.iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .or(hops.first())
        .copied()
        .unwrap_or(peer)
}

pub async fn resolve_client_ip(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<PeerAddr>()
        .map(|p| p.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let xff = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let forwarded = (!xff.is_empty()).then_some(xff.as_str());
    let ip = resolve(peer, forwarded, &state.config.server.trusted_proxies);
    request.extensions_mut().insert(ClientIp(ip));
    next.run(request).await
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ClientIp>()
            .copied()
            .ok_or_else(|| AppError::Internal("client address missing".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(
            resolve(ip("203.0.113.9"), Some("1.2.3.4"), &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            resolve(ip("10.0.0.5"), Some("1.2.3.4"), &trusted),
            ip("1.2.3.4")
        );
        // A client-supplied first hop cannot hide the real one appended by the proxy.
        assert_eq!(
            resolve(ip("10.0.0.5"), Some("6.6.6.6, 1.2.3.4, 10.0.0.7"), &trusted),
            ip("1.2.3.4")
        );
        assert_eq!(
            resolve(ip("10.0.0.5"), Some("garbage"), &trusted),
            ip("10.0.0.5")
        );
    }
}
