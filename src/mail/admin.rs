//! `/admin/mail`: the administrator's view of the outbox. It says whether a relay is set, how
//! many messages wait, are being retried or were given up, lists the ones that need attention
//! (given up, or retrying) with the relay's last error, and lets an administrator send a
//! message again at once or discard it, and try the relay with a test message.
//!
//! The worker is never bypassed for agents' messages: "send again" only makes a row due now
//! with a fresh set of attempts, and is refused while a node holds the row's lease, so a
//! message is never sent twice by a click racing a delivery. The test message is the one
//! exception, sent from the request so the administrator reads the relay's verdict on the page
//! (bounded by the relay timeout). Every action is audited.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::db::{Database, DbError, Tx, now};
use crate::http::error::AppError;
use crate::http::extract::{CurrentUser, Form};
use crate::http::pages::{PageContext, Shell, render};
use crate::routes::RouteTable;
use crate::security_events::{self, Actor};
use crate::{with_db, with_tx};

pub const ADMIN_PAGE: &str = "/admin/mail";
/// Rows listed at most (the oldest first among those needing attention).
const LISTED: i64 = 200;

pub fn routes(table: RouteTable) -> RouteTable {
    table
        .get(ADMIN_PAGE, page)
        .post("/admin/mail/test", send_test)
        .post("/admin/mail/{id}/retry", retry)
        .post("/admin/mail/{id}/discard", discard)
}

/// How many messages are in each state.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Pending, never tried yet.
    pub waiting: i64,
    /// Pending after at least one failed attempt.
    pub retrying: i64,
    pub failed: i64,
    /// Sent and still kept (see `outbox::SENT_KEPT_SECS`).
    pub sent: i64,
}

pub async fn counts(db: &Database) -> Result<OutboxCounts, DbError> {
    let rows: Vec<(String, bool, i64)> = with_db!(db, pool => sqlx::query_as(
        "SELECT status, attempts > 0 AS tried, COUNT(*) FROM mail_outbox GROUP BY status, attempts > 0"
    ).fetch_all(pool).await?);
    let mut counts = OutboxCounts::default();
    for (status, tried, n) in rows {
        match (status.as_str(), tried) {
            ("pending", false) => counts.waiting += n,
            ("pending", true) => counts.retrying += n,
            ("failed", _) => counts.failed += n,
            ("sent", _) => counts.sent += n,
            _ => {}
        }
    }
    Ok(counts)
}

/// A message that needs an administrator's eye.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TroubledMessage {
    pub id: i64,
    pub status: String,
    pub recipient: String,
    pub recipient_name: Option<String>,
    pub subject: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub next_attempt_at: i64,
    pub failed_at: Option<i64>,
}

/// Given-up messages, then retrying ones, oldest first within each.
pub async fn troubled(db: &Database) -> Result<Vec<TroubledMessage>, DbError> {
    Ok(with_db!(db, pool => sqlx::query_as(
        "SELECT m.id, m.status, m.recipient, a.display_name AS recipient_name, m.subject, \
         m.attempts, m.last_error, m.created_at, m.next_attempt_at, m.failed_at \
         FROM mail_outbox m LEFT JOIN accounts a ON a.id = m.account_id \
         WHERE m.status = 'failed' OR (m.status = 'pending' AND m.attempts > 0) \
         ORDER BY CASE WHEN m.status = 'failed' THEN 0 ELSE 1 END, m.created_at, m.id LIMIT $1"
    ).bind(LISTED).fetch_all(pool).await?))
}

/// What happened to a "send again" or "discard".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    Done,
    /// A worker holds the row right now: try again in a moment.
    Busy,
    /// No such row (already sent, purged, or discarded by someone else).
    Gone,
}

/// Makes a failed or retrying message due now with a full set of attempts, unless a worker
/// holds its lease.
pub async fn requeue(tx: &mut Tx, id: i64, at: i64) -> Result<Handled, DbError> {
    let n = with_tx!(tx, conn => sqlx::query(
        "UPDATE mail_outbox SET status = 'pending', attempts = 0, next_attempt_at = $2, \
         failed_at = NULL, claimed_until = NULL, claim_token = NULL \
         WHERE id = $1 AND status IN ('pending', 'failed') \
         AND (claimed_until IS NULL OR claimed_until < $2)"
    ).bind(id).bind(at).execute(conn).await?.rows_affected());
    if n == 1 {
        return Ok(Handled::Done);
    }
    exists_unsent(tx, id).await
}

/// Deletes a message that was not sent, unless a worker holds its lease.
pub async fn remove(tx: &mut Tx, id: i64, at: i64) -> Result<Handled, DbError> {
    let n = with_tx!(tx, conn => sqlx::query(
        "DELETE FROM mail_outbox WHERE id = $1 AND status IN ('pending', 'failed') \
         AND (claimed_until IS NULL OR claimed_until < $2)"
    ).bind(id).bind(at).execute(conn).await?.rows_affected());
    if n == 1 {
        return Ok(Handled::Done);
    }
    exists_unsent(tx, id).await
}

async fn exists_unsent(tx: &mut Tx, id: i64) -> Result<Handled, DbError> {
    let found: Option<i64> = with_tx!(tx, conn => sqlx::query_scalar(
        "SELECT id FROM mail_outbox WHERE id = $1 AND status IN ('pending', 'failed')"
    ).bind(id).fetch_optional(conn).await?);
    Ok(if found.is_some() {
        Handled::Busy
    } else {
        Handled::Gone
    })
}

struct Line {
    id: i64,
    given_up: bool,
    recipient: String,
    subject: String,
    attempts: i64,
    error: String,
    /// When it was queued.
    queued: String,
    /// "Given up on …" or "Next attempt …".
    state: String,
    retry_label: String,
    discard_label: String,
}

#[derive(Template)]
#[template(path = "admin_mail.html")]
struct MailPage {
    shell: Shell,
    relay: Option<String>,
    counts: OutboxCounts,
    lines: Vec<Line>,
    notice: Option<(bool, String)>,
    test_to: String,
}

#[derive(Deserialize, Default)]
struct Notice {
    done: Option<String>,
}

fn notice(shell: &Shell, query: &Notice) -> Option<(bool, String)> {
    let (ok, id) = match query.done.as_deref()? {
        "retried" => (true, "mail-admin-retried"),
        "discarded" => (true, "mail-admin-discarded"),
        "busy" => (false, "mail-admin-busy"),
        "gone" => (false, "mail-admin-gone"),
        _ => return None,
    };
    Some((ok, shell.t(id)))
}

async fn mail_page(
    state: &AppState,
    shell: Shell,
    notice: Option<(bool, String)>,
    test_to: String,
) -> Result<MailPage, AppError> {
    let counts = counts(&state.db).await?;
    let lines = troubled(&state.db)
        .await?
        .into_iter()
        .map(|m| {
            let given_up = m.status == "failed";
            let recipient = match m.recipient_name {
                Some(name) => format!("{name} <{}>", m.recipient),
                None => m.recipient,
            };
            let state = if given_up {
                shell.t1(
                    "mail-admin-given-up",
                    "when",
                    &shell.when(m.failed_at.unwrap_or(m.next_attempt_at)),
                )
            } else {
                shell.t1("mail-admin-next", "when", &shell.when(m.next_attempt_at))
            };
            let id = m.id.to_string();
            Line {
                id: m.id,
                given_up,
                recipient,
                subject: m.subject,
                attempts: m.attempts,
                error: m.last_error.unwrap_or_default(),
                queued: shell.when(m.created_at),
                state,
                retry_label: shell.t1("mail-admin-retry-label", "id", &id),
                discard_label: shell.t1("mail-admin-discard-label", "id", &id),
            }
        })
        .collect();
    Ok(MailPage {
        relay: state.mail.as_ref().map(|m| m.describe().to_owned()),
        counts,
        lines,
        notice,
        test_to,
        shell,
    })
}

async fn page(
    State(state): State<AppState>,
    ctx: PageContext,
    user: CurrentUser,
    actor: Actor,
    Query(query): Query<Notice>,
) -> Result<Response, AppError> {
    crate::admin::require_admin(&state, &user, &actor, ADMIN_PAGE).await?;
    let notice = notice(&ctx.shell, &query);
    let page = mail_page(&state, ctx.shell, notice, String::new()).await?;
    render(StatusCode::OK, &page)
}

fn message_id(raw: &str) -> Result<i64, AppError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(AppError::NotFound)
}

fn back(done: Handled, success: &str) -> Response {
    let word = match done {
        Handled::Done => success,
        Handled::Busy => "busy",
        Handled::Gone => "gone",
    };
    Redirect::to(&format!("{ADMIN_PAGE}?done={word}")).into_response()
}

/// What an administrator does to one message.
#[derive(Clone, Copy)]
enum Act {
    Retry,
    Discard,
}

async fn act_on(
    state: &AppState,
    user: &CurrentUser,
    actor: &Actor,
    raw: &str,
    act: Act,
) -> Result<Response, AppError> {
    crate::admin::require_admin(state, user, actor, ADMIN_PAGE).await?;
    let id = message_id(raw)?;
    let mut tx = state.db.begin().await?;
    let (handled, action, done) = match act {
        Act::Retry => (requeue(&mut tx, id, now()).await?, "mail.retry", "retried"),
        Act::Discard => (
            remove(&mut tx, id, now()).await?,
            "mail.discard",
            "discarded",
        ),
    };
    if handled == Handled::Done {
        security_events::record(
            &mut tx,
            actor,
            action,
            Some(format!("mail:{id}")),
            "success",
            json!({ "message_id": id }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(back(handled, done))
}

async fn retry(
    State(state): State<AppState>,
    user: CurrentUser,
    actor: Actor,
    Path(raw): Path<String>,
) -> Result<Response, AppError> {
    act_on(&state, &user, &actor, &raw, Act::Retry).await
}

async fn discard(
    State(state): State<AppState>,
    user: CurrentUser,
    actor: Actor,
    Path(raw): Path<String>,
) -> Result<Response, AppError> {
    act_on(&state, &user, &actor, &raw, Act::Discard).await
}

#[derive(Deserialize)]
struct TestForm {
    to: String,
}

/// The part after `@`, which is what the audit log keeps of a test address.
fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
}

async fn send_test(
    State(state): State<AppState>,
    ctx: PageContext,
    user: CurrentUser,
    actor: Actor,
    Form(form): Form<TestForm>,
) -> Result<Response, AppError> {
    crate::admin::require_admin(&state, &user, &actor, ADMIN_PAGE).await?;
    let shell = ctx.shell;
    let to = form.to.trim().to_owned();
    let Some(mailer) = state.mail.clone() else {
        let notice = Some((false, shell.t("mail-admin-no-relay")));
        let page = mail_page(&state, shell, notice, to).await?;
        return render(StatusCode::CONFLICT, &page);
    };
    if to.len() > 254 || to.parse::<lettre::Address>().is_err() {
        let notice = Some((false, shell.t("mail-admin-test-bad-address")));
        let page = mail_page(&state, shell, notice, to).await?;
        return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
    }
    let (fr, en) = (crate::i18n::Lang::Fr, crate::i18n::Lang::En);
    let body = format!(
        "{}\n\n-- \n\n{}\n\n{}\n",
        fr.t("mail-admin-test-body"),
        en.t("mail-admin-test-body"),
        mailer.public_url()
    );
    let message_id = super::message::new_message_id(mailer.from())
        .map_err(|e| AppError::Internal(format!("no randomness for a Message-ID: {e}")))?;
    let sent = mailer
        .send(
            &to,
            &fr.t("mail-test-subject"),
            &body,
            &message_id,
            "fr, en",
        )
        .await;
    let (outcome, details, notice) = match &sent {
        Ok(()) => (
            "success",
            json!({ "to_domain": domain_of(&to), "relay": mailer.describe() }),
            (true, shell.t1("mail-admin-test-sent", "to", &to)),
        ),
        Err(e) => {
            tracing::warn!(kind = e.kind, error = %e, "test message refused by the relay");
            (
                "failure",
                json!({ "to_domain": domain_of(&to), "relay": mailer.describe(),
                        "error_kind": e.kind, "smtp_code": e.code }),
                (
                    false,
                    shell.t1("mail-admin-test-failed", "error", &e.to_string()),
                ),
            )
        }
    };
    security_events::record_alone(&state.audit, &actor, "mail.test", None, outcome, details)
        .await?;
    let status = if sent.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::BAD_GATEWAY
    };
    let page = mail_page(&state, shell, Some(notice), to).await?;
    render(status, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_domain_of_a_test_address_is_kept() {
        assert_eq!(domain_of("agent@mairie.example"), "mairie.example");
        assert_eq!(domain_of("a@b@c.example"), "c.example");
        assert_eq!(domain_of("nobody"), "");
    }

    #[test]
    fn ids_are_positive_integers() {
        assert_eq!(message_id("42").ok(), Some(42));
        for bad in ["0", "-1", "x", "", "1.5"] {
            assert!(message_id(bad).is_err(), "{bad}");
        }
    }
}
