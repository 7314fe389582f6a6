//! User operations (RFC 7644 §3.3 create, §3.5.1 replace, §3.5.2 modify, §3.6 delete).
//!
//! Deactivation is the point of this module: `active = false` (by PUT or PATCH) and DELETE
//! disable the account and end its sessions in the transaction that records the change, so
//! that a leaver's open session does not outlive the directory's decision by a single request.

use serde_json::{Map, Value};

use super::{commit, new_id, report_roles};
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
use crate::security_events;

fn not_found(id: &str) -> ScimError {
    ScimError::not_found(format!("no User {id}"))
}

async fn reload(state: &AppState, id: &str) -> Result<UserRecord, ScimError> {
    store::get(&state.db, id)
        .await?
        .ok_or_else(|| not_found(id))
}

/// Reports what a write did to the account's state.
fn report_state(
    scim: &Scim,
    record: &UserRecord,
    was_disabled: bool,
    now_disabled: bool,
    outcome: &Outcome,
) {
    if now_disabled && !was_disabled {
        security_events::scim_user_deactivated(
            &scim.client_ip,
            &record.id,
            record.account_id,
            &record.user_name,
            outcome.sessions_ended,
        );
    } else if was_disabled && !now_disabled {
        security_events::scim_user_reactivated(
            &scim.client_ip,
            &record.id,
            record.account_id,
            &record.user_name,
        );
    }
    report_roles(&scim.client_ip, outcome);
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
    let ((scim_id, how, was_disabled), outcome) =
        commit(db, &scim.settings.oidc, move || async move {
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
        })
        .await?;
    let record = reload(state, &scim_id).await?;
    security_events::scim_user_created(
        &scim.client_ip,
        &record.id,
        record.account_id,
        &record.user_name,
        how,
    );
    report_state(scim, &record, was_disabled, columns.disabled, &outcome);
    Ok(record)
}

/// Shared by PUT and PATCH: `change` turns the current record into the new User.
async fn update<F>(
    state: &AppState,
    scim: &Scim,
    id: &str,
    change: F,
) -> Result<(UserRecord, bool), ScimError>
where
    F: Fn(&UserRecord) -> Result<UserData, ScimError>,
{
    let db = &state.db;
    let settings = &scim.settings;
    let change = &change;
    let (was_disabled, outcome) = commit(db, &settings.oidc, move || async move {
        let current = store::get(db, id).await?.ok_or_else(|| not_found(id))?;
        let data = change(&current)?;
        let subject = data.subject(settings.subject_attribute)?;
        let columns = UserColumns::of(&data)?;
        let steps = store::plan_update(&current, &subject, &data, &columns, now());
        Ok((steps, current.disabled))
    })
    .await?;
    let record = reload(state, id).await?;
    report_state(scim, &record, was_disabled, record.disabled, &outcome);
    Ok((record, was_disabled))
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
    let (record, _) = update(state, scim, id, |_| Ok(data.clone())).await?;
    security_events::scim_user_replaced(
        &scim.client_ip,
        &record.id,
        record.account_id,
        &record.user_name,
    );
    Ok(record)
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
    let (record, _) = update(state, scim, id, |current| {
        let mut resource = user::writable(&user::render(current, &base));
        patch::apply(&mut resource, &ops, &USER)?;
        UserData::parse(&resource)
    })
    .await?;
    security_events::scim_user_patched(
        &scim.client_ip,
        &record.id,
        record.account_id,
        &record.user_name,
        ops.len(),
    );
    Ok(record)
}

/// DELETE /Users/{id} (RFC 7644 §3.6): gone from SCIM at once; the account is kept, disabled.
pub async fn delete(state: &AppState, scim: &Scim, id: &str) -> Result<(), ScimError> {
    let db = &state.db;
    let (record, outcome) = commit(db, &scim.settings.oidc, move || async move {
        let current = store::get(db, id).await?.ok_or_else(|| not_found(id))?;
        let steps = store::plan_delete(&current, now());
        Ok((steps, current))
    })
    .await?;
    security_events::scim_user_deleted(
        &scim.client_ip,
        &record.id,
        record.account_id,
        &record.user_name,
        outcome.sessions_ended,
    );
    report_roles(&scim.client_ip, &outcome);
    Ok(())
}
