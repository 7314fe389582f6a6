//! The SCIM Group (RFC 7643 §4.2) as Beffroi keeps it: `displayName` is the name of the
//! Beffroi group (an audience), `members` are rows of `account_groups`. Members are Users only:
//! groups do not nest, so a member of another `type` is refused rather than ignored.

use serde_json::{Map, Value, json};

use super::{MAX_TEXT_CHARS, elements, optional_text, text};
use crate::scim::error::ScimError;
use crate::scim::schema::GROUP_URN;
use crate::scim::store::GroupRecord;

/// A checked Group, as a POST, a PUT or the result of a PATCH describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupData {
    pub display_name: String,
    pub external_id: Option<String>,
    /// SCIM ids of member Users, without duplicates, in the order given.
    pub members: Vec<String>,
}

impl GroupData {
    /// Checks canonical attributes (see [`super::canonical_attributes`]).
    pub fn parse(obj: &Map<String, Value>) -> Result<Self, ScimError> {
        let display_name = match obj.get("displayName") {
            None | Some(Value::Null) => {
                return Err(ScimError::invalid_value("displayName is required"));
            }
            Some(v) => text("displayName", v, MAX_TEXT_CHARS)?,
        };
        if display_name.trim().is_empty() {
            return Err(ScimError::invalid_value("displayName must not be empty"));
        }
        let mut members: Vec<String> = Vec::new();
        for item in elements("members", obj.get("members"))? {
            let Value::Object(m) = item else {
                return Err(ScimError::invalid_value("each member must be an object"));
            };
            let value = m
                .get("value")
                .ok_or_else(|| ScimError::invalid_value("members.value is required"))?;
            let id = text("members.value", value, 64)?;
            if let Some(kind) = optional_text(m, "type", "members.type", 64)? {
                if !kind.eq_ignore_ascii_case("User") {
                    return Err(ScimError::invalid_value(
                        "members must be Users: groups do not nest",
                    ));
                }
            }
            if !members.contains(&id) {
                members.push(id);
            }
        }
        Ok(GroupData {
            display_name,
            external_id: optional_text(obj, "externalId", "externalId", MAX_TEXT_CHARS)?,
            members,
        })
    }
}

/// The Group as SCIM returns it (before `attributes` projection). Members carry no `display`:
/// the published schema has none (RFC 7643 §8.7.1), and returning one would make a client's
/// copy differ from ours.
pub fn render(record: &GroupRecord, base: &str) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("schemas".into(), json!([GROUP_URN]));
    out.insert("id".into(), json!(record.id));
    if let Some(x) = &record.external_id {
        out.insert("externalId".into(), json!(x));
    }
    out.insert("displayName".into(), json!(record.display_name));
    if !record.members.is_empty() {
        let members: Vec<Value> = record
            .members
            .iter()
            .map(|m| {
                json!({
                    "value": m.id,
                    "$ref": format!("{base}/Users/{}", m.id),
                    "type": "User",
                })
            })
            .collect();
        out.insert("members".into(), Value::Array(members));
    }
    out.insert(
        "meta".into(),
        json!({
            "resourceType": "Group",
            "created": super::super::format_time(record.created_at),
            "lastModified": super::super::format_time(record.updated_at),
            "location": format!("{base}/Groups/{}", record.id),
        }),
    );
    out
}

/// The writable part of a rendered Group: what a PATCH starts from.
pub fn writable(rendered: &Map<String, Value>) -> Map<String, Value> {
    let mut out = rendered.clone();
    for read_only in ["schemas", "id", "meta"] {
        out.remove(read_only);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_users_without_duplicates() {
        let g = GroupData::parse(
            json!({"displayName": "Agents", "members": [
                {"value": "a"}, {"value": "b", "type": "User"}, {"value": "a"}
            ]})
            .as_object()
            .unwrap(),
        )
        .unwrap();
        assert_eq!(g.members, ["a", "b"]);
        for bad in [
            json!({"members": []}),
            json!({"displayName": " "}),
            json!({"displayName": "G", "members": [{"value": "g2", "type": "Group"}]}),
            json!({"displayName": "G", "members": [{"display": "x"}]}),
        ] {
            assert!(GroupData::parse(bad.as_object().unwrap()).is_err(), "{bad}");
        }
    }
}
