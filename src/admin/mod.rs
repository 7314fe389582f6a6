//! The administration hub, `/admin`: the entry to every administrator's page (branding,
//! directory, spaces…), and [`require_admin`], the check those pages make first.
//!
//! Only accounts holding the `admin` role get in. Everyone else gets a 403, and the refusal is
//! recorded (`admin.denied`) before anything is shown, as the auditor pages do: probing the
//! admin pages leaves a trace.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::AppState;
use crate::accounts::Role;
use crate::http::error::AppError;
use crate::http::extract::CurrentUser;
use crate::http::pages::{PageContext, Shell, render};
use crate::routes::RouteTable;
use crate::security_events::{self, Actor};

pub fn routes(table: RouteTable) -> RouteTable {
    table.get("/admin", hub)
}

/// Lets administrators through; records and refuses everyone else (`path`: what they asked for).
pub async fn require_admin(
    state: &AppState,
    user: &CurrentUser,
    actor: &Actor,
    path: &str,
) -> Result<(), AppError> {
    if user.0.account.has_role(Role::Admin) {
        return Ok(());
    }
    security_events::record_alone(
        &state.audit,
        actor,
        "admin.denied",
        None,
        "denied",
        json!({ "path": path, "reason": "not an administrator" }),
    )
    .await?;
    Err(AppError::ForbiddenRecorded)
}

/// One area of administration, as the hub lists it.
struct Area {
    href: &'static str,
    title: String,
    description: String,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct HubPage {
    shell: Shell,
    areas: Vec<Area>,
}

/// The areas, each with its fluent ids for title and description. Each area's own handler
/// checks the role again; this list only links.
const AREAS: &[(&str, &str, &str)] = &[
    (
        "/admin/branding",
        "admin-area-branding",
        "admin-area-branding-desc",
    ),
    (
        "/admin/directory",
        "admin-area-directory",
        "admin-area-directory-desc",
    ),
    (
        "/admin/spaces",
        "admin-area-spaces",
        "admin-area-spaces-desc",
    ),
    (
        "/admin/sessions",
        "admin-area-sessions",
        "admin-area-sessions-desc",
    ),
    ("/admin/mail", "admin-area-mail", "admin-area-mail-desc"),
];

async fn hub(
    State(state): State<AppState>,
    ctx: PageContext,
    user: CurrentUser,
    actor: Actor,
) -> Result<Response, AppError> {
    require_admin(&state, &user, &actor, "/admin").await?;
    let shell = ctx.shell;
    let areas = AREAS
        .iter()
        .map(|(href, title, description)| Area {
            href,
            title: shell.t(title),
            description: shell.t(description),
        })
        .collect();
    render(StatusCode::OK, &HubPage { shell, areas })
}
