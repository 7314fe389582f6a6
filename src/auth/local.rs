//! Local sign-in for the break-glass administrator, sign-out, password change and the language
//! switch. Agents sign in through single sign-on; this form exists for when that is down, and can
//! be turned off with `local_sign_in.enabled = false`.
//!
//! Every outcome is reported through `security_events`, one call per event.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::AppState;
use crate::accounts;
use crate::auth::backoff;
use crate::auth::password::{MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS};
use crate::auth::session::{self, SESSION_COOKIE};
use crate::http::client_ip::ClientIp;
use crate::http::cookies;
use crate::http::error::AppError;
use crate::http::extract::{CurrentUser, Form, MaybeUser, PASSWORD_PAGE, safe_return_path};
use crate::http::middleware::session::PRE_SESSION_COOKIE;
use crate::http::pages::{PageContext, Shell, render};
use crate::i18n::{LANG_COOKIE, Lang};
use crate::routes::RouteTable;
use crate::security_events::{self, Actor, SignInFailure};

pub fn routes(table: RouteTable) -> RouteTable {
    let table = crate::auth::sessions_page::routes(table);
    table
        .get("/login", login_page)
        .get("/login/local", local_login_page)
        .post("/login", login_submit)
        .post("/logout", logout)
        .get(PASSWORD_PAGE, password_page)
        .post(PASSWORD_PAGE, password_submit)
        .post("/language", switch_language)
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    shell: Shell,
    /// The single sign-on button: (label, start URL).
    sso: Option<(String, String)>,
    /// Whether the password form is shown on this page.
    show_local_form: bool,
    enabled: bool,
    error: Option<String>,
    username: String,
    next: String,
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

fn sso_button(state: &AppState, lang: Lang, next: &str) -> Option<(String, String)> {
    state.oidc.as_ref().map(|p| {
        let label = lang.t_args("login-sso", &[("provider", p.config.provider_name.clone())]);
        let href = format!(
            "/auth/oidc/start?next={}",
            url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        );
        (label, href)
    })
}

/// `/login`: the single sign-on button when configured; the password form only when it is not
/// (agents never see the break-glass form; administrators know `/login/local`).
async fn login_page(
    State(state): State<AppState>,
    ctx: PageContext,
    Query(query): Query<LoginQuery>,
) -> Result<Response, AppError> {
    show_login(state, ctx, query, false).await
}

async fn local_login_page(
    State(state): State<AppState>,
    ctx: PageContext,
    Query(query): Query<LoginQuery>,
) -> Result<Response, AppError> {
    show_login(state, ctx, query, true).await
}

async fn show_login(
    state: AppState,
    ctx: PageContext,
    query: LoginQuery,
    local: bool,
) -> Result<Response, AppError> {
    let next = query
        .next
        .as_deref()
        .and_then(safe_return_path)
        .unwrap_or("/")
        .to_owned();
    if ctx.session.is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    let sso = if local {
        None
    } else {
        sso_button(&state, ctx.shell.lang, &next)
    };
    let show_local_form = local || sso.is_none();
    render(
        StatusCode::OK,
        &LoginPage {
            shell: ctx.shell,
            sso,
            show_local_form,
            enabled: state.config.local_sign_in.enabled,
            error: None,
            username: String::new(),
            next,
        },
    )
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

async fn login_submit(
    State(state): State<AppState>,
    ctx: PageContext,
    ClientIp(ip): ClientIp,
    actor: Actor,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    let client_ip = ip.to_string();
    // Until the sign-in succeeds the visitor acts as nobody, whatever session they hold.
    let visitor = Actor {
        account_id: None,
        name: None,
        ..actor
    };
    let username = form.username.trim().to_owned();
    let password = SecretString::from(form.password);
    let next = safe_return_path(&form.next).unwrap_or("/").to_owned();
    let lang = ctx.shell.lang;
    let again =
        |shell: Shell, status: StatusCode, error: String, username: String, next: String| {
            render(
                status,
                &LoginPage {
                    shell,
                    sso: None,
                    show_local_form: true,
                    enabled: true,
                    error: Some(error),
                    username,
                    next,
                },
            )
        };

    if !state.config.local_sign_in.enabled {
        security_events::sign_in_refused(
            &state.audit,
            &state.metrics,
            &visitor,
            &username,
            SignInFailure::LocalSignInDisabled,
        )
        .await?;
        return Err(AppError::NotFound);
    }
    if username.is_empty()
        || password.expose_secret().is_empty()
        || username.len() > 256
        || password.expose_secret().len() > MAX_PASSWORD_BYTES
    {
        return again(
            ctx.shell,
            StatusCode::UNPROCESSABLE_ENTITY,
            lang.t("login-error-missing"),
            username,
            next,
        );
    }
    if let Some(wait) = backoff::locked_for(&state.db, &username).await? {
        security_events::sign_in_refused(
            &state.audit,
            &state.metrics,
            &visitor,
            &username,
            SignInFailure::LockedOut,
        )
        .await?;
        return Err(AppError::TooManyRequests {
            retry_after_secs: wait,
        });
    }

    let account = accounts::find_local(&state.db, &username).await?;
    let verification = state
        .hasher
        .verify(
            &password,
            account.as_ref().and_then(|a| a.password_hash.as_deref()),
        )
        .await?;
    let failure = match &account {
        None => Some(SignInFailure::UnknownAccount),
        Some(_) if !verification.matches => Some(SignInFailure::WrongPassword),
        Some(a) if a.disabled => Some(SignInFailure::AccountDisabled),
        Some(_) => None,
    };
    let account = match (failure, account) {
        (None, Some(account)) => account,
        (failure, _) => {
            let reason = failure.unwrap_or(SignInFailure::UnknownAccount);
            let mut tx = state.db.begin().await?;
            let locked = backoff::record_failure(&mut tx, &username, state.backoff).await?;
            security_events::sign_in_failed(&mut tx, &state.metrics, &visitor, &username, reason)
                .await?;
            tx.commit().await?;
            if locked > 0 {
                let mut response = again(
                    ctx.shell,
                    StatusCode::TOO_MANY_REQUESTS,
                    lang.t_args("login-error-locked", &[("seconds", locked.to_string())]),
                    username,
                    next,
                )?;
                if let Ok(v) = HeaderValue::from_str(&locked.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return Ok(response);
            }
            return again(
                ctx.shell,
                StatusCode::UNAUTHORIZED,
                lang.t("login-error-invalid"),
                username,
                next,
            );
        }
    };

    // The right one-time password, but too late (ASVS 2.3.1): said plainly, since only whoever
    // knows the password can see it; nothing changes, and a new one comes from `recover-admin`.
    if account.password_must_change && accounts::password_expired(&state.db, account.id).await? {
        security_events::sign_in_refused(
            &state.audit,
            &state.metrics,
            &visitor,
            &username,
            SignInFailure::OneTimePasswordExpired,
        )
        .await?;
        return again(
            ctx.shell,
            StatusCode::UNAUTHORIZED,
            lang.t("login-error-otp-expired"),
            username,
            next,
        );
    }
    // Hash before taking the write lock: argon2 is slow on purpose.
    let fresh_hash = if verification.needs_rehash {
        Some(state.hasher.hash(&password).await?)
    } else {
        None
    };
    let mut tx = state.db.begin().await?;
    backoff::clear(&mut tx, &username).await?;
    if let Some(fresh) = &fresh_hash {
        accounts::set_password_hash(&mut tx, account.id, fresh, account.password_must_change)
            .await?;
    }
    // A fresh session id at sign-in: a token planted before sign-in is worth nothing after.
    if let Some(old) = &ctx.session {
        session::revoke(&mut tx, &old.record.id_hash).await?;
    }
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let (token, _) =
        session::create(&mut tx, account.id, &client_ip, user_agent, state.timeouts).await?;
    let signed_in = visitor.as_account(account.id, &account.display_name);
    security_events::signed_in(&mut tx, &signed_in, &username).await?;
    tx.commit().await?;

    let destination = if account.password_must_change {
        PASSWORD_PAGE
    } else {
        next.as_str()
    };
    let mut response = Redirect::to(destination).into_response();
    let h = response.headers_mut();
    if let Some(v) = cookies::set(SESSION_COOKIE, token.expose_secret()) {
        h.append(header::SET_COOKIE, v);
    }
    if let Some(v) = cookies::clear(PRE_SESSION_COOKIE) {
        h.append(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// This site's origin, where the provider sends the browser back after logout.
fn post_logout_origin(state: &AppState, headers: &HeaderMap) -> Option<String> {
    if let Some(origin) = &state.public_origin {
        return Some(origin.clone());
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok())?;
    Some(format!("https://{host}"))
}

async fn logout(
    State(state): State<AppState>,
    MaybeUser(session): MaybeUser,
    actor: Actor,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let mut destination = "/login".to_owned();
    if let Some(s) = session {
        let id_token =
            crate::auth::oidc::store::session_id_token(&state.db, &s.record.id_hash).await?;
        let mut tx = state.db.begin().await?;
        session::revoke(&mut tx, &s.record.id_hash).await?;
        security_events::signed_out(&mut tx, &actor).await?;
        tx.commit().await?;
        // RP-initiated logout: end the provider's session too, then come back to /login.
        if let (Some(provider), Some(id_token), Some(origin)) =
            (&state.oidc, id_token, post_logout_origin(&state, &headers))
        {
            if let Some(url) = provider
                .end_session_url(&id_token, &format!("{origin}/login"))
                .await
            {
                destination = url;
            }
        }
    }
    let mut response = Redirect::to(&destination).into_response();
    if let Some(v) = cookies::clear(SESSION_COOKIE) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    shell: Shell,
    must_change: bool,
    changed: bool,
    errors: Vec<String>,
    min_chars: usize,
    min_chars_text: String,
}

#[derive(Deserialize)]
struct PasswordQuery {
    changed: Option<String>,
}

async fn password_page(
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    Query(q): Query<PasswordQuery>,
) -> Result<Response, AppError> {
    if user.account.password_hash.is_none() {
        return Err(AppError::NotFound);
    }
    render(
        StatusCode::OK,
        &PasswordPage {
            shell: ctx.shell,
            must_change: user.account.password_must_change,
            changed: q.changed.is_some(),
            errors: Vec::new(),
            min_chars: MIN_PASSWORD_CHARS,
            min_chars_text: MIN_PASSWORD_CHARS.to_string(),
        },
    )
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    confirm: String,
}

async fn password_submit(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    actor: Actor,
    Form(form): Form<PasswordForm>,
) -> Result<Response, AppError> {
    let Some(stored) = user.account.password_hash.as_deref() else {
        return Err(AppError::NotFound);
    };
    let lang = ctx.shell.lang;
    let min = MIN_PASSWORD_CHARS.to_string();
    let current = SecretString::from(form.current);
    let new = SecretString::from(form.new);
    let mut errors = Vec::new();
    if new.expose_secret().chars().count() < MIN_PASSWORD_CHARS {
        errors.push(lang.t_args("password-error-short", &[("min", min.clone())]));
    }
    if new.expose_secret().len() > MAX_PASSWORD_BYTES {
        errors.push(lang.t("password-error-long"));
    }
    if new.expose_secret() != form.confirm.as_str() {
        errors.push(lang.t("password-error-mismatch"));
    }
    if new.expose_secret() == current.expose_secret() {
        errors.push(lang.t("password-error-same"));
    }
    if current.expose_secret().len() > MAX_PASSWORD_BYTES
        || !state.hasher.verify(&current, Some(stored)).await?.matches
    {
        security_events::password_change_refused(&state.audit, &actor).await?;
        errors.push(lang.t("password-error-current"));
    }
    if !errors.is_empty() {
        return render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &PasswordPage {
                shell: ctx.shell,
                must_change: user.account.password_must_change,
                changed: false,
                errors,
                min_chars: MIN_PASSWORD_CHARS,
                min_chars_text: min,
            },
        );
    }
    let hash = state.hasher.hash(&new).await?;
    let mut tx = state.db.begin().await?;
    accounts::set_password_hash(&mut tx, user.account.id, &hash, false).await?;
    // Whoever else held a session with the old password loses it; this browser gets a new one.
    let ended = session::revoke_all_for(&mut tx, user.account.id).await?;
    let client_ip = ip.to_string();
    let (token, _) =
        session::create(&mut tx, user.account.id, &client_ip, None, state.timeouts).await?;
    security_events::password_changed(&mut tx, &actor, ended.saturating_sub(1)).await?;
    tx.commit().await?;
    let mut response = Redirect::to(&format!("{PASSWORD_PAGE}?changed=1")).into_response();
    if let Some(v) = cookies::set(SESSION_COOKIE, token.expose_secret()) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

#[derive(Deserialize)]
struct LanguageForm {
    lang: String,
    #[serde(default)]
    return_to: String,
}

async fn switch_language(
    State(state): State<AppState>,
    MaybeUser(session): MaybeUser,
    Form(form): Form<LanguageForm>,
) -> Result<Response, AppError> {
    let lang = Lang::parse(&form.lang).ok_or(AppError::BadRequest("error-bad-request"))?;
    if let Some(s) = &session {
        accounts::set_locale(&state.db, s.account.id, lang.code()).await?;
    }
    let back = safe_return_path(&form.return_to).unwrap_or("/");
    let mut response = Redirect::to(back).into_response();
    if let Some(v) = cookies::set_persistent(LANG_COOKIE, lang.code(), 365 * 24 * 3600) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}
