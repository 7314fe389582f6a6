//! `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9): which attributes of a
//! resource a response carries. `id` (returned "always") and `schemas` are always there.
//! Names this server does not publish are ignored, as a filter on them would find nothing.

use serde_json::{Map, Value};

use crate::scim::schema::{Attribute, ResourceSchema, Returned};

type Selector = (&'static Attribute, Option<&'static Attribute>);

#[derive(Debug, Clone, Default)]
pub struct Projection {
    include: Option<Vec<Selector>>,
    exclude: Vec<Selector>,
}

fn selectors(list: &[String], schema: &'static ResourceSchema) -> Vec<Selector> {
    list.iter()
        .filter_map(|name| schema.resolve(name.trim()))
        .collect()
}

/// Splits a comma-separated parameter (`attributes=userName,emails.value`).
pub fn split_list(text: Option<&str>) -> Vec<String> {
    text.map(|t| {
        t.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

impl Projection {
    pub fn new(
        attributes: &[String],
        excluded: &[String],
        schema: &'static ResourceSchema,
    ) -> Self {
        Self {
            include: (!attributes.is_empty()).then(|| selectors(attributes, schema)),
            exclude: selectors(excluded, schema),
        }
    }

    pub fn apply(&self, mut resource: Map<String, Value>) -> Map<String, Value> {
        if let Some(include) = &self.include {
            let mut out = Map::new();
            for (key, value) in resource {
                if key == "schemas" {
                    out.insert(key, value);
                    continue;
                }
                let wanted: Vec<&Selector> =
                    include.iter().filter(|(a, _)| a.name == key).collect();
                let always = key == "id";
                if always || wanted.iter().any(|(_, sub)| sub.is_none()) {
                    out.insert(key, value);
                } else if !wanted.is_empty() {
                    let subs: Vec<&str> = wanted
                        .iter()
                        .filter_map(|(_, s)| s.map(|s| s.name))
                        .collect();
                    let kept = keep_subs(value, &subs);
                    if !is_empty(&kept) {
                        out.insert(key, kept);
                    }
                }
            }
            resource = out;
        }
        for (attr, sub) in &self.exclude {
            if attr.returned == Returned::Always {
                continue;
            }
            match sub {
                None => {
                    resource.remove(attr.name);
                }
                Some(sub) => {
                    if let Some(v) = resource.get_mut(attr.name) {
                        drop_sub(v, sub.name);
                        if is_empty(v) {
                            resource.remove(attr.name);
                        }
                    }
                }
            }
        }
        resource
    }
}

fn keep_subs(value: Value, subs: &[&str]) -> Value {
    let keep = |v: Value| match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .filter(|(k, _)| subs.contains(&k.as_str()))
                .collect(),
        ),
        other => other,
    };
    match value {
        Value::Array(a) => Value::Array(a.into_iter().map(keep).filter(|v| !is_empty(v)).collect()),
        other => keep(other),
    }
}

fn drop_sub(value: &mut Value, sub: &str) {
    match value {
        Value::Object(o) => {
            o.remove(sub);
        }
        Value::Array(a) => {
            for v in a.iter_mut() {
                drop_sub(v, sub);
            }
            a.retain(|v| !is_empty(v));
        }
        _ => {}
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Object(o) => o.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Null => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::USER;
    use serde_json::json;

    fn user() -> Map<String, Value> {
        json!({
            "schemas": ["s"], "id": "1", "userName": "u", "displayName": "U",
            "name": {"givenName": "G", "familyName": "F"},
            "emails": [{"value": "a@x", "type": "work"}],
            "meta": {"resourceType": "User", "created": "c"}
        })
        .as_object()
        .cloned()
        .unwrap()
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn attributes_keep_only_what_is_asked_plus_id() {
        let p = Projection::new(
            &names(&["userName", "name.givenName", "emails.value"]),
            &[],
            &USER,
        );
        assert_eq!(
            Value::Object(p.apply(user())),
            json!({"schemas": ["s"], "id": "1", "userName": "u", "name": {"givenName": "G"},
                   "emails": [{"value": "a@x"}]})
        );
    }

    #[test]
    fn excluded_attributes_drop_all_but_id() {
        let p = Projection::new(
            &[],
            &names(&["displayName", "id", "emails.type", "meta"]),
            &USER,
        );
        let out = p.apply(user());
        assert!(out.contains_key("id"));
        assert!(!out.contains_key("displayName") && !out.contains_key("meta"));
        assert_eq!(out["emails"], json!([{"value": "a@x"}]));
    }
}
