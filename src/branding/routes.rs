//! The public branding files: `/branding/theme.css`, `/branding/logo` and `/branding/favicon`.
//! They are public (the sign-in page shows them too) and hold nothing secret.
//!
//! Pages link them with `?v=<version>`, a digest of their content. A request naming the
//! current version gets a year-long immutable cache, since that URL will never name anything
//! else; any other request (no version, or an old page's version) gets the current content
//! with `no-cache`, so a browser asks again next time instead of keeping it.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::AppState;
use crate::branding::images::ImageKind;
use crate::branding::store;
use crate::http::error::AppError;
use crate::http::static_files::asset_url;
use crate::routes::RouteTable;

pub fn routes(table: RouteTable) -> RouteTable {
    let table = super::legal::routes(table);
    table
        .get("/branding/theme.css", theme_css)
        .get("/branding/logo", logo)
        .get("/branding/favicon", favicon)
}

#[derive(Debug, Default, Deserialize)]
pub struct VersionQuery {
    #[serde(default)]
    v: String,
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// A response with an ETag, or 304 when the browser already holds that version.
fn versioned(
    request_headers: &HeaderMap,
    version: &str,
    current: bool,
    content_type: &'static str,
    body: Vec<u8>,
) -> Response {
    let etag = format!("\"{version}\"");
    let cache = if current { IMMUTABLE } else { REVALIDATE };
    let matches = request_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        body.into_response()
    };
    let headers = response.headers_mut();
    if !matches {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    response
}

/// `GET /branding/theme.css`: the organisation's colours as custom properties.
pub async fn theme_css(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<VersionQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    let branding = state.branding.get(&state.db).await?;
    let version = branding.theme_version();
    let asked = query.map(|Query(q)| q.v).unwrap_or_default();
    Ok(versioned(
        &headers,
        &version,
        asked == version,
        "text/css; charset=utf-8",
        branding.theme_css().into_bytes(),
    ))
}

async fn logo(
    state: State<AppState>,
    headers: HeaderMap,
    query: Result<Query<VersionQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    image(state, headers, query, ImageKind::Logo).await
}

async fn favicon(
    state: State<AppState>,
    headers: HeaderMap,
    query: Result<Query<VersionQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    image(state, headers, query, ImageKind::Favicon).await
}

/// The uploaded image, or a redirect to the built-in logo when none was uploaded.
async fn image(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<VersionQuery>, QueryRejection>,
    kind: ImageKind,
) -> Result<Response, AppError> {
    let Some((sha256, media_type, bytes)) = store::image(&state.db, kind).await? else {
        return Ok(Redirect::to(&asset_url("logo.svg")).into_response());
    };
    let asked = query.map(|Query(q)| q.v).unwrap_or_default();
    let version = sha256.get(..16).unwrap_or(&sha256).to_owned();
    Ok(versioned(
        &headers,
        &version,
        asked == version,
        media_type.mime(),
        bytes,
    ))
}
