//! The middleware stack, one concern per file. The order in which they wrap the router is set in
//! `crate::app` and explained there.

pub mod admin_gate;
pub mod csrf;
pub mod error_pages;
pub mod rate_limit;
pub mod refusals;
pub mod security_headers;
pub mod session;
