//! News: items written in a space for an audience, shown on each agent's wall (the home page),
//! with mandatory reads ("J'ai lu ce message") and their receipts.
//!
//! Who may do what (decided in [`Access`], from [`crate::spaces::role_of`] and the global
//! `admin` role, and checked first in every service function):
//!
//! - **Reading** a published item is decided by the item's own audience only (everyone, groups,
//!   departments, sites, roles — see [`crate::audience`]); the space decides who *writes*. The
//!   wall filters by audience in SQL; a single item outside the agent's audience, or not yet
//!   published, or expired, answers 404 so that its existence does not leak.
//! - **Writing**: members with the contributor role or above, and global administrators.
//!   Contributors edit only their own items that are not yet published.
//! - **Publishing**: a space manager or an administrator publishes directly; an editor publishes
//!   directly unless the space has `approval_required`; otherwise (and always for a
//!   contributor) the item waits in the managers' approval queue (`/news/pending`). An edit by
//!   an editor of a published item in an approval space sends it back to the queue, so approval
//!   cannot be bypassed by editing after the fact.
//! - **Approving / rejecting** (with a reason): space managers and administrators.
//! - **Receipts dashboard, CSV export, reminders, archiving**: editors and managers of the
//!   space, and administrators.
//!
//! Time comes from the injected [`clock::Clock`]: an item is visible when it is published and
//! `publish_at <= now < expire_at`, purely by query. Every saved edit is kept in
//! `news_versions` with the SHA-256 of its body; a receipt records the round, version and hash
//! the agent acknowledged. A *material* change starts a new round (earlier receipts stay as
//! history, nothing is deleted); a *minor* correction keeps the round. Every state change and
//! every receipt is appended to the audit log in the same transaction.

pub mod clock;
pub mod demo;
pub mod editor;
pub mod pages;
pub mod receipts;
pub mod reminder_mail;
pub mod service;
pub mod store;
pub mod wallbench;

use crate::accounts::Role;
use crate::auth::session::ActiveSession;
use crate::routes::RouteTable;
use crate::spaces::SpaceRole;

/// An item's state. A published item whose `publish_at` is in the future is "scheduled".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Draft,
    Pending,
    Published,
    Rejected,
    Archived,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Pending => "pending",
            Status::Published => "published",
            Status::Rejected => "rejected",
            Status::Archived => "archived",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Status::Draft,
            Status::Pending,
            Status::Published,
            Status::Rejected,
            Status::Archived,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// The fixed list of categories: short enough for a select, stable for filters and links.
pub const CATEGORIES: [&str; 7] = [
    "collectivite",
    "rh",
    "prevention",
    "travaux",
    "numerique",
    "evenements",
    "action-sociale",
];

pub fn valid_category(key: &str) -> bool {
    CATEGORIES.contains(&key)
}

/// The largest image accepted with an item.
pub const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;

/// What one account may do in one space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub role: Option<SpaceRole>,
    pub admin: bool,
}

impl Access {
    pub fn of(session: &ActiveSession, role: Option<SpaceRole>) -> Self {
        Self {
            role,
            admin: session.account.has_role(Role::Admin),
        }
    }

    pub fn can_write(self) -> bool {
        self.admin || self.role >= Some(SpaceRole::Contributor)
    }

    /// Edit any item of the space, archive, follow receipts, send reminders.
    pub fn can_manage_items(self) -> bool {
        self.admin || self.role >= Some(SpaceRole::Editor)
    }

    pub fn can_approve(self) -> bool {
        self.admin || self.role == Some(SpaceRole::Manager)
    }

    /// The state an item submitted for publication takes.
    pub fn publication_status(self, approval_required: bool) -> Status {
        if self.can_approve() || (self.role == Some(SpaceRole::Editor) && !approval_required) {
            Status::Published
        } else {
            Status::Pending
        }
    }
}

pub fn routes(table: RouteTable) -> RouteTable {
    let table = pages::routes(table);
    let table = editor::routes(table);
    receipts::routes(table)
}

/// Characters of a body shown on the wall.
pub const SUMMARY_CHARS: usize = 220;

/// The wall's summary of a Markdown body: its plain text, cut at [`SUMMARY_CHARS`] characters.
/// Stored with the item when it is written (see `news_items.summary`).
pub fn summary_of(body: &str) -> String {
    let text = crate::markdown::plain_text(body);
    let mut chars = text.char_indices();
    match chars.nth(SUMMARY_CHARS) {
        Some((cut, _)) => {
            let mut summary = text.get(..cut).unwrap_or_default().to_owned();
            summary.push('…');
            summary
        }
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_publishes_directly() {
        let editor = Access {
            role: Some(SpaceRole::Editor),
            admin: false,
        };
        assert_eq!(editor.publication_status(false), Status::Published);
        assert_eq!(editor.publication_status(true), Status::Pending);
        let contributor = Access {
            role: Some(SpaceRole::Contributor),
            admin: false,
        };
        assert_eq!(contributor.publication_status(false), Status::Pending);
        assert!(contributor.can_write() && !contributor.can_manage_items());
        let reader = Access {
            role: Some(SpaceRole::Reader),
            admin: false,
        };
        assert!(!reader.can_write());
        let admin = Access {
            role: None,
            admin: true,
        };
        assert_eq!(admin.publication_status(true), Status::Published);
        for s in ["draft", "pending", "published", "rejected", "archived"] {
            assert_eq!(Status::parse(s).map(Status::as_str), Some(s));
        }
    }
}
