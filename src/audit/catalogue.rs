//! The fixed catalogue of audited actions and outcomes. An entry's `action` is always one of
//! these names: `store::append` refuses any other, so an auditor's filter by action is complete
//! and `audit/EVENTS.md` (checked against this list by a test) describes every entry that can
//! exist. A new action is added here, in `audit/EVENTS.md`, and nowhere else.

/// Every action, in the order `audit/EVENTS.md` lists them.
pub const ACTIONS: &[&str] = &[
    // Sign-in and sessions.
    "auth.sign_in",
    "auth.sign_in_failure",
    "auth.sign_out",
    "auth.session_revoke",
    "auth.password_change",
    "auth.password_change_failure",
    "auth.backchannel_logout",
    "auth.backchannel_logout_failure",
    "security.rate_limited",
    // Accounts, groups and roles.
    "account.break_glass_reset",
    "account.roles_change",
    // Provisioning by the directory (SCIM).
    "scim.auth_failure",
    "scim.user_create",
    "scim.user_replace",
    "scim.user_patch",
    "scim.user_deactivate",
    "scim.user_reactivate",
    "scim.user_delete",
    "scim.group_create",
    "scim.group_change",
    "scim.group_delete",
    "scim.membership_change",
    // The server and its configuration.
    "server.start",
    "schema.rollback",
    // The audit log itself.
    "audit.verify",
    "audit.checkpoint",
    "audit.search",
    "audit.export",
    "audit.purge",
    // Backups.
    "backup.create",
    "backup.verify",
    "backup.restore",
    "backup.prune",
    // Administration and branding.
    "admin.denied",
    "access.denied",
    "csrf.refused",
    "branding.update",
    "branding.logo",
    "branding.favicon",
    "branding.footer",
    "branding.legal_page",
    // Spaces, their members and their pages.
    "space.create",
    "space.update",
    "space.archive",
    "space.member_add",
    "space.member_role",
    "space.member_remove",
    "page.create",
    "page.update",
    "page.delete",
    "page.attachment_add",
    "page.attachment_remove",
    "page.attachment_approve",
    "page.attachment_reject",
    "page.attachment_remove_request",
    "page.delete_request",
    "page.delete_reject",
    "page.submit",
    "page.approve",
    "page.reject",
    // The who's-who.
    "directory.field_policy_change",
    "directory.profile_update",
    "directory.private_read",
    "directory.department_create",
    "directory.department_rename",
    "directory.department_move",
    "directory.site_create",
    "directory.site_rename",
    // News and mandatory reads.
    "news.create",
    "news.update",
    "news.submit",
    "news.approve",
    "news.reject",
    "news.archive",
    "news.acknowledge",
    "news.receipts_reset",
    "news.reminder",
    "news.receipts_export",
    // E-mail.
    "mail.failed",
    "mail.retry",
    "mail.discard",
    "mail.test",
];

/// Every outcome an entry can record.
pub const OUTCOMES: &[&str] = &["success", "failure", "denied"];

pub fn is_action(name: &str) -> bool {
    ACTIONS.contains(&name)
}

pub fn is_outcome(name: &str) -> bool {
    OUTCOMES.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every action has its own heading in the catalogue auditors read, and the catalogue names
    /// no action the code cannot emit.
    #[test]
    fn events_md_lists_exactly_the_catalogue() {
        let doc = include_str!("../../audit/EVENTS.md");
        let documented: Vec<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("### `"))
            .filter_map(|l| l.split('`').next())
            .collect();
        assert_eq!(
            documented, ACTIONS,
            "audit/EVENTS.md headings differ from ACTIONS"
        );
    }

    #[test]
    fn names_are_unique_and_dotted() {
        let mut seen = std::collections::HashSet::new();
        for a in ACTIONS {
            assert!(seen.insert(a), "{a} twice");
            assert!(
                a.contains('.')
                    && a.chars()
                        .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_')
            );
        }
        assert!(is_action("auth.sign_in") && !is_action("auth.sign_in "));
        assert!(is_outcome("denied") && !is_outcome("ok"));
    }
}
