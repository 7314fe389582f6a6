//! Authentication of the provisioning client: `Authorization: Bearer <token>` (RFC 6750 §2.1)
//! compared in constant time with the token read from `scim.token_file` at start.
//!
//! The [`Scim`] extractor runs first in every SCIM handler, so nothing is read from the
//! database before the token checks. A refusal is a 401 SCIM Error with `WWW-Authenticate` and
//! one security event; the token given is never logged. When SCIM is not configured the
//! extractor answers the site's ordinary 404: the endpoint does not exist.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ScimSettings;
use super::error::ScimError;
use crate::AppState;
use crate::http::client_ip::ClientIp;
use crate::http::error::AppError;
use crate::security_events::{self, Actor};
use crate::telemetry::RequestId;

/// An authenticated SCIM request.
pub struct Scim {
    pub settings: Arc<ScimSettings>,
    /// Absolute URL of `/scim/v2`, for `meta.location` and `$ref`.
    pub base: String,
    /// The directory, as audit entries name it: "scim", its address and the request id.
    pub actor: Actor,
}

/// The token of an `Authorization: Bearer …` header; the scheme is case-insensitive
/// (RFC 7235 §2.1).
fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Compares digests rather than the tokens themselves so that neither the content nor the
/// length of the configured token leaks through timing.
fn token_matches(given: &str, settings: &ScimSettings) -> bool {
    let given = Sha256::digest(given.as_bytes());
    let expected = Sha256::digest(settings.token.expose_secret().as_bytes());
    bool::from(given.as_slice().ct_eq(expected.as_slice()))
}

/// The origin clients reach us at: `server.public_url`, else this request's Host.
fn base_url(state: &AppState, parts: &Parts) -> String {
    let origin = state.public_origin.clone().unwrap_or_else(|| {
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.parse::<axum::http::uri::Authority>().ok())
            .map(|a| a.to_string())
            .or_else(|| parts.uri.authority().map(|a| a.to_string()))
            .unwrap_or_else(|| "localhost".into());
        format!("https://{host}")
    });
    format!("{origin}{}", super::PREFIX)
}

impl FromRequestParts<AppState> for Scim {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(settings) = state.scim.clone() else {
            return Err(AppError::NotFound.into_response());
        };
        let client_ip = parts
            .extensions
            .get::<ClientIp>()
            .map(|c| c.0.to_string())
            .unwrap_or_default();
        let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.as_str());
        // The directory has no account here: its entries are signed "scim" and its address.
        let actor = Actor::anonymous(&client_ip, request_id).named("scim");
        let refusal = match bearer_token(parts) {
            None => Some(("missing_token", false)),
            Some(token) if !token_matches(token, &settings) => Some(("wrong_token", true)),
            Some(_) => None,
        };
        if let Some((reason, token_given)) = refusal {
            if let Err(e) = security_events::scim_auth_failed(&state.db, &actor, reason).await {
                return Err(ScimError::internal(e).into_response());
            }
            return Err(ScimError::unauthorized(token_given).into_response());
        }
        Ok(Scim {
            base: base_url(state, parts),
            settings,
            actor,
        })
    }
}
