//! The two signed manifests of a backup (src/backup/manifest.rs): `<archive>.manifest.json`
//! beside the archive, read before anything is decrypted, and `manifest.json` inside it. Both
//! come from wherever the backup was stored, so they are parsed and checked as hostile input.
//!
//! Invariants: a manifest reads back as itself after being written; a signature check never
//! panics, whatever the key, the hex or the checkpoint hold; a manifest that verifies under a
//! key was signed by that key (re-signing gives the same signature), and one edited field makes
//! it fail.

#![no_main]

use beffroi::audit::checkpoint::CheckpointSigner;
use beffroi::backup::manifest::{Envelope, SignedManifest};
use libfuzzer_sys::fuzz_target;

/// The key the seed corpus is signed with (`CheckpointSigner::from_seed(&[7; 32])`).
fn signer() -> CheckpointSigner {
    CheckpointSigner::from_seed(&[7; 32]).unwrap()
}

fuzz_target!(|data: &[u8]| {
    let signer = signer();
    let key = signer.public_key();
    if let Ok(envelope) = serde_json::from_slice::<Envelope>(data) {
        let text = serde_json::to_vec_pretty(&envelope).unwrap();
        assert_eq!(serde_json::from_slice::<Envelope>(&text).unwrap(), envelope);
        let _ = envelope.manifest.member("database.sqlite3");
        if let Some(cp) = &envelope.manifest.audit_checkpoint {
            let _ = cp.is_valid();
        }
        // Under the key the manifest names, whatever it is.
        if let Ok(named) = hex::decode(&envelope.manifest.signing_key) {
            if let Ok(named) = <[u8; 32]>::try_from(named.as_slice()) {
                let _ = envelope.verify(&named);
            }
        }
        if envelope.verify(&key).is_ok() {
            let again = envelope.clone().resign(&signer).unwrap();
            assert!(again.signature.eq_ignore_ascii_case(&envelope.signature));
            let mut edited = envelope.clone();
            edited.archive.size ^= 1;
            assert!(edited.verify(&key).is_err());
        }
    }
    if let Ok(inner) = serde_json::from_slice::<SignedManifest>(data) {
        let text = serde_json::to_vec(&inner).unwrap();
        assert_eq!(
            serde_json::from_slice::<SignedManifest>(&text).unwrap(),
            inner
        );
        if inner.verify(&key).is_ok() {
            let again = inner.manifest.clone().sign(&signer).unwrap();
            assert!(again.signature.eq_ignore_ascii_case(&inner.signature));
            let mut edited = inner.clone();
            edited.manifest.created_unix ^= 1;
            assert!(edited.verify(&key).is_err());
        }
    }
});
