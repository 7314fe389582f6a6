//! The organisation's identity now lives in [`crate::branding`]; these names stay so that code
//! written against this module (on branches started before the move) still compiles. New code
//! uses `crate::branding` and, for pages, the cached copy in `AppState::branding`.

pub use crate::branding::store::load;
pub use crate::branding::{Branding, Colour};
