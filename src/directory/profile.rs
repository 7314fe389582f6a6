//! Editing profiles. `/profile` ("Mon profil") lets the signed-in agent change the fields the
//! administrator allows (phones, skills, short biography, photo); a form carrying any other
//! field is refused whole (403) and nothing is written. `/people/{id}/edit` lets an
//! administrator change any agent's placement (title, department, site, manager) and contact
//! details. Both record `directory.profile_update` in the transaction that writes the change;
//! an administrator's entry carries each changed value before and after.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::accounts::Role;
use crate::blobs::MediaType;
use crate::directory::pages::{Choice, Directory};
use crate::directory::people::{self, MAX_BIO_CHARS, MAX_SKILL_CHARS, MAX_SKILLS, RawProfile};
use crate::directory::policy::Field;
use crate::directory::tree;
use crate::http::error::AppError;
use crate::http::extract::{CurrentUser, Form};
use crate::http::pages::{PageContext, Shell, render};
use crate::http::upload::UploadForm;
use crate::routes::RouteTable;
use crate::security_events::{self, Actor};

/// The largest accepted photo.
pub const MAX_PHOTO_BYTES: usize = 2 * 1024 * 1024;
const MAX_PHONE_CHARS: usize = 30;
const MAX_TITLE_CHARS: usize = 200;

pub fn routes(table: RouteTable) -> RouteTable {
    table
        .get("/profile", own_form)
        .post("/profile", own_save)
        .get("/people/{id}/edit", admin_form)
        .post("/people/{id}/edit", admin_save)
}

/// A phone number as typed: digits, spaces, dots, dashes, brackets, one leading plus.
pub fn parse_phone(raw: &str) -> Result<Option<String>, &'static str> {
    let value = raw.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let digits = value.chars().filter(char::is_ascii_digit).count();
    let allowed = value.chars().enumerate().all(|(i, c)| {
        c.is_ascii_digit() || matches!(c, ' ' | '.' | '-' | '(' | ')') || (c == '+' && i == 0)
    });
    if !allowed || digits < 4 || value.chars().count() > MAX_PHONE_CHARS {
        return Err("directory-error-phone");
    }
    Ok(Some(value.to_owned()))
}

/// Skills typed one per line or separated by commas: trimmed, de-duplicated, bounded.
pub fn parse_skills(raw: &str) -> Result<Vec<String>, &'static str> {
    let mut out: Vec<String> = Vec::new();
    for skill in raw
        .split(['\n', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if skill.chars().count() > MAX_SKILL_CHARS || skill.chars().any(char::is_control) {
            return Err("directory-error-skill-long");
        }
        if !out.iter().any(|s| s.to_lowercase() == skill.to_lowercase()) {
            out.push(skill.to_owned());
        }
    }
    if out.len() > MAX_SKILLS {
        return Err("directory-error-skills-many");
    }
    Ok(out)
}

pub fn parse_bio(raw: &str) -> Result<Option<String>, &'static str> {
    let value = raw.trim().replace("\r\n", "\n");
    if value.chars().count() > MAX_BIO_CHARS {
        return Err("directory-error-bio-long");
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t'))
    {
        return Err("directory-error-bio-long");
    }
    Ok((!value.is_empty()).then_some(value))
}

/// The form field that carries each self-editable profile field.
fn field_of(name: &str) -> Option<Field> {
    match name {
        "office_phone" => Some(Field::OfficePhone),
        "mobile_phone" => Some(Field::MobilePhone),
        "skills" => Some(Field::Skills),
        "bio" => Some(Field::Bio),
        "photo" | "remove_photo" => Some(Field::Photo),
        "email" => Some(Field::Email),
        "site" | "site_id" => Some(Field::Site),
        "manager" | "manager_id" => Some(Field::Manager),
        _ => None,
    }
}

/// Placement fields only an administrator sets.
const PLACEMENT_FIELDS: [&str; 4] = ["title", "department", "department_id", "display_name"];

#[derive(Template)]
#[template(path = "directory_edit_own.html")]
struct OwnPage {
    shell: Shell,
    person_id: i64,
    office_phone: Option<String>,
    mobile_phone: Option<String>,
    skills: Option<String>,
    bio: Option<String>,
    photo: bool,
    has_photo: bool,
    max_skills: String,
    max_bio: String,
    errors: Vec<String>,
    saved: bool,
    nothing_editable: bool,
}

#[derive(Debug, Default, Deserialize)]
struct SavedFlag {
    #[serde(default)]
    saved: String,
}

/// Builds the own-profile page: each field is `Some(value)` only when the agent may edit it.
fn own_page(
    shell: Shell,
    account_id: i64,
    dir: &Directory,
    shown: &RawProfile,
    errors: Vec<String>,
    saved: bool,
) -> OwnPage {
    let editable = |f: Field| dir.policy.self_edit(f);
    let nothing_editable = !Field::ALL.into_iter().any(editable);
    OwnPage {
        max_skills: MAX_SKILLS.to_string(),
        max_bio: MAX_BIO_CHARS.to_string(),
        person_id: account_id,
        office_phone: editable(Field::OfficePhone)
            .then(|| shown.office_phone.clone().unwrap_or_default()),
        mobile_phone: editable(Field::MobilePhone)
            .then(|| shown.mobile_phone.clone().unwrap_or_default()),
        skills: editable(Field::Skills).then(|| shown.skills.join("\n")),
        bio: editable(Field::Bio).then(|| shown.bio.clone().unwrap_or_default()),
        photo: editable(Field::Photo),
        has_photo: shown.photo_sha256.is_some(),
        errors,
        saved,
        nothing_editable,
        shell,
    }
}

async fn own_form(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    flag: Result<Query<SavedFlag>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let dir = Directory::load(&state.db, &user.account).await?;
    let current = people::raw_profile(&state.db, user.account.id).await?;
    let saved = flag.is_ok_and(|Query(f)| f.saved == "1");
    let page = own_page(
        ctx.shell,
        user.account.id,
        &dir,
        &current,
        Vec::new(),
        saved,
    );
    render(StatusCode::OK, &page)
}

async fn own_save(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    form: UploadForm,
) -> Result<Response, AppError> {
    let dir = Directory::load(&state.db, &user.account).await?;
    // Authorization first: every submitted field must be one the agent may edit.
    let submitted = form
        .fields
        .iter()
        .map(|(n, _)| n.as_str())
        .chain(form.files.iter().map(|f| f.field.as_str()))
        .filter(|n| *n != "csrf_token");
    for name in submitted {
        if PLACEMENT_FIELDS.contains(&name) {
            return Err(AppError::Forbidden);
        }
        match field_of(name) {
            Some(field) if dir.policy.self_edit(field) => {}
            Some(_) => return Err(AppError::Forbidden),
            None => return Err(AppError::BadRequest("error-bad-request")),
        }
    }
    let before = people::raw_profile(&state.db, user.account.id).await?;
    let mut after = before.clone();
    let mut errors: Vec<&'static str> = Vec::new();
    let mut status = StatusCode::UNPROCESSABLE_ENTITY;
    if let Some(v) = form.field("office_phone") {
        parse_phone(v).map_or_else(|e| errors.push(e), |p| after.office_phone = p);
    }
    if let Some(v) = form.field("mobile_phone") {
        parse_phone(v).map_or_else(|e| errors.push(e), |p| after.mobile_phone = p);
    }
    if let Some(v) = form.field("skills") {
        parse_skills(v).map_or_else(|e| errors.push(e), |s| after.skills = s);
    }
    if let Some(v) = form.field("bio") {
        parse_bio(v).map_or_else(|e| errors.push(e), |b| after.bio = b);
    }
    if form.field("remove_photo").is_some_and(|v| v == "1") {
        after.photo_sha256 = None;
        after.photo_type = None;
    }
    let mut new_photo = None;
    if let Some(file) = form.file("photo") {
        match checked_photo(&file.bytes) {
            Ok(m) => new_photo = Some((file.bytes.to_vec(), m)),
            Err((message, code)) => {
                errors.push(message);
                status = code;
            }
        }
    }
    if !errors.is_empty() {
        let messages = errors.iter().map(|id| ctx.shell.t(id)).collect();
        let page = own_page(ctx.shell, user.account.id, &dir, &after, messages, false);
        return render(status, &page);
    }
    if let Some((bytes, media)) = new_photo {
        let stored = state.blobs.put(bytes, media).await?;
        after.photo_sha256 = Some(stored.sha256);
        after.photo_type = Some(media.as_str().to_owned());
    }
    let changed = changed_fields(&before, &after);
    if !changed.is_empty() {
        let mut tx = state.db.begin().await?;
        people::save_profile(&mut tx, user.account.id, &after).await?;
        // The agent's own details: the record says what changed, not the values.
        let names: Vec<&str> = changed.iter().map(|(n, _, _)| *n).collect();
        security_events::record(
            &mut tx,
            &actor,
            "directory.profile_update",
            Some(format!("account:{}", user.account.id)),
            "success",
            json!({ "by": "self", "fields": names }),
        )
        .await?;
        tx.commit().await?;
    }
    Ok(Redirect::to("/profile?saved=1").into_response())
}

/// A photo's type, sniffed from its bytes (never the browser's word): PNG, JPEG or WebP within
/// [`MAX_PHOTO_BYTES`]; else the message and status to answer with.
pub(super) fn checked_photo(bytes: &[u8]) -> Result<MediaType, (&'static str, StatusCode)> {
    if bytes.len() > MAX_PHOTO_BYTES {
        return Err(("directory-error-photo-size", StatusCode::PAYLOAD_TOO_LARGE));
    }
    match MediaType::sniff(bytes) {
        Some(m @ (MediaType::Png | MediaType::Jpeg | MediaType::Webp)) => Ok(m),
        _ => Err((
            "directory-error-photo-type",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        )),
    }
}

/// (field, before, after) for each value that differs.
pub(super) fn changed_fields(
    before: &RawProfile,
    after: &RawProfile,
) -> Vec<(&'static str, Value, Value)> {
    let mut out = Vec::new();
    let mut check = |name: &'static str, b: Value, a: Value| {
        if b != a {
            out.push((name, b, a));
        }
    };
    check("title", json!(before.title), json!(after.title));
    check(
        "department_id",
        json!(before.department_id),
        json!(after.department_id),
    );
    check("site_id", json!(before.site_id), json!(after.site_id));
    check(
        "manager_id",
        json!(before.manager_id),
        json!(after.manager_id),
    );
    check(
        "office_phone",
        json!(before.office_phone),
        json!(after.office_phone),
    );
    check(
        "mobile_phone",
        json!(before.mobile_phone),
        json!(after.mobile_phone),
    );
    check("skills", json!(before.skills), json!(after.skills));
    check("bio", json!(before.bio), json!(after.bio));
    check(
        "photo",
        json!(before.photo_sha256),
        json!(after.photo_sha256),
    );
    out
}

#[derive(Template)]
#[template(path = "directory_edit_admin.html")]
pub(super) struct AdminEditPage {
    shell: Shell,
    person_id: i64,
    person_name: String,
    form: AdminEditForm,
    departments: Vec<Choice>,
    sites: Vec<Choice>,
    managers: Vec<Choice>,
    errors: Vec<String>,
    saved: bool,
    has_photo: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AdminEditForm {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub department: String,
    #[serde(default)]
    pub site: String,
    #[serde(default)]
    pub manager: String,
    #[serde(default)]
    pub office_phone: String,
    #[serde(default)]
    pub mobile_phone: String,
    #[serde(default)]
    pub skills: String,
    #[serde(default)]
    pub bio: String,
}

impl AdminEditForm {
    pub(super) fn of(p: &RawProfile) -> Self {
        let id = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        Self {
            title: p.title.clone().unwrap_or_default(),
            department: id(p.department_id),
            site: id(p.site_id),
            manager: id(p.manager_id),
            office_phone: p.office_phone.clone().unwrap_or_default(),
            mobile_phone: p.mobile_phone.clone().unwrap_or_default(),
            skills: p.skills.join("\n"),
            bio: p.bio.clone().unwrap_or_default(),
        }
    }
}

pub(super) struct AdminTarget {
    pub id: i64,
    pub name: String,
}

pub(super) async fn admin_target(
    state: &AppState,
    user: &crate::auth::session::ActiveSession,
    raw_id: &str,
) -> Result<AdminTarget, AppError> {
    if !user.account.has_role(Role::Admin) {
        return Err(AppError::Forbidden);
    }
    let id = raw_id
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(AppError::NotFound)?;
    let account = crate::accounts::find_by_id(&state.db, id)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(AdminTarget {
        id,
        name: account.display_name,
    })
}

pub(super) async fn admin_page(
    state: &AppState,
    shell: Shell,
    target: &AdminTarget,
    form: AdminEditForm,
    errors: Vec<String>,
    saved: bool,
) -> Result<AdminEditPage, AppError> {
    let tree = tree::DepartmentTree::load(&state.db).await?;
    let choice = |value: String, label: String, current: &str| Choice {
        selected: value == current.trim(),
        value,
        label,
    };
    let departments = tree
        .flattened()
        .into_iter()
        .map(|(depth, d)| {
            choice(
                d.id.to_string(),
                format!("{}{}", "\u{a0}\u{a0}".repeat(depth), d.name),
                &form.department,
            )
        })
        .collect();
    let sites = tree::sites(&state.db)
        .await?
        .into_iter()
        .map(|(id, name)| choice(id.to_string(), name, &form.site))
        .collect();
    let managers = people::all_agents(&state.db)
        .await?
        .into_iter()
        .filter(|(id, _)| *id != target.id)
        .map(|(id, name)| choice(id.to_string(), name, &form.manager))
        .collect();
    let has_photo = people::raw_profile(&state.db, target.id)
        .await?
        .photo_sha256
        .is_some();
    Ok(AdminEditPage {
        has_photo,
        shell,
        person_id: target.id,
        person_name: target.name.clone(),
        form,
        departments,
        sites,
        managers,
        errors,
        saved,
    })
}

async fn admin_form(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Path(raw_id): Path<String>,
    flag: Result<Query<SavedFlag>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let target = admin_target(&state, &user, &raw_id).await?;
    let current = people::raw_profile(&state.db, target.id).await?;
    // The form shows every stored value, whatever the policy: on record, like any such read.
    let dir = Directory::load(&state.db, &user.account).await?;
    if dir.reads_private([target.id]) {
        let details = json!({ "what": "edit_form" });
        dir.record_private_read(&state, &actor, Some(target.id), details)
            .await?;
    }
    let saved = flag.is_ok_and(|Query(f)| f.saved == "1");
    let page = admin_page(
        &state,
        ctx.shell,
        &target,
        AdminEditForm::of(&current),
        Vec::new(),
        saved,
    )
    .await?;
    render(StatusCode::OK, &page)
}

async fn admin_save(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Path(raw_id): Path<String>,
    Form(form): Form<AdminEditForm>,
) -> Result<Response, AppError> {
    let target = admin_target(&state, &user, &raw_id).await?;
    let before = people::raw_profile(&state.db, target.id).await?;
    let tree = tree::DepartmentTree::load(&state.db).await?;
    let sites = tree::sites(&state.db).await?;
    let mut after = before.clone();
    let mut errors: Vec<&'static str> = Vec::new();
    let title = form.title.trim();
    if title.chars().count() > MAX_TITLE_CHARS || title.chars().any(char::is_control) {
        errors.push("directory-error-title");
    } else {
        after.title = (!title.is_empty()).then(|| title.to_owned());
    }
    let id_of = |raw: &str| -> Result<Option<i64>, ()> {
        match raw.trim() {
            "" => Ok(None),
            s => s.parse::<i64>().map(Some).map_err(|_| ()),
        }
    };
    match id_of(&form.department) {
        Ok(d) if d.is_none_or(|d| tree.get(d).is_some()) => after.department_id = d,
        _ => errors.push("directory-error-department"),
    }
    match id_of(&form.site) {
        Ok(s) if s.is_none_or(|s| sites.iter().any(|(id, _)| *id == s)) => after.site_id = s,
        _ => errors.push("directory-error-site"),
    }
    match id_of(&form.manager) {
        Ok(None) => after.manager_id = None,
        Ok(Some(m)) if m != target.id => {
            let agents = people::all_agents(&state.db).await?;
            if !agents.iter().any(|(id, _)| *id == m) {
                errors.push("directory-error-manager");
            } else if people::manager_would_cycle(&state.db, target.id, m).await? {
                errors.push("directory-error-manager-cycle");
            } else {
                after.manager_id = Some(m);
            }
        }
        _ => errors.push("directory-error-manager"),
    }
    parse_phone(&form.office_phone).map_or_else(|e| errors.push(e), |p| after.office_phone = p);
    parse_phone(&form.mobile_phone).map_or_else(|e| errors.push(e), |p| after.mobile_phone = p);
    parse_skills(&form.skills).map_or_else(|e| errors.push(e), |s| after.skills = s);
    parse_bio(&form.bio).map_or_else(|e| errors.push(e), |b| after.bio = b);
    if !errors.is_empty() {
        let messages = errors.iter().map(|id| ctx.shell.t(id)).collect();
        let page = admin_page(&state, ctx.shell, &target, form, messages, false).await?;
        return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
    }
    let changed = changed_fields(&before, &after);
    if !changed.is_empty() {
        let mut tx = state.db.begin().await?;
        people::save_profile(&mut tx, target.id, &after).await?;
        let changes: serde_json::Map<String, Value> = changed
            .into_iter()
            .map(|(name, b, a)| (name.to_owned(), json!({ "before": b, "after": a })))
            .collect();
        security_events::record(
            &mut tx,
            &actor,
            "directory.profile_update",
            Some(format!("account:{}", target.id)),
            "success",
            json!({ "by": "admin", "changes": changes }),
        )
        .await?;
        tx.commit().await?;
    }
    Ok(Redirect::to(&format!("/people/{}/edit?saved=1", target.id)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_phones_skills_and_bio() {
        assert_eq!(
            parse_phone(" 02 99 00 12 34 "),
            Ok(Some("02 99 00 12 34".into()))
        );
        assert_eq!(
            parse_phone("+33 6 12 34 56 78"),
            Ok(Some("+33 6 12 34 56 78".into()))
        );
        assert_eq!(parse_phone(""), Ok(None));
        for bad in ["abc", "12", "06+12345678", "<script>", &"1".repeat(31)] {
            assert!(parse_phone(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_skills("Excel\nmarchés publics, excel\n\n").unwrap(),
            vec!["Excel".to_owned(), "marchés publics".to_owned()]
        );
        assert!(parse_skills(&"x".repeat(61)).is_err());
        let many: Vec<String> = (0..21).map(|i| format!("s{i}")).collect();
        assert!(parse_skills(&many.join("\n")).is_err());
        assert!(parse_bio(&"é".repeat(1001)).is_err());
        assert_eq!(parse_bio("  "), Ok(None));
    }
}
