//! The one place where security-relevant events are reported. Each event is appended to the
//! tamper-evident audit log (`crate::audit`) in the caller's transaction — so it commits or
//! rolls back with the change it records — and, once appended, also written as a structured
//! `tracing` record on the `security` target (with its sequence number) for the operator's
//! journal. A new kind of event is added here, in `audit::catalogue` and in `audit/EVENTS.md`.
//!
//! Events that change nothing else (a refused sign-in, a rate-limit trip) use
//! [`record_alone`], which appends in a transaction of its own.
//!
//! Nothing passed here may be a secret: logins and addresses yes, passwords and tokens never.

use serde_json::{Value, json};

use crate::accounts::Role;
use crate::audit::appender::GroupAppender;
use crate::audit::entry::Entry;
use crate::audit::store::{self, NewEntry};
use crate::db::{Database, DbError, Tx};
use crate::http::metrics::Metrics;

/// Who acted and from where: the fields every audit entry carries besides the action.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    pub account_id: Option<i64>,
    /// The display name at the time of the action (the account may be renamed later).
    pub name: Option<String>,
    /// The client's address, after trusted-proxy handling.
    pub ip: Option<String>,
    /// The request id also found in the server's log and the `x-request-id` header.
    pub request_id: Option<String>,
}

impl Actor {
    /// Someone at the server's console (an admin command), named by the OS user running it.
    pub fn console() -> Self {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into());
        Self {
            name: Some(format!("console:{user}")),
            ..Self::default()
        }
    }

    /// A remote party acting without an account (a visitor, the identity provider, the
    /// directory), known by its address and request.
    pub fn anonymous(ip: &str, request_id: Option<&str>) -> Self {
        Self {
            ip: Some(ip.to_owned()),
            request_id: request_id.map(str::to_owned),
            ..Self::default()
        }
    }

    /// The same origin, acting as `account_id` (e.g. once a sign-in succeeded).
    pub fn as_account(&self, account_id: i64, name: &str) -> Self {
        Self {
            account_id: Some(account_id),
            name: Some(name.to_owned()),
            ..self.clone()
        }
    }

    /// What this actor did, as an entry to append.
    fn entry(
        &self,
        action: &'static str,
        target: Option<String>,
        outcome: &'static str,
        details: Value,
    ) -> NewEntry {
        NewEntry {
            actor_id: self.account_id,
            actor_name: self.name.clone(),
            actor_ip: self.ip.clone(),
            request_id: self.request_id.clone(),
            action,
            target,
            outcome,
            details,
        }
    }

    /// The same origin with a name but no account (e.g. "scim" for the directory).
    pub fn named(&self, name: &str) -> Self {
        Self {
            name: Some(name.to_owned()),
            ..self.clone()
        }
    }
}

/// Appends one entry in `tx` and mirrors it to the operator's log.
pub async fn record(
    tx: &mut Tx,
    actor: &Actor,
    action: &'static str,
    target: Option<String>,
    outcome: &'static str,
    details: Value,
) -> Result<(), DbError> {
    let entry = store::append(tx, actor.entry(action, target, outcome, details)).await?;
    mirror(&entry);
    Ok(())
}

/// The operator's copy of an appended entry, in the server's log.
fn mirror(entry: &Entry) {
    let (seq, action, outcome) = (entry.seq, entry.action.as_str(), entry.outcome.as_str());
    if outcome == "success" {
        tracing::info!(target: "security", seq, action, outcome,
            actor_id = entry.actor_id, actor = entry.actor_name, client_ip = entry.actor_ip,
            target = entry.target, details = %entry.details, "audited");
    } else {
        tracing::warn!(target: "security", seq, action, outcome,
            actor_id = entry.actor_id, actor = entry.actor_name, client_ip = entry.actor_ip,
            target = entry.target, details = %entry.details, "audited");
    }
}

/// Appends one entry that records no other change, through the group-commit appender (many
/// such entries share one commit); returns once it is committed.
pub async fn record_alone(
    audit: &GroupAppender,
    actor: &Actor,
    action: &'static str,
    target: Option<String>,
    outcome: &'static str,
    details: Value,
) -> Result<(), DbError> {
    let entry = audit
        .append(actor.entry(action, target, outcome, details))
        .await?;
    mirror(&entry);
    Ok(())
}

/// An entry planned before its transaction runs (SCIM plans its writes, then commits them with
/// their entries).
#[derive(Debug, Clone)]
pub struct Event {
    pub action: &'static str,
    pub target: Option<String>,
    pub outcome: &'static str,
    pub details: Value,
}

pub async fn record_event(tx: &mut Tx, actor: &Actor, event: Event) -> Result<(), DbError> {
    record(
        tx,
        actor,
        event.action,
        event.target,
        event.outcome,
        event.details,
    )
    .await
}

/// An account's roles changed because its groups did (`cause`: "scim" or "sso").
pub async fn roles_changed(
    tx: &mut Tx,
    actor: &Actor,
    account_id: i64,
    cause: &str,
    before: &[Role],
    after: &[Role],
) -> Result<(), DbError> {
    let details =
        json!({ "cause": cause, "before": roles_text(before), "after": roles_text(after) });
    record(
        tx,
        actor,
        "account.roles_change",
        account_target(account_id),
        "success",
        details,
    )
    .await
}

/// Why a sign-in was refused; stable strings, used as metric labels and audit details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInFailure {
    UnknownAccount,
    WrongPassword,
    AccountDisabled,
    LockedOut,
    LocalSignInDisabled,
    OneTimePasswordExpired,
}

impl SignInFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownAccount => "unknown_account",
            Self::WrongPassword => "wrong_password",
            Self::AccountDisabled => "account_disabled",
            Self::LockedOut => "locked_out",
            Self::LocalSignInDisabled => "local_sign_in_disabled",
            Self::OneTimePasswordExpired => "one_time_password_expired",
        }
    }
}

fn account_target(account_id: i64) -> Option<String> {
    Some(format!("account:{account_id}"))
}

/// A password sign-in succeeded; `actor` is the account that signed in.
pub async fn signed_in(tx: &mut Tx, actor: &Actor, login: &str) -> Result<(), DbError> {
    let target = actor.account_id.and_then(account_target);
    let details = json!({ "method": "password", "login": login });
    record(tx, actor, "auth.sign_in", target, "success", details).await
}

/// A password sign-in was refused. `tx` also holds the backoff counter's update, when any.
pub async fn sign_in_failed(
    tx: &mut Tx,
    metrics: &Metrics,
    actor: &Actor,
    login: &str,
    reason: SignInFailure,
) -> Result<(), DbError> {
    metrics.count_sign_in_failure(reason.as_str());
    let details = json!({ "method": "password", "login": login, "reason": reason.as_str() });
    record(tx, actor, "auth.sign_in_failure", None, "denied", details).await
}

/// A password sign-in refused before any check that changes state (locked out, local sign-in
/// turned off).
pub async fn sign_in_refused(
    audit: &GroupAppender,
    metrics: &Metrics,
    actor: &Actor,
    login: &str,
    reason: SignInFailure,
) -> Result<(), DbError> {
    metrics.count_sign_in_failure(reason.as_str());
    let details = json!({ "method": "password", "login": login, "reason": reason.as_str() });
    record_alone(
        audit,
        actor,
        "auth.sign_in_failure",
        None,
        "denied",
        details,
    )
    .await
}

/// A single sign-on refused: `code` is the check that failed (see `auth::oidc`), `detail` a
/// short explanation that never contains a token.
pub async fn sso_sign_in_failed(
    audit: &GroupAppender,
    metrics: &Metrics,
    actor: &Actor,
    code: &'static str,
    detail: &str,
) -> Result<(), DbError> {
    metrics.count_sign_in_failure(code);
    let details = json!({ "method": "sso", "reason": code, "detail": detail });
    record_alone(
        audit,
        actor,
        "auth.sign_in_failure",
        None,
        "denied",
        details,
    )
    .await
}

/// A single sign-on succeeded; the account's profile, groups and roles were refreshed from the
/// provider in the same transaction (`roles_before` → `roles_after`).
pub async fn sso_signed_in(
    tx: &mut Tx,
    actor: &Actor,
    issuer: &str,
    subject: &str,
    groups: &[String],
    roles_before: &[Role],
    roles_after: &[Role],
) -> Result<(), DbError> {
    let target = actor.account_id.and_then(account_target);
    let details =
        json!({ "method": "sso", "issuer": issuer, "subject": subject, "groups": groups });
    record(tx, actor, "auth.sign_in", target, "success", details).await?;
    match actor.account_id {
        Some(id) if roles_before != roles_after => {
            roles_changed(tx, actor, id, "sso", roles_before, roles_after).await
        }
        _ => Ok(()),
    }
}

/// The identity provider ended sessions by a back-channel logout token.
pub async fn backchannel_logout(
    tx: &mut Tx,
    actor: &Actor,
    sid: Option<&str>,
    sub: Option<&str>,
    sessions_ended: u64,
) -> Result<(), DbError> {
    let details = json!({ "sid": sid, "sub": sub, "sessions_ended": sessions_ended });
    record(
        tx,
        actor,
        "auth.backchannel_logout",
        None,
        "success",
        details,
    )
    .await
}

pub async fn backchannel_logout_refused(
    audit: &GroupAppender,
    actor: &Actor,
    reason: &str,
    detail: &str,
) -> Result<(), DbError> {
    let details = json!({ "reason": reason, "detail": detail });
    record_alone(
        audit,
        actor,
        "auth.backchannel_logout_failure",
        None,
        "denied",
        details,
    )
    .await
}

pub async fn signed_out(tx: &mut Tx, actor: &Actor) -> Result<(), DbError> {
    let target = actor.account_id.and_then(account_target);
    record(tx, actor, "auth.sign_out", target, "success", json!({})).await
}

pub async fn password_changed(
    tx: &mut Tx,
    actor: &Actor,
    other_sessions_ended: u64,
) -> Result<(), DbError> {
    let target = actor.account_id.and_then(account_target);
    let details = json!({ "other_sessions_ended": other_sessions_ended });
    record(
        tx,
        actor,
        "auth.password_change",
        target,
        "success",
        details,
    )
    .await
}

pub async fn password_change_refused(audit: &GroupAppender, actor: &Actor) -> Result<(), DbError> {
    let target = actor.account_id.and_then(account_target);
    let details = json!({ "reason": "wrong_current_password" });
    record_alone(
        audit,
        actor,
        "auth.password_change_failure",
        target,
        "denied",
        details,
    )
    .await
}

/// The break-glass administrator was created or reset from the console.
pub async fn break_glass_reset(
    tx: &mut Tx,
    actor: &Actor,
    account_id: i64,
    login: &str,
    sessions_ended: u64,
) -> Result<(), DbError> {
    let details = json!({ "login": login, "sessions_ended": sessions_ended });
    record(
        tx,
        actor,
        "account.break_glass_reset",
        account_target(account_id),
        "success",
        details,
    )
    .await
}

/// A rate limit tripped. `report` is false for the second and later trips of an address within
/// a minute: those are counted in the metrics only, so a flood cannot flood the log too.
pub async fn rate_limited(
    audit: &GroupAppender,
    metrics: &Metrics,
    actor: &Actor,
    scope: &'static str,
    retry_after_secs: u64,
    report: bool,
) -> Result<(), DbError> {
    metrics.count_rate_limited(scope);
    if !report {
        return Ok(());
    }
    let details = json!({ "scope": scope, "retry_after_secs": retry_after_secs });
    record_alone(
        audit,
        actor,
        "security.rate_limited",
        None,
        "denied",
        details,
    )
    .await
}

pub fn roles_text(roles: &[Role]) -> Vec<&'static str> {
    roles.iter().map(|r| r.as_str()).collect()
}

/// A SCIM request presented no bearer token or a wrong one (`reason`: missing_token,
/// wrong_token). The token itself is never passed here.
pub async fn scim_auth_failed(
    audit: &GroupAppender,
    actor: &Actor,
    reason: &'static str,
) -> Result<(), DbError> {
    record_alone(
        audit,
        actor,
        "scim.auth_failure",
        None,
        "denied",
        json!({ "reason": reason }),
    )
    .await
}

/// `beffroi serve` started with a configuration file whose bytes hash to `config_sha256`;
/// `config_changed` compares with the previous start (None when unknown: first start, or the
/// previous entry was purged).
pub async fn server_started(
    db: &Database,
    audit: &GroupAppender,
    config_sha256: &str,
    backend: &str,
) -> Result<(), DbError> {
    let previous = store::latest_details(db, "server.start").await?;
    let config_changed = previous
        .as_ref()
        .and_then(|d| d.get("config_sha256"))
        .and_then(Value::as_str)
        .map(|before| before != config_sha256);
    let details = json!({ "version": env!("CARGO_PKG_VERSION"), "config_sha256": config_sha256,
        "config_changed": config_changed, "backend": backend });
    record_alone(
        audit,
        &Actor::console(),
        "server.start",
        None,
        "success",
        details,
    )
    .await
}

/// `beffroi audit verify` ran: `problem` is the tampering found, if any.
pub async fn audit_verified(
    audit: &GroupAppender,
    actor: &Actor,
    entries: u64,
    checkpoints: usize,
    problem: Option<&str>,
) -> Result<(), DbError> {
    let outcome = if problem.is_some() {
        "failure"
    } else {
        "success"
    };
    let details = json!({ "entries": entries, "checkpoints": checkpoints, "problem": problem });
    record_alone(audit, actor, "audit.verify", None, outcome, details).await
}

/// A checkpoint was signed (`trigger`: "command" or "periodic").
pub async fn checkpoint_written(
    audit: &GroupAppender,
    actor: &Actor,
    tree_size: u64,
    root: &[u8],
    trigger: &str,
) -> Result<(), DbError> {
    let details = json!({ "tree_size": tree_size, "root": hex::encode(root), "trigger": trigger });
    record_alone(audit, actor, "audit.checkpoint", None, "success", details).await
}

/// The retention purge, recorded in the transaction that purges.
pub async fn audit_purged(
    tx: &mut Tx,
    actor: &Actor,
    before_time_us: i64,
    purged: u64,
    retention_days: u32,
) -> Result<(), DbError> {
    let details = json!({ "before_time_us": before_time_us, "purged": purged,
        "retention_days": retention_days });
    record(tx, actor, "audit.purge", None, "success", details).await
}

/// An export of the audit log (`format`: "jsonl" or "csv"), recorded before it is written: the
/// `count` of entries matching `filter` among the first `log_size`.
pub async fn audit_exported(
    tx: &mut Tx,
    actor: &Actor,
    format: &str,
    filter: &crate::audit::query::Filter,
    count: u64,
    log_size: u64,
) -> Result<(), DbError> {
    let details = json!({ "format": format, "filter": filter, "count": count,
        "log_size": log_size });
    record(tx, actor, "audit.export", None, "success", details).await
}

/// A handler refused a signed-in agent or a visitor (403): `path` is what was asked for.
pub async fn access_denied(
    audit: &GroupAppender,
    actor: &Actor,
    path: String,
    method: &str,
    reason: &'static str,
) -> Result<(), DbError> {
    let details = json!({ "method": method, "reason": reason });
    record_alone(audit, actor, "access.denied", Some(path), "denied", details).await
}

/// The CSRF check refused a state-changing request (`reason`: which part failed).
pub async fn csrf_refused(
    audit: &GroupAppender,
    actor: &Actor,
    path: String,
    method: &str,
    reason: &'static str,
) -> Result<(), DbError> {
    let details = json!({ "method": method, "reason": reason });
    record_alone(audit, actor, "csrf.refused", Some(path), "denied", details).await
}

/// Sessions of an account ended by a person (not by sign-out, expiry or a password change).
pub struct SessionRevocation<'a> {
    pub account_id: i64,
    /// `one`, `others` (all but the agent's current one) or `all`.
    pub scope: &'static str,
    /// `self` (the agent, from another session) or `admin`.
    pub by: &'static str,
    /// The session's handle when one was named (never its token or hash).
    pub handle: Option<&'a str>,
    pub sessions_ended: u64,
}

pub async fn sessions_revoked(
    tx: &mut Tx,
    actor: &Actor,
    revocation: SessionRevocation<'_>,
) -> Result<(), DbError> {
    let details = json!({ "scope": revocation.scope, "by": revocation.by,
        "session": revocation.handle, "sessions_ended": revocation.sessions_ended });
    record(
        tx,
        actor,
        "auth.session_revoke",
        account_target(revocation.account_id),
        "success",
        details,
    )
    .await
}
