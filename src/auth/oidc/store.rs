//! Storage for single sign-on: pending authorization requests (single use), accounts keyed by
//! (issuer, subject) with their groups and roles, and logout tokens already used.

use crate::accounts::Role;
use crate::auth::oidc::Profile;
use crate::auth::session::hash_token;
use crate::db::{Database, DbError, Tx, now};
use crate::{with_db, with_tx};

/// How long a started sign-in may take at the provider.
pub const REQUEST_TTL_SECS: i64 = 600;

pub struct PendingRequest {
    pub browser_hash: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub return_to: String,
    pub expires_at: i64,
}

pub async fn save_request(
    db: &Database,
    state: &str,
    browser_token: &str,
    nonce: &str,
    pkce_verifier: &str,
    return_to: &str,
) -> Result<(), DbError> {
    let now = now();
    with_db!(db, pool => sqlx::query(
        "INSERT INTO oidc_requests (state_hash, browser_hash, nonce, pkce_verifier, return_to, \
                                    created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    )
    .bind(hash_token(state))
    .bind(hash_token(browser_token))
    .bind(nonce)
    .bind(pkce_verifier)
    .bind(return_to)
    .bind(now)
    .bind(now + REQUEST_TTL_SECS)
    .execute(pool).await.map(|_| ())?);
    Ok(())
}

/// Takes the request for `state` out of the table: a second callback with the same state finds
/// nothing (state is single use, and so is the PKCE verifier and the nonce with it).
pub async fn take_request(db: &Database, state: &str) -> Result<Option<PendingRequest>, DbError> {
    let row: Option<(String, String, String, String, i64)> = with_db!(db, pool => sqlx::query_as(
        "DELETE FROM oidc_requests WHERE state_hash = $1 \
         RETURNING browser_hash, nonce, pkce_verifier, return_to, expires_at"
    ).bind(hash_token(state)).fetch_optional(pool).await?);
    Ok(row.map(
        |(browser_hash, nonce, pkce_verifier, return_to, expires_at)| PendingRequest {
            browser_hash,
            nonce,
            pkce_verifier,
            return_to,
            expires_at,
        },
    ))
}

pub async fn purge_expired(db: &Database) -> Result<u64, DbError> {
    let now = now();
    let a = with_db!(db, pool => sqlx::query("DELETE FROM oidc_requests WHERE expires_at <= $1")
        .bind(now).execute(pool).await?.rows_affected());
    let b = with_db!(db, pool => sqlx::query("DELETE FROM oidc_logout_tokens WHERE expires_at <= $1")
        .bind(now).execute(pool).await?.rows_affected());
    Ok(a + b)
}

/// The roles an agent's groups give, per the configuration; every agent is an `agent`.
pub fn roles_for(groups: &[String], config: &crate::config::OidcConfig) -> Vec<Role> {
    let mut roles = vec![Role::Agent];
    let member = |list: &[String]| list.iter().any(|g| groups.contains(g));
    if member(&config.editor_groups) {
        roles.push(Role::Editor);
    }
    if member(&config.admin_groups) {
        roles.push(Role::Admin);
    }
    if member(&config.auditor_groups) {
        roles.push(Role::Auditor);
    }
    roles
}

/// Creates the account on first sign-in, or refreshes its name, e-mail, attributes, groups and
/// roles; all in one transaction. Returns the account id and whether it is disabled.
///
/// With SCIM provisioning (`crate::scim`) the same account may be managed by the directory:
/// - `disabled` is never changed here, so signing in cannot re-enable an account the directory
///   (or anyone) disabled;
/// - an account with a SCIM User keeps the name and e-mail the directory pushed;
/// - only memberships of groups made from the groups claim (source `oidc`) are replaced: a SCIM
///   group's members are the directory's to set;
/// - roles come from all the account's groups: the claim's (SSO groups) and the directory's
///   (SCIM groups); a claimed group that is a SCIM group counts only if SCIM made the agent a
///   member.
pub async fn upsert_account(
    tx: &mut Tx,
    issuer: &str,
    subject: &str,
    profile: &Profile,
    config: &crate::config::OidcConfig,
) -> Result<Upserted, DbError> {
    let now = now();
    let attributes = serde_json::Value::Object(profile.attributes.clone()).to_string();
    let upserted = with_tx!(tx, conn => {
        let (id, disabled, display_name): (i64, bool, String) = sqlx::query_as(
            "INSERT INTO accounts (kind, issuer, subject, display_name, email, attributes, \
                                   disabled, created_at, updated_at, last_sign_in_at) \
             VALUES ('oidc', $1, $2, $3, $4, $5, FALSE, $6, $6, $6) \
             ON CONFLICT (issuer, subject) DO UPDATE SET \
                 display_name = CASE WHEN EXISTS (SELECT 1 FROM scim_users s \
                     WHERE s.account_id = accounts.id) THEN accounts.display_name \
                     ELSE excluded.display_name END, \
                 email = CASE WHEN EXISTS (SELECT 1 FROM scim_users s \
                     WHERE s.account_id = accounts.id) THEN accounts.email \
                     ELSE excluded.email END, \
                 attributes = excluded.attributes, \
                 updated_at = excluded.updated_at, last_sign_in_at = excluded.last_sign_in_at \
             RETURNING id, disabled, display_name",
        )
        .bind(issuer)
        .bind(subject)
        .bind(&profile.display_name)
        .bind(&profile.email)
        .bind(&attributes)
        .bind(now)
        .fetch_one(&mut *conn)
        .await?;
        sqlx::query(
            "DELETE FROM account_groups WHERE account_id = $1 \
             AND group_id IN (SELECT id FROM groups WHERE source = 'oidc')",
        )
        .bind(id)
        .execute(&mut *conn)
        .await?;
        for group in &profile.groups {
            sqlx::query(
                "INSERT INTO groups (name, source, created_at) VALUES ($1, 'oidc', $2) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(group)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "INSERT INTO account_groups (account_id, group_id) \
                 SELECT $1, id FROM groups WHERE name = $2 AND source = 'oidc' \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(group)
            .execute(&mut *conn)
            .await?;
        }
        // Roles follow the groups the account is now in, whichever source set them: the
        // same rule SCIM applies when it changes a membership.
        let groups: Vec<String> = sqlx::query_scalar(
            "SELECT g.name FROM groups g JOIN account_groups ag ON ag.group_id = g.id \
             WHERE ag.account_id = $1",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
        let before: Vec<String> =
            sqlx::query_scalar("SELECT role FROM account_roles WHERE account_id = $1")
                .bind(id)
                .fetch_all(&mut *conn)
                .await?;
        let mut roles_before: Vec<Role> = before.iter().filter_map(|r| Role::parse(r)).collect();
        roles_before.sort();
        let mut roles_after = roles_for(&groups, config);
        roles_after.sort();
        sqlx::query("DELETE FROM account_roles WHERE account_id = $1").bind(id).execute(&mut *conn).await?;
        for role in &roles_after {
            sqlx::query("INSERT INTO account_roles (account_id, role) VALUES ($1, $2)")
                .bind(id)
                .bind(role.as_str())
                .execute(&mut *conn)
                .await?;
        }
        Upserted { id, disabled, display_name, roles_before, roles_after }
    });
    Ok(upserted)
}

/// What a sign-in's account refresh did.
#[derive(Debug, Clone)]
pub struct Upserted {
    pub id: i64,
    pub disabled: bool,
    /// The name the account now has (the directory's, when SCIM manages it).
    pub display_name: String,
    pub roles_before: Vec<Role>,
    pub roles_after: Vec<Role>,
}

/// The groups of an account, by name.
pub async fn groups_of(db: &Database, account_id: i64) -> Result<Vec<String>, DbError> {
    let names = with_db!(db, pool => sqlx::query_scalar(
        "SELECT g.name FROM groups g JOIN account_groups ag ON ag.group_id = g.id \
         WHERE ag.account_id = $1 ORDER BY g.name"
    ).bind(account_id).fetch_all(pool).await?);
    Ok(names)
}

/// Records a logout token's `jti`; false if it was already used (a replay).
pub async fn first_use_of_logout_token(tx: &mut Tx, jti: &str) -> Result<bool, DbError> {
    let inserted = with_tx!(tx, conn => sqlx::query(
        "INSERT INTO oidc_logout_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING"
    ).bind(jti).bind(now() + 2 * REQUEST_TTL_SECS).execute(conn).await?.rows_affected());
    Ok(inserted == 1)
}

/// Ends the sessions a logout token names: by provider session id (optionally also checking the
/// subject), or every session of the subject's account. Returns how many ended.
pub async fn end_sessions(
    tx: &mut Tx,
    issuer: &str,
    sid: Option<&str>,
    sub: Option<&str>,
) -> Result<u64, DbError> {
    let ended = match (sid, sub) {
        (Some(sid), Some(sub)) => with_tx!(tx, conn => sqlx::query(
            "DELETE FROM sessions WHERE oidc_sid = $1 AND account_id IN \
             (SELECT id FROM accounts WHERE issuer = $2 AND subject = $3)"
        ).bind(sid).bind(issuer).bind(sub).execute(conn).await?.rows_affected()),
        (Some(sid), None) => with_tx!(tx, conn => sqlx::query(
            "DELETE FROM sessions WHERE oidc_sid = $1 AND account_id IN \
             (SELECT id FROM accounts WHERE issuer = $2)"
        ).bind(sid).bind(issuer).execute(conn).await?.rows_affected()),
        (None, Some(sub)) => with_tx!(tx, conn => sqlx::query(
            "DELETE FROM sessions WHERE account_id IN \
             (SELECT id FROM accounts WHERE issuer = $1 AND subject = $2)"
        ).bind(issuer).bind(sub).execute(conn).await?.rows_affected()),
        (None, None) => 0,
    };
    Ok(ended)
}

/// The ID token kept with a session, for the logout hint.
pub async fn session_id_token(db: &Database, id_hash: &str) -> Result<Option<String>, DbError> {
    let token: Option<Option<String>> = with_db!(db, pool => sqlx::query_scalar(
        "SELECT oidc_id_token FROM sessions WHERE id_hash = $1"
    ).bind(id_hash).fetch_optional(pool).await?);
    Ok(token.flatten())
}

/// Links a new session to the provider's session and keeps the ID token for the logout hint.
pub async fn attach_to_session(
    tx: &mut Tx,
    id_hash: &str,
    sid: Option<&str>,
    id_token: &str,
) -> Result<(), DbError> {
    with_tx!(tx, conn => sqlx::query(
        "UPDATE sessions SET oidc_sid = $1, oidc_id_token = $2 WHERE id_hash = $3"
    ).bind(sid).bind(id_token).bind(id_hash).execute(conn).await.map(|_| ())?);
    Ok(())
}
