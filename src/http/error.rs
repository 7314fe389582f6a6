//! The HTTP layer's one error type. A handler returns `AppError`; its response carries only a
//! status and an [`ErrorInfo`] extension, and the error-page middleware turns that into a page
//! in the site's layout and the visitor's language. 4xx pages say what was wrong; 5xx pages say
//! only that something failed, with the request id, while the detail goes to the log.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::session::SessionError;
use crate::db::DbError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// A refusal the access-control layer records (`access.denied`) on its way out.
    #[error("forbidden")]
    Forbidden,
    /// A refusal whose check already wrote its own audit entry (`admin.denied`, the auditor
    /// pages): the same 403 page, not recorded a second time.
    #[error("forbidden (recorded)")]
    ForbiddenRecorded,
    #[error("CSRF check failed: {0}")]
    CsrfRejected(&'static str),
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("identity provider unavailable")]
    IdpUnavailable,
    /// The blob store (S3) cannot be reached: a 503 saying so, the detail in the log.
    #[error("blob store unavailable: {0}")]
    StorageUnavailable(String),
    #[error("sign-in refused: {0}")]
    SignInRejected(&'static str),
    #[error("internal error: {0}")]
    Internal(String),
}

/// An access-control refusal not yet in the audit log, attached to the bare 403 response;
/// `middleware::refusals` takes it off and records it with the request's actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A handler refused (`AppError::Forbidden`).
    Forbidden,
    /// The CSRF check refused, for this reason.
    Csrf(&'static str),
}

/// What the error page needs to know, attached to the bare error response.
#[derive(Debug, Clone)]
pub struct ErrorInfo {
    /// Fluent id of the explanation shown to the visitor.
    pub message_id: &'static str,
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Forbidden | AppError::ForbiddenRecorded | AppError::CsrfRejected(_) => {
                StatusCode::FORBIDDEN
            }
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::IdpUnavailable | AppError::StorageUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::SignInRejected(_) => StatusCode::FORBIDDEN,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn message_id(&self) -> &'static str {
        match self {
            AppError::NotFound => "error-not-found",
            AppError::BadRequest(id) => id,
            AppError::Forbidden | AppError::ForbiddenRecorded => "error-forbidden",
            AppError::CsrfRejected(_) => "error-csrf",
            AppError::TooManyRequests { .. } => "error-too-many",
            AppError::PayloadTooLarge => "error-too-large",
            AppError::UnsupportedMediaType => "error-media-type",
            AppError::IdpUnavailable => "error-idp-unavailable",
            AppError::StorageUnavailable(_) => "error-storage-unavailable",
            AppError::SignInRejected(id) => id,
            AppError::Internal(_) => "error-internal",
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match &self {
            AppError::Internal(detail) => tracing::error!(error = %detail, "request failed"),
            AppError::StorageUnavailable(detail) => {
                tracing::error!(error = %detail, "blob store unavailable");
            }
            _ => {}
        }
        let mut response = self.status().into_response();
        // Refusals reach the server log through their audit entry (target `security`).
        match &self {
            AppError::Forbidden => {
                response.extensions_mut().insert(Refusal::Forbidden);
            }
            AppError::CsrfRejected(why) => {
                response.extensions_mut().insert(Refusal::Csrf(why));
            }
            _ => {}
        }
        if let AppError::TooManyRequests { retry_after_secs } = self {
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response.extensions_mut().insert(ErrorInfo {
            message_id: self.message_id(),
        });
        response
    }
}

impl From<DbError> for AppError {
    fn from(e: DbError) -> Self {
        AppError::Internal(e.to_string())
    }
}

impl From<crate::blobs::BlobError> for AppError {
    fn from(e: crate::blobs::BlobError) -> Self {
        match e {
            crate::blobs::BlobError::Unavailable(detail) => AppError::StorageUnavailable(detail),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        AppError::Internal(e.to_string())
    }
}

impl From<SessionError> for AppError {
    fn from(e: SessionError) -> Self {
        AppError::Internal(e.to_string())
    }
}

impl From<crate::auth::password::PasswordError> for AppError {
    fn from(e: crate::auth::password::PasswordError) -> Self {
        AppError::Internal(e.to_string())
    }
}

impl From<askama::Error> for AppError {
    fn from(e: askama::Error) -> Self {
        AppError::Internal(format!("template: {e}"))
    }
}
