//! Spaces: a directorate, a project or a site groups its pages and news in a space. Who may do
//! what in a space is decided here and nowhere else:
//!
//! - a member holds one [`SpaceRole`]: reader < contributor < editor < manager;
//! - in a public space, every agent in the space's audience is a reader without being a member;
//! - in a private space, only members get in.
//!
//! [`role_of`] is the one check; pages, news and later wikis call it before anything else.
//!
//! Global administrators create spaces and manage any space's members and settings, but they
//! read a private space's content only as its members: administering the intranet is not a
//! reason to read a project's or a service's pages (see [`Access`]).
//!
//! Files: `store` (queries), `pages` (page rules and writes), `approval` (pages waiting for a
//! manager in an approval space), `routes` (space and page handlers), `admin` (space creation,
//! settings, members), `forms` (audience checkboxes), `demo` (the demo's spaces and HR pages).

pub mod admin;
pub mod approval;
pub mod changes;
pub mod demo;
pub mod forms;
pub mod pages;
pub mod routes;
pub mod store;

use crate::audience::{AgentAudience, Rule};
use crate::db::{Database, DbError, now};
use crate::with_db;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SpaceRole {
    Reader,
    Contributor,
    Editor,
    Manager,
}

impl SpaceRole {
    pub const ALL: [SpaceRole; 4] = [
        SpaceRole::Reader,
        SpaceRole::Contributor,
        SpaceRole::Editor,
        SpaceRole::Manager,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SpaceRole::Reader => "reader",
            SpaceRole::Contributor => "contributor",
            SpaceRole::Editor => "editor",
            SpaceRole::Manager => "manager",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Public,
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(Visibility::Public),
            "private" => Some(Visibility::Private),
            _ => None,
        }
    }
}

/// What a new space is.
#[derive(Debug, Clone)]
pub struct NewSpace<'a> {
    pub slug: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub visibility: Visibility,
    pub approval_required: bool,
    pub audience: &'a [Rule],
}

/// A write refused by a unique constraint — two people saving the same slug at the same moment,
/// after both passed the form's check — becomes that check's 400 rather than a 500.
pub(crate) fn unique_as(e: DbError, message: &'static str) -> crate::http::error::AppError {
    match &e {
        DbError::Sqlx(sqlx::Error::Database(d)) if d.is_unique_violation() => {
            crate::http::error::AppError::BadRequest(message)
        }
        _ => e.into(),
    }
}

/// A slug is 1 to 64 lower-case ASCII letters, digits and inner dashes.
pub fn valid_slug(slug: &str) -> bool {
    (1..=64).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
}

/// Creates a space with its audience and returns its id. Callers check the slug and record
/// the audit entry; this only writes.
pub async fn create_space(db: &Database, space: &NewSpace<'_>) -> Result<i64, DbError> {
    let at = now();
    let id: i64 = with_db!(db, pool => sqlx::query_scalar(
        "INSERT INTO spaces (slug, name, description, visibility, approval_required, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id"
    ).bind(space.slug).bind(space.name).bind(space.description)
     .bind(space.visibility.as_str()).bind(space.approval_required).bind(at)
     .fetch_one(pool).await?);
    for rule in space.audience {
        with_db!(db, pool => sqlx::query(
            "INSERT INTO space_audience (space_id, audience_key) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        ).bind(id).bind(rule.key()).execute(pool).await.map(|_| ())?);
    }
    Ok(id)
}

/// Adds a member or changes their role.
pub async fn set_member(
    db: &Database,
    space_id: i64,
    account_id: i64,
    role: SpaceRole,
) -> Result<(), DbError> {
    with_db!(db, pool => sqlx::query(
        "INSERT INTO space_members (space_id, account_id, role, added_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (space_id, account_id) DO UPDATE SET role = excluded.role"
    ).bind(space_id).bind(account_id).bind(role.as_str()).bind(now()).execute(pool).await.map(|_| ())?);
    Ok(())
}

/// The agent's role in a space: their membership if any, else reader when the space is public,
/// not archived, and the agent is in its audience; `None` means the space is closed to them
/// (and callers answer 404, so a private space's existence does not leak).
pub async fn role_of(
    db: &Database,
    space_id: i64,
    account_id: i64,
    audience: &AgentAudience,
) -> Result<Option<SpaceRole>, DbError> {
    if audience.is_empty() {
        return Ok(None);
    }
    let member: Option<String> = with_db!(db, pool => sqlx::query_scalar(
        "SELECT role FROM space_members WHERE space_id = $1 AND account_id = $2"
    ).bind(space_id).bind(account_id).fetch_optional(pool).await?);
    if let Some(role) = member.as_deref().and_then(SpaceRole::parse) {
        return Ok(Some(role));
    }
    let public_for_agent: Option<i64> = match db {
        Database::Sqlite(pool) => sqlx::query_scalar(
            "SELECT s.id FROM spaces s WHERE s.id = $1 AND s.visibility = 'public' \
             AND s.archived_at IS NULL AND EXISTS (SELECT 1 FROM space_audience a \
             WHERE a.space_id = s.id AND a.audience_key IN (SELECT value FROM json_each($2)))",
        )
        .bind(space_id)
        .bind(audience.json())
        .fetch_optional(pool)
        .await?,
        Database::Postgres(pool) => sqlx::query_scalar(
            "SELECT s.id FROM spaces s WHERE s.id = $1 AND s.visibility = 'public' \
             AND s.archived_at IS NULL AND EXISTS (SELECT 1 FROM space_audience a \
             WHERE a.space_id = s.id AND a.audience_key IN (SELECT jsonb_array_elements_text($2::jsonb)))",
        )
        .bind(space_id)
        .bind(audience.json())
        .fetch_optional(pool)
        .await?,
    };
    Ok(public_for_agent.map(|_| SpaceRole::Reader))
}

/// What one agent may do in one space, worked out once per request.
#[derive(Debug, Clone)]
pub struct Access {
    pub space: store::Space,
    /// `None`: the space's content is closed to this agent.
    pub role: Option<SpaceRole>,
    /// A global administrator (manages members and settings of every space).
    pub is_admin: bool,
    pub audience: AgentAudience,
}

impl Access {
    /// Loads the space named `slug` and the agent's role in it; `None` when no such space.
    pub async fn load(
        db: &Database,
        slug: &str,
        account: &crate::accounts::Account,
    ) -> Result<Option<Self>, DbError> {
        let Some(space) = store::space_by_slug(db, slug).await? else {
            return Ok(None);
        };
        let audience = AgentAudience::of_account(db, account.id).await?;
        let role = role_of(db, space.id, account.id, &audience).await?;
        Ok(Some(Self {
            space,
            role,
            is_admin: account.has_role(crate::accounts::Role::Admin) && !audience.is_empty(),
            audience,
        }))
    }

    pub fn can_read(&self) -> bool {
        self.role.is_some()
    }

    /// Creating and editing pages; an archived space is read-only.
    pub fn can_write(&self) -> bool {
        self.role >= Some(SpaceRole::Contributor) && !self.space.archived
    }

    pub fn can_delete(&self) -> bool {
        self.role >= Some(SpaceRole::Editor) && !self.space.archived
    }

    /// Editors and managers see every page of the space, whatever its audience: they keep
    /// the content up to date, including pages meant for one site only.
    pub fn sees_all_pages(&self) -> bool {
        self.role >= Some(SpaceRole::Editor)
    }

    pub fn can_manage(&self) -> bool {
        self.role == Some(SpaceRole::Manager) || self.is_admin
    }

    /// Approving or rejecting pages waiting in an approval space: its managers, and
    /// administrators who can read the space (they never decide on content they may not read).
    pub fn can_approve(&self) -> bool {
        self.role == Some(SpaceRole::Manager) || (self.is_admin && self.can_read())
    }

    /// Whether this agent's new pages and edits wait for a manager's approval.
    pub fn needs_approval(&self) -> bool {
        self.space.approval_required && !self.can_approve()
    }

    /// Whether the space is known to this agent at all (else every answer is 404).
    pub fn knows_space(&self) -> bool {
        self.can_read() || self.is_admin
    }
}

/// A URL name made from a title: lower-case ASCII, accents dropped, other characters as dashes.
pub fn slugify(title: &str) -> String {
    let mut slug = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        let mapped = match c {
            'a'..='z' | '0'..='9' => Some(c),
            'à' | 'â' | 'ä' | 'á' => Some('a'),
            'é' | 'è' | 'ê' | 'ë' => Some('e'),
            'î' | 'ï' | 'í' => Some('i'),
            'ô' | 'ö' | 'ó' => Some('o'),
            'ù' | 'û' | 'ü' | 'ú' => Some('u'),
            'ç' => Some('c'),
            'œ' => {
                slug.push('o');
                Some('e')
            }
            'æ' => {
                slug.push('a');
                Some('e')
            }
            _ => None,
        };
        match mapped {
            Some(c) => slug.push(c),
            None if !slug.is_empty() && !slug.ends_with('-') => slug.push('-'),
            None => {}
        }
    }
    let mut slug: String = slug.chars().take(64).collect();
    while slug.ends_with('-') {
        slug.pop();
    }
    slug
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parse() {
        assert!(SpaceRole::Reader < SpaceRole::Contributor);
        assert!(SpaceRole::Editor < SpaceRole::Manager);
        for r in SpaceRole::ALL {
            assert_eq!(SpaceRole::parse(r.as_str()), Some(r));
        }
        assert_eq!(SpaceRole::parse("owner"), None);
    }

    #[test]
    fn slugs() {
        assert!(valid_slug("rh"));
        assert!(valid_slug("direction-des-finances-2"));
        for bad in ["", "-rh", "rh-", "RH", "r h", "ré", "a/b", &"x".repeat(65)] {
            assert!(!valid_slug(bad), "{bad:?}");
        }
    }

    #[test]
    fn titles_become_valid_slugs() {
        assert_eq!(
            slugify("Télétravail : règles générales"),
            "teletravail-regles-generales"
        );
        assert_eq!(slugify("Congés & RTT 2026"), "conges-rtt-2026");
        assert_eq!(slugify("Œuvres sociales"), "oeuvres-sociales");
        assert_eq!(slugify("!!!"), "");
        assert!(valid_slug(&slugify(&"Très long titre ".repeat(10))));
    }
}
