//! SQL for SCIM. Reads load whole rows with fixed queries ([`users`], [`groups`]); writes are
//! built as a list of [`Step`]s — fixed SQL with bound values — and run by [`execute`] in one
//! transaction on either backend: every change a SCIM request makes, including ending sessions
//! and recomputing roles, commits or rolls back together.
//!
//! Concurrency is optimistic: each write first bumps the resource's `version`, checking the
//! value read; if another request got there first, nothing is written and the caller retries
//! with fresh data ([`StoreError::Conflict`]). Uniqueness is left to the database's unique
//! indexes, whose violations come back as [`StoreError::Unique`].
//!
//! Nothing here builds SQL from client input.

pub mod groups;
pub mod users;

use crate::accounts::Role;
use crate::auth::oidc::store::roles_for;
use crate::config::OidcConfig;
use crate::db::{Database, DbError, Tx};
use crate::scim::resource::user::StoredAttributes;
use crate::security_events::{self, Actor, Event};
use crate::with_tx;

/// A User as stored.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: String,
    pub account_id: i64,
    pub user_name: String,
    pub external_id: Option<String>,
    pub attributes: StoredAttributes,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
    /// `accounts.disabled`, which Beffroi enforces.
    pub disabled: bool,
    /// SCIM groups the account belongs to.
    pub groups: Vec<GroupRef>,
    /// Title, department and manager from the who's-who, as SCIM reports them.
    pub placement: Placement,
}

/// The agent's placement as the directory holds it (it may have been set by SCIM or by an
/// administrator): `title`, and the enterprise extension's `department` and `manager`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    pub title: Option<String>,
    /// The department's name.
    pub department: Option<String>,
    /// The manager's SCIM id (a manager who is not a SCIM User is not reported).
    pub manager_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct GroupRef {
    pub id: String,
    pub name: String,
}

/// A Group as stored.
#[derive(Debug, Clone)]
pub struct GroupRecord {
    pub id: String,
    pub group_id: i64,
    pub display_name: String,
    pub external_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
    pub members: Vec<MemberRef>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRef {
    /// SCIM id of the User.
    pub id: String,
    pub account_id: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] DbError),
    /// A resource changed between read and write: retry.
    #[error("concurrent change")]
    Conflict,
    /// A unique index refused the write; says which value is taken.
    #[error("{0}")]
    Unique(&'static str),
    /// A stored JSON column does not decode (or a value does not encode).
    #[error("stored SCIM data is not valid: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(d) = &e {
            if d.is_unique_violation() {
                return StoreError::Unique(which_unique(d.constraint(), d.message()));
            }
        }
        StoreError::Db(DbError::Sqlx(e))
    }
}

/// Names the value a unique index protects, from PostgreSQL's constraint name or SQLite's
/// message (`UNIQUE constraint failed: table.column`).
fn which_unique(constraint: Option<&str>, message: &str) -> &'static str {
    let text = constraint.unwrap_or(message);
    if text.contains("user_name") {
        "userName is already taken (compared case-insensitively)"
    } else if text.contains("issuer") || text.contains("subject") {
        "another account already has this subject"
    } else if text.contains("groups") || text.contains("name") {
        "displayName is already taken"
    } else if text.contains("account_id") {
        "this account is already provisioned"
    } else {
        "a unique value is already taken"
    }
}

/// A value bound to a statement.
#[derive(Debug, Clone)]
pub enum Bind {
    I64(i64),
    Text(String),
    OptText(Option<String>),
    Bool(bool),
}

/// An account, by id or by the (issuer, subject) it is being created with.
#[derive(Debug, Clone)]
pub enum AccountKey {
    Id(i64),
    Subject { issuer: String, subject: String },
}

#[derive(Debug, Clone)]
pub enum Step {
    /// A statement; with `guard`, zero rows affected means a concurrent change.
    Exec {
        sql: &'static str,
        binds: Vec<Bind>,
        guard: bool,
    },
    /// Ends every session of the account; the count is reported.
    EndSessions(AccountKey),
    /// Sets the account's roles from its groups (`oidc.*_groups`); changes are reported.
    RecomputeRoles(AccountKey),
}

impl Step {
    pub fn exec(sql: &'static str, binds: Vec<Bind>) -> Self {
        Step::Exec {
            sql,
            binds,
            guard: false,
        }
    }

    pub fn guarded(sql: &'static str, binds: Vec<Bind>) -> Self {
        Step::Exec {
            sql,
            binds,
            guard: true,
        }
    }
}

/// A change of roles made by a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleChange {
    pub account_id: i64,
    pub before: Vec<Role>,
    pub after: Vec<Role>,
}

/// What a committed transaction did beyond its statements.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub sessions_ended: u64,
    pub role_changes: Vec<RoleChange>,
    /// The account the last account step resolved (a new User's account id is known only here).
    pub account_id: Option<i64>,
}

/// Runs `steps` in one transaction, then appends the audit entries `events` makes from what
/// the steps did, and the role changes, as `actor`; commits all or nothing. The first step
/// should be a write (SQLite then takes its write lock at once, so reads later in the
/// transaction see a stable database; `Database::begin` takes it anyway).
pub async fn execute(
    db: &Database,
    steps: &[Step],
    oidc: &OidcConfig,
    actor: &Actor,
    events: impl FnOnce(&Outcome) -> Vec<Event>,
) -> Result<Outcome, StoreError> {
    let mut outcome = Outcome::default();
    let mut tx = db.begin().await?;
    for step in steps {
        match step {
            Step::Exec { sql, binds, guard } => {
                let rows = with_tx!(&mut tx, conn => {
                    let mut q = sqlx::query(*sql);
                    for b in binds {
                        q = match b {
                            Bind::I64(v) => q.bind(*v),
                            Bind::Text(v) => q.bind(v.as_str()),
                            Bind::OptText(v) => q.bind(v.as_deref()),
                            Bind::Bool(v) => q.bind(*v),
                        };
                    }
                    q.execute(conn).await?.rows_affected()
                });
                if *guard && rows == 0 {
                    // Dropping the transaction rolls it back.
                    return Err(StoreError::Conflict);
                }
            }
            Step::EndSessions(key) => {
                let id = resolve(&mut tx, key).await?;
                outcome.account_id = Some(id);
                outcome.sessions_ended += with_tx!(&mut tx, conn =>
                    sqlx::query("DELETE FROM sessions WHERE account_id = $1")
                        .bind(id)
                        .execute(conn)
                        .await?
                        .rows_affected());
            }
            Step::RecomputeRoles(key) => {
                let id = resolve(&mut tx, key).await?;
                outcome.account_id = Some(id);
                if let Some(change) = recompute_roles(&mut tx, id, oidc).await? {
                    outcome.role_changes.push(change);
                }
            }
        }
    }
    for event in events(&outcome) {
        security_events::record_event(&mut tx, actor, event).await?;
    }
    for change in &outcome.role_changes {
        security_events::roles_changed(
            &mut tx,
            actor,
            change.account_id,
            "scim",
            &change.before,
            &change.after,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(outcome)
}

async fn resolve(tx: &mut Tx, key: &AccountKey) -> Result<i64, StoreError> {
    Ok(match key {
        AccountKey::Id(id) => *id,
        AccountKey::Subject { issuer, subject } => with_tx!(tx, conn => sqlx::query_scalar(
            "SELECT id FROM accounts WHERE issuer = $1 AND subject = $2",
        )
        .bind(issuer.as_str())
        .bind(subject.as_str())
        .fetch_one(conn)
        .await?),
    })
}

/// Sets an account's roles from its groups; returns the change, if any.
async fn recompute_roles(
    tx: &mut Tx,
    id: i64,
    oidc: &OidcConfig,
) -> Result<Option<RoleChange>, StoreError> {
    with_tx!(tx, conn => {
        let groups: Vec<String> = sqlx::query_scalar(
            "SELECT g.name FROM groups g JOIN account_groups ag ON ag.group_id = g.id \
             WHERE ag.account_id = $1",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
        let before: Vec<String> = sqlx::query_scalar(
            "SELECT role FROM account_roles WHERE account_id = $1 ORDER BY role",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
        let mut before: Vec<Role> = before.iter().filter_map(|r| Role::parse(r)).collect();
        before.sort();
        let mut after = roles_for(&groups, oidc);
        after.sort();
        if before == after {
            return Ok(None);
        }
        sqlx::query("DELETE FROM account_roles WHERE account_id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
        for role in &after {
            sqlx::query("INSERT INTO account_roles (account_id, role) VALUES ($1, $2)")
                .bind(id)
                .bind(role.as_str())
                .execute(&mut *conn)
                .await?;
        }
        Ok(Some(RoleChange { account_id: id, before, after }))
    })
}

#[cfg(test)]
mod tests {
    use super::which_unique;

    #[test]
    fn unique_violations_name_the_value() {
        assert!(
            which_unique(None, "UNIQUE constraint failed: scim_users.user_name_key")
                .starts_with("userName")
        );
        assert!(which_unique(Some("scim_users_by_user_name"), "").starts_with("userName"));
        assert!(
            which_unique(
                None,
                "UNIQUE constraint failed: accounts.issuer, accounts.subject"
            )
            .contains("subject")
        );
        assert!(which_unique(Some("accounts_by_issuer_subject"), "").contains("subject"));
        assert!(
            which_unique(None, "UNIQUE constraint failed: groups.name").starts_with("displayName")
        );
        assert!(which_unique(Some("groups_name_key"), "").starts_with("displayName"));
        assert!(
            which_unique(Some("scim_users_account_id_key"), "").contains("already provisioned")
        );
    }
}
