//! The tamper-evident audit log. Built so far: the canonical encoding of an entry (`entry`) and
//! the RFC 6962 Merkle tree its entries form (`merkle`). The table, the appends in the same
//! transaction as each change, signed checkpoints and the verifiers come with the audit issue.

pub mod entry;
pub mod merkle;
