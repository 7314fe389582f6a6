//! The SCIM operations: each checks its input completely, plans its writes from a fresh read,
//! commits them in one transaction (retrying when another request changed the same resource
//! meanwhile), and only then reports its security events. A request refused at any point has
//! written nothing.
//!
//! Handlers call these; these never see HTTP, and the store never sees client JSON.

pub mod groups;
pub mod users;

use super::error::ScimError;
use super::store::{Outcome, Step, StoreError};
use crate::config::OidcConfig;
use crate::db::Database;
use crate::security_events::{Actor, Event};
use serde_json::Value;

/// How many times an operation is planned again after losing a race.
const ATTEMPTS: usize = 3;

impl From<StoreError> for ScimError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unique(what) => ScimError::uniqueness(what),
            StoreError::Conflict => ScimError::concurrent_change(),
            StoreError::Db(e) => ScimError::internal(e),
            StoreError::Corrupt(e) => ScimError::internal(e),
        }
    }
}

/// Runs `plan` (which reads and returns the steps plus what it needs afterwards) and commits
/// the steps with the audit entries `events` makes of them, up to [`ATTEMPTS`] times while it
/// loses races.
async fn commit<T, F, Fut, E>(
    db: &Database,
    oidc: &OidcConfig,
    actor: &Actor,
    mut plan: F,
    events: E,
) -> Result<(T, Outcome), ScimError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<Step>, T), ScimError>>,
    E: Fn(&T, &Outcome) -> Vec<Event>,
{
    for _ in 0..ATTEMPTS {
        let (steps, context) = plan().await?;
        match super::store::execute(db, &steps, oidc, actor, |o| events(&context, o)).await {
            Ok(outcome) => return Ok((context, outcome)),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ScimError::concurrent_change())
}

/// An entry about an account (a User's), so that an auditor filtering on the account finds
/// its provisioning next to its sign-ins.
fn user_event(action: &'static str, account_id: Option<i64>, details: Value) -> Event {
    Event {
        action,
        target: account_id.map(|id| format!("account:{id}")),
        outcome: "success",
        details,
    }
}

fn group_event(action: &'static str, scim_id: &str, details: Value) -> Event {
    Event {
        action,
        target: Some(format!("scim-group:{scim_id}")),
        outcome: "success",
        details,
    }
}

fn new_id() -> Result<String, ScimError> {
    super::new_id().map_err(|e| ScimError::internal(format!("no randomness: {e}")))
}
