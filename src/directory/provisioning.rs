//! Placement from the directory: when a SCIM User (POST, PUT or PATCH) carries `title` and the
//! enterprise extension (`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`,
//! RFC 7643 §4.3: `department`, `manager.value`), the agent's title, department and manager
//! follow it. A department unknown by name is created at the top of the tree; a manager is
//! named by their SCIM id. The change and its audit entries commit together, right after the
//! SCIM write they come with.
//!
//! A PATCH `remove` of `title`, `department` or `manager` clears it (RFC 7644 §3.5.2.2).
//!
//! Values that are not usable (wrong type, too long, an unknown manager, a manager link that
//! would close a loop) are left out rather than refusing the User: the directory stays the
//! authority on the account, and the placement is best effort.

use serde_json::{Map, Value, json};

use crate::db::{Database, DbError};
use crate::directory::people;
use crate::security_events::{self, Actor};
use crate::with_tx;

pub const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const MAX_CHARS: usize = 200;

/// What a User says about the agent's placement; `None`: not said.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ScimPlacement {
    pub title: Option<String>,
    pub department: Option<String>,
    pub manager_scim_id: Option<String>,
    /// Cleared by a PATCH `remove` (and not set again by a later operation of the same PATCH).
    pub remove_title: bool,
    pub remove_department: bool,
    pub remove_manager: bool,
}

fn text(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.chars().count() <= MAX_CHARS)
        .filter(|s| !s.chars().any(char::is_control))
        .map(str::to_owned)
}

fn get_ci<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

impl ScimPlacement {
    pub fn of(body: &Map<String, Value>) -> Self {
        let extension = get_ci(body, ENTERPRISE_URN).and_then(Value::as_object);
        Self {
            title: text(get_ci(body, "title")),
            department: extension.and_then(|e| text(get_ci(e, "department"))),
            manager_scim_id: extension
                .and_then(|e| get_ci(e, "manager"))
                .and_then(Value::as_object)
                .and_then(|m| text(get_ci(m, "value"))),
            ..Self::default()
        }
    }

    /// The placement set by a PATCH (RFC 7644 §3.5.2): `add` and `replace` operations on
    /// `title`, the extension's `department` and `manager` (or `manager.value`), with a path or
    /// inside a path-less value, and `remove` operations on them, in order.
    pub fn of_patch(body: &Map<String, Value>) -> Self {
        let mut out = Self::default();
        let operations = get_ci(body, "Operations").and_then(Value::as_array);
        for op in operations
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
        {
            let kind = get_ci(op, "op").and_then(Value::as_str).unwrap_or_default();
            let path = get_ci(op, "path").and_then(Value::as_str).map(str::trim);
            if kind.eq_ignore_ascii_case("remove") {
                out.remove(path.unwrap_or_default());
                continue;
            }
            if !kind.eq_ignore_ascii_case("add") && !kind.eq_ignore_ascii_case("replace") {
                continue;
            }
            let value = get_ci(op, "value");
            let Some(path) = path.filter(|p| !p.is_empty()) else {
                if let Some(obj) = value.and_then(Value::as_object) {
                    out.merge(Self::of(obj));
                }
                continue;
            };
            let path = path.to_ascii_lowercase();
            let attribute = path
                .strip_prefix(&ENTERPRISE_URN.to_ascii_lowercase())
                .map(|rest| rest.trim_start_matches(':'));
            let mut set = Self::default();
            match (path.as_str(), attribute) {
                // The whole extension as the value.
                (_, Some("")) => {
                    if let Some(obj) = value {
                        let mut wrapped = Map::new();
                        wrapped.insert(ENTERPRISE_URN.to_owned(), obj.clone());
                        set = Self::of(&wrapped);
                    }
                }
                ("title" | "urn:ietf:params:scim:schemas:core:2.0:user:title", _) => {
                    set.title = text(value);
                }
                (_, Some("department")) => set.department = text(value),
                (_, Some("manager.value")) => set.manager_scim_id = text(value),
                (_, Some("manager")) => {
                    set.manager_scim_id = match value {
                        Some(Value::Object(m)) => text(get_ci(m, "value")),
                        other => text(other),
                    };
                }
                _ => {}
            }
            out.merge(set);
        }
        out
    }

    fn merge(&mut self, other: Self) {
        self.remove_title &= other.title.is_none();
        self.remove_department &= other.department.is_none();
        self.remove_manager &= other.manager_scim_id.is_none();
        self.title = other.title.or(self.title.take());
        self.department = other.department.or(self.department.take());
        self.manager_scim_id = other.manager_scim_id.or(self.manager_scim_id.take());
    }

    /// A `remove` operation on `path`: what it names is cleared.
    fn remove(&mut self, path: &str) {
        let path = path.to_ascii_lowercase();
        let enterprise = ENTERPRISE_URN.to_ascii_lowercase();
        let attribute = path
            .strip_prefix(&enterprise)
            .map(|rest| rest.trim_start_matches(':'));
        match (path.as_str(), attribute) {
            ("title" | "urn:ietf:params:scim:schemas:core:2.0:user:title", _) => {
                self.title = None;
                self.remove_title = true;
            }
            (_, Some("department")) => {
                self.department = None;
                self.remove_department = true;
            }
            (_, Some("manager" | "manager.value")) => {
                self.manager_scim_id = None;
                self.remove_manager = true;
            }
            (_, Some("")) => {
                self.remove(&format!("{enterprise}:department"));
                self.remove(&format!("{enterprise}:manager"));
            }
            _ => {}
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Applies `placement` to the account provisioned as `account_id`.
pub async fn apply(
    db: &Database,
    actor: &Actor,
    account_id: i64,
    placement: &ScimPlacement,
) -> Result<(), DbError> {
    if placement.is_empty() {
        return Ok(());
    }
    let before = people::raw_profile(db, account_id).await?;
    let mut after = before.clone();
    if placement.remove_title {
        after.title = None;
    }
    if placement.remove_department {
        after.department_id = None;
    }
    if placement.remove_manager {
        after.manager_id = None;
    }
    if let Some(title) = &placement.title {
        after.title = Some(title.clone());
    }
    if let Some(scim_id) = &placement.manager_scim_id {
        let manager: Option<i64> = crate::with_db!(db, pool => sqlx::query_scalar(
            "SELECT account_id FROM scim_users WHERE id = $1"
        ).bind(scim_id).fetch_optional(pool).await?);
        match manager {
            Some(m)
                if m != account_id && !people::manager_would_cycle(db, account_id, m).await? =>
            {
                after.manager_id = Some(m);
            }
            _ => tracing::warn!(account_id, "SCIM manager left out: unknown or a loop"),
        }
    }
    let mut tx = db.begin().await?;
    if let Some(name) = &placement.department {
        // The first department of that name, wherever it is; else a new one at the top.
        let existing: Option<i64> = with_tx!(&mut tx, conn => sqlx::query_scalar(
            "SELECT id FROM departments WHERE name = $1 ORDER BY parent_id IS NOT NULL, id LIMIT 1"
        ).bind(name).fetch_optional(conn).await?);
        let id = match existing {
            Some(id) => id,
            None => {
                let id =
                    crate::directory::structure::insert_department(&mut tx, name, None).await?;
                security_events::record(
                    &mut tx,
                    actor,
                    "directory.department_create",
                    Some(format!("department:{id}")),
                    "success",
                    json!({ "name": name, "parent_id": null, "by": "scim" }),
                )
                .await?;
                id
            }
        };
        after.department_id = Some(id);
    }
    if after != before {
        people::save_profile(&mut tx, account_id, &after).await?;
        let mut changes = Map::new();
        for (name, b, a) in [
            ("title", json!(before.title), json!(after.title)),
            (
                "department_id",
                json!(before.department_id),
                json!(after.department_id),
            ),
            (
                "manager_id",
                json!(before.manager_id),
                json!(after.manager_id),
            ),
        ] {
            if b != a {
                changes.insert(name.to_owned(), json!({ "before": b, "after": a }));
            }
        }
        security_events::record(
            &mut tx,
            actor,
            "directory.profile_update",
            Some(format!("account:{account_id}")),
            "success",
            json!({ "by": "scim", "changes": changes }),
        )
        .await?;
    }
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_title_department_and_manager() {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_URN],
            "userName": "a", "title": " Comptable ",
            ENTERPRISE_URN: { "department": "Finances", "manager": { "value": "abc" } }
        });
        let placement = ScimPlacement::of(body.as_object().unwrap());
        assert_eq!(placement.title.as_deref(), Some("Comptable"));
        assert_eq!(placement.department.as_deref(), Some("Finances"));
        assert_eq!(placement.manager_scim_id.as_deref(), Some("abc"));
        let junk = json!({ "title": 3, ENTERPRISE_URN: { "department": "x".repeat(201) } });
        assert!(ScimPlacement::of(junk.as_object().unwrap()).is_empty());
    }

    #[test]
    fn reads_patch_operations() {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                { "op": "Replace", "path": "title", "value": "Chef" },
                { "op": "add", "path": format!("{ENTERPRISE_URN}:manager"), "value": { "value": "m1" } },
                { "op": "replace", "value": { ENTERPRISE_URN: { "department": "Culture" } } },
                { "op": "remove", "path": format!("{ENTERPRISE_URN}:department") }
            ]
        });
        let placement = ScimPlacement::of_patch(body.as_object().unwrap());
        assert_eq!(placement.title.as_deref(), Some("Chef"));
        assert_eq!(placement.manager_scim_id.as_deref(), Some("m1"));
        assert_eq!(placement.department, None);
        assert!(placement.remove_department && !placement.remove_title);
        // A removal followed by a new value keeps the value.
        let body = json!({ "Operations": [
            { "op": "remove", "path": "title" },
            { "op": "add", "path": "title", "value": "Adjointe" }
        ] });
        let placement = ScimPlacement::of_patch(body.as_object().unwrap());
        assert_eq!(placement.title.as_deref(), Some("Adjointe"));
        assert!(!placement.remove_title);
    }
}
