//! Demo news (filled in below).
