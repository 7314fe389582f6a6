//! Running spaces: global administrators list and create them (`/admin/spaces`); a space's
//! managers — and administrators — edit its settings, archive it and manage its members
//! (`/spaces/{slug}/settings`, `/spaces/{slug}/members`).
//!
//! An administrator who is not a member of a private space can do all of this but still gets
//! 404 on its home and pages: membership, not the admin role, is what opens content. Every
//! change is audited in the transaction that makes it. A space always keeps at least one
//! manager once it has one: removing or demoting the last is refused.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::accounts::{Account, Role};
use crate::audience::Rule;
use crate::http::error::AppError;
use crate::http::extract::{CurrentUser, Form};
use crate::http::pages::{PageContext, Shell, render};
use crate::routes::RouteTable;
use crate::security_events::{self, Actor};

use super::forms::{AudiencePicker, Fields};
use super::routes::role_label;
use super::{Access, NewSpace, SpaceRole, Visibility, store};

pub fn routes(table: RouteTable) -> RouteTable {
    table
        .get("/admin/spaces", admin_list)
        .get("/admin/spaces/new", new_space_form)
        .post("/admin/spaces", create_space)
        .get("/spaces/{slug}/settings", settings_form)
        .post("/spaces/{slug}/settings", update_settings)
        .post("/spaces/{slug}/archive", archive)
        .get("/spaces/{slug}/members", members_page)
        .post("/spaces/{slug}/members", add_member)
        .post("/spaces/{slug}/members/{account}/role", change_role)
        .post("/spaces/{slug}/members/{account}/remove", remove_member)
}

fn require_admin(account: &Account) -> Result<(), AppError> {
    if account.has_role(Role::Admin) {
        Ok(())
    } else {
        Err(AppError::Forbidden)
    }
}

/// The space, if this agent manages it (a manager, or an administrator). Agents who cannot
/// even read it get 404; readers who can get 403.
async fn managed(state: &AppState, account: &Account, slug: &str) -> Result<Access, AppError> {
    let access = Access::load(&state.db, slug, account)
        .await?
        .ok_or(AppError::NotFound)?;
    if !access.knows_space() {
        return Err(AppError::NotFound);
    }
    if !access.can_manage() {
        return Err(AppError::Forbidden);
    }
    Ok(access)
}

fn space_target(id: i64) -> Option<String> {
    Some(format!("space:{id}"))
}

struct AdminRow {
    slug: String,
    name: String,
    private: bool,
    archived: bool,
    members: i64,
}

#[derive(Template)]
#[template(path = "space_admin_list.html")]
struct AdminListPage {
    shell: Shell,
    spaces: Vec<AdminRow>,
}

async fn admin_list(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
) -> Result<Response, AppError> {
    require_admin(&user.account)?;
    let spaces = store::all_spaces(&state.db)
        .await?
        .into_iter()
        .map(|(s, members)| AdminRow {
            private: s.visibility == Visibility::Private,
            archived: s.archived,
            slug: s.slug,
            name: s.name,
            members,
        })
        .collect();
    render(
        StatusCode::OK,
        &AdminListPage {
            shell: ctx.shell,
            spaces,
        },
    )
}

#[derive(Template)]
#[template(path = "space_form.html")]
struct SpaceFormPage {
    shell: Shell,
    /// `None` when creating.
    space: Option<store::Space>,
    slug: String,
    name: String,
    description: String,
    private: bool,
    approval_required: bool,
    picker: AudiencePicker,
}

async fn picker(
    state: &AppState,
    shell: &Shell,
    selected: &[String],
) -> Result<AudiencePicker, AppError> {
    let choices = store::audience_choices(&state.db).await?;
    Ok(AudiencePicker::new(
        &choices,
        selected,
        shell.lang,
        &shell.t("spaces-audience-everyone"),
    ))
}

async fn new_space_form(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
) -> Result<Response, AppError> {
    require_admin(&user.account)?;
    let picker = picker(&state, &ctx.shell, &["everyone".to_owned()]).await?;
    render(
        StatusCode::OK,
        &SpaceFormPage {
            shell: ctx.shell,
            space: None,
            slug: String::new(),
            name: String::new(),
            description: String::new(),
            private: false,
            approval_required: false,
            picker,
        },
    )
}

/// The checked settings of a space form.
struct SpaceSettings {
    name: String,
    description: String,
    visibility: Visibility,
    approval_required: bool,
    audience: Vec<String>,
}

async fn settings_input(
    state: &AppState,
    shell: &Shell,
    fields: &Fields,
) -> Result<SpaceSettings, AppError> {
    let name = fields.get("name");
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AppError::BadRequest("spaces-error-name"));
    }
    let description = fields.get("description");
    if description.chars().count() > 2000 {
        return Err(AppError::BadRequest("spaces-error-description"));
    }
    let visibility = Visibility::parse(fields.get("visibility"))
        .ok_or(AppError::BadRequest("spaces-error-visibility"))?;
    let audience = picker(state, shell, &[])
        .await?
        .accept(&fields.all("audience"))?;
    Ok(SpaceSettings {
        name: name.to_owned(),
        description: description.to_owned(),
        visibility,
        approval_required: fields.checked("approval_required"),
        audience,
    })
}

async fn create_space(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    require_admin(&user.account)?;
    let fields = Fields(fields);
    let slug = fields.get("slug").to_owned();
    if !super::valid_slug(&slug) {
        return Err(AppError::BadRequest("spaces-error-slug"));
    }
    if store::space_by_slug(&state.db, &slug).await?.is_some() {
        return Err(AppError::BadRequest("spaces-error-slug-taken"));
    }
    let settings = settings_input(&state, &ctx.shell, &fields).await?;
    let rules: Vec<Rule> = settings
        .audience
        .iter()
        .filter_map(|k| Rule::parse(k))
        .collect();
    let mut tx = state.db.begin().await?;
    let id = store::insert_space(
        &mut tx,
        &NewSpace {
            slug: &slug,
            name: &settings.name,
            description: &settings.description,
            visibility: settings.visibility,
            approval_required: settings.approval_required,
            audience: &rules,
        },
    )
    .await
    .map_err(|e| super::unique_as(e, "spaces-error-slug-taken"))?;
    security_events::record(
        &mut tx,
        &actor,
        "space.create",
        space_target(id),
        "success",
        json!({ "slug": slug, "name": settings.name, "visibility": settings.visibility.as_str(),
                "approval_required": settings.approval_required, "audience": settings.audience }),
    )
    .await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/spaces/{slug}/members")).into_response())
}

async fn settings_form(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
) -> Result<Response, AppError> {
    let access = managed(&state, &user.account, &slug).await?;
    let selected = store::space_audience(&state.db, access.space.id).await?;
    let picker = picker(&state, &ctx.shell, &selected).await?;
    let space = access.space;
    render(
        StatusCode::OK,
        &SpaceFormPage {
            shell: ctx.shell,
            slug: space.slug.clone(),
            name: space.name.clone(),
            description: space.description.clone(),
            private: space.visibility == Visibility::Private,
            approval_required: space.approval_required,
            space: Some(space),
            picker,
        },
    )
}

async fn update_settings(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Path(slug): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let access = managed(&state, &user.account, &slug).await?;
    let settings = settings_input(&state, &ctx.shell, &Fields(fields)).await?;
    let before = store::space_audience(&state.db, access.space.id).await?;
    let mut tx = state.db.begin().await?;
    store::update_space(
        &mut tx,
        access.space.id,
        &settings.name,
        &settings.description,
        settings.visibility,
        settings.approval_required,
        &settings.audience,
    )
    .await?;
    security_events::record(
        &mut tx,
        &actor,
        "space.update",
        space_target(access.space.id),
        "success",
        json!({ "slug": access.space.slug, "name": settings.name,
                "visibility": settings.visibility.as_str(),
                "approval_required": settings.approval_required,
                "audience_before": before, "audience": settings.audience }),
    )
    .await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/spaces/{}/settings", access.space.slug)).into_response())
}

async fn archive(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Path(slug): Path<String>,
) -> Result<Response, AppError> {
    let access = managed(&state, &user.account, &slug).await?;
    if access.space.archived {
        return Err(AppError::BadRequest("spaces-error-archived"));
    }
    let mut tx = state.db.begin().await?;
    store::archive_space(&mut tx, access.space.id).await?;
    security_events::record(
        &mut tx,
        &actor,
        "space.archive",
        space_target(access.space.id),
        "success",
        json!({ "slug": access.space.slug, "name": access.space.name }),
    )
    .await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/spaces/{}/settings", access.space.slug)).into_response())
}

struct MemberView {
    account_id: i64,
    display_name: String,
    role: String,
    role_label: &'static str,
}

struct RoleChoice {
    value: &'static str,
    label: &'static str,
}

#[derive(Template)]
#[template(path = "space_members.html")]
struct MembersPage {
    shell: Shell,
    space: store::Space,
    members: Vec<MemberView>,
    roles: Vec<RoleChoice>,
    query: String,
    results: Option<Vec<(i64, String)>>,
    can_read: bool,
}

#[derive(Debug, Default, Deserialize)]
struct MemberSearch {
    #[serde(default)]
    q: String,
}

async fn members_page(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
    Query(search): Query<MemberSearch>,
) -> Result<Response, AppError> {
    let access = managed(&state, &user.account, &slug).await?;
    let query = search.q.trim().chars().take(100).collect::<String>();
    let results = if query.is_empty() {
        None
    } else {
        Some(store::search_accounts(&state.db, &query).await?)
    };
    let members = store::members(&state.db, access.space.id)
        .await?
        .into_iter()
        .map(|m| MemberView {
            role_label: role_label(&m.role),
            account_id: m.account_id,
            display_name: m.display_name,
            role: m.role,
        })
        .collect();
    render(
        StatusCode::OK,
        &MembersPage {
            shell: ctx.shell,
            can_read: access.can_read(),
            space: access.space,
            members,
            roles: SpaceRole::ALL
                .iter()
                .map(|r| RoleChoice {
                    value: r.as_str(),
                    label: role_label(r.as_str()),
                })
                .collect(),
            query,
            results,
        },
    )
}

fn parse_role(fields: &Fields) -> Result<SpaceRole, AppError> {
    SpaceRole::parse(fields.get("role")).ok_or(AppError::BadRequest("spaces-error-role"))
}

async fn add_member(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Path(slug): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let access = managed(&state, &user.account, &slug).await?;
    let fields = Fields(fields);
    let role = parse_role(&fields)?;
    let account_id: i64 = fields
        .get("account_id")
        .parse()
        .map_err(|_| AppError::BadRequest("spaces-error-account"))?;
    let account = crate::accounts::find_by_id(&state.db, account_id)
        .await?
        .filter(|a| !a.disabled)
        .ok_or(AppError::BadRequest("spaces-error-account"))?;
    let mut tx = state.db.begin().await?;
    let before = store::put_member(&mut tx, access.space.id, account.id, role).await?;
    if before.as_deref() == Some("manager") && role != SpaceRole::Manager {
        ensure_other_manager(&mut tx, access.space.id, account.id).await?;
    }
    security_events::record(
        &mut tx,
        &actor,
        if before.is_some() {
            "space.member_role"
        } else {
            "space.member_add"
        },
        space_target(access.space.id),
        "success",
        json!({ "slug": access.space.slug, "account": account.id,
                "name": account.display_name, "role": role.as_str(), "before": before }),
    )
    .await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/spaces/{}/members", access.space.slug)).into_response())
}

/// Refuses a change that would leave the space without a manager (the transaction is then
/// dropped, so nothing it wrote is kept).
async fn ensure_other_manager(
    tx: &mut crate::db::Tx,
    space_id: i64,
    account_id: i64,
) -> Result<(), AppError> {
    if store::other_managers(tx, space_id, account_id).await? == 0 {
        return Err(AppError::BadRequest("spaces-error-last-manager"));
    }
    Ok(())
}

fn member_id(text: &str) -> Result<i64, AppError> {
    text.parse().map_err(|_| AppError::NotFound)
}

async fn change_role(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Path((slug, account)): Path<(String, String)>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let access = managed(&state, &user.account, &slug).await?;
    let account_id = member_id(&account)?;
    let role = parse_role(&Fields(fields))?;
    let before = store::member_role(&state.db, access.space.id, account_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let mut tx = state.db.begin().await?;
    if before == "manager" && role != SpaceRole::Manager {
        ensure_other_manager(&mut tx, access.space.id, account_id).await?;
    }
    store::put_member(&mut tx, access.space.id, account_id, role).await?;
    security_events::record(
        &mut tx,
        &actor,
        "space.member_role",
        space_target(access.space.id),
        "success",
        json!({ "slug": access.space.slug, "account": account_id,
                "role": role.as_str(), "before": before }),
    )
    .await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/spaces/{}/members", access.space.slug)).into_response())
}

async fn remove_member(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Path((slug, account)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let access = managed(&state, &user.account, &slug).await?;
    let account_id = member_id(&account)?;
    let before = store::member_role(&state.db, access.space.id, account_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let mut tx = state.db.begin().await?;
    if before == "manager" {
        ensure_other_manager(&mut tx, access.space.id, account_id).await?;
    }
    store::remove_member(&mut tx, access.space.id, account_id).await?;
    security_events::record(
        &mut tx,
        &actor,
        "space.member_remove",
        space_target(access.space.id),
        "success",
        json!({ "slug": access.space.slug, "account": account_id, "before": before }),
    )
    .await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/spaces/{}/members", access.space.slug)).into_response())
}
