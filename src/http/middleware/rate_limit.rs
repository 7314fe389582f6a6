//! Per-client-address rate limiting: a general limit on every request and a tighter one on
//! sign-in attempts. A trip answers 429 with `Retry-After` and is reported as a security event.
//!
//! The general limit is in memory, per node (governor): it guards the node's own CPU and pool,
//! and counting every request in the database would cost a write per request, the very load it
//! is there to prevent. With N nodes an address gets N times it, which is acceptable for a
//! flood guard. Sign-in attempts are different: an allowance multiplied by N is N times the
//! password guesses, so the authoritative count is in the database, shared by every node
//! (`auth::sign_in_limit`). An in-memory sign-in limiter stays in front of it, at twice the
//! allowance, so that a flood from one address costs at most that many database writes per
//! minute per node while never deciding before the shared count does. The per-account backoff
//! (`auth::backoff`) is in the database too.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::AppState;
use crate::auth::sign_in_limit;
use crate::config::SecurityConfig;
use crate::http::client_ip::ClientIp;
use crate::http::error::AppError;
use crate::security_events::{self, Actor};
use crate::telemetry::RequestId;

#[derive(Clone)]
pub struct RateLimiters {
    general: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    /// The per-node flood shield in front of the shared sign-in count.
    sign_in: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    /// `security.sign_in_attempts_per_minute`: the allowance of an address, cluster-wide.
    sign_in_allowance: i64,
    /// One security event per address per minute: a flood must not flood the journal too (and
    /// make journald drop other events). Every refusal is still counted in the metrics.
    reported: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl RateLimiters {
    pub fn new(config: &SecurityConfig) -> Self {
        let general = Quota::per_second(nonzero(config.requests_per_second))
            .allow_burst(nonzero(config.request_burst));
        // Twice the allowance: on one node the shared count always trips first (so its
        // Retry-After, the end of the window, is the one clients see), and a flood past it
        // still stops costing database writes.
        let sign_in = Quota::per_minute(nonzero(
            config.sign_in_attempts_per_minute.saturating_mul(2),
        ));
        Self {
            general: Arc::new(RateLimiter::keyed(general)),
            sign_in: Arc::new(RateLimiter::keyed(sign_in)),
            sign_in_allowance: i64::from(config.sign_in_attempts_per_minute),
            reported: Arc::new(RateLimiter::keyed(Quota::per_minute(NonZeroU32::MIN))),
        }
    }

    /// Forgets addresses whose allowance is full again, so memory stays bounded.
    pub fn shrink(&self) {
        self.general.retain_recent();
        self.sign_in.retain_recent();
        self.reported.retain_recent();
    }

    fn check(limiter: &DefaultKeyedRateLimiter<IpAddr>, ip: &IpAddr) -> Result<(), u64> {
        limiter.check_key(ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

/// The key an address is limited under: IPv4 addresses alone, IPv6 addresses by their /64,
/// since one client usually holds a whole /64 and could otherwise rotate through it. An
/// IPv4-mapped address (a dual-stack listener) is its IPv4 address: taken as IPv6, every IPv4
/// client would fall in the one /64 `::`, and share one allowance.
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        v4 @ IpAddr::V4(_) => v4,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::from(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

/// Requests that check a password: the sign-in form and the password change (it checks the
/// current password, so it would otherwise be a guessing oracle for a stolen session).
///
/// The single sign-on callback is not one of them. No password is checked there (the provider
/// checks it, and limits guessing itself), its `state` is single-use and bound to the browser
/// and is checked before any exchange with the provider, and every agent passes through it at
/// each sign-in: agents behind one NAT address arriving in the morning would exhaust one
/// address's allowance in minutes. The general limit covers floods of it.
const SIGN_IN_PATHS: &[(Method, &str)] = &[
    (Method::POST, "/login"),
    (Method::POST, crate::http::extract::PASSWORD_PAGE),
];

fn is_sign_in_attempt(request: &Request) -> bool {
    SIGN_IN_PATHS
        .iter()
        .any(|(method, path)| request.method() == method && request.uri().path() == *path)
}

/// Counts a sign-in attempt in the shared table; the number of seconds to wait when the
/// address has used up its allowance for the current window.
async fn shared_sign_in_check(state: &AppState, key: IpAddr) -> Result<Result<(), u64>, AppError> {
    let now = crate::db::now();
    let count = sign_in_limit::count_attempt(&state.db, key, now).await?;
    if count.attempts > state.limiters.sign_in_allowance {
        return Ok(Err(count.retry_after_secs(now)));
    }
    Ok(Ok(()))
}

pub async fn limit_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let ip = request
        .extensions()
        .get::<ClientIp>()
        .map(|c| c.0)
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let key = limit_key(ip);
    let mut verdict =
        RateLimiters::check(&state.limiters.general, &key).map_err(|s| ("general", s));
    if verdict.is_ok() && is_sign_in_attempt(&request) {
        verdict = RateLimiters::check(&state.limiters.sign_in, &key).map_err(|s| ("sign_in", s));
        if verdict.is_ok() {
            // Fails closed: a sign-in that cannot be counted is not let through (the generic
            // error page; the detail is logged).
            verdict = match shared_sign_in_check(&state, key).await {
                Ok(v) => v.map_err(|s| ("sign_in", s)),
                Err(e) => return e.into_response(),
            };
        }
    }
    match verdict {
        Ok(()) => next.run(request).await,
        Err((scope, retry_after_secs)) => {
            let retry_after_secs = retry_after_secs.max(1);
            let report = state.limiters.reported.check_key(&key).is_ok();
            let request_id = request
                .extensions()
                .get::<RequestId>()
                .map(|r| r.0.as_str());
            let actor = Actor::anonymous(&ip.to_string(), request_id);
            // The refusal stands even if it could not be recorded: a flood must not get
            // through because the database is busy.
            if let Err(e) = security_events::rate_limited(
                &state.audit,
                &state.metrics,
                &actor,
                scope,
                retry_after_secs,
                report,
            )
            .await
            {
                tracing::error!(target: "security", error = %e, scope, "rate-limit trip not audited");
            }
            AppError::TooManyRequests { retry_after_secs }.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_limited_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(limit_key(a), limit_key(b));
        assert_ne!(limit_key(a), limit_key(c));
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(limit_key(v4), v4);
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let other_mapped: IpAddr = "::ffff:192.0.2.8".parse().unwrap();
        assert_eq!(limit_key(mapped), v4);
        assert_ne!(limit_key(mapped), limit_key(other_mapped));
    }
}
