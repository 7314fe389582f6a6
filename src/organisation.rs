//! The organisation's identity shown on every page: its name and colours. Colours reach pages
//! only through `/branding/theme.css` as CSS custom properties, never as inline style, so the
//! strict Content-Security-Policy holds.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::db::{Database, DbError, now};
use crate::http::error::AppError;
use crate::with_db;

/// A colour as `#rrggbb`, the only form accepted into the stylesheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colour([u8; 3]);

impl Colour {
    pub fn parse(s: &str) -> Option<Self> {
        let hex = s.strip_prefix('#')?;
        if hex.len() != 6 {
            return None;
        }
        let bytes = hex::decode(hex).ok()?;
        Some(Colour([*bytes.first()?, *bytes.get(1)?, *bytes.get(2)?]))
    }

    pub fn css(self) -> String {
        format!("#{}", hex::encode(self.0))
    }

    /// WCAG 2.1 relative luminance.
    fn luminance(self) -> f64 {
        let channel = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.03928 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(self.0[0]) + 0.7152 * channel(self.0[1]) + 0.0722 * channel(self.0[2])
    }

    /// WCAG 2.1 contrast ratio between two colours (1 to 21).
    pub fn contrast(self, other: Colour) -> f64 {
        let (a, b) = (self.luminance(), other.luminance());
        let (hi, lo) = if a > b { (a, b) } else { (b, a) };
        (hi + 0.05) / (lo + 0.05)
    }
}

#[derive(Debug, Clone)]
pub struct Branding {
    pub name: String,
    pub primary: Colour,
    pub on_primary: Colour,
}

const DEFAULT_PRIMARY: Colour = Colour([0x00, 0x00, 0x91]);
const DEFAULT_ON_PRIMARY: Colour = Colour([0xff, 0xff, 0xff]);

pub async fn load(db: &Database) -> Result<Branding, DbError> {
    let row: Option<(String, String, String)> = with_db!(db, pool => sqlx::query_as(
        "SELECT name, colour_primary, colour_on_primary FROM organisation WHERE id = 1"
    ).fetch_optional(pool).await?);
    let Some((name, primary, on_primary)) = row else {
        return Ok(Branding {
            name: "Beffroi".into(),
            primary: DEFAULT_PRIMARY,
            on_primary: DEFAULT_ON_PRIMARY,
        });
    };
    Ok(Branding {
        name,
        primary: Colour::parse(&primary).unwrap_or(DEFAULT_PRIMARY),
        on_primary: Colour::parse(&on_primary).unwrap_or(DEFAULT_ON_PRIMARY),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum BrandingError {
    #[error("colours {0} and {1} contrast {2:.2}:1, below the 4.5:1 WCAG AA minimum")]
    LowContrast(String, String, f64),
    #[error("organisation name must be 1 to 120 characters")]
    BadName,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Stores the organisation's name and colours, refusing pairs that fail WCAG AA.
pub async fn save(
    db: &Database,
    name: &str,
    primary: Colour,
    on_primary: Colour,
) -> Result<(), BrandingError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 120 {
        return Err(BrandingError::BadName);
    }
    let ratio = primary.contrast(on_primary);
    if ratio < 4.5 {
        return Err(BrandingError::LowContrast(
            primary.css(),
            on_primary.css(),
            ratio,
        ));
    }
    with_db!(db, pool => sqlx::query(
        "UPDATE organisation SET name = $1, colour_primary = $2, colour_on_primary = $3, \
         updated_at = $4 WHERE id = 1"
    ).bind(name).bind(primary.css()).bind(on_primary.css()).bind(now()).execute(pool).await.map(|_| ())
        .map_err(DbError::from)?);
    Ok(())
}

/// `GET /branding/theme.css`: the organisation's colours as custom properties.
pub async fn theme_css(State(state): State<AppState>) -> Result<Response, AppError> {
    let branding = load(&state.db).await?;
    let css = format!(
        ":root {{ --brand: {}; --on-brand: {}; }}\n",
        branding.primary.css(),
        branding.on_primary.css()
    );
    let mut response = css.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    // Short cache: a branding change shows within a minute without a cache-busting name.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contrast_matches_wcag_examples() {
        let black = Colour::parse("#000000").unwrap();
        let white = Colour::parse("#FFFFFF").unwrap();
        assert!((black.contrast(white) - 21.0).abs() < 0.01);
        assert!(DEFAULT_PRIMARY.contrast(DEFAULT_ON_PRIMARY) > 4.5);
        assert!(Colour::parse("#777777").unwrap().contrast(white) < 4.5);
        assert_eq!(Colour::parse("red"), None);
        assert_eq!(Colour::parse("#12345g"), None);
    }
}
