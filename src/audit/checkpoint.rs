//! Signed checkpoints: a statement "the log had `tree_size` entries with Merkle root `root` at
//! `time_us`", signed with the server's Ed25519 key. Auditors keep checkpoints; a later log that
//! is not consistent with one they hold was rewritten.
//!
//! The signing key lives in the data directory as a PKCS#8 file readable by the service only; it
//! is created on first use and never leaves the server. Only the public key is exported.

use std::path::Path;

use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use crate::audit::merkle::Hash;

/// First line of every signed checkpoint: names the format, so that a signature made for one
/// purpose can never be replayed as another.
pub const CHECKPOINT_CONTEXT: &str = "beffroi-audit-checkpoint/v1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub tree_size: u64,
    pub root: Hash,
    /// Microseconds since the Unix epoch, UTC.
    pub time_us: i64,
}

impl Checkpoint {
    /// The exact bytes signed: four lines of ASCII, each ending in `\n`:
    /// the context, the tree size in decimal, the root in lowercase hex, the time in decimal.
    pub fn signed_message(&self) -> Vec<u8> {
        format!(
            "{CHECKPOINT_CONTEXT}\n{}\n{}\n{}\n",
            self.tree_size,
            hex::encode(self.root),
            self.time_us
        )
        .into_bytes()
    }

    /// Checks `signature` against an Ed25519 public key (32 bytes).
    pub fn verify(&self, public_key: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(&self.signed_message(), signature)
            .is_ok()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error("{path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("cannot create a signing key: {0}")]
    Generate(String),
}

pub struct CheckpointSigner {
    key: Ed25519KeyPair,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("public_key", &hex::encode(self.public_key()))
            .finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    /// Loads the key at `path`, creating it (mode 0600) if there is none. A key file that other
    /// users can read is refused: whoever holds it can forge checkpoints.
    pub fn load_or_create(path: &Path) -> Result<Self, SignerError> {
        let error = |reason: String| SignerError::KeyFile {
            path: path.display().to_string(),
            reason,
        };
        if !path.exists() {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|e| SignerError::Generate(e.to_string()))?;
            write_private(path, pkcs8.as_ref()).map_err(|e| error(e.to_string()))?;
        }
        crate::config::check_private_file(path).map_err(|e| error(e.to_string()))?;
        let bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
        let key = Ed25519KeyPair::from_pkcs8(&bytes)
            .map_err(|e| error(format!("not an Ed25519 PKCS#8 key: {e}")))?;
        Ok(Self { key })
    }

    /// A signer from a fixed 32-byte seed (tests and fixtures only).
    pub fn from_seed(seed: &[u8; 32]) -> Result<Self, SignerError> {
        let key = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|e| SignerError::Generate(e.to_string()))?;
        Ok(Self { key })
    }

    pub fn public_key(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.key.public_key().as_ref());
        out
    }

    pub fn sign(&self, checkpoint: &Checkpoint) -> [u8; 64] {
        self.sign_message(&checkpoint.signed_message())
    }

    /// Signs other documents with the same key (backup manifests). `message` must begin with its
    /// own context line, distinct from [`CHECKPOINT_CONTEXT`], so that a signature made for one
    /// purpose never verifies as another.
    pub fn sign_message(&self, message: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.key.sign(message).as_ref());
        out
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint() -> Checkpoint {
        let mut root = [0u8; 32];
        root.copy_from_slice(
            &hex::decode("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
                .unwrap(),
        );
        Checkpoint {
            tree_size: 8,
            root,
            time_us: 1_764_079_200_000_000,
        }
    }

    #[test]
    fn signed_message_is_the_documented_text() {
        assert_eq!(
            String::from_utf8(checkpoint().signed_message()).unwrap(),
            "beffroi-audit-checkpoint/v1\n8\n5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328\n1764079200000000\n"
        );
    }

    #[test]
    fn signatures_verify_and_any_change_breaks_them() {
        let signer = CheckpointSigner::from_seed(&[7u8; 32]).unwrap();
        let cp = checkpoint();
        let sig = signer.sign(&cp);
        assert!(cp.verify(&signer.public_key(), &sig));
        let mut bigger = cp.clone();
        bigger.tree_size = 9;
        assert!(!bigger.verify(&signer.public_key(), &sig));
        let mut other_root = cp.clone();
        other_root.root[0] ^= 1;
        assert!(!other_root.verify(&signer.public_key(), &sig));
        let other_key = CheckpointSigner::from_seed(&[8u8; 32]).unwrap();
        assert!(!cp.verify(&other_key.public_key(), &sig));
    }

    #[test]
    fn key_file_is_created_private_and_reloaded_and_refused_when_readable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit-signing-key.pk8");
        let first = CheckpointSigner::load_or_create(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let again = CheckpointSigner::load_or_create(&path).unwrap();
        assert_eq!(first.public_key(), again.public_key());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = CheckpointSigner::load_or_create(&path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }
}
