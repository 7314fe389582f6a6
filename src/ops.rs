//! Probes for supervisors and load balancers: `/healthz` says the process answers, `/readyz`
//! that it can reach its database and its blob store (a node that cannot should leave the
//! pool).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::AppState;

pub async fn healthz() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    if !state.db.ping().await {
        return (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response();
    }
    if let Err(e) = state.blobs.ping().await {
        // The detail (endpoint, status) is for the operator, not for whoever probes.
        tracing::warn!(error = %e, "readiness: blob store unreachable");
        return (StatusCode::SERVICE_UNAVAILABLE, "blob store unreachable\n").into_response();
    }
    (StatusCode::OK, "ready\n").into_response()
}
