//! Loads the server-side session named by the `__Host-beffroi` cookie and the CSRF token that
//! goes with the request: the session's own, or for a visitor not signed in, a pre-session token
//! kept in the `__Host-beffroi-csrf` cookie (double submit; the `__Host-` prefix stops a sibling
//! subdomain from planting it). Both travel in request extensions, and are copied to the
//! response so that error pages rendered further out can show the right header.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;

use crate::AppState;
use crate::auth::session::{self, ActiveSession, SESSION_COOKIE};
use crate::http::cookies;
use crate::http::error::AppError;

/// Cookie holding the CSRF token of a visitor who is not signed in.
pub const PRE_SESSION_COOKIE: &str = "__Host-beffroi-csrf";

/// The session of this request, if any.
#[derive(Clone, Default)]
pub struct MaybeSession(pub Option<Arc<ActiveSession>>);

/// The CSRF token forms must carry on this request.
#[derive(Clone)]
pub struct CsrfToken(pub String);

fn is_token(v: &str) -> bool {
    v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())
}

pub async fn load_session(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let cookie = cookies::get(request.headers(), SESSION_COOKIE);
    let session = match &cookie {
        Some(token) => match session::load(
            &state.db,
            &SecretString::from(token.clone()),
            state.timeouts,
        )
        .await
        {
            Ok(found) => found.map(Arc::new),
            Err(e) => return AppError::from(e).into_response(),
        },
        None => None,
    };
    let stale_cookie = cookie.is_some() && session.is_none();
    let mut new_pre_session = None;
    let csrf = match &session {
        Some(s) => s.record.csrf_token.clone(),
        None => match cookies::get(request.headers(), PRE_SESSION_COOKIE).filter(|v| is_token(v)) {
            Some(token) => token,
            None => match session::random_token() {
                Ok(token) => {
                    new_pre_session = Some(token.clone());
                    token
                }
                Err(e) => return AppError::Internal(format!("no randomness: {e}")).into_response(),
            },
        },
    };
    let maybe = MaybeSession(session);
    let token = CsrfToken(csrf);
    request.extensions_mut().insert(maybe.clone());
    request.extensions_mut().insert(token.clone());

    let mut response = next.run(request).await;

    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    // Error responses become pages further out, which carry the language form: they get it too.
    let wants_pre_session = is_html || response.status().as_u16() >= 400;
    let headers = response.headers_mut();
    if stale_cookie {
        if let Some(v) = cookies::clear(SESSION_COOKIE) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    // The pre-session token is only worth setting on pages, which may hold a form; static files
    // stay cookie-free and cacheable.
    if let Some(token) = new_pre_session.filter(|_| wants_pre_session) {
        if let Some(v) = cookies::set(PRE_SESSION_COOKIE, &token) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    response.extensions_mut().insert(maybe);
    response.extensions_mut().insert(token);
    response
}
