//! Queries (RFC 7644 §3.4.2 GET with parameters, §3.4.3 POST `/.search`): parameters are read
//! and checked, the filter is evaluated over the rendered resources, the result is paged
//! (`startIndex`, `count`, at most [`MAX_RESULTS`]) and projected, and a ListResponse returned.
//!
//! Sorting is not supported (ServiceProviderConfig says so): `sortBy` is ignored and results
//! come oldest first, an order that is stable between pages.

use serde_json::{Map, Value, json};

use super::error::ScimError;
use super::filter::{self, Filter};
use super::resource::projection::{Projection, split_list};
use super::schema::{MAX_RESULTS, ResourceSchema};

pub const LIST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const SEARCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// A query's parameters, from a URL or a SearchRequest.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub filter: Option<String>,
    /// 1-based.
    pub start_index: usize,
    pub count: usize,
    pub attributes: Vec<String>,
    pub excluded: Vec<String>,
}

/// startIndex below 1 is read as 1 (RFC 7644 §3.4.2.4).
fn start_index(n: i64) -> usize {
    usize::try_from(n.max(1)).unwrap_or(1)
}

/// A negative count is read as 0, a count above the maximum as the maximum (§3.4.2.4).
fn count(n: i64) -> usize {
    usize::try_from(n.max(0)).unwrap_or(0).min(MAX_RESULTS)
}

fn integer(name: &str, text: &str) -> Result<i64, ScimError> {
    text.trim()
        .parse()
        .map_err(|_| ScimError::invalid_value(format!("{name} must be an integer")))
}

impl ListQuery {
    /// From the URL query string (parameter names compared case-insensitively).
    pub fn from_query(raw: Option<&str>) -> Result<Self, ScimError> {
        let mut q = ListQuery {
            start_index: 1,
            count: MAX_RESULTS,
            ..Default::default()
        };
        for (key, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            match key.to_ascii_lowercase().as_str() {
                "filter" => q.filter = Some(value.into_owned()),
                "startindex" => q.start_index = start_index(integer("startIndex", &value)?),
                "count" => q.count = count(integer("count", &value)?),
                "attributes" => q.attributes = split_list(Some(&value)),
                "excludedattributes" => q.excluded = split_list(Some(&value)),
                _ => {}
            }
        }
        Ok(q)
    }

    /// From a SearchRequest body (RFC 7644 §3.4.3).
    pub fn from_search(body: &Map<String, Value>) -> Result<Self, ScimError> {
        let get = |name: &str| {
            body.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
                .filter(|v| !v.is_null())
        };
        let declared = get("schemas")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|s| s.as_str() == Some(SEARCH_URN)));
        if !declared {
            return Err(ScimError::invalid_syntax(format!(
                "\"schemas\" must list {SEARCH_URN}"
            )));
        }
        let names = |name: &str| -> Result<Vec<String>, ScimError> {
            match get(name) {
                None => Ok(Vec::new()),
                Some(Value::String(s)) => Ok(split_list(Some(s))),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| {
                        v.as_str().map(str::to_owned).ok_or_else(|| {
                            ScimError::invalid_value(format!("{name} must list strings"))
                        })
                    })
                    .collect(),
                Some(_) => Err(ScimError::invalid_value(format!(
                    "{name} must be a list of attribute names"
                ))),
            }
        };
        let number = |name: &str, default: i64| -> Result<i64, ScimError> {
            match get(name) {
                None => Ok(default),
                Some(v) => v
                    .as_i64()
                    .ok_or_else(|| ScimError::invalid_value(format!("{name} must be an integer"))),
            }
        };
        let filter = match get("filter") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(ScimError::invalid_filter("filter must be a string")),
        };
        Ok(ListQuery {
            filter,
            start_index: start_index(number("startIndex", 1)?),
            count: count(number("count", i64::try_from(MAX_RESULTS).unwrap_or(500))?),
            attributes: names("attributes")?,
            excluded: names("excludedAttributes")?,
        })
    }
}

/// Resources of one type, rendered, with their schema.
pub struct Candidates<'r> {
    pub schema: &'static ResourceSchema,
    pub resources: &'r [Map<String, Value>],
}

/// How a filter applies to one resource type.
enum Selection {
    All,
    Matching(Filter),
    /// The filter names attributes this type lacks: none of its resources match.
    Nothing,
}

/// Filters, pages and projects resources of one or more types into a ListResponse. For a
/// search across types (POST `/.search`), a filter naming an attribute a type lacks simply
/// matches nothing of that type; it is refused only if it fits no type at all.
pub fn respond(query: &ListQuery, candidates: &[Candidates<'_>]) -> Result<Value, ScimError> {
    let mut selections = Vec::with_capacity(candidates.len());
    let mut refusal = None;
    for c in candidates {
        selections.push(match query.filter.as_deref() {
            None => Selection::All,
            Some(text) => match filter::parse(text, c.schema) {
                Ok(f) => Selection::Matching(f),
                Err(e) => {
                    refusal.get_or_insert(e);
                    Selection::Nothing
                }
            },
        });
    }
    if let Some(e) = refusal {
        if selections.iter().all(|s| matches!(s, Selection::Nothing)) {
            return Err(e);
        }
    }
    let mut matching: Vec<(&'static ResourceSchema, &Map<String, Value>)> = Vec::new();
    for (c, selection) in candidates.iter().zip(&selections) {
        for r in c.resources {
            let keep = match selection {
                Selection::All => true,
                Selection::Matching(f) => f.matches(r),
                Selection::Nothing => false,
            };
            if keep {
                matching.push((c.schema, r));
            }
        }
    }
    let total = matching.len();
    let page: Vec<Value> = matching
        .into_iter()
        .skip(query.start_index - 1)
        .take(query.count)
        .map(|(schema, r)| {
            let projection = Projection::new(&query.attributes, &query.excluded, schema);
            Value::Object(projection.apply(r.clone()))
        })
        .collect();
    Ok(json!({
        "schemas": [LIST_URN],
        "totalResults": total,
        "startIndex": query.start_index,
        "itemsPerPage": page.len(),
        "Resources": page,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::{GROUP, USER};

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn paging_counts_and_bounds() {
        let q = ListQuery::from_query(Some("startIndex=0&count=-3")).unwrap();
        assert_eq!((q.start_index, q.count), (1, 0));
        let q = ListQuery::from_query(Some("count=100000&filter=userName%20pr")).unwrap();
        assert_eq!(q.count, MAX_RESULTS);
        assert_eq!(q.filter.as_deref(), Some("userName pr"));
        assert!(ListQuery::from_query(Some("count=ten")).is_err());
    }

    #[test]
    fn a_search_across_types_applies_the_filter_where_it_fits() {
        let users = [
            obj(json!({"id": "1", "userName": "a"})),
            obj(json!({"id": "2", "userName": "b"})),
        ];
        let groups = [obj(json!({"id": "3", "displayName": "G"}))];
        let both = [
            Candidates {
                schema: &USER,
                resources: &users,
            },
            Candidates {
                schema: &GROUP,
                resources: &groups,
            },
        ];
        let q = |f: &str| ListQuery {
            filter: Some(f.into()),
            start_index: 1,
            count: 10,
            ..Default::default()
        };
        let out = respond(&q("userName eq \"b\""), &both).unwrap();
        assert_eq!(out["totalResults"], 1);
        assert_eq!(out["Resources"][0]["id"], "2");
        let out = respond(&q("id pr"), &both).unwrap();
        assert_eq!(out["totalResults"], 3);
        assert!(respond(&q("nothing eq \"x\""), &both).is_err());
        let paged = ListQuery {
            start_index: 2,
            count: 1,
            ..Default::default()
        };
        let out = respond(&paged, &both).unwrap();
        assert_eq!(
            (out["totalResults"].as_u64(), out["itemsPerPage"].as_u64()),
            (Some(3), Some(1))
        );
        assert_eq!(out["Resources"][0]["id"], "2");
    }
}
