//! Groups: reading them, and the steps that create (or adopt), update and delete them.
//!
//! A SCIM Group is a `groups` row with source `scim` plus its `scim_groups` row. Creating a
//! Group whose name an SSO group (source `oidc`, made from the groups claim) already has adopts
//! that row — its id, which audiences point at, stays — and SCIM becomes the only source of its
//! membership. Members are always inserted through a join on live `scim_users`, so a User
//! deleted meanwhile is never re-added.

use std::collections::{HashMap, HashSet};

use super::{AccountKey, Bind, GroupRecord, MemberRef, Step, StoreError};
use crate::db::Database;
use crate::scim::resource::group::GroupData;
use crate::with_db;

type GroupRow = (String, i64, String, Option<String>, i64, i64, i64);

macro_rules! select_groups {
    ($where:literal) => {
        concat!(
            "SELECT sg.id, sg.group_id, g.name, sg.external_id, sg.created_at, sg.updated_at, ",
            "sg.version FROM scim_groups sg JOIN groups g ON g.id = sg.group_id ",
            $where
        )
    };
}

macro_rules! select_members {
    ($where:literal) => {
        concat!(
            "SELECT ag.group_id, su.id, su.account_id FROM account_groups ag ",
            "JOIN scim_users su ON su.account_id = ag.account_id AND su.deleted_at IS NULL ",
            $where,
            " ORDER BY su.created_at, su.id"
        )
    };
}

fn record(row: GroupRow, members: Vec<MemberRef>) -> GroupRecord {
    let (id, group_id, display_name, external_id, created_at, updated_at, version) = row;
    GroupRecord {
        id,
        group_id,
        display_name,
        external_id,
        created_at,
        updated_at,
        version,
        members,
    }
}

/// Every Group, oldest first.
pub async fn list(db: &Database) -> Result<Vec<GroupRecord>, StoreError> {
    let rows: Vec<GroupRow> = with_db!(db, pool => sqlx::query_as(
        select_groups!("ORDER BY sg.created_at, sg.id")
    ).fetch_all(pool).await?);
    let members: Vec<(i64, String, i64)> = with_db!(db, pool => sqlx::query_as(
        select_members!("WHERE ag.group_id IN (SELECT group_id FROM scim_groups)")
    ).fetch_all(pool).await?);
    let mut by_group: HashMap<i64, Vec<MemberRef>> = HashMap::new();
    for (group_id, id, account_id) in members {
        by_group
            .entry(group_id)
            .or_default()
            .push(MemberRef { id, account_id });
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let members = by_group.remove(&row.1).unwrap_or_default();
            record(row, members)
        })
        .collect())
}

pub async fn get(db: &Database, id: &str) -> Result<Option<GroupRecord>, StoreError> {
    let row: Option<GroupRow> = with_db!(db, pool => sqlx::query_as(
        select_groups!("WHERE sg.id = $1")
    ).bind(id).fetch_optional(pool).await?);
    let Some(row) = row else {
        return Ok(None);
    };
    let members: Vec<(i64, String, i64)> = with_db!(db, pool => sqlx::query_as(
        select_members!("WHERE ag.group_id = $1")
    ).bind(row.1).fetch_all(pool).await?);
    let members = members
        .into_iter()
        .map(|(_, id, account_id)| MemberRef { id, account_id })
        .collect();
    Ok(Some(record(row, members)))
}

/// A Beffroi group that already has the name a Group is being created with.
#[derive(Debug, Clone)]
pub struct ExistingGroup {
    pub group_id: i64,
    /// Made by SSO from the groups claim, and not yet a SCIM Group: may be adopted.
    pub adoptable: bool,
    /// Its members now (accounts), whose roles may change with the adoption.
    pub members: Vec<i64>,
}

pub async fn find_by_name(db: &Database, name: &str) -> Result<Option<ExistingGroup>, StoreError> {
    let row: Option<(i64, String, i64)> = with_db!(db, pool => sqlx::query_as(
        "SELECT g.id, g.source, (SELECT COUNT(*) FROM scim_groups sg WHERE sg.group_id = g.id) \
         FROM groups g WHERE g.name = $1"
    ).bind(name).fetch_optional(pool).await?);
    let Some((group_id, source, scim_rows)) = row else {
        return Ok(None);
    };
    let members: Vec<i64> = with_db!(db, pool => sqlx::query_scalar(
        "SELECT account_id FROM account_groups WHERE group_id = $1"
    ).bind(group_id).fetch_all(pool).await?);
    Ok(Some(ExistingGroup {
        group_id,
        adoptable: source == "oidc" && scim_rows == 0,
        members,
    }))
}

fn add_member(scim_group_id: &str, user_id: &str) -> Step {
    Step::exec(
        "INSERT INTO account_groups (account_id, group_id) \
         SELECT su.account_id, sg.group_id FROM scim_users su, scim_groups sg \
         WHERE su.id = $1 AND su.deleted_at IS NULL AND sg.id = $2 \
         ON CONFLICT DO NOTHING",
        vec![
            Bind::Text(user_id.to_owned()),
            Bind::Text(scim_group_id.to_owned()),
        ],
    )
}

fn recompute(accounts: impl IntoIterator<Item = i64>) -> Vec<Step> {
    let mut seen: Vec<i64> = accounts.into_iter().collect();
    seen.sort_unstable();
    seen.dedup();
    seen.into_iter()
        .map(|a| Step::RecomputeRoles(AccountKey::Id(a)))
        .collect()
}

/// A new Group, or the adoption of an SSO group of the same name (`adopt`).
pub fn plan_create(
    scim_id: &str,
    data: &GroupData,
    members: &[MemberRef],
    adopt: Option<&ExistingGroup>,
    now: i64,
) -> Vec<Step> {
    let mut steps = match adopt {
        None => vec![
            Step::exec(
                "INSERT INTO groups (name, source, created_at) VALUES ($1, 'scim', $2)",
                vec![Bind::Text(data.display_name.clone()), Bind::I64(now)],
            ),
            Step::exec(
                "INSERT INTO scim_groups (id, group_id, external_id, created_at, updated_at, \
                                          version) \
                 VALUES ($1, (SELECT id FROM groups WHERE name = $2), $3, $4, $4, 0)",
                vec![
                    Bind::Text(scim_id.to_owned()),
                    Bind::Text(data.display_name.clone()),
                    Bind::OptText(data.external_id.clone()),
                    Bind::I64(now),
                ],
            ),
        ],
        Some(existing) => vec![
            Step::guarded(
                "UPDATE groups SET source = 'scim' WHERE id = $1 AND source = 'oidc'",
                vec![Bind::I64(existing.group_id)],
            ),
            Step::exec(
                "DELETE FROM account_groups WHERE group_id = $1",
                vec![Bind::I64(existing.group_id)],
            ),
            Step::exec(
                "INSERT INTO scim_groups (id, group_id, external_id, created_at, updated_at, \
                                          version) VALUES ($1, $2, $3, $4, $4, 0)",
                vec![
                    Bind::Text(scim_id.to_owned()),
                    Bind::I64(existing.group_id),
                    Bind::OptText(data.external_id.clone()),
                    Bind::I64(now),
                ],
            ),
        ],
    };
    steps.extend(members.iter().map(|m| add_member(scim_id, &m.id)));
    let former = adopt.map(|e| e.members.clone()).unwrap_or_default();
    steps.extend(recompute(
        members.iter().map(|m| m.account_id).chain(former),
    ));
    steps
}

/// PUT or PATCH: name, externalId and the membership difference.
pub fn plan_update(
    current: &GroupRecord,
    data: &GroupData,
    members: &[MemberRef],
    now: i64,
) -> Vec<Step> {
    let mut steps = vec![Step::guarded(
        "UPDATE scim_groups SET external_id = $1, updated_at = $2, version = version + 1 \
         WHERE id = $3 AND version = $4",
        vec![
            Bind::OptText(data.external_id.clone()),
            Bind::I64(now),
            Bind::Text(current.id.clone()),
            Bind::I64(current.version),
        ],
    )];
    if data.display_name != current.display_name {
        steps.push(Step::exec(
            "UPDATE groups SET name = $1 WHERE id = $2",
            vec![
                Bind::Text(data.display_name.clone()),
                Bind::I64(current.group_id),
            ],
        ));
    }
    let (added, removed) = difference(&current.members, members);
    for gone in &removed {
        steps.push(Step::exec(
            "DELETE FROM account_groups WHERE group_id = $1 AND account_id = $2",
            vec![Bind::I64(current.group_id), Bind::I64(gone.account_id)],
        ));
    }
    steps.extend(added.iter().map(|m| add_member(&current.id, &m.id)));
    steps.extend(recompute(
        added.iter().chain(removed.iter()).map(|m| m.account_id),
    ));
    steps
}

/// DELETE: the group goes, and with it (by cascade) its memberships; former members' roles
/// are recomputed.
pub fn plan_delete(current: &GroupRecord) -> Vec<Step> {
    let mut steps = vec![
        Step::guarded(
            "UPDATE scim_groups SET version = version + 1 WHERE id = $1 AND version = $2",
            vec![Bind::Text(current.id.clone()), Bind::I64(current.version)],
        ),
        Step::exec(
            "DELETE FROM groups WHERE id = $1",
            vec![Bind::I64(current.group_id)],
        ),
    ];
    steps.extend(recompute(current.members.iter().map(|m| m.account_id)));
    steps
}

/// Members added and removed between two lists.
pub fn difference(before: &[MemberRef], after: &[MemberRef]) -> (Vec<MemberRef>, Vec<MemberRef>) {
    let had: HashSet<i64> = before.iter().map(|m| m.account_id).collect();
    let has: HashSet<i64> = after.iter().map(|m| m.account_id).collect();
    let added = after
        .iter()
        .filter(|m| !had.contains(&m.account_id))
        .cloned()
        .collect();
    let removed = before
        .iter()
        .filter(|m| !has.contains(&m.account_id))
        .cloned()
        .collect();
    (added, removed)
}
