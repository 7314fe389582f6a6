//! Logging: JSON lines when stderr is not a terminal (journald keeps them structured), readable
//! lines on a terminal. Every request runs in a span carrying a fresh request id, which is also
//! returned in `X-Request-Id` and shown on 5xx pages so that support can find the log lines.
//!
//! Only the path is logged, never the query string (it may carry codes or tokens), nor headers
//! or bodies.

use std::io::IsTerminal;
use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. Safe to call more than once (later calls do nothing).
pub fn init(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_env("BEFFROI_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    // Security events are kept whatever the level: they are what an investigation needs.
    let filter = match "security=info".parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    };
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.try_init()
    };
}

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// This request's id, as a request extension: audit entries carry it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn new_request_id() -> String {
    let mut bytes = [0u8; 12];
    if getrandom::fill(&mut bytes).is_err() {
        return "unavailable".into();
    }
    hex::encode(bytes)
}

/// Gives the request an id (replacing any the client sent: ids in our logs are ours), runs it
/// inside a span, and logs its outcome.
pub async fn trace_request(mut request: Request, next: Next) -> Response {
    let id = new_request_id();
    if let Ok(value) = HeaderValue::from_str(&id) {
        request.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    request.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id, method = %request.method(),
        path = %request.uri().path());
    let start = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let elapsed_ms = start.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status >= 500 {
            tracing::error!(status, elapsed_ms, "request failed");
        } else {
            tracing::info!(status, elapsed_ms, "request answered");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}
