//! Form plumbing shared by the space and page forms: repeated fields (checkboxes) and the
//! audience picker, which works without JavaScript (checkboxes in fieldsets). Submitted
//! audience keys are accepted only when they are among the choices offered, so a forged form
//! cannot target a group or site that does not exist.

use std::collections::BTreeSet;

use crate::accounts::Role;
use crate::http::error::AppError;

use super::store::AudienceChoices;

/// A URL-encoded form kept as its pairs, so that checkboxes can repeat a name.
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// The first value of a field, trimmed; "" when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.trim())
    }

    /// A field's value as typed (Markdown keeps its leading spaces).
    pub fn raw(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn checked(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct AudienceOption {
    pub key: String,
    pub label: String,
    pub checked: bool,
    /// The checkbox's id, unique in the page.
    pub id: String,
}

/// The audience picker as the template draws it.
#[derive(Debug, Clone)]
pub struct AudiencePicker {
    pub everyone: AudienceOption,
    pub groups: Vec<AudienceOption>,
    pub departments: Vec<AudienceOption>,
    pub sites: Vec<AudienceOption>,
    pub roles: Vec<AudienceOption>,
}

/// The global roles an audience can name, with their message ids.
pub const ROLE_LABELS: [(Role, &str); 4] = [
    (Role::Agent, "spaces-global-role-agent"),
    (Role::Editor, "spaces-global-role-editor"),
    (Role::Admin, "spaces-global-role-admin"),
    (Role::Auditor, "spaces-global-role-auditor"),
];

impl AudiencePicker {
    pub fn new(
        choices: &AudienceChoices,
        selected: &[String],
        lang: crate::i18n::Lang,
        everyone_label: &str,
    ) -> Self {
        let selected: BTreeSet<&str> = selected.iter().map(String::as_str).collect();
        let option = |key: String, label: String| AudienceOption {
            checked: selected.contains(key.as_str()),
            id: format!("aud-{}", key.replace(':', "-")),
            key,
            label,
        };
        Self {
            everyone: option("everyone".into(), everyone_label.to_owned()),
            groups: choices
                .groups
                .iter()
                .map(|(id, name)| option(format!("group:{id}"), name.clone()))
                .collect(),
            departments: choices
                .departments
                .iter()
                .map(|(id, path)| option(format!("department:{id}"), path.clone()))
                .collect(),
            sites: choices
                .sites
                .iter()
                .map(|(id, name)| option(format!("site:{id}"), name.clone()))
                .collect(),
            roles: ROLE_LABELS
                .iter()
                .map(|(role, label)| option(format!("role:{}", role.as_str()), lang.t(label)))
                .collect(),
        }
    }

    fn offers(&self, key: &str) -> bool {
        std::iter::once(&self.everyone)
            .chain(&self.groups)
            .chain(&self.departments)
            .chain(&self.sites)
            .chain(&self.roles)
            .any(|o| o.key == key)
    }

    /// The submitted keys, each checked against the choices; sorted and without repeats.
    pub fn accept(&self, submitted: &[&str]) -> Result<Vec<String>, AppError> {
        let mut keys = BTreeSet::new();
        for key in submitted {
            if crate::audience::Rule::parse(key).is_none() || !self.offers(key) {
                return Err(AppError::BadRequest("spaces-error-audience"));
            }
            keys.insert((*key).to_owned());
        }
        Ok(keys.into_iter().collect())
    }
}
