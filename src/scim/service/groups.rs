//! Group operations (RFC 7644 §3.3, §3.5.1, §3.5.2, §3.6). Membership is what matters to
//! Beffroi: it decides audiences and, through `oidc.*_groups`, roles, so every change of it is
//! reported with the accounts that joined and left, and roles follow in the same transaction.

use serde_json::{Map, Value};

use super::{commit, new_id, report_roles};
use crate::AppState;
use crate::db::now;
use crate::scim::auth::Scim;
use crate::scim::error::ScimError;
use crate::scim::patch;
use crate::scim::resource::group::{self, GroupData};
use crate::scim::resource::{canonical_attributes, require_schema};
use crate::scim::schema::GROUP;
use crate::scim::store::groups::{self as store, difference};
use crate::scim::store::{GroupRecord, MemberRef, users};
use crate::security_events;

fn not_found(id: &str) -> ScimError {
    ScimError::not_found(format!("no Group {id}"))
}

/// The members as accounts; an id that is not a live User is refused (RFC 7644 §3.12
/// `invalidValue`) rather than dropped, so the directory learns its push did not apply.
async fn resolve_members(state: &AppState, data: &GroupData) -> Result<Vec<MemberRef>, ScimError> {
    let found = users::resolve(&state.db, &data.members).await?;
    let mut members = Vec::with_capacity(data.members.len());
    for id in &data.members {
        match found.get(id) {
            Some(account_id) => members.push(MemberRef {
                id: id.clone(),
                account_id: *account_id,
            }),
            None => {
                return Err(ScimError::invalid_value(format!(
                    "member {id} is not a User of this server"
                )));
            }
        }
    }
    Ok(members)
}

fn report_membership(
    scim: &Scim,
    record: &GroupRecord,
    added: &[MemberRef],
    removed: &[MemberRef],
) {
    if added.is_empty() && removed.is_empty() {
        return;
    }
    let ids = |list: &[MemberRef]| list.iter().map(|m| m.account_id).collect::<Vec<_>>();
    security_events::scim_membership_changed(
        &scim.client_ip,
        &record.id,
        record.group_id,
        &record.display_name,
        &ids(added),
        &ids(removed),
    );
}

/// POST /Groups. A name already used by a group made from the SSO groups claim adopts it.
pub async fn create(
    state: &AppState,
    scim: &Scim,
    body: &Map<String, Value>,
) -> Result<GroupRecord, ScimError> {
    require_schema(body, &GROUP)?;
    let data = GroupData::parse(&canonical_attributes(&GROUP, body))?;
    let members = resolve_members(state, &data).await?;
    let db = &state.db;
    let (data, members_ref) = (&data, members.as_slice());
    let ((scim_id, former), outcome) = commit(db, &scim.settings.oidc, move || async move {
        let existing = store::find_by_name(db, &data.display_name).await?;
        if existing.as_ref().is_some_and(|e| !e.adoptable) {
            return Err(ScimError::uniqueness("displayName is already taken"));
        }
        let scim_id = new_id()?;
        let steps = store::plan_create(&scim_id, data, members_ref, existing.as_ref(), now());
        Ok((steps, (scim_id, existing)))
    })
    .await?;
    let record = store::get(db, &scim_id)
        .await?
        .ok_or_else(|| not_found(&scim_id))?;
    security_events::scim_group_created(
        &scim.client_ip,
        &record.id,
        record.group_id,
        &record.display_name,
        former.is_some(),
    );
    let before: Vec<MemberRef> = former
        .map(|f| {
            f.members
                .into_iter()
                .map(|account_id| MemberRef {
                    id: String::new(),
                    account_id,
                })
                .collect()
        })
        .unwrap_or_default();
    let (added, removed) = difference(&before, &record.members);
    report_membership(scim, &record, &added, &removed);
    report_roles(&scim.client_ip, &outcome);
    Ok(record)
}

/// Shared by PUT and PATCH: `change` turns the current record into the new Group.
async fn update<F>(
    state: &AppState,
    scim: &Scim,
    id: &str,
    operation: &'static str,
    change: F,
) -> Result<GroupRecord, ScimError>
where
    F: Fn(&GroupRecord) -> Result<GroupData, ScimError>,
{
    let change = &change;
    let db = &state.db;
    let (before, outcome) = commit(db, &scim.settings.oidc, move || async move {
        let current = store::get(db, id).await?.ok_or_else(|| not_found(id))?;
        let data = change(&current)?;
        let members = resolve_members(state, &data).await?;
        let steps = store::plan_update(&current, &data, &members, now());
        Ok((steps, current.members))
    })
    .await?;
    let record = store::get(db, id).await?.ok_or_else(|| not_found(id))?;
    security_events::scim_group_changed(
        &scim.client_ip,
        &record.id,
        record.group_id,
        &record.display_name,
        operation,
    );
    let (added, removed) = difference(&before, &record.members);
    report_membership(scim, &record, &added, &removed);
    report_roles(&scim.client_ip, &outcome);
    Ok(record)
}

/// PUT /Groups/{id}: name, externalId and the whole member list are replaced.
pub async fn replace(
    state: &AppState,
    scim: &Scim,
    id: &str,
    body: &Map<String, Value>,
) -> Result<GroupRecord, ScimError> {
    require_schema(body, &GROUP)?;
    let data = GroupData::parse(&canonical_attributes(&GROUP, body))?;
    update(state, scim, id, "replace", |_| Ok(data.clone())).await
}

/// PATCH /Groups/{id}: how directories add and remove members one at a time.
pub async fn modify(
    state: &AppState,
    scim: &Scim,
    id: &str,
    body: &Map<String, Value>,
) -> Result<GroupRecord, ScimError> {
    let ops = patch::parse_request(body, &GROUP)?;
    let base = scim.base.clone();
    update(state, scim, id, "patch", |current| {
        let mut resource = group::writable(&group::render(current, &base));
        patch::apply(&mut resource, &ops, &GROUP)?;
        GroupData::parse(&resource)
    })
    .await
}

/// DELETE /Groups/{id}: the group and its memberships go; former members' roles follow.
pub async fn delete(state: &AppState, scim: &Scim, id: &str) -> Result<(), ScimError> {
    let db = &state.db;
    let (record, outcome) = commit(db, &scim.settings.oidc, move || async move {
        let current = store::get(db, id).await?.ok_or_else(|| not_found(id))?;
        Ok((store::plan_delete(&current), current))
    })
    .await?;
    security_events::scim_group_deleted(
        &scim.client_ip,
        &record.id,
        record.group_id,
        &record.display_name,
    );
    report_membership(scim, &record, &[], &record.members);
    report_roles(&scim.client_ip, &outcome);
    Ok(())
}
