//! The administrator's pages for the who's-who: `/admin/directory` (the department tree and the
//! sites: create, rename, move a department under another, never under itself or its own
//! descendants) and `/admin/directory/fields` (who may see each optional profile field, and
//! whether agents may edit it). Only the `admin` role gets in; every change is recorded in the
//! audit log in the transaction that makes it.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::accounts::Role;
use crate::auth::session::ActiveSession;
use crate::db::{DbError, Tx};
use crate::directory::pages::Choice;
use crate::directory::policy::{self, Field, FieldRule, Visibility};
use crate::directory::structure;
use crate::directory::tree::{self, DepartmentTree};
use crate::http::error::AppError;
use crate::http::extract::{CurrentUser, Form};
use crate::http::pages::{PageContext, Shell, render};
use crate::routes::RouteTable;
use crate::security_events::{self, Actor};
use crate::with_tx;

const MAX_NAME_CHARS: usize = 200;

pub fn routes(table: RouteTable) -> RouteTable {
    table
        .get("/admin/directory", structure_page)
        .post("/admin/directory/departments", create_department)
        .post("/admin/directory/departments/rename", rename_department)
        .post("/admin/directory/departments/move", move_department)
        .post("/admin/directory/sites", create_site)
        .post("/admin/directory/sites/rename", rename_site)
        .get("/admin/directory/fields", fields_page)
        .post("/admin/directory/fields", save_fields)
}

fn require_admin(user: &ActiveSession) -> Result<(), AppError> {
    if user.account.has_role(Role::Admin) {
        Ok(())
    } else {
        Err(AppError::Forbidden)
    }
}

fn is_unique_violation(e: &DbError) -> bool {
    matches!(e, DbError::Sqlx(sqlx::Error::Database(d)) if d.is_unique_violation())
}

/// A name as typed: trimmed, 1 to 200 characters, no control characters.
fn parse_name(raw: &str) -> Result<String, &'static str> {
    let name = raw.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err("directory-admin-error-name");
    }
    Ok(name.to_owned())
}

fn parse_id(raw: &str) -> Result<Option<i64>, &'static str> {
    match raw.trim() {
        "" => Ok(None),
        s => s
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .map(Some)
            .ok_or("directory-admin-error-choice"),
    }
}

pub struct TreeRow {
    pub name: String,
    pub depth: usize,
    /// How many levels the list closes after this row (for nested lists).
    pub closes: Vec<()>,
    pub has_children: bool,
}

#[derive(Template)]
#[template(path = "directory_admin.html")]
struct StructurePage {
    shell: Shell,
    tree_rows: Vec<TreeRow>,
    departments: Vec<Choice>,
    sites: Vec<Choice>,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Notice {
    #[serde(default)]
    done: String,
}

async fn structure_response(
    state: &AppState,
    shell: Shell,
    status: StatusCode,
    error: Option<&'static str>,
    notice: bool,
) -> Result<Response, AppError> {
    let tree = DepartmentTree::load(&state.db).await?;
    let flat = tree.flattened();
    let mut tree_rows = Vec::new();
    for (i, (depth, d)) in flat.iter().enumerate() {
        let next_depth = flat.get(i + 1).map(|(nd, _)| *nd).unwrap_or(0);
        let has_children = next_depth > *depth;
        let closes = if has_children {
            0
        } else {
            depth - next_depth.min(*depth)
        };
        tree_rows.push(TreeRow {
            name: d.name.clone(),
            depth: *depth,
            closes: vec![(); closes],
            has_children,
        });
    }
    let departments = flat
        .iter()
        .map(|(depth, d)| Choice {
            value: d.id.to_string(),
            label: format!("{}{}", "\u{a0}\u{a0}".repeat(*depth), d.name),
            selected: false,
        })
        .collect();
    let sites = tree::sites(&state.db)
        .await?
        .into_iter()
        .map(|(id, name)| Choice {
            value: id.to_string(),
            label: name,
            selected: false,
        })
        .collect();
    let page = StructurePage {
        error: error.map(|id| shell.t(id)),
        notice: notice.then(|| shell.t("directory-admin-saved")),
        shell,
        tree_rows,
        departments,
        sites,
    };
    render(status, &page)
}

async fn structure_page(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    notice: Result<Query<Notice>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    require_admin(&user)?;
    let done = notice.is_ok_and(|Query(n)| n.done == "1");
    structure_response(&state, ctx.shell, StatusCode::OK, None, done).await
}

fn done() -> Response {
    Redirect::to("/admin/directory?done=1").into_response()
}

#[derive(Debug, Default, Deserialize)]
struct NameForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    parent: String,
    #[serde(default)]
    id: String,
}

/// Runs a structure change with its audit entry; a broken rule re-shows the page with a reason.
async fn apply(
    state: &AppState,
    shell: Shell,
    change: Result<(), &'static str>,
) -> Result<Response, AppError> {
    match change {
        Ok(()) => Ok(done()),
        Err(id) => {
            let status = if id == "directory-admin-error-duplicate" {
                StatusCode::CONFLICT
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            structure_response(state, shell, status, Some(id), false).await
        }
    }
}

/// Commits `tx` unless the change hit a uniqueness rule, which becomes a message.
async fn finish(tx: Tx, result: Result<(), DbError>) -> Result<Result<(), &'static str>, AppError> {
    match result {
        Ok(()) => {
            tx.commit().await?;
            Ok(Ok(()))
        }
        Err(e) if is_unique_violation(&e) => Ok(Err("directory-admin-error-duplicate")),
        Err(e) => Err(e.into()),
    }
}

async fn create_department(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Form(form): Form<NameForm>,
) -> Result<Response, AppError> {
    require_admin(&user)?;
    let tree = DepartmentTree::load(&state.db).await?;
    let checked = parse_name(&form.name).and_then(|name| {
        let parent = parse_id(&form.parent)?;
        if parent.is_some_and(|p| tree.get(p).is_none()) {
            return Err("directory-admin-error-choice");
        }
        Ok((name, parent))
    });
    let change = match checked {
        Err(id) => Err(id),
        Ok((name, parent)) => {
            let mut tx = state.db.begin().await?;
            let result = async {
                let id = structure::insert_department(&mut tx, &name, parent).await?;
                security_events::record(
                    &mut tx,
                    &actor,
                    "directory.department_create",
                    Some(format!("department:{id}")),
                    "success",
                    json!({ "name": name, "parent_id": parent }),
                )
                .await
            }
            .await;
            finish(tx, result).await?
        }
    };
    apply(&state, ctx.shell, change).await
}

async fn rename_department(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Form(form): Form<NameForm>,
) -> Result<Response, AppError> {
    require_admin(&user)?;
    let tree = DepartmentTree::load(&state.db).await?;
    let checked = parse_name(&form.name).and_then(|name| {
        let id = parse_id(&form.id)?.ok_or("directory-admin-error-choice")?;
        let old = tree
            .get(id)
            .ok_or("directory-admin-error-choice")?
            .name
            .clone();
        Ok((id, old, name))
    });
    let change = match checked {
        Err(id) => Err(id),
        Ok((id, old, name)) => {
            let mut tx = state.db.begin().await?;
            let result = async {
                with_tx!(&mut tx, conn => sqlx::query("UPDATE departments SET name = $1 WHERE id = $2")
                    .bind(&name).bind(id).execute(conn).await.map(|_| ())?);
                security_events::record(
                    &mut tx,
                    &actor,
                    "directory.department_rename",
                    Some(format!("department:{id}")),
                    "success",
                    json!({ "before": old, "after": name }),
                )
                .await
            }
            .await;
            finish(tx, result).await?
        }
    };
    apply(&state, ctx.shell, change).await
}

async fn move_department(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Form(form): Form<NameForm>,
) -> Result<Response, AppError> {
    require_admin(&user)?;
    let tree = DepartmentTree::load(&state.db).await?;
    let checked = (|| {
        let id = parse_id(&form.id)?.ok_or("directory-admin-error-choice")?;
        let before = tree
            .get(id)
            .ok_or("directory-admin-error-choice")?
            .parent_id;
        let parent = parse_id(&form.parent)?;
        if parent.is_some_and(|p| tree.get(p).is_none()) {
            return Err("directory-admin-error-choice");
        }
        // Under itself or one of its own descendants, the department would leave the tree.
        if tree.would_cycle(id, parent) {
            return Err("directory-admin-error-cycle");
        }
        Ok((id, before, parent))
    })();
    let change = match checked {
        Err(id) => Err(id),
        Ok((id, before, parent)) => {
            let mut tx = state.db.begin().await?;
            let result = async {
                with_tx!(&mut tx, conn => sqlx::query("UPDATE departments SET parent_id = $1 WHERE id = $2")
                    .bind(parent).bind(id).execute(conn).await.map(|_| ())?);
                security_events::record(
                    &mut tx,
                    &actor,
                    "directory.department_move",
                    Some(format!("department:{id}")),
                    "success",
                    json!({ "before": before, "after": parent }),
                )
                .await
            }
            .await;
            finish(tx, result).await?
        }
    };
    apply(&state, ctx.shell, change).await
}

async fn create_site(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Form(form): Form<NameForm>,
) -> Result<Response, AppError> {
    require_admin(&user)?;
    let change = match parse_name(&form.name) {
        Err(id) => Err(id),
        Ok(name) => {
            let mut tx = state.db.begin().await?;
            let result = async {
                let id = structure::insert_site(&mut tx, &name, None).await?;
                security_events::record(
                    &mut tx,
                    &actor,
                    "directory.site_create",
                    Some(format!("site:{id}")),
                    "success",
                    json!({ "name": name }),
                )
                .await
            }
            .await;
            finish(tx, result).await?
        }
    };
    apply(&state, ctx.shell, change).await
}

async fn rename_site(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Form(form): Form<NameForm>,
) -> Result<Response, AppError> {
    require_admin(&user)?;
    let sites = tree::sites(&state.db).await?;
    let checked = parse_name(&form.name).and_then(|name| {
        let id = parse_id(&form.id)?.ok_or("directory-admin-error-choice")?;
        let old = sites
            .iter()
            .find(|(s, _)| *s == id)
            .map(|(_, n)| n.clone())
            .ok_or("directory-admin-error-choice")?;
        Ok((id, old, name))
    });
    let change = match checked {
        Err(id) => Err(id),
        Ok((id, old, name)) => {
            let mut tx = state.db.begin().await?;
            let result = async {
                with_tx!(&mut tx, conn => sqlx::query("UPDATE sites SET name = $1 WHERE id = $2")
                    .bind(&name).bind(id).execute(conn).await.map(|_| ())?);
                security_events::record(
                    &mut tx,
                    &actor,
                    "directory.site_rename",
                    Some(format!("site:{id}")),
                    "success",
                    json!({ "before": old, "after": name }),
                )
                .await
            }
            .await;
            finish(tx, result).await?
        }
    };
    apply(&state, ctx.shell, change).await
}

pub struct FieldRow {
    pub field: &'static str,
    pub label: String,
    pub options: Vec<Choice>,
    pub editable: bool,
    pub self_edit: bool,
}

#[derive(Template)]
#[template(path = "directory_fields.html")]
struct FieldsPage {
    shell: Shell,
    rows: Vec<FieldRow>,
    saved: bool,
}

#[derive(Debug, Default, Deserialize)]
struct SavedFlag {
    #[serde(default)]
    saved: String,
}

async fn fields_page(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    flag: Result<Query<SavedFlag>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    require_admin(&user)?;
    let policy = policy::load(&state.db).await?;
    let rows = policy
        .rules
        .iter()
        .map(|rule| FieldRow {
            field: rule.field.as_str(),
            label: ctx.shell.t(rule.field.label_id()),
            options: Visibility::ALL
                .into_iter()
                .map(|v| Choice {
                    value: v.as_str().to_owned(),
                    label: ctx.shell.t(v.label_id()),
                    selected: v == rule.visibility,
                })
                .collect(),
            editable: rule.field.self_editable(),
            self_edit: rule.self_edit,
        })
        .collect();
    render(
        StatusCode::OK,
        &FieldsPage {
            shell: ctx.shell,
            rows,
            saved: flag.is_ok_and(|Query(f)| f.saved == "1"),
        },
    )
}

/// `visibility.<field>` selects and `self_edit.<field>` checkboxes; every field must be given a
/// visibility, and anything else in the form is refused.
async fn save_fields(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    require_admin(&user)?;
    let before = policy::load(&state.db).await?;
    let mut after = before.clone();
    let mut given = std::collections::BTreeSet::new();
    for rule in &mut after.rules {
        rule.self_edit = false;
    }
    for (name, value) in &pairs {
        if name == "csrf_token" {
            continue;
        }
        let bad = AppError::BadRequest("directory-admin-error-policy");
        if let Some(field) = name.strip_prefix("visibility.") {
            let field = Field::parse(field).ok_or(bad)?;
            let visibility = Visibility::parse(value)
                .ok_or(AppError::BadRequest("directory-admin-error-policy"))?;
            given.insert(field);
            if let Some(rule) = after.rules.iter_mut().find(|r| r.field == field) {
                rule.visibility = visibility;
            }
        } else if let Some(field) = name.strip_prefix("self_edit.") {
            let field = Field::parse(field).ok_or(bad)?;
            if value != "1" || !field.self_editable() {
                return Err(AppError::BadRequest("directory-admin-error-policy"));
            }
            if let Some(rule) = after.rules.iter_mut().find(|r| r.field == field) {
                rule.self_edit = true;
            }
        } else {
            return Err(bad);
        }
    }
    if given.len() != Field::ALL.len() {
        return Err(AppError::BadRequest("directory-admin-error-policy"));
    }
    let changed: Vec<(FieldRule, FieldRule)> = before
        .rules
        .iter()
        .zip(after.rules.iter())
        .filter(|(b, a)| b != a)
        .map(|(b, a)| (*b, *a))
        .collect();
    if !changed.is_empty() {
        let mut tx = state.db.begin().await?;
        let mut details = serde_json::Map::new();
        for (b, a) in &changed {
            policy::save_rule(&mut tx, *a).await?;
            details.insert(
                a.field.as_str().to_owned(),
                json!({
                    "before": { "visibility": b.visibility.as_str(), "self_edit": b.self_edit },
                    "after": { "visibility": a.visibility.as_str(), "self_edit": a.self_edit },
                }),
            );
        }
        security_events::record(
            &mut tx,
            &actor,
            "directory.field_policy_change",
            Some("directory:fields".to_owned()),
            "success",
            serde_json::Value::Object(details),
        )
        .await?;
        tx.commit().await?;
    }
    Ok(Redirect::to("/admin/directory/fields?saved=1").into_response())
}
