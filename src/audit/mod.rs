//! The tamper-evident audit log: the canonical encoding of an entry (`entry`), the fixed
//! catalogue of actions (`catalogue`), the RFC 6962 Merkle tree (`merkle`), Ed25519-signed
//! checkpoints (`checkpoint`), the append-only table (`store`) and its group-commit appender
//! (`appender`), verification (`verify`), the auditors' search (`query`), exports that
//! `audit/verify.py` checks on its own (`export`) and forwarding to a SIEM (`forward`); the
//! auditor pages (`pages`) search and export it over HTTP, for accounts holding the `auditor`
//! role only.
//! Entries are recorded through `crate::security_events`.

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
