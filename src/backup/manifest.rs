//! The two signed manifests of a backup.
//!
//! - Inside the archive, as its last member, `manifest.json`: what the archive holds (every
//!   member's size and SHA-256), where it comes from (instance, versions) and the latest signed
//!   audit checkpoint, signed.
//! - Beside the archive, `<archive>.manifest.json` (the envelope): the same manifest plus the
//!   archive's file name, size and SHA-256, signed again. It lets anyone with the public key
//!   check an archive is complete and untouched without decrypting it.
//!
//! A signature covers a context line naming the document, then the document re-encoded by
//! serde_json from its typed fields (fixed field order, integers only). A verifier decodes,
//! re-encodes and checks: an edited field changes the bytes, an added field is refused by
//! `deny_unknown_fields`. The context lines differ from the audit checkpoint's
//! (`beffroi-audit-checkpoint/v1`), so a signature made for one can never pass as the other.

use std::path::Path;

use ring::signature::{ED25519, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use super::BackupError;
use crate::audit::checkpoint::{Checkpoint, CheckpointSigner};

pub const FORMAT_VERSION: u32 = 1;
pub const MANIFEST_CONTEXT: &str = "beffroi-backup-manifest/v1";
pub const ENVELOPE_CONTEXT: &str = "beffroi-backup-envelope/v1";
/// Name of the manifest member, always the archive's last.
pub const MANIFEST_MEMBER: &str = "manifest.json";
/// The largest manifest accepted when reading an archive: it is held in memory, and a forged
/// size must not make us allocate without bound.
pub const MAX_MANIFEST_BYTES: u64 = 32 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`, and the same instant in seconds since the epoch.
    pub created: String,
    pub created_unix: i64,
    pub beffroi_version: String,
    /// The highest database migration applied when the snapshot was taken.
    pub schema_version: i64,
    /// "sqlite" or "postgres".
    pub backend: String,
    pub instance_id: String,
    /// Ed25519 public key (hex) of the key that signs this manifest.
    pub signing_key: String,
    /// The age recipients the archive was encrypted to.
    pub recipients: Vec<String>,
    /// Every member of the archive except `manifest.json`, in archive order.
    pub members: Vec<Member>,
    /// The latest signed audit checkpoint in the snapshot.
    pub audit_checkpoint: Option<AuditCheckpoint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditCheckpoint {
    pub tree_size: u64,
    pub root: String,
    pub time_us: i64,
    pub public_key: String,
    pub signature: String,
}

impl AuditCheckpoint {
    /// Whether the checkpoint's own signature holds.
    pub fn is_valid(&self) -> bool {
        let (Ok(root), Ok(key), Ok(sig)) = (
            hex::decode(&self.root),
            hex::decode(&self.public_key),
            hex::decode(&self.signature),
        ) else {
            return false;
        };
        let Ok(root) = <[u8; 32]>::try_from(root.as_slice()) else {
            return false;
        };
        Checkpoint {
            tree_size: self.tree_size,
            root,
            time_us: self.time_us,
        }
        .verify(&key, &sig)
    }
}

/// The member inside the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedManifest {
    pub manifest: Manifest,
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveInfo {
    /// File name only: an archive renamed or moved is still checked by content.
    pub file: String,
    pub size: u64,
    pub sha256: String,
}

/// The file beside the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    pub manifest: Manifest,
    pub archive: ArchiveInfo,
    pub signature: String,
}

#[derive(Serialize)]
struct EnvelopeBody<'a> {
    manifest: &'a Manifest,
    archive: &'a ArchiveInfo,
}

fn signed_bytes<T: Serialize>(context: &str, body: &T) -> Result<Vec<u8>, BackupError> {
    let mut out = format!("{context}\n").into_bytes();
    serde_json::to_writer(&mut out, body)
        .map_err(|e| BackupError::Encrypt(format!("cannot encode the manifest: {e}")))?;
    Ok(out)
}

fn check_signature(
    message: &[u8],
    signature_hex: &str,
    key: &[u8; 32],
) -> Result<bool, BackupError> {
    let Ok(signature) = hex::decode(signature_hex) else {
        return Ok(false);
    };
    Ok(UnparsedPublicKey::new(&ED25519, key)
        .verify(message, &signature)
        .is_ok())
}

impl Manifest {
    pub fn sign(self, signer: &CheckpointSigner) -> Result<SignedManifest, BackupError> {
        let message = signed_bytes(MANIFEST_CONTEXT, &self)?;
        let signature = hex::encode(signer.sign_message(&message));
        Ok(SignedManifest {
            manifest: self,
            signature,
        })
    }

    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    /// Checks that the manifest says it was signed by `expected` and that the checkpoint it
    /// carries is sound; the caller checks the signature itself.
    fn check_origin(&self, expected: &[u8; 32]) -> Result<(), BackupError> {
        if self.format != FORMAT_VERSION {
            return Err(BackupError::Refused(format!(
                "manifest format {} is not one this release reads ({FORMAT_VERSION})",
                self.format
            )));
        }
        let expected_hex = hex::encode(expected);
        if self.signing_key != expected_hex {
            return Err(BackupError::Refused(format!(
                "the manifest is signed by another key ({}), not the expected key {expected_hex}",
                self.signing_key
            )));
        }
        if let Some(cp) = &self.audit_checkpoint {
            if !cp.is_valid() {
                return Err(BackupError::Refused(format!(
                    "the audit checkpoint in the manifest (tree size {}) has a bad signature",
                    cp.tree_size
                )));
            }
        }
        Ok(())
    }
}

impl SignedManifest {
    pub fn verify(&self, expected: &[u8; 32]) -> Result<(), BackupError> {
        self.manifest.check_origin(expected)?;
        let message = signed_bytes(MANIFEST_CONTEXT, &self.manifest)?;
        if !check_signature(&message, &self.signature, expected)? {
            return Err(BackupError::Refused(
                "the manifest inside the archive does not match its signature (edited)".into(),
            ));
        }
        Ok(())
    }
}

impl Envelope {
    pub fn sign(
        manifest: Manifest,
        archive: ArchiveInfo,
        signer: &CheckpointSigner,
    ) -> Result<Self, BackupError> {
        let message = signed_bytes(
            ENVELOPE_CONTEXT,
            &EnvelopeBody {
                manifest: &manifest,
                archive: &archive,
            },
        )?;
        let signature = hex::encode(signer.sign_message(&message));
        Ok(Self {
            manifest,
            archive,
            signature,
        })
    }

    /// Re-signs after a change (tests forge envelopes with it; the server never edits one).
    pub fn resign(self, signer: &CheckpointSigner) -> Result<Self, BackupError> {
        Self::sign(self.manifest, self.archive, signer)
    }

    /// Checks the envelope's signature with `expected`, naming what is wrong.
    pub fn verify(&self, expected: &[u8; 32]) -> Result<(), BackupError> {
        self.manifest.check_origin(expected)?;
        let message = signed_bytes(
            ENVELOPE_CONTEXT,
            &EnvelopeBody {
                manifest: &self.manifest,
                archive: &self.archive,
            },
        )?;
        if !check_signature(&message, &self.signature, expected)? {
            return Err(BackupError::Refused(
                "the manifest beside the archive does not match its signature (it was edited, \
                 or signed by another key)"
                    .into(),
            ));
        }
        Ok(())
    }

    pub fn read(path: &Path) -> Result<Self, BackupError> {
        let meta = std::fs::metadata(path).map_err(|e| {
            BackupError::Refused(format!(
                "{}: the signed manifest beside the archive cannot be read ({e})",
                path.display()
            ))
        })?;
        if meta.len() > MAX_MANIFEST_BYTES {
            return Err(BackupError::Refused(format!(
                "{}: {} bytes is too large for a manifest",
                path.display(),
                meta.len()
            )));
        }
        let bytes = std::fs::read(path).map_err(BackupError::io(path))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            BackupError::Refused(format!(
                "{}: not a Beffroi backup manifest ({e})",
                path.display()
            ))
        })
    }

    pub fn write(&self, path: &Path) -> Result<(), BackupError> {
        let mut bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| BackupError::Encrypt(format!("cannot encode the manifest: {e}")))?;
        bytes.push(b'\n');
        super::write_private_atomic(path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(signer: &CheckpointSigner) -> Manifest {
        Manifest {
            format: FORMAT_VERSION,
            created: "2026-11-25T17:00:00Z".into(),
            created_unix: 1_795_626_000,
            beffroi_version: "0.1.0".into(),
            schema_version: 5,
            backend: "sqlite".into(),
            instance_id: "00112233445566778899aabbccddeeff".into(),
            signing_key: hex::encode(signer.public_key()),
            recipients: vec!["age1example".into()],
            members: vec![Member {
                name: "database/beffroi.db".into(),
                size: 4096,
                sha256: "ab".repeat(32),
            }],
            audit_checkpoint: None,
        }
    }

    #[test]
    fn envelope_signature_covers_every_field_and_names_a_foreign_key() {
        let signer = CheckpointSigner::from_seed(&[1u8; 32]).unwrap();
        let key = signer.public_key();
        let archive = ArchiveInfo {
            file: "a.tar.age".into(),
            size: 10,
            sha256: "cd".repeat(32),
        };
        let env = Envelope::sign(manifest(&signer), archive, &signer).unwrap();
        env.verify(&key).unwrap();
        // Round trip through the pretty file form keeps it valid.
        let text = serde_json::to_string_pretty(&env).unwrap();
        let back: Envelope = serde_json::from_str(&text).unwrap();
        back.verify(&key).unwrap();

        let mut edited = env.clone();
        edited.archive.size = 11;
        assert!(
            edited
                .verify(&key)
                .unwrap_err()
                .to_string()
                .contains("edited")
        );
        let mut edited = env.clone();
        edited.manifest.members[0].sha256 = "00".repeat(32);
        assert!(edited.verify(&key).is_err());

        let other = CheckpointSigner::from_seed(&[2u8; 32]).unwrap();
        let mut forged = env.clone();
        forged.manifest.signing_key = hex::encode(other.public_key());
        let forged = forged.resign(&other).unwrap();
        let err = forged.verify(&key).unwrap_err().to_string();
        assert!(err.contains("signed by another key"), "{err}");
        // Unknown fields are refused rather than ignored.
        let extra = text.replacen("{", "{\"extra\": 1,", 1);
        assert!(serde_json::from_str::<Envelope>(&extra).is_err());
    }

    #[test]
    fn inner_and_outer_signatures_are_not_interchangeable() {
        let signer = CheckpointSigner::from_seed(&[1u8; 32]).unwrap();
        let m = manifest(&signer).sign(&signer).unwrap();
        m.verify(&signer.public_key()).unwrap();
        let archive = ArchiveInfo {
            file: "a".into(),
            size: 1,
            sha256: String::new(),
        };
        let env = Envelope {
            manifest: m.manifest.clone(),
            archive,
            signature: m.signature.clone(),
        };
        assert!(env.verify(&signer.public_key()).is_err());
    }
}
