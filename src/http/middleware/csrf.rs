//! Cross-site request forgery defence on every state-changing request, in one place so that no
//! form can forget it:
//! 1. the `Origin` header (or, failing that, `Referer`) must be this site's own origin;
//! 2. the form's `csrf_token` field — in a URL-encoded or a multipart (upload) form — or an
//!    `X-CSRF-Token` header for other bodies must equal
//!    the token bound to the session, or to the pre-session cookie before sign-in.
//!
//! Either failure answers 403 and the handler never runs, so nothing is written but the
//! refusal's own audit entry (`csrf.refused`, by `middleware::refusals`).
//!
//! Exempt: the back-channel logout (a signed logout token authenticates it) and `/scim/v2`
//! (a bearer token authenticates it); neither relies on cookies.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::http::error::AppError;
use crate::http::middleware::session::CsrfToken;

pub const FORM_FIELD: &str = "csrf_token";
pub const HEADER: &str = "x-csrf-token";

/// The identity provider's back-channel logout: a signed logout token is its authentication.
const EXEMPT_PATHS: &[&str] = &[crate::auth::oidc::routes::BACKCHANNEL_PATH];

fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// The origin browsers must send: the configured public URL, or this request's own host.
fn expected_origin(state: &AppState, request: &Request) -> Option<String> {
    if let Some(public) = &state.public_origin {
        return Some(public.clone());
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(|a| a.as_str().to_owned()))?;
    Some(format!("https://{host}"))
}

fn origin_of(headers: &HeaderMap) -> Option<String> {
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        return Some(origin.to_owned());
    }
    let referer = headers.get(header::REFERER).and_then(|v| v.to_str().ok())?;
    let url = url::Url::parse(referer).ok()?;
    Some(url.origin().ascii_serialization())
}

pub async fn verify_csrf(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match check(&state, request).await {
        Ok(request) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

async fn check(state: &AppState, request: Request) -> Result<Request, AppError> {
    if is_safe(request.method()) {
        return Ok(request);
    }
    // Server-to-server endpoints authenticated by a signed token, not by a browser session.
    if EXEMPT_PATHS.contains(&request.uri().path()) {
        return Ok(request);
    }
    // SCIM (`/scim/v2` and below) is authenticated by a bearer token in the Authorization
    // header, which a browser never attaches on its own: a forged cross-site request carries
    // no credential there, so there is nothing for CSRF to protect, and the directory sends
    // no Origin header.
    if crate::scim::is_scim_path(request.uri().path()) {
        return Ok(request);
    }
    let expected = expected_origin(state, &request).ok_or(AppError::CsrfRejected("no host"))?;
    match origin_of(request.headers()) {
        Some(origin) if origin.eq_ignore_ascii_case(&expected) => {}
        Some(_) => return Err(AppError::CsrfRejected("foreign origin")),
        None => return Err(AppError::CsrfRejected("no Origin or Referer")),
    }
    let expected_token = request
        .extensions()
        .get::<CsrfToken>()
        .map(|t| t.0.clone())
        .ok_or(AppError::CsrfRejected("no token for this request"))?;

    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let multipart_boundary = crate::http::upload::boundary(
        request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    );
    let (parts, body) = request.into_parts();
    let (given, body) = if let Some(boundary) = multipart_boundary {
        // An upload form: read once, bounded by the upload limit, and handed on whole.
        let bytes = axum::body::to_bytes(body, state.config.server.max_upload_bytes)
            .await
            .map_err(|_| AppError::PayloadTooLarge)?;
        let form = crate::http::upload::parse(bytes.clone(), &boundary)
            .await
            .map_err(|_| AppError::CsrfRejected("malformed upload form"))?;
        (form.field(FORM_FIELD).map(str::to_owned), Body::from(bytes))
    } else if is_form {
        // The form body is read here once, bounded by the configured limit, and handed on.
        let bytes = axum::body::to_bytes(body, state.config.server.max_body_bytes)
            .await
            .map_err(|_| AppError::PayloadTooLarge)?;
        let token = url::form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == FORM_FIELD)
            .map(|(_, v)| v.into_owned());
        (token, Body::from(bytes))
    } else {
        let token = parts
            .headers
            .get(HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (token, body)
    };
    let Some(given) = given else {
        return Err(AppError::CsrfRejected("token missing"));
    };
    if !bool::from(given.as_bytes().ct_eq(expected_token.as_bytes())) {
        return Err(AppError::CsrfRejected("token mismatch"));
    }
    Ok(Request::from_parts(parts, body))
}
