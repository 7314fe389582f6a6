//! Queries on spaces, members and pages. Whatever an agent may see is filtered here, in SQL,
//! with the agent's audience keys bound as one JSON array (see `crate::audience`): a space or a
//! page outside the agent's reach is never read into memory. Writes take the caller's
//! transaction so that the audit entry commits with them.

use crate::audience::AgentAudience;
use crate::db::{Database, DbError, Tx};
use crate::{with_db, with_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
struct SpaceRow {
    id: i64,
    slug: String,
    name: String,
    description: String,
    visibility: String,
    approval_required: bool,
    archived_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Space {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub visibility: super::Visibility,
    pub approval_required: bool,
    pub archived: bool,
}

impl From<SpaceRow> for Space {
    fn from(r: SpaceRow) -> Self {
        Space {
            id: r.id,
            slug: r.slug,
            name: r.name,
            description: r.description,
            // The column's CHECK allows only the two values.
            visibility: super::Visibility::parse(&r.visibility)
                .unwrap_or(super::Visibility::Private),
            approval_required: r.approval_required,
            archived: r.archived_at.is_some(),
        }
    }
}

pub async fn space_by_slug(db: &Database, slug: &str) -> Result<Option<Space>, DbError> {
    let row: Option<SpaceRow> = with_db!(db, pool => sqlx::query_as(
        "SELECT id, slug, name, description, visibility, approval_required, archived_at \
         FROM spaces WHERE slug = $1"
    ).bind(slug).fetch_optional(pool).await?);
    Ok(row.map(Space::from))
}

/// A space with its member count, for the administrators' list.
#[derive(Debug, Clone, sqlx::FromRow)]
struct CountedSpaceRow {
    #[sqlx(flatten)]
    space: SpaceRow,
    members: i64,
}

/// Every space, for administrators (names only: their content stays behind `role_of`).
pub async fn all_spaces(db: &Database) -> Result<Vec<(Space, i64)>, DbError> {
    let rows: Vec<CountedSpaceRow> = with_db!(db, pool => sqlx::query_as(
        "SELECT s.id, s.slug, s.name, s.description, s.visibility, s.approval_required, \
         s.archived_at, (SELECT COUNT(*) FROM space_members m WHERE m.space_id = s.id) AS members \
         FROM spaces s ORDER BY s.name, s.id"
    ).fetch_all(pool).await?);
    Ok(rows
        .into_iter()
        .map(|r| (Space::from(r.space), r.members))
        .collect())
}

/// One line of `/spaces`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ListedSpace {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub visibility: String,
    /// The agent's membership role, if a member.
    pub role: Option<String>,
    pub archived_at: Option<i64>,
}

/// The spaces an agent can enter: their memberships, plus the public, unarchived spaces
/// whose audience includes them. Same rule as [`super::role_of`], for every space at once.
pub async fn spaces_for_agent(
    db: &Database,
    account_id: i64,
    audience: &AgentAudience,
) -> Result<Vec<ListedSpace>, DbError> {
    if audience.is_empty() {
        return Ok(Vec::new());
    }
    Ok(match db {
        Database::Sqlite(pool) => {
            sqlx::query_as(
                "SELECT s.slug, s.name, s.description, s.visibility, m.role, s.archived_at \
             FROM spaces s LEFT JOIN space_members m ON m.space_id = s.id AND m.account_id = $1 \
             WHERE m.role IS NOT NULL OR (s.visibility = 'public' AND s.archived_at IS NULL \
               AND EXISTS (SELECT 1 FROM space_audience a WHERE a.space_id = s.id \
                 AND a.audience_key IN (SELECT value FROM json_each($2)))) \
             ORDER BY s.name, s.id",
            )
            .bind(account_id)
            .bind(audience.json())
            .fetch_all(pool)
            .await?
        }
        Database::Postgres(pool) => {
            sqlx::query_as(
                "SELECT s.slug, s.name, s.description, s.visibility, m.role, s.archived_at \
             FROM spaces s LEFT JOIN space_members m ON m.space_id = s.id AND m.account_id = $1 \
             WHERE m.role IS NOT NULL OR (s.visibility = 'public' AND s.archived_at IS NULL \
               AND EXISTS (SELECT 1 FROM space_audience a WHERE a.space_id = s.id \
                 AND a.audience_key IN (SELECT jsonb_array_elements_text($2::jsonb)))) \
             ORDER BY s.name, s.id",
            )
            .bind(account_id)
            .bind(audience.json())
            .fetch_all(pool)
            .await?
        }
    })
}

/// Creates a space in the caller's transaction (so that its audit entry commits with it);
/// [`super::create_space`] is the same without a transaction, for the demo and tests.
pub async fn insert_space(tx: &mut Tx, space: &super::NewSpace<'_>) -> Result<i64, DbError> {
    let at = crate::db::now();
    Ok(with_tx!(tx, conn => {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO spaces (slug, name, description, visibility, approval_required, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
        ).bind(space.slug).bind(space.name).bind(space.description)
         .bind(space.visibility.as_str()).bind(space.approval_required).bind(at)
         .fetch_one(&mut *conn).await?;
        for rule in space.audience {
            sqlx::query("INSERT INTO space_audience (space_id, audience_key) VALUES ($1, $2)")
                .bind(id).bind(rule.key()).execute(&mut *conn).await?;
        }
        id
    }))
}

pub async fn space_audience(db: &Database, space_id: i64) -> Result<Vec<String>, DbError> {
    Ok(with_db!(db, pool => sqlx::query_scalar(
        "SELECT audience_key FROM space_audience WHERE space_id = $1 ORDER BY audience_key"
    ).bind(space_id).fetch_all(pool).await?))
}

/// Replaces a space's settings and audience.
pub async fn update_space(
    tx: &mut Tx,
    space_id: i64,
    name: &str,
    description: &str,
    visibility: super::Visibility,
    approval_required: bool,
    audience: &[String],
) -> Result<(), DbError> {
    let at = crate::db::now();
    with_tx!(tx, conn => {
        sqlx::query(
            "UPDATE spaces SET name = $1, description = $2, visibility = $3, \
             approval_required = $4, updated_at = $5 WHERE id = $6",
        )
        .bind(name).bind(description).bind(visibility.as_str()).bind(approval_required)
        .bind(at).bind(space_id).execute(&mut *conn).await?;
        sqlx::query("DELETE FROM space_audience WHERE space_id = $1")
            .bind(space_id).execute(&mut *conn).await?;
        for key in audience {
            sqlx::query("INSERT INTO space_audience (space_id, audience_key) VALUES ($1, $2)")
                .bind(space_id).bind(key).execute(&mut *conn).await?;
        }
    });
    Ok(())
}

pub async fn archive_space(tx: &mut Tx, space_id: i64) -> Result<(), DbError> {
    let at = crate::db::now();
    with_tx!(tx, conn => sqlx::query(
        "UPDATE spaces SET archived_at = $1, updated_at = $1 WHERE id = $2 AND archived_at IS NULL"
    ).bind(at).bind(space_id).execute(conn).await.map(|_| ())?);
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Member {
    pub account_id: i64,
    pub display_name: String,
    pub role: String,
}

pub async fn members(db: &Database, space_id: i64) -> Result<Vec<Member>, DbError> {
    Ok(with_db!(db, pool => sqlx::query_as(
        "SELECT m.account_id, a.display_name, m.role FROM space_members m \
         JOIN accounts a ON a.id = m.account_id WHERE m.space_id = $1 \
         ORDER BY a.display_name, a.id"
    ).bind(space_id).fetch_all(pool).await?))
}

pub async fn member_count(db: &Database, space_id: i64) -> Result<i64, DbError> {
    Ok(with_db!(db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM space_members WHERE space_id = $1"
    ).bind(space_id).fetch_one(pool).await?))
}

/// Accounts whose name or login contains `text` (case-insensitive), to add as members.
pub async fn search_accounts(db: &Database, text: &str) -> Result<Vec<(i64, String)>, DbError> {
    let escaped: String = text
        .to_lowercase()
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    let pattern = format!("%{escaped}%");
    Ok(with_db!(db, pool => sqlx::query_as(
        "SELECT id, display_name FROM accounts WHERE disabled = FALSE \
         AND (lower(display_name) LIKE $1 ESCAPE '\\' OR lower(COALESCE(username, '')) LIKE $1 ESCAPE '\\') \
         ORDER BY display_name, id LIMIT 20"
    ).bind(pattern).fetch_all(pool).await?))
}

/// Adds a member or changes their role, in the caller's transaction; returns the former role.
pub async fn put_member(
    tx: &mut Tx,
    space_id: i64,
    account_id: i64,
    role: super::SpaceRole,
) -> Result<Option<String>, DbError> {
    let at = crate::db::now();
    Ok(with_tx!(tx, conn => {
        let before: Option<String> = sqlx::query_scalar(
            "SELECT role FROM space_members WHERE space_id = $1 AND account_id = $2",
        ).bind(space_id).bind(account_id).fetch_optional(&mut *conn).await?;
        sqlx::query(
            "INSERT INTO space_members (space_id, account_id, role, added_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (space_id, account_id) DO UPDATE SET role = excluded.role",
        ).bind(space_id).bind(account_id).bind(role.as_str()).bind(at).execute(&mut *conn).await?;
        before
    }))
}

pub async fn remove_member(tx: &mut Tx, space_id: i64, account_id: i64) -> Result<(), DbError> {
    with_tx!(tx, conn => sqlx::query(
        "DELETE FROM space_members WHERE space_id = $1 AND account_id = $2"
    ).bind(space_id).bind(account_id).execute(conn).await.map(|_| ())?);
    Ok(())
}

/// Managers other than `account_id`, read inside the transaction that would remove or demote
/// them (so two managers cannot each remove the other at once on PostgreSQL, the row lock on
/// the space serialises them; SQLite's writer lock already does).
pub async fn other_managers(tx: &mut Tx, space_id: i64, account_id: i64) -> Result<i64, DbError> {
    Ok(match tx {
        Tx::Sqlite(t) => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM space_members WHERE space_id = $1 AND role = 'manager' \
             AND account_id <> $2",
            )
            .bind(space_id)
            .bind(account_id)
            .fetch_one(&mut **t)
            .await?
        }
        Tx::Postgres(t) => {
            sqlx::query("SELECT id FROM spaces WHERE id = $1 FOR UPDATE")
                .bind(space_id)
                .execute(&mut **t)
                .await?;
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM space_members WHERE space_id = $1 AND role = 'manager' \
             AND account_id <> $2",
            )
            .bind(space_id)
            .bind(account_id)
            .fetch_one(&mut **t)
            .await?
        }
    })
}

pub async fn member_role(
    db: &Database,
    space_id: i64,
    account_id: i64,
) -> Result<Option<String>, DbError> {
    Ok(with_db!(db, pool => sqlx::query_scalar(
        "SELECT role FROM space_members WHERE space_id = $1 AND account_id = $2"
    ).bind(space_id).bind(account_id).fetch_optional(pool).await?))
}

/// The choices offered in audience forms.
#[derive(Debug, Clone, Default)]
pub struct AudienceChoices {
    pub groups: Vec<(i64, String)>,
    /// (id, full path "Direction > Service").
    pub departments: Vec<(i64, String)>,
    pub sites: Vec<(i64, String)>,
}

pub async fn audience_choices(db: &Database) -> Result<AudienceChoices, DbError> {
    let groups: Vec<(i64, String)> = with_db!(db, pool => sqlx::query_as(
        "SELECT id, name FROM groups ORDER BY name"
    ).fetch_all(pool).await?);
    let departments: Vec<(i64, String, Option<i64>)> = with_db!(db, pool => sqlx::query_as(
        "SELECT id, name, parent_id FROM departments"
    ).fetch_all(pool).await?);
    let sites: Vec<(i64, String)> = with_db!(db, pool => sqlx::query_as(
        "SELECT id, name FROM sites ORDER BY name"
    ).fetch_all(pool).await?);
    let by_id: std::collections::HashMap<i64, (&str, Option<i64>)> = departments
        .iter()
        .map(|(id, name, parent)| (*id, (name.as_str(), *parent)))
        .collect();
    let mut with_paths: Vec<(i64, String)> = departments
        .iter()
        .map(|(id, _, _)| {
            let mut names = Vec::new();
            let mut next = Some(*id);
            // Bounded walk: a cycle in the tree cannot hang the page.
            while let Some(current) = next.filter(|_| names.len() < 32) {
                match by_id.get(&current) {
                    Some((name, parent)) => {
                        names.push(*name);
                        next = *parent;
                    }
                    None => break,
                }
            }
            names.reverse();
            (*id, names.join(" › "))
        })
        .collect();
    with_paths.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(AudienceChoices {
        groups,
        departments: with_paths,
        sites,
    })
}
