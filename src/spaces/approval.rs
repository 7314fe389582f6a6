//! Page approval in a space with `approval_required` (the same rule as news, see
//! `crate::news`): a page written or edited by anyone who cannot approve is saved as a
//! *pending* version. Readers keep seeing the published version — or nothing at all for a page
//! that was never approved — because every read goes through `space_pages.published_version`
//! (see [`super::pages`]). A manager (or an administrator who can read the space) approves,
//! which publishes the version with the URL name, parent and audience it proposed, or rejects
//! it with a reason, which leaves the published version as it was.
//!
//! A newer proposal for the same page supersedes an older one still waiting, so a manager never
//! approves a text its author has already replaced. Every step is in the audit log
//! (`page.submit`, `page.approve`, `page.reject`) in the same transaction as the change.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::db::{Database, DbError, Tx, now};
use crate::http::error::AppError;
use crate::http::extract::{CurrentUser, Form};
use crate::http::pages::{PageContext, Shell, render};
use crate::routes::RouteTable;
use crate::security_events::{self, Actor};
use crate::{with_db, with_tx};

use super::pages::{self, Author, PageInput};
use super::routes::readable;
use super::{Access, store};

/// The longest rejection reason accepted.
const MAX_REASON: usize = 1000;

pub fn routes(table: RouteTable) -> RouteTable {
    table
        .get("/spaces/{slug}/pending", pending_page)
        .post("/spaces/{slug}/pending/{page}/{version}", decide)
}

/// A version waiting for a decision.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Proposal {
    pub page_id: i64,
    pub version: i64,
    pub title: String,
    pub body: String,
    /// The URL name the page will have once approved.
    pub slug: String,
    pub parent_id: Option<i64>,
    /// JSON array of audience keys.
    pub audience: String,
    /// No version of the page has been published yet.
    pub new_page: bool,
    pub edited_by: Option<i64>,
    pub edited_by_name: String,
    pub edited_at: i64,
}

const PROPOSAL_SELECT: &str = "SELECT v.page_id, v.version, v.title, v.body, \
     COALESCE(v.slug, p.slug) AS slug, v.parent_id, COALESCE(v.audience, '[]') AS audience, \
     (p.published_version IS NULL) AS new_page, v.edited_by, v.edited_by_name, v.edited_at \
     FROM page_versions v JOIN space_pages p ON p.id = v.page_id";

async fn insert_proposal(
    tx: &mut Tx,
    page_id: i64,
    input: &PageInput,
    author: &Author<'_>,
) -> Result<i64, DbError> {
    let audience = serde_json::Value::from(input.audience.clone()).to_string();
    Ok(with_tx!(tx, conn => {
        sqlx::query("UPDATE page_versions SET status = 'superseded' WHERE page_id = $1 AND status = 'pending'")
            .bind(page_id).execute(&mut *conn).await?;
        let next: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM page_versions WHERE page_id = $1",
        ).bind(page_id).fetch_one(&mut *conn).await?;
        sqlx::query(
            "INSERT INTO page_versions (page_id, version, title, body, edited_by, edited_by_name, \
             edited_at, status, slug, parent_id, audience) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $10)",
        ).bind(page_id).bind(next).bind(&input.title).bind(&input.body)
         .bind(author.account_id).bind(author.name).bind(now())
         .bind(&input.slug).bind(input.parent_id).bind(audience)
         .execute(&mut *conn).await?;
        next
    }))
}

/// A new page waiting for approval: the row reserves its URL name but has no published
/// version, so no reader finds it. Returns the page id.
pub async fn propose_new(
    tx: &mut Tx,
    space_id: i64,
    input: &PageInput,
    author: &Author<'_>,
) -> Result<i64, DbError> {
    let id = pages::insert_page_row(tx, space_id, input, author, now()).await?;
    insert_proposal(tx, id, input, author).await?;
    Ok(id)
}

/// An edit of a published page waiting for approval; returns its version number.
pub async fn propose_edit(
    tx: &mut Tx,
    page_id: i64,
    input: &PageInput,
    author: &Author<'_>,
) -> Result<i64, DbError> {
    insert_proposal(tx, page_id, input, author).await
}

/// The proposals waiting in a space, oldest first; only `author`'s when given.
pub async fn pending_in(
    db: &Database,
    space_id: i64,
    author: Option<i64>,
) -> Result<Vec<Proposal>, DbError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "{PROPOSAL_SELECT} WHERE p.space_id = $1 AND v.status = 'pending' \
         AND ($2 = 0 OR v.edited_by = $2) ORDER BY v.edited_at, v.page_id, v.version"
    ));
    Ok(with_db!(db, pool => sqlx::query_as(sql)
        .bind(space_id).bind(author.unwrap_or(0)).fetch_all(pool).await?))
}

/// One of an author's proposals that was decided (or replaced), as they see it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DecidedProposal {
    pub page_id: i64,
    pub version: i64,
    pub title: String,
    /// `published` (approved), `rejected` or `superseded`.
    pub status: String,
    pub rejection_reason: Option<String>,
    /// When a manager decided; for a superseded proposal, when it was written.
    pub at: i64,
    /// The page's address while it has a published version (a rejected new page has none).
    pub slug: Option<String>,
}

/// An author's most recent decided proposals in a space, newest first: what the manager said
/// about their text, rejection reasons included.
pub async fn decided_for_author(
    db: &Database,
    space_id: i64,
    author: i64,
) -> Result<Vec<DecidedProposal>, DbError> {
    Ok(with_db!(db, pool => sqlx::query_as(
        "SELECT v.page_id, v.version, v.title, v.status, v.rejection_reason, \
         COALESCE(v.reviewed_at, v.edited_at) AS at, \
         CASE WHEN p.published_version IS NULL THEN NULL ELSE p.slug END AS slug \
         FROM page_versions v JOIN space_pages p ON p.id = v.page_id \
         WHERE p.space_id = $1 AND v.edited_by = $2 \
         AND (v.status IN ('rejected', 'superseded') \
              OR (v.status = 'published' AND v.reviewed_at IS NOT NULL)) \
         ORDER BY COALESCE(v.reviewed_at, v.edited_at) DESC, v.page_id, v.version DESC LIMIT 20"
    ).bind(space_id).bind(author).fetch_all(pool).await?))
}

/// How many proposals, file changes and page deletions wait in a space (shown to its managers
/// on the space's home).
pub async fn pending_count_in(db: &Database, space_id: i64) -> Result<i64, DbError> {
    let texts: i64 = with_db!(db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM page_versions v JOIN space_pages p ON p.id = v.page_id \
         WHERE p.space_id = $1 AND v.status = 'pending'"
    ).bind(space_id).fetch_one(pool).await?);
    Ok(texts + super::changes::waiting_count_in(db, space_id).await?)
}

async fn proposal(
    db: &Database,
    space_id: i64,
    page_id: i64,
    version: i64,
) -> Result<Option<Proposal>, DbError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "{PROPOSAL_SELECT} WHERE p.space_id = $1 AND v.page_id = $2 AND v.version = $3 \
         AND v.status = 'pending'"
    ));
    Ok(with_db!(db, pool => sqlx::query_as(sql)
        .bind(space_id).bind(page_id).bind(version).fetch_optional(pool).await?))
}

/// Records the decision on a pending version; `false` when it is no longer pending (another
/// manager decided first, or a newer proposal superseded it).
async fn close(
    tx: &mut Tx,
    p: &Proposal,
    status: &str,
    reason: Option<&str>,
    reviewer: i64,
) -> Result<bool, DbError> {
    let n = with_tx!(tx, conn => sqlx::query(
        "UPDATE page_versions SET status = $1, rejection_reason = $2, reviewed_by = $3, reviewed_at = $4 \
         WHERE page_id = $5 AND version = $6 AND status = 'pending'"
    ).bind(status).bind(reason).bind(reviewer).bind(now()).bind(p.page_id).bind(p.version)
     .execute(conn).await?.rows_affected());
    Ok(n == 1)
}

/// Publishes a proposal: the page takes its text, URL name, parent and audience.
async fn publish(tx: &mut Tx, p: &Proposal, parent_id: Option<i64>) -> Result<(), DbError> {
    with_tx!(tx, conn => sqlx::query(
        "UPDATE space_pages SET slug = $1, parent_id = $2, title = $3, body = $4, updated_by = $5, \
         updated_at = $6, published_version = $7 WHERE id = $8"
    ).bind(&p.slug).bind(parent_id).bind(&p.title).bind(&p.body).bind(p.edited_by)
     .bind(now()).bind(p.version).bind(p.page_id).execute(conn).await.map(|_| ())?);
    let audience: Vec<String> = serde_json::from_str(&p.audience).unwrap_or_default();
    pages::write_audience(tx, p.page_id, &audience).await
}

struct ProposalView {
    page_id: i64,
    version: i64,
    title: String,
    slug: String,
    new_page: bool,
    by: String,
    at: String,
    html: String,
}

#[derive(Template)]
#[template(path = "space_pending.html")]
struct PendingPage {
    shell: Shell,
    space: store::Space,
    notice: Option<String>,
    proposals: Vec<ProposalView>,
    can_approve: bool,
    /// The signed-in writer's own decided proposals, with the managers' reasons.
    decided: Vec<DecidedView>,
    /// Files added or to be removed, waiting (all of them for a manager, else the writer's).
    files: Vec<FileChangeView>,
    /// Pages whose deletion was asked for.
    deletions: Vec<DeletionView>,
}

struct FileChangeView {
    id: i64,
    page_slug: String,
    page_title: String,
    file_name: String,
    kib: String,
    removal: bool,
    by: String,
    at: String,
}

struct DeletionView {
    page_id: i64,
    slug: String,
    title: String,
    by: String,
    at: String,
}

struct DecidedView {
    title: String,
    /// The locale key of the decision.
    status: &'static str,
    reason: Option<String>,
    at: String,
    slug: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct DoneQuery {
    #[serde(default)]
    done: String,
}

/// `/spaces/{slug}/pending`: what waits for approval. Managers see the whole queue with the
/// decision forms; contributors and editors see their own proposals.
async fn pending_page(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
    Query(query): Query<DoneQuery>,
) -> Result<Response, AppError> {
    let access = readable(&state, &user.account, &slug).await?;
    if !(access.can_write() || access.can_approve()) {
        return Err(AppError::Forbidden);
    }
    let can_approve = access.can_approve();
    let only = (!can_approve).then_some(user.account.id);
    let proposals = pending_in(&state.db, access.space.id, only)
        .await?
        .into_iter()
        .map(|p| ProposalView {
            html: crate::markdown::render(&p.body),
            page_id: p.page_id,
            version: p.version,
            title: p.title,
            slug: p.slug,
            new_page: p.new_page,
            by: p.edited_by_name,
            at: ctx.shell.when(p.edited_at),
        })
        .collect();
    let decided = decided_for_author(&state.db, access.space.id, user.account.id)
        .await?
        .into_iter()
        .map(|d| DecidedView {
            status: match d.status.as_str() {
                "published" => "spaces-decided-approved",
                "rejected" => "spaces-decided-rejected",
                _ => "spaces-decided-superseded",
            },
            title: d.title,
            reason: d.rejection_reason,
            at: ctx.shell.when(d.at),
            slug: d.slug,
        })
        .collect();
    let someone = |name: Option<String>| name.unwrap_or_else(|| ctx.shell.t("spaces-someone"));
    let files = super::changes::file_changes_in(&state.db, access.space.id, only)
        .await?
        .into_iter()
        .map(|f| FileChangeView {
            id: f.id,
            page_slug: f.page_slug,
            page_title: f.page_title,
            file_name: f.file_name,
            kib: (f.size.max(0) as u64).div_ceil(1024).to_string(),
            removal: f.removal,
            by: someone(f.requested_by_name),
            at: ctx.shell.when(f.requested_at),
        })
        .collect();
    let deletions = super::changes::deletions_in(&state.db, access.space.id, only)
        .await?
        .into_iter()
        .map(|d| DeletionView {
            page_id: d.page_id,
            slug: d.slug,
            title: d.title,
            by: someone(d.requested_by_name),
            at: ctx.shell.when(d.requested_at),
        })
        .collect();
    let shell = ctx.shell;
    let notice = match query.done.as_str() {
        "submitted" => Some(shell.t("spaces-done-submitted")),
        "approved" => Some(shell.t("spaces-done-approved")),
        "rejected" => Some(shell.t("spaces-done-rejected")),
        "deletion-requested" => Some(shell.t("spaces-done-deletion-requested")),
        "file-approved" => Some(shell.t("spaces-done-file-approved")),
        "file-rejected" => Some(shell.t("spaces-done-file-rejected")),
        "file-removed" => Some(shell.t("spaces-done-file-removed")),
        "file-kept" => Some(shell.t("spaces-done-file-kept")),
        "page-deleted" => Some(shell.t("spaces-done-page-deleted")),
        "page-kept" => Some(shell.t("spaces-done-page-kept")),
        _ => None,
    };
    render(
        StatusCode::OK,
        &PendingPage {
            shell,
            space: access.space,
            notice,
            proposals,
            can_approve,
            decided,
            files,
            deletions,
        },
    )
}

#[derive(Debug, Deserialize)]
struct DecisionForm {
    decision: String,
    #[serde(default)]
    reason: String,
}

fn page_target(id: i64) -> Option<String> {
    Some(format!("page:{id}"))
}

/// The proposed parent if it is still a page of the space and would not make a cycle; else the
/// page goes to the top of the tree (the parent may have been deleted or moved meanwhile).
async fn parent_still_valid(
    state: &AppState,
    access: &Access,
    p: &Proposal,
) -> Result<Option<i64>, AppError> {
    let Some(parent) = p.parent_id else {
        return Ok(None);
    };
    let all = pages::visible_pages(&state.db, access).await?;
    let below = pages::descendants(&all, p.page_id);
    Ok((all.iter().any(|q| q.id == parent) && !below.contains(&parent)).then_some(parent))
}

async fn decide(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Path((slug, page, version)): Path<(String, String, String)>,
    Form(form): Form<DecisionForm>,
) -> Result<Response, AppError> {
    let access = readable(&state, &user.account, &slug).await?;
    if !access.can_approve() {
        return Err(AppError::Forbidden);
    }
    let page_id: i64 = page.parse().map_err(|_| AppError::NotFound)?;
    let version: i64 = version.parse().map_err(|_| AppError::NotFound)?;
    let Some(p) = proposal(&state.db, access.space.id, page_id, version).await? else {
        return Err(AppError::BadRequest("spaces-error-not-pending"));
    };
    let details = |extra: serde_json::Value| {
        let mut d = json!({ "space": access.space.slug, "slug": p.slug, "title": p.title,
                            "version": p.version, "new_page": p.new_page,
                            "author": p.edited_by_name });
        if let (Some(d), Some(extra)) = (d.as_object_mut(), extra.as_object()) {
            d.extend(extra.clone());
        }
        d
    };
    let done = match form.decision.as_str() {
        "approve" => {
            let parent = parent_still_valid(&state, &access, &p).await?;
            let mut tx = state.db.begin().await?;
            if !close(&mut tx, &p, "published", None, user.account.id).await? {
                return Err(AppError::BadRequest("spaces-error-not-pending"));
            }
            publish(&mut tx, &p, parent)
                .await
                .map_err(|e| super::unique_as(e, "spaces-error-page-slug-taken"))?;
            security_events::record(
                &mut tx,
                &actor,
                "page.approve",
                page_target(p.page_id),
                "success",
                details(
                    json!({ "audience": serde_json::from_str::<serde_json::Value>(&p.audience)
                    .unwrap_or_default() }),
                ),
            )
            .await?;
            tx.commit().await?;
            "approved"
        }
        "reject" => {
            let reason = form.reason.trim();
            if reason.is_empty() || reason.chars().count() > MAX_REASON {
                return Err(AppError::BadRequest("spaces-error-reason"));
            }
            let mut tx = state.db.begin().await?;
            if !close(&mut tx, &p, "rejected", Some(reason), user.account.id).await? {
                return Err(AppError::BadRequest("spaces-error-not-pending"));
            }
            // A refused new page leaves nothing behind (its URL name is free again); the audit
            // entry keeps its title, author and the reason.
            if p.new_page {
                pages::delete_page(&mut tx, p.page_id).await?;
            }
            security_events::record(
                &mut tx,
                &actor,
                "page.reject",
                page_target(p.page_id),
                "success",
                details(json!({ "reason": reason })),
            )
            .await?;
            tx.commit().await?;
            "rejected"
        }
        _ => return Err(AppError::BadRequest("error-bad-request")),
    };
    Ok(Redirect::to(&format!(
        "/spaces/{}/pending?done={done}",
        access.space.slug
    ))
    .into_response())
}

/// Saves a submitted page as a proposal and records `page.submit`; `editing` is the page being
/// edited. Returns where to send the author.
pub(super) async fn submit(
    state: &AppState,
    actor: &Actor,
    access: &Access,
    editing: Option<i64>,
    input: &PageInput,
    author: &Author<'_>,
) -> Result<Response, AppError> {
    let mut tx = state.db.begin().await?;
    let (page_id, version) = match editing {
        Some(id) => (id, propose_edit(&mut tx, id, input, author).await?),
        None => {
            let id = propose_new(&mut tx, access.space.id, input, author)
                .await
                .map_err(|e| super::unique_as(e, "spaces-error-page-slug-taken"))?;
            (id, 1)
        }
    };
    security_events::record(
        &mut tx,
        actor,
        "page.submit",
        page_target(page_id),
        "success",
        json!({ "space": access.space.slug, "slug": input.slug, "title": input.title,
                "version": version, "new_page": editing.is_none(),
                "audience": input.audience }),
    )
    .await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!(
        "/spaces/{}/pending?done=submitted",
        access.space.slug
    ))
    .into_response())
}
