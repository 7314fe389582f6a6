//! The home page is the signed-in agent's news wall (see [`crate::news::pages::wall`]).

pub use crate::news::pages::wall as home;
