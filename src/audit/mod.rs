//! The tamper-evident audit log. Built so far: the canonical encoding of an entry (`entry`), the
//! RFC 6962 Merkle tree entries form (`merkle`), Ed25519-signed checkpoints (`checkpoint`), the
//! append-only table (`store`), its verification (`verify`), the auditors' search (`query`) and
//! exports that `audit/verify.py` checks on its own (`export`). Still to come with the audit
//! issue: appends in the same transaction as each change, and the auditor pages.

pub mod appender;
pub mod catalogue;
pub mod checkpoint;
pub mod entry;
pub mod export;
pub mod forward;
pub mod merkle;
pub mod query;
pub mod store;
pub mod verify;
