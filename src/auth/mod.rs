//! Authentication: password hashing, server-side sessions, per-account backoff, and the local
//! (break-glass) sign-in pages.

pub mod backoff;
pub mod local;
pub mod oidc;
pub mod password;
pub mod session;
pub mod sessions_page;
pub mod sign_in_limit;
