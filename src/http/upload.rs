//! File upload forms (`multipart/form-data`), which work without JavaScript. The whole body is
//! read once, bounded by `server.max_upload_bytes`, then split into text fields and files.
//! The CSRF middleware uses [`parse`] to find the form's `csrf_token` before the handler runs;
//! handlers take an [`UploadForm`] and then check each file's size and sniffed type themselves
//! (see [`crate::blobs::MediaType::sniff`]).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;

use crate::AppState;
use crate::http::error::AppError;

/// At most this many parts in one form; a form with more is refused.
const MAX_PARTS: usize = 32;
/// A text field longer than this is refused (Markdown bodies go in ordinary forms).
const MAX_TEXT_FIELD_BYTES: usize = 256 * 1024;

pub struct UploadedFile {
    /// The form field's name.
    pub field: String,
    /// The name the browser gave, for display only (never used as a path).
    pub file_name: Option<String>,
    pub bytes: Bytes,
}

impl std::fmt::Debug for UploadedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadedFile")
            .field("field", &self.field)
            .field("file_name", &self.file_name)
            .field("size", &self.bytes.len())
            .finish()
    }
}

#[derive(Debug, Default)]
pub struct UploadForm {
    pub fields: Vec<(String, String)>,
    /// Files actually chosen: an empty file input (no file selected) is left out.
    pub files: Vec<UploadedFile>,
}

impl UploadForm {
    /// The first text field of that name.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The file posted under that field name, if one was chosen.
    pub fn file(&self, name: &str) -> Option<&UploadedFile> {
        self.files.iter().find(|f| f.field == name)
    }
}

/// Whether a request's Content-Type is a multipart form; returns its boundary.
pub fn boundary(content_type: Option<&str>) -> Option<String> {
    let content_type = content_type?;
    if !content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return None;
    }
    multer::parse_boundary(content_type).ok()
}

/// Splits a buffered multipart body into fields and files.
pub async fn parse(body: Bytes, boundary: &str) -> Result<UploadForm, AppError> {
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut form = UploadForm::default();
    let mut parts = 0;
    let bad = |_| AppError::BadRequest("malformed upload form");
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        parts += 1;
        if parts > MAX_PARTS {
            return Err(AppError::BadRequest("too many fields in the upload form"));
        }
        let name = field.name().unwrap_or_default().to_owned();
        let file_name = field.file_name().map(str::to_owned);
        let bytes = field.bytes().await.map_err(bad)?;
        match file_name {
            Some(file_name) => {
                if file_name.is_empty() && bytes.is_empty() {
                    continue;
                }
                form.files.push(UploadedFile {
                    field: name,
                    file_name: Some(file_name).filter(|n| !n.is_empty()),
                    bytes,
                });
            }
            None => {
                if bytes.len() > MAX_TEXT_FIELD_BYTES {
                    return Err(AppError::PayloadTooLarge);
                }
                let text = String::from_utf8(bytes.to_vec())
                    .map_err(|_| AppError::BadRequest("form field is not UTF-8"))?;
                form.fields.push((name, text));
            }
        }
    }
    Ok(form)
}

impl FromRequest<AppState> for UploadForm {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let boundary = boundary(
            request
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
        )
        .ok_or(AppError::UnsupportedMediaType)?;
        let body = axum::body::to_bytes(request.into_body(), state.config.server.max_upload_bytes)
            .await
            .map_err(|_| AppError::PayloadTooLarge)?;
        parse(body, &boundary).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn splits_fields_and_files_and_skips_empty_file_inputs() {
        let body = "--XyZ\r\n\
            Content-Disposition: form-data; name=\"csrf_token\"\r\n\r\n\
            tok\r\n\
            --XyZ\r\n\
            Content-Disposition: form-data; name=\"photo\"; filename=\"moi.png\"\r\n\
            Content-Type: image/png\r\n\r\n\
            PNGDATA\r\n\
            --XyZ\r\n\
            Content-Disposition: form-data; name=\"attachment\"; filename=\"\"\r\n\
            Content-Type: application/octet-stream\r\n\r\n\
            \r\n\
            --XyZ--\r\n";
        let form = parse(Bytes::from(body), "XyZ").await.unwrap();
        assert_eq!(form.field("csrf_token"), Some("tok"));
        assert_eq!(form.files.len(), 1);
        let photo = form.file("photo").unwrap();
        assert_eq!(photo.file_name.as_deref(), Some("moi.png"));
        assert_eq!(&photo.bytes[..], b"PNGDATA");
        assert!(form.file("attachment").is_none());
        assert!(parse(Bytes::from("garbage"), "XyZ").await.is_err());
        assert_eq!(
            boundary(Some("multipart/form-data; boundary=abc")).as_deref(),
            Some("abc")
        );
        assert_eq!(boundary(Some("application/json")), None);
    }
}
