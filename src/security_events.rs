//! The one place where security-relevant events are reported: sign-in, sign-in failure (with its
//! reason), sign-out, password change,
//! break-glass reset and rate-limit trips. Today each event is a structured
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
) {
    metrics.count_rate_limited(scope);
    tracing::warn!(target: "security", event = "rate_limit", scope, client_ip, retry_after_secs,
        "rate limit tripped");
}
