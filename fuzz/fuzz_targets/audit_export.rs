//! A JSONL audit export (audit/FORMAT.md) as a verifier reads it: a header with the signed
//! checkpoints and the consistency proofs between them, one line per entry with its inclusion
//! proof, a seal. The file comes from whoever hands it over, so everything in it is untrusted.
//! The reference verifier is `audit/verify.py`; this target drives the Rust half of the same
//! checks (entry decoding and hashing, RFC 9162 inclusion and consistency proofs, checkpoint
//! signatures, the search filter the header records) with whatever the file holds.
//!
//! Invariants: a leaf hash the file states for an entry is believed only when it is the hash of
//! the entry's fields; a proof that checks against a root never checks against a different one.

#![no_main]

use beffroi::audit::checkpoint::Checkpoint;
use beffroi::audit::entry::Entry;
use beffroi::audit::merkle::{self, Hash};
use beffroi::audit::query::{Filter, IpFilter};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn hash(v: &Value) -> Option<Hash> {
    let bytes = hex::decode(v.as_str()?).ok()?;
    <[u8; 32]>::try_from(bytes.as_slice()).ok()
}

fn hashes(v: Option<&Value>) -> Vec<Hash> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(hash).collect())
        .unwrap_or_default()
}

fn flipped(h: &Hash) -> Hash {
    let mut other = *h;
    other[0] ^= 1;
    other
}

/// The header's checkpoints: (tree size, root).
fn header(line: &Value, heads: &mut Vec<(u64, Hash)>) {
    if let Some(filter) = line.get("filter") {
        if let Ok(f) = serde_json::from_value::<Filter>(filter.clone()) {
            // The filter recorded in the header reads back as itself.
            let again: Filter = serde_json::from_value(serde_json::to_value(&f).unwrap()).unwrap();
            assert_eq!(again, f);
        }
    }
    for cp in line
        .get("checkpoints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(size), Some(root), Some(time_us)) = (
            cp.get("tree_size").and_then(Value::as_u64),
            cp.get("root").and_then(hash),
            cp.get("time_us").and_then(Value::as_i64),
        ) else {
            continue;
        };
        let key = cp
            .get("public_key")
            .and_then(Value::as_str)
            .and_then(|k| hex::decode(k).ok());
        let sig = cp
            .get("signature")
            .and_then(Value::as_str)
            .and_then(|s| hex::decode(s).ok());
        if let (Some(key), Some(sig)) = (key, sig) {
            let checkpoint = Checkpoint {
                tree_size: size,
                root,
                time_us,
            };
            if checkpoint.verify(&key, &sig) {
                let forged = Checkpoint {
                    tree_size: size ^ 1,
                    ..checkpoint
                };
                assert!(
                    !forged.verify(&key, &sig),
                    "a signature covers the tree size"
                );
            }
        }
        heads.push((size, root));
    }
    for c in line
        .get("consistency")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(from), Some(to)) = (
            c.get("from").and_then(Value::as_u64),
            c.get("to").and_then(Value::as_u64),
        ) else {
            continue;
        };
        let proof = hashes(c.get("proof"));
        let old = heads.iter().find(|(s, _)| *s == from).map(|(_, r)| *r);
        let new = heads.iter().find(|(s, _)| *s == to).map(|(_, r)| *r);
        let (old, new) = (old.unwrap_or([0; 32]), new.unwrap_or([1; 32]));
        if merkle::verify_consistency(from, to, &old, &new, &proof) && from != 0 {
            assert!(!merkle::verify_consistency(
                from,
                to,
                &old,
                &flipped(&new),
                &proof
            ));
        }
    }
}

fn entry(line: &Value, heads: &[(u64, Hash)]) {
    let Ok(e) = serde_json::from_value::<Entry>(line.clone()) else {
        return;
    };
    let Ok(leaf) = e.leaf_hash() else {
        return;
    };
    let purged = line.get("purged").and_then(Value::as_bool).unwrap_or(false);
    let stated = line.get("leaf_hash").and_then(hash);
    // A purged entry keeps only its hash; an intact one must hash to what the file says.
    let leaf = match stated {
        Some(h) if purged => h,
        Some(h) if h != leaf => return,
        _ => leaf,
    };
    let proof = hashes(line.get("proof"));
    let Some(index) = e.seq.checked_sub(1) else {
        return;
    };
    for (size, root) in heads {
        if merkle::verify_inclusion(&leaf, index, *size, &proof, root) {
            assert!(index < *size);
            assert!(!merkle::verify_inclusion(
                &leaf,
                index,
                *size,
                &proof,
                &flipped(root)
            ));
            assert!(!merkle::verify_inclusion(
                &flipped(&leaf),
                index,
                *size,
                &proof,
                root
            ));
        }
    }
    if let Some(ip) = &e.actor_ip {
        if let Ok(f) = IpFilter::parse(ip) {
            // The canonical form a filter keeps parses back to itself.
            assert_eq!(IpFilter::parse(&String::from(f.clone())), Ok(f));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut heads: Vec<(u64, Hash)> = Vec::new();
    for raw in text.lines().take(64) {
        let Ok(line) = serde_json::from_str::<Value>(raw) else {
            continue;
        };
        if line.get("format").is_some() {
            header(&line, &mut heads);
        } else if line.get("seq").is_some() {
            entry(&line, &heads);
        }
    }
    // Proofs made by the server for a tree of the size the file names (mod 17) check out.
    if let Some((size, _)) = heads.first() {
        let n = *size % 17;
        let leaves: Vec<Hash> = (0..n)
            .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
            .collect();
        let tree = merkle::MerkleTree::new(leaves);
        let root = |m| tree.root(m).unwrap();
        for i in 0..n {
            let leaf = merkle::leaf_hash(&i.to_be_bytes());
            let proof = tree.inclusion_proof(i, n).unwrap();
            assert!(merkle::verify_inclusion(&leaf, i, n, &proof, &root(n)));
        }
        for m in 1..n {
            let proof = tree.consistency_proof(m, n).unwrap();
            assert!(merkle::verify_consistency(m, n, &root(m), &root(n), &proof));
        }
    }
});
