//! Unit tests of PATCH parsing and application (RFC 7644 §3.5.2 examples and the shapes
//! directories really send).

use serde_json::{Value, json};

use super::*;
use crate::scim::schema::{GROUP, USER};

fn run(
    schema: &'static ResourceSchema,
    start: Value,
    ops: Value,
) -> Result<Value, crate::scim::error::ScimError> {
    let body = json!({"schemas": [PATCH_OP_URN], "Operations": ops});
    let ops = parse_request(body.as_object().unwrap(), schema)?;
    let mut resource = start.as_object().unwrap().clone();
    apply(&mut resource, &ops, schema)?;
    Ok(Value::Object(resource))
}

fn user(start: Value, ops: Value) -> Value {
    run(&USER, start, ops).unwrap()
}

fn scim_type(e: crate::scim::error::ScimError) -> &'static str {
    e.scim_type.map(|t| t.as_str()).unwrap_or("-")
}

#[test]
fn add_and_replace_simple_and_complex_attributes() {
    let out = user(
        json!({"userName": "a", "name": {"givenName": "A"}}),
        json!([
            {"op": "add", "path": "displayName", "value": "Ann"},
            {"op": "Replace", "path": "name.familyName", "value": "B"},
            {"op": "add", "value": {"NickName": "x", "active": false, "name": {"formatted": "A B"}}}
        ]),
    );
    assert_eq!(
        out,
        json!({"userName": "a", "displayName": "Ann", "active": false,
               "name": {"givenName": "A", "familyName": "B", "formatted": "A B"}})
    );
}

#[test]
fn value_filters_select_change_and_create_values() {
    let start = json!({"userName": "a", "emails": [
        {"value": "a@home", "type": "home", "primary": true}
    ]});
    // Replace through a filter that matches nothing: noTarget (RFC 7644 §3.5.2.3).
    let err = run(
        &USER,
        start.clone(),
        json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "a@work"}]),
    )
    .unwrap_err();
    assert_eq!(scim_type(err), "noTarget");
    // Add through the same filter creates the value.
    let out = user(
        start.clone(),
        json!([{"op": "add", "path": "emails[type eq \"work\"].value", "value": "a@work"}]),
    );
    assert_eq!(
        out["emails"],
        json!([{"value": "a@home", "type": "home", "primary": true},
               {"type": "work", "value": "a@work"}])
    );
    // Making the new one primary demotes the other.
    let out = user(
        out,
        json!([{"op": "replace", "path": "emails[type eq \"work\"].primary", "value": true}]),
    );
    assert_eq!(out["emails"][0]["primary"], json!(false));
    assert_eq!(out["emails"][1]["primary"], json!(true));
    let out = user(
        out,
        json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]),
    );
    assert_eq!(
        out["emails"],
        json!([{"type": "work", "value": "a@work", "primary": true}])
    );
}

#[test]
fn members_are_added_and_removed_by_value() {
    let start = json!({"displayName": "G", "members": [{"value": "u1"}, {"value": "u2"}]});
    let out = run(
        &GROUP,
        start.clone(),
        json!([
            {"op": "add", "path": "members", "value": [{"value": "u3"}, {"value": "u1"}]},
            {"op": "remove", "path": "members[value eq \"u2\"]"}
        ]),
    )
    .unwrap();
    assert_eq!(out["members"], json!([{"value": "u1"}, {"value": "u3"}]));
    // Entra ID's form: remove with a value list.
    let out = run(
        &GROUP,
        start,
        json!([{"op": "Remove", "path": "members", "value": [{"value": "u1"}]}]),
    )
    .unwrap();
    assert_eq!(out["members"], json!([{"value": "u2"}]));
    let out = run(&GROUP, out, json!([{"op": "remove", "path": "members"}])).unwrap();
    assert!(out.get("members").is_none());
}

#[test]
fn removing_empties_and_entra_strings_are_understood() {
    let out = user(
        json!({"userName": "a", "name": {"givenName": "A"}, "active": true}),
        json!([
            {"op": "remove", "path": "name.givenName"},
            {"op": "Replace", "path": "active", "value": "False"}
        ]),
    );
    assert_eq!(out, json!({"userName": "a", "active": "False"}));
    // The string is checked (and understood) when the result is parsed as a User.
    let parsed = crate::scim::resource::user::UserData::parse(out.as_object().unwrap()).unwrap();
    assert!(parsed.disabled());
}

#[test]
fn operations_on_unpublished_attributes_are_skipped() {
    let out = user(
        json!({"userName": "a"}),
        json!([
            {"op": "add", "path": "nickName", "value": "Chef de bureau"},
            {"op": "replace", "path": "phoneNumbers[type eq \"work\"].value", "value": "01"},
            {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "1"},
            {"op": "replace", "path": "displayName", "value": "A"}
        ]),
    );
    assert_eq!(out, json!({"userName": "a", "displayName": "A"}));
}

#[test]
fn bad_requests_are_refused_before_anything_applies() {
    let start = json!({"userName": "a"});
    for (ops, expected) in [
        (json!([{"op": "remove"}]), "noTarget"),
        (json!([{"op": "move", "path": "userName"}]), "invalidSyntax"),
        (
            json!([{"op": "add", "path": "emails[type eq]", "value": 1}]),
            "invalidPath",
        ),
        (
            json!([{"op": "add", "path": "name.nope", "value": 1}]),
            "invalidPath",
        ),
        (
            json!([{"op": "replace", "path": "id", "value": "x"}]),
            "mutability",
        ),
        (
            json!([{"op": "replace", "path": "meta.created", "value": "x"}]),
            "mutability",
        ),
        (
            json!([{"op": "add", "path": "groups", "value": [{"value": "g"}]}]),
            "mutability",
        ),
        (
            json!([{"op": "add", "path": "displayName"}]),
            "invalidValue",
        ),
        (json!([{"op": "add", "value": "x"}]), "invalidValue"),
        (json!([]), "invalidValue"),
    ] {
        let err = run(&USER, start.clone(), ops.clone()).unwrap_err();
        assert_eq!(scim_type(err), expected, "{ops}");
    }
    let body = json!({"schemas": ["urn:wrong"], "Operations": [{"op": "remove", "path": "x"}]});
    let err = parse_request(body.as_object().unwrap(), &USER).unwrap_err();
    assert_eq!(scim_type(err), "invalidSyntax");
}
