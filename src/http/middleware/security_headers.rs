//! Security headers on every response — pages, errors, redirects, static files — as DESIGN.md
//! sets them. The CSP allows no inline script or style at all, so an injected `<script>` or
//! `style=` attribute does nothing.
//!
//! `form-action` is the one directive that depends on the configuration: browsers apply it to
//! the redirects that follow a form post, so when single sign-on is on, the sign-out form (which
//! ends in a redirect to the provider's end-session endpoint) needs the provider's origin there.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The policy with `form-action 'self'` plus the given origins.
pub fn content_security_policy(extra_form_origins: &[String]) -> String {
    let mut form_action = String::from("'self'");
    for origin in extra_form_origins {
        form_action.push(' ');
        form_action.push_str(origin);
    }
    // `object-src 'none'`: no page embeds a plugin, and `default-src 'self'` alone would let an
    // uploaded file be loaded as an <object> or <embed> (wapiti flags it).
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action {form_action}"
    )
}

/// The policy when no other origin is involved (also the plain-HTTP redirect listener's).
pub fn default_content_security_policy() -> String {
    content_security_policy(&[])
}

/// The headers other than the CSP, also used by tests to check every route.
pub fn security_headers() -> [(HeaderName, &'static str); 6] {
    [
        // Two years, as DESIGN.md asks; subdomains included because an intranet host has no
        // business serving plain HTTP below it.
        (
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=63072000; includeSubDomains",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (
            HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()",
        ),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
    ]
}

/// Adds the headers, and `Cache-Control: no-store` unless the response chose its own caching
/// (static files do): pages can show private data and must not sit in shared caches.
pub fn apply(headers: &mut HeaderMap, csp: &HeaderValue) {
    headers.insert(header::CONTENT_SECURITY_POLICY, csp.clone());
    for (name, value) in security_headers() {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// The CSP header value a server sends, computed once at start.
#[derive(Clone)]
pub struct Policy(pub HeaderValue);

impl Policy {
    pub fn new(extra_form_origins: &[String]) -> Self {
        let text = content_security_policy(extra_form_origins);
        // Origins come from validated URLs; should one not fit in a header, fall back to the
        // strictest policy rather than sending none.
        Policy(
            HeaderValue::from_str(&text).unwrap_or_else(|_| {
                HeaderValue::from_static("default-src 'self'; form-action 'self'")
            }),
        )
    }
}

pub async fn add_security_headers(
    State(policy): State<Policy>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    apply(response.headers_mut(), &policy.0);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_forbids_plugins_framing_and_base_rewrites() {
        let csp = content_security_policy(&["https://idp.example".to_owned()]);
        for directive in [
            "object-src 'none'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self' https://idp.example",
        ] {
            assert!(
                csp.split("; ").any(|d| d == directive),
                "{directive} missing from {csp}"
            );
        }
    }
}
