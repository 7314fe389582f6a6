//! Branding changes, each with its audit entry (before and after) in the same transaction.
//! Callers have already checked who acts (`crate::admin::require_admin`) and what they sent
//! (names, palettes, links and images arrive as checked types); callers that serve pages then
//! drop the in-memory copy ([`crate::branding::BrandingCache::invalidate`]).
//!
//! A change that changes nothing is neither written nor recorded.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::blobs::MediaType;
use crate::branding::colour::Palette;
use crate::branding::footer::FooterLink;
use crate::branding::images::ImageKind;
use crate::branding::{OrganisationName, store};
use crate::db::{Database, DbError};
use crate::security_events::{self, Actor};

/// The audit target of every branding entry.
const TARGET: &str = "organisation";

fn identity_json(name: &str, palette: &Palette) -> Value {
    json!({
        "name": name,
        "primary": palette.primary.css(),
        "on_primary": palette.on_primary.css(),
        "secondary": palette.secondary.css(),
        "on_secondary": palette.on_secondary.css(),
    })
}

/// Sets the name and colours; returns whether anything changed. The palette must already have
/// passed [`Palette::failures`].
pub async fn update_identity(
    db: &Database,
    actor: &Actor,
    name: &OrganisationName,
    palette: &Palette,
) -> Result<bool, DbError> {
    let mut tx = db.begin().await?;
    let before = store::load_in(&mut tx).await?;
    if before.name == name.as_str() && before.palette == *palette {
        return Ok(false);
    }
    store::save_identity(&mut tx, name.as_str(), palette).await?;
    let details = json!({
        "before": identity_json(&before.name, &before.palette),
        "after": identity_json(name.as_str(), palette),
    });
    security_events::record(
        &mut tx,
        actor,
        "branding.update",
        Some(TARGET.into()),
        "success",
        details,
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Replaces the footer links; returns whether anything changed.
pub async fn update_footer(
    db: &Database,
    actor: &Actor,
    links: &[FooterLink],
) -> Result<bool, DbError> {
    let mut tx = db.begin().await?;
    let before = store::load_in(&mut tx).await?;
    if before.footer_links == links {
        return Ok(false);
    }
    store::save_footer(&mut tx, links).await?;
    let details = json!({ "before": before.footer_links, "after": links });
    security_events::record(
        &mut tx,
        actor,
        "branding.footer",
        Some(TARGET.into()),
        "success",
        details,
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Stores a new logo or favicon (checked by `images::check`), or with `None` goes back to the
/// default; returns whether anything changed.
pub async fn set_image(
    db: &Database,
    actor: &Actor,
    kind: ImageKind,
    image: Option<(&[u8], MediaType)>,
) -> Result<bool, DbError> {
    let mut tx = db.begin().await?;
    let before = store::image_info(&mut tx, kind).await?;
    let after = match image {
        Some((bytes, media_type)) => {
            let sha256 = hex::encode(Sha256::digest(bytes));
            if before.as_ref().is_some_and(|b| b.sha256 == sha256) {
                return Ok(false);
            }
            store::put_image(&mut tx, kind, &sha256, media_type, bytes).await?;
            Some(json!({ "sha256": sha256, "media_type": media_type.as_str(),
                "size": bytes.len() }))
        }
        None => {
            if before.is_none() {
                return Ok(false);
            }
            store::remove_image(&mut tx, kind).await?;
            None
        }
    };
    let before = before.map(|b| {
        json!({ "sha256": b.sha256, "media_type": b.media_type,
        "size": b.size })
    });
    security_events::record(
        &mut tx,
        actor,
        kind.audit_action(),
        Some(TARGET.into()),
        "success",
        json!({ "before": before, "after": after }),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}
