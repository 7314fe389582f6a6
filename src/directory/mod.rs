//! The who's-who: departments, sites, each agent's placement and manager, and the pages built
//! on them. [`structure`] holds the organisation's shape, which audiences also read.

pub mod structure;
