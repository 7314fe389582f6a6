//! SCIM errors (RFC 7644 §3.12): every failure under `/scim/v2` is a JSON Error resource with the
//! HTTP status as a string and, where the RFC defines one, a `scimType`.
//!
//! Two paths lead here: handlers return [`ScimError`]; and [`json_errors`], a middleware just
//! inside the error-page layer, rewrites any other error response on a SCIM path (axum's 405,
//! an unknown endpoint's 404, the rate limiter's 429, a timeout or a panic) into the same form.
//! Both mark the response with [`ApiErrorBody`] so the error-page middleware leaves it alone:
//! a SCIM client must never receive HTML. 5xx details go to the log, never to the client.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AppState;
use crate::db::DbError;
use crate::http::middleware::error_pages::ApiErrorBody;

pub const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// The `scimType` values of RFC 7644 §3.12 (Table 9) this server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
}

impl ScimType {
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ScimError {
    pub status: StatusCode,
    pub scim_type: Option<ScimType>,
    /// Shown to the client: says what was wrong with the request, never internal detail.
    pub detail: String,
    /// Set on 401 (RFC 6750 §3).
    pub www_authenticate: Option<&'static str>,
}

impl ScimError {
    pub fn new(status: StatusCode, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
            www_authenticate: None,
        }
    }

    pub fn bad(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some(scim_type), detail)
    }

    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidFilter, detail)
    }

    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidValue, detail)
    }

    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidSyntax, detail)
    }

    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidPath, detail)
    }

    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::NoTarget, detail)
    }

    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::Mutability, detail)
    }

    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, Some(ScimType::Uniqueness), detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, None, detail)
    }

    /// A missing or wrong bearer token; `error` is the RFC 6750 §3.1 code, if any.
    pub fn unauthorized(invalid_token: bool) -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            None,
            "a valid bearer token is required",
        );
        e.www_authenticate = Some(if invalid_token {
            "Bearer realm=\"scim\", error=\"invalid_token\""
        } else {
            "Bearer realm=\"scim\""
        });
        e
    }

    /// The request raced another change to the same resource and kept losing.
    pub fn concurrent_change() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            None,
            "the resource changed while this request was applied; retry",
        )
    }

    /// Logs `detail` and tells the client only that the server failed.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "SCIM request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            "internal error; see the server log",
        )
    }

    /// The Error a bare status becomes when something outside the SCIM handlers answered.
    fn for_status(status: StatusCode) -> Self {
        let detail = match status.as_u16() {
            404 => "no such endpoint",
            405 => "method not allowed on this endpoint",
            413 => "request body too large",
            415 => "send application/scim+json",
            429 => "too many requests; retry later",
            400 => "bad request",
            401 => "a valid bearer token is required",
            403 => "forbidden",
            _ if status.is_server_error() => "the server could not answer; retry later",
            _ => status.canonical_reason().unwrap_or("error"),
        };
        Self::new(status, None, detail)
    }
}

impl From<DbError> for ScimError {
    fn from(e: DbError) -> Self {
        ScimError::internal(e)
    }
}

impl From<sqlx::Error> for ScimError {
    fn from(e: sqlx::Error) -> Self {
        ScimError::internal(e)
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "schemas": [ERROR_URN],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let (Some(t), Some(obj)) = (self.scim_type, body.as_object_mut()) {
            obj.insert("scimType".into(), json!(t.as_str()));
        }
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(super::MEDIA_TYPE),
        );
        if let Some(v) = self.www_authenticate {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(v));
        }
        response.extensions_mut().insert(ApiErrorBody);
        response
    }
}

/// Rewrites error responses on SCIM paths that no SCIM handler produced into SCIM Errors,
/// keeping `Allow` and `Retry-After`, and drops cookies: a SCIM client is not a browser, and
/// the pre-session cookie the session layer offers to visitors has no use there.
/// When SCIM is not configured, `/scim/v2` is like any unknown URL and this does nothing.
pub async fn json_errors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if state.scim.is_none() || !super::is_scim_path(request.uri().path()) {
        return next.run(request).await;
    }
    let mut response = next.run(request).await;
    response.headers_mut().remove(header::SET_COOKIE);
    let status = response.status();
    if status.as_u16() < 400 || response.extensions().get::<ApiErrorBody>().is_some() {
        return response;
    }
    let mut rewritten = ScimError::for_status(status).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(v) = response.headers().get(&name) {
            rewritten.headers_mut().insert(name, v.clone());
        }
    }
    rewritten
}
