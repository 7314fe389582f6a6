//! An administrator replaces or removes another agent's photo (a picture that is not theirs,
//! an agent who cannot do it). The file is checked exactly as the agent's own upload is —
//! size, then the type sniffed from the bytes ([`crate::blobs::MediaType::sniff`]), never the
//! browser's word — and the change is recorded as `directory.profile_update` by "admin" with
//! the photo's SHA-256 before and after, in the transaction that writes it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::directory::people::{self, RawProfile};
use crate::http::error::AppError;
use crate::http::extract::{CurrentUser, Form};
use crate::http::pages::{PageContext, render};
use crate::http::upload::UploadForm;
use crate::routes::RouteTable;
use crate::security_events::{self, Actor};

use super::profile::{AdminEditForm, admin_page, admin_target, changed_fields, checked_photo};

pub fn routes(table: RouteTable) -> RouteTable {
    table
        .post("/people/{id}/edit/photo", upload)
        .post("/people/{id}/edit/photo/remove", remove)
}

/// Writes the profile and its audit entry when the photo changed.
async fn save(
    state: &AppState,
    actor: &Actor,
    account_id: i64,
    before: &RawProfile,
    after: &RawProfile,
) -> Result<(), AppError> {
    let changes: serde_json::Map<String, serde_json::Value> = changed_fields(before, after)
        .into_iter()
        .map(|(name, b, a)| (name.to_owned(), json!({ "before": b, "after": a })))
        .collect();
    if changes.is_empty() {
        return Ok(());
    }
    let mut tx = state.db.begin().await?;
    people::save_profile(&mut tx, account_id, after).await?;
    security_events::record(
        &mut tx,
        actor,
        "directory.profile_update",
        Some(format!("account:{account_id}")),
        "success",
        json!({ "by": "admin", "changes": changes }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn upload(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Path(raw_id): Path<String>,
    form: UploadForm,
) -> Result<Response, AppError> {
    let target = admin_target(&state, &user, &raw_id).await?;
    let before = people::raw_profile(&state.db, target.id).await?;
    let checked = match form.file("photo") {
        None => Err(("directory-error-photo-missing", StatusCode::BAD_REQUEST)),
        Some(file) => checked_photo(&file.bytes).map(|m| (file.bytes.to_vec(), m)),
    };
    let (bytes, media) = match checked {
        Ok(ok) => ok,
        Err((message, status)) => {
            let errors = vec![ctx.shell.t(message)];
            let form = AdminEditForm::of(&before);
            let page = admin_page(&state, ctx.shell, &target, form, errors, false).await?;
            return render(status, &page);
        }
    };
    let stored = state.blobs.put(bytes, media).await?;
    let mut after = before.clone();
    after.photo_sha256 = Some(stored.sha256);
    after.photo_type = Some(media.as_str().to_owned());
    save(&state, &actor, target.id, &before, &after).await?;
    Ok(Redirect::to(&format!("/people/{}/edit?saved=1", target.id)).into_response())
}

#[derive(Debug, Deserialize)]
struct EmptyForm {}

async fn remove(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Path(raw_id): Path<String>,
    Form(_form): Form<EmptyForm>,
) -> Result<Response, AppError> {
    let target = admin_target(&state, &user, &raw_id).await?;
    let before = people::raw_profile(&state.db, target.id).await?;
    let mut after = before.clone();
    after.photo_sha256 = None;
    after.photo_type = None;
    save(&state, &actor, target.id, &before, &after).await?;
    Ok(Redirect::to(&format!("/people/{}/edit?saved=1", target.id)).into_response())
}
