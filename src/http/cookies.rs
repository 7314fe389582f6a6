//! Reading and writing the few cookies Beffroi sets. Every cookie is `__Host-` prefixed, Secure,
//! HttpOnly and SameSite=Lax: the browser then refuses it over plain HTTP, from scripts, from a
//! sibling subdomain and on cross-site POSTs.

use axum::http::{HeaderMap, HeaderValue, header};

/// The value of cookie `name` in the request, if present.
pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
}

/// A `Set-Cookie` value for a browser-session cookie (no Max-Age: it goes when the browser
/// closes; the server enforces the real timeouts).
pub fn set(name: &str, value: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax"
    ))
    .ok()
}

/// A `Set-Cookie` value for a cookie kept for `max_age_secs`.
pub fn set_persistent(name: &str, value: &str, max_age_secs: u64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}"
    ))
    .ok()
}

/// A `Set-Cookie` value that deletes the cookie.
pub fn clear(name: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{name}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"
    ))
    .ok()
}
