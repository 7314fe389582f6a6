//! SCIM resources as Beffroi reads and writes them: turning a client's JSON into checked,
//! typed data ([`user::UserData`], [`group::GroupData`]) and stored rows back into JSON, and
//! the `attributes` / `excludedAttributes` projection ([`projection`]).
//!
//! Input is normalised first ([`canonical_attributes`]): attribute names are matched
//! case-insensitively (RFC 7643 §2.1) and rewritten to their published spelling, attributes
//! qualified by the core schema URN are unwrapped, and attributes this server does not publish
//! (including extension schemas) are dropped rather than stored half-understood. Every kept
//! value is then type- and length-checked; nothing unchecked reaches the store.

pub mod group;
pub mod projection;
pub mod user;

use serde_json::{Map, Value};

use super::error::ScimError;
use super::schema::{AttrType, Attribute, ResourceSchema};

/// Longest text accepted in a name-like attribute.
pub const MAX_TEXT_CHARS: usize = 256;

/// Renames the keys of a complex value (or of each element of a multi-valued one) to their
/// published spelling, dropping unknown sub-attributes.
pub fn canonical_value(attr: &Attribute, value: &Value) -> Value {
    if attr.kind != AttrType::Complex {
        return value.clone();
    }
    let element = |v: &Value| match v {
        Value::Object(o) => {
            let mut out = Map::new();
            for (k, v) in o {
                if let Some(sub) = attr.sub(k) {
                    out.insert(sub.name.to_owned(), v.clone());
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    };
    match value {
        Value::Array(a) => Value::Array(a.iter().map(element).collect()),
        other => element(other),
    }
}

/// The attributes of a request body (or of a PATCH value without path), keyed by their
/// published names. `schemas`, unknown attributes and extension URNs are left out.
pub fn canonical_attributes(
    schema: &'static ResourceSchema,
    obj: &Map<String, Value>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in obj {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if key.eq_ignore_ascii_case(schema.urn) {
            // `{"urn:…:core:2.0:User": {"displayName": …}}` is the same as the bare attributes.
            if let Value::Object(inner) = value {
                out.extend(canonical_attributes(schema, inner));
            }
            continue;
        }
        let attr = schema
            .strip_urn(key)
            .filter(|k| !k.contains(':') && !k.contains('.'))
            .and_then(|k| schema.attribute(k));
        if let Some(attr) = attr {
            out.insert(attr.name.to_owned(), canonical_value(attr, value));
        }
    }
    out
}

/// Checks that a request body declares the resource's schema (RFC 7643 §3 `schemas`).
pub fn require_schema(body: &Map<String, Value>, schema: &ResourceSchema) -> Result<(), ScimError> {
    let declared = body
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("schemas"))
        .and_then(|(_, v)| v.as_array())
        .is_some_and(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .any(|s| s.eq_ignore_ascii_case(schema.urn))
        });
    if declared {
        Ok(())
    } else {
        Err(ScimError::invalid_syntax(format!(
            "\"schemas\" must list {}",
            schema.urn
        )))
    }
}

/// A string attribute value: a JSON string of at most `max` characters without control
/// characters (which have no place in a name or an address and could forge log lines).
pub fn text(name: &str, value: &Value, max: usize) -> Result<String, ScimError> {
    let s = value
        .as_str()
        .ok_or_else(|| ScimError::invalid_value(format!("{name} must be a string")))?;
    if s.chars().count() > max {
        return Err(ScimError::invalid_value(format!(
            "{name} is longer than {max} characters"
        )));
    }
    if s.chars().any(char::is_control) {
        return Err(ScimError::invalid_value(format!(
            "{name} contains control characters"
        )));
    }
    Ok(s.to_owned())
}

/// An optional string attribute: absent and `null` both mean unassigned (RFC 7644 §3.5.1).
pub fn optional_text(
    obj: &Map<String, Value>,
    key: &str,
    label: &str,
    max: usize,
) -> Result<Option<String>, ScimError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => text(label, v, max).map(Some),
    }
}

/// A boolean attribute. The strings "true"/"false" (any case) are accepted too: Microsoft
/// Entra ID sends `"False"` in PATCH values.
pub fn boolean(name: &str, value: &Value) -> Result<Option<bool>, ScimError> {
    match value {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        _ => Err(ScimError::invalid_value(format!(
            "{name} must be a boolean"
        ))),
    }
}

/// The elements of a multi-valued attribute (`null` or absent: none).
pub fn elements<'v>(name: &str, value: Option<&'v Value>) -> Result<&'v [Value], ScimError> {
    match value {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(ScimError::invalid_value(format!("{name} must be an array"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::USER;
    use serde_json::json;

    #[test]
    fn names_are_normalised_and_unknown_attributes_dropped() {
        let body = json!({
            "schemas": [USER.urn],
            "USERNAME": "a",
            "Emails": [{"Value": "a@x", "TYPE": "work", "bogus": 1}],
            "urn:ietf:params:scim:schemas:core:2.0:User": {"displayname": "A"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {}},
            "TITLE": "boss",
            "nickName": "b"
        });
        let out = canonical_attributes(&USER, body.as_object().unwrap());
        // `title` is published (the directory keeps it); `nickName` and the extension are not
        // User core attributes here.
        assert_eq!(
            Value::Object(out),
            json!({"userName": "a", "emails": [{"value": "a@x", "type": "work"}], "displayName": "A",
                   "title": "boss"})
        );
    }

    #[test]
    fn text_refuses_control_characters_and_overlong_values() {
        assert!(text("x", &json!("a\nb"), 10).is_err());
        assert!(text("x", &json!("abcdef"), 5).is_err());
        assert!(text("x", &json!(5), 5).is_err());
        assert_eq!(text("x", &json!("é"), 1).unwrap(), "é");
    }
}
