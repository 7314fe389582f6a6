//! One integration test binary (linked once). Every test starts the real server over TLS with a
//! fresh database; `both_backends!` runs each on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;
mod idp;

mod audience;
mod audit;
mod audit_events;
mod audit_export;
mod audit_forward;
mod audit_pages;
mod backup;
mod bad_input;
mod branding;
mod cli;
mod crash;
mod csrf;
mod directory;
mod fuzz_regressions;
mod headers;
mod mail;
mod migrations;
mod multi_node;
mod news;
mod oidc;
mod ops;
mod pg_roles;
mod rate_limit;
mod refusals;
mod s3_server;
mod s3_store;
mod scim;
mod session_list;
mod sessions;
mod spaces;
mod tls;
mod transport;
