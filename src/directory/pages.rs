//! The who's-who pages every signed-in agent reads: `/people` (search), `/people/{id}`
//! (profile), its vCard and photo, and the org chart (`/org-chart`, `/org-chart/{id}`).
//!
//! Each handler loads the field policy and the viewer first, then reads people only through
//! [`people::find_people`], which leaves out in SQL what the viewer may not see: a template
//! never decides visibility, and a field hidden from the viewer cannot be searched on.

use std::collections::BTreeSet;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::AppState;
use crate::accounts::Account;
use crate::blobs::MediaType;
use crate::db::Database;
use crate::directory::people::{self, PeopleQuery, Person, Viewer};
use crate::directory::policy::{self, Policy};
use crate::directory::tree::{self, DepartmentTree};
use crate::directory::vcard;
use crate::http::error::AppError;
use crate::http::extract::CurrentUser;
use crate::http::pages::{PageContext, Shell, render};
use crate::routes::RouteTable;
use crate::security_events::{self, Actor};

/// Results per page of a search.
pub const PAGE_SIZE: i64 = 20;
/// Pages beyond this are refused: nobody reads page 500 of a who's-who, scrapers do.
const MAX_PAGE: i64 = 200;
/// The longest search text accepted.
const MAX_SEARCH_CHARS: usize = 100;
/// The longest manager chain shown above a person on the org chart.
const MAX_CHAIN: usize = 30;

pub fn routes(table: RouteTable) -> RouteTable {
    table
        .get("/people", search)
        .get("/people/{id}", profile)
        .get("/people/{id}/vcard", vcard_download)
        .get("/people/{id}/photo", photo)
        .get("/org-chart", org_chart_top)
        .get("/org-chart/{id}", org_chart_person)
}

/// What every directory handler needs: the policy, the tree and who is looking.
pub struct Directory {
    pub policy: Policy,
    pub tree: DepartmentTree,
    pub viewer: Viewer,
}

impl Directory {
    pub async fn load(db: &Database, account: &Account) -> Result<Self, AppError> {
        let policy = policy::load(db).await?;
        let tree = DepartmentTree::load(db).await?;
        let viewer = Viewer::of(db, account, &policy, &tree).await?;
        Ok(Self {
            policy,
            tree,
            viewer,
        })
    }

    pub fn view(&self, person: &Person) -> PersonView {
        PersonView::new(person, &self.tree)
    }

    /// Whether showing `people` to this viewer reads data the policy keeps from other agents:
    /// an administrator looking at someone else while some field is not for everyone.
    pub fn reads_private(&self, people: impl IntoIterator<Item = i64>) -> bool {
        self.viewer.is_admin
            && self
                .policy
                .rules
                .iter()
                .any(|r| r.visibility != policy::Visibility::Everyone)
            && people.into_iter().any(|id| id != self.viewer.account_id)
    }

    /// Records an administrator's read of other agents' restricted fields before it is shown
    /// (`what`: the page; `target`: the agent, when there is one).
    pub async fn record_private_read(
        &self,
        state: &AppState,
        actor: &Actor,
        target: Option<i64>,
        details: serde_json::Value,
    ) -> Result<(), AppError> {
        security_events::record_alone(
            &state.audit,
            actor,
            "directory.private_read",
            target.map(|id| format!("account:{id}")),
            "success",
            details,
        )
        .await?;
        Ok(())
    }
}

/// A person as templates show them.
pub struct PersonView {
    pub id: i64,
    pub name: String,
    pub initials: String,
    pub title: Option<String>,
    pub department: Option<String>,
    pub email: Option<String>,
    pub office_phone: Option<String>,
    pub office_tel: String,
    pub mobile_phone: Option<String>,
    pub mobile_tel: String,
    pub site: Option<String>,
    pub skills: Vec<String>,
    /// Each skill with the search link that finds colleagues sharing it.
    pub skill_links: Vec<(String, String)>,
    pub bio: Option<String>,
    pub has_photo: bool,
    pub manager_id: Option<i64>,
    pub manager_name: Option<String>,
    pub report_count: i64,
}

impl PersonView {
    fn new(p: &Person, tree: &DepartmentTree) -> Self {
        let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        Self {
            id: p.id,
            name: p.display_name.clone(),
            initials: initials(&p.display_name),
            title: nonempty(&p.title),
            department: p
                .department_id
                .map(|d| tree.path(d))
                .filter(|s| !s.is_empty()),
            email: nonempty(&p.email),
            office_phone: nonempty(&p.office_phone),
            office_tel: Self::tel(p.office_phone.as_deref().unwrap_or_default()),
            mobile_phone: nonempty(&p.mobile_phone),
            mobile_tel: Self::tel(p.mobile_phone.as_deref().unwrap_or_default()),
            site: nonempty(&p.site_name),
            skills: p.skills.clone(),
            skill_links: p
                .skills
                .iter()
                .map(|s| {
                    let href = url::form_urlencoded::Serializer::new(String::from("/people?"))
                        .append_pair("skill", s)
                        .finish();
                    (s.clone(), href)
                })
                .collect(),
            bio: nonempty(&p.bio),
            has_photo: p.photo_sha256.is_some(),
            manager_id: p.manager_id,
            manager_name: p.manager_name.clone(),
            report_count: p.report_count,
        }
    }

    /// `tel:` link target: digits and a leading plus only.
    pub fn tel(number: &str) -> String {
        number
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect()
    }
}

fn initials(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|w| w.chars().next())
        .take(2)
        .flat_map(char::to_uppercase)
        .collect()
}

fn parse_id(raw: &str) -> Result<i64, AppError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(AppError::NotFound)
}

/// The search form as typed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SearchForm {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub department: String,
    #[serde(default)]
    pub site: String,
    #[serde(default)]
    pub skill: String,
    #[serde(default)]
    pub page: String,
}

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "directory_search.html")]
struct SearchPage {
    shell: Shell,
    form: SearchForm,
    departments: Vec<Choice>,
    sites: Vec<Choice>,
    searched: bool,
    people: Vec<PersonView>,
    page: i64,
    previous_href: Option<String>,
    next_href: Option<String>,
    error: Option<String>,
}

fn optional_id(raw: &str) -> Result<Option<i64>, &'static str> {
    match raw.trim() {
        "" => Ok(None),
        s => s
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .map(Some)
            .ok_or("directory-error-filter"),
    }
}

async fn search(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    form: Result<Query<SearchForm>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let form = form.map(|Query(f)| f).unwrap_or_default();
    let dir = Directory::load(&state.db, &user.account).await?;
    let sites = tree::sites(&state.db).await?;
    let mut error = None;
    let parsed = (|| -> Result<(PeopleQuery, i64), &'static str> {
        if form.q.chars().count() > MAX_SEARCH_CHARS
            || form.skill.chars().count() > MAX_SEARCH_CHARS
        {
            return Err("directory-error-too-long");
        }
        let page = match form.page.trim() {
            "" => 1,
            p => p
                .parse::<i64>()
                .ok()
                .filter(|p| (1..=MAX_PAGE).contains(p))
                .ok_or("directory-error-page")?,
        };
        let department = optional_id(&form.department)?;
        if department.is_some_and(|d| dir.tree.get(d).is_none()) {
            return Err("directory-error-filter");
        }
        let site_id = optional_id(&form.site)?;
        Ok((
            PeopleQuery {
                text: form.q.clone(),
                departments: department.map(|d| dir.tree.subtree(d)),
                site_id,
                skill: form.skill.clone(),
                limit: PAGE_SIZE + 1,
                offset: (page - 1) * PAGE_SIZE,
                ..PeopleQuery::default()
            },
            page,
        ))
    })();
    let (mut found, page) = match parsed {
        Ok((query, page)) => (
            people::find_people(&state.db, &dir.viewer, &query).await?,
            page,
        ),
        Err(id) => {
            error = Some(ctx.shell.t(id));
            (Vec::new(), 1)
        }
    };
    let has_next = found.len() as i64 > PAGE_SIZE;
    found.truncate(usize::try_from(PAGE_SIZE).unwrap_or(20));
    if dir.reads_private(found.iter().map(|p| p.id)) {
        let details = serde_json::json!({ "what": "search", "page": page,
            "accounts": found.iter().map(|p| p.id).collect::<Vec<_>>() });
        dir.record_private_read(&state, &actor, None, details)
            .await?;
    }
    let link = |page: i64| {
        let mut out = url::form_urlencoded::Serializer::new(String::from("/people?"));
        for (k, v) in [
            ("q", &form.q),
            ("department", &form.department),
            ("site", &form.site),
            ("skill", &form.skill),
        ] {
            if !v.trim().is_empty() {
                out.append_pair(k, v.trim());
            }
        }
        out.append_pair("page", &page.to_string());
        out.finish()
    };
    let departments = dir
        .tree
        .flattened()
        .into_iter()
        .map(|(depth, d)| Choice {
            value: d.id.to_string(),
            label: format!("{}{}", "\u{a0}\u{a0}".repeat(depth), d.name),
            selected: form.department.trim() == d.id.to_string(),
        })
        .collect();
    let sites = sites
        .into_iter()
        .map(|(id, name)| Choice {
            value: id.to_string(),
            label: name,
            selected: form.site.trim() == id.to_string(),
        })
        .collect();
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let people = found.iter().map(|p| dir.view(p)).collect();
    render(
        status,
        &SearchPage {
            shell: ctx.shell,
            searched: true,
            people,
            page,
            previous_href: (page > 1).then(|| link(page - 1)),
            next_href: has_next.then(|| link(page + 1)),
            departments,
            sites,
            error,
            form,
        },
    )
}

#[derive(Template)]
#[template(path = "directory_profile.html")]
struct ProfilePage {
    shell: Shell,
    person: PersonView,
    reports: Vec<PersonView>,
    is_self: bool,
    can_admin: bool,
}

async fn load_person(state: &AppState, dir: &Directory, raw_id: &str) -> Result<Person, AppError> {
    let id = parse_id(raw_id)?;
    people::find_person(&state.db, &dir.viewer, id)
        .await?
        .ok_or(AppError::NotFound)
}

async fn profile(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Path(raw_id): Path<String>,
) -> Result<Response, AppError> {
    let dir = Directory::load(&state.db, &user.account).await?;
    let person = load_person(&state, &dir, &raw_id).await?;
    if dir.reads_private([person.id]) {
        let details = serde_json::json!({ "what": "profile" });
        dir.record_private_read(&state, &actor, Some(person.id), details)
            .await?;
    }
    let reports = people::find_people(
        &state.db,
        &dir.viewer,
        &PeopleQuery {
            reports_of: Some(person.id),
            limit: 500,
            ..PeopleQuery::default()
        },
    )
    .await?;
    render(
        StatusCode::OK,
        &ProfilePage {
            shell: ctx.shell,
            is_self: person.id == user.account.id,
            can_admin: dir.viewer.is_admin,
            reports: reports.iter().map(|p| dir.view(p)).collect(),
            person: dir.view(&person),
        },
    )
}

async fn vcard_download(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Path(raw_id): Path<String>,
) -> Result<Response, AppError> {
    let dir = Directory::load(&state.db, &user.account).await?;
    let person = load_person(&state, &dir, &raw_id).await?;
    if dir.reads_private([person.id]) {
        let details = serde_json::json!({ "what": "vcard" });
        dir.record_private_read(&state, &actor, Some(person.id), details)
            .await?;
    }
    let organisation = crate::organisation::load(&state.db).await?.name;
    let units: Vec<String> = person
        .department_id
        .map(|d| {
            let mut ids = dir.tree.ancestors_and_self(d);
            ids.reverse();
            ids.iter()
                .filter_map(|id| dir.tree.get(*id).map(|d| d.name.clone()))
                .collect()
        })
        .unwrap_or_default();
    let card = vcard::Card {
        full_name: &person.display_name,
        organisation: &organisation,
        units: units.iter().map(String::as_str).collect(),
        title: person.title.as_deref(),
        email: person.email.as_deref(),
        office_phone: person.office_phone.as_deref(),
        mobile_phone: person.mobile_phone.as_deref(),
        skills: &person.skills,
        note: person.bio.as_deref(),
    };
    let body = vcard::render(&card);
    let disposition = format!(
        "attachment; filename=\"{}\"",
        vcard::file_name(&person.display_name)
    );
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/vcard; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

async fn photo(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Path(raw_id): Path<String>,
) -> Result<Response, AppError> {
    let dir = Directory::load(&state.db, &user.account).await?;
    let person = load_person(&state, &dir, &raw_id).await?;
    let (Some(sha256), Some(media)) = (
        person.photo_sha256.as_deref(),
        person.photo_type.as_deref().and_then(MediaType::parse),
    ) else {
        return Err(AppError::NotFound);
    };
    if !media.is_image() {
        return Err(AppError::NotFound);
    }
    let photo_restricted =
        dir.policy.rule(policy::Field::Photo).visibility != policy::Visibility::Everyone;
    if photo_restricted && dir.reads_private([person.id]) {
        let details = serde_json::json!({ "what": "photo" });
        dir.record_private_read(&state, &actor, Some(person.id), details)
            .await?;
    }
    let bytes = state.blobs.get(sha256).await?.ok_or(AppError::NotFound)?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media.mime()));
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

#[derive(Template)]
#[template(path = "directory_org_chart.html")]
struct OrgChartPage {
    shell: Shell,
    /// At the top of the chart: each root with its direct reports.
    roots: Vec<(PersonView, Vec<PersonView>)>,
    /// Centred on one person: their managers from the top down, them, their reports.
    chain: Vec<PersonView>,
    centre: Option<PersonView>,
    reports: Vec<PersonView>,
    /// The chain stopped at a manager link pointing back down (a loop in the data).
    chain_loops: bool,
}

async fn org_chart_top(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
) -> Result<Response, AppError> {
    let dir = Directory::load(&state.db, &user.account).await?;
    let roots = people::find_people(
        &state.db,
        &dir.viewer,
        &PeopleQuery {
            roots_only: true,
            limit: 100,
            ..PeopleQuery::default()
        },
    )
    .await?;
    let mut with_reports = Vec::new();
    for root in &roots {
        let reports = people::find_people(
            &state.db,
            &dir.viewer,
            &PeopleQuery {
                reports_of: Some(root.id),
                limit: 500,
                ..PeopleQuery::default()
            },
        )
        .await?;
        with_reports.push((
            dir.view(root),
            reports.iter().map(|p| dir.view(p)).collect(),
        ));
    }
    render(
        StatusCode::OK,
        &OrgChartPage {
            shell: ctx.shell,
            roots: with_reports,
            chain: Vec::new(),
            centre: None,
            reports: Vec::new(),
            chain_loops: false,
        },
    )
}

async fn org_chart_person(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    Path(raw_id): Path<String>,
) -> Result<Response, AppError> {
    let dir = Directory::load(&state.db, &user.account).await?;
    let person = load_person(&state, &dir, &raw_id).await?;
    // Up the manager links, remembering who was seen: a loop in the data ends the walk.
    let mut seen = BTreeSet::from([person.id]);
    let mut chain = Vec::new();
    let mut chain_loops = false;
    let mut next = person.manager_id;
    while let Some(id) = next {
        if !seen.insert(id) {
            chain_loops = true;
            break;
        }
        if chain.len() >= MAX_CHAIN {
            break;
        }
        let Some(manager) = people::find_person(&state.db, &dir.viewer, id).await? else {
            break;
        };
        next = manager.manager_id;
        chain.push(dir.view(&manager));
    }
    chain.reverse();
    let reports = people::find_people(
        &state.db,
        &dir.viewer,
        &PeopleQuery {
            reports_of: Some(person.id),
            limit: 500,
            ..PeopleQuery::default()
        },
    )
    .await?;
    render(
        StatusCode::OK,
        &OrgChartPage {
            shell: ctx.shell,
            roots: Vec::new(),
            chain,
            centre: Some(dir.view(&person)),
            reports: reports.iter().map(|p| dir.view(p)).collect(),
            chain_loops,
        },
    )
}
