//! Unit tests of filter parsing and evaluation (RFC 7644 §3.4.2.2 examples) and of PATCH
//! path parsing (§3.5.2).

use super::*;
use crate::scim::schema::{GROUP, USER};
use serde_json::json;

fn user() -> Map<String, Value> {
    json!({
        "id": "2819c223",
        "userName": "Bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "active": true,
        "meta": {"created": "2011-08-01T18:29:49Z", "lastModified": "2011-08-01T18:29:49Z"}
    })
    .as_object()
    .cloned()
    .unwrap()
}

fn eval(filter: &str) -> bool {
    parse(filter, &USER).unwrap().matches(&user())
}

#[test]
fn rfc_7644_examples_evaluate() {
    assert!(eval("userName eq \"bjensen\""));
    assert!(!eval("userName eq \"bjensen2\""));
    assert!(eval("name.familyName co \"ens\""));
    assert!(eval("userName sw \"B\""));
    assert!(eval("userName ew \"sen\""));
    assert!(eval("emails co \"example.com\""));
    assert!(eval(
        "emails.type eq \"work\" and emails.value co \"@example.com\""
    ));
    assert!(eval(
        "emails[type eq \"work\" and value co \"@example.com\"]"
    ));
    assert!(!eval("emails[type eq \"other\"]"));
    assert!(eval("meta.lastModified gt \"2011-05-13T04:42:34Z\""));
    assert!(!eval("meta.lastModified lt \"2011-05-13T04:42:34Z\""));
    assert!(eval("meta.created ge \"2011-08-01T18:29:49Z\""));
    assert!(eval("displayName pr or userName pr"));
    assert!(eval("active eq true and not (userName eq \"x\")"));
    assert!(eval(
        "(userName eq \"x\" or userName eq \"BJENSEN\") and active ne false"
    ));
    assert!(eval(
        "urn:ietf:params:scim:schemas:core:2.0:User:userName eq \"bjensen\""
    ));
    assert!(eval("id eq \"2819c223\""));
    assert!(!eval("id eq \"2819C223\""), "id is case-exact");
    assert!(eval("externalId eq null"));
    assert!(eval("emails ne \"nobody@example.com\""));
    assert!(!eval("emails ne \"babs@jensen.org\""));
    assert!(eval("userName gt \"a\" and userName le \"bjensen\""));
}

#[test]
fn invalid_filters_are_refused() {
    for bad in [
        "",
        "userName",
        "userName eq",
        "userName xx \"a\"",
        "password eq \"x\"",
        "active gt true",
        "active eq \"yes\"",
        "userName eq 5",
        "name eq \"x\"",
        "meta.created gt \"yesterday\"",
        "emails[type eq \"work\"",
        "userName eq \"a\" )",
        "not userName eq \"a\"",
        "userName eq \"unterminated",
        "members[value eq \"x\"]",
    ] {
        let err = parse(bad, &USER).unwrap_err();
        assert_eq!(
            err.scim_type.map(|t| t.as_str()),
            Some("invalidFilter"),
            "{bad}"
        );
    }
    let deep = format!("{}userName pr{}", "(".repeat(100), ")".repeat(100));
    assert!(parse(&deep, &USER).is_err());
    assert!(parse("members[value eq \"x\"]", &GROUP).is_ok());
}

#[test]
fn patch_paths_parse() {
    let p = parse_path("emails[type eq \"work\"].value", &USER).unwrap();
    assert_eq!(p.attr.name, "emails");
    assert_eq!(p.sub.map(|s| s.name), Some("value"));
    assert!(
        p.filter
            .unwrap()
            .matches(json!({"type": "WORK"}).as_object().unwrap())
    );
    let p = parse_path("name.givenName", &USER).unwrap();
    assert_eq!(
        (p.attr.name, p.sub.map(|s| s.name)),
        ("name", Some("givenName"))
    );
    let p = parse_path("members[value eq \"abc\"]", &GROUP).unwrap();
    assert!(p.sub.is_none() && p.filter.is_some());
    let p = parse_path(
        "urn:ietf:params:scim:schemas:core:2.0:User:name.familyName",
        &USER,
    )
    .unwrap();
    assert_eq!(p.sub.map(|s| s.name), Some("familyName"));
    for bad in [
        "",
        "nope",
        "emails[type eq \"work\"].nope",
        "emails[type eq \"work\"] extra",
        "name[givenName eq \"x\"]",
        "urn:other:thing:userName",
    ] {
        let err = parse_path(bad, &USER).unwrap_err();
        assert_eq!(
            err.scim_type.map(|t| t.as_str()),
            Some("invalidPath"),
            "{bad}"
        );
    }
}
