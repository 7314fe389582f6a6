//! Discovery endpoints (RFC 7644 §4): `/ServiceProviderConfig`, `/ResourceTypes[/{id}]` and
//! `/Schemas[/{id}]`. They describe exactly what [`schema`](super::schema) defines. They are
//! read-only (other methods get a SCIM 405 through the router) and, like every SCIM endpoint
//! here, need the bearer token. A `filter` on them is answered 403, as RFC 7644 §4 advises, so
//! that a client never believes a filter it sent was applied.

use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::auth::Scim;
use super::error::ScimError;
use super::list::LIST_URN;
use super::routes::scim_json;
use super::schema::{ALL_SCHEMAS, RESOURCE_SCHEMAS, service_provider_config};

fn refuse_filter(query: Option<&str>) -> Result<(), ScimError> {
    let filtered = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .any(|(k, _)| k.eq_ignore_ascii_case("filter"));
    if filtered {
        return Err(ScimError::new(
            StatusCode::FORBIDDEN,
            None,
            "discovery endpoints do not filter",
        ));
    }
    Ok(())
}

fn list(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_URN],
        "totalResults": resources.len(),
        "startIndex": 1,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

pub async fn service_provider(scim: Scim, RawQuery(q): RawQuery) -> Result<Response, ScimError> {
    refuse_filter(q.as_deref())?;
    Ok(scim_json(
        StatusCode::OK,
        &service_provider_config(&scim.base),
    ))
}

pub async fn resource_types(scim: Scim, RawQuery(q): RawQuery) -> Result<Response, ScimError> {
    refuse_filter(q.as_deref())?;
    let all = RESOURCE_SCHEMAS
        .iter()
        .map(|s| s.resource_type_json(&scim.base))
        .collect();
    Ok(scim_json(StatusCode::OK, &list(all)))
}

pub async fn resource_type(scim: Scim, Path(id): Path<String>) -> Result<Response, ScimError> {
    RESOURCE_SCHEMAS
        .iter()
        .find(|s| s.resource_type == id)
        .map(|s| scim_json(StatusCode::OK, &s.resource_type_json(&scim.base)))
        .ok_or_else(|| ScimError::not_found("no such resource type"))
}

pub async fn schemas(scim: Scim, RawQuery(q): RawQuery) -> Result<Response, ScimError> {
    refuse_filter(q.as_deref())?;
    let all = ALL_SCHEMAS
        .iter()
        .map(|s| s.schema_json(&scim.base))
        .collect();
    Ok(scim_json(StatusCode::OK, &list(all)))
}

pub async fn schema(scim: Scim, Path(id): Path<String>) -> Result<Response, ScimError> {
    ALL_SCHEMAS
        .iter()
        .find(|s| s.urn.eq_ignore_ascii_case(&id))
        .map(|s| scim_json(StatusCode::OK, &s.schema_json(&scim.base)))
        .ok_or_else(|| ScimError::not_found("no such schema"))
}
