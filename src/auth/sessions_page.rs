//! Where sessions can be seen and ended by people: an agent lists their own live sessions at
//! `/account/sessions` (when and from where each was opened and last used, with which browser,
//! and which one is this one) and ends any other one, or all others; an administrator lists the
//! accounts that are signed in at `/admin/sessions`, and ends one or all of an account's sessions
//! at `/admin/sessions/{account}` (the admin gate guards `/admin`; the handlers check again).
//!
//! Sessions are named by their [`session::handle`], never by token or hash, and a handle is only
//! looked up among the sessions of the account the page is about: an agent's guess cannot reach
//! another account. Every ending is audited (`auth.session_revoke`) in the transaction that
//! deletes the rows.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::AppState;
use crate::accounts;
use crate::auth::session::{self, ActiveSession, SessionSummary};
use crate::http::error::AppError;
use crate::http::extract::{CurrentUser, PASSWORD_PAGE};
use crate::http::pages::{PageContext, Shell, render};
use crate::routes::RouteTable;
use crate::security_events::{self, Actor, SessionRevocation};

pub const OWN_PAGE: &str = "/account/sessions";
pub const ADMIN_PAGE: &str = "/admin/sessions";

pub fn routes(table: RouteTable) -> RouteTable {
    table
        .get(OWN_PAGE, own_page)
        .post("/account/sessions/{handle}/end", end_own)
        .post("/account/sessions/end-others", end_own_others)
        .get(ADMIN_PAGE, admin_index)
        .get("/admin/sessions/{account}", admin_page)
        .post("/admin/sessions/{account}/{handle}/end", admin_end)
        .post("/admin/sessions/{account}/end-all", admin_end_all)
}

/// One row of a session list, ready to show.
struct Row {
    handle: String,
    created: String,
    last_seen: String,
    address: String,
    browser: String,
    current: bool,
    end_label: String,
}

#[derive(Template)]
#[template(path = "sessions.html")]
struct SessionsPage {
    shell: Shell,
    title: String,
    intro: String,
    rows: Vec<Row>,
    /// Where each row's form posts: `{base}/{handle}/end`.
    base: String,
    /// The form ending the others (agent) or all (administrator), when there is any to end.
    end_all: Option<(String, String)>,
    done: Option<String>,
    /// Link back to the administrators' list, or to the password page of a local account.
    aside: Option<(String, String)>,
}

#[derive(Deserialize)]
struct DoneQuery {
    ended: Option<u64>,
}

fn rows(shell: &Shell, sessions: Vec<SessionSummary>, current: Option<&str>) -> Vec<Row> {
    sessions
        .into_iter()
        .map(|s| {
            let created = shell.when(s.created_at);
            let address = s
                .client_ip
                .filter(|ip| !ip.is_empty())
                .unwrap_or_else(|| shell.t("sessions-unknown"));
            let end_label = shell.lang.t_args(
                "sessions-end-label",
                &[("started", created.clone()), ("address", address.clone())],
            );
            Row {
                current: current == Some(s.id_hash.as_str()),
                handle: s.handle,
                created,
                last_seen: shell.when(s.last_seen_at),
                address,
                browser: s
                    .user_agent
                    .filter(|ua| !ua.is_empty())
                    .unwrap_or_else(|| shell.t("sessions-unknown")),
                end_label,
            }
        })
        .collect()
}

fn done_message(shell: &Shell, query: &DoneQuery) -> Option<String> {
    query
        .ended
        .map(|n| shell.t1("sessions-ended", "count", &n.to_string()))
}

/// A handle as the pages write it: 16 lower-case hex digits; anything else names nothing.
fn valid_handle(handle: &str) -> bool {
    handle.len() == 16
        && handle
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

async fn own_page(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    Query(query): Query<DoneQuery>,
) -> Result<Response, AppError> {
    let sessions = session::list_for(&state.db, user.account.id, state.timeouts).await?;
    let shell = ctx.shell;
    let rows = rows(&shell, sessions, Some(&user.record.id_hash));
    let others = rows.iter().filter(|r| !r.current).count();
    let page = SessionsPage {
        title: shell.t("sessions-title"),
        intro: shell.t("sessions-intro"),
        base: OWN_PAGE.to_owned(),
        end_all: (others > 0).then(|| {
            (
                "/account/sessions/end-others".to_owned(),
                shell.t("sessions-end-others"),
            )
        }),
        done: done_message(&shell, &query),
        aside: user
            .account
            .password_hash
            .is_some()
            .then(|| (PASSWORD_PAGE.to_owned(), shell.t("sessions-password-link"))),
        rows,
        shell,
    };
    render(StatusCode::OK, &page)
}

fn back_to(path: &str, ended: u64) -> Response {
    Redirect::to(&format!("{path}?ended={ended}")).into_response()
}

/// Ends the session `id_hash` of `account_id` and records it, in one transaction.
async fn end_one(
    state: &AppState,
    actor: &Actor,
    account_id: i64,
    id_hash: &str,
    handle: &str,
    by: &'static str,
) -> Result<u64, AppError> {
    let mut tx = state.db.begin().await?;
    let ended = u64::from(session::revoke(&mut tx, id_hash).await?);
    let revocation = SessionRevocation {
        account_id,
        scope: "one",
        by,
        handle: Some(handle),
        sessions_ended: ended,
    };
    security_events::sessions_revoked(&mut tx, actor, revocation).await?;
    tx.commit().await?;
    Ok(ended)
}

async fn end_own(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Path(handle): Path<String>,
) -> Result<Response, AppError> {
    if !valid_handle(&handle) {
        return Err(AppError::NotFound);
    }
    let id_hash = session::find_by_handle(&state.db, user.account.id, &handle)
        .await?
        .ok_or(AppError::NotFound)?;
    // This session ends by signing out, which also ends the identity provider's session.
    if id_hash == user.record.id_hash {
        return Err(AppError::BadRequest("error-bad-request"));
    }
    let ended = end_one(&state, &actor, user.account.id, &id_hash, &handle, "self").await?;
    Ok(back_to(OWN_PAGE, ended))
}

async fn end_own_others(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    actor: Actor,
) -> Result<Response, AppError> {
    let mut tx = state.db.begin().await?;
    let ended = session::revoke_all_but(&mut tx, user.account.id, &user.record.id_hash).await?;
    let revocation = SessionRevocation {
        account_id: user.account.id,
        scope: "others",
        by: "self",
        handle: None,
        sessions_ended: ended,
    };
    security_events::sessions_revoked(&mut tx, &actor, revocation).await?;
    tx.commit().await?;
    Ok(back_to(OWN_PAGE, ended))
}

struct AccountLine {
    href: String,
    name: String,
    count: String,
    last_seen: String,
}

#[derive(Template)]
#[template(path = "admin_sessions.html")]
struct AdminIndexPage {
    shell: Shell,
    accounts: Vec<AccountLine>,
}

async fn admin_index(
    State(state): State<AppState>,
    ctx: PageContext,
    user: CurrentUser,
    actor: Actor,
) -> Result<Response, AppError> {
    crate::admin::require_admin(&state, &user, &actor, ADMIN_PAGE).await?;
    let shell = ctx.shell;
    let accounts = session::accounts_with_sessions(&state.db, state.timeouts)
        .await?
        .into_iter()
        .map(|(id, name, count, last_seen)| AccountLine {
            href: format!("{ADMIN_PAGE}/{id}"),
            name,
            count: count.to_string(),
            last_seen: shell.when(last_seen),
        })
        .collect();
    render(StatusCode::OK, &AdminIndexPage { shell, accounts })
}

/// The account an administrator's page is about: administrators only, then an existing account.
async fn admin_target(
    state: &AppState,
    user: &CurrentUser,
    actor: &Actor,
    raw_id: &str,
) -> Result<accounts::Account, AppError> {
    crate::admin::require_admin(state, user, actor, &format!("{ADMIN_PAGE}/{raw_id}")).await?;
    let id = raw_id.parse::<i64>().map_err(|_| AppError::NotFound)?;
    accounts::find_by_id(&state.db, id)
        .await?
        .ok_or(AppError::NotFound)
}

async fn admin_page(
    State(state): State<AppState>,
    ctx: PageContext,
    user: CurrentUser,
    actor: Actor,
    Path(raw_id): Path<String>,
    Query(query): Query<DoneQuery>,
) -> Result<Response, AppError> {
    let account = admin_target(&state, &user, &actor, &raw_id).await?;
    let own: &ActiveSession = &user.0;
    let sessions = session::list_for(&state.db, account.id, state.timeouts).await?;
    let shell = ctx.shell;
    let rows = rows(&shell, sessions, Some(&own.record.id_hash));
    let base = format!("{ADMIN_PAGE}/{}", account.id);
    let page = SessionsPage {
        title: shell.t1("sessions-admin-of", "name", &account.display_name),
        intro: shell.t("sessions-admin-intro-account"),
        end_all: rows
            .iter()
            .any(|r| !r.current)
            .then(|| (format!("{base}/end-all"), shell.t("sessions-end-all"))),
        base,
        done: done_message(&shell, &query),
        aside: Some((ADMIN_PAGE.to_owned(), shell.t("sessions-admin-back"))),
        rows,
        shell,
    };
    render(StatusCode::OK, &page)
}

async fn admin_end(
    State(state): State<AppState>,
    user: CurrentUser,
    actor: Actor,
    Path((raw_id, handle)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let account = admin_target(&state, &user, &actor, &raw_id).await?;
    if !valid_handle(&handle) {
        return Err(AppError::NotFound);
    }
    let id_hash = session::find_by_handle(&state.db, account.id, &handle)
        .await?
        .ok_or(AppError::NotFound)?;
    if id_hash == user.0.record.id_hash {
        return Err(AppError::BadRequest("error-bad-request"));
    }
    let ended = end_one(&state, &actor, account.id, &id_hash, &handle, "admin").await?;
    Ok(back_to(&format!("{ADMIN_PAGE}/{}", account.id), ended))
}

async fn admin_end_all(
    State(state): State<AppState>,
    user: CurrentUser,
    actor: Actor,
    Path(raw_id): Path<String>,
) -> Result<Response, AppError> {
    let account = admin_target(&state, &user, &actor, &raw_id).await?;
    let mut tx = state.db.begin().await?;
    // An administrator ending their own account's sessions keeps the one they are using.
    let ended = session::revoke_all_but(&mut tx, account.id, &user.0.record.id_hash).await?;
    let revocation = SessionRevocation {
        account_id: account.id,
        scope: "all",
        by: "admin",
        handle: None,
        sessions_ended: ended,
    };
    security_events::sessions_revoked(&mut tx, &actor, revocation).await?;
    tx.commit().await?;
    Ok(back_to(&format!("{ADMIN_PAGE}/{}", account.id), ended))
}

#[cfg(test)]
mod tests {
    use super::valid_handle;

    #[test]
    fn only_handles_as_written_are_looked_up() {
        assert!(valid_handle("0123456789abcdef"));
        for no in [
            "",
            "0123456789ABCDEF",
            "0123456789abcde",
            "0123456789abcdefa",
            "../etc/passwd0",
        ] {
            assert!(!valid_handle(no), "{no}");
        }
    }
}
