//! Group operations (RFC 7644 §3.3, §3.5.1, §3.5.2, §3.6). Membership is what matters to
//! Beffroi: it decides audiences and, through `oidc.*_groups`, roles, so every change of it is
//! reported with the accounts that joined and left, and roles follow in the same transaction.

use serde_json::{Map, Value, json};

use super::{commit, group_event, new_id};
use crate::AppState;
use crate::db::now;
use crate::scim::auth::Scim;
use crate::scim::error::ScimError;
use crate::scim::patch;
use crate::scim::resource::group::{self, GroupData};
use crate::scim::resource::{canonical_attributes, require_schema};
use crate::scim::schema::GROUP;
use crate::scim::store::groups::{self as store, ExistingGroup};
use crate::scim::store::{GroupRecord, MemberRef, Outcome, users};
use crate::security_events::Event;

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

/// The entry for a change of membership, if any (by account id: what audiences and roles
/// follow).
fn membership_event(scim_id: &str, name: &str, before: &[i64], after: &[i64]) -> Option<Event> {
    let added: Vec<i64> = after
        .iter()
        .filter(|a| !before.contains(a))
        .copied()
        .collect();
    let removed: Vec<i64> = before
        .iter()
        .filter(|b| !after.contains(b))
        .copied()
        .collect();
    if added.is_empty() && removed.is_empty() {
        return None;
    }
    let details = json!({ "name": name, "added": added, "removed": removed });
    Some(group_event("scim.membership_change", scim_id, details))
}

fn account_ids(members: &[MemberRef]) -> Vec<i64> {
    members.iter().map(|m| m.account_id).collect()
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
    let after = account_ids(&members);
    let events = |(scim_id, former): &(String, Option<ExistingGroup>), _: &Outcome| {
        let details = json!({ "name": data.display_name, "adopted": former.is_some() });
        let mut events = vec![group_event("scim.group_create", scim_id, details)];
        let before = former
            .as_ref()
            .map(|f| f.members.clone())
            .unwrap_or_default();
        events.extend(membership_event(
            scim_id,
            &data.display_name,
            &before,
            &after,
        ));
        events
    };
    let ((scim_id, _), _) = commit(
        db,
        &scim.settings.oidc,
        &scim.actor,
        move || async move {
            let existing = store::find_by_name(db, &data.display_name).await?;
            if existing.as_ref().is_some_and(|e| !e.adoptable) {
                return Err(ScimError::uniqueness("displayName is already taken"));
            }
            let scim_id = new_id()?;
            let steps = store::plan_create(&scim_id, data, members_ref, existing.as_ref(), now());
            Ok((steps, (scim_id, existing)))
        },
        events,
    )
    .await?;
    store::get(db, &scim_id)
        .await?
        .ok_or_else(|| not_found(&scim_id))
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
    let events = |(before, name, after): &(Vec<i64>, String, Vec<i64>), _: &Outcome| {
        let details = json!({ "name": name, "operation": operation });
        let mut events = vec![group_event("scim.group_change", id, details)];
        events.extend(membership_event(id, name, before, after));
        events
    };
    commit(
        db,
        &scim.settings.oidc,
        &scim.actor,
        move || async move {
            let current = store::get(db, id).await?.ok_or_else(|| not_found(id))?;
            let data = change(&current)?;
            let members = resolve_members(state, &data).await?;
            let steps = store::plan_update(&current, &data, &members, now());
            let before = account_ids(&current.members);
            Ok((steps, (before, data.display_name, account_ids(&members))))
        },
        events,
    )
    .await?;
    store::get(db, id).await?.ok_or_else(|| not_found(id))
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
    let events = |(name, before): &(String, Vec<i64>), _: &Outcome| {
        let mut events = vec![group_event(
            "scim.group_delete",
            id,
            json!({ "name": name }),
        )];
        events.extend(membership_event(id, name, before, &[]));
        events
    };
    commit(
        db,
        &scim.settings.oidc,
        &scim.actor,
        move || async move {
            let current = store::get(db, id).await?.ok_or_else(|| not_found(id))?;
            let before = account_ids(&current.members);
            Ok((store::plan_delete(&current), (current.display_name, before)))
        },
        events,
    )
    .await?;
    Ok(())
}
