//! The organisation's shape: departments (a tree), sites, and where each agent sits. Audiences
//! ([`crate::audience`]) and the org chart read these tables; the IdP, SCIM, the admin pages and
//! the demo write them through the functions here.

use crate::db::{Database, DbError, Tx, now};
use crate::{with_db, with_tx};

/// Adds a department under `parent` (or at the top) inside the caller's transaction (which
/// records the change) and returns its id.
pub async fn insert_department(
    tx: &mut Tx,
    name: &str,
    parent: Option<i64>,
) -> Result<i64, DbError> {
    Ok(with_tx!(tx, conn => sqlx::query_scalar(
        "INSERT INTO departments (name, parent_id, created_at) VALUES ($1, $2, $3) RETURNING id"
    ).bind(name).bind(parent).bind(now()).fetch_one(conn).await?))
}

/// Adds a site inside the caller's transaction and returns its id.
pub async fn insert_site(tx: &mut Tx, name: &str, address: Option<&str>) -> Result<i64, DbError> {
    Ok(with_tx!(tx, conn => sqlx::query_scalar(
        "INSERT INTO sites (name, address, created_at) VALUES ($1, $2, $3) RETURNING id"
    ).bind(name).bind(address).bind(now()).fetch_one(conn).await?))
}

/// Creates a department on its own (demo data, tests) and returns its id.
pub async fn create_department(
    db: &Database,
    name: &str,
    parent: Option<i64>,
) -> Result<i64, DbError> {
    let mut tx = db.begin().await?;
    let id = insert_department(&mut tx, name, parent).await?;
    tx.commit().await?;
    Ok(id)
}

/// Creates a site on its own (demo data, tests) and returns its id.
pub async fn create_site(db: &Database, name: &str, address: Option<&str>) -> Result<i64, DbError> {
    let mut tx = db.begin().await?;
    let id = insert_site(&mut tx, name, address).await?;
    tx.commit().await?;
    Ok(id)
}

/// Where an agent sits: title, department, site, manager.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    pub title: Option<String>,
    pub department_id: Option<i64>,
    pub site_id: Option<i64>,
    pub manager_id: Option<i64>,
}

/// Records (or replaces) an agent's placement.
pub async fn place_agent(
    db: &Database,
    account_id: i64,
    placement: &Placement,
) -> Result<(), DbError> {
    with_db!(db, pool => sqlx::query(
        "INSERT INTO agent_profiles (account_id, title, department_id, site_id, manager_id, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (account_id) DO UPDATE SET title = excluded.title, \
           department_id = excluded.department_id, site_id = excluded.site_id, \
           manager_id = excluded.manager_id, updated_at = excluded.updated_at"
    ).bind(account_id).bind(&placement.title).bind(placement.department_id)
     .bind(placement.site_id).bind(placement.manager_id).bind(now())
     .execute(pool).await.map(|_| ())?);
    Ok(())
}
