//! The tamper-evident audit log. Built so far: the canonical encoding of an entry (`entry`), the
//! RFC 6962 Merkle tree entries form (`merkle`), Ed25519-signed checkpoints (`checkpoint`), the
//! append-only table (`store`), its verification (`verify`), the auditors' search (`query`) and
//! exports that `audit/verify.py` checks on its own (`export`). The auditor pages
//! (`pages`) search and export it over HTTP, for accounts holding the `auditor` role only.

pub mod appender;
pub mod catalogue;
pub mod checkpoint;
pub mod entry;
pub mod export;
pub mod forward;
pub mod merkle;
pub mod pages;
pub mod query;
pub mod store;
pub mod verify;
