//! The `BlobStore`: uploaded files (photos, images, attachments) kept outside the database,
//! content-addressed by SHA-256. Two backends, chosen once at start from `storage.blob_store`:
//!
//! - local: `<data_dir>/files/ab/cdef…`; a blob is written to a temporary file, synced and
//!   renamed, so a crash never leaves a half-written blob under its final name;
//! - S3 ([`s3`]): objects `<prefix>ab/cdef…` in a bucket every node shares, written with a
//!   checksum the server verifies.
//!
//! Either way the same bytes are stored once, and a read re-hashes the bytes and refuses a blob
//! that no longer matches its id, so an altered file is never served. Backups pack the blobs as
//! `files/ab/cdef…` whichever the backend, so an archive restores to either.
//!
//! The store has no access control of its own: each capability serves its blobs from its own
//! routes, after its own authorization check, and the database row that refers to a blob is
//! what grants access to it.

pub mod s3;
pub mod sniff;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

pub use sniff::MediaType;

use crate::config::{BlobStoreKind, Config, ConfigError};

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob store: {0}")]
    Io(String),
    #[error("not a blob id")]
    BadId,
    /// The store cannot be reached or refuses us (S3 down, bad credentials): a 503 for the
    /// visitor, the detail in the log.
    #[error("blob store unavailable: {0}")]
    Unavailable(String),
    /// The bytes read no longer hash to the blob's id.
    #[error("blob {0} does not match its hash: altered in the store")]
    Altered(String),
}

/// A stored blob: its SHA-256 (hex, the id), its size and its sniffed type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub sha256: String,
    pub size: u64,
    pub media_type: MediaType,
}

/// The store, built once at start and shared (cloning is cheap).
#[derive(Debug, Clone)]
pub struct BlobStore {
    backend: Backend,
}

#[derive(Debug, Clone)]
enum Backend {
    Local(LocalStore),
    S3(Arc<s3::S3Store>),
}

/// `<data_dir>/files`.
#[derive(Debug, Clone)]
struct LocalStore {
    root: PathBuf,
}

/// Whether `id` is a blob id: 64 lowercase hex digits.
pub fn is_blob_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `ab/cdef…`: where a blob lives under the store's root (a directory or a key prefix).
fn relative_key(sha256: &str) -> Result<String, BlobError> {
    if !is_blob_id(sha256) {
        return Err(BlobError::BadId);
    }
    let (dir, rest) = sha256.split_at(2);
    Ok(format!("{dir}/{rest}"))
}

/// The blob id a store-relative key `ab/cdef…` names, if it names one.
pub fn id_of_key(key: &str) -> Option<String> {
    let (dir, rest) = key.split_once('/')?;
    let id = format!("{dir}{rest}");
    (dir.len() == 2 && is_blob_id(&id)).then_some(id)
}

impl BlobStore {
    /// The store under `<data_dir>/files` (created on first write, owner-only).
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self {
            backend: Backend::Local(LocalStore {
                root: data_dir.join("files"),
            }),
        }
    }

    /// The store the configuration names; for S3, reads the secret key and the CA file.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        match (config.storage.blob_store, &config.storage.s3) {
            (BlobStoreKind::S3, Some(s3)) => Ok(Self {
                backend: Backend::S3(Arc::new(s3::S3Store::new(s3)?)),
            }),
            (BlobStoreKind::S3, None) => Err(ConfigError::Invalid {
                key: "storage.s3".into(),
                reason: "missing".into(),
            }),
            (BlobStoreKind::Local, _) => Ok(Self::in_data_dir(&config.storage.data_dir)),
        }
    }

    /// The S3 store, when that is the backend.
    pub fn s3(&self) -> Option<&s3::S3Store> {
        match &self.backend {
            Backend::S3(store) => Some(store),
            Backend::Local(_) => None,
        }
    }

    /// Where the blobs are, for messages.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Local(local) => local.root.display().to_string(),
            Backend::S3(store) => store.describe(),
        }
    }

    /// Stores `bytes` (already checked by the caller for size and type) and returns its id.
    pub async fn put(
        &self,
        bytes: Vec<u8>,
        media_type: MediaType,
    ) -> Result<StoredBlob, BlobError> {
        match &self.backend {
            Backend::Local(local) => {
                let store = local.clone();
                tokio::task::spawn_blocking(move || store.put_blocking(&bytes, media_type))
                    .await
                    .map_err(|e| BlobError::Io(e.to_string()))?
            }
            Backend::S3(store) => {
                let stored = StoredBlob {
                    sha256: hex::encode(Sha256::digest(&bytes)),
                    size: bytes.len() as u64,
                    media_type,
                };
                store.put(&relative_key(&stored.sha256)?, bytes).await?;
                Ok(stored)
            }
        }
    }

    /// Stores bytes that must hash to `sha256` (a restore putting an archive's files back).
    pub async fn put_expecting(&self, sha256: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        if hex::encode(Sha256::digest(&bytes)) != sha256 {
            return Err(BlobError::Altered(sha256.to_owned()));
        }
        // The media type is not stored with the bytes (the row referring to them holds it).
        self.put(bytes, MediaType::Text).await.map(|_| ())
    }

    /// Reads a blob back, checking that its bytes still hash to its id (a blob altered in the
    /// store is refused rather than served).
    pub async fn get(&self, sha256: &str) -> Result<Option<Vec<u8>>, BlobError> {
        let key = relative_key(sha256)?;
        let bytes = match &self.backend {
            Backend::Local(local) => local.read(&key).await?,
            Backend::S3(store) => store.get(&key).await?,
        };
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        if hex::encode(Sha256::digest(&bytes)) != sha256 {
            return Err(BlobError::Altered(format!(
                "{sha256} in {}",
                self.describe()
            )));
        }
        Ok(Some(bytes))
    }

    /// Whether the store can be used now, for readiness: the bucket answers (S3); the local
    /// directory needs no probe beyond the database's.
    pub async fn ping(&self) -> Result<(), BlobError> {
        match &self.backend {
            Backend::Local(_) => Ok(()),
            Backend::S3(store) => store.ping().await,
        }
    }
}

impl LocalStore {
    fn path_of(&self, sha256: &str) -> Result<PathBuf, BlobError> {
        Ok(self.root.join(relative_key(sha256)?))
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

    async fn read(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        let path = self.root.join(key);
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BlobError::Io(format!("{}: {e}", path.display()))),
        }
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
        let Backend::Local(local) = &store.backend else {
            unreachable!()
        };
        let path = local.path_of(&a.sha256).unwrap();
        std::fs::write(&path, b"HELLO").unwrap();
        assert!(matches!(
            store.get(&a.sha256).await,
            Err(BlobError::Altered(_))
        ));
        assert_eq!(id_of_key(&relative_key(&a.sha256).unwrap()), Some(a.sha256));
        assert_eq!(id_of_key("2026/photos.png"), None);
    }
}
