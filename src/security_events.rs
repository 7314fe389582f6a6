//! The one place where security-relevant events are reported: sign-in, sign-in failure (with its
//! reason), sign-out, password change,
//! break-glass reset, rate-limit trips and SCIM provisioning (users and groups created, changed,
//! deactivated or deleted, membership and role changes, refused tokens). Today each event is a structured
//! `tracing` record on the `security` target and a metrics counter; the audit log appends here
//! too, so a new kind of event is added here and nowhere else.
//!
//! Nothing passed here may be a secret: logins and addresses yes, passwords and tokens never.

use crate::http::metrics::Metrics;

/// Why a sign-in was refused; stable strings, used as metric labels and log fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInFailure {
    UnknownAccount,
    WrongPassword,
    AccountDisabled,
    LockedOut,
    LocalSignInDisabled,
}

impl SignInFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownAccount => "unknown_account",
            Self::WrongPassword => "wrong_password",
            Self::AccountDisabled => "account_disabled",
            Self::LockedOut => "locked_out",
            Self::LocalSignInDisabled => "local_sign_in_disabled",
        }
    }
}

pub fn signed_in(account_id: i64, login: &str, client_ip: &str) {
    tracing::info!(target: "security", event = "sign_in", method = "password", account_id, login,
        client_ip, "signed in");
}

pub fn sign_in_failed(metrics: &Metrics, login: &str, client_ip: &str, reason: SignInFailure) {
    metrics.count_sign_in_failure(reason.as_str());
    tracing::warn!(target: "security", event = "sign_in_failure", method = "password", login, client_ip,
        reason = reason.as_str(), "sign-in refused");
}

/// A single sign-on refused: `code` is the check that failed (see `auth::oidc`), `detail` a
/// short explanation that never contains a token.
pub fn sso_sign_in_failed(metrics: &Metrics, client_ip: &str, code: &'static str, detail: &str) {
    metrics.count_sign_in_failure(code);
    tracing::warn!(target: "security", event = "sign_in_failure", method = "sso", client_ip,
        reason = code, detail, "sign-in refused");
}

pub fn sso_signed_in(
    account_id: i64,
    issuer: &str,
    subject: &str,
    client_ip: &str,
    groups: &[String],
) {
    let groups = groups.join(",");
    tracing::info!(target: "security", event = "sign_in", method = "sso", account_id, issuer,
        subject, client_ip, groups, "signed in through the identity provider");
}

pub fn backchannel_logout(
    client_ip: &str,
    sid: Option<&str>,
    sub: Option<&str>,
    sessions_ended: u64,
) {
    tracing::info!(target: "security", event = "backchannel_logout", client_ip, sid, sub,
        sessions_ended, "identity provider ended sessions");
}

pub fn backchannel_logout_refused(client_ip: &str, reason: &str, detail: &str) {
    tracing::warn!(target: "security", event = "backchannel_logout_failure", client_ip, reason,
        detail, "back-channel logout refused");
}

pub fn signed_out(account_id: i64, client_ip: &str) {
    tracing::info!(target: "security", event = "sign_out", account_id, client_ip, "signed out");
}

pub fn password_changed(account_id: i64, client_ip: &str, other_sessions_ended: u64) {
    tracing::info!(target: "security", event = "password_change", account_id, client_ip,
        other_sessions_ended, "password changed");
}

pub fn password_change_refused(account_id: i64, client_ip: &str) {
    tracing::warn!(target: "security", event = "password_change_failure", account_id, client_ip,
        "password change refused: wrong current password");
}

pub fn break_glass_reset(account_id: i64, login: &str) {
    tracing::warn!(target: "security", event = "break_glass_reset", account_id, login,
        "break-glass administrator created or reset from the console");
}

pub fn rate_limited(
    metrics: &Metrics,
    scope: &'static str,
    client_ip: &str,
    retry_after_secs: u64,
    report: bool,
) {
    metrics.count_rate_limited(scope);
    // `report` is false for the second and later trips of an address within a minute.
    if report {
        tracing::warn!(target: "security", event = "rate_limit", scope, client_ip, retry_after_secs,
            "rate limit tripped (further trips from this address in the next minute are counted, not logged)");
    }
}

fn roles_text(roles: &[crate::accounts::Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn ids_text(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// A SCIM request presented no bearer token or a wrong one (`reason`: missing_token,
/// wrong_token). The token itself is never passed here.
pub fn scim_auth_failed(client_ip: &str, reason: &'static str) {
    tracing::warn!(target: "security", event = "scim_auth_failure", client_ip, reason,
        "SCIM request refused: bad bearer token");
}

/// The directory created a User. `how`: "new" (a new account), "adopted" (an account that had
/// signed in by SSO before) or "revived" (the account of a User deleted earlier).
pub fn scim_user_created(
    client_ip: &str,
    scim_id: &str,
    account_id: i64,
    user_name: &str,
    how: &'static str,
) {
    tracing::info!(target: "security", event = "scim_user_created", client_ip, scim_id,
        account_id, user_name, how, "directory provisioned an agent");
}

/// The directory replaced a User (PUT).
pub fn scim_user_replaced(client_ip: &str, scim_id: &str, account_id: i64, user_name: &str) {
    tracing::info!(target: "security", event = "scim_user_replaced", client_ip, scim_id,
        account_id, user_name, "directory replaced an agent");
}

/// The directory patched a User.
pub fn scim_user_patched(
    client_ip: &str,
    scim_id: &str,
    account_id: i64,
    user_name: &str,
    operations: usize,
) {
    tracing::info!(target: "security", event = "scim_user_patched", client_ip, scim_id,
        account_id, user_name, operations, "directory patched an agent");
}

/// The directory set `active` to false: the account is disabled and its sessions ended.
pub fn scim_user_deactivated(
    client_ip: &str,
    scim_id: &str,
    account_id: i64,
    user_name: &str,
    sessions_ended: u64,
) {
    tracing::warn!(target: "security", event = "scim_user_deactivated", client_ip, scim_id,
        account_id, user_name, sessions_ended, "directory deactivated an agent");
}

/// The directory made a disabled account active again.
pub fn scim_user_reactivated(client_ip: &str, scim_id: &str, account_id: i64, user_name: &str) {
    tracing::warn!(target: "security", event = "scim_user_reactivated", client_ip, scim_id,
        account_id, user_name, "directory reactivated an agent");
}

/// The directory deleted a User: the account stays, disabled, for history.
pub fn scim_user_deleted(
    client_ip: &str,
    scim_id: &str,
    account_id: i64,
    user_name: &str,
    sessions_ended: u64,
) {
    tracing::warn!(target: "security", event = "scim_user_deleted", client_ip, scim_id,
        account_id, user_name, sessions_ended, "directory deleted an agent");
}

/// The directory created a Group; `adopted` when it took over an SSO group of that name.
pub fn scim_group_created(
    client_ip: &str,
    scim_id: &str,
    group_id: i64,
    name: &str,
    adopted: bool,
) {
    tracing::info!(target: "security", event = "scim_group_created", client_ip, scim_id,
        group_id, name, adopted, "directory created a group");
}

/// The directory replaced or patched a Group (`operation`: "replace" or "patch").
pub fn scim_group_changed(
    client_ip: &str,
    scim_id: &str,
    group_id: i64,
    name: &str,
    operation: &'static str,
) {
    tracing::info!(target: "security", event = "scim_group_changed", client_ip, scim_id,
        group_id, name, operation, "directory changed a group");
}

/// The directory deleted a Group.
pub fn scim_group_deleted(client_ip: &str, scim_id: &str, group_id: i64, name: &str) {
    tracing::warn!(target: "security", event = "scim_group_deleted", client_ip, scim_id,
        group_id, name, "directory deleted a group");
}

/// Accounts joined or left a group through SCIM (by account id).
pub fn scim_membership_changed(
    client_ip: &str,
    scim_id: &str,
    group_id: i64,
    name: &str,
    added: &[i64],
    removed: &[i64],
) {
    let (added, removed) = (ids_text(added), ids_text(removed));
    tracing::info!(target: "security", event = "scim_membership_changed", client_ip, scim_id,
        group_id, name, added, removed, "directory changed group membership");
}

/// An account's roles changed because SCIM changed its groups (`oidc.*_groups`).
pub fn scim_roles_changed(
    client_ip: &str,
    account_id: i64,
    before: &[crate::accounts::Role],
    after: &[crate::accounts::Role],
) {
    let (before, after) = (roles_text(before), roles_text(after));
    tracing::warn!(target: "security", event = "roles_changed", cause = "scim", client_ip,
        account_id, before, after, "roles recomputed from group membership");
}
