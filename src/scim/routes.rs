//! The SCIM HTTP endpoints under `/scim/v2`: the route table entries, request bodies, and
//! responses. Handlers authenticate first (the [`Scim`] extractor), read and check the body,
//! call [`service`](super::service), render and project the result.
//!
//! Bodies must be `application/scim+json` or `application/json` (RFC 7644 §3.1) and at most
//! `server.max_body_bytes`; responses are `application/scim+json`. The CSRF layer lets these
//! paths through (a bearer token, which browsers never send on their own, authenticates them).

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::auth::Scim;
use super::discovery;
use super::error::ScimError;
use super::list::{Candidates, ListQuery, respond};
use super::resource::projection::{Projection, split_list};
use super::resource::{group, user};
use super::schema::{GROUP, ResourceSchema, USER};
use super::service;
use super::store;
use crate::AppState;
use crate::routes::RouteTable;

pub fn routes(table: RouteTable) -> RouteTable {
    table
        .get(
            "/scim/v2/ServiceProviderConfig",
            discovery::service_provider,
        )
        .get("/scim/v2/ResourceTypes", discovery::resource_types)
        .get("/scim/v2/ResourceTypes/{id}", discovery::resource_type)
        .get("/scim/v2/Schemas", discovery::schemas)
        .get("/scim/v2/Schemas/{id}", discovery::schema)
        .get("/scim/v2/Users", list_users)
        .post("/scim/v2/Users", create_user)
        .post("/scim/v2/Users/.search", search_users)
        .get("/scim/v2/Users/{id}", get_user)
        .put("/scim/v2/Users/{id}", replace_user)
        .patch("/scim/v2/Users/{id}", modify_user)
        .delete("/scim/v2/Users/{id}", delete_user)
        .get("/scim/v2/Groups", list_groups)
        .post("/scim/v2/Groups", create_group)
        .post("/scim/v2/Groups/.search", search_groups)
        .get("/scim/v2/Groups/{id}", get_group)
        .put("/scim/v2/Groups/{id}", replace_group)
        .patch("/scim/v2/Groups/{id}", modify_group)
        .delete("/scim/v2/Groups/{id}", delete_group)
        .post("/scim/v2/.search", search_all)
}

/// A SCIM JSON response.
pub fn scim_json(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(super::MEDIA_TYPE),
    );
    response
}

/// Reads a JSON object body of a SCIM media type, bounded by the configured limit.
async fn json_body(state: &AppState, request: Request) -> Result<Map<String, Value>, ScimError> {
    let media_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if !matches!(
        media_type.as_deref(),
        Some("application/scim+json" | "application/json")
    ) {
        return Err(ScimError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            "send application/scim+json",
        ));
    }
    let bytes = axum::body::to_bytes(request.into_body(), state.config.server.max_body_bytes)
        .await
        .map_err(|_| {
            ScimError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                None,
                "request body too large",
            )
        })?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(_) => Err(ScimError::invalid_syntax("the body must be a JSON object")),
        Err(e) => Err(ScimError::invalid_syntax(format!(
            "the body is not JSON: {e}"
        ))),
    }
}

/// `attributes` / `excludedAttributes` apply to every response carrying a resource
/// (RFC 7644 §3.9), not only to queries.
fn projection(raw: Option<&str>, schema: &'static ResourceSchema) -> Projection {
    let mut attributes = Vec::new();
    let mut excluded = Vec::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match k.to_ascii_lowercase().as_str() {
            "attributes" => attributes = split_list(Some(&v)),
            "excludedattributes" => excluded = split_list(Some(&v)),
            _ => {}
        }
    }
    Projection::new(&attributes, &excluded, schema)
}

/// One resource; a 201 carries `Location` (RFC 7644 §3.3).
fn resource_response(
    status: StatusCode,
    resource: Map<String, Value>,
    projection: &Projection,
) -> Response {
    let location = resource
        .get("meta")
        .and_then(|m| m.get("location"))
        .and_then(Value::as_str)
        .and_then(|l| HeaderValue::from_str(l).ok());
    let mut response = scim_json(status, &Value::Object(projection.apply(resource)));
    if let Some(location) = location.filter(|_| status == StatusCode::CREATED) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

async fn rendered_users(
    state: &AppState,
    scim: &Scim,
) -> Result<Vec<Map<String, Value>>, ScimError> {
    Ok(store::users::list(&state.db)
        .await?
        .iter()
        .map(|u| user::render(u, &scim.base))
        .collect())
}

async fn rendered_groups(
    state: &AppState,
    scim: &Scim,
) -> Result<Vec<Map<String, Value>>, ScimError> {
    Ok(store::groups::list(&state.db)
        .await?
        .iter()
        .map(|g| group::render(g, &scim.base))
        .collect())
}

fn listed(
    query: &ListQuery,
    schema: &'static ResourceSchema,
    all: &[Map<String, Value>],
) -> Result<Response, ScimError> {
    let body = respond(
        query,
        &[Candidates {
            schema,
            resources: all,
        }],
    )?;
    Ok(scim_json(StatusCode::OK, &body))
}

async fn list_users(
    scim: Scim,
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ScimError> {
    let query = ListQuery::from_query(q.as_deref())?;
    listed(&query, &USER, &rendered_users(&state, &scim).await?)
}

async fn search_users(
    scim: Scim,
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ScimError> {
    let query = ListQuery::from_search(&json_body(&state, request).await?)?;
    listed(&query, &USER, &rendered_users(&state, &scim).await?)
}

async fn get_user(
    scim: Scim,
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ScimError> {
    let record = store::users::get(&state.db, &id)
        .await?
        .ok_or_else(|| ScimError::not_found(format!("no User {id}")))?;
    Ok(resource_response(
        StatusCode::OK,
        user::render(&record, &scim.base),
        &projection(q.as_deref(), &USER),
    ))
}

async fn create_user(
    scim: Scim,
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    request: Request,
) -> Result<Response, ScimError> {
    let body = json_body(&state, request).await?;
    let record = service::users::create(&state, &scim, &body).await?;
    Ok(resource_response(
        StatusCode::CREATED,
        user::render(&record, &scim.base),
        &projection(q.as_deref(), &USER),
    ))
}

async fn replace_user(
    scim: Scim,
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    request: Request,
) -> Result<Response, ScimError> {
    let body = json_body(&state, request).await?;
    let record = service::users::replace(&state, &scim, &id, &body).await?;
    Ok(resource_response(
        StatusCode::OK,
        user::render(&record, &scim.base),
        &projection(q.as_deref(), &USER),
    ))
}

async fn modify_user(
    scim: Scim,
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    request: Request,
) -> Result<Response, ScimError> {
    let body = json_body(&state, request).await?;
    let record = service::users::modify(&state, &scim, &id, &body).await?;
    Ok(resource_response(
        StatusCode::OK,
        user::render(&record, &scim.base),
        &projection(q.as_deref(), &USER),
    ))
}

async fn delete_user(
    scim: Scim,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ScimError> {
    service::users::delete(&state, &scim, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_groups(
    scim: Scim,
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ScimError> {
    let query = ListQuery::from_query(q.as_deref())?;
    listed(&query, &GROUP, &rendered_groups(&state, &scim).await?)
}

async fn search_groups(
    scim: Scim,
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ScimError> {
    let query = ListQuery::from_search(&json_body(&state, request).await?)?;
    listed(&query, &GROUP, &rendered_groups(&state, &scim).await?)
}

async fn get_group(
    scim: Scim,
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ScimError> {
    let record = store::groups::get(&state.db, &id)
        .await?
        .ok_or_else(|| ScimError::not_found(format!("no Group {id}")))?;
    Ok(resource_response(
        StatusCode::OK,
        group::render(&record, &scim.base),
        &projection(q.as_deref(), &GROUP),
    ))
}

async fn create_group(
    scim: Scim,
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    request: Request,
) -> Result<Response, ScimError> {
    let body = json_body(&state, request).await?;
    let record = service::groups::create(&state, &scim, &body).await?;
    Ok(resource_response(
        StatusCode::CREATED,
        group::render(&record, &scim.base),
        &projection(q.as_deref(), &GROUP),
    ))
}

async fn replace_group(
    scim: Scim,
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    request: Request,
) -> Result<Response, ScimError> {
    let body = json_body(&state, request).await?;
    let record = service::groups::replace(&state, &scim, &id, &body).await?;
    Ok(resource_response(
        StatusCode::OK,
        group::render(&record, &scim.base),
        &projection(q.as_deref(), &GROUP),
    ))
}

async fn modify_group(
    scim: Scim,
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    request: Request,
) -> Result<Response, ScimError> {
    let body = json_body(&state, request).await?;
    let record = service::groups::modify(&state, &scim, &id, &body).await?;
    Ok(resource_response(
        StatusCode::OK,
        group::render(&record, &scim.base),
        &projection(q.as_deref(), &GROUP),
    ))
}

async fn delete_group(
    scim: Scim,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ScimError> {
    service::groups::delete(&state, &scim, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// POST /.search at the root (RFC 7644 §3.4.3): Users and Groups together.
async fn search_all(
    scim: Scim,
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ScimError> {
    let query = ListQuery::from_search(&json_body(&state, request).await?)?;
    let users = rendered_users(&state, &scim).await?;
    let groups = rendered_groups(&state, &scim).await?;
    let body = respond(
        &query,
        &[
            Candidates {
                schema: &USER,
                resources: &users,
            },
            Candidates {
                schema: &GROUP,
                resources: &groups,
            },
        ],
    )?;
    Ok(scim_json(StatusCode::OK, &body))
}
