//! The other changes that wait for a manager in a space with `approval_required`, besides page
//! texts ([`super::approval`]): files added to a page, removals of published files, and page
//! deletions asked for by a writer who cannot approve.
//!
//! Without this, approval could be side-stepped: a contributor could put any file in front of
//! every reader of an HR page by attaching it, and an editor could take the official rule off
//! the intranet by deleting its page, neither seen by a manager. So:
//!
//! - an **added file** is `pending`: its author and the managers see and download it (a manager
//!   reads what they approve), readers do not, until a manager approves it; a rejected file's
//!   row is deleted, the audit entry keeps its name, hash and the reason;
//! - a **removal** of a published file is a request: the file stays published until a manager
//!   approves (it is removed) or rejects (the request is cleared). A writer withdrawing their
//!   own file that is still pending just removes it: it was never published;
//! - a **page deletion** by an editor is a request in the same way.
//!
//! Each decision is checked against the state it was made on (the UPDATE or DELETE names the
//! state), so two managers deciding at once cannot both act, and every step is audited in the
//! transaction that makes it.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::db::{Database, DbError, Tx, now};
use crate::http::error::AppError;
use crate::http::extract::{CurrentUser, Form};
use crate::routes::RouteTable;
use crate::security_events::{self, Actor};
use crate::{with_db, with_tx};

use super::routes::readable;
use super::{Access, pages};

/// The longest rejection reason accepted (as for page texts).
const MAX_REASON: usize = 1000;

pub fn routes(table: RouteTable) -> RouteTable {
    table
        .post("/spaces/{slug}/pending-files/{id}", decide_file)
        .post("/spaces/{slug}/pending-deletions/{page}", decide_deletion)
}

/// A file change waiting in a space: an added file, or the removal of a published one.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FileChange {
    pub id: i64,
    pub page_id: i64,
    pub page_slug: String,
    pub page_title: String,
    pub file_name: String,
    pub size: i64,
    pub sha256: String,
    /// `true`: the removal of a published file; `false`: a file added.
    pub removal: bool,
    /// Who asked (the uploader, or who asked for the removal).
    pub requested_by: Option<i64>,
    pub requested_by_name: Option<String>,
    pub requested_at: i64,
}

const FILE_CHANGE_SELECT: &str = "SELECT f.id, f.page_id, p.slug AS page_slug, p.title AS page_title, \
     f.file_name, f.size, f.sha256, (f.status = 'published') AS removal, \
     CASE WHEN f.status = 'pending' THEN f.uploaded_by ELSE f.removal_requested_by END AS requested_by, \
     a.display_name AS requested_by_name, \
     CASE WHEN f.status = 'pending' THEN f.uploaded_at ELSE f.removal_requested_at END AS requested_at \
     FROM page_attachments f JOIN space_pages p ON p.id = f.page_id \
     LEFT JOIN accounts a ON a.id = \
       CASE WHEN f.status = 'pending' THEN f.uploaded_by ELSE f.removal_requested_by END";

/// File changes waiting in a space, oldest first; only `author`'s when given.
pub async fn file_changes_in(
    db: &Database,
    space_id: i64,
    author: Option<i64>,
) -> Result<Vec<FileChange>, DbError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT * FROM ({FILE_CHANGE_SELECT} WHERE p.space_id = $1 \
         AND (f.status = 'pending' OR f.removal_requested_at IS NOT NULL)) c \
         WHERE ($2 = 0 OR c.requested_by = $2) ORDER BY c.requested_at, c.id"
    ));
    Ok(with_db!(db, pool => sqlx::query_as(sql)
        .bind(space_id).bind(author.unwrap_or(0)).fetch_all(pool).await?))
}

async fn file_change(db: &Database, space_id: i64, id: i64) -> Result<Option<FileChange>, DbError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "{FILE_CHANGE_SELECT} WHERE p.space_id = $1 AND f.id = $2 \
         AND (f.status = 'pending' OR f.removal_requested_at IS NOT NULL)"
    ));
    Ok(with_db!(db, pool => sqlx::query_as(sql)
        .bind(space_id).bind(id).fetch_optional(pool).await?))
}

/// A page whose deletion was asked for.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeletionRequest {
    pub page_id: i64,
    pub slug: String,
    pub title: String,
    pub requested_by: Option<i64>,
    pub requested_by_name: Option<String>,
    pub requested_at: i64,
}

const DELETION_SELECT: &str = "SELECT p.id AS page_id, p.slug, p.title, \
     p.deletion_requested_by AS requested_by, a.display_name AS requested_by_name, \
     p.deletion_requested_at AS requested_at \
     FROM space_pages p LEFT JOIN accounts a ON a.id = p.deletion_requested_by";

/// Page deletions waiting in a space, oldest first; only `author`'s when given.
pub async fn deletions_in(
    db: &Database,
    space_id: i64,
    author: Option<i64>,
) -> Result<Vec<DeletionRequest>, DbError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "{DELETION_SELECT} WHERE p.space_id = $1 AND p.deletion_requested_at IS NOT NULL \
         AND ($2 = 0 OR p.deletion_requested_by = $2) ORDER BY p.deletion_requested_at, p.id"
    ));
    Ok(with_db!(db, pool => sqlx::query_as(sql)
        .bind(space_id).bind(author.unwrap_or(0)).fetch_all(pool).await?))
}

/// File changes and page deletions waiting in a space (added to the managers' count).
pub async fn waiting_count_in(db: &Database, space_id: i64) -> Result<i64, DbError> {
    Ok(with_db!(db, pool => sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM page_attachments f JOIN space_pages p ON p.id = f.page_id \
                 WHERE p.space_id = $1 \
                 AND (f.status = 'pending' OR f.removal_requested_at IS NOT NULL)) \
              + (SELECT COUNT(*) FROM space_pages WHERE space_id = $1 \
                 AND deletion_requested_at IS NOT NULL)"
    ).bind(space_id).fetch_one(pool).await?))
}

/// Asks for the removal of a published file; `false` when it was already asked for, or is
/// no longer there.
pub async fn request_removal(
    tx: &mut Tx,
    page_id: i64,
    id: i64,
    account_id: i64,
) -> Result<bool, DbError> {
    let n = with_tx!(tx, conn => sqlx::query(
        "UPDATE page_attachments SET removal_requested_by = $1, removal_requested_at = $2 \
         WHERE page_id = $3 AND id = $4 AND status = 'published' AND removal_requested_at IS NULL"
    ).bind(account_id).bind(now()).bind(page_id).bind(id).execute(conn).await?.rows_affected());
    Ok(n == 1)
}

/// Asks for a page's deletion; `false` when it was already asked for.
pub async fn request_deletion(tx: &mut Tx, page_id: i64, account_id: i64) -> Result<bool, DbError> {
    let n = with_tx!(tx, conn => sqlx::query(
        "UPDATE space_pages SET deletion_requested_by = $1, deletion_requested_at = $2 \
         WHERE id = $3 AND deletion_requested_at IS NULL"
    ).bind(account_id).bind(now()).bind(page_id).execute(conn).await?.rows_affected());
    Ok(n == 1)
}

#[derive(Debug, Deserialize)]
struct DecisionForm {
    decision: String,
    #[serde(default)]
    reason: String,
}

impl DecisionForm {
    /// `Ok(None)` to approve, `Ok(Some(reason))` to reject (a reason is required).
    fn read(&self) -> Result<Option<&str>, AppError> {
        match self.decision.as_str() {
            "approve" => Ok(None),
            "reject" => {
                let reason = self.reason.trim();
                if reason.is_empty() || reason.chars().count() > MAX_REASON {
                    return Err(AppError::BadRequest("spaces-error-reason"));
                }
                Ok(Some(reason))
            }
            _ => Err(AppError::BadRequest("error-bad-request")),
        }
    }
}

async fn approver(state: &AppState, user: &CurrentUser, slug: &str) -> Result<Access, AppError> {
    let access = readable(state, &user.0.account, slug).await?;
    if !access.can_approve() {
        return Err(AppError::Forbidden);
    }
    Ok(access)
}

fn back(access: &Access, done: &str) -> Response {
    Redirect::to(&format!(
        "/spaces/{}/pending?done={done}",
        access.space.slug
    ))
    .into_response()
}

fn changed(n: u64) -> Result<(), AppError> {
    if n == 1 {
        Ok(())
    } else {
        Err(AppError::BadRequest("spaces-error-not-pending"))
    }
}

async fn decide_file(
    State(state): State<AppState>,
    user: CurrentUser,
    actor: Actor,
    Path((slug, id)): Path<(String, String)>,
    Form(form): Form<DecisionForm>,
) -> Result<Response, AppError> {
    let access = approver(&state, &user, &slug).await?;
    let id: i64 = id.parse().map_err(|_| AppError::NotFound)?;
    let reason = form.read()?;
    let Some(change) = file_change(&state.db, access.space.id, id).await? else {
        return Err(AppError::BadRequest("spaces-error-not-pending"));
    };
    let details = json!({ "space": access.space.slug, "page": change.page_slug,
        "attachment": change.id, "file_name": change.file_name, "sha256": change.sha256,
        "size": change.size, "change": if change.removal { "remove" } else { "add" },
        "requested_by": change.requested_by, "reason": reason });
    let mut tx = state.db.begin().await?;
    let (action, done) = match (change.removal, reason) {
        (false, None) => {
            let n = with_tx!(&mut tx, conn => sqlx::query(
                "UPDATE page_attachments SET status = 'published' WHERE id = $1 AND status = 'pending'"
            ).bind(id).execute(conn).await?.rows_affected());
            changed(n)?;
            ("page.attachment_approve", "file-approved")
        }
        (false, Some(_)) => {
            let n = with_tx!(&mut tx, conn => sqlx::query(
                "DELETE FROM page_attachments WHERE id = $1 AND status = 'pending'"
            ).bind(id).execute(conn).await?.rows_affected());
            changed(n)?;
            ("page.attachment_reject", "file-rejected")
        }
        (true, None) => {
            let n = with_tx!(&mut tx, conn => sqlx::query(
                "DELETE FROM page_attachments WHERE id = $1 AND removal_requested_at IS NOT NULL"
            ).bind(id).execute(conn).await?.rows_affected());
            changed(n)?;
            ("page.attachment_remove", "file-removed")
        }
        (true, Some(_)) => {
            let n = with_tx!(&mut tx, conn => sqlx::query(
                "UPDATE page_attachments SET removal_requested_by = NULL, removal_requested_at = NULL \
                 WHERE id = $1 AND removal_requested_at IS NOT NULL"
            ).bind(id).execute(conn).await?.rows_affected());
            changed(n)?;
            ("page.attachment_reject", "file-kept")
        }
    };
    security_events::record(
        &mut tx,
        &actor,
        action,
        Some(format!("page:{}", change.page_id)),
        "success",
        details,
    )
    .await?;
    tx.commit().await?;
    Ok(back(&access, done))
}

async fn decide_deletion(
    State(state): State<AppState>,
    user: CurrentUser,
    actor: Actor,
    Path((slug, page)): Path<(String, String)>,
    Form(form): Form<DecisionForm>,
) -> Result<Response, AppError> {
    let access = approver(&state, &user, &slug).await?;
    let page_id: i64 = page.parse().map_err(|_| AppError::NotFound)?;
    let reason = form.read()?;
    let request = deletions_in(&state.db, access.space.id, None)
        .await?
        .into_iter()
        .find(|d| d.page_id == page_id)
        .ok_or(AppError::BadRequest("spaces-error-not-pending"))?;
    let mut tx = state.db.begin().await?;
    let (action, done) = if reason.is_none() {
        let n = with_tx!(&mut tx, conn => sqlx::query(
            "DELETE FROM space_pages WHERE id = $1 AND deletion_requested_at IS NOT NULL"
        ).bind(page_id).execute(conn).await?.rows_affected());
        changed(n)?;
        ("page.delete", "page-deleted")
    } else {
        let n = with_tx!(&mut tx, conn => sqlx::query(
            "UPDATE space_pages SET deletion_requested_by = NULL, deletion_requested_at = NULL \
             WHERE id = $1 AND deletion_requested_at IS NOT NULL"
        ).bind(page_id).execute(conn).await?.rows_affected());
        changed(n)?;
        ("page.delete_reject", "page-kept")
    };
    security_events::record(
        &mut tx,
        &actor,
        action,
        Some(format!("page:{page_id}")),
        "success",
        json!({ "space": access.space.slug, "slug": request.slug, "title": request.title,
                "requested_by": request.requested_by, "reason": reason }),
    )
    .await?;
    tx.commit().await?;
    Ok(back(&access, done))
}

/// Whether a writer's own pending file may be withdrawn by them (it was never published).
pub fn may_withdraw(attachment: &pages::Attachment, access: &Access, account_id: i64) -> bool {
    attachment.is_pending() && (attachment.uploaded_by == Some(account_id) || access.can_approve())
}
