//! User operations (RFC 7644 §3.3 create, §3.5.1 replace, §3.5.2 modify, §3.6 delete).
//!
//! Deactivation is the point of this module: `active = false` (by PUT or PATCH) and DELETE
//! disable the account and end its sessions in the transaction that records the change, so
//! that a leaver's open session does not outlive the directory's decision by a single request.

use serde_json::{Map, Value, json};

use super::{commit, new_id, user_event};
use crate::AppState;
use crate::db::now;
use crate::scim::auth::Scim;
use crate::scim::error::ScimError;
use crate::scim::patch;
use crate::scim::resource::user::{self, UserData};
use crate::scim::resource::{canonical_attributes, require_schema};
use crate::scim::schema::USER;
use crate::scim::store::users::{self as store, UserColumns};
use crate::scim::store::{Outcome, UserRecord};
use crate::security_events::Event;

fn not_found(id: &str) -> ScimError {
    ScimError::not_found(format!("no User {id}"))
}

async fn reload(state: &AppState, id: &str) -> Result<UserRecord, ScimError> {
    store::get(&state.db, id)
        .await?
        .ok_or_else(|| not_found(id))
}

/// The entry for a change of the account's state, if the write changed it.
fn state_event(
    scim_id: &str,
    user_name: &str,
    was_disabled: bool,
    now_disabled: bool,
    outcome: &Outcome,
) -> Option<Event> {
    let details = json!({ "scim_id": scim_id, "user_name": user_name,
        "sessions_ended": outcome.sessions_ended });
    match (was_disabled, now_disabled) {
        (false, true) => Some(user_event(
            "scim.user_deactivate",
            outcome.account_id,
            details,
        )),
        (true, false) => Some(user_event(
            "scim.user_reactivate",
            outcome.account_id,
            details,
        )),
        _ => None,
    }
}

/// POST /Users. A subject that has an account already (an agent who signed in before being
/// provisioned, or a User deleted earlier) gets that account, so history and audiences follow
/// the person; a subject with a live User is a uniqueness conflict.
pub async fn create(
    state: &AppState,
    scim: &Scim,
    body: &Map<String, Value>,
) -> Result<UserRecord, ScimError> {
    require_schema(body, &USER)?;
    let data = UserData::parse(&canonical_attributes(&USER, body))?;
    let subject = data.subject(scim.settings.subject_attribute)?;
    let columns = UserColumns::of(&data)?;
    let (db, issuer) = (&state.db, scim.settings.issuer.as_str());
    let (data, subject, columns) = (&data, subject.as_str(), &columns);
    let now_disabled = columns.disabled;
    let events = |(scim_id, how, was_disabled): &(String, &'static str, bool), o: &Outcome| {
        let details = json!({ "scim_id": scim_id, "user_name": data.user_name, "how": how });
        let mut events = vec![user_event("scim.user_create", o.account_id, details)];
        events.extend(state_event(
            scim_id,
            &data.user_name,
            *was_disabled,
            now_disabled,
            o,
        ));
        events
    };
    let ((scim_id, _, _), _) = commit(
        db,
        &scim.settings.oidc,
        &scim.actor,
        move || async move {
            let existing = store::find_account(db, issuer, subject).await?;
            let scim_id = new_id()?;
            let now = now();
            let (steps, how, was_disabled) = match existing {
                None => (
                    store::plan_create(&scim_id, issuer, subject, data, columns, now),
                    "new",
                    false,
                ),
                Some(acc) => match acc.scim {
                    Some(link) if !link.deleted => {
                        return Err(ScimError::uniqueness(
                            "a User already exists for this subject",
                        ));
                    }
                    Some(link) => (
                        store::plan_attach(
                            &scim_id,
                            acc.account_id,
                            data,
                            columns,
                            Some(link.version),
                            now,
                        ),
                        "revived",
                        acc.disabled,
                    ),
                    None => (
                        store::plan_attach(&scim_id, acc.account_id, data, columns, None, now),
                        "adopted",
                        acc.disabled,
                    ),
                },
            };
            Ok((steps, (scim_id, how, was_disabled)))
        },
        events,
    )
    .await?;
    let record = reload(state, &scim_id).await?;
    place(state, scim, &record, body).await?;
    // Again, so that the answer carries the placement just written.
    reload(state, &scim_id).await
}

/// Title, department and manager from the enterprise extension (see
/// [`crate::directory::provisioning`]), once the User itself is written.
async fn place(
    state: &AppState,
    scim: &Scim,
    record: &UserRecord,
    body: &Map<String, Value>,
) -> Result<(), ScimError> {
    let placement = crate::directory::provisioning::ScimPlacement::of(body);
    crate::directory::provisioning::apply(&state.db, &scim.actor, record.account_id, &placement)
        .await?;
    Ok(())
}

/// Shared by PUT and PATCH: `change` turns the current record into the new User; `action` and
/// `details` describe the operation in its audit entry.
async fn update<F>(
    state: &AppState,
    scim: &Scim,
    id: &str,
    action: &'static str,
    details: Value,
    change: F,
) -> Result<UserRecord, ScimError>
where
    F: Fn(&UserRecord) -> Result<UserData, ScimError>,
{
    let db = &state.db;
    let settings = &scim.settings;
    let change = &change;
    let events = |(was_disabled, now_disabled, user_name): &(bool, bool, String), o: &Outcome| {
        let mut details = details.clone();
        details["scim_id"] = json!(id);
        details["user_name"] = json!(user_name);
        let mut events = vec![user_event(action, o.account_id, details)];
        events.extend(state_event(id, user_name, *was_disabled, *now_disabled, o));
        events
    };
    commit(
        db,
        &settings.oidc,
        &scim.actor,
        move || async move {
            let current = store::get(db, id).await?.ok_or_else(|| not_found(id))?;
            let data = change(&current)?;
            let subject = data.subject(settings.subject_attribute)?;
            let columns = UserColumns::of(&data)?;
            let steps = store::plan_update(&current, &subject, &data, &columns, now());
            Ok((steps, (current.disabled, columns.disabled, data.user_name)))
        },
        events,
    )
    .await?;
    reload(state, id).await
}

/// PUT /Users/{id} (RFC 7644 §3.5.1): the body replaces every writable attribute; read-only
/// ones (id, meta, groups) are ignored.
pub async fn replace(
    state: &AppState,
    scim: &Scim,
    id: &str,
    body: &Map<String, Value>,
) -> Result<UserRecord, ScimError> {
    require_schema(body, &USER)?;
    let data = UserData::parse(&canonical_attributes(&USER, body))?;
    let record = update(state, scim, id, "scim.user_replace", json!({}), |_| {
        Ok(data.clone())
    })
    .await?;
    place(state, scim, &record, body).await?;
    reload(state, id).await
}

/// PATCH /Users/{id} (RFC 7644 §3.5.2): the operations apply to the current User, and the
/// result must be a valid User.
pub async fn modify(
    state: &AppState,
    scim: &Scim,
    id: &str,
    body: &Map<String, Value>,
) -> Result<UserRecord, ScimError> {
    let ops = patch::parse_request(body, &USER)?;
    let base = scim.base.clone();
    let details = json!({ "operations": ops.len() });
    let record = update(state, scim, id, "scim.user_patch", details, |current| {
        let mut resource = user::writable(&user::render(current, &base));
        patch::apply(&mut resource, &ops, &USER)?;
        UserData::parse(&resource)
    })
    .await?;
    let placement = crate::directory::provisioning::ScimPlacement::of_patch(body);
    crate::directory::provisioning::apply(&state.db, &scim.actor, record.account_id, &placement)
        .await?;
    reload(state, id).await
}

/// DELETE /Users/{id} (RFC 7644 §3.6): gone from SCIM at once; the account is kept, disabled.
pub async fn delete(state: &AppState, scim: &Scim, id: &str) -> Result<(), ScimError> {
    let db = &state.db;
    let events = |user_name: &String, o: &Outcome| {
        let details = json!({ "scim_id": id, "user_name": user_name,
            "sessions_ended": o.sessions_ended });
        vec![user_event("scim.user_delete", o.account_id, details)]
    };
    commit(
        db,
        &scim.settings.oidc,
        &scim.actor,
        move || async move {
            let current = store::get(db, id).await?.ok_or_else(|| not_found(id))?;
            let steps = store::plan_delete(&current, now());
            Ok((steps, current.user_name))
        },
        events,
    )
    .await?;
    Ok(())
}
