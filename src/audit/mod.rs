//! The tamper-evident audit log. Today: the RFC 6962 Merkle tree its entries will form
//! (`merkle`); the log itself, its checkpoints and the verifier come with the audit issue.

pub mod merkle;
