//! The receipts dashboard of a mandatory read: read rate overall, by group and by department,
//! who has not acknowledged yet, a CSV export (formula-safe, audited) and "send a reminder".
//! A reminder is recorded and shown on the wall as a "Rappel" mark to those who have not read;
//! with `[smtp]` set, it is also e-mailed to those of them who have an address (queued in the
//! outbox with the reminder, delivered by the outbox worker: see `crate::mail`).

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::audience::AgentAudience;
use crate::audit::export::csv_cell;
use crate::http::error::AppError;
use crate::http::extract::{CurrentUser, Form};
use crate::http::pages::{PageContext, Shell, render};
use crate::news::pages::{notice, parse_id};
use crate::news::service::{self, Caller, Viewed};
use crate::news::store::{self, Member};
use crate::routes::RouteTable;
use crate::security_events::{Actor, record};

pub fn routes(table: RouteTable) -> RouteTable {
    table
        .get("/news/{id}/receipts", dashboard)
        .get("/news/{id}/receipts.csv", export_csv)
        .post("/news/{id}/remind", remind)
}

/// A line of a read-rate table.
pub struct Rate {
    pub label: String,
    pub read: usize,
    pub total: usize,
    pub percent: u32,
}

impl Rate {
    fn new(label: String, read: usize, total: usize) -> Self {
        let percent = (read * 100)
            .checked_div(total)
            .map_or(0, |p| u32::try_from(p).unwrap_or(100));
        Self {
            label,
            read,
            total,
            percent,
        }
    }
}

/// Read rates by a grouping of members (`key_of` gives each member's groups).
pub fn rates<'a>(members: &'a [Member], key_of: impl Fn(&'a Member) -> Vec<String>) -> Vec<Rate> {
    let mut by: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for m in members {
        for key in key_of(m) {
            let entry = by.entry(key).or_default();
            entry.1 += 1;
            if m.acknowledged_at.is_some() {
                entry.0 += 1;
            }
        }
    }
    by.into_iter()
        .map(|(label, (read, total))| Rate::new(label, read, total))
        .collect()
}

/// Loads an item for its receipts pages: editors and managers of its space only.
async fn for_manager(
    state: &AppState,
    user: &crate::auth::session::ActiveSession,
    id: &str,
) -> Result<(Viewed, AgentAudience), AppError> {
    let id = parse_id(id)?;
    let agent = user.audience.clone();
    let viewed = service::view(&state.db, user, &agent, state.clock.now(), id).await?;
    if !viewed.access.can_manage_items() {
        return Err(AppError::NotFound);
    }
    if !viewed.item.ack_required {
        return Err(AppError::NotFound);
    }
    Ok((viewed, agent))
}

pub struct Waiting {
    pub name: String,
    pub department: String,
    pub site: String,
}

#[derive(Template)]
#[template(path = "news_receipts.html")]
struct DashboardPage {
    shell: Shell,
    notice: Option<String>,
    id: i64,
    title: String,
    deadline: Option<String>,
    overall: Rate,
    by_group: Vec<Rate>,
    by_department: Vec<Rate>,
    waiting: Vec<Waiting>,
    reminded: bool,
    round: String,
    /// Whether reminders are also e-mailed (`[smtp]` is set).
    mail_enabled: bool,
}

#[derive(Debug, Default, Deserialize)]
struct DoneQuery {
    #[serde(default)]
    done: String,
    /// After an e-mailed reminder: how many messages were queued.
    #[serde(default)]
    queued: Option<u32>,
}

async fn dashboard(
    State(state): State<AppState>,
    ctx: PageContext,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
    Query(query): Query<DoneQuery>,
) -> Result<Response, AppError> {
    let (viewed, _) = for_manager(&state, &user, &id).await?;
    let item = &viewed.item;
    let db = &state.db;
    let members = store::audience_members(db, item).await?;
    let mut groups: HashMap<i64, Vec<String>> = HashMap::new();
    for (account, group) in store::member_groups(db, item).await? {
        groups.entry(account).or_default().push(group);
    }
    let shell = ctx.shell;
    let none = shell.t("news-receipts-none");
    let read = members
        .iter()
        .filter(|m| m.acknowledged_at.is_some())
        .count();
    let mail_enabled = state.mail.is_some();
    let done_message = match (query.done.as_str(), query.queued) {
        ("reminded", Some(queued)) if mail_enabled => {
            Some(shell.t1("news-done-reminded-mail", "count", &queued.to_string()))
        }
        (done, _) => notice(&shell, Some(done)),
    };
    let page = DashboardPage {
        notice: done_message,
        mail_enabled,
        id: item.id,
        title: item.title.clone(),
        deadline: item.ack_deadline.map(|t| shell.when(t)),
        overall: Rate::new(shell.t("news-receipts-overall"), read, members.len()),
        by_group: rates(&members, |m| {
            groups
                .get(&m.account_id)
                .cloned()
                .unwrap_or_else(|| vec![none.clone()])
        }),
        by_department: rates(&members, |m| {
            vec![m.department.clone().unwrap_or_else(|| none.clone())]
        }),
        waiting: members
            .iter()
            .filter(|m| m.acknowledged_at.is_none())
            .map(|m| Waiting {
                name: m.display_name.clone(),
                department: m.department.clone().unwrap_or_default(),
                site: m.site.clone().unwrap_or_default(),
            })
            .collect(),
        reminded: store::reminded(db, item).await?,
        round: item.ack_round.to_string(),
        shell,
    };
    render(StatusCode::OK, &page)
}

/// Every agent of the audience with their receipt (or none) for the current round.
async fn export_csv(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let (viewed, _) = for_manager(&state, &user, &id).await?;
    let item = &viewed.item;
    let members = store::audience_members(&state.db, item).await?;
    let mut csv = String::from("name,login,department,site,acknowledged,acknowledged_at_utc\r\n");
    for m in &members {
        let cells = [
            m.display_name.as_str(),
            m.login.as_deref().unwrap_or_default(),
            m.department.as_deref().unwrap_or_default(),
            m.site.as_deref().unwrap_or_default(),
            if m.acknowledged_at.is_some() {
                "yes"
            } else {
                "no"
            },
            // The column says UTC: an export keeps one meaning whatever the zone setting.
            &m.acknowledged_at
                .map(crate::timefmt::utc_minutes)
                .unwrap_or_default(),
        ]
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",");
        csv.push_str(&cells);
        csv.push_str("\r\n");
    }
    // The export is personal data leaving the application: on record before it is served.
    let mut tx = state.db.begin().await?;
    record(
        &mut tx,
        &actor,
        "news.receipts_export",
        Some(format!("news:{}", item.id)),
        "success",
        json!({ "round": item.ack_round, "rows": members.len(), "format": "csv" }),
    )
    .await?;
    tx.commit().await?;
    let mut response = csv.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    let disposition = format!("attachment; filename=\"accuses-lecture-{}.csv\"", item.id);
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).map_err(|e| AppError::Internal(e.to_string()))?,
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[derive(Debug, Deserialize)]
struct EmptyForm {}

async fn remind(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    actor: Actor,
    Path(id): Path<String>,
    Form(_form): Form<EmptyForm>,
) -> Result<Response, AppError> {
    let (viewed, agent) = for_manager(&state, &user, &id).await?;
    let caller = Caller {
        db: &state.db,
        actor: &actor,
        session: &user,
        agent: &agent,
        now: state.clock.now(),
    };
    let reminded = service::remind(&caller, viewed.item.id, state.mail.as_deref()).await?;
    let target = if state.mail.is_some() {
        format!(
            "/news/{}/receipts?done=reminded&queued={}",
            viewed.item.id, reminded.emails_queued
        )
    } else {
        format!("/news/{}/receipts?done=reminded", viewed.item.id)
    };
    Ok(Redirect::to(&target).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: i64, department: Option<&str>, read: bool) -> Member {
        Member {
            account_id: id,
            display_name: format!("agent {id}"),
            login: None,
            department: department.map(str::to_owned),
            site: None,
            acknowledged_at: read.then_some(1),
        }
    }

    #[test]
    fn read_rates_by_department() {
        let members = [
            member(1, Some("Voirie"), true),
            member(2, Some("Voirie"), false),
            member(3, Some("Accueil"), true),
            member(4, None, false),
        ];
        let rates = rates(&members, |m| vec![m.department.clone().unwrap_or_default()]);
        let summary: Vec<(&str, usize, usize, u32)> = rates
            .iter()
            .map(|r| (r.label.as_str(), r.read, r.total, r.percent))
            .collect();
        assert_eq!(
            summary,
            [("", 0, 1, 0), ("Accueil", 1, 1, 100), ("Voirie", 1, 2, 50)]
        );
        assert_eq!(Rate::new(String::new(), 0, 0).percent, 0);
    }
}
