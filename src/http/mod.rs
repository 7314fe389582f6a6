//! The HTTP layer: errors, extractors, cookies, the page shell, static files, metrics and the
//! middleware stack. Capabilities keep their own handlers in their own folders.

pub mod client_ip;
pub mod cookies;
pub mod error;
pub mod extract;
pub mod h2_headers;
pub mod listener;
pub mod metrics;
pub mod middleware;
pub mod pages;
pub mod static_files;
pub mod upload;
