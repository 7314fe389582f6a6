//! Every administration URL (`/admin` and below) is for the `admin` role, checked here in one
//! place so that no admin page can forget it — the pages check again themselves. A signed-in
//! account without the role gets a 403 and the refusal is recorded (`admin.denied`) before any
//! handler runs; a visitor who is not signed in goes on to the handler, which sends them to the
//! sign-in page.

use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AppState;
use crate::accounts::Role;
use crate::http::error::AppError;
use crate::http::middleware::session::MaybeSession;
use crate::security_events::{self, Actor};

/// Whether a path is an administration page.
pub fn is_admin_path(path: &str) -> bool {
    path == "/admin" || path.starts_with("/admin/")
}

pub async fn require_admin_role(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if !is_admin_path(request.uri().path()) {
        return next.run(request).await;
    }
    let session = request
        .extensions()
        .get::<MaybeSession>()
        .and_then(|m| m.0.clone());
    match session {
        Some(session) if !session.account.has_role(Role::Admin) => {
            let path = request.uri().path().to_owned();
            let (mut parts, _) = request.into_parts();
            let Ok(actor) = Actor::from_request_parts(&mut parts, &state).await;
            let recorded = security_events::record_alone(
                &state.audit,
                &actor,
                "admin.denied",
                None,
                "denied",
                json!({ "path": path, "reason": "not an administrator" }),
            )
            .await;
            match recorded {
                Ok(()) => AppError::ForbiddenRecorded.into_response(),
                Err(e) => AppError::from(e).into_response(),
            }
        }
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_paths() {
        for yes in ["/admin", "/admin/", "/admin/branding", "/admin/spaces/new"] {
            assert!(is_admin_path(yes), "{yes}");
        }
        for no in [
            "/",
            "/administration",
            "/adminx",
            "/audit",
            "/people/1/admin",
        ] {
            assert!(!is_admin_path(no), "{no}");
        }
    }
}
