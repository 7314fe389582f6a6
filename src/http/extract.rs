//! Extractors that carry identity. `CurrentUser` rejects a visitor who is not signed in with a
//! redirect to the sign-in page (remembering where they were going), and sends an account whose
//! one-time password must be replaced to the password page first. `MaybeUser` never rejects.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};

use crate::auth::session::ActiveSession;
use crate::http::client_ip::ClientIp;
use crate::http::middleware::session::MaybeSession;
use crate::security_events::Actor;
use crate::telemetry::RequestId;

/// Where a signed-in account with a one-time password is sent.
pub const PASSWORD_PAGE: &str = "/account/password";

pub struct CurrentUser(pub Arc<ActiveSession>);

pub struct MaybeUser(pub Option<Arc<ActiveSession>>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeUser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(MaybeUser(
            parts
                .extensions
                .get::<MaybeSession>()
                .and_then(|m| m.0.clone()),
        ))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let session = parts
            .extensions
            .get::<MaybeSession>()
            .and_then(|m| m.0.clone());
        let Some(session) = session else {
            let target = parts
                .uri
                .path_and_query()
                .map(|pq| pq.as_str())
                .unwrap_or("/");
            let location = if target == "/" {
                "/login".to_owned()
            } else {
                format!(
                    "/login?next={}",
                    url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>()
                )
            };
            return Err(Redirect::to(&location).into_response());
        };
        if session.account.password_must_change && parts.uri.path() != PASSWORD_PAGE {
            return Err(Redirect::to(PASSWORD_PAGE).into_response());
        }
        Ok(CurrentUser(session))
    }
}

/// Who is acting, for the audit log: the signed-in account if any, the client's address and
/// the request id. Never rejects.
impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = parts.extensions.get::<ClientIp>().map(|c| c.0.to_string());
        let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone());
        let session = parts
            .extensions
            .get::<MaybeSession>()
            .and_then(|m| m.0.clone());
        Ok(Actor {
            account_id: session.as_ref().map(|s| s.account.id),
            name: session.as_ref().map(|s| s.account.display_name.clone()),
            ip,
            request_id,
        })
    }
}

/// Accepts a post-sign-in destination only if it is a path on this site: it must start with a
/// single `/`, and contain no backslash or control character, which browsers may treat as `//`
/// and so as another host (an open redirect).
pub fn safe_return_path(candidate: &str) -> Option<&str> {
    let ok = candidate.starts_with('/')
        && !candidate.starts_with("//")
        && !candidate.contains('\\')
        && !candidate.chars().any(char::is_control)
        && candidate.len() <= 2048;
    ok.then_some(candidate)
}

/// A URL-encoded form, decoded strictly: a body that is not valid UTF-8 after percent-decoding
/// is refused (400) rather than silently patched with replacement characters, and a wrong
/// content type or an oversized body get their own 415 and 413 pages.
pub struct Form<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for Form<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = crate::http::error::AppError;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        use crate::http::error::AppError;
        let is_form = request
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(AppError::UnsupportedMediaType);
        }
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|_| AppError::PayloadTooLarge)?;
        if !is_strict_utf8_form(&bytes) {
            return Err(AppError::BadRequest("error-bad-request"));
        }
        serde_urlencoded::from_bytes(&bytes)
            .map(Form)
            .map_err(|_| AppError::BadRequest("error-bad-request"))
    }
}

fn is_strict_utf8_form(body: &[u8]) -> bool {
    body.split(|b| *b == b'&').all(|pair| {
        let decoded: Vec<u8> = percent_encoding::percent_decode(pair).collect();
        std::str::from_utf8(&decoded).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::safe_return_path;

    #[test]
    fn only_local_paths_are_accepted() {
        assert_eq!(safe_return_path("/news?id=3"), Some("/news?id=3"));
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "/\tx",
            "",
            "evil",
        ] {
            assert_eq!(safe_return_path(bad), None, "{bad}");
        }
    }
}
