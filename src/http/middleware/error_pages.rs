//! Turns every error response that is not already a page — our own `AppError`s, axum's
//! rejections (bad form, wrong method, body too large), unknown routes, timeouts, panics — into
//! a page in the site's layout and the visitor's language. 5xx pages show only the request id;
//! the detail was logged where it happened.
//!
//! Two markers make it step aside: [`HtmlPage`] (the body is already a finished page) and
//! [`ApiErrorBody`] (the body is a machine-readable error for an API client, such as a SCIM
//! Error; turning it into HTML would break the client).

use askama::Template;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::http::error::ErrorInfo;
use crate::http::middleware::session::{CsrfToken, MaybeSession};
use crate::http::pages::{HtmlPage, Shell, render};
use crate::i18n::Lang;

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub shell: Shell,
    pub title: String,
    pub message: String,
    pub retry_after: Option<String>,
    pub request_id: Option<String>,
}

/// Marks an error response whose body is already a complete machine-readable error document for
/// an API client (the SCIM Error of RFC 7644 §3.12): this middleware leaves it as it is.
#[derive(Debug, Clone, Copy)]
pub struct ApiErrorBody;

/// Headers of the bare error response worth keeping on the page.
const KEPT_HEADERS: &[HeaderName] = &[
    header::RETRY_AFTER,
    header::ALLOW,
    header::SET_COOKIE,
    header::WWW_AUTHENTICATE,
];

fn default_message(status: StatusCode) -> &'static str {
    match status.as_u16() {
        404 => "error-not-found",
        403 => "error-forbidden",
        405 => "error-method",
        413 => "error-too-large",
        415 => "error-media-type",
        429 => "error-too-many",
        503 | 408 => "error-unavailable",
        500..=599 => "error-internal",
        _ => "error-bad-request",
    }
}

fn status_title(lang: Lang, status: StatusCode) -> String {
    let id = format!("error-status-{}", status.as_u16());
    let title = lang.t(&id);
    // Fluent answers with the id itself when a message is missing.
    if title == id {
        lang.t("error-status-other")
    } else {
        title
    }
}

pub async fn render_error_pages(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let request_headers: HeaderMap = request.headers().clone();
    let path = request.uri().path().to_owned();
    let is_head = request.method() == axum::http::Method::HEAD;
    let response = next.run(request).await;
    let status = response.status();
    if status.as_u16() < 400
        || response.extensions().get::<HtmlPage>().is_some()
        || response.extensions().get::<ApiErrorBody>().is_some()
    {
        return response;
    }
    let session = response
        .extensions()
        .get::<MaybeSession>()
        .and_then(|m| m.0.clone());
    let csrf = response
        .extensions()
        .get::<CsrfToken>()
        .map(|t| t.0.clone());
    let message_id = response
        .extensions()
        .get::<ErrorInfo>()
        .map(|i| i.message_id)
        .unwrap_or_else(|| default_message(status));
    let lang = Lang::negotiate(
        session.as_ref().and_then(|s| s.account.locale.as_deref()),
        &request_headers,
    );
    // The error page must render even when the database does not answer.
    let branding = state.branding.get(&state.db).await.unwrap_or_default();
    let request_id = status.is_server_error().then(|| {
        request_headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned()
    });
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let page = ErrorPage {
        shell: Shell::new(
            lang,
            branding.name.clone(),
            session.as_deref(),
            csrf,
            &path,
            state.config.locale.timezone.clone(),
        )
        .with_branding(&branding),
        title: status_title(lang, status),
        message: lang.t(message_id),
        retry_after,
        request_id,
    };
    let mut rendered = match render(status, &page) {
        Ok(r) => r,
        // Rendering the error page failed: fall back to plain text, still without detail.
        Err(_) => (status, status.canonical_reason().unwrap_or("error")).into_response(),
    };
    for name in KEPT_HEADERS {
        for value in response.headers().get_all(name) {
            rendered.headers_mut().append(name.clone(), value.clone());
        }
    }
    if is_head {
        *rendered.body_mut() = axum::body::Body::empty();
    }
    rendered
}
