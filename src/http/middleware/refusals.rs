//! Access-control refusals become audit entries here, in one place, so that no handler can
//! forget it: a 403 produced below this layer by `AppError::Forbidden` (a handler refused:
//! space, news, profile, metrics…) is recorded as `access.denied`, and one produced by the CSRF
//! check as `csrf.refused`, each with who asked (account if signed in), from which address, the
//! request id, the path as target and the reason. Refusals whose check already wrote its own
//! entry (`admin.denied`, the auditor pages) come as `AppError::ForbiddenRecorded` and carry no
//! marker, so nothing is recorded twice.
//!
//! Flooding: every entry is one refused request, and requests are bounded per address by the
//! rate limiter, which runs before this layer; a flood past it gets 429s, which are not recorded
//! here (`security.rate_limited` records the first trip per address and minute).
//!
//! This layer never records a request's body, query string or cookies: only the path.

use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::http::error::{AppError, Refusal};
use crate::security_events::{self, Actor};

/// Paths are recorded up to this many bytes: the target of an entry stays bounded whatever URL
/// a prober sends.
const MAX_PATH_BYTES: usize = 512;

fn bounded(path: &str) -> String {
    if path.len() <= MAX_PATH_BYTES {
        return path.to_owned();
    }
    let mut end = MAX_PATH_BYTES;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &path[..end])
}

pub async fn record_refusals(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let path = bounded(request.uri().path());
    let method = request.method().as_str().to_owned();
    // Who asked, as the session layer (just outside) found them, before any handler runs.
    let (mut parts, body) = request.into_parts();
    let Ok(actor) = Actor::from_request_parts(&mut parts, &state).await;
    let mut response = next.run(Request::from_parts(parts, body)).await;
    let Some(refusal) = response.extensions_mut().remove::<Refusal>() else {
        return response;
    };
    let recorded = match refusal {
        Refusal::Forbidden => {
            security_events::access_denied(&state.audit, &actor, path, &method, "not permitted")
                .await
        }
        Refusal::Csrf(reason) => {
            security_events::csrf_refused(&state.audit, &actor, path, &method, reason).await
        }
    };
    match recorded {
        Ok(()) => response,
        // An unrecorded refusal must not pass silently: fail like the admin gate does.
        Err(e) => AppError::from(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_paths_are_cut_on_a_character_boundary() {
        assert_eq!(bounded("/spaces/x"), "/spaces/x");
        let long = format!("/{}", "é".repeat(400));
        let cut = bounded(&long);
        assert!(cut.len() <= MAX_PATH_BYTES + '…'.len_utf8());
        assert!(cut.ends_with('…') && cut.starts_with("/é"));
    }
}
