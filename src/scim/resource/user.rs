//! The SCIM User (RFC 7643 §4.1) as Beffroi keeps it: `userName` and `externalId` in columns,
//! `name`, `displayName`, `emails` and `active` as given in a JSON column, and from them the
//! account's own `display_name`, `email` and `disabled`.
//!
//! `active` may be unassigned (a client removed it): the account is then enabled, and the
//! attribute is not returned until set again. `active: false` is the only thing that disables.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{MAX_TEXT_CHARS, boolean, elements, optional_text, text};
use crate::config::ScimSubjectAttribute;
use crate::scim::error::ScimError;
use crate::scim::schema::{ENTERPRISE_USER_URN, USER_URN};
use crate::scim::store::UserRecord;

/// Longest e-mail address (RFC 5321 §4.5.3.1 path limit).
const MAX_EMAIL_CHARS: usize = 320;
const MAX_EMAILS: usize = 50;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Name {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formatted: Option<String>,
    #[serde(rename = "familyName", skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(rename = "givenName", skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email {
    pub value: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
}

/// What the `scim_users.resource` column holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAttributes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Name>,
    #[serde(
        rename = "displayName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<Email>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

/// A checked User, as a POST, a PUT or the result of a PATCH describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserData {
    pub user_name: String,
    pub external_id: Option<String>,
    pub attributes: StoredAttributes,
}

fn parse_name(value: Option<&Value>) -> Result<Option<Name>, ScimError> {
    let obj = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(o)) => o,
        Some(_) => return Err(ScimError::invalid_value("name must be an object")),
    };
    let name = Name {
        formatted: optional_text(obj, "formatted", "name.formatted", MAX_TEXT_CHARS)?,
        family_name: optional_text(obj, "familyName", "name.familyName", MAX_TEXT_CHARS)?,
        given_name: optional_text(obj, "givenName", "name.givenName", MAX_TEXT_CHARS)?,
    };
    Ok((name != Name::default()).then_some(name))
}

fn parse_emails(value: Option<&Value>) -> Result<Vec<Email>, ScimError> {
    let list = elements("emails", value)?;
    if list.len() > MAX_EMAILS {
        return Err(ScimError::invalid_value(format!(
            "at most {MAX_EMAILS} emails"
        )));
    }
    let mut emails = Vec::with_capacity(list.len());
    for item in list {
        let Value::Object(obj) = item else {
            return Err(ScimError::invalid_value("each email must be an object"));
        };
        let value = obj
            .get("value")
            .ok_or_else(|| ScimError::invalid_value("emails.value is required"))?;
        let value = text("emails.value", value, MAX_EMAIL_CHARS)?;
        // Beffroi writes to these addresses (digests): a value that cannot be one is refused
        // rather than stored (RFC 7643 §4.1.2 wants RFC 5321 form).
        let plausible = value
            .rsplit_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
            && !value.chars().any(char::is_whitespace);
        if !plausible {
            return Err(ScimError::invalid_value(
                "emails.value must be an e-mail address",
            ));
        }
        let primary = match obj.get("primary") {
            None => None,
            Some(v) => boolean("emails.primary", v)?,
        };
        emails.push(Email {
            value,
            kind: optional_text(obj, "type", "emails.type", 64)?,
            primary,
        });
    }
    // RFC 7643 §2.4: "The primary attribute value 'true' MUST appear no more than once."
    if emails.iter().filter(|e| e.primary == Some(true)).count() > 1 {
        return Err(ScimError::invalid_value("only one email may be primary"));
    }
    Ok(emails)
}

impl UserData {
    /// Checks canonical attributes (see [`super::canonical_attributes`]).
    pub fn parse(obj: &Map<String, Value>) -> Result<Self, ScimError> {
        let user_name = match obj.get("userName") {
            None | Some(Value::Null) => {
                return Err(ScimError::invalid_value("userName is required"));
            }
            Some(v) => text("userName", v, MAX_TEXT_CHARS)?,
        };
        if user_name.trim().is_empty() {
            return Err(ScimError::invalid_value("userName must not be empty"));
        }
        let active = match obj.get("active") {
            None => None,
            Some(v) => boolean("active", v)?,
        };
        Ok(UserData {
            user_name,
            external_id: optional_text(obj, "externalId", "externalId", MAX_TEXT_CHARS)?,
            attributes: StoredAttributes {
                name: parse_name(obj.get("name"))?,
                display_name: optional_text(obj, "displayName", "displayName", MAX_TEXT_CHARS)?,
                emails: parse_emails(obj.get("emails"))?,
                active,
            },
        })
    }

    /// The OpenID Connect subject this User stands for (`scim.subject_attribute`).
    pub fn subject(&self, attribute: ScimSubjectAttribute) -> Result<String, ScimError> {
        match attribute {
            ScimSubjectAttribute::UserName => Ok(self.user_name.clone()),
            ScimSubjectAttribute::ExternalId => self
                .external_id
                .clone()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    ScimError::invalid_value(
                        "externalId is required: it is the agent's SSO subject here",
                    )
                }),
        }
    }

    /// The name Beffroi shows: displayName, else the formatted name, else given and family
    /// name, else userName (an account always has a name).
    pub fn display_name(&self) -> String {
        let a = &self.attributes;
        let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.trim().is_empty());
        if let Some(d) = non_empty(&a.display_name) {
            return d;
        }
        if let Some(name) = &a.name {
            if let Some(f) = non_empty(&name.formatted) {
                return f;
            }
            let parts: Vec<&str> = [&name.given_name, &name.family_name]
                .into_iter()
                .filter_map(|p| p.as_deref())
                .filter(|p| !p.trim().is_empty())
                .collect();
            if !parts.is_empty() {
                return parts.join(" ");
            }
        }
        self.user_name.clone()
    }

    /// The address Beffroi writes to: the primary one, else the first.
    pub fn email(&self) -> Option<String> {
        let emails = &self.attributes.emails;
        emails
            .iter()
            .find(|e| e.primary == Some(true))
            .or_else(|| emails.first())
            .map(|e| e.value.clone())
    }

    /// Only an explicit `active: false` disables.
    pub fn disabled(&self) -> bool {
        self.attributes.active == Some(false)
    }
}

/// The User as SCIM returns it (before `attributes` projection).
pub fn render(record: &UserRecord, base: &str) -> Map<String, Value> {
    let location = format!("{base}/Users/{}", record.id);
    let mut out = Map::new();
    out.insert("schemas".into(), json!([USER_URN]));
    out.insert("id".into(), json!(record.id));
    if let Some(x) = &record.external_id {
        out.insert("externalId".into(), json!(x));
    }
    out.insert("userName".into(), json!(record.user_name));
    let a = &record.attributes;
    if let Some(name) = &a.name {
        out.insert("name".into(), json!(name));
    }
    if let Some(d) = &a.display_name {
        out.insert("displayName".into(), json!(d));
    }
    let placement = &record.placement;
    if let Some(title) = &placement.title {
        out.insert("title".into(), json!(title));
    }
    if !a.emails.is_empty() {
        out.insert("emails".into(), json!(a.emails));
    }
    // The enterprise extension (RFC 7643 §4.3) from the who's-who: what the directory holds
    // now, whoever set it.
    let mut enterprise = Map::new();
    if let Some(department) = &placement.department {
        enterprise.insert("department".into(), json!(department));
    }
    if let Some(manager) = &placement.manager_id {
        enterprise.insert("manager".into(), json!({ "value": manager }));
    }
    if !enterprise.is_empty() {
        out.insert("schemas".into(), json!([USER_URN, ENTERPRISE_USER_URN]));
        out.insert(ENTERPRISE_USER_URN.into(), Value::Object(enterprise));
    }
    // The account's state is authoritative: a disabled account is never reported active.
    if record.disabled {
        out.insert("active".into(), json!(false));
    } else if let Some(active) = a.active {
        out.insert("active".into(), json!(active));
    }
    if !record.groups.is_empty() {
        let groups: Vec<Value> = record
            .groups
            .iter()
            .map(|g| {
                json!({
                    "value": g.id,
                    "$ref": format!("{base}/Groups/{}", g.id),
                    "display": g.name,
                    "type": "direct",
                })
            })
            .collect();
        out.insert("groups".into(), Value::Array(groups));
    }
    out.insert(
        "meta".into(),
        json!({
            "resourceType": "User",
            "created": super::super::format_time(record.created_at),
            "lastModified": super::super::format_time(record.updated_at),
            "location": location,
        }),
    );
    out
}

/// The writable part of a rendered User: what a PATCH starts from.
pub fn writable(rendered: &Map<String, Value>) -> Map<String, Value> {
    let mut out = rendered.clone();
    for read_only in ["schemas", "id", "meta", "groups"] {
        out.remove(read_only);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<UserData, ScimError> {
        UserData::parse(v.as_object().unwrap())
    }

    #[test]
    fn beffroi_columns_are_derived() {
        let u = parse(json!({
            "userName": "jdupont",
            "name": {"givenName": "Jeanne", "familyName": "Dupont"},
            "emails": [{"value": "a@x.fr"}, {"value": "b@x.fr", "primary": true}],
            "active": false
        }))
        .unwrap();
        assert_eq!(u.display_name(), "Jeanne Dupont");
        assert_eq!(u.email().as_deref(), Some("b@x.fr"));
        assert!(u.disabled());
        let u = parse(json!({"userName": "x", "displayName": "X Y"})).unwrap();
        assert_eq!(u.display_name(), "X Y");
        assert!(
            !u.disabled(),
            "unassigned active leaves the account enabled"
        );
        assert_eq!(u.email(), None);
    }

    #[test]
    fn bad_users_are_refused() {
        for bad in [
            json!({}),
            json!({"userName": ""}),
            json!({"userName": 5}),
            json!({"userName": "a", "emails": "a@x"}),
            json!({"userName": "a", "emails": [{"type": "work"}]}),
            json!({"userName": "a", "emails": [{"value": "not an address"}]}),
            json!({"userName": "a", "emails": [{"value": "@example.org"}]}),
            json!({"userName": "a", "emails": [{"value": "a@x", "primary": true}, {"value": "b@x", "primary": true}]}),
            json!({"userName": "a", "active": "maybe"}),
            json!({"userName": "a", "name": "A"}),
        ] {
            let err = parse(bad.clone()).unwrap_err();
            assert_eq!(err.status.as_u16(), 400, "{bad}");
        }
    }
}
