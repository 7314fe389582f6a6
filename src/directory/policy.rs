//! The administrator's policy for the optional profile fields: who may see each one, and whether
//! the agent may edit it on their own page. The policy is read once per request and turned into
//! one [`Reach`] per field for the viewer, which the queries in [`super::people`] bind so that
//! the database itself leaves out what the viewer may not see.

use crate::db::{Database, DbError, Tx, now};
use crate::{with_db, with_tx};

/// The optional fields of a profile (name, title and department are always shown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Email,
    OfficePhone,
    MobilePhone,
    Site,
    Skills,
    Bio,
    Photo,
    Manager,
}

impl Field {
    pub const ALL: [Field; 8] = [
        Field::Email,
        Field::OfficePhone,
        Field::MobilePhone,
        Field::Site,
        Field::Skills,
        Field::Bio,
        Field::Photo,
        Field::Manager,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Field::Email => "email",
            Field::OfficePhone => "office_phone",
            Field::MobilePhone => "mobile_phone",
            Field::Site => "site",
            Field::Skills => "skills",
            Field::Bio => "bio",
            Field::Photo => "photo",
            Field::Manager => "manager",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// Whether the agent may ever be allowed to edit it: the e-mail comes from the identity
    /// provider, and site and manager are placement decisions made by administrators.
    pub fn self_editable(self) -> bool {
        matches!(
            self,
            Field::OfficePhone | Field::MobilePhone | Field::Skills | Field::Bio | Field::Photo
        )
    }

    /// Fluent id of the field's label.
    pub fn label_id(self) -> &'static str {
        match self {
            Field::Email => "directory-field-email",
            Field::OfficePhone => "directory-field-office-phone",
            Field::MobilePhone => "directory-field-mobile-phone",
            Field::Site => "directory-field-site",
            Field::Skills => "directory-field-skills",
            Field::Bio => "directory-field-bio",
            Field::Photo => "directory-field-photo",
            Field::Manager => "directory-field-manager",
        }
    }
}

/// Who may see a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Everyone,
    /// The viewer's department and the agent's are on one branch of the tree: the same, or one
    /// under the other (a director sees their services' agents, an agent their director).
    Department,
    /// The agent and administrators.
    Private,
}

impl Visibility {
    pub const ALL: [Visibility; 3] = [
        Visibility::Everyone,
        Visibility::Department,
        Visibility::Private,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Everyone => "everyone",
            Visibility::Department => "department",
            Visibility::Private => "private",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn label_id(self) -> &'static str {
        match self {
            Visibility::Everyone => "directory-visibility-everyone",
            Visibility::Department => "directory-visibility-department",
            Visibility::Private => "directory-visibility-private",
        }
    }
}

/// How far a field reaches for one viewer; bound into queries as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Every agent's value (the policy says everyone, or the viewer is an administrator).
    All,
    /// Agents on the viewer's branch of the department tree, and the viewer.
    Related,
    /// The viewer's own value only.
    OwnOnly,
}

impl Reach {
    pub fn as_sql(self) -> &'static str {
        match self {
            Reach::All => "all",
            Reach::Related => "related",
            Reach::OwnOnly => "own",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldRule {
    pub field: Field,
    pub visibility: Visibility,
    pub self_edit: bool,
}

/// The whole policy, one rule per field in [`Field::ALL`] order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub rules: Vec<FieldRule>,
}

impl Policy {
    /// The defaults the migration installs: the mobile for the department, the rest for all.
    pub fn defaults() -> Self {
        Self {
            rules: Field::ALL
                .into_iter()
                .map(|field| FieldRule {
                    field,
                    visibility: if field == Field::MobilePhone {
                        Visibility::Department
                    } else {
                        Visibility::Everyone
                    },
                    self_edit: field.self_editable(),
                })
                .collect(),
        }
    }

    pub fn rule(&self, field: Field) -> FieldRule {
        self.rules
            .iter()
            .copied()
            .find(|r| r.field == field)
            .unwrap_or(FieldRule {
                field,
                visibility: Visibility::Private,
                self_edit: false,
            })
    }

    /// Whether the agent may edit `field` on their own profile.
    pub fn self_edit(&self, field: Field) -> bool {
        field.self_editable() && self.rule(field).self_edit
    }

    /// The reach of `field` for a viewer (administrators see every field).
    pub fn reach(&self, field: Field, viewer_is_admin: bool) -> Reach {
        if viewer_is_admin {
            return Reach::All;
        }
        match self.rule(field).visibility {
            Visibility::Everyone => Reach::All,
            Visibility::Department => Reach::Related,
            Visibility::Private => Reach::OwnOnly,
        }
    }
}

/// Reads the policy; a field without a row (never, after the migration) is private.
pub async fn load(db: &Database) -> Result<Policy, DbError> {
    let rows: Vec<(String, String, bool)> = with_db!(db, pool => sqlx::query_as(
        "SELECT field, visibility, self_edit FROM directory_field_policy"
    ).fetch_all(pool).await?);
    let mut policy = Policy::defaults();
    for rule in &mut policy.rules {
        match rows.iter().find(|(f, _, _)| f == rule.field.as_str()) {
            Some((_, visibility, self_edit)) => {
                rule.visibility = Visibility::parse(visibility).unwrap_or(Visibility::Private);
                rule.self_edit = *self_edit && rule.field.self_editable();
            }
            None => {
                rule.visibility = Visibility::Private;
                rule.self_edit = false;
            }
        }
    }
    Ok(policy)
}

/// Stores one field's rule in the caller's transaction (which also records the change).
pub async fn save_rule(tx: &mut Tx, rule: FieldRule) -> Result<(), DbError> {
    with_tx!(tx, conn => sqlx::query(
        "INSERT INTO directory_field_policy (field, visibility, self_edit, updated_at) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (field) DO UPDATE SET visibility = excluded.visibility, \
             self_edit = excluded.self_edit, updated_at = excluded.updated_at"
    ).bind(rule.field.as_str()).bind(rule.visibility.as_str())
     .bind(rule.self_edit && rule.field.self_editable()).bind(now())
     .execute(conn).await.map(|_| ())?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_reach() {
        let policy = Policy::defaults();
        assert_eq!(
            policy.rule(Field::MobilePhone).visibility,
            Visibility::Department
        );
        assert_eq!(policy.reach(Field::MobilePhone, false), Reach::Related);
        assert_eq!(policy.reach(Field::MobilePhone, true), Reach::All);
        assert_eq!(policy.reach(Field::Email, false), Reach::All);
        assert!(policy.self_edit(Field::Bio));
        assert!(!policy.self_edit(Field::Manager));
        for f in Field::ALL {
            assert_eq!(Field::parse(f.as_str()), Some(f));
        }
        assert_eq!(Visibility::parse("nobody"), None);
    }
}
