//! Everything a SCIM client (the agency's directory, or whoever holds its token) sends to
//! `/scim/v2`: User and Group bodies (POST, PUT), PatchOp bodies, SearchRequest bodies, and the
//! `filter` / paging / projection query parameters. Each is parsed as the handlers parse it.
//!
//! Invariants, besides "no panic": a checked User or Group survives the trip through the
//! representation the server returns (render → writable → parse gives it back), which is what a
//! PATCH starts from; and a PATCH that applies always leaves a resource that is re-checked.

#![no_main]

use beffroi::scim::filter;
use beffroi::scim::list::ListQuery;
use beffroi::scim::patch;
use beffroi::scim::resource::group::{self, GroupData};
use beffroi::scim::resource::projection::split_list;
use beffroi::scim::resource::user::{self, UserData};
use beffroi::scim::resource::{canonical_attributes, require_schema};
use beffroi::scim::schema::{GROUP, MAX_RESULTS, RESOURCE_SCHEMAS, USER};
use beffroi::scim::store::{GroupRecord, MemberRef, UserRecord};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

const BASE: &str = "https://intranet.example/scim/v2";

fn user_record(data: &UserData) -> UserRecord {
    UserRecord {
        id: "2819c223-7f76-453a-919d-413861904646".into(),
        account_id: 7,
        user_name: data.user_name.clone(),
        external_id: data.external_id.clone(),
        attributes: data.attributes.clone(),
        created_at: 1_764_079_200,
        updated_at: 1_764_079_200,
        version: 1,
        disabled: false,
        groups: Vec::new(),
        placement: Default::default(),
    }
}

fn group_record(data: &GroupData) -> GroupRecord {
    GroupRecord {
        id: "e9e30dba-f08f-4109-8486-d5c6a331660a".into(),
        group_id: 3,
        display_name: data.display_name.clone(),
        external_id: data.external_id.clone(),
        created_at: 1_764_079_200,
        updated_at: 1_764_079_200,
        version: 1,
        members: data
            .members
            .iter()
            .map(|id| MemberRef {
                id: id.clone(),
                account_id: 1,
            })
            .collect(),
    }
}

/// A resource to PATCH when the body itself is not a valid one.
fn sample_user() -> UserData {
    let start =
        json!({"userName": "bjensen", "emails": [{"value": "b@example.org", "type": "work"}]});
    let Value::Object(o) = start else {
        unreachable!()
    };
    UserData::parse(&o).unwrap()
}

fn users(body: &Map<String, Value>) {
    let parsed = require_schema(body, &USER)
        .and_then(|()| UserData::parse(&canonical_attributes(&USER, body)));
    let current = match parsed {
        Ok(data) => {
            // The representation a client reads back must give the same User again.
            let back = UserData::parse(&user::writable(&user::render(&user_record(&data), BASE)))
                .unwrap_or_else(|e| panic!("{data:?} does not read back: {e:?}"));
            assert_eq!(back, data);
            data
        }
        Err(_) => sample_user(),
    };
    if let Ok(ops) = patch::parse_request(body, &USER) {
        let mut resource = user::writable(&user::render(&user_record(&current), BASE));
        if patch::apply(&mut resource, &ops, &USER).is_ok() {
            let _ = UserData::parse(&resource);
        }
    }
}

fn groups(body: &Map<String, Value>) {
    let parsed = require_schema(body, &GROUP)
        .and_then(|()| GroupData::parse(&canonical_attributes(&GROUP, body)));
    let current = match parsed {
        Ok(data) => {
            let back =
                GroupData::parse(&group::writable(&group::render(&group_record(&data), BASE)))
                    .unwrap_or_else(|e| panic!("{data:?} does not read back: {e:?}"));
            assert_eq!(back, data);
            data
        }
        Err(_) => GroupData {
            display_name: "Agents".into(),
            external_id: None,
            members: vec!["2819c223-7f76-453a-919d-413861904646".into()],
        },
    };
    if let Ok(ops) = patch::parse_request(body, &GROUP) {
        let mut resource = group::writable(&group::render(&group_record(&current), BASE));
        if patch::apply(&mut resource, &ops, &GROUP).is_ok() {
            let _ = GroupData::parse(&resource);
        }
    }
}

/// A filter, checked against each resource type and evaluated on a sample of each.
fn filters(text: &str) {
    let sample_user = user::render(&user_record(&sample_user()), BASE);
    for schema in RESOURCE_SCHEMAS {
        if let Ok(f) = filter::parse(text, schema) {
            let _ = f.matches(&sample_user);
            let _ = f.equalities();
        }
        let _ = filter::parse_path(text, schema);
    }
}

fuzz_target!(|data: &[u8]| {
    match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(body)) => {
            users(&body);
            groups(&body);
            if let Ok(query) = ListQuery::from_search(&body) {
                assert!(query.start_index >= 1 && query.count <= MAX_RESULTS);
                if let Some(f) = &query.filter {
                    filters(f);
                }
            }
        }
        Ok(_) => {}
        Err(_) => {
            // Not JSON: read it as a query string and as a bare filter or PATCH path.
            let Ok(text) = std::str::from_utf8(data) else {
                return;
            };
            if let Ok(query) = ListQuery::from_query(Some(text)) {
                assert!(query.start_index >= 1 && query.count <= MAX_RESULTS);
                if let Some(f) = &query.filter {
                    filters(f);
                }
            }
            let _ = split_list(Some(text));
            filters(text);
        }
    }
});
