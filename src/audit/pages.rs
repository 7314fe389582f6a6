//! The auditor pages: `/audit` (search the log, page by page, with each entry's proof status)
//! and its exports (`/audit/export.jsonl`, `/audit/export.csv`) of the filtered set.
//!
//! Only accounts holding the `auditor` role get in. An administrator without that role is
//! refused like anyone else: whoever runs the server must not be able to read the log quietly.
//! Every refusal and every search is itself appended to the log (`audit.search`, outcome
//! `denied` or `success`) before anything is shown; exports record themselves (`audit.export`).
//!
//! What the auditor types reaches the database only as bound values (see `query`); here it is
//! checked first (catalogue names, addresses, dates) so that a mistyped filter gets a 400 page
//! with the reason, not an empty result that looks like an answer.

use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::AppState;
use crate::accounts::Role;
use crate::audit::catalogue;
use crate::audit::checkpoint::{Checkpoint, CheckpointSigner};
use crate::audit::export::{self, ExportFormat, rfc3339_us};
use crate::audit::query::{self, Filter, IpFilter, Page, PageStart};
use crate::audit::store::StoredEntry;
use crate::db::{Database, DbError};
use crate::http::error::AppError;
use crate::http::extract::CurrentUser;
use crate::http::pages::{PageContext, Shell, render};
use crate::routes::RouteTable;
use crate::security_events::{self, Actor};
use crate::with_db;

/// Entries per page.
pub const PAGE_SIZE: u32 = 50;

/// The longest text accepted in a free-text criterion.
const MAX_TEXT: usize = 200;

pub fn routes(table: RouteTable) -> RouteTable {
    table
        .get("/audit", search_page)
        .get("/audit/export.jsonl", export_jsonl)
        .get("/audit/export.csv", export_csv)
}

/// The search form as typed: every field is text, checked by [`SearchForm::filter`].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SearchForm {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    ip: String,
    /// Keyset pagination: the page holds the matching entries older than this sequence number.
    #[serde(default)]
    after: String,
}

impl SearchForm {
    /// The filter, or the id of the message explaining what is wrong.
    fn filter(&self) -> Result<Filter, &'static str> {
        let text = |value: &str| -> Result<Option<String>, &'static str> {
            let value = value.trim();
            if value.chars().count() > MAX_TEXT {
                return Err("audit-error-too-long");
            }
            Ok((!value.is_empty()).then(|| value.to_owned()))
        };
        let action = text(&self.action)?;
        if action.as_deref().is_some_and(|a| !catalogue::is_action(a)) {
            return Err("audit-error-action");
        }
        let outcome = text(&self.outcome)?;
        if outcome
            .as_deref()
            .is_some_and(|o| !catalogue::is_outcome(o))
        {
            return Err("audit-error-outcome");
        }
        let ip = match text(&self.ip)? {
            Some(ip) => Some(IpFilter::parse(&ip).map_err(|_| "audit-error-ip")?),
            None => None,
        };
        let from_us = parse_utc_datetime(&self.from)?;
        let to_us = parse_utc_datetime(&self.to)?;
        // An empty period is a mistake, not a question with the answer "nothing".
        if let (Some(from), Some(to)) = (from_us, to_us) {
            if from >= to {
                return Err("audit-error-range");
            }
        }
        Ok(Filter {
            actor: text(&self.actor)?,
            action,
            target: text(&self.target)?,
            outcome,
            from_us,
            to_us,
            ip,
        })
    }

    fn page_start(&self) -> Result<PageStart, &'static str> {
        match self.after.trim() {
            "" => Ok(PageStart::Offset(0)),
            after => after
                .parse::<u64>()
                .map(PageStart::AfterSeq)
                .map_err(|_| "audit-error-page"),
        }
    }

    /// The filter fields as a query string (without `after`), for links that keep the filter.
    fn filter_query(&self) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("target", &self.target),
            ("outcome", &self.outcome),
            ("from", &self.from),
            ("to", &self.to),
            ("ip", &self.ip),
        ] {
            if !value.trim().is_empty() {
                out.append_pair(name, value.trim());
            }
        }
        out.finish()
    }
}

/// A `datetime-local` value (`2026-11-25T18:30` or with seconds), read as UTC, in µs since the
/// epoch. Empty means no bound.
fn parse_utc_datetime(text: &str) -> Result<Option<i64>, &'static str> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    parse_datetime(text).map(Some).ok_or("audit-error-date")
}

fn parse_datetime(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if !(bytes.len() == 16 || bytes.len() == 19) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let separators = bytes[4] == b'-'
        && bytes[7] == b'-'
        && (bytes[10] == b'T' || bytes[10] == b' ')
        && bytes[13] == b':'
        && (bytes.len() == 16 || bytes[16] == b':');
    if !separators {
        return None;
    }
    let year = i32::try_from(number(0..4)?).ok()?;
    let month = time::Month::try_from(u8::try_from(number(5..7)?).ok()?).ok()?;
    let day = u8::try_from(number(8..10)?).ok()?;
    let hour = u8::try_from(number(11..13)?).ok()?;
    let minute = u8::try_from(number(14..16)?).ok()?;
    let second = if bytes.len() == 19 {
        u8::try_from(number(17..19)?).ok()?
    } else {
        0
    };
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let time = time::Time::from_hms(hour, minute, second).ok()?;
    let nanos = time::PrimitiveDateTime::new(date, time)
        .assume_utc()
        .unix_timestamp_nanos();
    i64::try_from(nanos / 1000).ok()
}

/// The search form, for the template.
struct FormView {
    actor: String,
    action: String,
    target: String,
    outcome: String,
    from: String,
    to: String,
    ip: String,
}

struct Row {
    seq: u64,
    time: String,
    actor: String,
    ip: String,
    action: String,
    target: String,
    outcome: String,
    details: String,
    proof: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    shell: Shell,
    form: FormView,
    actions: &'static [&'static str],
    outcomes: &'static [&'static str],
    error: Option<String>,
    rows: Vec<Row>,
    /// Whether a search ran (false when the filter was refused).
    searched: bool,
    first_page: bool,
    previous_href: Option<String>,
    next_href: Option<String>,
    export_jsonl_href: String,
    export_csv_href: String,
}

/// The newest checkpoint and whether its signature verifies with the server's own key.
enum CheckpointStatus {
    None,
    Signed(u64),
    BadSignature(u64),
}

type CheckpointRow = (i64, Vec<u8>, i64, Vec<u8>, Vec<u8>);

async fn latest_checkpoint(
    db: &Database,
    public_key: &[u8; 32],
) -> Result<CheckpointStatus, DbError> {
    let row: Option<CheckpointRow> = with_db!(db, pool => sqlx::query_as(
        "SELECT tree_size, root, time_us, public_key, signature FROM audit_checkpoints \
         ORDER BY tree_size DESC LIMIT 1"
    ).fetch_optional(pool).await?);
    let Some((tree_size, root, time_us, stored_key, signature)) = row else {
        return Ok(CheckpointStatus::None);
    };
    let tree_size = u64::try_from(tree_size).unwrap_or(0);
    let signed = <[u8; 32]>::try_from(root.as_slice())
        .map(|root| {
            Checkpoint {
                tree_size,
                root,
                time_us,
            }
            // The key stored beside the checkpoint proves nothing: a forger stores their own.
            .verify(public_key, &signature)
                && stored_key.as_slice() == public_key.as_slice()
        })
        .unwrap_or(false);
    Ok(if signed {
        CheckpointStatus::Signed(tree_size)
    } else {
        CheckpointStatus::BadSignature(tree_size)
    })
}

fn proof_status(shell: &Shell, entry: &StoredEntry, checkpoint: &CheckpointStatus) -> String {
    if entry.purged {
        return shell.t("audit-proof-purged");
    }
    match checkpoint {
        CheckpointStatus::Signed(size) if entry.entry.seq <= *size => {
            shell.t1("audit-proof-covered", "size", &size.to_string())
        }
        CheckpointStatus::BadSignature(size) if entry.entry.seq <= *size => {
            shell.t1("audit-proof-bad-signature", "size", &size.to_string())
        }
        _ => shell.t("audit-proof-pending"),
    }
}

fn row(shell: &Shell, stored: &StoredEntry, checkpoint: &CheckpointStatus) -> Row {
    let e = &stored.entry;
    let actor = match (&e.actor_name, e.actor_id) {
        (Some(name), Some(id)) => format!("{name} (#{id})"),
        (Some(name), None) => name.clone(),
        (None, Some(id)) => format!("#{id}"),
        (None, None) => "—".to_owned(),
    };
    Row {
        seq: e.seq,
        time: rfc3339_us(e.time_us),
        actor,
        ip: e.actor_ip.clone().unwrap_or_else(|| "—".to_owned()),
        action: e.action.clone(),
        target: e.target.clone().unwrap_or_else(|| "—".to_owned()),
        outcome: e.outcome.clone(),
        details: e.details.clone(),
        proof: proof_status(shell, stored, checkpoint),
    }
}

/// The server's checkpoint key, as the server itself loaded it at start.
async fn server_signer(state: &AppState) -> Result<CheckpointSigner, AppError> {
    let path = crate::cli::checkpoint_key_path(&state.config);
    tokio::task::spawn_blocking(move || CheckpointSigner::load_or_create(&path))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(|e| AppError::Internal(e.to_string()))
}

/// Lets auditors through; records and refuses everyone else.
async fn require_auditor(
    state: &AppState,
    user: &CurrentUser,
    actor: &Actor,
    action: &'static str,
    path: &str,
) -> Result<(), AppError> {
    if user.0.account.has_role(Role::Auditor) {
        return Ok(());
    }
    security_events::record_alone(
        &state.audit,
        actor,
        action,
        None,
        "denied",
        json!({ "path": path, "reason": "not an auditor" }),
    )
    .await?;
    Err(AppError::ForbiddenRecorded)
}

fn query_form(query: Result<Query<SearchForm>, QueryRejection>) -> Result<SearchForm, AppError> {
    query
        .map(|Query(form)| form)
        .map_err(|_| AppError::BadRequest("error-bad-request"))
}

pub async fn search_page(
    State(state): State<AppState>,
    ctx: PageContext,
    user: CurrentUser,
    actor: Actor,
    query: Result<Query<SearchForm>, QueryRejection>,
) -> Result<Response, AppError> {
    require_auditor(&state, &user, &actor, "audit.search", "/audit").await?;
    let form = query_form(query)?;
    let shell = ctx.shell;
    let filter_query = form.filter_query();
    let with_query = |path: &str| {
        if filter_query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{filter_query}")
        }
    };
    let mut page = AuditPage {
        form: FormView {
            actor: form.actor.trim().to_owned(),
            action: form.action.trim().to_owned(),
            target: form.target.trim().to_owned(),
            outcome: form.outcome.trim().to_owned(),
            from: form.from.trim().to_owned(),
            to: form.to.trim().to_owned(),
            ip: form.ip.trim().to_owned(),
        },
        actions: catalogue::ACTIONS,
        outcomes: catalogue::OUTCOMES,
        error: None,
        rows: Vec::new(),
        searched: false,
        first_page: true,
        previous_href: None,
        next_href: None,
        export_jsonl_href: with_query("/audit/export.jsonl"),
        export_csv_href: with_query("/audit/export.csv"),
        shell,
    };
    let (filter, start) = match form.filter().and_then(|f| Ok((f, form.page_start()?))) {
        Ok(parsed) => parsed,
        Err(message_id) => {
            page.error = Some(page.shell.t(message_id));
            return render(StatusCode::BAD_REQUEST, &page);
        }
    };
    // On record before anything is read: a search that shows nothing still happened.
    let page_start = match start {
        PageStart::AfterSeq(seq) => json!({ "after_seq": seq }),
        PageStart::Offset(offset) => json!({ "offset": offset }),
    };
    security_events::record_alone(
        &state.audit,
        &actor,
        "audit.search",
        None,
        "success",
        json!({ "filter": &filter, "page_start": page_start, "page_size": PAGE_SIZE }),
    )
    .await?;
    let signer = server_signer(&state).await?;
    let results = query::search(
        &state.db,
        &filter,
        Page {
            start,
            limit: PAGE_SIZE,
        },
    )
    .await?;
    let checkpoint = latest_checkpoint(&state.db, &signer.public_key()).await?;
    page.rows = results
        .entries
        .iter()
        .map(|e| row(&page.shell, e, &checkpoint))
        .collect();
    page.searched = true;
    let link = |after: Option<u64>| {
        let mut params = filter_query.clone();
        if let Some(after) = after {
            if !params.is_empty() {
                params.push('&');
            }
            params.push_str(&format!("after={after}"));
        }
        if params.is_empty() {
            "/audit".to_owned()
        } else {
            format!("/audit?{params}")
        }
    };
    page.next_href = results.next(PAGE_SIZE).and_then(|next| match next.start {
        PageStart::AfterSeq(seq) => Some(link(Some(seq))),
        PageStart::Offset(_) => None,
    });
    if let PageStart::AfterSeq(after) = start {
        page.first_page = false;
        // The previous page: the PAGE_SIZE matching entries just newer than this page's first.
        let newest_here = results
            .entries
            .first()
            .map_or(after.saturating_sub(1), |e| e.entry.seq);
        let newer =
            query::ascending(&state.db, &filter, newest_here, u64::MAX, PAGE_SIZE + 1).await?;
        page.previous_href = Some(if newer.len() > PAGE_SIZE as usize {
            let top = newer
                .get(PAGE_SIZE as usize - 1)
                .map_or(newest_here, |e| e.entry.seq);
            link(Some(top + 1))
        } else {
            link(None)
        });
    }
    render(StatusCode::OK, &page)
}

pub async fn export_jsonl(
    State(state): State<AppState>,
    user: CurrentUser,
    actor: Actor,
    query: Result<Query<SearchForm>, QueryRejection>,
) -> Result<Response, AppError> {
    export_response(state, user, actor, query, ExportFormat::Jsonl).await
}

pub async fn export_csv(
    State(state): State<AppState>,
    user: CurrentUser,
    actor: Actor,
    query: Result<Query<SearchForm>, QueryRejection>,
) -> Result<Response, AppError> {
    export_response(state, user, actor, query, ExportFormat::Csv).await
}

/// Writes the export to an anonymous temporary file in the data directory (gone when closed,
/// never in a shared /tmp), then streams it: errors found while exporting still get an error
/// page, and memory stays flat however large the log. The disk holds one copy per running
/// export; for very large logs, `beffroi audit export` on the server avoids the copy.
async fn export_response(
    state: AppState,
    user: CurrentUser,
    actor: Actor,
    query: Result<Query<SearchForm>, QueryRejection>,
    format: ExportFormat,
) -> Result<Response, AppError> {
    let path = match format {
        ExportFormat::Jsonl => "/audit/export.jsonl",
        ExportFormat::Csv => "/audit/export.csv",
    };
    require_auditor(&state, &user, &actor, "audit.export", path).await?;
    let filter = query_form(query)?.filter().map_err(AppError::BadRequest)?;
    let signer = server_signer(&state).await?;
    let dir = state.config.storage.data_dir.clone();
    let file = tokio::task::spawn_blocking(move || tempfile::tempfile_in(dir))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(|e| AppError::Internal(format!("export temporary file: {e}")))?;
    let mut file = tokio::fs::File::from_std(file);
    export::export(&state.db, &signer, &filter, format, &actor, &mut file)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    file.rewind()
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let stream = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(Bytes::from(buf)), Some(file)))
            }
            // The body ends with the error; a JSONL export cut short fails verification.
            Err(e) => Some((Err(e), None)),
        }
    });
    let (content_type, name) = match format {
        ExportFormat::Jsonl => ("application/jsonl; charset=utf-8", "audit-export.jsonl"),
        ExportFormat::Csv => ("text/csv; charset=utf-8", "audit-export.csv"),
    };
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_local_values_are_utc() {
        assert_eq!(parse_datetime("1970-01-01T00:00"), Some(0));
        assert_eq!(parse_datetime("1970-01-01T00:00:01"), Some(1_000_000));
        assert_eq!(
            parse_datetime("2026-11-25T18:30"),
            Some(1_795_631_400_000_000)
        );
        for bad in [
            "2026-13-01T00:00",
            "2026-02-30T00:00",
            "2026-11-25",
            "2026-11-25T24:00",
            "2026-11-25T1a:00",
            "+026-11-25T10:00",
            "yesterday",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_filter_is_checked_against_the_catalogue() {
        let form = |action: &str, outcome: &str, ip: &str| SearchForm {
            action: action.into(),
            outcome: outcome.into(),
            ip: ip.into(),
            ..SearchForm::default()
        };
        assert!(form("auth.sign_in", "denied", "192.0.2.*").filter().is_ok());
        assert_eq!(form("nope", "", "").filter(), Err("audit-error-action"));
        assert_eq!(form("", "ok", "").filter(), Err("audit-error-outcome"));
        assert_eq!(form("", "", "10.0.0.0/8").filter(), Err("audit-error-ip"));
        let backwards = SearchForm {
            from: "2026-01-02T00:00".into(),
            to: "2026-01-01T00:00".into(),
            ..SearchForm::default()
        };
        assert_eq!(backwards.filter(), Err("audit-error-range"));
        let long = SearchForm {
            actor: "x".repeat(MAX_TEXT + 1),
            ..SearchForm::default()
        };
        assert_eq!(long.filter(), Err("audit-error-too-long"));
        let keep = SearchForm {
            actor: " a&b ".into(),
            after: "7".into(),
            ..SearchForm::default()
        };
        assert_eq!(keep.filter_query(), "actor=a%26b");
        assert_eq!(keep.page_start(), Ok(PageStart::AfterSeq(7)));
    }
}
