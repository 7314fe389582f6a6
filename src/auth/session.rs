//! Server-side sessions. The browser holds a random 256-bit token in the `__Host-beffroi`
//! cookie; the database holds only its SHA-256, so a leaked copy of the table cannot be replayed.
//! A session ends at sign-out, after `idle_timeout` without use, `absolute_timeout` after
//! sign-in, when its account is disabled or its password changes, when the agent ends it from
//! another of their sessions (`/account/sessions`), or when an administrator revokes it
//! (`/admin/sessions`).
//!
//! Tokens are compared by hash lookup only; they are never logged. Pages that list sessions name
//! each by its [`handle`], never by its token or hash.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::accounts::{self, Account};
use crate::audience::AgentAudience;
use crate::db::{Database, DbError, Tx, now};
use crate::{with_db, with_tx};

/// The session cookie. `__Host-` makes the browser refuse it unless it is Secure, has no Domain
/// and has Path=/, so a sibling subdomain cannot plant or overwrite it.
pub const SESSION_COOKIE: &str = "__Host-beffroi";

/// How often `last_seen_at` is written: idle expiry is precise to this many seconds, and most
/// requests do not write to the database.
const TOUCH_EVERY_SECS: i64 = 60;

#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub id_hash: String,
    pub account_id: i64,
    pub csrf_token: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

/// A session found valid for this request, with its account.
#[derive(Debug, Clone)]
pub struct ActiveSession {
    pub record: SessionRecord,
    pub account: Account,
    /// Where the account stands in spaces, read with the session: most agents write nowhere
    /// and manage nothing, and the pages then skip the queries that would list those spaces.
    pub standing: SpaceStanding,
    /// The audience keys the agent holds (groups, department and its parents, site, roles),
    /// read with the session: the wall and every audience-filtered page bind them as they are,
    /// without a round trip of their own.
    pub audience: AgentAudience,
}

/// Whether an account holds writing or managing roles in any space, as of this request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpaceStanding {
    /// Contributor, editor or manager of at least one space.
    pub writes: bool,
    /// Manager of at least one space.
    pub manages: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct SessionTimeouts {
    pub idle_secs: i64,
    pub absolute_secs: i64,
}

/// 32 random bytes, hex-encoded.
pub fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("no randomness available: {0}")]
    Random(getrandom::Error),
}

impl From<sqlx::Error> for SessionError {
    fn from(e: sqlx::Error) -> Self {
        SessionError::Db(DbError::Sqlx(e))
    }
}

/// Starts a session for `account_id`; returns the cookie token (a secret) and the record.
pub async fn create(
    tx: &mut Tx,
    account_id: i64,
    client_ip: &str,
    user_agent: Option<&str>,
    timeouts: SessionTimeouts,
) -> Result<(SecretString, SessionRecord), SessionError> {
    let token = random_token().map_err(SessionError::Random)?;
    let csrf_token = random_token().map_err(SessionError::Random)?;
    let now = now();
    let record = SessionRecord {
        id_hash: hash_token(&token),
        account_id,
        csrf_token,
        created_at: now,
        last_seen_at: now,
        expires_at: now + timeouts.absolute_secs,
    };
    let user_agent = user_agent.map(|ua| ua.chars().take(256).collect::<String>());
    with_tx!(tx, conn => sqlx::query(
        "INSERT INTO sessions (id_hash, account_id, csrf_token, created_at, last_seen_at, \
                               expires_at, client_ip, user_agent) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    )
    .bind(&record.id_hash)
    .bind(record.account_id)
    .bind(&record.csrf_token)
    .bind(record.created_at)
    .bind(record.last_seen_at)
    .bind(record.expires_at)
    .bind(client_ip)
    .bind(user_agent)
    .execute(conn).await.map(|_| ())?);
    Ok((SecretString::from(token), record))
}

/// A session with its account and one of the account's roles per row: the whole lookup of a
/// signed-in request in one query.
#[derive(sqlx::FromRow)]
struct SessionRow {
    id_hash: String,
    account_id: i64,
    csrf_token: String,
    created_at: i64,
    last_seen_at: i64,
    expires_at: i64,
    writes_in_a_space: bool,
    manages_a_space: bool,
    /// Space-separated audience keys other than roles (those come with the account).
    audience_keys: Option<String>,
    #[sqlx(flatten)]
    account: accounts::AccountRoleRow,
}

/// The whole lookup of a signed-in request, `$agg` being the backend's string aggregate. The
/// audience keys are gathered as in [`AgentAudience::of_account`] (the department's parents by a
/// recursive walk, UNION so that a cycle stops), for the session's account only.
macro_rules! session_select {
    ($agg:literal) => {
        concat!(
            "WITH RECURSIVE me(account_id) AS (SELECT account_id FROM sessions WHERE id_hash = $1), \
             up(id) AS ( \
               SELECT p.department_id FROM agent_profiles p JOIN me ON p.account_id = me.account_id \
                WHERE p.department_id IS NOT NULL \
               UNION \
               SELECT d.parent_id FROM departments d JOIN up ON d.id = up.id \
                WHERE d.parent_id IS NOT NULL) \
             SELECT s.id_hash, s.account_id, s.csrf_token, s.created_at, s.last_seen_at, \
             s.expires_at, \
             EXISTS (SELECT 1 FROM space_members m WHERE m.account_id = s.account_id \
               AND m.role IN ('contributor', 'editor', 'manager')) AS writes_in_a_space, \
             EXISTS (SELECT 1 FROM space_members m WHERE m.account_id = s.account_id \
               AND m.role = 'manager') AS manages_a_space, \
             (SELECT ", $agg, "(k.key, ' ') FROM ( \
                SELECT 'group:' || CAST(g.group_id AS TEXT) AS key FROM account_groups g \
                  JOIN me ON g.account_id = me.account_id \
                UNION ALL SELECT 'department:' || CAST(up.id AS TEXT) FROM up \
                UNION ALL SELECT 'site:' || CAST(p.site_id AS TEXT) FROM agent_profiles p \
                  JOIN me ON p.account_id = me.account_id WHERE p.site_id IS NOT NULL) k) \
               AS audience_keys, \
             a.id, a.kind, a.username, a.display_name, a.email, a.password_hash, \
             a.password_must_change, a.locale, a.disabled, r.role \
             FROM sessions s JOIN accounts a ON a.id = s.account_id \
             LEFT JOIN account_roles r ON r.account_id = a.id \
             WHERE s.id_hash = $1 ORDER BY r.role"
        )
    };
}

/// Finds the live session for a cookie token. An expired session is deleted and `None`
/// returned; so is a session whose account was disabled.
pub async fn load(
    db: &Database,
    token: &SecretString,
    timeouts: SessionTimeouts,
) -> Result<Option<ActiveSession>, SessionError> {
    let token = token.expose_secret();
    // Reject anything that is not one of our tokens before touching the database.
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let id_hash = hash_token(token);
    // The account is joined, not left-joined: sessions.account_id references accounts, and a
    // session without its account is no session.
    let rows: Vec<SessionRow> = match db {
        Database::Sqlite(pool) => {
            sqlx::query_as(session_select!("group_concat"))
                .bind(&id_hash)
                .fetch_all(pool)
                .await?
        }
        Database::Postgres(pool) => {
            sqlx::query_as(session_select!("string_agg"))
                .bind(&id_hash)
                .fetch_all(pool)
                .await?
        }
    };
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let standing = SpaceStanding {
        writes: first.writes_in_a_space,
        manages: first.manages_a_space,
    };
    let audience_keys = first.audience_keys.clone().unwrap_or_default();
    let (id_hash, account_id, csrf_token, created_at, last_seen_at, expires_at) = (
        first.id_hash.clone(),
        first.account_id,
        first.csrf_token.clone(),
        first.created_at,
        first.last_seen_at,
        first.expires_at,
    );
    let now = now();
    // Expiry is not an action anyone took: these deletions are housekeeping, not audited.
    if now >= expires_at || now - last_seen_at >= timeouts.idle_secs {
        forget(db, &id_hash).await?;
        return Ok(None);
    }
    let Some(account) = accounts::fold_roles(rows.into_iter().map(|r| r.account).collect()) else {
        forget(db, &id_hash).await?;
        return Ok(None);
    };
    if account.disabled {
        // The account was disabled in a transaction that ended its sessions and was audited;
        // this one escaped only if it was created concurrently.
        forget(db, &id_hash).await?;
        return Ok(None);
    }
    if now - last_seen_at >= TOUCH_EVERY_SECS {
        with_db!(db, pool => sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(now).bind(&id_hash).execute(pool).await.map(|_| ())?);
    }
    Ok(Some(ActiveSession {
        record: SessionRecord {
            id_hash,
            account_id,
            csrf_token,
            created_at,
            last_seen_at: now,
            expires_at,
        },
        audience: AgentAudience::of_session(&audience_keys, &account),
        account,
        standing,
    }))
}

/// Drops a session that can no longer be used (expired, or its account gone).
async fn forget(db: &Database, id_hash: &str) -> Result<(), SessionError> {
    with_db!(db, pool => sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
        .bind(id_hash).execute(pool).await.map(|_| ())?);
    Ok(())
}

/// Ends a session, in the transaction that audits why.
pub async fn revoke(tx: &mut Tx, id_hash: &str) -> Result<bool, SessionError> {
    let done = with_tx!(tx, conn => sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
        .bind(id_hash).execute(conn).await?.rows_affected());
    Ok(done > 0)
}

/// Ends every session of an account, in the transaction that audits why; returns how many.
pub async fn revoke_all_for(tx: &mut Tx, account_id: i64) -> Result<u64, SessionError> {
    let done = with_tx!(tx, conn => sqlx::query("DELETE FROM sessions WHERE account_id = $1")
        .bind(account_id).execute(conn).await?.rows_affected());
    Ok(done)
}

/// Deletes sessions that can no longer be used (run periodically).
pub async fn purge_expired(db: &Database, timeouts: SessionTimeouts) -> Result<u64, SessionError> {
    let now = now();
    let done = with_db!(db, pool => sqlx::query(
        "DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2"
    ).bind(now).bind(now - timeouts.idle_secs).execute(pool).await?.rows_affected());
    Ok(done)
}

/// Names a session in pages and URLs (`/account/sessions/{handle}/end`): 64 bits of
/// SHA-256("beffroi session handle" ‖ id_hash). The cookie token is the only credential and the
/// stored hash is already one-way from it; the handle is one-way from the hash, so neither a
/// handle seen in a page, a URL or a log nor a guessed one can authenticate. Handles are only
/// ever looked up among the sessions of one account (the agent's own, or the account an
/// administrator opened), so a guess cannot reach another account's session.
pub fn handle(id_hash: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"beffroi session handle\0")
        .chain_update(id_hash.as_bytes())
        .finalize();
    hex::encode(&digest[..8])
}

/// A live session as its list shows it.
#[derive(Debug, Clone)]
pub struct SessionSummary {
    pub id_hash: String,
    pub handle: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

type SummaryRow = (String, i64, i64, Option<String>, Option<String>);

/// The sessions of an account still within their timeouts, most recently used first.
pub async fn list_for(
    db: &Database,
    account_id: i64,
    timeouts: SessionTimeouts,
) -> Result<Vec<SessionSummary>, SessionError> {
    let now = now();
    let rows: Vec<SummaryRow> = with_db!(db, pool => sqlx::query_as(
        "SELECT id_hash, created_at, last_seen_at, client_ip, user_agent FROM sessions \
         WHERE account_id = $1 AND expires_at > $2 AND last_seen_at > $3 \
         ORDER BY last_seen_at DESC, created_at DESC"
    ).bind(account_id).bind(now).bind(now - timeouts.idle_secs).fetch_all(pool).await?);
    Ok(rows
        .into_iter()
        .map(
            |(id_hash, created_at, last_seen_at, client_ip, user_agent)| SessionSummary {
                handle: handle(&id_hash),
                id_hash,
                created_at,
                last_seen_at,
                client_ip,
                user_agent,
            },
        )
        .collect())
}

/// The stored hash of the session of `account_id` named by `handle`, if there is one.
pub async fn find_by_handle(
    db: &Database,
    account_id: i64,
    handle_given: &str,
) -> Result<Option<String>, SessionError> {
    let hashes: Vec<String> = with_db!(db, pool => sqlx::query_scalar(
        "SELECT id_hash FROM sessions WHERE account_id = $1"
    ).bind(account_id).fetch_all(pool).await?);
    Ok(hashes.into_iter().find(|h| handle(h) == handle_given))
}

/// Ends every session of an account but one (the caller's own), in the transaction that audits
/// why; returns how many.
pub async fn revoke_all_but(
    tx: &mut Tx,
    account_id: i64,
    keep_id_hash: &str,
) -> Result<u64, SessionError> {
    let done = with_tx!(tx, conn => sqlx::query(
        "DELETE FROM sessions WHERE account_id = $1 AND id_hash <> $2"
    ).bind(account_id).bind(keep_id_hash).execute(conn).await?.rows_affected());
    Ok(done)
}

/// Accounts that have live sessions, with how many and when last used, most recent first.
pub async fn accounts_with_sessions(
    db: &Database,
    timeouts: SessionTimeouts,
) -> Result<Vec<(i64, String, i64, i64)>, SessionError> {
    let now = now();
    let rows: Vec<(i64, String, i64, i64)> = with_db!(db, pool => sqlx::query_as(
        "SELECT a.id, a.display_name, COUNT(*), MAX(s.last_seen_at) \
         FROM sessions s JOIN accounts a ON a.id = s.account_id \
         WHERE s.expires_at > $1 AND s.last_seen_at > $2 \
         GROUP BY a.id, a.display_name ORDER BY MAX(s.last_seen_at) DESC LIMIT 500"
    ).bind(now).bind(now - timeouts.idle_secs).fetch_all(pool).await?);
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_is_short_stable_and_neither_the_token_nor_its_hash() {
        let token = "ab".repeat(32);
        let id_hash = hash_token(&token);
        let h = handle(&id_hash);
        assert_eq!(h.len(), 16);
        assert_eq!(h, handle(&id_hash));
        assert!(!token.contains(&h) && !id_hash.contains(&h));
        assert_ne!(h, handle(&hash_token(&"cd".repeat(32))));
    }
}
