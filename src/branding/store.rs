//! Branding queries. The whole shell (name, colours, footer, which images exist) is one row
//! read by one query; image bytes are read only by the two image routes.
//!
//! Logo and favicon bytes live in the database (`branding_images`), not in the `BlobStore`:
//! every node behind a load balancer must serve them, the blob store is a directory local to
//! one node until an object-store backend exists, and the database is the one store all nodes
//! share. Both images are small (see `ImageKind::max_bytes`), written rarely, and served with a
//! year-long cache under a content-derived URL, so the database barely notices them; and they
//! travel with the database in every backup.

use crate::blobs::MediaType;
use crate::branding::colour::{Colour, DEFAULT_PALETTE, Palette};
use crate::branding::footer::{self, FooterLink};
use crate::branding::images::ImageKind;
use crate::branding::{Branding, DEFAULT_NAME};
use crate::db::{Database, DbError, Tx, now};
use crate::{with_db, with_tx};

const SELECT_BRANDING: &str = "SELECT o.name, o.colour_primary, o.colour_on_primary, \
     o.colour_secondary, o.colour_on_secondary, o.footer_links, \
     (SELECT i.sha256 FROM branding_images i WHERE i.kind = 'logo'), \
     (SELECT i.sha256 FROM branding_images i WHERE i.kind = 'favicon') \
     FROM organisation o WHERE o.id = 1";

type BrandingRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

fn from_row(row: Option<BrandingRow>) -> Branding {
    let Some((name, primary, on_primary, secondary, on_secondary, links, logo, favicon)) = row
    else {
        return Branding::default();
    };
    // A value that does not parse (edited by hand in the database) falls back to the default
    // rather than reaching the stylesheet.
    let colour = |text: &str, default: Colour| Colour::parse(text).unwrap_or(default);
    let palette = Palette {
        primary: colour(&primary, DEFAULT_PALETTE.primary),
        on_primary: colour(&on_primary, DEFAULT_PALETTE.on_primary),
        secondary: colour(&secondary, DEFAULT_PALETTE.secondary),
        on_secondary: colour(&on_secondary, DEFAULT_PALETTE.on_secondary),
    };
    Branding {
        name: if name.trim().is_empty() {
            DEFAULT_NAME.to_owned()
        } else {
            name
        },
        // A palette that fails AA (edited by hand) is not shown: the default one is.
        palette: if palette.failures().is_empty() {
            palette
        } else {
            DEFAULT_PALETTE
        },
        footer_links: footer::from_stored(&links),
        logo_sha256: logo,
        favicon_sha256: favicon,
    }
}

/// The branding as committed, in one query.
pub async fn load(db: &Database) -> Result<Branding, DbError> {
    let row: Option<BrandingRow> = with_db!(db, pool => sqlx::query_as(SELECT_BRANDING)
        .fetch_optional(pool).await?);
    Ok(from_row(row))
}

/// The branding as seen inside `tx` (the "before" of a change, read under its lock).
pub async fn load_in(tx: &mut Tx) -> Result<Branding, DbError> {
    let row: Option<BrandingRow> = with_tx!(tx, conn => sqlx::query_as(SELECT_BRANDING)
        .fetch_optional(&mut *conn).await?);
    Ok(from_row(row))
}

pub async fn save_identity(tx: &mut Tx, name: &str, palette: &Palette) -> Result<(), DbError> {
    with_tx!(tx, conn => sqlx::query(
        "UPDATE organisation SET name = $1, colour_primary = $2, colour_on_primary = $3, \
         colour_secondary = $4, colour_on_secondary = $5, updated_at = $6 WHERE id = 1"
    ).bind(name).bind(palette.primary.css()).bind(palette.on_primary.css())
     .bind(palette.secondary.css()).bind(palette.on_secondary.css()).bind(now())
     .execute(&mut *conn).await.map(|_| ())?);
    Ok(())
}

pub async fn save_footer(tx: &mut Tx, links: &[FooterLink]) -> Result<(), DbError> {
    let json = serde_json::to_string(links).map_err(|e| DbError::Snapshot(e.to_string()))?;
    with_tx!(tx, conn => sqlx::query(
        "UPDATE organisation SET footer_links = $1, updated_at = $2 WHERE id = 1"
    ).bind(json).bind(now()).execute(&mut *conn).await.map(|_| ())?);
    Ok(())
}

/// What is stored for an image, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub sha256: String,
    pub media_type: String,
    pub size: i64,
}

pub async fn image_info(tx: &mut Tx, kind: ImageKind) -> Result<Option<ImageInfo>, DbError> {
    let row: Option<(String, String, i64)> = with_tx!(tx, conn => sqlx::query_as(
        "SELECT sha256, media_type, CAST(length(bytes) AS BIGINT) FROM branding_images \
         WHERE kind = $1"
    ).bind(kind.as_str()).fetch_optional(&mut *conn).await?);
    Ok(row.map(|(sha256, media_type, size)| ImageInfo {
        sha256,
        media_type,
        size,
    }))
}

pub async fn put_image(
    tx: &mut Tx,
    kind: ImageKind,
    sha256: &str,
    media_type: MediaType,
    bytes: &[u8],
) -> Result<(), DbError> {
    with_tx!(tx, conn => sqlx::query(
        "INSERT INTO branding_images (kind, sha256, media_type, bytes, updated_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kind) DO UPDATE SET sha256 = excluded.sha256, \
         media_type = excluded.media_type, bytes = excluded.bytes, updated_at = excluded.updated_at"
    ).bind(kind.as_str()).bind(sha256).bind(media_type.as_str()).bind(bytes).bind(now())
     .execute(&mut *conn).await.map(|_| ())?);
    Ok(())
}

pub async fn remove_image(tx: &mut Tx, kind: ImageKind) -> Result<(), DbError> {
    with_tx!(tx, conn => sqlx::query("DELETE FROM branding_images WHERE kind = $1")
        .bind(kind.as_str()).execute(&mut *conn).await.map(|_| ())?);
    Ok(())
}

/// An image to serve: its hash, type and bytes.
pub async fn image(
    db: &Database,
    kind: ImageKind,
) -> Result<Option<(String, MediaType, Vec<u8>)>, DbError> {
    let row: Option<(String, String, Vec<u8>)> = with_db!(db, pool => sqlx::query_as(
        "SELECT sha256, media_type, bytes FROM branding_images WHERE kind = $1"
    ).bind(kind.as_str()).fetch_optional(pool).await?);
    Ok(row.and_then(|(sha256, media_type, bytes)| {
        MediaType::parse(&media_type)
            .filter(|m| kind.accepts(*m))
            .map(|m| (sha256, m, bytes))
    }))
}
