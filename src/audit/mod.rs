//! The tamper-evident audit log. Built so far: the canonical encoding of an entry (`entry`), the
//! RFC 6962 Merkle tree entries form (`merkle`) and Ed25519-signed checkpoints (`checkpoint`).
//! Still to come with the audit issue: the append-only table, appends in the same transaction as
//! each change, the `beffroi audit` commands, the auditor pages and `audit/verify.py`.

pub mod catalogue;
pub mod checkpoint;
pub mod entry;
pub mod forward;
pub mod merkle;
pub mod store;
pub mod verify;
