//! The branding every page needs, kept in memory so that a page costs no branding query.
//!
//! Staleness bound: the node where an administrator saves a change drops its copy as soon as
//! the change commits, so that node shows it on the very next page; every other node (several
//! nodes share one PostgreSQL) re-reads the row at most [`BrandingCache::TTL`] after it last
//! did, so it shows the change within that time. Pages carry versioned theme and image URLs,
//! so once a node shows the change, browsers fetch the new files at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::branding::{Branding, store};
use crate::db::{Database, DbError};

pub struct BrandingCache {
    ttl: Duration,
    slot: RwLock<Option<(Instant, Arc<Branding>)>>,
    /// Bumped by [`invalidate`](Self::invalidate): a read that started before a change must
    /// not put its older answer back after the change dropped the copy.
    generation: AtomicU64,
}

impl Default for BrandingCache {
    fn default() -> Self {
        Self::new(Self::TTL)
    }
}

impl BrandingCache {
    /// How long another node may keep showing the old branding after a change.
    pub const TTL: Duration = Duration::from_secs(5);

    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slot: RwLock::new(None),
            generation: AtomicU64::new(0),
        }
    }

    /// The current branding: the copy in memory while it is fresh, else one query.
    pub async fn get(&self, db: &Database) -> Result<Arc<Branding>, DbError> {
        {
            // A poisoned lock only means a panic elsewhere while writing an Arc: the value
            // is still whole.
            let slot = self.slot.read().unwrap_or_else(|e| e.into_inner());
            if let Some((at, branding)) = slot.as_ref() {
                if at.elapsed() < self.ttl {
                    return Ok(branding.clone());
                }
            }
        }
        let generation = self.generation.load(Ordering::Acquire);
        let fresh = Arc::new(store::load(db).await?);
        let mut slot = self.slot.write().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::Acquire) == generation {
            *slot = Some((Instant::now(), fresh.clone()));
        }
        Ok(fresh)
    }

    /// Drops the copy; call after a branding change commits.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let mut slot = self.slot.write().unwrap_or_else(|e| e.into_inner());
        *slot = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::SnapshotPolicy;

    async fn migrated(dir: &std::path::Path) -> Database {
        let db = Database::connect_sqlite(&dir.join("beffroi.db"), 2)
            .await
            .unwrap();
        let policy = SnapshotPolicy {
            dir: dir.to_path_buf(),
            pg_password: None,
            skip: true,
        };
        db.migrate(&policy).await.unwrap();
        db
    }

    async fn rename(db: &Database, name: &str) {
        crate::with_db!(db, pool => sqlx::query("UPDATE organisation SET name = $1 WHERE id = 1")
            .bind(name.to_owned()).execute(pool).await.map(|_| ()).unwrap());
    }

    /// Within the TTL a change made elsewhere (another node) is not seen; after invalidate, or
    /// with the TTL spent, it is.
    #[tokio::test]
    async fn keeps_a_copy_until_invalidated_or_expired() {
        let dir = tempfile::tempdir().unwrap();
        let db = migrated(dir.path()).await;
        let cache = BrandingCache::new(Duration::from_secs(3600));
        assert_eq!(cache.get(&db).await.unwrap().name, "Beffroi");
        rename(&db, "Autre nœud").await;
        assert_eq!(cache.get(&db).await.unwrap().name, "Beffroi");
        cache.invalidate();
        assert_eq!(cache.get(&db).await.unwrap().name, "Autre nœud");

        let expired = BrandingCache::new(Duration::ZERO);
        assert_eq!(expired.get(&db).await.unwrap().name, "Autre nœud");
        rename(&db, "Troisième").await;
        assert_eq!(expired.get(&db).await.unwrap().name, "Troisième");
    }
}
