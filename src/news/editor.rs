//! The writer's and the manager's pages: write and edit an item (a multipart form, for the
//! image), the approval queue with the writer's own items and their outcome, approve or
//! reject, archive.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::AppState;
use crate::accounts::Role;
use crate::audience::Rule;
use crate::blobs::{BlobError, MediaType, StoredBlob};
use crate::http::error::AppError;
use crate::http::extract::{CurrentUser, Form};
use crate::http::pages::{PageContext, Shell, render};
use crate::http::upload::UploadForm;
use crate::news::pages::{CategoryChoice, category_choices, notice, parse_id, status_label};
use crate::news::service::{self, Caller, Change, Decision, Intent, Submission, sha256_hex};
use crate::news::store::{self, ItemFields};
use crate::news::{MAX_IMAGE_BYTES, valid_category};
use crate::routes::RouteTable;
use crate::security_events::Actor;
use crate::timefmt::{InputTimeError, OrgZone};

pub fn routes(table: RouteTable) -> RouteTable {
    table
        .get("/news/new", new_page)
        .post("/news/new", create)
        .get("/news/{id}/edit", edit_page)
        .post("/news/{id}/edit", update)
        .post("/news/{id}/decision", decide)
        .post("/news/{id}/archive", archive)
        .get("/news/pending", pending_page)
}

/// The longest title and rejection reason accepted.
const MAX_TITLE: usize = 200;
const MAX_REASON: usize = 1000;
/// The longest text alternative of an image: a sentence, not the article again.
const MAX_IMAGE_ALT: usize = 250;

/// The form as typed, for showing it again.
#[derive(Debug, Clone, Default)]
pub struct FormValues {
    pub title: String,
    pub body: String,
    pub category: String,
    pub important: bool,
    pub pinned: bool,
    pub publish_at: String,
    pub expire_at: String,
    pub ack_required: bool,
    pub ack_deadline: String,
    pub audience: Vec<String>,
    pub material: bool,
    /// The image's text alternative (RGAA 1.1), or a stated decorative image.
    pub image_alt: String,
    pub image_decorative: bool,
}

impl FormValues {
    fn from_upload(form: &UploadForm) -> Self {
        let text = |name: &str| form.field(name).unwrap_or_default().to_owned();
        let checked = |name: &str| form.field(name).is_some();
        Self {
            title: text("title").trim().to_owned(),
            body: text("body"),
            category: text("category"),
            important: checked("important"),
            pinned: checked("pinned"),
            publish_at: text("publish_at"),
            expire_at: text("expire_at"),
            ack_required: checked("ack_required"),
            ack_deadline: text("ack_deadline"),
            audience: form
                .fields
                .iter()
                .filter(|(n, _)| n == "audience")
                .map(|(_, v)| v.clone())
                .collect(),
            material: form.field("change") == Some("material"),
            image_alt: text("image_alt").trim().to_owned(),
            image_decorative: checked("image_decorative"),
        }
    }

    /// The text alternative to store when the item has an image (RGAA criterion 1.1: every
    /// informative image has one; a decorative image has an empty `alt`, stated as such by the
    /// writer rather than assumed). `None`: no image, nothing to store.
    fn image_alt(&self, has_image: bool) -> Result<Option<String>, &'static str> {
        if !has_image {
            return Ok(None);
        }
        if self.image_decorative {
            return Ok(Some(String::new()));
        }
        let alt = self.image_alt.trim();
        if alt.is_empty() || alt.chars().count() > MAX_IMAGE_ALT {
            return Err("news-error-image-alt");
        }
        Ok(Some(alt.to_owned()))
    }

    /// Checks everything, reading typed times in the organisation's `zone`; the error is the
    /// fluent id of what is wrong.
    fn submission(
        &self,
        intent: Intent,
        now: i64,
        zone: &OrgZone,
    ) -> Result<Submission, &'static str> {
        if self.title.is_empty() || self.title.chars().count() > MAX_TITLE {
            return Err("news-error-title");
        }
        if self.body.trim().is_empty() || self.body.len() > crate::markdown::MAX_SOURCE_BYTES {
            return Err("news-error-body");
        }
        if !valid_category(&self.category) {
            return Err("news-error-category");
        }
        // A time skipped by the change to summer time is refused naming its field: moving it
        // an hour either way would publish or expire at a time nobody chose.
        let time = |text: &str, gap: &'static str| -> Result<Option<i64>, &'static str> {
            match text.trim() {
                "" => Ok(None),
                t => match zone.parse_input(t) {
                    Ok(instant) => Ok(Some(instant)),
                    Err(InputTimeError::Gap) => Err(gap),
                    Err(InputTimeError::Invalid) => Err("news-error-date"),
                },
            }
        };
        let publish_at = time(&self.publish_at, "news-error-gap-publish-at")?.unwrap_or(now);
        let expire_at = time(&self.expire_at, "news-error-gap-expire-at")?;
        if expire_at.is_some_and(|e| e <= publish_at) {
            return Err("news-error-expiry");
        }
        let ack_deadline = time(&self.ack_deadline, "news-error-gap-ack-deadline")?;
        if ack_deadline.is_some() && !self.ack_required {
            return Err("news-error-deadline-without-ack");
        }
        let audience: Vec<Rule> = self
            .audience
            .iter()
            .map(|k| Rule::parse(k).ok_or("news-error-audience"))
            .collect::<Result<_, _>>()?;
        if audience.is_empty() {
            return Err("news-error-audience");
        }
        // Markdown line endings from browsers are CRLF; the hash is of the text as stored.
        let body = self.body.replace("\r\n", "\n");
        Ok(Submission {
            fields: ItemFields {
                title: self.title.clone(),
                body_sha256: sha256_hex(&body),
                summary: crate::news::summary_of(&body),
                body,
                category: self.category.clone(),
                important: self.important,
                pinned: self.pinned,
                publish_at,
                expire_at,
                ack_required: self.ack_required,
                ack_deadline,
            },
            audience,
            intent,
            image_alt: None,
            change: if self.material {
                Change::Material
            } else {
                Change::Minor
            },
        })
    }
}

pub struct AudienceChoice {
    pub key: String,
    pub label: String,
    pub checked: bool,
    pub index: usize,
}

#[derive(Template)]
#[template(path = "news_form.html")]
struct FormPage {
    shell: Shell,
    error: Option<String>,
    /// `None` for a new item.
    id: Option<i64>,
    space_id: i64,
    space_name: String,
    approval_required: bool,
    values: FormValues,
    categories: Vec<CategoryChoice>,
    audiences: Vec<AudienceChoice>,
    has_image: bool,
    was_acknowledged_text: bool,
    /// "Heure de Paris (UTC+1)": the zone typed times are read in, with today's offset.
    zone_hint: String,
}

/// Which item the form is for: `id` is `None` for a new one; `space` is (id, name, approval).
struct FormTarget {
    id: Option<i64>,
    space: (i64, String, bool),
    has_image: bool,
}

async fn form_page(
    state: &AppState,
    shell: Shell,
    status: StatusCode,
    error: Option<&'static str>,
    target: FormTarget,
    values: FormValues,
) -> Result<Response, AppError> {
    let FormTarget {
        id,
        space,
        has_image,
    } = target;
    let mut choices = vec![("everyone".to_owned(), shell.t("news-audience-everyone"))];
    for role in [Role::Agent, Role::Editor, Role::Admin] {
        choices.push((
            Rule::Role(role).key(),
            shell.t1("news-audience-role", "role", role.as_str()),
        ));
    }
    for (key, name) in store::audience_choices(&state.db).await? {
        let kind = key.split(':').next().unwrap_or_default();
        choices.push((
            key.clone(),
            shell.t1(&format!("news-audience-{kind}"), "name", &name),
        ));
    }
    let audiences = choices
        .into_iter()
        .enumerate()
        .map(|(index, (key, label))| AudienceChoice {
            checked: values.audience.contains(&key),
            key,
            label,
            index,
        })
        .collect();
    // Date errors name the zone the times were read in.
    let city = shell.zone.city();
    let page = FormPage {
        error: error.map(|e| shell.t1(e, "city", &city)),
        zone_hint: shell.zone.hint(shell.lang, state.clock.now()),
        id,
        space_id: space.0,
        space_name: space.1,
        approval_required: space.2,
        categories: category_choices(&shell, &values.category),
        was_acknowledged_text: id.is_some() && values.ack_required,
        values,
        audiences,
        has_image,
        shell,
    };
    render(status, &page)
}

#[derive(Debug, Deserialize)]
struct NewQuery {
    #[serde(default)]
    space: String,
}

async fn space_for_writer(
    state: &AppState,
    user: &crate::auth::session::ActiveSession,
    space_id: i64,
) -> Result<(i64, String, bool), AppError> {
    let admin = user.account.has_role(Role::Admin);
    let (id, name, _) = store::writable_spaces(&state.db, user.account.id, admin)
        .await?
        .into_iter()
        .find(|(id, _, _)| *id == space_id)
        .ok_or(AppError::NotFound)?;
    let approval = store::space_approval_required(&state.db, id)
        .await?
        .unwrap_or(true);
    Ok((id, name, approval))
}

async fn new_page(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    Query(query): Query<NewQuery>,
) -> Result<Response, AppError> {
    let space_id = store::space_id_by_slug(&state.db, &query.space)
        .await?
        .ok_or(AppError::NotFound)?;
    let space = space_for_writer(&state, &user, space_id).await?;
    let values = FormValues {
        category: "collectivite".into(),
        publish_at: ctx.shell.zone.input_value(state.clock.now()),
        audience: vec!["everyone".into()],
        ..FormValues::default()
    };
    let target = FormTarget {
        id: None,
        space,
        has_image: false,
    };
    form_page(&state, ctx.shell, StatusCode::OK, None, target, values).await
}

/// The uploaded image's type, sniffed from its bytes, if one was chosen; else why it is refused.
fn image_type(form: &UploadForm) -> Result<Option<MediaType>, &'static str> {
    let Some(file) = form.file("image") else {
        return Ok(None);
    };
    if file.bytes.len() > MAX_IMAGE_BYTES {
        return Err("news-error-image-size");
    }
    MediaType::sniff(&file.bytes)
        .filter(|m| m.is_image())
        .map(Some)
        .ok_or("news-error-image-type")
}

/// The status of the form shown again with message `e`: the file store's outage is not the
/// editor's mistake (the form keeps what they typed either way).
fn refusal_status(e: &str) -> StatusCode {
    match e {
        "error-storage-unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// Checks and stores the uploaded image, if one was chosen.
async fn stored_image(
    state: &AppState,
    form: &UploadForm,
) -> Result<Option<StoredBlob>, &'static str> {
    let (Some(file), Some(media)) = (form.file("image"), image_type(form)?) else {
        return Ok(None);
    };
    state
        .blobs
        .put(file.bytes.to_vec(), media)
        .await
        .map(Some)
        .map_err(|e| {
            tracing::error!(error = %e, "cannot store a news image");
            match e {
                BlobError::Unavailable(_) => "error-storage-unavailable",
                _ => "error-internal",
            }
        })
}

fn intent_of(form: &UploadForm) -> Intent {
    if form.field("intent") == Some("draft") {
        Intent::Draft
    } else {
        Intent::Publish
    }
}

fn done_for(status: crate::news::Status, fresh: bool) -> &'static str {
    match status {
        crate::news::Status::Pending => "pending",
        crate::news::Status::Draft => "draft",
        _ if fresh => "created",
        _ => "updated",
    }
}

async fn create(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    form: UploadForm,
) -> Result<Response, AppError> {
    let space_id = form
        .field("space")
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(AppError::NotFound)?;
    let space = space_for_writer(&state, &user, space_id).await?;
    let values = FormValues::from_upload(&form);
    let now = state.clock.now();
    let had_image = false;
    let zone = &ctx.shell.zone;
    let checked = match values
        .submission(intent_of(&form), now, zone)
        .and_then(|mut s| {
            // The file's own faults first: a text alternative for a file refused anyway is moot.
            image_type(&form)?;
            s.image_alt = values.image_alt(form.file("image").is_some() || had_image)?;
            Ok(s)
        }) {
        Ok(s) => stored_image(&state, &form).await.map(|img| (s, img)),
        Err(e) => Err(e),
    };
    let (submission, image) = match checked {
        Ok(ok) => ok,
        Err(e) => {
            let target = FormTarget {
                id: None,
                space,
                has_image: false,
            };
            return form_page(
                &state,
                ctx.shell,
                refusal_status(e),
                Some(e),
                target,
                values,
            )
            .await;
        }
    };
    let agent = user.audience.clone();
    let caller = Caller {
        db: &state.db,
        actor: &actor,
        session: &user,
        agent: &agent,
        now,
    };
    let (id, status) = service::create(&caller, space_id, &submission, image.as_ref()).await?;
    Ok(Redirect::to(&format!("/news/{id}?done={}", done_for(status, true))).into_response())
}

async fn edit_page(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = parse_id(&id)?;
    let db = &state.db;
    let agent = user.audience.clone();
    let viewed = service::view(db, &user, &agent, state.clock.now(), id).await?;
    let item = viewed.item;
    let own = item.author_id == Some(user.account.id) && viewed.access.can_write();
    if !(viewed.access.can_manage_items() || own) {
        return Err(AppError::Forbidden);
    }
    let values = FormValues {
        title: item.title,
        body: item.body,
        category: item.category,
        important: item.important,
        pinned: item.pinned,
        publish_at: ctx.shell.zone.input_value(item.publish_at),
        expire_at: item
            .expire_at
            .map(|t| ctx.shell.zone.input_value(t))
            .unwrap_or_default(),
        ack_required: item.ack_required,
        ack_deadline: item
            .ack_deadline
            .map(|t| ctx.shell.zone.input_value(t))
            .unwrap_or_default(),
        audience: viewed.audience,
        material: false,
        image_decorative: item.image_alt.as_deref() == Some(""),
        image_alt: item.image_alt.unwrap_or_default(),
    };
    let space = (item.space_id, item.space_name, item.approval_required);
    let has_image = item.image_sha256.is_some();
    let target = FormTarget {
        id: Some(id),
        space,
        has_image,
    };
    form_page(&state, ctx.shell, StatusCode::OK, None, target, values).await
}

async fn update(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Path(id): Path<String>,
    form: UploadForm,
) -> Result<Response, AppError> {
    let id = parse_id(&id)?;
    let db = &state.db;
    let now = state.clock.now();
    let agent = user.audience.clone();
    let viewed = service::view(db, &user, &agent, now, id).await?;
    let values = FormValues::from_upload(&form);
    let had_image = viewed.item.image_sha256.is_some();
    let zone = &ctx.shell.zone;
    let checked = match values
        .submission(intent_of(&form), now, zone)
        .and_then(|mut s| {
            // The file's own faults first: a text alternative for a file refused anyway is moot.
            image_type(&form)?;
            s.image_alt = values.image_alt(form.file("image").is_some() || had_image)?;
            Ok(s)
        }) {
        Ok(s) => stored_image(&state, &form).await.map(|img| (s, img)),
        Err(e) => Err(e),
    };
    let (submission, image) = match checked {
        Ok(ok) => ok,
        Err(e) => {
            let item = viewed.item;
            let space = (item.space_id, item.space_name, item.approval_required);
            let target = FormTarget {
                id: Some(id),
                space,
                has_image: item.image_sha256.is_some(),
            };
            return form_page(
                &state,
                ctx.shell,
                refusal_status(e),
                Some(e),
                target,
                values,
            )
            .await;
        }
    };
    let caller = Caller {
        db,
        actor: &actor,
        session: &user,
        agent: &agent,
        now,
    };
    let status = service::update(&caller, id, &submission, image.as_ref()).await?;
    Ok(Redirect::to(&format!("/news/{id}?done={}", done_for(status, false))).into_response())
}

#[derive(Debug, Deserialize)]
struct DecisionForm {
    decision: String,
    #[serde(default)]
    reason: String,
}

async fn decide(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Path(id): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Result<Response, AppError> {
    let id = parse_id(&id)?;
    let decision = match form.decision.as_str() {
        "approve" => Decision::Approve,
        "reject" => {
            let reason = form.reason.trim();
            if reason.is_empty() || reason.chars().count() > MAX_REASON {
                return Err(AppError::BadRequest("news-error-reason"));
            }
            Decision::Reject {
                reason: reason.to_owned(),
            }
        }
        _ => return Err(AppError::BadRequest("error-bad-request")),
    };
    let agent = user.audience.clone();
    let caller = Caller {
        db: &state.db,
        actor: &actor,
        session: &user,
        agent: &agent,
        now: state.clock.now(),
    };
    service::decide(&caller, id, &decision).await?;
    let done = match decision {
        Decision::Approve => "approved",
        Decision::Reject { .. } => "rejected",
    };
    Ok(Redirect::to(&format!("/news/pending?done={done}")).into_response())
}

#[derive(Debug, Deserialize)]
struct EmptyForm {}

async fn archive(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Path(id): Path<String>,
    Form(_form): Form<EmptyForm>,
) -> Result<Response, AppError> {
    let id = parse_id(&id)?;
    let agent = user.audience.clone();
    let caller = Caller {
        db: &state.db,
        actor: &actor,
        session: &user,
        agent: &agent,
        now: state.clock.now(),
    };
    service::archive(&caller, id).await?;
    Ok(Redirect::to(&format!("/news/{id}?done=archived")).into_response())
}

pub struct ListView {
    pub id: i64,
    pub title: String,
    pub space_name: String,
    pub author: String,
    pub status: String,
    pub reason: Option<String>,
    pub updated: String,
    pub updated_iso: String,
}

#[derive(Template)]
#[template(path = "news_pending.html")]
struct PendingPage {
    shell: Shell,
    notice: Option<String>,
    queue: Vec<ListView>,
    mine: Vec<ListView>,
    approver: bool,
}

#[derive(Debug, Default, Deserialize)]
struct DoneQuery {
    #[serde(default)]
    done: String,
}

/// `/news/pending`: a manager's approval queue, and every writer's own items with their state.
async fn pending_page(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    Query(query): Query<DoneQuery>,
) -> Result<Response, AppError> {
    let db = &state.db;
    let admin = user.account.has_role(Role::Admin);
    let now = state.clock.now();
    let shell = ctx.shell;
    let view = |r: store::ListRow| ListView {
        id: r.id,
        title: r.title,
        space_name: r.space_name,
        author: r.author_name.unwrap_or_default(),
        status: status_label(&shell, &r.status, r.publish_at, now)
            .unwrap_or_else(|| shell.t("news-status-published")),
        reason: r.rejection_reason.filter(|_| r.status == "rejected"),
        updated: shell.when(r.updated_at),
        updated_iso: shell.when_iso(r.updated_at),
    };
    let queue: Vec<ListView> = store::pending_for(db, user.account.id, admin)
        .await?
        .into_iter()
        .map(view)
        .collect();
    let mine: Vec<ListView> = store::written_by(db, user.account.id)
        .await?
        .into_iter()
        .map(view)
        .collect();
    let approver = admin || !queue.is_empty() || manages_a_space(&state, user.account.id).await?;
    let page = PendingPage {
        notice: notice(&shell, Some(query.done.as_str())),
        queue,
        mine,
        approver,
        shell,
    };
    render(StatusCode::OK, &page)
}

async fn manages_a_space(state: &AppState, account_id: i64) -> Result<bool, AppError> {
    let n: i64 = crate::with_db!(&state.db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM space_members WHERE account_id = $1 AND role = 'manager'"
    ).bind(account_id).fetch_one(pool).await?);
    Ok(n > 0)
}
