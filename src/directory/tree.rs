//! The department tree and the site list held in memory for one request: a few hundred rows at
//! most, read in one query each. Walks guard against cycles (the database forbids only a
//! department being its own parent), so a corrupted tree can never make a page loop.

use std::collections::{BTreeMap, BTreeSet};

use crate::db::{Database, DbError};
use crate::with_db;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Department {
    pub id: i64,
    pub name: String,
    pub parent_id: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct DepartmentTree {
    by_id: BTreeMap<i64, Department>,
}

impl DepartmentTree {
    pub async fn load(db: &Database) -> Result<Self, DbError> {
        let rows: Vec<(i64, String, Option<i64>)> = with_db!(db, pool => sqlx::query_as(
            "SELECT id, name, parent_id FROM departments"
        ).fetch_all(pool).await?);
        Ok(Self::from_rows(rows))
    }

    pub fn from_rows(rows: Vec<(i64, String, Option<i64>)>) -> Self {
        Self {
            by_id: rows
                .into_iter()
                .map(|(id, name, parent_id)| {
                    (
                        id,
                        Department {
                            id,
                            name,
                            parent_id,
                        },
                    )
                })
                .collect(),
        }
    }

    pub fn get(&self, id: i64) -> Option<&Department> {
        self.by_id.get(&id)
    }

    /// `id` and its ancestors, nearest first; stops at a cycle.
    pub fn ancestors_and_self(&self, id: i64) -> Vec<i64> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        let mut current = Some(id);
        while let Some(id) = current {
            if !seen.insert(id) || !self.by_id.contains_key(&id) {
                break;
            }
            out.push(id);
            current = self.by_id.get(&id).and_then(|d| d.parent_id);
        }
        out
    }

    /// `id` and everything under it.
    pub fn subtree(&self, id: i64) -> BTreeSet<i64> {
        let mut out = BTreeSet::new();
        let mut pending = vec![id];
        while let Some(id) = pending.pop() {
            if out.insert(id) {
                pending.extend(self.children(Some(id)).iter().map(|d| d.id));
            }
        }
        out
    }

    /// The departments on a viewer's branch: their own, its ancestors and its descendants.
    pub fn branch(&self, id: i64) -> BTreeSet<i64> {
        let mut out = self.subtree(id);
        out.extend(self.ancestors_and_self(id));
        out
    }

    /// The path from the top, e.g. "Direction des finances › Comptabilité".
    pub fn path(&self, id: i64) -> String {
        let mut names: Vec<&str> = self
            .ancestors_and_self(id)
            .iter()
            .filter_map(|id| self.by_id.get(id).map(|d| d.name.as_str()))
            .collect();
        names.reverse();
        names.join(" › ")
    }

    /// Direct children of `parent` (or the top-level departments), by name.
    pub fn children(&self, parent: Option<i64>) -> Vec<&Department> {
        let mut out: Vec<&Department> = self
            .by_id
            .values()
            .filter(|d| d.parent_id == parent)
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Every department in tree order with its depth, for nested lists and indented selects.
    /// Departments caught in a cycle (unreachable from the top) come last, at depth 0.
    pub fn flattened(&self) -> Vec<(usize, &Department)> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        let mut stack: Vec<(usize, &Department)> = self
            .children(None)
            .into_iter()
            .rev()
            .map(|d| (0, d))
            .collect();
        while let Some((depth, d)) = stack.pop() {
            if !seen.insert(d.id) {
                continue;
            }
            out.push((depth, d));
            for child in self.children(Some(d.id)).into_iter().rev() {
                stack.push((depth + 1, child));
            }
        }
        for d in self.by_id.values() {
            if !seen.contains(&d.id) {
                out.push((0, d));
            }
        }
        out
    }

    /// Whether putting `id` under `new_parent` would make a cycle.
    pub fn would_cycle(&self, id: i64, new_parent: Option<i64>) -> bool {
        new_parent.is_some_and(|p| self.ancestors_and_self(p).contains(&id) || p == id)
    }
}

/// Sites by name, as (id, name).
pub async fn sites(db: &Database) -> Result<Vec<(i64, String)>, DbError> {
    Ok(with_db!(db, pool => sqlx::query_as(
        "SELECT id, name FROM sites ORDER BY name"
    ).fetch_all(pool).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_branches_and_cycles() {
        let tree = DepartmentTree::from_rows(vec![
            (1, "Finances".into(), None),
            (2, "Comptabilité".into(), Some(1)),
            (3, "Paie".into(), Some(2)),
            (4, "Culture".into(), None),
            (5, "A".into(), Some(6)),
            (6, "B".into(), Some(5)),
        ]);
        assert_eq!(tree.path(3), "Finances › Comptabilité › Paie");
        assert_eq!(tree.branch(2), BTreeSet::from([1, 2, 3]));
        assert!(tree.would_cycle(1, Some(3)));
        assert!(!tree.would_cycle(4, Some(3)));
        // A cycle in stored data ends the walk instead of looping.
        assert_eq!(tree.ancestors_and_self(5), vec![5, 6]);
        assert_eq!(tree.flattened().len(), 6);
    }
}
