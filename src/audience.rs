//! Audiences: who a news item, a page or a space is for. An audience is a set of rules — everyone,
//! a group (synced from the IdP or SCIM), a department (and everything under it), a site, or a
//! role — and an agent is in it when any rule matches them.
//!
//! Each rule is stored as a short text key (`everyone`, `group:12`, `department:3`, `site:4`,
//! `role:editor`) in a `<thing>_audience` table beside the thing it targets. An agent's own keys
//! are worked out once per request by [`AgentAudience::of_account`]; queries then keep only the
//! rows with at least one audience key among the agent's, so filtering happens in SQL and an
//! item outside the agent's audience is never even read. Keys are bound as one JSON array
//! parameter, which keeps every query's text static:
//!
//! - SQLite: `… audience_key IN (SELECT value FROM json_each($1))`
//! - PostgreSQL: `… audience_key IN (SELECT jsonb_array_elements_text($1::jsonb))`
//!
//! Department rules include sub-departments: an item for a directorate reaches its services,
//! because an agent's keys include every ancestor of their own department.

use std::collections::BTreeSet;

use crate::accounts::Role;
use crate::db::{Database, DbError};
use crate::with_db;

/// One rule of an audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    Everyone,
    Group(i64),
    Department(i64),
    Site(i64),
    Role(Role),
}

impl Rule {
    /// The stored form.
    pub fn key(&self) -> String {
        match self {
            Rule::Everyone => "everyone".to_owned(),
            Rule::Group(id) => format!("group:{id}"),
            Rule::Department(id) => format!("department:{id}"),
            Rule::Site(id) => format!("site:{id}"),
            Rule::Role(role) => format!("role:{}", role.as_str()),
        }
    }

    /// Reads a stored or submitted key; anything else is refused.
    pub fn parse(key: &str) -> Option<Self> {
        if key == "everyone" {
            return Some(Rule::Everyone);
        }
        let (kind, value) = key.split_once(':')?;
        let id = || {
            value
                .parse::<i64>()
                .ok()
                .filter(|id| *id > 0 && value.bytes().all(|b| b.is_ascii_digit()))
        };
        match kind {
            "group" => id().map(Rule::Group),
            "department" => id().map(Rule::Department),
            "site" => id().map(Rule::Site),
            "role" => Role::parse(value).map(Rule::Role),
            _ => None,
        }
    }
}

/// The audience keys one agent belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentAudience {
    keys: BTreeSet<String>,
}

impl AgentAudience {
    /// Builds the keys from what is known of the agent (used directly by tests and benches).
    pub fn from_rules(rules: impl IntoIterator<Item = Rule>) -> Self {
        let mut keys: BTreeSet<String> = rules.into_iter().map(|r| r.key()).collect();
        keys.insert(Rule::Everyone.key());
        Self { keys }
    }

    /// Reads the agent's groups, department and its ancestors, site and roles. A disabled
    /// account belongs to no audience at all, not even `everyone`.
    pub async fn of_account(db: &Database, account_id: i64) -> Result<Self, DbError> {
        // One round trip: every key the agent holds, plus a marker row that exists only while
        // the account is enabled. This runs on every page that filters by audience (the wall
        // among them), so it is one query rather than one per kind of rule.
        // UNION (not UNION ALL) in the recursive part stops on a cycle in the tree.
        let rows: Vec<String> = with_db!(db, pool => sqlx::query_scalar(
            "WITH RECURSIVE up(id) AS ( \
                 SELECT department_id FROM agent_profiles \
                  WHERE account_id = $1 AND department_id IS NOT NULL \
                 UNION \
                 SELECT d.parent_id FROM departments d JOIN up ON d.id = up.id \
                  WHERE d.parent_id IS NOT NULL) \
             SELECT 'group:' || CAST(group_id AS TEXT) FROM account_groups WHERE account_id = $1 \
             UNION ALL SELECT 'department:' || CAST(id AS TEXT) FROM up \
             UNION ALL SELECT 'site:' || CAST(site_id AS TEXT) FROM agent_profiles \
                        WHERE account_id = $1 AND site_id IS NOT NULL \
             UNION ALL SELECT 'role:' || role FROM account_roles WHERE account_id = $1 \
             UNION ALL SELECT '(enabled)' FROM accounts WHERE id = $1 AND disabled = FALSE"
        ).bind(account_id).fetch_all(pool).await?);
        if !rows.iter().any(|k| k == "(enabled)") {
            return Ok(Self {
                keys: BTreeSet::new(),
            });
        }
        // Every key goes through the parser, so only well-formed rules (and known roles) count.
        Ok(Self::from_rules(rows.iter().filter_map(|k| Rule::parse(k))))
    }

    /// The keys read with a session: `keys` space-separated (groups, departments, site), plus
    /// the account's roles. A disabled account holds none (its session is refused anyway).
    pub fn of_session(keys: &str, account: &crate::accounts::Account) -> Self {
        if account.disabled {
            return Self {
                keys: BTreeSet::new(),
            };
        }
        Self::from_rules(
            keys.split_ascii_whitespace()
                .filter_map(Rule::parse)
                .chain(account.roles.iter().map(|r| Rule::Role(*r))),
        )
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(String::as_str)
    }

    /// The keys as one JSON array, the single parameter audience-filtered queries bind.
    pub fn json(&self) -> String {
        serde_json::Value::from(self.keys.iter().cloned().collect::<Vec<_>>()).to_string()
    }

    /// Whether any of `rules` reaches this agent (for checks on one item already loaded).
    pub fn matches<'a>(&self, rules: impl IntoIterator<Item = &'a str>) -> bool {
        rules.into_iter().any(|r| self.keys.contains(r))
    }

    /// True for a disabled or unknown account.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_junk_is_refused() {
        for rule in [
            Rule::Everyone,
            Rule::Group(7),
            Rule::Department(3),
            Rule::Site(12),
            Rule::Role(Role::Editor),
        ] {
            assert_eq!(Rule::parse(&rule.key()), Some(rule));
        }
        for junk in [
            "",
            "group:",
            "group:-1",
            "group:0",
            "group:+3",
            "group:1 ",
            "role:root",
            "site:x",
            "everyone:1",
            "dept:1",
        ] {
            assert_eq!(Rule::parse(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn an_agent_matches_only_rules_they_hold() {
        let agent = AgentAudience::from_rules([Rule::Group(1), Rule::Department(5)]);
        assert!(agent.matches(["group:1"]));
        assert!(agent.matches(["everyone"]));
        assert!(!agent.matches(["group:2", "department:6"]));
        assert!(agent.json().contains("\"department:5\""));
    }
}
