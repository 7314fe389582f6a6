//! Pages of a space: reading them (filtered in SQL by the space role and the page's own
//! audience), writing them with their version history, and their attachments.
//!
//! A page with an audience narrows the space's: readers and contributors see it only when one
//! of its rules matches them; editors and managers see every page (see
//! [`super::Access::sees_all_pages`]). Every read function takes the [`super::Access`] and
//! returns nothing at all when the space is closed to the agent.

use crate::db::{Database, DbError, Tx, now};
use crate::{with_db, with_tx};

use super::Access;

/// Largest attachment accepted (the upload form's body limit is checked before this).
pub const MAX_ATTACHMENT_BYTES: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PageSummary {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub slug: String,
    pub title: String,
    pub updated_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Page {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub slug: String,
    pub title: String,
    pub body: String,
    pub updated_at: i64,
    pub version: i64,
    pub updated_by_name: String,
    /// A writer asked for the page's deletion, which waits for a manager.
    pub deletion_requested: bool,
}

pub async fn visible_pages(db: &Database, access: &Access) -> Result<Vec<PageSummary>, DbError> {
    if !access.can_read() {
        return Ok(Vec::new());
    }
    let (space, all, keys) = (
        access.space.id,
        access.sees_all_pages(),
        access.audience.json(),
    );
    Ok(match db {
        Database::Sqlite(pool) => {
            sqlx::query_as(
                "SELECT p.id, p.parent_id, p.slug, p.title, p.updated_at FROM space_pages p \
             WHERE p.space_id = $1 AND p.published_version IS NOT NULL AND ($2 \
               OR NOT EXISTS (SELECT 1 FROM page_audience a WHERE a.page_id = p.id) \
               OR EXISTS (SELECT 1 FROM page_audience a WHERE a.page_id = p.id \
                 AND a.audience_key IN (SELECT value FROM json_each($3)))) \
             ORDER BY p.title, p.id",
            )
            .bind(space)
            .bind(all)
            .bind(keys)
            .fetch_all(pool)
            .await?
        }
        Database::Postgres(pool) => {
            sqlx::query_as(
                "SELECT p.id, p.parent_id, p.slug, p.title, p.updated_at FROM space_pages p \
             WHERE p.space_id = $1 AND p.published_version IS NOT NULL AND ($2::boolean \
               OR NOT EXISTS (SELECT 1 FROM page_audience a WHERE a.page_id = p.id) \
               OR EXISTS (SELECT 1 FROM page_audience a WHERE a.page_id = p.id \
                 AND a.audience_key IN (SELECT jsonb_array_elements_text($3::jsonb)))) \
             ORDER BY p.title, p.id",
            )
            .bind(space)
            .bind(all)
            .bind(keys)
            .fetch_all(pool)
            .await?
        }
    })
}

/// The page named `slug` in the space, if this agent may read it.
pub async fn visible_page(
    db: &Database,
    access: &Access,
    slug: &str,
) -> Result<Option<Page>, DbError> {
    if !access.can_read() {
        return Ok(None);
    }
    let (space, all, keys) = (
        access.space.id,
        access.sees_all_pages(),
        access.audience.json(),
    );
    Ok(match db {
        Database::Sqlite(pool) => {
            sqlx::query_as(
                "SELECT p.id, p.parent_id, p.slug, p.title, p.body, p.updated_at, \
               v.version, v.edited_by_name AS updated_by_name, \
               (p.deletion_requested_at IS NOT NULL) AS deletion_requested \
             FROM space_pages p JOIN page_versions v ON v.page_id = p.id \
               AND v.version = p.published_version \
             WHERE p.space_id = $1 AND p.slug = $4 AND ($2 \
               OR NOT EXISTS (SELECT 1 FROM page_audience a WHERE a.page_id = p.id) \
               OR EXISTS (SELECT 1 FROM page_audience a WHERE a.page_id = p.id \
                 AND a.audience_key IN (SELECT value FROM json_each($3))))",
            )
            .bind(space)
            .bind(all)
            .bind(keys)
            .bind(slug)
            .fetch_optional(pool)
            .await?
        }
        Database::Postgres(pool) => {
            sqlx::query_as(
                "SELECT p.id, p.parent_id, p.slug, p.title, p.body, p.updated_at, \
               v.version, v.edited_by_name AS updated_by_name, \
               (p.deletion_requested_at IS NOT NULL) AS deletion_requested \
             FROM space_pages p JOIN page_versions v ON v.page_id = p.id \
               AND v.version = p.published_version \
             WHERE p.space_id = $1 AND p.slug = $4 AND ($2::boolean \
               OR NOT EXISTS (SELECT 1 FROM page_audience a WHERE a.page_id = p.id) \
               OR EXISTS (SELECT 1 FROM page_audience a WHERE a.page_id = p.id \
                 AND a.audience_key IN (SELECT jsonb_array_elements_text($3::jsonb))))",
            )
            .bind(space)
            .bind(all)
            .bind(keys)
            .bind(slug)
            .fetch_optional(pool)
            .await?
        }
    })
}

pub async fn page_audience(db: &Database, page_id: i64) -> Result<Vec<String>, DbError> {
    Ok(with_db!(db, pool => sqlx::query_scalar(
        "SELECT audience_key FROM page_audience WHERE page_id = $1 ORDER BY audience_key"
    ).bind(page_id).fetch_all(pool).await?))
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Version {
    pub version: i64,
    pub title: String,
    pub body: String,
    pub edited_by_name: String,
    pub edited_at: i64,
}

pub async fn versions(db: &Database, page_id: i64) -> Result<Vec<Version>, DbError> {
    Ok(with_db!(db, pool => sqlx::query_as(
        "SELECT version, title, body, edited_by_name, edited_at FROM page_versions \
         WHERE page_id = $1 AND status = 'published' ORDER BY version DESC"
    ).bind(page_id).fetch_all(pool).await?))
}

pub async fn version(
    db: &Database,
    page_id: i64,
    version: i64,
) -> Result<Option<Version>, DbError> {
    Ok(with_db!(db, pool => sqlx::query_as(
        "SELECT version, title, body, edited_by_name, edited_at FROM page_versions \
         WHERE page_id = $1 AND version = $2 AND status = 'published'"
    ).bind(page_id).bind(version).fetch_optional(pool).await?))
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Attachment {
    pub id: i64,
    pub sha256: String,
    pub file_name: String,
    pub size: i64,
    pub media_type: String,
    /// `published`, or `pending` a manager's approval (see [`super::changes`]).
    pub status: String,
    pub uploaded_by: Option<i64>,
    /// A writer asked for its removal, which waits for a manager.
    pub removal_requested: bool,
}

impl Attachment {
    pub fn is_pending(&self) -> bool {
        self.status == "pending"
    }

    /// Readers see published attachments only; a pending one is seen by whoever added it and
    /// by those who decide on it.
    pub fn visible_to(&self, access: &Access, account_id: i64) -> bool {
        !self.is_pending() || access.can_approve() || self.uploaded_by == Some(account_id)
    }
}

const ATTACHMENT_COLUMNS: &str = "id, sha256, file_name, size, media_type, status, uploaded_by, \
     (removal_requested_at IS NOT NULL) AS removal_requested";

/// Every attachment of a page, pending ones included: filter with [`Attachment::visible_to`].
pub async fn attachments(db: &Database, page_id: i64) -> Result<Vec<Attachment>, DbError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {ATTACHMENT_COLUMNS} FROM page_attachments WHERE page_id = $1 ORDER BY file_name, id"
    ));
    Ok(with_db!(db, pool => sqlx::query_as(sql).bind(page_id).fetch_all(pool).await?))
}

pub async fn attachment(
    db: &Database,
    page_id: i64,
    id: i64,
) -> Result<Option<Attachment>, DbError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {ATTACHMENT_COLUMNS} FROM page_attachments WHERE page_id = $1 AND id = $2"
    ));
    Ok(with_db!(db, pool => sqlx::query_as(sql).bind(page_id).bind(id).fetch_optional(pool).await?))
}

/// A page as submitted, already checked.
#[derive(Debug, Clone)]
pub struct PageInput {
    pub title: String,
    pub slug: String,
    pub body: String,
    pub parent_id: Option<i64>,
    pub audience: Vec<String>,
}

/// Who writes, as stored in the history.
pub struct Author<'a> {
    /// `None` for content written by the system (the demo).
    pub account_id: Option<i64>,
    pub name: &'a str,
}

pub(super) async fn write_audience(
    tx: &mut Tx,
    page_id: i64,
    audience: &[String],
) -> Result<(), DbError> {
    with_tx!(tx, conn => {
        sqlx::query("DELETE FROM page_audience WHERE page_id = $1")
            .bind(page_id).execute(&mut *conn).await?;
        for key in audience {
            sqlx::query("INSERT INTO page_audience (page_id, audience_key) VALUES ($1, $2)")
                .bind(page_id).bind(key).execute(&mut *conn).await?;
        }
    });
    Ok(())
}

async fn write_version(
    tx: &mut Tx,
    page_id: i64,
    input: &PageInput,
    author: &Author<'_>,
    at: i64,
) -> Result<i64, DbError> {
    Ok(with_tx!(tx, conn => {
        let next: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM page_versions WHERE page_id = $1",
        ).bind(page_id).fetch_one(&mut *conn).await?;
        sqlx::query(
            "INSERT INTO page_versions (page_id, version, title, body, edited_by, edited_by_name, edited_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        ).bind(page_id).bind(next).bind(&input.title).bind(&input.body)
         .bind(author.account_id).bind(author.name).bind(at).execute(&mut *conn).await?;
        next
    }))
}

/// Whether another page of the space already has this slug.
pub async fn slug_taken(
    db: &Database,
    space_id: i64,
    slug: &str,
    except: Option<i64>,
) -> Result<bool, DbError> {
    let n: i64 = with_db!(db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM space_pages WHERE space_id = $1 AND slug = $2 AND id <> $3"
    ).bind(space_id).bind(slug).bind(except.unwrap_or(0)).fetch_one(pool).await?);
    Ok(n > 0)
}

/// Inserts a page's row and its audience, with no version yet; returns its id. Shared by a
/// page published at once and a new page proposed for approval.
pub async fn insert_page_row(
    tx: &mut Tx,
    space_id: i64,
    input: &PageInput,
    author: &Author<'_>,
    at: i64,
) -> Result<i64, DbError> {
    let id: i64 = with_tx!(tx, conn => sqlx::query_scalar(
        "INSERT INTO space_pages (space_id, parent_id, slug, title, body, created_by, created_at, updated_by, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $6, $7) RETURNING id"
    ).bind(space_id).bind(input.parent_id).bind(&input.slug).bind(&input.title).bind(&input.body)
     .bind(author.account_id).bind(at).fetch_one(conn).await?);
    write_audience(tx, id, &input.audience).await?;
    Ok(id)
}

pub async fn create_page(
    tx: &mut Tx,
    space_id: i64,
    input: &PageInput,
    author: &Author<'_>,
) -> Result<i64, DbError> {
    let at = now();
    let id = insert_page_row(tx, space_id, input, author, at).await?;
    let version = write_version(tx, id, input, author, at).await?;
    set_published(tx, id, version).await?;
    Ok(id)
}

/// Saves a new state of a page; returns its version number.
pub async fn update_page(
    tx: &mut Tx,
    page_id: i64,
    input: &PageInput,
    author: &Author<'_>,
) -> Result<i64, DbError> {
    let at = now();
    with_tx!(tx, conn => sqlx::query(
        "UPDATE space_pages SET parent_id = $1, slug = $2, title = $3, body = $4, updated_by = $5, \
         updated_at = $6 WHERE id = $7"
    ).bind(input.parent_id).bind(&input.slug).bind(&input.title).bind(&input.body)
     .bind(author.account_id).bind(at).bind(page_id).execute(conn).await.map(|_| ())?);
    write_audience(tx, page_id, &input.audience).await?;
    let version = write_version(tx, page_id, input, author, at).await?;
    set_published(tx, page_id, version).await?;
    Ok(version)
}

/// Makes `version` the one readers see.
pub(super) async fn set_published(tx: &mut Tx, page_id: i64, version: i64) -> Result<(), DbError> {
    with_tx!(tx, conn => sqlx::query("UPDATE space_pages SET published_version = $1 WHERE id = $2")
        .bind(version).bind(page_id).execute(conn).await.map(|_| ())?);
    Ok(())
}

/// Deletes a page with its history and attachment rows (the blobs stay: other rows may share
/// them, and the backups keep them).
pub async fn delete_page(tx: &mut Tx, page_id: i64) -> Result<(), DbError> {
    with_tx!(tx, conn => sqlx::query("DELETE FROM space_pages WHERE id = $1")
        .bind(page_id).execute(conn).await.map(|_| ())?);
    Ok(())
}

pub async fn add_attachment(
    tx: &mut Tx,
    page_id: i64,
    blob: &crate::blobs::StoredBlob,
    file_name: &str,
    account_id: Option<i64>,
    pending: bool,
) -> Result<i64, DbError> {
    let size = i64::try_from(blob.size).unwrap_or(i64::MAX);
    let status = if pending { "pending" } else { "published" };
    Ok(with_tx!(tx, conn => sqlx::query_scalar(
        "INSERT INTO page_attachments (page_id, sha256, file_name, size, media_type, uploaded_by, \
         uploaded_at, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id"
    ).bind(page_id).bind(&blob.sha256).bind(file_name).bind(size).bind(blob.media_type.as_str())
     .bind(account_id).bind(now()).bind(status).fetch_one(conn).await?))
}

pub async fn remove_attachment(tx: &mut Tx, page_id: i64, id: i64) -> Result<bool, DbError> {
    let n = with_tx!(tx, conn => sqlx::query(
        "DELETE FROM page_attachments WHERE page_id = $1 AND id = $2"
    ).bind(page_id).bind(id).execute(conn).await?.rows_affected());
    Ok(n > 0)
}

/// Ids of `page_id` and every page below it, to refuse a parent that would make a cycle.
pub fn descendants(pages: &[PageSummary], page_id: i64) -> std::collections::HashSet<i64> {
    let mut found = std::collections::HashSet::from([page_id]);
    loop {
        let before = found.len();
        for p in pages {
            if p.parent_id.is_some_and(|parent| found.contains(&parent)) {
                found.insert(p.id);
            }
        }
        if found.len() == before {
            return found;
        }
    }
}

/// One line of the page tree as the template draws it: nested lists are opened after a row
/// with children and closed (`closes` times) after the last row of a branch.
#[derive(Debug, Clone)]
pub struct TreeRow {
    pub slug: String,
    pub title: String,
    pub has_children: bool,
    pub closes: usize,
}

/// The visible pages as a tree, depth first; a page whose parent the agent cannot see is
/// shown at the top rather than hidden.
pub fn tree(pages: &[PageSummary]) -> Vec<TreeRow> {
    let ids: std::collections::HashSet<i64> = pages.iter().map(|p| p.id).collect();
    let is_root = |p: &PageSummary| p.parent_id.is_none_or(|parent| !ids.contains(&parent));
    let mut ordered: Vec<(usize, &PageSummary)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut stack: Vec<(usize, &PageSummary)> = pages
        .iter()
        .filter(|p| is_root(p))
        .rev()
        .map(|p| (0, p))
        .collect();
    while let Some((depth, page)) = stack.pop() {
        if !seen.insert(page.id) {
            continue;
        }
        ordered.push((depth, page));
        stack.extend(
            pages
                .iter()
                .filter(|c| c.parent_id == Some(page.id))
                .rev()
                .map(|c| (depth + 1, c)),
        );
    }
    ordered
        .iter()
        .enumerate()
        .map(|(i, (depth, page))| {
            let next_depth = ordered.get(i + 1).map_or(0, |(d, _)| *d);
            let has_children = next_depth > *depth;
            TreeRow {
                slug: page.slug.clone(),
                title: page.title.clone(),
                has_children,
                closes: if has_children {
                    0
                } else {
                    depth.saturating_sub(next_depth)
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(id: i64, parent: Option<i64>) -> PageSummary {
        PageSummary {
            id,
            parent_id: parent,
            slug: format!("p{id}"),
            title: format!("P{id}"),
            updated_at: 0,
        }
    }

    #[test]
    fn tree_nests_children_and_closes_every_list() {
        let pages = [
            page(1, None),
            page(2, Some(1)),
            page(3, Some(2)),
            page(4, None),
            page(5, Some(99)),
        ];
        let rows = tree(&pages);
        let slugs: Vec<&str> = rows.iter().map(|r| r.slug.as_str()).collect();
        assert_eq!(slugs, ["p1", "p2", "p3", "p4", "p5"]);
        assert!(rows[0].has_children && rows[1].has_children && !rows[2].has_children);
        assert_eq!(rows[2].closes, 2);
        assert_eq!(rows[3].closes, 0);
        let opened = rows.iter().filter(|r| r.has_children).count();
        let closed: usize = rows.iter().map(|r| r.closes).sum();
        assert_eq!(opened, closed);
        assert_eq!(descendants(&pages, 1), [1, 2, 3].into_iter().collect());
    }
}
