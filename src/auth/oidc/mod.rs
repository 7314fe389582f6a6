//! Single sign-on with the organisation's OpenID Connect provider: discovery, the JWKS (refetched
//! when a token names an unknown key, at most every `jwks_refetch_min_secs`, so a key rotation
//! needs no restart),
//! the token request, UserInfo, and the validation of ID and logout tokens.
//!
//! Why not the `openidconnect` crate, as DESIGN.md first planned: it verifies RSA signatures with
//! the `rsa` crate, which carries an unfixed advisory (RUSTSEC-2023-0071) that the supply-chain
//! check refuses, it cannot refetch the JWKS on an unknown `kid`, and its errors do not give the
//! precise reasons the audit log needs. Signatures are verified here with *ring* (already the
//! TLS provider), in `jwt.rs`, and each check below cites the rule it applies.
//!
//! This module never logs a token, a code, a PKCE verifier or the client secret.

pub mod jwt;
pub mod routes;
pub mod store;

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::{Mutex, RwLock};

use crate::config::{ConfigError, OidcConfig};
use jwt::{Algorithm, JwkSet, JwtError};

/// Clock skew tolerated on `exp` and `iat`.
const LEEWAY_SECS: i64 = 60;
/// An ID token issued longer ago than this is refused (replay of an old token).
const MAX_ID_TOKEN_AGE_SECS: i64 = 600;
/// Discovery is re-read after this long.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// The event a back-channel logout token must carry (OpenID Connect Back-Channel Logout 1.0 §2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The parts of the provider's discovery document Beffroi uses.
#[derive(Debug, Clone, Deserialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub userinfo_endpoint: Option<String>,
    pub end_session_endpoint: Option<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Vec<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default)]
    pub backchannel_logout_supported: bool,
}

/// Why a sign-in or a logout token was refused: stable codes for the audit log and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: &'static str,
    pub detail: String,
}

fn reject(code: &'static str, detail: impl Into<String>) -> Rejection {
    Rejection {
        code,
        detail: detail.into(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider could not be reached or answered nonsense: try later.
    #[error("identity provider unavailable: {0}")]
    Unavailable(String),
    /// The provider is reachable but does not fit the configuration.
    #[error("identity provider misconfigured: {0}")]
    Misconfigured(String),
    /// A token or an answer was refused.
    #[error("refused ({}): {}", .0.code, .0.detail)]
    Rejected(Rejection),
}

impl From<Rejection> for OidcError {
    fn from(r: Rejection) -> Self {
        OidcError::Rejected(r)
    }
}

fn from_jwt(e: JwtError) -> Rejection {
    match e {
        JwtError::AlgorithmNotAllowed(alg) => reject("algorithm_not_allowed", alg),
        JwtError::UnknownKey(kid) => reject(
            "unknown_key",
            jwt::sanitize_for_audit(&kid.unwrap_or_default()),
        ),
        JwtError::BadSignature => reject("bad_signature", "signature does not verify"),
        JwtError::CriticalHeader => reject("malformed_token", "critical header extension"),
        JwtError::Malformed(why) => reject("malformed_token", why),
    }
}

/// The claims of an accepted ID token, merged with UserInfo.
#[derive(Debug, Clone)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    pub session_id: Option<String>,
    pub claims: Map<String, Value>,
}

/// Tokens returned by the token endpoint.
pub struct TokenResponse {
    pub id_token: String,
    pub access_token: Option<SecretString>,
}

pub struct OidcProvider {
    pub config: OidcConfig,
    client_secret: SecretString,
    pub redirect_url: String,
    allowed: Vec<Algorithm>,
    http: reqwest::Client,
    metadata: RwLock<Option<(Arc<ProviderMetadata>, Instant)>>,
    jwks: RwLock<Option<(Arc<JwkSet>, Instant)>>,
    last_jwks_fetch: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcProvider")
            .field("issuer", &self.config.issuer)
            .finish_non_exhaustive()
    }
}

/// The HTTP client used towards the provider: rustls with the process's provider and the
/// system's trusted authorities (so an agency PKI installed on the host works), no proxy from
/// the environment, bounded time, no redirects (an endpoint that redirects is misconfigured).
fn http_client(timeout_secs: u64) -> Result<reqwest::Client, ConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(crate::tls::crypto_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Invalid {
            key: "oidc".into(),
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(timeout_secs.min(5)))
        .timeout(Duration::from_secs(timeout_secs))
        .user_agent(concat!("beffroi/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ConfigError::Invalid {
            key: "oidc".into(),
            reason: e.to_string(),
        })
}

fn now() -> i64 {
    crate::db::now()
}

/// Reads a response body as JSON, bounded to 1 MiB: a provider's answer is never larger.
async fn json_body<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    what: &str,
) -> Result<T, OidcError> {
    const LIMIT: usize = 1024 * 1024;
    if response.content_length().is_some_and(|l| l > LIMIT as u64) {
        return Err(OidcError::Unavailable(format!("{what}: answer too large")));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| OidcError::Unavailable(format!("{what}: {e}")))?;
    if bytes.len() > LIMIT {
        return Err(OidcError::Unavailable(format!("{what}: answer too large")));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| OidcError::Unavailable(format!("{what}: not the expected JSON ({e})")))
}

impl OidcProvider {
    pub fn new(config: OidcConfig, public_url: Option<&str>) -> Result<Self, ConfigError> {
        let client_secret = config.client_secret()?;
        let allowed = config
            .allowed_algorithms
            .iter()
            .filter_map(|a| Algorithm::parse(a))
            .collect();
        Ok(Self {
            redirect_url: config.redirect_url(public_url),
            http: http_client(config.http_timeout_secs)?,
            client_secret,
            allowed,
            config,
            metadata: RwLock::new(None),
            jwks: RwLock::new(None),
            last_jwks_fetch: Mutex::new(None),
        })
    }

    /// Fetches and checks the discovery document (cached for an hour).
    pub async fn metadata(&self) -> Result<Arc<ProviderMetadata>, OidcError> {
        if let Some((m, at)) = self.metadata.read().await.as_ref() {
            if at.elapsed() < METADATA_TTL {
                return Ok(Arc::clone(m));
            }
        }
        let fresh = Arc::new(self.discover().await?);
        *self.metadata.write().await = Some((Arc::clone(&fresh), Instant::now()));
        Ok(fresh)
    }

    /// Reads the discovery document and checks it fits: same issuer (OpenID Connect Discovery
    /// §4.3, against mix-up attacks), PKCE S256 offered, an algorithm in common.
    pub async fn discover(&self) -> Result<ProviderMetadata, OidcError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let response =
            self.http.get(&url).send().await.map_err(|e| {
                OidcError::Unavailable(format!("discovery at {url}: {}", describe(&e)))
            })?;
        if !response.status().is_success() {
            return Err(OidcError::Unavailable(format!(
                "discovery at {url} answered {}",
                response.status()
            )));
        }
        let metadata: ProviderMetadata = json_body(response, "discovery").await?;
        if metadata.issuer != self.config.issuer {
            return Err(OidcError::Misconfigured(format!(
                "issuer mismatch: the configuration says {} but the provider says {}",
                self.config.issuer, metadata.issuer
            )));
        }
        // Some providers (Entra ID) support PKCE without announcing it: PKCE is always sent, and
        // only a provider that announces methods without S256 is refused.
        if !metadata.code_challenge_methods_supported.is_empty()
            && !metadata
                .code_challenge_methods_supported
                .iter()
                .any(|m| m == "S256")
        {
            return Err(OidcError::Misconfigured(
                "the provider does not offer PKCE S256 (code_challenge_methods_supported)".into(),
            ));
        }
        // RFC 8414 §2: an absent list means client_secret_basic.
        let methods = &metadata.token_endpoint_auth_methods_supported;
        if !methods.is_empty()
            && !methods
                .iter()
                .any(|m| m == "client_secret_basic" || m == "client_secret_post")
        {
            return Err(OidcError::Misconfigured(format!(
                "the token endpoint accepts neither client_secret_basic nor client_secret_post ({methods:?})"
            )));
        }
        if !metadata.id_token_signing_alg_values_supported.is_empty()
            && !metadata
                .id_token_signing_alg_values_supported
                .iter()
                .any(|a| self.config.allowed_algorithms.contains(a))
        {
            return Err(OidcError::Misconfigured(format!(
                "no signature algorithm in common: the provider offers {:?}, oidc.allowed_algorithms is {:?}",
                metadata.id_token_signing_alg_values_supported, self.config.allowed_algorithms
            )));
        }
        Ok(metadata)
    }

    async fn fetch_jwks(&self, metadata: &ProviderMetadata) -> Result<Arc<JwkSet>, OidcError> {
        *self.last_jwks_fetch.lock().await = Some(Instant::now());
        let response = self
            .http
            .get(&metadata.jwks_uri)
            .send()
            .await
            .map_err(|e| OidcError::Unavailable(format!("JWKS: {}", describe(&e))))?;
        if !response.status().is_success() {
            return Err(OidcError::Unavailable(format!(
                "JWKS answered {}",
                response.status()
            )));
        }
        let set: JwkSet = json_body(response, "JWKS").await?;
        let set = Arc::new(set);
        *self.jwks.write().await = Some((Arc::clone(&set), Instant::now()));
        Ok(set)
    }

    /// Verifies a token's signature against the provider's keys, refetching the JWKS once when
    /// the token names a key we do not have (rotation), but not more often than
    /// `oidc.jwks_refetch_min_secs`.
    async fn verify_signature(&self, token: &str) -> Result<jwt::Verified, OidcError> {
        let metadata = self.metadata().await?;
        // Keys are re-read hourly too, so a key the provider withdrew stops being trusted.
        let cached = self
            .jwks
            .read()
            .await
            .as_ref()
            .map(|(keys, at)| (Arc::clone(keys), at.elapsed() < METADATA_TTL));
        let keys = match cached {
            Some((keys, true)) => keys,
            // Stale: refetch, at most as often as for an unknown key; while the provider is
            // down, the keys we have stay in use rather than refusing every token.
            Some((keys, false)) => {
                let may_refetch = self.last_jwks_fetch.lock().await.is_none_or(|at| {
                    at.elapsed() >= Duration::from_secs(self.config.jwks_refetch_min_secs)
                });
                if may_refetch {
                    self.fetch_jwks(&metadata).await.unwrap_or(keys)
                } else {
                    keys
                }
            }
            None => self.fetch_jwks(&metadata).await?,
        };
        match jwt::verify(token, &keys, &self.allowed) {
            Err(JwtError::UnknownKey(kid)) => {
                let may_refetch = self.last_jwks_fetch.lock().await.is_none_or(|at| {
                    at.elapsed() >= Duration::from_secs(self.config.jwks_refetch_min_secs)
                });
                let kid = jwt::sanitize_for_audit(&kid.unwrap_or_default());
                if !may_refetch {
                    return Err(reject("unknown_key", kid).into());
                }
                let keys = match self.fetch_jwks(&metadata).await {
                    Ok(keys) => keys,
                    Err(e) => {
                        return Err(reject(
                            "unknown_key",
                            format!("{kid} (JWKS refetch failed: {e})"),
                        )
                        .into());
                    }
                };
                jwt::verify(token, &keys, &self.allowed).map_err(|e| from_jwt(e).into())
            }
            other => other.map_err(|e| from_jwt(e).into()),
        }
    }

    /// The authorization request URL (authorization code flow with PKCE S256).
    pub async fn authorization_url(
        &self,
        state: &str,
        nonce: &str,
        code_challenge: &str,
    ) -> Result<String, OidcError> {
        let metadata = self.metadata().await?;
        let mut url = url::Url::parse(&metadata.authorization_endpoint)
            .map_err(|e| OidcError::Misconfigured(format!("authorization_endpoint: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.config.client_id)
                .append_pair("redirect_uri", &self.redirect_url)
                .append_pair("scope", &self.config.scopes.join(" "))
                .append_pair("state", state)
                .append_pair("nonce", nonce)
                .append_pair("code_challenge", code_challenge)
                .append_pair("code_challenge_method", "S256");
            if !self.config.acr_values.is_empty() {
                q.append_pair("acr_values", &self.config.acr_values.join(" "));
            }
        }
        Ok(url.into())
    }

    /// Exchanges the code at the token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.5).
    pub async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &str,
    ) -> Result<TokenResponse, OidcError> {
        let metadata = self.metadata().await?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.redirect_url.as_str()),
            ("code_verifier", pkce_verifier),
        ];
        let mut request = self.http.post(&metadata.token_endpoint);
        let basic = metadata.token_endpoint_auth_methods_supported.is_empty()
            || metadata
                .token_endpoint_auth_methods_supported
                .iter()
                .any(|m| m == "client_secret_basic");
        if basic {
            // RFC 6749 §2.3.1: id and secret are form-encoded before going into Basic.
            let encode =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            request = request
                .basic_auth(
                    encode(&self.config.client_id),
                    Some(encode(self.client_secret.expose_secret())),
                )
                .form(&form);
        } else {
            let mut with_secret: Vec<(&str, &str)> = form.to_vec();
            with_secret.push(("client_id", &self.config.client_id));
            with_secret.push(("client_secret", self.client_secret.expose_secret()));
            request = request.form(&with_secret);
        }
        let response = request
            .send()
            .await
            .map_err(|e| OidcError::Unavailable(format!("token endpoint: {}", describe(&e))))?;
        let status = response.status();
        let body: Value = json_body(response, "token endpoint").await?;
        if !status.is_success() {
            let error = body
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("unknown error");
            return Err(reject(
                "token_request_refused",
                format!("{status}: {}", sanitize(error)),
            )
            .into());
        }
        let id_token = body
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or_else(|| reject("malformed_token", "no id_token in the token response"))?
            .to_owned();
        let access_token = body
            .get("access_token")
            .and_then(Value::as_str)
            .map(|t| SecretString::from(t.to_owned()));
        Ok(TokenResponse {
            id_token,
            access_token,
        })
    }

    /// Validates an ID token (OpenID Connect Core §3.1.3.7) and returns its claims.
    pub async fn validate_id_token(
        &self,
        id_token: &str,
        expected_nonce: &str,
    ) -> Result<Map<String, Value>, OidcError> {
        let verified = self.verify_signature(id_token).await?;
        let claims = verified.claims;
        self.check_issuer_and_audience(&claims)?;
        // §3.1.3.7 (9), (10): expiry and issue time, with a little skew allowed.
        let now = now();
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or_else(|| reject("malformed_token", "no exp"))?;
        if exp + LEEWAY_SECS < now {
            return Err(reject("expired", format!("expired {} s ago", now - exp)).into());
        }
        let iat = claims
            .get("iat")
            .and_then(Value::as_i64)
            .ok_or_else(|| reject("malformed_token", "no iat"))?;
        if iat > now + LEEWAY_SECS {
            return Err(reject("issued_in_future", format!("iat {} s ahead", iat - now)).into());
        }
        if now - iat > MAX_ID_TOKEN_AGE_SECS {
            return Err(
                reject("issued_too_long_ago", format!("issued {} s ago", now - iat)).into(),
            );
        }
        // §3.1.3.7 (11): the nonce we sent, exactly.
        match claims.get("nonce").and_then(Value::as_str) {
            None => return Err(reject("nonce_missing", "no nonce in the ID token").into()),
            Some(n) if !constant_time_eq(n, expected_nonce) => {
                return Err(reject("nonce_mismatch", "nonce differs from the one sent").into());
            }
            Some(_) => {}
        }
        match claims.get("sub").and_then(Value::as_str) {
            Some(sub) if !sub.is_empty() && sub.len() <= 255 => {}
            _ => return Err(reject("missing_subject", "no usable sub claim").into()),
        }
        // §3.1.3.7 (12): the authentication context we asked for.
        if !self.config.acr_values.is_empty() {
            let acr = claims.get("acr").and_then(Value::as_str).unwrap_or("");
            if !self.config.acr_values.iter().any(|a| a == acr) {
                return Err(reject(
                    "acr_not_met",
                    format!("acr {acr:?} is not one of those requested"),
                )
                .into());
            }
        }
        Ok(claims)
    }

    /// §3.1.3.7 (2)–(5): our issuer, us among the audiences, no audience we do not trust, and
    /// `azp`, when present, naming us.
    fn check_issuer_and_audience(&self, claims: &Map<String, Value>) -> Result<(), Rejection> {
        match claims.get("iss").and_then(Value::as_str) {
            Some(iss) if iss == self.config.issuer => {}
            other => {
                return Err(reject(
                    "wrong_issuer",
                    format!("iss {:?}", other.unwrap_or("")),
                ));
            }
        }
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            _ => return Err(reject("wrong_audience", "no aud claim")),
        };
        if !audiences.contains(&self.config.client_id.as_str()) {
            return Err(reject(
                "wrong_audience",
                format!("aud {audiences:?} does not name this client"),
            ));
        }
        let azp = claims.get("azp").and_then(Value::as_str);
        if audiences.len() > 1 {
            if azp.is_none() {
                return Err(reject("missing_azp", "several audiences and no azp"));
            }
            return Err(reject(
                "untrusted_audience",
                format!("aud {audiences:?} includes clients this one does not trust"),
            ));
        }
        if let Some(azp) = azp {
            if azp != self.config.client_id {
                return Err(reject("wrong_azp", format!("azp {azp:?}")));
            }
        }
        Ok(())
    }

    /// Reads UserInfo (§5.3) and checks its `sub` is the ID token's (§5.3.2, against token
    /// substitution).
    pub async fn userinfo(
        &self,
        access_token: &SecretString,
        subject: &str,
    ) -> Result<Option<Map<String, Value>>, OidcError> {
        let metadata = self.metadata().await?;
        let Some(endpoint) = metadata.userinfo_endpoint.as_deref() else {
            return Ok(None);
        };
        let response = self
            .http
            .get(endpoint)
            .bearer_auth(access_token.expose_secret())
            .send()
            .await
            .map_err(|e| OidcError::Unavailable(format!("userinfo: {}", describe(&e))))?;
        if !response.status().is_success() {
            return Err(reject(
                "userinfo_refused",
                format!("userinfo answered {}", response.status()),
            )
            .into());
        }
        let signed = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/jwt"));
        let claims: Map<String, Value> = if signed {
            // §5.3.2: a signed UserInfo response (ProConnect sends one) is verified like an ID
            // token, and must then come from our issuer and be meant for us.
            let text = response
                .text()
                .await
                .map_err(|e| OidcError::Unavailable(format!("userinfo: {}", describe(&e))))?;
            let verified = self.verify_signature(text.trim()).await?;
            self.check_issuer_and_audience(&verified.claims)?;
            verified.claims
        } else {
            json_body(response, "userinfo")
                .await
                .map_err(|e| reject("userinfo_invalid", e.to_string()))?
        };
        match claims.get("sub").and_then(Value::as_str) {
            Some(sub) if sub == subject => Ok(Some(claims)),
            other => Err(reject(
                "userinfo_subject_mismatch",
                format!("userinfo sub {:?}", other.unwrap_or("")),
            )
            .into()),
        }
    }

    /// Validates a back-channel logout token (Back-Channel Logout 1.0 §2.6) and returns its
    /// claims: signature, issuer, audience, issue time, the logout event, no nonce, and a `sid`
    /// or `sub`.
    pub async fn validate_logout_token(
        &self,
        token: &str,
    ) -> Result<Map<String, Value>, OidcError> {
        let verified = self.verify_signature(token).await?;
        let verified_typ = verified.header.typ.clone();
        let claims = verified.claims;
        self.check_issuer_and_audience(&claims)?;
        let now = now();
        let iat = claims
            .get("iat")
            .and_then(Value::as_i64)
            .ok_or_else(|| reject("malformed_token", "no iat"))?;
        if iat > now + LEEWAY_SECS {
            return Err(reject("issued_in_future", "iat in the future").into());
        }
        if now - iat > MAX_ID_TOKEN_AGE_SECS {
            return Err(
                reject("issued_too_long_ago", format!("issued {} s ago", now - iat)).into(),
            );
        }
        // Back-Channel Logout 1.0 §2.4 requires exp.
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or_else(|| reject("malformed_token", "no exp"))?;
        if exp + LEEWAY_SECS < now {
            return Err(reject("expired", "logout token expired").into());
        }
        // §2.4: a typed logout token says so, and so cannot pass for another kind of token.
        if let Some(typ) = verified_typ.as_deref() {
            if !typ.eq_ignore_ascii_case("logout+jwt") && !typ.eq_ignore_ascii_case("JWT") {
                return Err(reject("malformed_token", "typ is not logout+jwt").into());
            }
        }
        let has_event = claims
            .get("events")
            .and_then(Value::as_object)
            .and_then(|e| e.get(BACKCHANNEL_LOGOUT_EVENT))
            .is_some_and(Value::is_object);
        if !has_event {
            return Err(reject("missing_logout_event", "no back-channel logout event").into());
        }
        if claims.contains_key("nonce") {
            return Err(reject("nonce_present", "a logout token must not carry a nonce").into());
        }
        let sid = claims.get("sid").and_then(Value::as_str);
        let sub = claims.get("sub").and_then(Value::as_str);
        if sid.is_none() && sub.is_none() {
            return Err(reject("missing_sid_and_sub", "neither sid nor sub").into());
        }
        if claims
            .get("jti")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(reject("malformed_token", "no jti").into());
        }
        Ok(claims)
    }

    /// Where to send the browser to end the provider's session too (RP-Initiated Logout 1.0).
    pub async fn end_session_url(
        &self,
        id_token: &str,
        post_logout_redirect: &str,
    ) -> Option<String> {
        let metadata = self.metadata().await.ok()?;
        let mut url = url::Url::parse(metadata.end_session_endpoint.as_deref()?).ok()?;
        // The Content-Security-Policy lets forms lead to the issuer's origin only.
        let issuer_origin = url::Url::parse(&self.config.issuer).ok()?.origin();
        if url.origin() != issuer_origin {
            tracing::warn!(
                "end_session_endpoint is not on the issuer's origin; signing out locally only"
            );
            return None;
        }
        url.query_pairs_mut()
            .append_pair("id_token_hint", id_token)
            .append_pair("post_logout_redirect_uri", post_logout_redirect)
            .append_pair("client_id", &self.config.client_id)
            // Some providers (ProConnect) require a state; its value is not used on return.
            .append_pair("state", &crate::auth::session::random_token().ok()?);
        Some(url.into())
    }
}

/// A provider error code, reduced to what is safe to show and log.
fn sanitize(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || "_-. ".contains(*c))
        .take(80)
        .collect()
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection refused or unreachable".into()
    } else {
        // reqwest's message can carry the URL, never a secret: the secret is in a header or body.
        e.to_string()
    }
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// PKCE (RFC 7636 §4.1, §4.2): a 43-character verifier from 32 random bytes, and its S256 challenge.
pub fn pkce_pair() -> Result<(String, String), getrandom::Error> {
    use base64::Engine;
    use sha2::Digest;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let verifier = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    Ok((verifier, challenge))
}

/// What Beffroi keeps of an identity: display name, e-mail, groups and the provider's own
/// attributes (ProConnect's `uid`, `siret`, `idp_id`, `given_name`, `usual_name`).
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub display_name: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub attributes: Map<String, Value>,
}

const KEPT_ATTRIBUTES: &[&str] = &[
    "given_name",
    "family_name",
    "usual_name",
    "preferred_username",
    "uid",
    "siret",
    "idp_id",
    "organizational_unit",
    "belonging_population",
    "phone_number",
    "phone",
];

pub fn profile_from_claims(
    claims: &Map<String, Value>,
    groups_claim: &str,
    subject: &str,
) -> Profile {
    let text = |k: &str| {
        claims
            .get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(200).collect::<String>())
    };
    let given = text("given_name");
    // ProConnect calls the family name `usual_name`.
    let family = text("family_name").or_else(|| text("usual_name"));
    let display_name = text("name")
        .or_else(|| match (&given, &family) {
            (Some(g), Some(f)) => Some(format!("{g} {f}")),
            (Some(n), None) | (None, Some(n)) => Some(n.clone()),
            (None, None) => None,
        })
        .or_else(|| text("preferred_username"))
        .or_else(|| text("email"))
        .unwrap_or_else(|| subject.to_owned());
    let groups = match claims.get(groups_claim) {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    };
    let mut groups: Vec<String> = groups
        .into_iter()
        .map(|g| g.trim().chars().take(200).collect::<String>())
        .filter(|g| !g.is_empty())
        .take(500)
        .collect();
    groups.sort();
    groups.dedup();
    let attributes = KEPT_ATTRIBUTES
        .iter()
        .filter_map(|k| {
            claims
                .get(*k)
                .filter(|v| v.is_string() || v.is_number())
                .map(|v| ((*k).to_owned(), v.clone()))
        })
        .collect();
    Profile {
        display_name,
        email: text("email").map(|e| e.to_lowercase()),
        groups,
        attributes,
    }
}

/// Whether the address is in one of the allowed domains (empty list: any).
pub fn email_domain_allowed(email: Option<&str>, allowed: &[String]) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let Some(domain) = email
        .and_then(|e| e.rsplit_once('@'))
        .map(|(_, d)| d.to_lowercase())
    else {
        return false;
    };
    allowed.iter().any(|a| a.eq_ignore_ascii_case(&domain))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proconnect_claims_make_a_profile() {
        let claims: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "sub": "abc", "given_name": "Jeanne", "usual_name": "Dupont",
            "email": "Jeanne.Dupont@Interieur.gouv.fr", "uid": "pc-123", "siret": "11000201100044",
            "idp_id": "fia1v2"
        }))
        .unwrap();
        let p = profile_from_claims(&claims, "groups", "abc");
        assert_eq!(p.display_name, "Jeanne Dupont");
        assert_eq!(p.email.as_deref(), Some("jeanne.dupont@interieur.gouv.fr"));
        assert_eq!(p.attributes["siret"], "11000201100044");
        assert_eq!(p.attributes["idp_id"], "fia1v2");
        assert!(p.groups.is_empty());
    }

    #[test]
    fn groups_claim_accepts_a_list_or_one_string() {
        let claims: Map<String, Value> =
            serde_json::from_value(serde_json::json!({"roles": ["b", "a", "a", " "], "one": "x"}))
                .unwrap();
        assert_eq!(
            profile_from_claims(&claims, "roles", "s").groups,
            vec!["a", "b"]
        );
        assert_eq!(profile_from_claims(&claims, "one", "s").groups, vec!["x"]);
        assert_eq!(profile_from_claims(&claims, "roles", "s").display_name, "s");
    }

    #[test]
    fn email_domains_are_checked_exactly() {
        let allowed = vec!["example.test".to_owned()];
        assert!(email_domain_allowed(Some("a@example.test"), &allowed));
        assert!(email_domain_allowed(Some("a@EXAMPLE.test"), &allowed));
        assert!(!email_domain_allowed(Some("a@evil.example"), &allowed));
        assert!(!email_domain_allowed(Some("a@example.test.evil"), &allowed));
        assert!(!email_domain_allowed(None, &allowed));
        assert!(email_domain_allowed(None, &[]));
    }

    #[test]
    fn pkce_challenge_is_s256_of_the_verifier() {
        use base64::Engine;
        use sha2::Digest;
        let (verifier, challenge) = pkce_pair().unwrap();
        assert_eq!(verifier.len(), 43);
        let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        assert_eq!(challenge, expected);
    }
}
