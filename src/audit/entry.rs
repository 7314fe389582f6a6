//! An audit entry and its canonical byte encoding, the input of its Merkle leaf hash. The
//! encoding is specified byte by byte in `audit/FORMAT.md`; `audit/verify.py` implements it
//! independently, so any change here is a new format version, never an edit of this one.
//!
//! Layout (all integers big-endian):
//! `"BFA1"` · seq u64 · time_us i64 · then eight fields, each a u32 length followed by that many
//! bytes of UTF-8, or the length `0xFFFF_FFFF` alone for an absent field: actor_id (decimal),
//! actor_name, actor_ip, request_id, action, target, outcome, details (JSON text, stored and
//! hashed exactly as written: the verifier never re-serialises it).

use serde::{Deserialize, Serialize};

use crate::audit::merkle::{Hash, leaf_hash};

/// Format tag at the start of every encoded entry.
pub const FORMAT_TAG: &[u8; 4] = b"BFA1";
const ABSENT: u32 = u32::MAX;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    /// Microseconds since the Unix epoch, UTC.
    pub time_us: i64,
    pub actor_id: Option<i64>,
    pub actor_name: Option<String>,
    pub actor_ip: Option<String>,
    pub request_id: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub outcome: String,
    /// A JSON object, as text.
    pub details: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncodeError {
    #[error("field {0} is longer than 4 GiB")]
    TooLong(&'static str),
}

fn push_field(
    out: &mut Vec<u8>,
    name: &'static str,
    value: Option<&str>,
) -> Result<(), EncodeError> {
    match value {
        None => out.extend_from_slice(&ABSENT.to_be_bytes()),
        Some(text) => {
            let len = u32::try_from(text.len())
                .ok()
                .filter(|l| *l != ABSENT)
                .ok_or(EncodeError::TooLong(name))?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(text.as_bytes());
        }
    }
    Ok(())
}

/// An entry's fields, borrowed: what the encoding reads. `audit verify` hashes a million rows
/// through this without copying each field into an owned [`Entry`] first.
#[derive(Debug, Clone, Copy)]
pub struct EntryFields<'a> {
    pub seq: u64,
    pub time_us: i64,
    pub actor_id: Option<i64>,
    pub actor_name: Option<&'a str>,
    pub actor_ip: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub outcome: &'a str,
    pub details: &'a str,
}

impl EntryFields<'_> {
    /// Writes the canonical bytes into `out` (cleared first, so one buffer serves many rows).
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        use std::io::Write as _;
        out.clear();
        out.extend_from_slice(FORMAT_TAG);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.time_us.to_be_bytes());
        match self.actor_id {
            None => out.extend_from_slice(&ABSENT.to_be_bytes()),
            Some(id) => {
                // Decimal, as the format says: written in place, then its length put before it.
                let at = out.len();
                out.extend_from_slice(&[0; 4]);
                let _ = write!(out, "{id}");
                let len = u32::try_from(out.len() - at - 4).unwrap_or(0);
                out[at..at + 4].copy_from_slice(&len.to_be_bytes());
            }
        }
        push_field(out, "actor_name", self.actor_name)?;
        push_field(out, "actor_ip", self.actor_ip)?;
        push_field(out, "request_id", self.request_id)?;
        push_field(out, "action", Some(self.action))?;
        push_field(out, "target", self.target)?;
        push_field(out, "outcome", Some(self.outcome))?;
        push_field(out, "details", Some(self.details))?;
        Ok(())
    }

    /// RFC 6962 leaf hash of the canonical bytes, encoded in `buffer`.
    pub fn leaf_hash_with(&self, buffer: &mut Vec<u8>) -> Result<Hash, EncodeError> {
        self.encode_into(buffer)?;
        Ok(leaf_hash(buffer))
    }
}

impl Entry {
    pub fn fields(&self) -> EntryFields<'_> {
        EntryFields {
            seq: self.seq,
            time_us: self.time_us,
            actor_id: self.actor_id,
            actor_name: self.actor_name.as_deref(),
            actor_ip: self.actor_ip.as_deref(),
            request_id: self.request_id.as_deref(),
            action: &self.action,
            target: self.target.as_deref(),
            outcome: &self.outcome,
            details: &self.details,
        }
    }

    /// The canonical bytes of the entry (see the module documentation).
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(64 + self.details.len());
        self.fields().encode_into(&mut out)?;
        Ok(out)
    }

    /// RFC 6962 leaf hash of the canonical bytes.
    pub fn leaf_hash(&self) -> Result<Hash, EncodeError> {
        Ok(leaf_hash(&self.canonical_bytes()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Entry {
        Entry {
            seq: 1,
            time_us: 1_764_079_200_000_000,
            actor_id: Some(7),
            actor_name: Some("Alice Martin".into()),
            actor_ip: Some("192.0.2.10".into()),
            request_id: Some("00ff".into()),
            action: "auth.sign_in".into(),
            target: None,
            outcome: "success".into(),
            details: "{\"method\":\"sso\"}".into(),
        }
    }

    #[test]
    fn encoding_is_the_documented_byte_layout() {
        let bytes = sample().canonical_bytes().unwrap();
        let mut expected = b"BFA1".to_vec();
        expected.extend_from_slice(&1u64.to_be_bytes());
        expected.extend_from_slice(&1_764_079_200_000_000i64.to_be_bytes());
        for field in [
            Some("7"),
            Some("Alice Martin"),
            Some("192.0.2.10"),
            Some("00ff"),
            Some("auth.sign_in"),
            None,
            Some("success"),
            Some("{\"method\":\"sso\"}"),
        ] {
            match field {
                Some(text) => {
                    expected.extend_from_slice(&u32::try_from(text.len()).unwrap().to_be_bytes());
                    expected.extend_from_slice(text.as_bytes());
                }
                None => expected.extend_from_slice(&[0xff; 4]),
            }
        }
        assert_eq!(bytes, expected);
    }

    #[test]
    fn leaf_hash_matches_the_documented_example() {
        // Computed independently (Python hashlib) and quoted in audit/FORMAT.md.
        assert_eq!(
            hex::encode(sample().leaf_hash().unwrap()),
            "fc46f6b98b7738926321ebc6ff07f19a5e1ca16106eb8075d4506113d23bb286"
        );
    }

    #[test]
    fn absent_and_empty_differ_and_every_field_counts() {
        let base = sample();
        let mut empty_target = base.clone();
        empty_target.target = Some(String::new());
        assert_ne!(base.leaf_hash().unwrap(), empty_target.leaf_hash().unwrap());
        // Moving bytes between adjacent fields changes the hash (lengths are encoded).
        let mut shifted = base.clone();
        shifted.actor_name = Some("Alice".into());
        shifted.actor_ip = Some(" Martin192.0.2.10".into());
        assert_ne!(base.leaf_hash().unwrap(), shifted.leaf_hash().unwrap());
        let mut later = base.clone();
        later.seq = 2;
        assert_ne!(base.leaf_hash().unwrap(), later.leaf_hash().unwrap());
    }
}
