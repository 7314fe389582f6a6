//! Per-client-address rate limiting with governor: a general limit on every request and a
//! tighter one on sign-in attempts. A trip answers 429 with `Retry-After` and is reported as a
//! security event. State is in memory per node; the per-account sign-in backoff, which matters
//! across nodes, is in the database (`auth::backoff`).

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
use crate::config::SecurityConfig;
use crate::http::client_ip::ClientIp;
use crate::http::error::AppError;
use crate::security_events::{self, Actor};
use crate::telemetry::RequestId;

#[derive(Clone)]
pub struct RateLimiters {
    general: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    sign_in: Arc<DefaultKeyedRateLimiter<IpAddr>>,
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
        let sign_in = Quota::per_minute(nonzero(config.sign_in_attempts_per_minute));
        Self {
            general: Arc::new(RateLimiter::keyed(general)),
            sign_in: Arc::new(RateLimiter::keyed(sign_in)),
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
/// since one client usually holds a whole /64 and could otherwise rotate through it.
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::from(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

/// Paths whose POST is a sign-in attempt.
const SIGN_IN_PATHS: &[&str] = &["/login"];

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
    if verdict.is_ok()
        && request.method() == Method::POST
        && SIGN_IN_PATHS.contains(&request.uri().path())
    {
        verdict = RateLimiters::check(&state.limiters.sign_in, &key).map_err(|s| ("sign_in", s));
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
                &state.db,
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
    }
}
