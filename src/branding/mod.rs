//! The organisation's identity on every page: its name, logo, favicon, colours and footer
//! links, set by administrators at `/admin/branding` ([`admin`]) and applied at once, without a
//! restart, through [`BrandingCache`].
//!
//! Colours reach pages only through `/branding/theme.css` as CSS custom properties, never as
//! inline style, so the strict Content-Security-Policy holds; every pair of colours the
//! stylesheet draws text with is checked against WCAG AA before it is saved ([`colour`]).
//! Every change is audited with its before and after, in the transaction that makes it
//! ([`service`]).

pub mod admin;
pub mod cache;
pub mod colour;
pub mod footer;
pub mod images;
pub mod legal;
pub mod routes;
pub mod service;
pub mod store;

use sha2::{Digest, Sha256};

pub use cache::BrandingCache;
pub use colour::{Colour, Palette};
pub use footer::FooterLink;
pub use images::ImageKind;

/// The name shown before an administrator sets one.
pub const DEFAULT_NAME: &str = "Beffroi";
pub const MAX_NAME_CHARS: usize = 120;

/// An organisation name: 1 to 120 characters once trimmed, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganisationName(String);

impl OrganisationName {
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let ok = !text.is_empty()
            && text.chars().count() <= MAX_NAME_CHARS
            && !text.chars().any(char::is_control);
        ok.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Everything the page shell shows of the organisation.
#[derive(Debug, Clone, PartialEq)]
pub struct Branding {
    pub name: String,
    pub palette: Palette,
    pub footer_links: Vec<FooterLink>,
    /// SHA-256 (hex) of the uploaded logo, if any.
    pub logo_sha256: Option<String>,
    pub favicon_sha256: Option<String>,
}

impl Default for Branding {
    fn default() -> Self {
        Self {
            name: DEFAULT_NAME.to_owned(),
            palette: colour::DEFAULT_PALETTE,
            footer_links: Vec::new(),
            logo_sha256: None,
            favicon_sha256: None,
        }
    }
}

/// A short, URL-safe version derived from content: it changes exactly when the content does,
/// and every node computes the same one.
fn version_of(sha256_hex: &str) -> &str {
    sha256_hex.get(..16).unwrap_or(sha256_hex)
}

impl Branding {
    /// The stylesheet of `/branding/theme.css`: the colours as custom properties.
    pub fn theme_css(&self) -> String {
        let p = &self.palette;
        format!(
            ":root {{\n  --brand: {};\n  --on-brand: {};\n  --brand-secondary: {};\n  \
             --on-brand-secondary: {};\n}}\n",
            p.primary.css(),
            p.on_primary.css(),
            p.secondary.css(),
            p.on_secondary.css()
        )
    }

    pub fn theme_version(&self) -> String {
        let hash = hex::encode(Sha256::digest(self.theme_css().as_bytes()));
        version_of(&hash).to_owned()
    }

    /// The theme's URL, new whenever the colours change, so a browser never keeps old ones.
    pub fn theme_url(&self) -> String {
        format!("/branding/theme.css?v={}", self.theme_version())
    }

    pub fn image_sha256(&self, kind: ImageKind) -> Option<&str> {
        match kind {
            ImageKind::Logo => self.logo_sha256.as_deref(),
            ImageKind::Favicon => self.favicon_sha256.as_deref(),
        }
    }

    /// The uploaded image's URL (versioned by its content), or None when none was uploaded.
    pub fn image_url(&self, kind: ImageKind) -> Option<String> {
        self.image_sha256(kind)
            .map(|sha| format!("/branding/{}?v={}", kind.as_str(), version_of(sha)))
    }

    /// Whether `v` (from a URL) names the current version of this image.
    pub fn is_current_image(&self, kind: ImageKind, v: &str) -> bool {
        self.image_sha256(kind)
            .is_some_and(|sha| version_of(sha) == v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            OrganisationName::parse("  Mairie de Lyon ").map(|n| n.0),
            Some("Mairie de Lyon".to_owned())
        );
        assert_eq!(OrganisationName::parse("   "), None);
        assert_eq!(OrganisationName::parse(&"é".repeat(121)), None);
        assert!(OrganisationName::parse(&"é".repeat(120)).is_some());
        assert_eq!(OrganisationName::parse("a\u{0}b"), None);
    }

    #[test]
    fn urls_change_with_the_content() {
        let a = Branding::default();
        let mut b = a.clone();
        b.palette.primary = Colour::rgb(0x1b, 0x4f, 0x72);
        assert_ne!(a.theme_url(), b.theme_url());
        assert!(a.theme_css().contains("--brand: #000091;"));
        assert!(a.theme_css().contains("--on-brand-secondary: #1e1e1e;"));
        assert_eq!(a.image_url(ImageKind::Logo), None);
        b.logo_sha256 = Some("ab".repeat(32));
        assert_eq!(
            b.image_url(ImageKind::Logo).as_deref(),
            Some("/branding/logo?v=abababababababab")
        );
        assert!(b.is_current_image(ImageKind::Logo, "abababababababab"));
        assert!(!b.is_current_image(ImageKind::Favicon, "abababababababab"));
    }
}
