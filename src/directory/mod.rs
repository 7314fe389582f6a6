//! The who's-who: departments, sites, each agent's placement and manager, and the pages built
//! on them. [`structure`] holds the organisation's shape, which audiences also read; [`policy`]
//! says who may see each optional field; [`people`] is the only reader of profiles, and applies
//! that policy in SQL; [`pages`], [`profile`] and [`admin`] are the HTTP handlers.

pub mod admin;
pub mod admin_photo;
pub mod demo;
pub mod pages;
pub mod people;
pub mod policy;
pub mod profile;
pub mod provisioning;
pub mod structure;
pub mod tree;
pub mod vcard;

use crate::routes::RouteTable;

pub fn routes(table: RouteTable) -> RouteTable {
    let table = pages::routes(table);
    let table = profile::routes(table);
    let table = admin_photo::routes(table);
    admin::routes(table)
}
