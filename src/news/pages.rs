//! The reader's pages: the wall (the home page), one item, its edit history, its image, and
//! the "J'ai lu ce message" form.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::AppState;
use crate::http::error::AppError;
use crate::http::extract::{CurrentUser, Form};
use crate::http::pages::{PageContext, Shell, render};
use crate::news::service::{self, Caller};
use crate::news::store::{self, WallCursor, WallRow};
use crate::news::{CATEGORIES, Status};
use crate::routes::RouteTable;
use crate::security_events::Actor;

/// Items per wall page.
pub const WALL_PAGE: i64 = 20;
/// Pending mandatory reads listed at the top of the wall; the rest are one link away, on
/// `/news/to-read`. A handful keeps the wall readable on a phone and its cost flat however
/// many an agent has let pile up.
pub const MANDATORY_ON_WALL: usize = 5;
/// Pending mandatory reads listed on `/news/to-read`.
const MANDATORY_LISTED: i64 = 200;

pub fn routes(table: RouteTable) -> RouteTable {
    table
        .get("/news/to-read", to_read_page)
        .get("/news/{id}", item_page)
        .get("/news/{id}/history", history_page)
        .get("/news/{id}/image", image)
        .post("/news/{id}/ack", acknowledge)
}

/// A news id from the path; anything else is simply not found.
pub fn parse_id(text: &str) -> Result<i64, AppError> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(AppError::NotFound)
}

/// The message shown after an action (`?done=…` on the page redirected to).
pub fn notice(shell: &Shell, done: Option<&str>) -> Option<String> {
    let id = match done? {
        "ack" => "news-done-ack",
        "created" => "news-done-created",
        "updated" => "news-done-updated",
        "pending" => "news-done-pending",
        "draft" => "news-done-draft",
        "approved" => "news-done-approved",
        "rejected" => "news-done-rejected",
        "archived" => "news-done-archived",
        "reminded" => "news-done-reminded",
        _ => return None,
    };
    Some(shell.t(id))
}

/// One category choice of the wall's filter.
pub struct CategoryChoice {
    pub key: &'static str,
    pub label: String,
    pub selected: bool,
}

pub fn category_choices(shell: &Shell, selected: &str) -> Vec<CategoryChoice> {
    CATEGORIES
        .iter()
        .map(|key| CategoryChoice {
            key,
            label: shell.t(&format!("news-category-{key}")),
            selected: *key == selected,
        })
        .collect()
}

/// An item as the wall shows it.
pub struct Card {
    pub id: i64,
    pub title: String,
    pub summary: String,
    pub category: String,
    pub space_name: String,
    pub published: String,
    pub published_iso: String,
    pub important: bool,
    pub pinned: bool,
    pub has_image: bool,
    pub image_alt: String,
    pub ack_required: bool,
    pub acknowledged: bool,
    pub reminded: bool,
    pub deadline: Option<(String, String)>,
    pub version: i64,
}

impl Card {
    fn from_row(shell: &Shell, row: WallRow) -> Self {
        let summary = row
            .summary
            .unwrap_or_else(|| crate::news::summary_of(&row.body));
        Self {
            id: row.id,
            title: row.title,
            summary,
            category: shell.t(&format!("news-category-{}", row.category)),
            space_name: row.space_name,
            published: shell.when(row.publish_at),
            published_iso: shell.when_iso(row.publish_at),
            important: row.important,
            pinned: row.pinned,
            has_image: row.has_image,
            image_alt: row.image_alt.unwrap_or_default(),
            ack_required: row.ack_required,
            acknowledged: row.acknowledged,
            reminded: row.reminded,
            deadline: row.ack_deadline.map(|d| shell.when_pair(d)),
            version: row.current_version_id.unwrap_or(0),
        }
    }
}

#[derive(Template)]
#[template(path = "home.html")]
struct WallPage {
    shell: Shell,
    display_name: String,
    /// The agent's roles, shown under the greeting: what they may do here is no secret to them.
    roles: String,
    notice: Option<String>,
    mandatory: Vec<Card>,
    /// More pending mandatory reads than the wall lists: it links to all of them.
    more_mandatory: bool,
    cards: Vec<Card>,
    categories: Vec<CategoryChoice>,
    next_href: Option<String>,
    writable: Vec<(i64, String, String)>,
}

#[derive(Debug, Default, Deserialize)]
pub struct WallQuery {
    #[serde(default)]
    category: String,
    #[serde(default)]
    after: String,
    #[serde(default)]
    done: String,
}

/// `/`: the signed-in agent's wall.
pub async fn wall(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    query: Result<Query<WallQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let Query(query) = query.map_err(|_| AppError::BadRequest("error-bad-request"))?;
    let category = match query.category.as_str() {
        "" => None,
        c if crate::news::valid_category(c) => Some(c),
        _ => return Err(AppError::BadRequest("news-error-category")),
    };
    let after = match query.after.as_str() {
        "" => None,
        a => Some(WallCursor::parse(a).ok_or(AppError::BadRequest("news-error-page"))?),
    };
    let db = &state.db;
    let now = state.clock.now();
    let account = &user.account;
    let agent = user.audience.clone();
    // The first page comes with the pending mandatory reads, which stay at its top until
    // acknowledged (one more than is shown is asked for, to know whether to link to the full
    // list); later pages come alone.
    let probe = i64::try_from(MANDATORY_ON_WALL + 1).unwrap_or(6);
    let (mut rows, mut mandatory) = match after {
        None => {
            store::first_page(db, &agent, account.id, now, category, WALL_PAGE + 1, probe).await?
        }
        Some(_) => (
            store::wall(db, &agent, account.id, now, category, after, WALL_PAGE + 1).await?,
            Vec::new(),
        ),
    };
    let more = rows.len() as i64 > WALL_PAGE;
    rows.truncate(usize::try_from(WALL_PAGE).unwrap_or(20));
    let next_href = rows.last().filter(|_| more).map(|last| {
        let cursor = WallCursor {
            pinned: last.pinned,
            publish_at: last.publish_at,
            id: last.id,
        };
        match category {
            Some(c) => format!("/?category={c}&after={}", cursor.encode()),
            None => format!("/?after={}", cursor.encode()),
        }
    });
    let shell = ctx.shell;
    let more_mandatory = mandatory.len() > MANDATORY_ON_WALL;
    mandatory.truncate(MANDATORY_ON_WALL);
    let admin = account.has_role(crate::accounts::Role::Admin);
    let writable = if admin || user.standing.writes {
        store::writable_spaces(db, account.id, admin).await?
    } else {
        Vec::new()
    };
    let page = WallPage {
        display_name: account.display_name.clone(),
        roles: account
            .roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        notice: notice(&shell, Some(&query.done)),
        mandatory: mandatory
            .into_iter()
            .map(|r| Card::from_row(&shell, r))
            .collect(),
        more_mandatory,
        cards: rows
            .into_iter()
            .map(|r| Card::from_row(&shell, r))
            .collect(),
        categories: category_choices(&shell, category.unwrap_or("")),
        next_href,
        writable,
        shell,
    };
    render(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "news_to_read.html")]
struct ToReadPage {
    shell: Shell,
    notice: Option<String>,
    mandatory: Vec<Card>,
    /// The list stops at `MANDATORY_LISTED`; said so when it does.
    truncated: bool,
}

/// `/news/to-read`: every mandatory read the agent has still to confirm, earliest deadline
/// first (the wall lists only the first few).
async fn to_read_page(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    query: Result<Query<WallQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let Query(query) = query.map_err(|_| AppError::BadRequest("error-bad-request"))?;
    let db = &state.db;
    let agent = user.audience.clone();
    let mut rows = store::unacknowledged(
        db,
        &agent,
        user.account.id,
        state.clock.now(),
        MANDATORY_LISTED + 1,
    )
    .await?;
    let limit = usize::try_from(MANDATORY_LISTED).unwrap_or(200);
    let truncated = rows.len() > limit;
    rows.truncate(limit);
    let shell = ctx.shell;
    let page = ToReadPage {
        notice: notice(&shell, Some(&query.done)),
        mandatory: rows
            .into_iter()
            .map(|r| Card::from_row(&shell, r))
            .collect(),
        truncated,
        shell,
    };
    render(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "news_item.html")]
struct ItemPage {
    shell: Shell,
    notice: Option<String>,
    id: i64,
    title: String,
    body_html: String,
    category: String,
    space_name: String,
    author: String,
    published: String,
    published_iso: String,
    expires: Option<String>,
    /// A state other than "live", for those who may see it (editors, the author).
    status_label: Option<String>,
    rejection_reason: Option<String>,
    important: bool,
    pinned: bool,
    has_image: bool,
    image_alt: String,
    ack: Option<AckView>,
    can_edit: bool,
    can_manage: bool,
    can_decide: bool,
    can_archive: bool,
}

pub struct AckView {
    /// The agent is in the audience of the live item and may acknowledge it.
    pub for_agent: bool,
    pub acknowledged: Option<String>,
    pub deadline: Option<String>,
    pub reminded: bool,
    pub version: i64,
}

#[derive(Debug, Default, Deserialize)]
pub struct DoneQuery {
    #[serde(default)]
    done: String,
}

pub fn status_label(shell: &Shell, status: &str, publish_at: i64, now: i64) -> Option<String> {
    match Status::parse(status)? {
        Status::Published if publish_at > now => {
            Some(shell.t1("news-status-scheduled", "date", &shell.when(publish_at)))
        }
        Status::Published => None,
        other => Some(shell.t(&format!("news-status-{}", other.as_str()))),
    }
}

async fn item_page(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
    Query(query): Query<DoneQuery>,
) -> Result<Response, AppError> {
    let id = parse_id(&id)?;
    let db = &state.db;
    let now = state.clock.now();
    let agent = user.audience.clone();
    let viewed = service::view(db, &user, &agent, now, id).await?;
    let item = &viewed.item;
    let access = viewed.access;
    let shell = ctx.shell;
    let for_agent = item.is_live(now) && agent.matches(viewed.audience.iter().map(String::as_str));
    let ack = if item.ack_required {
        Some(AckView {
            for_agent,
            acknowledged: store::acknowledged_at(db, item, user.account.id)
                .await?
                .map(|t| shell.when(t)),
            deadline: item.ack_deadline.map(|t| shell.when(t)),
            reminded: store::reminded(db, item).await?,
            version: item.current_version_id.unwrap_or(0),
        })
    } else {
        None
    };
    let status = Status::parse(&item.status).unwrap_or(Status::Draft);
    let own = item.author_id == Some(user.account.id) && access.can_write();
    let expired = item.expire_at.is_some_and(|e| e <= now);
    let mut status_text = status_label(&shell, &item.status, item.publish_at, now);
    if status == Status::Published && expired {
        status_text = Some(shell.t("news-status-expired"));
    }
    let page = ItemPage {
        notice: notice(&shell, Some(query.done.as_str())),
        id,
        title: item.title.clone(),
        body_html: crate::markdown::render(&item.body),
        category: shell.t(&format!("news-category-{}", item.category)),
        space_name: item.space_name.clone(),
        author: item.author_name.clone().unwrap_or_default(),
        published: shell.when(item.publish_at),
        published_iso: shell.when_iso(item.publish_at),
        expires: item.expire_at.map(|t| shell.when(t)),
        status_label: status_text,
        rejection_reason: item
            .rejection_reason
            .clone()
            .filter(|_| status == Status::Rejected),
        important: item.important,
        pinned: item.pinned,
        has_image: item.image_sha256.is_some(),
        image_alt: item.image_alt.clone().unwrap_or_default(),
        ack,
        can_edit: status != Status::Archived
            && (access.can_manage_items()
                || (own && matches!(status, Status::Draft | Status::Pending | Status::Rejected))),
        can_manage: access.can_manage_items(),
        can_decide: access.can_approve() && status == Status::Pending,
        can_archive: access.can_manage_items() && status != Status::Archived,
        shell,
    };
    render(StatusCode::OK, &page)
}

pub struct VersionView {
    pub id: i64,
    pub title: String,
    pub author: String,
    pub when: String,
    pub when_iso: String,
    pub change: String,
    pub sha256: String,
}

#[derive(Template)]
#[template(path = "news_history.html")]
struct HistoryPage {
    shell: Shell,
    id: i64,
    title: String,
    versions: Vec<VersionView>,
}

/// The edit history is for those who may edit: the space's editors and the author.
async fn history_page(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = parse_id(&id)?;
    let db = &state.db;
    let agent = user.audience.clone();
    let viewed = service::view(db, &user, &agent, state.clock.now(), id).await?;
    let own = viewed.item.author_id == Some(user.account.id) && viewed.access.can_write();
    if !(viewed.access.can_manage_items() || viewed.access.can_approve() || own) {
        return Err(AppError::NotFound);
    }
    let shell = ctx.shell;
    let versions = store::versions(db, id)
        .await?
        .into_iter()
        .map(|v| VersionView {
            id: v.id,
            title: v.title,
            author: v.author_name,
            when: shell.when(v.created_at),
            when_iso: shell.when_iso(v.created_at),
            change: shell.t(&format!("news-change-{}", v.change_kind)),
            sha256: v.body_sha256,
        })
        .collect();
    render(
        StatusCode::OK,
        &HistoryPage {
            title: viewed.item.title,
            id,
            versions,
            shell,
        },
    )
}

/// The item's image, only to those who may read the item.
async fn image(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = parse_id(&id)?;
    let db = &state.db;
    let agent = user.audience.clone();
    let viewed = service::view(db, &user, &agent, state.clock.now(), id).await?;
    let (Some(sha), Some(mime)) = (viewed.item.image_sha256, viewed.item.image_type) else {
        return Err(AppError::NotFound);
    };
    let bytes = state.blobs.get(&sha).await?.ok_or(AppError::NotFound)?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&mime).map_err(|e| AppError::Internal(e.to_string()))?,
    );
    // Private: a shared cache must never hand one agent's image to another.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct AckForm {
    version: i64,
    #[serde(default)]
    from: String,
}

async fn acknowledge(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Path(id): Path<String>,
    Form(form): Form<AckForm>,
) -> Result<Response, AppError> {
    let id = parse_id(&id)?;
    let db = &state.db;
    let agent = user.audience.clone();
    let caller = Caller {
        db,
        actor: &actor,
        session: &user,
        agent: &agent,
        now: state.clock.now(),
    };
    service::acknowledge(&caller, id, form.version).await?;
    let to = if form.from == "wall" {
        "/?done=ack".to_owned()
    } else if form.from == "to-read" {
        "/news/to-read?done=ack".to_owned()
    } else {
        format!("/news/{id}?done=ack")
    };
    Ok(Redirect::to(&to).into_response())
}
