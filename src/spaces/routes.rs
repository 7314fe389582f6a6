//! What agents see of spaces: `/spaces` (the spaces they can enter), a space's home (its pages
//! as a tree), pages with their history and attachments, and the page forms for contributors.
//!
//! Every handler loads the agent's [`Access`] first. A space or page closed to the agent answers
//! 404, exactly like one that does not exist, so that private spaces and narrowed pages do not
//! reveal themselves; a reader who is refused an action they can see answers 403.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

use crate::AppState;
use crate::accounts::Account;
use crate::blobs::MediaType;
use crate::http::error::AppError;
use crate::http::extract::{CurrentUser, Form};
use crate::http::pages::{PageContext, Shell, render};
use crate::http::upload::UploadForm;
use crate::routes::RouteTable;
use crate::security_events::{self, Actor};

use super::forms::{AudiencePicker, Fields};
use super::pages::{self, Author, PageInput, TreeRow};
use super::{Access, SpaceRole, store};

pub fn routes(table: RouteTable) -> RouteTable {
    let table = table
        .get("/spaces", list)
        .get("/spaces/{slug}", home)
        .get("/spaces/{slug}/new-page", new_page_form)
        .post("/spaces/{slug}/pages", create_page)
        .get("/spaces/{slug}/pages/{page}", show_page)
        .get("/spaces/{slug}/pages/{page}/edit", edit_page_form)
        .post("/spaces/{slug}/pages/{page}/edit", update_page)
        .post("/spaces/{slug}/pages/{page}/delete", delete_page)
        .get("/spaces/{slug}/pages/{page}/history", history)
        .get(
            "/spaces/{slug}/pages/{page}/versions/{version}",
            show_version,
        )
        .post("/spaces/{slug}/pages/{page}/files", upload_attachment)
        .get(
            "/spaces/{slug}/pages/{page}/files/{id}",
            download_attachment,
        )
        .post(
            "/spaces/{slug}/pages/{page}/files/{id}/delete",
            delete_attachment,
        );
    super::changes::routes(super::approval::routes(table))
}

/// The space named `slug`, if this agent may read it; else 404.
pub(super) async fn readable(
    state: &AppState,
    account: &Account,
    slug: &str,
) -> Result<Access, AppError> {
    let access = Access::load(&state.db, slug, account)
        .await?
        .ok_or(AppError::NotFound)?;
    if !access.can_read() {
        return Err(AppError::NotFound);
    }
    Ok(access)
}

async fn readable_page(
    state: &AppState,
    account: &Account,
    slug: &str,
    page: &str,
) -> Result<(Access, pages::Page), AppError> {
    let access = readable(state, account, slug).await?;
    let page = pages::visible_page(&state.db, &access, page)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok((access, page))
}

pub(super) fn role_label(role: &str) -> &'static str {
    match SpaceRole::parse(role) {
        Some(SpaceRole::Reader) => "spaces-role-reader",
        Some(SpaceRole::Contributor) => "spaces-role-contributor",
        Some(SpaceRole::Editor) => "spaces-role-editor",
        Some(SpaceRole::Manager) => "spaces-role-manager",
        None => "spaces-role-reader",
    }
}

struct ListedSpaceView {
    slug: String,
    name: String,
    description: String,
    private: bool,
    archived: bool,
    role_label: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "space_list.html")]
struct ListPage {
    shell: Shell,
    spaces: Vec<ListedSpaceView>,
    is_admin: bool,
}

async fn list(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
) -> Result<Response, AppError> {
    let audience = user.audience.clone();
    let spaces = store::spaces_for_agent(&state.db, user.account.id, &audience)
        .await?
        .into_iter()
        .map(|s| ListedSpaceView {
            private: s.visibility == "private",
            archived: s.archived_at.is_some(),
            role_label: s.role.as_deref().map(role_label),
            slug: s.slug,
            name: s.name,
            description: s.description,
        })
        .collect();
    render(
        StatusCode::OK,
        &ListPage {
            shell: ctx.shell,
            spaces,
            is_admin: user.account.has_role(crate::accounts::Role::Admin),
        },
    )
}

#[derive(Template)]
#[template(path = "space_home.html")]
struct HomePage {
    shell: Shell,
    space: store::Space,
    tree: Vec<TreeRow>,
    member_count: i64,
    role_label: &'static str,
    can_write: bool,
    can_manage: bool,
    /// Proposals waiting, shown to those who decide on them (`None` for others).
    pending: Option<i64>,
}

async fn home(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
) -> Result<Response, AppError> {
    let access = readable(&state, &user.account, &slug).await?;
    let visible = pages::visible_pages(&state.db, &access).await?;
    let member_count = store::member_count(&state.db, access.space.id).await?;
    let pending = if access.can_approve() && access.space.approval_required {
        Some(super::approval::pending_count_in(&state.db, access.space.id).await?)
    } else {
        None
    };
    render(
        StatusCode::OK,
        &HomePage {
            shell: ctx.shell,
            tree: pages::tree(&visible),
            member_count,
            role_label: role_label(access.role.map_or("reader", SpaceRole::as_str)),
            can_write: access.can_write(),
            can_manage: access.can_manage(),
            pending,
            space: access.space,
        },
    )
}

struct AttachmentView {
    id: i64,
    file_name: String,
    kib: String,
    /// Added by a writer, waiting for a manager: readers do not see it yet.
    pending: bool,
    /// Its removal was asked for and waits for a manager.
    removal_requested: bool,
}

#[derive(Template)]
#[template(path = "space_page.html")]
struct ShowPage {
    shell: Shell,
    space: store::Space,
    page: pages::Page,
    html: String,
    updated: String,
    attachments: Vec<AttachmentView>,
    /// The sub-pages this agent can see.
    children: Vec<pages::PageSummary>,
    can_write: bool,
    can_delete: bool,
    /// Deleting the page would only ask a manager to.
    delete_needs_approval: bool,
}

/// The attachments of a page this agent may see (pending ones only for their author and the
/// managers), ready to show.
fn attachment_views(
    list: Vec<pages::Attachment>,
    access: &Access,
    account_id: i64,
) -> Vec<AttachmentView> {
    list.into_iter()
        .filter(|a| a.visible_to(access, account_id))
        .map(|a| AttachmentView {
            pending: a.is_pending(),
            removal_requested: a.removal_requested,
            id: a.id,
            file_name: a.file_name,
            kib: (a.size.max(0) as u64).div_ceil(1024).to_string(),
        })
        .collect()
}

async fn show_page(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    Path((slug, page)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let (access, page) = readable_page(&state, &user.account, &slug, &page).await?;
    let attachments = attachment_views(
        pages::attachments(&state.db, page.id).await?,
        &access,
        user.account.id,
    );
    let children = pages::visible_pages(&state.db, &access)
        .await?
        .into_iter()
        .filter(|p| p.parent_id == Some(page.id))
        .collect();
    render(
        StatusCode::OK,
        &ShowPage {
            updated: ctx.shell.when(page.updated_at),
            shell: ctx.shell,
            children,
            html: crate::markdown::render(&page.body),
            attachments,
            can_write: access.can_write(),
            can_delete: access.can_delete(),
            delete_needs_approval: access.needs_approval(),
            space: access.space,
            page,
        },
    )
}

struct ParentChoice {
    id: i64,
    title: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "space_page_form.html")]
struct PageFormPage {
    shell: Shell,
    space: store::Space,
    /// `None` for a new page.
    editing: Option<pages::Page>,
    title: String,
    slug: String,
    body: String,
    parents: Vec<ParentChoice>,
    picker: AudiencePicker,
    attachments: Vec<AttachmentView>,
    /// Saving sends the page to the space's managers for approval.
    needs_approval: bool,
}

async fn writable(state: &AppState, account: &Account, slug: &str) -> Result<Access, AppError> {
    let access = readable(state, account, slug).await?;
    if !access.can_write() {
        return Err(AppError::Forbidden);
    }
    Ok(access)
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
        &shell.t("spaces-audience-page-everyone"),
    ))
}

async fn new_page_form(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
) -> Result<Response, AppError> {
    let access = writable(&state, &user.account, &slug).await?;
    let visible = pages::visible_pages(&state.db, &access).await?;
    let picker = picker(&state, &ctx.shell, &[]).await?;
    let needs_approval = access.needs_approval();
    render(
        StatusCode::OK,
        &PageFormPage {
            shell: ctx.shell,
            space: access.space,
            editing: None,
            title: String::new(),
            slug: String::new(),
            body: String::new(),
            parents: visible
                .into_iter()
                .map(|p| ParentChoice {
                    id: p.id,
                    title: p.title,
                    selected: false,
                })
                .collect(),
            picker,
            attachments: Vec::new(),
            needs_approval,
        },
    )
}

/// Checks a submitted page form. `editing` is the page being edited, if any.
async fn page_input(
    state: &AppState,
    shell: &Shell,
    access: &Access,
    fields: &Fields,
    editing: Option<i64>,
) -> Result<PageInput, AppError> {
    let title = fields.get("title");
    if title.is_empty() || title.chars().count() > 200 {
        return Err(AppError::BadRequest("spaces-error-page-title"));
    }
    let slug = match fields.get("slug") {
        "" => super::slugify(title),
        typed => typed.to_owned(),
    };
    if !super::valid_slug(&slug) {
        return Err(AppError::BadRequest("spaces-error-slug"));
    }
    if pages::slug_taken(&state.db, access.space.id, &slug, editing).await? {
        return Err(AppError::BadRequest("spaces-error-page-slug-taken"));
    }
    let body = fields.raw("body").replace("\r\n", "\n");
    if body.len() > crate::markdown::MAX_SOURCE_BYTES {
        return Err(AppError::BadRequest("spaces-error-page-body"));
    }
    // The parent must be a page of this space the author can see, and not the page itself
    // or one of its descendants (which would make a cycle).
    let visible = pages::visible_pages(&state.db, access).await?;
    let parent_id = match fields.get("parent") {
        "" => None,
        text => {
            let id: i64 = text
                .parse()
                .map_err(|_| AppError::BadRequest("spaces-error-parent"))?;
            let forbidden = editing.map(|e| pages::descendants(&visible, e));
            if !visible.iter().any(|p| p.id == id) || forbidden.is_some_and(|f| f.contains(&id)) {
                return Err(AppError::BadRequest("spaces-error-parent"));
            }
            Some(id)
        }
    };
    let audience = picker(state, shell, &[])
        .await?
        .accept(&fields.all("audience"))?;
    Ok(PageInput {
        title: title.to_owned(),
        slug,
        body,
        parent_id,
        audience,
    })
}

fn page_target(id: i64) -> Option<String> {
    Some(format!("page:{id}"))
}

async fn create_page(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Path(slug): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let access = writable(&state, &user.account, &slug).await?;
    let input = page_input(&state, &ctx.shell, &access, &Fields(fields), None).await?;
    let author = Author {
        account_id: Some(user.account.id),
        name: &user.account.display_name,
    };
    if access.needs_approval() {
        return super::approval::submit(&state, &actor, &access, None, &input, &author).await;
    }
    let mut tx = state.db.begin().await?;
    let id = pages::create_page(&mut tx, access.space.id, &input, &author)
        .await
        .map_err(|e| super::unique_as(e, "spaces-error-page-slug-taken"))?;
    security_events::record(
        &mut tx,
        &actor,
        "page.create",
        page_target(id),
        "success",
        json!({ "space": access.space.slug, "slug": input.slug, "title": input.title,
                "audience": input.audience }),
    )
    .await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!(
        "/spaces/{}/pages/{}",
        access.space.slug, input.slug
    ))
    .into_response())
}

async fn edit_page_form(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    Path((slug, page)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let (access, page) = readable_page(&state, &user.account, &slug, &page).await?;
    if !access.can_write() {
        return Err(AppError::Forbidden);
    }
    let visible = pages::visible_pages(&state.db, &access).await?;
    let excluded = pages::descendants(&visible, page.id);
    let selected = pages::page_audience(&state.db, page.id).await?;
    let picker = picker(&state, &ctx.shell, &selected).await?;
    let attachments = attachment_views(
        pages::attachments(&state.db, page.id).await?,
        &access,
        user.account.id,
    );
    render(
        StatusCode::OK,
        &PageFormPage {
            shell: ctx.shell,
            parents: visible
                .into_iter()
                .filter(|p| !excluded.contains(&p.id))
                .map(|p| ParentChoice {
                    selected: Some(p.id) == page.parent_id,
                    id: p.id,
                    title: p.title,
                })
                .collect(),
            title: page.title.clone(),
            slug: page.slug.clone(),
            body: page.body.clone(),
            needs_approval: access.needs_approval(),
            space: access.space,
            editing: Some(page),
            picker,
            attachments,
        },
    )
}

async fn update_page(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Path((slug, page)): Path<(String, String)>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let (access, page) = readable_page(&state, &user.account, &slug, &page).await?;
    if !access.can_write() {
        return Err(AppError::Forbidden);
    }
    let input = page_input(&state, &ctx.shell, &access, &Fields(fields), Some(page.id)).await?;
    let author = Author {
        account_id: Some(user.account.id),
        name: &user.account.display_name,
    };
    if access.needs_approval() {
        let editing = Some(page.id);
        return super::approval::submit(&state, &actor, &access, editing, &input, &author).await;
    }
    let mut tx = state.db.begin().await?;
    let version = pages::update_page(&mut tx, page.id, &input, &author)
        .await
        .map_err(|e| super::unique_as(e, "spaces-error-page-slug-taken"))?;
    security_events::record(
        &mut tx,
        &actor,
        "page.update",
        page_target(page.id),
        "success",
        json!({ "space": access.space.slug, "slug": input.slug, "title": input.title,
                "version": version, "audience": input.audience }),
    )
    .await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!(
        "/spaces/{}/pages/{}",
        access.space.slug, input.slug
    ))
    .into_response())
}

async fn delete_page(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Path((slug, page)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let (access, page) = readable_page(&state, &user.account, &slug, &page).await?;
    if !access.can_delete() {
        return Err(AppError::Forbidden);
    }
    let mut tx = state.db.begin().await?;
    if access.needs_approval() {
        // The page stays until a manager decides (see `super::changes`).
        if super::changes::request_deletion(&mut tx, page.id, user.account.id).await? {
            security_events::record(
                &mut tx,
                &actor,
                "page.delete_request",
                page_target(page.id),
                "success",
                json!({ "space": access.space.slug, "slug": page.slug, "title": page.title }),
            )
            .await?;
        }
        tx.commit().await?;
        return Ok(Redirect::to(&format!(
            "/spaces/{}/pending?done=deletion-requested",
            access.space.slug
        ))
        .into_response());
    }
    pages::delete_page(&mut tx, page.id).await?;
    security_events::record(
        &mut tx,
        &actor,
        "page.delete",
        page_target(page.id),
        "success",
        json!({ "space": access.space.slug, "slug": page.slug, "title": page.title,
                "versions": page.version }),
    )
    .await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/spaces/{}", access.space.slug)).into_response())
}

struct VersionView {
    version: i64,
    title: String,
    by: String,
    at: String,
}

#[derive(Template)]
#[template(path = "space_history.html")]
struct HistoryPage {
    shell: Shell,
    space: store::Space,
    page: pages::Page,
    versions: Vec<VersionView>,
}

async fn history(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    Path((slug, page)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let (access, page) = readable_page(&state, &user.account, &slug, &page).await?;
    let versions = pages::versions(&state.db, page.id)
        .await?
        .into_iter()
        .map(|v| VersionView {
            version: v.version,
            title: v.title,
            by: v.edited_by_name,
            at: ctx.shell.when(v.edited_at),
        })
        .collect();
    render(
        StatusCode::OK,
        &HistoryPage {
            shell: ctx.shell,
            space: access.space,
            page,
            versions,
        },
    )
}

#[derive(Template)]
#[template(path = "space_version.html")]
struct VersionPage {
    shell: Shell,
    space: store::Space,
    page: pages::Page,
    version: VersionView,
    html: String,
}

async fn show_version(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    Path((slug, page, version)): Path<(String, String, String)>,
) -> Result<Response, AppError> {
    let (access, page) = readable_page(&state, &user.account, &slug, &page).await?;
    let number: i64 = version.parse().map_err(|_| AppError::NotFound)?;
    let old = pages::version(&state.db, page.id, number)
        .await?
        .ok_or(AppError::NotFound)?;
    render(
        StatusCode::OK,
        &VersionPage {
            html: crate::markdown::render(&old.body),
            version: VersionView {
                version: old.version,
                title: old.title,
                by: old.edited_by_name,
                at: ctx.shell.when(old.edited_at),
            },
            shell: ctx.shell,
            space: access.space,
            page,
        },
    )
}

/// The browser's file name reduced to its last component, without control characters.
fn clean_file_name(given: Option<&str>) -> String {
    let name = given
        .unwrap_or_default()
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default();
    let name: String = name.chars().filter(|c| !c.is_control()).take(200).collect();
    let name = name.trim();
    if name.is_empty() || name == "." || name == ".." {
        "fichier".to_owned()
    } else {
        name.to_owned()
    }
}

async fn upload_attachment(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Path((slug, page)): Path<(String, String)>,
    form: UploadForm,
) -> Result<Response, AppError> {
    let (access, page) = readable_page(&state, &user.account, &slug, &page).await?;
    if !access.can_write() {
        return Err(AppError::Forbidden);
    }
    let file = form
        .file("file")
        .ok_or(AppError::BadRequest("spaces-error-file-missing"))?;
    if file.bytes.len() > pages::MAX_ATTACHMENT_BYTES {
        return Err(AppError::PayloadTooLarge);
    }
    let media_type =
        MediaType::sniff(&file.bytes).ok_or(AppError::BadRequest("spaces-error-file-type"))?;
    let file_name = clean_file_name(file.file_name.as_deref());
    let blob = state.blobs.put(file.bytes.to_vec(), media_type).await?;
    // In an approval space, a file added by a writer who cannot approve waits for a manager.
    let pending = access.needs_approval();
    let mut tx = state.db.begin().await?;
    let id = pages::add_attachment(
        &mut tx,
        page.id,
        &blob,
        &file_name,
        Some(user.account.id),
        pending,
    )
    .await?;
    security_events::record(
        &mut tx,
        &actor,
        "page.attachment_add",
        page_target(page.id),
        "success",
        json!({ "space": access.space.slug, "page": page.slug, "attachment": id,
                "file_name": file_name, "size": blob.size, "sha256": blob.sha256,
                "media_type": media_type.as_str(), "pending": pending }),
    )
    .await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!(
        "/spaces/{}/pages/{}/edit",
        access.space.slug, page.slug
    ))
    .into_response())
}

async fn delete_attachment(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Path((slug, page, id)): Path<(String, String, String)>,
) -> Result<Response, AppError> {
    let (access, page) = readable_page(&state, &user.account, &slug, &page).await?;
    if !access.can_write() {
        return Err(AppError::Forbidden);
    }
    let id: i64 = id.parse().map_err(|_| AppError::NotFound)?;
    let attachment = pages::attachment(&state.db, page.id, id)
        .await?
        .filter(|a| a.visible_to(&access, user.account.id))
        .ok_or(AppError::NotFound)?;
    let details = json!({ "space": access.space.slug, "page": page.slug, "attachment": id,
                          "file_name": attachment.file_name, "sha256": attachment.sha256 });
    let mut tx = state.db.begin().await?;
    if attachment.is_pending() {
        // A file never published: its author (or a manager) withdraws it at once.
        if !super::changes::may_withdraw(&attachment, &access, user.account.id) {
            return Err(AppError::Forbidden);
        }
        pages::remove_attachment(&mut tx, page.id, id).await?;
        security_events::record(
            &mut tx,
            &actor,
            "page.attachment_remove",
            page_target(page.id),
            "success",
            details,
        )
        .await?;
    } else if access.needs_approval() {
        // A published file stays until a manager approves its removal.
        if super::changes::request_removal(&mut tx, page.id, id, user.account.id).await? {
            security_events::record(
                &mut tx,
                &actor,
                "page.attachment_remove_request",
                page_target(page.id),
                "success",
                details,
            )
            .await?;
        }
    } else {
        pages::remove_attachment(&mut tx, page.id, id).await?;
        security_events::record(
            &mut tx,
            &actor,
            "page.attachment_remove",
            page_target(page.id),
            "success",
            details,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Redirect::to(&format!(
        "/spaces/{}/pages/{}/edit",
        access.space.slug, page.slug
    ))
    .into_response())
}

/// `Content-Disposition` with an ASCII fallback name and the exact name in RFC 5987 form.
fn disposition(inline: bool, file_name: &str) -> String {
    let ascii: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded =
        percent_encoding::utf8_percent_encode(file_name, percent_encoding::NON_ALPHANUMERIC);
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

async fn download_attachment(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path((slug, page, id)): Path<(String, String, String)>,
) -> Result<Response, AppError> {
    let (access, page) = readable_page(&state, &user.account, &slug, &page).await?;
    let id: i64 = id.parse().map_err(|_| AppError::NotFound)?;
    let attachment = pages::attachment(&state.db, page.id, id)
        .await?
        .filter(|a| a.visible_to(&access, user.account.id))
        .ok_or(AppError::NotFound)?;
    let media_type = MediaType::parse(&attachment.media_type)
        .ok_or_else(|| AppError::Internal("unknown stored media type".into()))?;
    let bytes = state
        .blobs
        .get(&attachment.sha256)
        .await?
        .ok_or_else(|| AppError::Internal(format!("blob {} missing", attachment.sha256)))?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    let header_value =
        |v: &str| HeaderValue::from_str(v).map_err(|e| AppError::Internal(e.to_string()));
    headers.insert(header::CONTENT_TYPE, header_value(media_type.mime())?);
    headers.insert(
        header::CONTENT_DISPOSITION,
        header_value(&disposition(media_type.is_image(), &attachment.file_name))?,
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_paths_and_headers_stay_ascii() {
        assert_eq!(
            clean_file_name(Some("C:\\Users\\x\\règles.pdf")),
            "règles.pdf"
        );
        assert_eq!(clean_file_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(clean_file_name(Some("..")), "fichier");
        assert_eq!(clean_file_name(None), "fichier");
        let d = disposition(false, "règles \"télétravail\".pdf");
        assert!(d.starts_with("attachment; filename=\"r_gles _t_l_travail_.pdf\""));
        assert!(d.contains("filename*=UTF-8''r%C3%A8gles"));
        assert!(disposition(true, "plan.png").starts_with("inline;"));
    }
}
