//! Prometheus metrics, written by hand in the text exposition format: requests by route, method
//! and status, a latency histogram per route, the database pool, sign-in failures, rate-limit
//! trips, connections (open, refused by a cap, failed TLS handshakes, HTTP/2 header timeouts),
//! the forwarding of the audit log to a SIEM, and the mail outbox (its gauges are read from the
//! database at each scrape, as every node shares it). Route labels come from the router's matched path, never
//! from the raw URL, so label cardinality stays bounded whatever clients request.
//!
//! `/metrics` is served only to configured addresses or holders of the bearer token.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::http::client_ip::ClientIp;
use crate::http::error::AppError;

const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    total: u64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    sign_in_failures: BTreeMap<&'static str, u64>,
    rate_limited: BTreeMap<&'static str, u64>,
    /// By listener and by the limit that refused them.
    connections_refused: BTreeMap<(&'static str, &'static str), u64>,
    /// By listener.
    connections_open: BTreeMap<&'static str, u64>,
    /// By reason: `error` (a malformed or refused handshake) or `timeout`.
    tls_handshake_failures: BTreeMap<&'static str, u64>,
    /// HTTP/2 connections closed because a header block stayed open too long.
    http2_header_timeouts: u64,
    audit_forward: AuditForwardCounters,
    mail_sent: u64,
    mail_failures: BTreeMap<&'static str, u64>,
}

/// Forwarding of the audit log to a SIEM; rendered only when forwarding runs.
#[derive(Default)]
struct AuditForwardCounters {
    active: bool,
    forwarded: u64,
    failures: u64,
    backlog: u64,
}

#[derive(Clone, Default)]
pub struct Metrics {
    inner: Arc<Mutex<Inner>>,
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        // A poisoned lock only means another thread panicked mid-update of a counter; the
        // counters are still usable.
        let mut guard = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    pub fn observe_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.with(|m| {
            *m.requests
                .entry((route.to_owned(), method.to_owned(), status))
                .or_default() += 1;
            let h = m
                .latency
                .entry(route.to_owned())
                .or_insert_with(|| Histogram {
                    counts: vec![0; BUCKETS.len()],
                    ..Histogram::default()
                });
            for (i, bound) in BUCKETS.iter().enumerate() {
                if seconds <= *bound {
                    if let Some(c) = h.counts.get_mut(i) {
                        *c += 1;
                    }
                }
            }
            h.sum += seconds;
            h.total += 1;
        });
    }

    pub fn count_sign_in_failure(&self, reason: &'static str) {
        self.with(|m| *m.sign_in_failures.entry(reason).or_default() += 1);
    }

    pub fn count_rate_limited(&self, scope: &'static str) {
        self.with(|m| *m.rate_limited.entry(scope).or_default() += 1);
    }

    /// A connection closed at once because `limit` (its configuration key) was reached.
    pub fn count_connection_refused(&self, listener: &'static str, limit: &'static str) {
        self.with(|m| *m.connections_refused.entry((listener, limit)).or_default() += 1);
    }

    /// A connection admitted (`opened`) or closed.
    pub fn track_connection(&self, listener: &'static str, opened: bool) {
        self.with(|m| {
            let open = m.connections_open.entry(listener).or_default();
            *open = if opened {
                open.saturating_add(1)
            } else {
                open.saturating_sub(1)
            };
        });
    }

    pub fn count_tls_handshake_failure(&self, reason: &'static str) {
        self.with(|m| *m.tls_handshake_failures.entry(reason).or_default() += 1);
    }

    pub fn count_http2_header_timeout(&self) {
        self.with(|m| m.http2_header_timeouts += 1);
    }

    /// Entries the SIEM collector is now known to have.
    pub fn count_audit_forwarded(&self, entries: u64) {
        self.with(|m| {
            m.audit_forward.active = true;
            m.audit_forward.forwarded += entries;
        });
    }

    /// A failed attempt to reach the collector or read the log.
    pub fn count_audit_forward_failure(&self) {
        self.with(|m| {
            m.audit_forward.active = true;
            m.audit_forward.failures += 1;
        });
    }

    /// Entries committed but not yet delivered to the collector.
    pub fn set_audit_forward_backlog(&self, entries: u64) {
        self.with(|m| {
            m.audit_forward.active = true;
            m.audit_forward.backlog = entries;
        });
    }

    /// A message the relay accepted (this node).
    pub fn count_mail_sent(&self) {
        self.with(|m| m.mail_sent += 1);
    }

    /// A failed attempt to hand a message to the relay, by kind (`connection`, `tls`, …).
    pub fn count_mail_failure(&self, kind: &'static str) {
        self.with(|m| *m.mail_failures.entry(kind).or_default() += 1);
    }

    /// The exposition text.
    pub fn render(&self, pool: (u32, usize)) -> String {
        let mut out = String::new();
        self.with(|m| {
            let _ = writeln!(out, "# HELP beffroi_http_requests_total HTTP requests answered.");
            let _ = writeln!(out, "# TYPE beffroi_http_requests_total counter");
            for ((route, method, status), n) in &m.requests {
                let _ = writeln!(
                    out,
                    "beffroi_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                    escape(route),
                    escape(method)
                );
            }
            let _ = writeln!(out, "# HELP beffroi_http_request_duration_seconds Time to answer.");
            let _ = writeln!(out, "# TYPE beffroi_http_request_duration_seconds histogram");
            for (route, h) in &m.latency {
                let route = escape(route);
                for (bound, c) in BUCKETS.iter().zip(&h.counts) {
                    let _ = writeln!(
                        out,
                        "beffroi_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {c}"
                    );
                }
                let _ = writeln!(
                    out,
                    "beffroi_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                    h.total
                );
                let _ = writeln!(out, "beffroi_http_request_duration_seconds_sum{{route=\"{route}\"}} {}", h.sum);
                let _ = writeln!(out, "beffroi_http_request_duration_seconds_count{{route=\"{route}\"}} {}", h.total);
            }
            let _ = writeln!(out, "# HELP beffroi_sign_in_failures_total Refused sign-ins by reason.");
            let _ = writeln!(out, "# TYPE beffroi_sign_in_failures_total counter");
            for (reason, n) in &m.sign_in_failures {
                let _ = writeln!(out, "beffroi_sign_in_failures_total{{reason=\"{reason}\"}} {n}");
            }
            let _ = writeln!(out, "# HELP beffroi_rate_limited_total Requests refused by a rate limit.");
            let _ = writeln!(out, "# TYPE beffroi_rate_limited_total counter");
            for (scope, n) in &m.rate_limited {
                let _ = writeln!(out, "beffroi_rate_limited_total{{scope=\"{scope}\"}} {n}");
            }
            let _ = writeln!(out, "# HELP beffroi_connections_refused_total Connections closed on arrival because a limit was reached.");
            let _ = writeln!(out, "# TYPE beffroi_connections_refused_total counter");
            for ((listener, limit), n) in &m.connections_refused {
                let _ = writeln!(out, "beffroi_connections_refused_total{{listener=\"{listener}\",limit=\"{limit}\"}} {n}");
            }
            let _ = writeln!(out, "# HELP beffroi_connections_open Connections open now.");
            let _ = writeln!(out, "# TYPE beffroi_connections_open gauge");
            for (listener, n) in &m.connections_open {
                let _ = writeln!(out, "beffroi_connections_open{{listener=\"{listener}\"}} {n}");
            }
            let _ = writeln!(out, "# HELP beffroi_tls_handshake_failures_total TLS handshakes that failed or did not finish in time.");
            let _ = writeln!(out, "# TYPE beffroi_tls_handshake_failures_total counter");
            for (reason, n) in &m.tls_handshake_failures {
                let _ = writeln!(out, "beffroi_tls_handshake_failures_total{{reason=\"{reason}\"}} {n}");
            }
            let _ = writeln!(out, "# HELP beffroi_http2_header_timeouts_total HTTP/2 connections closed because a request's headers did not arrive within server.header_read_timeout_secs.");
            let _ = writeln!(out, "# TYPE beffroi_http2_header_timeouts_total counter");
            let _ = writeln!(out, "beffroi_http2_header_timeouts_total {}", m.http2_header_timeouts);
            let f = &m.audit_forward;
            if f.active {
                let _ = writeln!(out, "# HELP beffroi_audit_forwarded_total Audit entries delivered to the SIEM collector.");
                let _ = writeln!(out, "# TYPE beffroi_audit_forwarded_total counter");
                let _ = writeln!(out, "beffroi_audit_forwarded_total {}", f.forwarded);
                let _ = writeln!(out, "# HELP beffroi_audit_forward_failures_total Failed attempts to forward audit entries.");
                let _ = writeln!(out, "# TYPE beffroi_audit_forward_failures_total counter");
                let _ = writeln!(out, "beffroi_audit_forward_failures_total {}", f.failures);
                let _ = writeln!(out, "# HELP beffroi_audit_forward_backlog Audit entries not yet delivered to the SIEM collector.");
                let _ = writeln!(out, "# TYPE beffroi_audit_forward_backlog gauge");
                let _ = writeln!(out, "beffroi_audit_forward_backlog {}", f.backlog);
            }
            let _ = writeln!(out, "# HELP beffroi_mail_sent_total E-mails accepted by the relay (this node).");
            let _ = writeln!(out, "# TYPE beffroi_mail_sent_total counter");
            let _ = writeln!(out, "beffroi_mail_sent_total {}", m.mail_sent);
            let _ = writeln!(out, "# HELP beffroi_mail_send_failures_total Failed attempts to hand an e-mail to the relay, by kind (this node).");
            let _ = writeln!(out, "# TYPE beffroi_mail_send_failures_total counter");
            for (kind, n) in &m.mail_failures {
                let _ = writeln!(out, "beffroi_mail_send_failures_total{{kind=\"{kind}\"}} {n}");
            }
        });
        let (size, idle) = pool;
        let _ = writeln!(
            out,
            "# HELP beffroi_db_pool_connections Database connections open."
        );
        let _ = writeln!(out, "# TYPE beffroi_db_pool_connections gauge");
        let _ = writeln!(out, "beffroi_db_pool_connections {size}");
        let _ = writeln!(
            out,
            "# HELP beffroi_db_pool_idle_connections Database connections idle."
        );
        let _ = writeln!(out, "# TYPE beffroi_db_pool_idle_connections gauge");
        let _ = writeln!(out, "beffroi_db_pool_idle_connections {idle}");
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Records every answered request under its route pattern.
pub async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let start = Instant::now();
    let response = next.run(request).await;
    state.metrics.observe_request(
        &route,
        &method,
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}

/// `GET /metrics`.
pub async fn metrics_page(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let allowed_by_address = state
        .config
        .metrics
        .allow_from
        .iter()
        .any(|net| net.contains(&ip));
    let allowed_by_token = match (&state.metrics_token, headers.get(header::AUTHORIZATION)) {
        (Some(expected), Some(given)) => given
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| bool::from(t.as_bytes().ct_eq(expected.expose_secret().as_bytes()))),
        _ => false,
    };
    if !(allowed_by_address || allowed_by_token) {
        return Err(AppError::Forbidden);
    }
    let mut body = state.metrics.render(state.db.pool_stats());
    // The outbox is shared by every node: its gauges come from the database, not this process.
    match crate::mail::outbox::counts(&state.db).await {
        Ok((pending, failed)) => {
            let _ = writeln!(
                body,
                "# HELP beffroi_mail_outbox_messages E-mails in the outbox: pending (waiting or \
                 being retried) and failed (given up after the last attempt)."
            );
            let _ = writeln!(body, "# TYPE beffroi_mail_outbox_messages gauge");
            let _ = writeln!(
                body,
                "beffroi_mail_outbox_messages{{status=\"pending\"}} {pending}"
            );
            let _ = writeln!(
                body,
                "beffroi_mail_outbox_messages{{status=\"failed\"}} {failed}"
            );
        }
        Err(e) => tracing::warn!(error = %e, "cannot count the mail outbox for /metrics"),
    }
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response())
}
