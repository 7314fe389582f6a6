//! Reading and writing agents' profiles. Every read that a page shows goes through
//! [`find_people`], whose one query applies the field policy in SQL: a field the viewer may not
//! see comes back NULL and cannot be matched by a search (no oracle), and disabled accounts are
//! never returned. [`raw_profile`] reads unfiltered values and is only for edit forms, after
//! the caller has checked the viewer is the agent or an administrator.

use std::collections::BTreeSet;

use crate::accounts::{Account, Role};
use crate::db::{Database, DbError, Tx, now};
use crate::directory::policy::{Field, Policy, Reach};
use crate::directory::tree::DepartmentTree;
use crate::{with_db, with_tx};

/// At most this many skills per agent, each at most [`MAX_SKILL_CHARS`] characters.
pub const MAX_SKILLS: usize = 20;
pub const MAX_SKILL_CHARS: usize = 60;
/// The longest short biography, in characters.
pub const MAX_BIO_CHARS: usize = 1000;

/// Who is looking, and how far each optional field reaches for them.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub account_id: i64,
    pub is_admin: bool,
    pub department_id: Option<i64>,
    branch_json: String,
    reach: Vec<(Field, Reach)>,
}

impl Viewer {
    pub async fn of(
        db: &Database,
        account: &Account,
        policy: &Policy,
        tree: &DepartmentTree,
    ) -> Result<Self, DbError> {
        let department_id: Option<i64> = with_db!(db, pool => sqlx::query_scalar(
            "SELECT department_id FROM agent_profiles WHERE account_id = $1"
        ).bind(account.id).fetch_optional(pool).await?)
        .flatten();
        let branch: BTreeSet<i64> = department_id.map(|d| tree.branch(d)).unwrap_or_default();
        let is_admin = account.has_role(Role::Admin);
        Ok(Self {
            account_id: account.id,
            is_admin,
            department_id,
            branch_json: serde_json::Value::from(branch.into_iter().collect::<Vec<_>>())
                .to_string(),
            reach: Field::ALL
                .into_iter()
                .map(|f| (f, policy.reach(f, is_admin)))
                .collect(),
        })
    }

    fn reach(&self, field: Field) -> &'static str {
        self.reach
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, r)| r.as_sql())
            .unwrap_or(Reach::OwnOnly.as_sql())
    }
}

/// What to look for. Empty criteria match everyone.
#[derive(Debug, Clone, Default)]
pub struct PeopleQuery {
    pub id: Option<i64>,
    /// Matched against the name, and the e-mail, phones and skills where visible.
    pub text: String,
    /// The department and everything under it (already expanded).
    pub departments: Option<BTreeSet<i64>>,
    pub site_id: Option<i64>,
    pub skill: String,
    /// Only the direct reports of this agent (where the manager field is visible).
    pub reports_of: Option<i64>,
    /// Only agents with reports and no visible manager: the top of the org chart.
    pub roots_only: bool,
    pub limit: i64,
    pub offset: i64,
}

/// One agent as this viewer may see them: invisible fields are `None`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Person {
    pub id: i64,
    pub display_name: String,
    pub title: Option<String>,
    pub department_id: Option<i64>,
    pub email: Option<String>,
    pub office_phone: Option<String>,
    pub mobile_phone: Option<String>,
    pub site_name: Option<String>,
    pub skills_visible: bool,
    pub bio: Option<String>,
    pub photo_sha256: Option<String>,
    pub photo_type: Option<String>,
    pub manager_id: Option<i64>,
    pub manager_name: Option<String>,
    pub report_count: i64,
    #[sqlx(skip)]
    pub skills: Vec<String>,
}

/// Whether a field of the agent (`id`, `dept` are SQL expressions) reaches the viewer ($1):
/// `reach` is the bound reach of that field ('all', 'related' or 'own').
macro_rules! visible {
    ($reach:literal, $id:literal, $dept:literal) => {
        concat!(
            "(",
            $reach,
            " = 'all' OR ",
            $id,
            " = $1 OR (",
            $reach,
            " = 'related' AND ",
            $dept,
            " IN (SELECT id FROM related)))"
        )
    };
    ($reach:literal) => {
        visible!($reach, "a.id", "p.department_id")
    };
}

/// Direct reports of `a` whose manager link the viewer may see.
macro_rules! visible_reports {
    () => {
        concat!(
            "(SELECT COUNT(*) FROM agent_profiles r JOIN accounts ra ON ra.id = r.account_id \
              WHERE r.manager_id = a.id AND ra.disabled = FALSE \
                AND EXISTS (SELECT 1 FROM account_roles rr WHERE rr.account_id = ra.id AND rr.role = 'agent') \
                AND ",
            visible!("$10", "r.account_id", "r.department_id"),
            ")"
        )
    };
}

macro_rules! digits_of {
    ($col:literal) => {
        concat!(
            "replace(replace(replace(COALESCE(",
            $col,
            ", ''), ' ', ''), '.', ''), '-', '')"
        )
    };
}

/// `expr` lower-cased without French accents, the form searched on (SQLite's `lower` folds
/// ASCII only, so accented capitals are replaced first).
macro_rules! folded {
    ($expr:literal) => {
        concat!(
            "lower(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(",
            "replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(",
            "replace(replace(replace(replace(replace(replace(",
            $expr,
            ", 'É', 'e'), 'È', 'e'), 'Ê', 'e'), 'Ë', 'e'), 'é', 'e'), 'è', 'e'), 'ê', 'e'), 'ë', 'e'),",
            " 'À', 'a'), 'Â', 'a'), 'à', 'a'), 'â', 'a'), 'Î', 'i'), 'Ï', 'i'), 'î', 'i'), 'ï', 'i'),",
            " 'Ô', 'o'), 'ô', 'o'), 'Ù', 'u'), 'Û', 'u'), 'ù', 'u'), 'û', 'u'), 'ü', 'u'), 'Ç', 'c'),",
            " 'ç', 'c'), 'Œ', 'oe'))"
        )
    };
}

/// Lower case without French accents: what [`folded!`] does in SQL, for patterns and keys.
pub fn fold(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .map(|c| match c {
            'é' | 'è' | 'ê' | 'ë' => "e".to_owned(),
            'à' | 'â' => "a".to_owned(),
            'î' | 'ï' => "i".to_owned(),
            'ô' => "o".to_owned(),
            'ù' | 'û' | 'ü' => "u".to_owned(),
            'ç' => "c".to_owned(),
            'œ' => "oe".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// The one query; `$cte` turns the two JSON arrays ($2: the viewer's branch, $15: departments
/// searched) into rows, which is the only part that differs between backends.
macro_rules! people_sql {
    ($cte:literal) => {
        concat!(
            $cte,
            " SELECT a.id, a.display_name, p.title, p.department_id, \
               CASE WHEN ", visible!("$3"), " THEN a.email END AS email, \
               CASE WHEN ", visible!("$4"), " THEN p.office_phone END AS office_phone, \
               CASE WHEN ", visible!("$5"), " THEN p.mobile_phone END AS mobile_phone, \
               CASE WHEN ", visible!("$6"), " THEN s.name END AS site_name, \
               CASE WHEN ", visible!("$7"), " THEN TRUE ELSE FALSE END AS skills_visible, \
               CASE WHEN ", visible!("$8"), " THEN p.bio END AS bio, \
               CASE WHEN ", visible!("$9"), " THEN p.photo_sha256 END AS photo_sha256, \
               CASE WHEN ", visible!("$9"), " THEN p.photo_type END AS photo_type, \
               CASE WHEN ", visible!("$10"), " THEN m.id END AS manager_id, \
               CASE WHEN ", visible!("$10"), " THEN m.display_name END AS manager_name, ",
            visible_reports!(), " AS report_count \
             FROM accounts a \
             LEFT JOIN agent_profiles p ON p.account_id = a.id \
             LEFT JOIN sites s ON s.id = p.site_id \
             LEFT JOIN accounts m ON m.id = p.manager_id AND m.disabled = FALSE \
             WHERE a.disabled = FALSE \
               AND EXISTS (SELECT 1 FROM account_roles ar WHERE ar.account_id = a.id AND ar.role = 'agent') \
               AND ($11 IS NULL OR a.id = $11) \
               AND ($12 = '' OR ",
            folded!("a.display_name"),
            " LIKE $12 ESCAPE '\\' \
                    OR (", visible!("$3"), " AND lower(a.email) LIKE $12 ESCAPE '\\') \
                    OR (", visible!("$7"), " AND EXISTS (SELECT 1 FROM agent_skills k \
                          WHERE k.account_id = a.id AND k.skill_key LIKE $12 ESCAPE '\\')) \
                    OR ($13 <> '' AND ", visible!("$4"), " AND ", digits_of!("p.office_phone"), " LIKE $13) \
                    OR ($13 <> '' AND ", visible!("$5"), " AND ", digits_of!("p.mobile_phone"), " LIKE $13)) \
               AND ($14 = FALSE OR p.department_id IN (SELECT id FROM wanted_departments)) \
               AND ($16 IS NULL OR (p.site_id = $16 AND ", visible!("$6"), ")) \
               AND ($17 = '' OR (", visible!("$7"), " AND EXISTS (SELECT 1 FROM agent_skills k \
                          WHERE k.account_id = a.id AND k.skill_key LIKE $17 ESCAPE '\\'))) \
               AND ($18 IS NULL OR (p.manager_id = $18 AND m.id IS NOT NULL AND ", visible!("$10"), ")) \
               AND ($19 = FALSE OR (NOT (m.id IS NOT NULL AND COALESCE(", visible!("$10"), ", FALSE)) \
                    AND ", visible_reports!(), " > 0)) \
             ORDER BY ", folded!("a.display_name"), ", a.id \
             LIMIT $20 OFFSET $21"
        )
    };
}

const PEOPLE_SQLITE: &str = people_sql!(
    "WITH related(id) AS (SELECT value FROM json_each($2)), \
          wanted_departments(id) AS (SELECT value FROM json_each($15))"
);
const PEOPLE_POSTGRES: &str = people_sql!(
    "WITH related(id) AS (SELECT jsonb_array_elements_text($2::jsonb)::bigint), \
          wanted_departments(id) AS (SELECT jsonb_array_elements_text($15::jsonb)::bigint)"
);

/// `%text%` for LIKE, lower-cased, with LIKE's own wildcards escaped.
pub fn like_pattern(text: &str) -> String {
    let text = fold(text.trim());
    if text.is_empty() {
        return String::new();
    }
    let mut out = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// A phone-number pattern when the search text looks like (part of) a number.
fn digits_pattern(text: &str) -> String {
    let text = text.trim();
    let phone_like = text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '.' | '-' | '+'));
    let digits: String = text
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect();
    if phone_like && digits.chars().filter(char::is_ascii_digit).count() >= 4 {
        format!("%{digits}%")
    } else {
        String::new()
    }
}

pub async fn find_people(
    db: &Database,
    viewer: &Viewer,
    query: &PeopleQuery,
) -> Result<Vec<Person>, DbError> {
    let departments = query.departments.clone().unwrap_or_default();
    let departments_json =
        serde_json::Value::from(departments.into_iter().collect::<Vec<_>>()).to_string();
    let text = like_pattern(&query.text);
    let digits = digits_pattern(&query.text);
    let skill = like_pattern(&query.skill);
    macro_rules! run {
        ($pool:ident, $sql:expr) => {
            sqlx::query_as::<_, Person>($sql)
                .bind(viewer.account_id)
                .bind(&viewer.branch_json)
                .bind(viewer.reach(Field::Email))
                .bind(viewer.reach(Field::OfficePhone))
                .bind(viewer.reach(Field::MobilePhone))
                .bind(viewer.reach(Field::Site))
                .bind(viewer.reach(Field::Skills))
                .bind(viewer.reach(Field::Bio))
                .bind(viewer.reach(Field::Photo))
                .bind(viewer.reach(Field::Manager))
                .bind(query.id)
                .bind(&text)
                .bind(&digits)
                .bind(query.departments.is_some())
                .bind(&departments_json)
                .bind(query.site_id)
                .bind(&skill)
                .bind(query.reports_of)
                .bind(query.roots_only)
                .bind(query.limit.clamp(1, 500))
                .bind(query.offset.max(0))
                .fetch_all($pool)
                .await?
        };
    }
    let mut people = match db {
        Database::Sqlite(pool) => run!(pool, PEOPLE_SQLITE),
        Database::Postgres(pool) => run!(pool, PEOPLE_POSTGRES),
    };
    let with_skills: Vec<i64> = people
        .iter()
        .filter(|p| p.skills_visible)
        .map(|p| p.id)
        .collect();
    if !with_skills.is_empty() {
        let ids = serde_json::Value::from(with_skills).to_string();
        let rows: Vec<(i64, String)> = match db {
            Database::Sqlite(pool) => sqlx::query_as(
                "SELECT account_id, skill FROM agent_skills \
                 WHERE account_id IN (SELECT value FROM json_each($1)) ORDER BY account_id, position",
            )
            .bind(&ids)
            .fetch_all(pool)
            .await?,
            Database::Postgres(pool) => sqlx::query_as(
                "SELECT account_id, skill FROM agent_skills \
                 WHERE account_id IN (SELECT jsonb_array_elements_text($1::jsonb)::bigint) \
                 ORDER BY account_id, position",
            )
            .bind(&ids)
            .fetch_all(pool)
            .await?,
        };
        for person in &mut people {
            person.skills = rows
                .iter()
                .filter(|(id, _)| *id == person.id)
                .map(|(_, s)| s.clone())
                .collect();
        }
    }
    Ok(people)
}

/// One agent as the viewer may see them, or `None` (unknown, disabled or not an agent).
pub async fn find_person(
    db: &Database,
    viewer: &Viewer,
    id: i64,
) -> Result<Option<Person>, DbError> {
    let query = PeopleQuery {
        id: Some(id),
        limit: 1,
        ..PeopleQuery::default()
    };
    Ok(find_people(db, viewer, &query).await?.into_iter().next())
}

/// An agent's stored values, unfiltered: for edit forms only.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct RawProfile {
    pub title: Option<String>,
    pub department_id: Option<i64>,
    pub site_id: Option<i64>,
    pub manager_id: Option<i64>,
    pub office_phone: Option<String>,
    pub mobile_phone: Option<String>,
    pub bio: Option<String>,
    pub photo_sha256: Option<String>,
    pub photo_type: Option<String>,
    #[sqlx(skip)]
    pub skills: Vec<String>,
}

pub async fn raw_profile(db: &Database, account_id: i64) -> Result<RawProfile, DbError> {
    let row: Option<RawProfile> = with_db!(db, pool => sqlx::query_as(
        "SELECT title, department_id, site_id, manager_id, office_phone, mobile_phone, bio, \
                photo_sha256, photo_type FROM agent_profiles WHERE account_id = $1"
    ).bind(account_id).fetch_optional(pool).await?);
    let mut profile = row.unwrap_or_default();
    profile.skills = with_db!(db, pool => sqlx::query_scalar(
        "SELECT skill FROM agent_skills WHERE account_id = $1 ORDER BY position"
    ).bind(account_id).fetch_all(pool).await?);
    Ok(profile)
}

/// Writes every column of an agent's profile and their skills, in the caller's transaction.
pub async fn save_profile(
    tx: &mut Tx,
    account_id: i64,
    profile: &RawProfile,
) -> Result<(), DbError> {
    with_tx!(tx, conn => {
        sqlx::query(
            "INSERT INTO agent_profiles (account_id, title, department_id, site_id, manager_id, \
                 office_phone, mobile_phone, bio, photo_sha256, photo_type, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (account_id) DO UPDATE SET title = excluded.title, \
                 department_id = excluded.department_id, site_id = excluded.site_id, \
                 manager_id = excluded.manager_id, office_phone = excluded.office_phone, \
                 mobile_phone = excluded.mobile_phone, bio = excluded.bio, \
                 photo_sha256 = excluded.photo_sha256, photo_type = excluded.photo_type, \
                 updated_at = excluded.updated_at",
        )
        .bind(account_id).bind(&profile.title).bind(profile.department_id)
        .bind(profile.site_id).bind(profile.manager_id).bind(&profile.office_phone)
        .bind(&profile.mobile_phone).bind(&profile.bio).bind(&profile.photo_sha256)
        .bind(&profile.photo_type).bind(now())
        .execute(&mut *conn).await?;
        sqlx::query("DELETE FROM agent_skills WHERE account_id = $1")
            .bind(account_id).execute(&mut *conn).await?;
        for (position, skill) in profile.skills.iter().enumerate() {
            sqlx::query(
                "INSERT INTO agent_skills (account_id, position, skill, skill_key) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(account_id).bind(i64::try_from(position).unwrap_or(i64::MAX))
            .bind(skill).bind(fold(skill))
            .execute(&mut *conn).await?;
        }
    });
    Ok(())
}

/// Whether making `manager` the manager of `agent` would close a loop of manager links.
pub async fn manager_would_cycle(db: &Database, agent: i64, manager: i64) -> Result<bool, DbError> {
    let mut seen = BTreeSet::new();
    let mut current = Some(manager);
    while let Some(id) = current {
        if id == agent {
            return Ok(true);
        }
        if !seen.insert(id) {
            return Ok(false);
        }
        current = with_db!(db, pool => sqlx::query_scalar(
            "SELECT manager_id FROM agent_profiles WHERE account_id = $1"
        ).bind(id).fetch_optional(pool).await?)
        .flatten();
    }
    Ok(false)
}

/// Every enabled agent as (id, name), for the administrator's manager select.
pub async fn all_agents(db: &Database) -> Result<Vec<(i64, String)>, DbError> {
    Ok(with_db!(db, pool => sqlx::query_as(
        "SELECT a.id, a.display_name FROM accounts a WHERE a.disabled = FALSE \
           AND EXISTS (SELECT 1 FROM account_roles r WHERE r.account_id = a.id AND r.role = 'agent') \
         ORDER BY lower(a.display_name), a.id"
    ).fetch_all(pool).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_escape_wildcards() {
        assert_eq!(like_pattern("  Ma_r%tin "), "%ma\\_r\\%tin%");
        assert_eq!(like_pattern("Éloïse"), "%eloise%");
        assert_eq!(like_pattern(""), "");
        assert_eq!(digits_pattern("06 12 34"), "%061234%");
        assert_eq!(digits_pattern("Martin"), "");
        assert_eq!(digits_pattern("12"), "");
    }
}
