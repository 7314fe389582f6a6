//! Accounts and their roles. A local account is the break-glass administrator created on the
//! console by `beffroi recover-admin`; agents' accounts arrive with single sign-on.
//!
//! Authorization decisions read [`Account::has_role`]; nothing else grants a role.

use crate::db::{Database, DbError, Tx, now};
use crate::{with_db, with_tx};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Agent,
    Editor,
    Admin,
    Auditor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Editor => "editor",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "agent" => Some(Role::Agent),
            "editor" => Some(Role::Editor),
            "admin" => Some(Role::Admin),
            "auditor" => Some(Role::Auditor),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountRow {
    pub id: i64,
    pub kind: String,
    pub username: Option<String>,
    pub display_name: String,
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub password_must_change: bool,
    pub locale: Option<String>,
    pub disabled: bool,
}

#[derive(Clone)]
pub struct Account {
    pub id: i64,
    pub kind: String,
    pub username: Option<String>,
    pub display_name: String,
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub password_must_change: bool,
    pub locale: Option<String>,
    pub disabled: bool,
    pub roles: Vec<Role>,
}

impl std::fmt::Debug for Account {
    // The password hash stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("username", &self.username)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

impl Account {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// The columns of [`AccountRow`], spelled out in each query: sqlx only runs `'static` SQL.
/// An account with one of its roles per row (one row with no role when it has none): the
/// account and its roles come back in one query, which every signed-in request makes.
macro_rules! select_account {
    ($where:literal) => {
        concat!(
            "SELECT a.id, a.kind, a.username, a.display_name, a.email, a.password_hash, ",
            "a.password_must_change, a.locale, a.disabled, r.role FROM accounts a ",
            "LEFT JOIN account_roles r ON r.account_id = a.id WHERE ",
            $where,
            " ORDER BY r.role"
        )
    };
}

/// One row of [`select_account!`].
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountRoleRow {
    #[sqlx(flatten)]
    pub account: AccountRow,
    pub role: Option<String>,
}

/// Folds the rows of one account (each with one role, or none) into the account.
pub fn fold_roles(rows: Vec<AccountRoleRow>) -> Option<Account> {
    let mut rows = rows.into_iter();
    let first = rows.next()?;
    let roles: Vec<Role> = std::iter::once(first.role)
        .chain(rows.map(|r| r.role))
        .flatten()
        .filter_map(|n| Role::parse(&n))
        .collect();
    let row = first.account;
    Some(Account {
        id: row.id,
        kind: row.kind,
        username: row.username,
        display_name: row.display_name,
        email: row.email,
        password_hash: row.password_hash,
        password_must_change: row.password_must_change,
        locale: row.locale,
        disabled: row.disabled,
        roles,
    })
}

pub async fn find_by_id(db: &Database, id: i64) -> Result<Option<Account>, DbError> {
    let rows: Vec<AccountRoleRow> = with_db!(db, pool => sqlx::query_as(select_account!("a.id = $1")).bind(id).fetch_all(pool).await?);
    Ok(fold_roles(rows))
}

/// Finds a local account by its login, compared lower-case.
pub async fn find_local(db: &Database, username: &str) -> Result<Option<Account>, DbError> {
    let username = username.to_lowercase();
    let rows: Vec<AccountRoleRow> = with_db!(db, pool => sqlx::query_as(select_account!("a.kind = 'local' AND a.username = $1")).bind(&username).fetch_all(pool).await?);
    Ok(fold_roles(rows))
}

/// Creates the local administrator, or resets its password if it exists; returns its id.
/// The new password must be changed at first sign-in, and every open session of the account
/// ends (the reset may be a response to a compromise).
pub async fn upsert_break_glass_admin(
    tx: &mut Tx,
    username: &str,
    display_name: &str,
    password_hash: &str,
) -> Result<(i64, u64), DbError> {
    let username = username.to_lowercase();
    let now = now();
    let (id, sessions_ended) = with_tx!(tx, conn => {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO accounts (kind, username, display_name, password_hash, \
                                   password_must_change, password_expires_at, disabled, \
                                   created_at, updated_at) \
             VALUES ('local', $1, $2, $3, TRUE, $5, FALSE, $4, $4) \
             ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash, \
                 password_must_change = TRUE, \
                 password_expires_at = excluded.password_expires_at, disabled = FALSE, \
                 updated_at = excluded.updated_at \
             RETURNING id",
        )
        .bind(&username)
        .bind(display_name)
        .bind(password_hash)
        .bind(now)
        .bind(now + crate::auth::password::ONE_TIME_PASSWORD_TTL_SECS)
        .fetch_one(&mut *conn)
        .await?;
        sqlx::query(
            "INSERT INTO account_roles (account_id, role) VALUES ($1, 'admin') \
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .execute(&mut *conn)
        .await?;
        let ended = sqlx::query("DELETE FROM sessions WHERE account_id = $1").bind(id).execute(&mut *conn).await?.rows_affected();
        sqlx::query("DELETE FROM sign_in_backoff WHERE login = $1").bind(&username).execute(&mut *conn).await?;
        (id, ended)
    });
    Ok((id, sessions_ended))
}

/// Stores a new password hash; `must_change` stays set only for one-time passwords (a rehash
/// at sign-in), which keep their expiry; a password the account chose never expires.
pub async fn set_password_hash(
    tx: &mut Tx,
    account_id: i64,
    password_hash: &str,
    must_change: bool,
) -> Result<(), DbError> {
    with_tx!(tx, conn => sqlx::query(
        "UPDATE accounts SET password_hash = $1, password_must_change = $2, updated_at = $3, \
             password_expires_at = CASE WHEN $2 THEN password_expires_at ELSE NULL END \
         WHERE id = $4"
    ).bind(password_hash).bind(must_change).bind(now()).bind(account_id).execute(conn).await.map(|_| ())?);
    Ok(())
}

/// Whether the account's password is a one-time password past its expiry.
pub async fn password_expired(db: &Database, account_id: i64) -> Result<bool, DbError> {
    let expires_at: Option<Option<i64>> = with_db!(db, pool => sqlx::query_scalar(
        "SELECT password_expires_at FROM accounts WHERE id = $1"
    ).bind(account_id).fetch_optional(pool).await?);
    Ok(expires_at.flatten().is_some_and(|t| now() >= t))
}

pub async fn set_locale(db: &Database, account_id: i64, locale: &str) -> Result<(), DbError> {
    with_db!(db, pool => sqlx::query(
        "UPDATE accounts SET locale = $1, updated_at = $2 WHERE id = $3"
    ).bind(locale).bind(now()).bind(account_id).execute(pool).await.map(|_| ())?);
    Ok(())
}
