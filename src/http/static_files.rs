//! Static assets (CSS, images) embedded in the binary and served under content-hashed names such
//! as `/static/app.3f9c1d2e7a4b.css`, with a year-long immutable cache: a new release changes the
//! name, so browsers never run stale assets and no CDN is ever needed.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use crate::http::error::AppError;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

struct Manifest {
    /// logical name → URL path
    urls: HashMap<String, String>,
    /// hashed file name → logical name
    files: HashMap<String, String>,
}

static MANIFEST: LazyLock<Manifest> = LazyLock::new(|| {
    let mut urls = HashMap::new();
    let mut files = HashMap::new();
    for name in Assets::iter() {
        let Some(file) = Assets::get(&name) else {
            continue;
        };
        let hash = hex::encode(file.metadata.sha256_hash());
        let short = hash.get(..12).unwrap_or(&hash);
        let hashed = match name.rsplit_once('.') {
            Some((stem, ext)) => format!("{stem}.{short}.{ext}"),
            None => format!("{name}.{short}"),
        };
        urls.insert(name.to_string(), format!("/static/{hashed}"));
        files.insert(hashed, name.to_string());
    }
    Manifest { urls, files }
});

/// The URL of a logical asset name such as `app.css`.
pub fn asset_url(name: &str) -> String {
    MANIFEST
        .urls
        .get(name)
        .cloned()
        .unwrap_or_else(|| format!("/static/{name}"))
}

/// Every asset URL, for tests that walk them.
pub fn all_asset_urls() -> Vec<String> {
    let mut urls: Vec<String> = MANIFEST.urls.values().cloned().collect();
    urls.sort();
    urls
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// `GET /static/{file}`: only hashed names are served.
pub async fn serve_asset(Path(file): Path<String>) -> Result<Response, AppError> {
    let logical = MANIFEST.files.get(&file).ok_or(AppError::NotFound)?;
    let asset = Assets::get(logical).ok_or(AppError::NotFound)?;
    let mut response = asset.data.into_owned().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(logical)),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    Ok(response)
}
