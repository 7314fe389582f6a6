//! PATCH (RFC 7644 §3.5.2): a PatchOp request is parsed and checked whole, then applied in
//! order to the JSON of the resource's writable attributes. The result is checked again as if
//! it had been sent by PUT, so a PATCH can never store what a PUT could not; and since nothing
//! is written before every operation has applied, a failing operation changes nothing.
//!
//! Paths may name sub-attributes (`name.givenName`) and select values of multi-valued
//! attributes with a filter (`emails[type eq "work"].value`, `members[value eq "…"]`). An
//! operation on an attribute the schema does not publish is skipped, as such an attribute is in
//! a POST body; a malformed path is refused (`invalidPath`). Read-only
//! attributes cannot be targeted (`mutability`); a value filter that matches nothing fails with
//! `noTarget`, except an `add` whose filter is plain equalities, which creates the value (what
//! directories such as Entra ID send for an address the agent does not have yet).

use serde_json::{Map, Value};

use super::error::ScimError;
use super::filter::{PatchPath, parse_path};
use super::resource::{canonical_attributes, canonical_value};
use super::schema::{AttrType, Attribute, Mutability, ResourceSchema};

pub const PATCH_OP_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// More operations than this in one request is refused (`tooMany` is for filters, so this is
/// `invalidValue`); the body limit bounds it too.
const MAX_OPERATIONS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Add,
    Remove,
    Replace,
}

#[derive(Debug, Clone)]
pub struct Operation {
    pub kind: Kind,
    pub path: Option<PatchPath>,
    pub value: Option<Value>,
}

fn member<'v>(obj: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Whether a well-formed path names an attribute outside the published schema: qualified by
/// another schema's URN, or a top-level name `schema` lacks (RFC 7644 §3.10 ATTRNAME).
/// Malformed paths are not "unpublished": [`parse_path`] refuses them.
fn unpublished(path: &str, schema: &'static ResourceSchema) -> bool {
    let Some(rest) = schema.strip_urn(path.trim()) else {
        return true;
    };
    let head = rest.split(['[', '.']).next().unwrap_or("");
    let well_formed = head.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && head
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    well_formed && schema.attribute(head).is_none()
}

/// Parses and checks a PatchOp body (RFC 7644 §3.5.2) for `schema`.
pub fn parse_request(
    body: &Map<String, Value>,
    schema: &'static ResourceSchema,
) -> Result<Vec<Operation>, ScimError> {
    let declared = member(body, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .any(|s| s.eq_ignore_ascii_case(PATCH_OP_URN))
        });
    if !declared {
        return Err(ScimError::invalid_syntax(format!(
            "\"schemas\" must list {PATCH_OP_URN}"
        )));
    }
    let Some(Value::Array(list)) = member(body, "Operations") else {
        return Err(ScimError::invalid_syntax("\"Operations\" must be an array"));
    };
    if list.is_empty() || list.len() > MAX_OPERATIONS {
        return Err(ScimError::invalid_value(format!(
            "between 1 and {MAX_OPERATIONS} operations"
        )));
    }
    let mut ops = Vec::with_capacity(list.len());
    for item in list {
        let Value::Object(op) = item else {
            return Err(ScimError::invalid_syntax(
                "each operation must be an object",
            ));
        };
        // Operation names are case-insensitive in practice (Entra ID sends "Replace").
        let kind = match member(op, "op")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
        {
            Some(k) if k == "add" => Kind::Add,
            Some(k) if k == "remove" => Kind::Remove,
            Some(k) if k == "replace" => Kind::Replace,
            _ => {
                return Err(ScimError::invalid_syntax(
                    "\"op\" must be add, remove or replace",
                ));
            }
        };
        let path = match member(op, "path") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) if p.trim().is_empty() => None,
            // Like an unknown attribute in a POST body, an operation on an attribute this
            // server does not publish is ignored, so that a directory's default mapping
            // (Entra ID sends title, phoneNumbers, the enterprise extension…) still works.
            Some(Value::String(p)) if unpublished(p, schema) => continue,
            Some(Value::String(p)) => Some(parse_path(p, schema)?),
            Some(_) => return Err(ScimError::invalid_path("\"path\" must be a string")),
        };
        let value = member(op, "value").cloned();
        match (kind, &path, &value) {
            (Kind::Remove, None, _) => {
                return Err(ScimError::no_target("remove needs a path"));
            }
            (Kind::Add | Kind::Replace, _, None) => {
                return Err(ScimError::invalid_value(format!("{kind:?} needs a value")));
            }
            (Kind::Add | Kind::Replace, None, Some(v)) if !v.is_object() => {
                return Err(ScimError::invalid_value(
                    "without a path, the value must be an object of attributes",
                ));
            }
            _ => {}
        }
        if let Some(p) = &path {
            let read_only = p.attr.mutability == Mutability::ReadOnly
                || p.sub.is_some_and(|s| s.mutability == Mutability::ReadOnly);
            let immutable = p.sub.is_some_and(|s| s.mutability == Mutability::Immutable);
            if read_only || (immutable && kind != Kind::Add) {
                return Err(ScimError::mutability(format!(
                    "{} cannot be changed",
                    p.attr.name
                )));
            }
        }
        ops.push(Operation { kind, path, value });
    }
    Ok(ops)
}

/// Applies `ops` in order to `resource` (the writable attributes, canonical names).
pub fn apply(
    resource: &mut Map<String, Value>,
    ops: &[Operation],
    schema: &'static ResourceSchema,
) -> Result<(), ScimError> {
    for op in ops {
        match &op.path {
            None => {
                let Some(Value::Object(obj)) = &op.value else {
                    return Err(ScimError::invalid_value("value must be an object"));
                };
                for (name, value) in canonical_attributes(schema, obj) {
                    let Some(attr) = schema.attribute(&name) else {
                        continue;
                    };
                    // Read-only attributes in a whole-resource value (id, meta) are ignored,
                    // as in a PUT (RFC 7644 §3.5.1).
                    if attr.mutability == Mutability::ReadOnly {
                        continue;
                    }
                    set_attribute(resource, attr, value, op.kind);
                }
            }
            Some(path) => match op.kind {
                Kind::Add | Kind::Replace => {
                    let value = op.value.clone().unwrap_or(Value::Null);
                    set_at(resource, path, value, op.kind)?;
                }
                Kind::Remove => remove_at(resource, path, op.value.as_ref()),
            },
        }
        resource.retain(|_, v| !is_empty(v));
    }
    Ok(())
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn as_list(value: Value) -> Vec<Value> {
    match value {
        Value::Array(a) => a,
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// Two values of a multi-valued complex attribute are the same value when their `value`
/// sub-attributes are equal (case-insensitively unless case-exact); simple values when equal.
fn same_value(attr: &Attribute, a: &Value, b: &Value) -> bool {
    match (attr.value_sub(), a.get("value"), b.get("value")) {
        (Some(sub), Some(Value::String(x)), Some(Value::String(y))) => {
            if sub.case_exact {
                x == y
            } else {
                x.to_lowercase() == y.to_lowercase()
            }
        }
        _ => a == b,
    }
}

fn primary_of(v: &Value) -> bool {
    v.get("primary").and_then(Value::as_bool) == Some(true)
}

/// RFC 7644 §3.5.2: setting a value's `primary` to true makes every other value non-primary.
fn settle_primary(list: &mut [Value], winner: Option<usize>) {
    let Some(winner) = winner else {
        return;
    };
    for (i, v) in list.iter_mut().enumerate() {
        if i != winner && primary_of(v) {
            if let Some(o) = v.as_object_mut() {
                o.insert("primary".into(), Value::Bool(false));
            }
        }
    }
}

/// Takes a multi-valued attribute out of the resource (to be put back with [`put`]).
fn take_list(resource: &mut Map<String, Value>, attr: &Attribute) -> Vec<Value> {
    match resource.remove(attr.name) {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    }
}

/// Takes a complex attribute out of the resource (to be put back with [`put`]).
fn take_object(resource: &mut Map<String, Value>, attr: &Attribute) -> Map<String, Value> {
    match resource.remove(attr.name) {
        Some(Value::Object(o)) => o,
        _ => Map::new(),
    }
}

fn put(resource: &mut Map<String, Value>, attr: &Attribute, value: Value) {
    resource.insert(attr.name.to_owned(), value);
}

fn merge(into: &mut Map<String, Value>, from: Value) {
    if let Value::Object(from) = from {
        for (k, v) in from {
            if v.is_null() {
                into.remove(&k);
            } else {
                into.insert(k, v);
            }
        }
    }
}

/// add/replace of a whole attribute (RFC 7644 §3.5.2.1 and §3.5.2.3).
fn set_attribute(resource: &mut Map<String, Value>, attr: &Attribute, value: Value, kind: Kind) {
    if value.is_null() {
        if kind == Kind::Replace {
            resource.remove(attr.name);
        }
        return;
    }
    let value = canonical_value(attr, &value);
    if attr.multi_valued {
        let new = as_list(value);
        let mut list = take_list(resource, attr);
        if kind == Kind::Replace {
            list.clear();
        }
        let mut winner = None;
        for v in new {
            let at = match list.iter().position(|old| same_value(attr, old, &v)) {
                Some(i) => {
                    list[i] = v;
                    i
                }
                None => {
                    list.push(v);
                    list.len() - 1
                }
            };
            if primary_of(&list[at]) {
                winner = Some(at);
            }
        }
        settle_primary(&mut list, winner);
        put(resource, attr, Value::Array(list));
    } else if attr.kind == AttrType::Complex {
        // Sub-attributes not given are left as they are (RFC 7644 §3.5.2.3).
        let mut obj = take_object(resource, attr);
        merge(&mut obj, value);
        put(resource, attr, Value::Object(obj));
    } else {
        resource.insert(attr.name.to_owned(), value);
    }
}

fn set_at(
    resource: &mut Map<String, Value>,
    path: &PatchPath,
    value: Value,
    kind: Kind,
) -> Result<(), ScimError> {
    let attr = path.attr;
    match (&path.filter, path.sub) {
        (None, None) => set_attribute(resource, attr, value, kind),
        (None, Some(sub)) if !attr.multi_valued => {
            let mut obj = take_object(resource, attr);
            if value.is_null() {
                obj.remove(sub.name);
            } else {
                obj.insert(sub.name.to_owned(), value);
            }
            put(resource, attr, Value::Object(obj));
        }
        (None, Some(sub)) => {
            // `emails.type`: every value of the attribute.
            let mut list = take_list(resource, attr);
            if list.is_empty() {
                return Err(ScimError::no_target(format!("{} has no values", attr.name)));
            }
            for v in list.iter_mut().filter_map(Value::as_object_mut) {
                v.insert(sub.name.to_owned(), value.clone());
            }
            put(resource, attr, Value::Array(list));
        }
        (Some(filter), sub) => {
            let element = match sub {
                Some(_) => value.clone(),
                None => canonical_value(attr, &value),
            };
            if sub.is_none() && !element.is_object() {
                return Err(ScimError::invalid_value(format!(
                    "a value of {} must be an object",
                    attr.name
                )));
            }
            let mut list = take_list(resource, attr);
            let mut matched = Vec::new();
            for (i, v) in list.iter_mut().enumerate() {
                let Some(obj) = v.as_object_mut() else {
                    continue;
                };
                if !filter.matches(obj) {
                    continue;
                }
                matched.push(i);
                match sub {
                    Some(s) => {
                        obj.insert(s.name.to_owned(), element.clone());
                    }
                    None if kind == Kind::Replace => *v = element.clone(),
                    None => merge(obj, element.clone()),
                }
            }
            if matched.is_empty() {
                let Some(created) = (kind == Kind::Add).then(|| filter.equalities()).flatten()
                else {
                    // Put the values back untouched; the whole request fails anyway.
                    put(resource, attr, Value::Array(list));
                    return Err(ScimError::no_target(format!(
                        "no value of {} matches the filter",
                        attr.name
                    )));
                };
                let mut obj = Map::new();
                for (a, v) in created {
                    obj.insert(a.name.to_owned(), v);
                }
                match sub {
                    Some(s) => {
                        obj.insert(s.name.to_owned(), element);
                    }
                    None => merge(&mut obj, element),
                }
                list.push(Value::Object(obj));
                matched.push(list.len() - 1);
            }
            let winner = matched
                .iter()
                .rev()
                .copied()
                .find(|i| primary_of(&list[*i]));
            settle_primary(&mut list, winner);
            put(resource, attr, Value::Array(list));
        }
    }
    Ok(())
}

/// remove (RFC 7644 §3.5.2.2). Removing what is not there is not an error: the result is the
/// one asked for.
fn remove_at(resource: &mut Map<String, Value>, path: &PatchPath, value: Option<&Value>) {
    let attr = path.attr;
    match (&path.filter, path.sub) {
        (None, None) => match value.filter(|v| !v.is_null() && attr.multi_valued) {
            // `{"op":"remove","path":"members","value":[{"value":"id"}]}` removes those
            // values only (sent by Entra ID).
            Some(v) => {
                let gone: Vec<Value> = as_list(canonical_value(attr, v));
                if let Some(Value::Array(list)) = resource.get_mut(attr.name) {
                    list.retain(|old| !gone.iter().any(|g| same_value(attr, old, g)));
                }
            }
            None => {
                resource.remove(attr.name);
            }
        },
        (None, Some(sub)) => match resource.get_mut(attr.name) {
            Some(Value::Object(o)) => {
                o.remove(sub.name);
            }
            Some(Value::Array(list)) => {
                for v in list.iter_mut().filter_map(Value::as_object_mut) {
                    v.remove(sub.name);
                }
                list.retain(|v| !is_empty(v));
            }
            _ => {}
        },
        (Some(filter), sub) => {
            if let Some(Value::Array(list)) = resource.get_mut(attr.name) {
                match sub {
                    None => list.retain(|v| !v.as_object().is_some_and(|o| filter.matches(o))),
                    Some(s) => {
                        for v in list.iter_mut().filter_map(Value::as_object_mut) {
                            if filter.matches(v) {
                                v.remove(s.name);
                            }
                        }
                        list.retain(|v| !is_empty(v));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "patch_tests.rs"]
mod tests;
