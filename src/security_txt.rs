//! `/.well-known/security.txt` (RFC 9116): where to report a vulnerability in this instance,
//! from the `[security_txt]` section of the configuration. Without the section the URL answers
//! 404 rather than inventing a contact.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::config::{Config, SecurityTxtConfig};
use crate::http::error::AppError;
use crate::routes::RouteTable;

pub const PATH: &str = "/.well-known/security.txt";

pub fn routes(table: RouteTable) -> RouteTable {
    table.get(PATH, security_txt)
}

/// The file's text, one field per line, in the RFC's vocabulary.
pub fn render(fields: &SecurityTxtConfig, public_url: Option<&str>) -> String {
    let mut text = String::new();
    for contact in &fields.contact {
        text.push_str(&format!("Contact: {contact}\n"));
    }
    text.push_str(&format!("Expires: {}\n", fields.expires));
    for (name, value) in [
        ("Encryption", &fields.encryption),
        ("Acknowledgments", &fields.acknowledgments),
        ("Policy", &fields.policy),
    ] {
        if let Some(value) = value {
            text.push_str(&format!("{name}: {value}\n"));
        }
    }
    if !fields.preferred_languages.is_empty() {
        text.push_str(&format!(
            "Preferred-Languages: {}\n",
            fields.preferred_languages.join(", ")
        ));
    }
    if let Some(origin) = public_url {
        text.push_str(&format!(
            "Canonical: {}{PATH}\n",
            origin.trim_end_matches('/')
        ));
    }
    text
}

/// Whether the configured expiry has passed (checked at start, so the operator hears of it).
pub fn expired(config: &Config) -> bool {
    let Some(fields) = &config.security_txt else {
        return false;
    };
    let now = time::OffsetDateTime::now_utc();
    let now = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    // Same fixed-width format on both sides: text order is time order.
    fields.expires <= now
}

async fn security_txt(State(state): State<AppState>) -> Result<Response, AppError> {
    let Some(fields) = &state.config.security_txt else {
        return Err(AppError::NotFound);
    };
    let mut response = render(fields, state.config.server.public_url.as_deref()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_rfc_fields() {
        let fields = SecurityTxtConfig {
            contact: vec![
                "mailto:securite@example.gouv.fr".into(),
                "https://example.gouv.fr/securite".into(),
            ],
            expires: "2027-06-30T00:00:00Z".into(),
            encryption: None,
            policy: Some("https://example.gouv.fr/divulgation".into()),
            acknowledgments: None,
            preferred_languages: vec!["fr".into(), "en".into()],
        };
        let text = render(&fields, Some("https://intranet.example.gouv.fr"));
        assert_eq!(
            text,
            "Contact: mailto:securite@example.gouv.fr\n\
             Contact: https://example.gouv.fr/securite\n\
             Expires: 2027-06-30T00:00:00Z\n\
             Policy: https://example.gouv.fr/divulgation\n\
             Preferred-Languages: fr, en\n\
             Canonical: https://intranet.example.gouv.fr/.well-known/security.txt\n"
        );
    }
}
