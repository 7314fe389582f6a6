//! The `BlobStore`: uploaded files (photos, images, attachments) kept outside the database,
//! content-addressed by SHA-256 under `<data_dir>/files/ab/cdef…`. The same bytes are stored
//! once; a blob is written to a temporary file, synced and renamed, so a crash never leaves a
//! half-written blob under its final name. Backups pack this directory with the database.
//!
//! The store has no access control of its own: each capability serves its blobs from its own
//! routes, after its own authorization check, and the database row that refers to a blob is
//! what grants access to it.

pub mod sniff;

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use sniff::MediaType;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob store: {0}")]
    Io(String),
    #[error("not a blob id")]
    BadId,
}

/// A stored blob: its SHA-256 (hex, the id), its size and its sniffed type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub sha256: String,
    pub size: u64,
    pub media_type: MediaType,
}

#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// The store under `<data_dir>/files` (created on first write, owner-only).
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self {
            root: data_dir.join("files"),
        }
    }

    fn path_of(&self, sha256: &str) -> Result<PathBuf, BlobError> {
        if sha256.len() != 64
            || !sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(BlobError::BadId);
        }
        let (dir, rest) = sha256.split_at(2);
        Ok(self.root.join(dir).join(rest))
    }

    /// Stores `bytes` (already checked by the caller for size and type) and returns its id.
    pub async fn put(
        &self,
        bytes: Vec<u8>,
        media_type: MediaType,
    ) -> Result<StoredBlob, BlobError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.put_blocking(&bytes, media_type))
            .await
            .map_err(|e| BlobError::Io(e.to_string()))?
    }

    fn put_blocking(&self, bytes: &[u8], media_type: MediaType) -> Result<StoredBlob, BlobError> {
        let sha256 = hex::encode(Sha256::digest(bytes));
        let path = self.path_of(&sha256)?;
        let stored = StoredBlob {
            sha256,
            size: bytes.len() as u64,
            media_type,
        };
        if path.exists() {
            return Ok(stored);
        }
        let dir = path
            .parent()
            .ok_or_else(|| BlobError::Io("blob path has no parent".into()))?;
        crate::db::create_private_dir(dir).map_err(|e| BlobError::Io(e.to_string()))?;
        let io = |e: std::io::Error| BlobError::Io(format!("{}: {e}", dir.display()));
        let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        temp.write_all(bytes).map_err(io)?;
        temp.as_file().sync_all().map_err(io)?;
        temp.persist(&path).map_err(|e| io(e.error))?;
        // The rename is durable only once the directory itself is synced.
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
        Ok(stored)
    }

    /// Reads a blob back, checking that its bytes still hash to its id (a blob altered on
    /// disk is refused rather than served).
    pub async fn get(&self, sha256: &str) -> Result<Option<Vec<u8>>, BlobError> {
        let path = self.path_of(sha256)?;
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(BlobError::Io(format!("{}: {e}", path.display()))),
        };
        if hex::encode(Sha256::digest(&bytes)) != sha256 {
            return Err(BlobError::Io(format!(
                "{} does not match its hash: altered on disk",
                path.display()
            )));
        }
        Ok(Some(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stores_once_reads_back_and_refuses_altered_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::in_data_dir(dir.path());
        let a = store.put(b"hello".to_vec(), MediaType::Text).await.unwrap();
        let b = store.put(b"hello".to_vec(), MediaType::Text).await.unwrap();
        assert_eq!(a, b);
        assert_eq!(a.size, 5);
        assert_eq!(store.get(&a.sha256).await.unwrap().unwrap(), b"hello");
        assert_eq!(store.get(&"0".repeat(64)).await.unwrap(), None);
        assert!(matches!(
            store.get("../etc/passwd").await,
            Err(BlobError::BadId)
        ));
        let path = store.path_of(&a.sha256).unwrap();
        std::fs::write(&path, b"HELLO").unwrap();
        assert!(store.get(&a.sha256).await.is_err());
    }
}
