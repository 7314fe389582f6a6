//! The single sign-on endpoints: `/auth/oidc/start` sends the agent to the provider,
//! `/auth/oidc/callback` brings them back signed in, `/auth/oidc/backchannel-logout` lets the
//! provider end their sessions. Every refusal is a clear page and one security event; none
//! creates a session.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::AppState;
use crate::auth::oidc::{self, OidcError, OidcProvider, Rejection, store};
use crate::auth::session::{self, SESSION_COOKIE, hash_token, random_token};
use crate::http::client_ip::ClientIp;
use crate::http::cookies;
use crate::http::error::AppError;
use crate::http::extract::{Form, MaybeUser, safe_return_path};
use crate::http::middleware::session::PRE_SESSION_COOKIE;
use crate::routes::RouteTable;
use crate::security_events::{self, Actor};

/// Binds a started sign-in to the browser that started it, so that a callback URL planted in
/// another browser (login CSRF, session swapping) is refused. One cookie per pending sign-in,
/// named after its state ([`browser_cookie_name`]), so sign-ins started in two tabs both work.
pub const BROWSER_COOKIE_PREFIX: &str = "__Host-beffroi-oidc-";

/// The binding cookie's name for a given `state`: a prefix of the state's hash, so the name says
/// nothing usable about the state itself.
pub fn browser_cookie_name(state: &str) -> String {
    format!(
        "{BROWSER_COOKIE_PREFIX}{}",
        hash_token(state).get(..16).unwrap_or_default()
    )
}
pub const CALLBACK_PATH: &str = "/auth/oidc/callback";
pub const BACKCHANNEL_PATH: &str = "/auth/oidc/backchannel-logout";

pub fn routes(table: RouteTable) -> RouteTable {
    table
        .get("/auth/oidc/start", start)
        .get(CALLBACK_PATH, callback)
        .post(BACKCHANNEL_PATH, backchannel_logout)
}

fn provider(state: &AppState) -> Result<&OidcProvider, AppError> {
    state.oidc.as_deref().ok_or(AppError::NotFound)
}

impl From<OidcError> for AppError {
    fn from(e: OidcError) -> Self {
        match e {
            OidcError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "identity provider unavailable");
                AppError::IdpUnavailable
            }
            OidcError::Misconfigured(detail) => {
                tracing::error!(error = %detail, "identity provider misconfigured");
                AppError::IdpUnavailable
            }
            OidcError::Rejected(r) => {
                tracing::warn!(code = r.code, detail = %r.detail, "identity provider answer refused");
                AppError::SignInRejected("error-sso-rejected")
            }
        }
    }
}

#[derive(Deserialize)]
struct StartQuery {
    next: Option<String>,
}

async fn start(
    State(state): State<AppState>,
    Query(query): Query<StartQuery>,
) -> Result<Response, AppError> {
    let provider = provider(&state)?;
    let return_to = query
        .next
        .as_deref()
        .and_then(safe_return_path)
        .unwrap_or("/")
        .to_owned();
    let random = |_| AppError::Internal("no randomness available".into());
    let state_token = random_token().map_err(random)?;
    let nonce = random_token().map_err(random)?;
    let browser = random_token().map_err(random)?;
    let (verifier, challenge) = oidc::pkce_pair().map_err(random)?;
    // Discovery first: if the provider is down, say so before storing anything.
    let url = provider
        .authorization_url(&state_token, &nonce, &challenge)
        .await?;
    store::save_request(
        &state.db,
        &state_token,
        &browser,
        &nonce,
        &verifier,
        &return_to,
    )
    .await?;
    let mut response = Redirect::to(&url).into_response();
    if let Some(v) = cookies::set_persistent(
        &browser_cookie_name(&state_token),
        &browser,
        store::REQUEST_TTL_SECS.unsigned_abs(),
    ) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// The callback's query string as the provider (or anyone who crafts the URL) sends it
/// (RFC 6749 §4.1.2 and §4.1.2.1). Nothing in it is trusted until [`CallbackQuery::check`].
#[derive(Debug, Default, Deserialize)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

/// The longest `state` accepted: ours are far shorter, and it is hashed and looked up.
pub const MAX_STATE_LEN: usize = 512;
/// The longest authorization `code` passed on to the token endpoint.
pub const MAX_CODE_LEN: usize = 4096;
/// The provider's `error` is kept to this many characters of `[A-Za-z0-9_]`: it is recorded in
/// the audit log, and must not let a crafted URL write arbitrary text there.
pub const MAX_ERROR_LEN: usize = 64;

/// What the provider answered, once the `state` is known to be well formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackAnswer {
    /// The provider refused (`error=access_denied`…): the code, reduced to safe characters.
    ProviderError(String),
    /// An authorization code to redeem.
    Code(String),
    /// Neither a usable code nor an error.
    Malformed,
}

/// A callback query with a well-formed `state`; the answer is looked at only after the state
/// is matched to a pending sign-in and to this browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackParams {
    pub state: String,
    pub answer: CallbackAnswer,
}

impl CallbackQuery {
    /// `None` when the state is missing, empty or too long.
    pub fn check(self) -> Option<CallbackParams> {
        let state = self
            .state
            .filter(|s| !s.is_empty() && s.len() <= MAX_STATE_LEN)?;
        let answer = if let Some(error) = self.error {
            CallbackAnswer::ProviderError(
                error
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .take(MAX_ERROR_LEN)
                    .collect(),
            )
        } else {
            match self
                .code
                .filter(|c| !c.is_empty() && c.len() <= MAX_CODE_LEN)
            {
                Some(code) => CallbackAnswer::Code(code),
                None => CallbackAnswer::Malformed,
            }
        };
        Some(CallbackParams { state, answer })
    }
}

/// A refusal: one audit entry, a 403 page, no session.
async fn refuse(
    state: &AppState,
    visitor: &Actor,
    code: &'static str,
    detail: &str,
    message_id: &'static str,
) -> AppError {
    match security_events::sso_sign_in_failed(&state.audit, &state.metrics, visitor, code, detail)
        .await
    {
        Ok(()) => AppError::SignInRejected(message_id),
        Err(e) => e.into(),
    }
}

async fn callback(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    actor: Actor,
    MaybeUser(previous): MaybeUser,
    headers: HeaderMap,
    query: Result<Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let provider = provider(&state)?;
    let client_ip = ip.to_string();
    // Until the sign-in succeeds the visitor acts as nobody, whatever session they hold.
    let visitor = Actor {
        account_id: None,
        name: None,
        ..actor
    };
    let Ok(Query(query)) = query else {
        return Err(AppError::BadRequest("error-sso-callback"));
    };
    let Some(CallbackParams {
        state: state_param,
        answer,
    }) = query.check()
    else {
        return Err(AppError::BadRequest("error-sso-callback"));
    };
    let Some(pending) = store::take_request(&state.db, &state_param).await? else {
        return Err(refuse(
            &state,
            &visitor,
            "state_unknown",
            "unknown or already used state",
            "error-sso-expired",
        )
        .await);
    };
    if pending.expires_at <= crate::db::now() {
        return Err(refuse(
            &state,
            &visitor,
            "state_expired",
            "sign-in took too long",
            "error-sso-expired",
        )
        .await);
    }
    let cookie_name = browser_cookie_name(&state_param);
    let browser = cookies::get(&headers, &cookie_name).unwrap_or_default();
    if hash_token(&browser) != pending.browser_hash {
        return Err(refuse(
            &state,
            &visitor,
            "browser_mismatch",
            "callback from another browser",
            "error-sso-expired",
        )
        .await);
    }
    let code = match answer {
        CallbackAnswer::ProviderError(error) => {
            return Err(refuse(
                &state,
                &visitor,
                "provider_error",
                &error,
                "error-sso-provider-refused",
            )
            .await);
        }
        CallbackAnswer::Malformed => return Err(AppError::BadRequest("error-sso-callback")),
        CallbackAnswer::Code(code) => code,
    };

    let outcome = authenticate(provider, &code, &pending).await;
    let identity = match outcome {
        Ok(identity) => identity,
        Err(OidcError::Rejected(Rejection { code, detail })) => {
            return Err(refuse(&state, &visitor, code, &detail, "error-sso-rejected").await);
        }
        Err(other) => return Err(other.into()),
    };
    let (subject, sid, id_token, claims) = identity;
    let profile = oidc::profile_from_claims(&claims, &provider.config.groups_claim, &subject);
    if !oidc::email_domain_allowed(
        profile.email.as_deref(),
        &provider.config.allowed_email_domains,
    ) {
        return Err(refuse(
            &state,
            &visitor,
            "email_domain_not_allowed",
            profile.email.as_deref().unwrap_or(""),
            "error-sso-domain",
        )
        .await);
    }
    // The domain allow-list means nothing for an address the provider itself has not verified.
    // Some providers send the boolean as a string.
    let unverified = match claims.get("email_verified") {
        Some(serde_json::Value::Bool(b)) => !b,
        Some(serde_json::Value::String(s)) => s.eq_ignore_ascii_case("false"),
        _ => false,
    };
    if !provider.config.allowed_email_domains.is_empty() && unverified {
        return Err(refuse(
            &state,
            &visitor,
            "email_not_verified",
            profile.email.as_deref().unwrap_or(""),
            "error-sso-domain",
        )
        .await);
    }
    // One transaction: the profile refresh, the new session and its audit entry commit
    // together. Roles are computed inside the upsert, from all the account's groups (SSO and
    // SCIM). A disabled account's refresh is rolled back with the refusal.
    let mut tx = state.db.begin().await?;
    let upserted = store::upsert_account(
        &mut tx,
        &provider.config.issuer,
        &subject,
        &profile,
        &provider.config,
    )
    .await?;
    if upserted.disabled {
        drop(tx);
        return Err(refuse(
            &state,
            &visitor,
            "account_disabled",
            &subject,
            "error-sso-disabled",
        )
        .await);
    }
    if let Some(old) = &previous {
        session::revoke(&mut tx, &old.record.id_hash).await?;
    }
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let (token, record) =
        session::create(&mut tx, upserted.id, &client_ip, user_agent, state.timeouts).await?;
    store::attach_to_session(&mut tx, &record.id_hash, sid.as_deref(), &id_token).await?;
    security_events::sso_signed_in(
        &mut tx,
        &visitor.as_account(upserted.id, &upserted.display_name),
        &provider.config.issuer,
        &subject,
        &profile.groups,
        &upserted.roles_before,
        &upserted.roles_after,
    )
    .await?;
    tx.commit().await?;

    let mut response = Redirect::to(&pending.return_to).into_response();
    let h = response.headers_mut();
    for v in [
        cookies::set(SESSION_COOKIE, token.expose_secret()),
        cookies::clear(PRE_SESSION_COOKIE),
        cookies::clear(&cookie_name),
    ]
    .into_iter()
    .flatten()
    {
        h.append(header::SET_COOKIE, v);
    }
    Ok(response)
}

type Authenticated = (
    String,
    Option<String>,
    String,
    serde_json::Map<String, serde_json::Value>,
);

/// Code → tokens → verified ID token → UserInfo, merged. Returns (sub, sid, id_token, claims).
async fn authenticate(
    provider: &OidcProvider,
    code: &str,
    pending: &store::PendingRequest,
) -> Result<Authenticated, OidcError> {
    let tokens = provider.exchange_code(code, &pending.pkce_verifier).await?;
    let mut claims = provider
        .validate_id_token(&tokens.id_token, &pending.nonce)
        .await?;
    let subject = claims
        .get("sub")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned();
    let sid = claims
        .get("sid")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    if provider.config.use_userinfo {
        if let Some(access_token) = &tokens.access_token {
            if let Some(extra) = provider.userinfo(access_token, &subject).await? {
                for (k, v) in extra {
                    // The ID token's own claims about itself are not overridden.
                    if !matches!(
                        k.as_str(),
                        "iss" | "aud" | "sub" | "exp" | "iat" | "nonce" | "azp" | "sid"
                    ) {
                        claims.insert(k, v);
                    }
                }
            }
        }
    }
    Ok((subject, sid, tokens.id_token, claims))
}

#[derive(Deserialize)]
struct LogoutTokenForm {
    logout_token: String,
}

/// Back-channel logout (OpenID Connect Back-Channel Logout 1.0 §2.5–2.8): the provider tells us
/// a session ended; every matching server session ends at once. 200 when done, 400 otherwise.
async fn backchannel_logout(
    State(state): State<AppState>,
    actor: Actor,
    Form(form): Form<LogoutTokenForm>,
) -> Result<Response, AppError> {
    let provider = provider(&state)?;
    let caller = actor.named("identity provider");
    let refused =
        async |code: &'static str, detail: &str| match security_events::backchannel_logout_refused(
            &state.audit,
            &caller,
            code,
            detail,
        )
        .await
        {
            Ok(()) => AppError::BadRequest("error-bad-request"),
            Err(e) => e.into(),
        };
    if form.logout_token.len() > 16 * 1024 {
        return Err(refused("malformed_token", "too long").await);
    }
    let claims = match provider.validate_logout_token(&form.logout_token).await {
        Ok(claims) => claims,
        Err(OidcError::Rejected(r)) => return Err(refused(r.code, &r.detail).await),
        Err(other) => return Err(refused("provider_unavailable", &other.to_string()).await),
    };
    let jti = claims
        .get("jti")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let sid = claims.get("sid").and_then(|v| v.as_str());
    let sub = claims.get("sub").and_then(|v| v.as_str());
    let mut tx = state.db.begin().await?;
    if !store::first_use_of_logout_token(&mut tx, jti).await? {
        drop(tx);
        return Err(refused("replayed", "logout token already used").await);
    }
    // A valid token naming no live session is still a successful logout (§2.8): the session
    // may have ended here first, as it does when the agent signs out from Beffroi.
    let ended = store::end_sessions(&mut tx, &provider.config.issuer, sid, sub).await?;
    security_events::backchannel_logout(&mut tx, &caller, sid, sub, ended).await?;
    tx.commit().await?;
    let mut response = (axum::http::StatusCode::OK, "").into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str) -> Option<CallbackParams> {
        serde_urlencoded::from_str::<CallbackQuery>(raw)
            .unwrap()
            .check()
    }

    #[test]
    fn callback_query_needs_a_bounded_state_and_reduces_the_error() {
        assert_eq!(check("code=abc"), None);
        assert_eq!(check("code=abc&state="), None);
        assert_eq!(check(&format!("code=abc&state={}", "s".repeat(513))), None);
        assert_eq!(
            check("code=abc&state=s1").map(|p| p.answer),
            Some(CallbackAnswer::Code("abc".into()))
        );
        // An error wins over a code, and only safe characters of it are kept.
        assert_eq!(
            check("code=abc&state=s1&error=access_denied%0A%3Cb%3E").map(|p| p.answer),
            Some(CallbackAnswer::ProviderError("access_deniedb".into()))
        );
        assert_eq!(
            check(&format!("state=s1&error={}", "e".repeat(100))).map(|p| p.answer),
            Some(CallbackAnswer::ProviderError("e".repeat(64)))
        );
        assert_eq!(
            check(&format!("state=s1&code={}", "c".repeat(4097))).map(|p| p.answer),
            Some(CallbackAnswer::Malformed)
        );
        assert_eq!(check("state=s1").map(|p| p.state), Some("s1".to_owned()));
    }
}
