//! Users: reading them, and the steps that create, adopt, revive, update and delete them.
//!
//! The account row is the one SSO uses (`kind = 'oidc'`, `issuer`, `subject`); `scim_users`
//! adds the SCIM id and attributes. Every plan that disables the account also ends its
//! sessions, in the same transaction.

use std::collections::{HashMap, HashSet};

use super::{AccountKey, Bind, GroupRef, Placement, Step, StoreError, UserRecord};
use crate::db::Database;
use crate::scim::resource::user::{StoredAttributes, UserData};
use crate::with_db;

type UserRow = (
    String,
    i64,
    String,
    Option<String>,
    String,
    i64,
    i64,
    i64,
    bool,
    Option<String>,
    Option<String>,
    Option<String>,
);

macro_rules! select_users {
    ($where:literal) => {
        concat!(
            "SELECT s.id, s.account_id, s.user_name, s.external_id, s.resource, s.created_at, ",
            "s.updated_at, s.version, a.disabled, p.title, d.name, m.id FROM scim_users s ",
            "JOIN accounts a ON a.id = s.account_id ",
            // The placement the directory holds (what the enterprise extension reports).
            "LEFT JOIN agent_profiles p ON p.account_id = s.account_id ",
            "LEFT JOIN departments d ON d.id = p.department_id ",
            "LEFT JOIN scim_users m ON m.account_id = p.manager_id AND m.deleted_at IS NULL ",
            "WHERE s.deleted_at IS NULL ",
            $where
        )
    };
}

fn record(row: UserRow, groups: Vec<GroupRef>) -> Result<UserRecord, StoreError> {
    let (
        id,
        account_id,
        user_name,
        external_id,
        resource,
        created_at,
        updated_at,
        version,
        disabled,
        title,
        department,
        manager_id,
    ) = row;
    let attributes: StoredAttributes = serde_json::from_str(&resource)
        .map_err(|e| StoreError::Corrupt(format!("scim_users.resource of {id}: {e}")))?;
    Ok(UserRecord {
        id,
        account_id,
        user_name,
        external_id,
        attributes,
        created_at,
        updated_at,
        version,
        disabled,
        groups,
        placement: Placement {
            title,
            department,
            manager_id,
        },
    })
}

/// Every live User, oldest first (a stable order for paging).
pub async fn list(db: &Database) -> Result<Vec<UserRecord>, StoreError> {
    let rows: Vec<UserRow> = with_db!(db, pool => sqlx::query_as(
        select_users!("ORDER BY s.created_at, s.id")
    ).fetch_all(pool).await?);
    let memberships: Vec<(i64, String, String)> = with_db!(db, pool => sqlx::query_as(
        "SELECT ag.account_id, sg.id, g.name FROM account_groups ag \
         JOIN scim_groups sg ON sg.group_id = ag.group_id JOIN groups g ON g.id = ag.group_id \
         ORDER BY g.name"
    ).fetch_all(pool).await?);
    let mut by_account: HashMap<i64, Vec<GroupRef>> = HashMap::new();
    for (account_id, id, name) in memberships {
        by_account
            .entry(account_id)
            .or_default()
            .push(GroupRef { id, name });
    }
    rows.into_iter()
        .map(|row| {
            let groups = by_account.remove(&row.1).unwrap_or_default();
            record(row, groups)
        })
        .collect()
}

/// The live User with this id.
pub async fn get(db: &Database, id: &str) -> Result<Option<UserRecord>, StoreError> {
    let row: Option<UserRow> = with_db!(db, pool => sqlx::query_as(
        select_users!("AND s.id = $1")
    ).bind(id).fetch_optional(pool).await?);
    let Some(row) = row else {
        return Ok(None);
    };
    let groups: Vec<(String, String)> = with_db!(db, pool => sqlx::query_as(
        "SELECT sg.id, g.name FROM account_groups ag \
         JOIN scim_groups sg ON sg.group_id = ag.group_id JOIN groups g ON g.id = ag.group_id \
         WHERE ag.account_id = $1 ORDER BY g.name"
    ).bind(row.1).fetch_all(pool).await?);
    let groups = groups
        .into_iter()
        .map(|(id, name)| GroupRef { id, name })
        .collect();
    record(row, groups).map(Some)
}

/// The SCIM side of an existing account.
#[derive(Debug, Clone)]
pub struct ScimLink {
    pub deleted: bool,
    pub version: i64,
}

/// An SSO account that already has the subject a User is being created for.
#[derive(Debug, Clone)]
pub struct ExistingAccount {
    pub account_id: i64,
    pub disabled: bool,
    pub scim: Option<ScimLink>,
}

/// (account id, disabled, scim_users.deleted_at, scim_users.version, scim_users.id)
type AccountRow = (i64, bool, Option<i64>, Option<i64>, Option<String>);

pub async fn find_account(
    db: &Database,
    issuer: &str,
    subject: &str,
) -> Result<Option<ExistingAccount>, StoreError> {
    let row: Option<AccountRow> = with_db!(db, pool => sqlx::query_as(
        "SELECT a.id, a.disabled, s.deleted_at, s.version, s.id FROM accounts a \
         LEFT JOIN scim_users s ON s.account_id = a.id \
         WHERE a.kind = 'oidc' AND a.issuer = $1 AND a.subject = $2"
    ).bind(issuer).bind(subject).fetch_optional(pool).await?);
    Ok(row.map(
        |(account_id, disabled, deleted_at, version, scim_id)| ExistingAccount {
            account_id,
            disabled,
            scim: scim_id.map(|_| ScimLink {
                deleted: deleted_at.is_some(),
                version: version.unwrap_or(0),
            }),
        },
    ))
}

/// SCIM id → account id for the live Users among `ids`; absent ids are unknown.
pub async fn resolve(db: &Database, ids: &[String]) -> Result<HashMap<String, i64>, StoreError> {
    let mut found = HashMap::new();
    // A few ids (the usual PATCH) are looked up one by one; a whole membership list at once.
    if ids.len() <= 20 {
        for id in ids {
            let account: Option<i64> = with_db!(db, pool => sqlx::query_scalar(
                "SELECT account_id FROM scim_users WHERE id = $1 AND deleted_at IS NULL"
            ).bind(id).fetch_optional(pool).await?);
            if let Some(account) = account {
                found.insert(id.clone(), account);
            }
        }
        return Ok(found);
    }
    let all: Vec<(String, i64)> = with_db!(db, pool => sqlx::query_as(
        "SELECT id, account_id FROM scim_users WHERE deleted_at IS NULL"
    ).fetch_all(pool).await?);
    let wanted: HashSet<&String> = ids.iter().collect();
    for (id, account) in all {
        if wanted.contains(&id) {
            found.insert(id, account);
        }
    }
    Ok(found)
}

/// The values written for a User, computed once.
pub struct UserColumns {
    pub user_name_key: String,
    pub resource: String,
    pub display_name: String,
    pub email: Option<String>,
    pub disabled: bool,
}

impl UserColumns {
    pub fn of(data: &UserData) -> Result<Self, StoreError> {
        let resource = serde_json::to_string(&data.attributes)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Self {
            user_name_key: data.user_name.to_lowercase(),
            resource,
            display_name: data.display_name(),
            email: data.email(),
            disabled: data.disabled(),
        })
    }
}

/// A brand-new agent: the account and its SCIM row.
pub fn plan_create(
    scim_id: &str,
    issuer: &str,
    subject: &str,
    data: &UserData,
    c: &UserColumns,
    now: i64,
) -> Vec<Step> {
    let key = AccountKey::Subject {
        issuer: issuer.to_owned(),
        subject: subject.to_owned(),
    };
    vec![
        Step::exec(
            "INSERT INTO accounts (kind, issuer, subject, display_name, email, disabled, \
                                   created_at, updated_at) \
             VALUES ('oidc', $1, $2, $3, $4, $5, $6, $6)",
            vec![
                Bind::Text(issuer.to_owned()),
                Bind::Text(subject.to_owned()),
                Bind::Text(c.display_name.clone()),
                Bind::OptText(c.email.clone()),
                Bind::Bool(c.disabled),
                Bind::I64(now),
            ],
        ),
        Step::exec(
            "INSERT INTO scim_users (id, account_id, user_name, user_name_key, external_id, \
                                     resource, created_at, updated_at, version) \
             VALUES ($1, (SELECT id FROM accounts WHERE issuer = $2 AND subject = $3), \
                     $4, $5, $6, $7, $8, $8, 0)",
            vec![
                Bind::Text(scim_id.to_owned()),
                Bind::Text(issuer.to_owned()),
                Bind::Text(subject.to_owned()),
                Bind::Text(data.user_name.clone()),
                Bind::Text(c.user_name_key.clone()),
                Bind::OptText(data.external_id.clone()),
                Bind::Text(c.resource.clone()),
                Bind::I64(now),
            ],
        ),
        Step::RecomputeRoles(key),
    ]
}

/// An account that exists already: one that signed in by SSO before it was provisioned
/// (`revive = None`), or one whose User was deleted (`revive = Some(version)`), which gets its
/// SCIM row back under the new id.
pub fn plan_attach(
    scim_id: &str,
    account_id: i64,
    data: &UserData,
    c: &UserColumns,
    revive: Option<i64>,
    now: i64,
) -> Vec<Step> {
    let mut steps = vec![Step::guarded(
        "UPDATE accounts SET display_name = $1, email = $2, disabled = $3, updated_at = $4 \
         WHERE id = $5 AND kind = 'oidc'",
        vec![
            Bind::Text(c.display_name.clone()),
            Bind::OptText(c.email.clone()),
            Bind::Bool(c.disabled),
            Bind::I64(now),
            Bind::I64(account_id),
        ],
    )];
    let row = vec![
        Bind::Text(scim_id.to_owned()),
        Bind::I64(account_id),
        Bind::Text(data.user_name.clone()),
        Bind::Text(c.user_name_key.clone()),
        Bind::OptText(data.external_id.clone()),
        Bind::Text(c.resource.clone()),
        Bind::I64(now),
    ];
    steps.push(match revive {
        None => Step::exec(
            "INSERT INTO scim_users (id, account_id, user_name, user_name_key, external_id, \
                                     resource, created_at, updated_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 0)",
            row,
        ),
        Some(version) => Step::guarded(
            "UPDATE scim_users SET id = $1, user_name = $3, user_name_key = $4, \
                 external_id = $5, resource = $6, created_at = $7, updated_at = $7, \
                 version = version + 1, deleted_at = NULL \
             WHERE account_id = $2 AND deleted_at IS NOT NULL AND version = $8",
            row.into_iter().chain([Bind::I64(version)]).collect(),
        ),
    });
    if c.disabled {
        steps.push(Step::EndSessions(AccountKey::Id(account_id)));
    }
    steps.push(Step::RecomputeRoles(AccountKey::Id(account_id)));
    steps
}

/// PUT or PATCH: the whole User is rewritten (the subject too, if its attribute changed).
pub fn plan_update(
    current: &UserRecord,
    subject: &str,
    data: &UserData,
    c: &UserColumns,
    now: i64,
) -> Vec<Step> {
    let mut steps = vec![
        Step::guarded(
            "UPDATE scim_users SET user_name = $1, user_name_key = $2, external_id = $3, \
                 resource = $4, updated_at = $5, version = version + 1 \
             WHERE id = $6 AND version = $7 AND deleted_at IS NULL",
            vec![
                Bind::Text(data.user_name.clone()),
                Bind::Text(c.user_name_key.clone()),
                Bind::OptText(data.external_id.clone()),
                Bind::Text(c.resource.clone()),
                Bind::I64(now),
                Bind::Text(current.id.clone()),
                Bind::I64(current.version),
            ],
        ),
        Step::exec(
            "UPDATE accounts SET subject = $1, display_name = $2, email = $3, disabled = $4, \
                 updated_at = $5 WHERE id = $6",
            vec![
                Bind::Text(subject.to_owned()),
                Bind::Text(c.display_name.clone()),
                Bind::OptText(c.email.clone()),
                Bind::Bool(c.disabled),
                Bind::I64(now),
                Bind::I64(current.account_id),
            ],
        ),
    ];
    if c.disabled {
        steps.push(Step::EndSessions(AccountKey::Id(current.account_id)));
    }
    steps
}

/// DELETE: the User disappears from SCIM; the account stays, disabled, without sessions, group
/// memberships or roles beyond `agent` (SCIM groups it left change version, as their members
/// did).
pub fn plan_delete(current: &UserRecord, now: i64) -> Vec<Step> {
    let account = current.account_id;
    vec![
        Step::guarded(
            "UPDATE scim_users SET deleted_at = $1, updated_at = $1, version = version + 1 \
             WHERE id = $2 AND version = $3 AND deleted_at IS NULL",
            vec![
                Bind::I64(now),
                Bind::Text(current.id.clone()),
                Bind::I64(current.version),
            ],
        ),
        Step::exec(
            "UPDATE accounts SET disabled = TRUE, updated_at = $1 WHERE id = $2",
            vec![Bind::I64(now), Bind::I64(account)],
        ),
        Step::exec(
            "UPDATE scim_groups SET version = version + 1, updated_at = $1 \
             WHERE group_id IN (SELECT group_id FROM account_groups WHERE account_id = $2)",
            vec![Bind::I64(now), Bind::I64(account)],
        ),
        // Every membership goes, SSO groups' too: a later revival of the account (the same
        // subject provisioned again) must not inherit audiences or roles from before.
        Step::exec(
            "DELETE FROM account_groups WHERE account_id = $1",
            vec![Bind::I64(account)],
        ),
        Step::EndSessions(AccountKey::Id(account)),
        Step::RecomputeRoles(AccountKey::Id(account)),
    ]
}
