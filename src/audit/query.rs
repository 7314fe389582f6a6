//! Searching the audit log, for the auditor pages and the export: a [`Filter`] on an entry's
//! fields, and pages of entries newest first ([`search`]).
//!
//! What an auditor types is never part of the SQL text: a query is assembled from fixed
//! fragments (`&'static str` only, enforced by [`Sql`]) and numbered placeholders, and every
//! value is bound. Matching is the same on both backends: where SQLite and PostgreSQL differ
//! (case folding, substring functions), each gets its own fragment with the same meaning.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::audit::store::{ENTRY_COLUMNS, EntryRow, StoredEntry, stored_entry};
use crate::db::{Backend, Database, DbError};
use crate::with_db;

/// The largest page [`search`] returns, whatever is asked.
pub const MAX_PAGE: u32 = 500;

/// Which entries to select. Every criterion that is set must hold; an unset or empty one selects
/// everything. Text criteria compare the stored text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// An account number, matched exactly against `actor_id`, or a part of the actor's display
    /// name, matched without regard to case (ASCII letters only, identically on both backends:
    /// `alice` finds `Alice`, but `élodie` does not find `Élodie`). A number matches either way:
    /// `7` finds account 7 and anyone whose name contains "7".
    pub actor: Option<String>,
    /// The action, exactly (`auth.sign_in`).
    pub action: Option<String>,
    /// A part of the target, case-sensitive.
    pub target: Option<String>,
    /// The outcome, exactly (`success`, `failure`, `denied`).
    pub outcome: Option<String>,
    /// Entries at or after this time (µs since the epoch, UTC).
    pub from_us: Option<i64>,
    /// Entries strictly before this time (µs since the epoch, UTC): `from`/`to` of consecutive
    /// periods never count an entry twice.
    pub to_us: Option<i64>,
    /// The client address, exactly or by prefix.
    pub ip: Option<IpFilter>,
}

/// An address criterion: `192.0.2.10` or `2001:db8::1` exactly, or a prefix of the stored text
/// written with a final `*` (`192.0.2.*`, `2001:db8:*`). A prefix compares text, not networks:
/// `10.1*` also finds `10.17.0.1`, which is why the documented form ends in a separator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum IpFilter {
    /// An address in its canonical text form (as the server stores it).
    Exact(String),
    /// Lowercase hexadecimal digits, `.` and `:`, without the `*`.
    Prefix(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error(
        "{0:?} is neither an IP address nor a prefix ending in '*' (such as 192.0.2.* or 2001:db8:*)"
    )]
    Ip(String),
}

impl IpFilter {
    pub fn parse(text: &str) -> Result<Self, FilterError> {
        let text = text.trim();
        let refuse = || FilterError::Ip(text.to_owned());
        if let Some(prefix) = text.strip_suffix('*') {
            // Digits, letters a-f, dots and colons: nothing a LIKE or a regex could read as a
            // pattern, and nothing an address does not contain.
            let valid = !prefix.is_empty()
                && prefix.len() <= 45
                && prefix
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == '.' || c == ':');
            return if valid {
                Ok(Self::Prefix(prefix.to_ascii_lowercase()))
            } else {
                Err(refuse())
            };
        }
        // Canonical form, as the server writes addresses: `2001:DB8:0::1` finds `2001:db8::1`.
        text.parse::<IpAddr>()
            .map(|ip| Self::Exact(ip.to_string()))
            .map_err(|_| refuse())
    }
}

impl TryFrom<String> for IpFilter {
    type Error = FilterError;
    fn try_from(text: String) -> Result<Self, FilterError> {
        Self::parse(&text)
    }
}

impl From<IpFilter> for String {
    fn from(ip: IpFilter) -> String {
        match ip {
            IpFilter::Exact(ip) => ip,
            IpFilter::Prefix(prefix) => format!("{prefix}*"),
        }
    }
}

/// Where a page starts, in the newest-first order of [`search`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageStart {
    /// The entries that come after `seq` in that order, i.e. those with a smaller sequence
    /// number. Stable while new entries arrive, and as fast on page 1000 as on page 1: the next
    /// page of a [`SearchPage`] is `AfterSeq` of its last entry.
    AfterSeq(u64),
    /// Skip this many matching entries (0 for the first page). Simple for numbered pages, but
    /// the database reads every skipped row, and new entries shift the pages.
    Offset(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub start: PageStart,
    /// At most this many entries, capped to [`MAX_PAGE`] (and at least 1).
    pub limit: u32,
}

impl Page {
    pub fn first(limit: u32) -> Self {
        Self {
            start: PageStart::Offset(0),
            limit,
        }
    }
}

/// One page of entries, newest first.
#[derive(Debug, Clone)]
pub struct SearchPage {
    pub entries: Vec<StoredEntry>,
    /// Whether more entries match after this page.
    pub more: bool,
}

impl SearchPage {
    /// The page after this one, if there is one.
    pub fn next(&self, limit: u32) -> Option<Page> {
        let last = self.entries.last()?;
        self.more.then_some(Page {
            start: PageStart::AfterSeq(last.entry.seq),
            limit,
        })
    }
}

/// A value bound to a placeholder.
#[derive(Debug, Clone)]
enum Bind {
    Int(i64),
    Text(String),
}

/// SQL text that can only grow by fixed fragments and placeholders, so no value ever reaches it.
#[derive(Debug)]
struct Sql {
    text: String,
    binds: Vec<Bind>,
}

impl Sql {
    fn new(fragment: &'static str) -> Self {
        Self {
            text: fragment.to_owned(),
            binds: Vec::new(),
        }
    }

    fn push(&mut self, fragment: &'static str) -> &mut Self {
        self.text.push_str(fragment);
        self
    }

    /// Appends the placeholder `$n` for `value`.
    fn bind(&mut self, value: Bind) -> &mut Self {
        self.binds.push(value);
        self.text.push('$');
        self.text.push_str(&self.binds.len().to_string());
        self
    }
}

/// `Some(text)` when a criterion is set and not empty.
fn set(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// Appends ` AND …` for every criterion of `filter`, in the dialect of `backend`.
fn push_filter(sql: &mut Sql, backend: Backend, filter: &Filter) {
    let postgres = backend == Backend::Postgres;
    if let Some(actor) = set(&filter.actor) {
        sql.push(" AND (");
        if let Ok(id) = actor.trim().parse::<i64>() {
            sql.push("actor_id = ").bind(Bind::Int(id)).push(" OR ");
        }
        // ASCII case folding on both sides, the same on both backends: SQLite's lower() folds
        // ASCII only, and PostgreSQL's lower() would fold more, depending on the locale.
        if postgres {
            sql.push(
                "strpos(translate(actor_name, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', \
                 'abcdefghijklmnopqrstuvwxyz'), ",
            );
        } else {
            sql.push("instr(lower(actor_name), ");
        }
        sql.bind(Bind::Text(actor.to_ascii_lowercase()))
            .push(") > 0)");
    }
    if let Some(action) = set(&filter.action) {
        sql.push(" AND action = ")
            .bind(Bind::Text(action.to_owned()));
    }
    if let Some(target) = set(&filter.target) {
        // strpos/instr rather than LIKE: no wildcard to escape, and case-sensitive on both.
        sql.push(if postgres {
            " AND strpos(target, "
        } else {
            " AND instr(target, "
        })
        .bind(Bind::Text(target.to_owned()))
        .push(") > 0");
    }
    if let Some(outcome) = set(&filter.outcome) {
        sql.push(" AND outcome = ")
            .bind(Bind::Text(outcome.to_owned()));
    }
    if let Some(from) = filter.from_us {
        sql.push(" AND time_us >= ").bind(Bind::Int(from));
    }
    if let Some(to) = filter.to_us {
        sql.push(" AND time_us < ").bind(Bind::Int(to));
    }
    match &filter.ip {
        Some(IpFilter::Exact(ip)) => {
            sql.push(" AND actor_ip = ").bind(Bind::Text(ip.clone()));
        }
        Some(IpFilter::Prefix(prefix)) => {
            sql.push(" AND substr(actor_ip, 1, length(")
                .bind(Bind::Text(prefix.clone()))
                .push(")) = ")
                .bind(Bind::Text(prefix.clone()));
        }
        None => {}
    }
}

fn to_db(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

async fn fetch_entries(db: &Database, sql: Sql) -> Result<Vec<StoredEntry>, DbError> {
    let rows: Vec<EntryRow> = with_db!(db, pool => {
        // Assembled by `Sql` from fixed fragments only; the values are in `binds`.
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.text));
        for value in sql.binds {
            query = match value {
                Bind::Int(n) => query.bind(n),
                Bind::Text(t) => query.bind(t),
            };
        }
        query.fetch_all(pool).await?
    });
    Ok(rows.into_iter().map(stored_entry).collect())
}

/// The entries matching `filter`, newest first, one page at a time.
pub async fn search(db: &Database, filter: &Filter, page: Page) -> Result<SearchPage, DbError> {
    let limit = page.limit.clamp(1, MAX_PAGE);
    let mut sql = Sql::new("SELECT ");
    sql.push(ENTRY_COLUMNS).push(" FROM audit_log WHERE 1 = 1");
    push_filter(&mut sql, db.backend(), filter);
    if let PageStart::AfterSeq(seq) = page.start {
        sql.push(" AND seq < ").bind(Bind::Int(to_db(seq)));
    }
    // One more than asked tells whether another page exists, without counting.
    sql.push(" ORDER BY seq DESC LIMIT ")
        .bind(Bind::Int(i64::from(limit) + 1));
    if let PageStart::Offset(offset) = page.start {
        sql.push(" OFFSET ").bind(Bind::Int(to_db(offset)));
    }
    let mut entries = fetch_entries(db, sql).await?;
    let more = entries.len() > limit as usize;
    entries.truncate(limit as usize);
    Ok(SearchPage { entries, more })
}

/// How many entries match, and the largest matching sequence number (0 if none), among the
/// entries up to `up_to` (all of them if `None`).
pub async fn count(
    db: &Database,
    filter: &Filter,
    up_to: Option<u64>,
) -> Result<(u64, u64), DbError> {
    let mut sql = Sql::new("SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM audit_log WHERE 1 = 1");
    push_filter(&mut sql, db.backend(), filter);
    if let Some(up_to) = up_to {
        sql.push(" AND seq <= ").bind(Bind::Int(to_db(up_to)));
    }
    let (count, max): (i64, i64) = with_db!(db, pool => {
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.text));
        for value in sql.binds {
            query = match value {
                Bind::Int(n) => query.bind(n),
                Bind::Text(t) => query.bind(t),
            };
        }
        query.fetch_one(pool).await?
    });
    Ok((
        u64::try_from(count).unwrap_or(0),
        u64::try_from(max).unwrap_or(0),
    ))
}

/// The matching entries with `after < seq <= up_to`, oldest first, at most `limit` of them: the
/// export reads the log in such chunks, so memory does not grow with the log.
pub(crate) async fn ascending(
    db: &Database,
    filter: &Filter,
    after: u64,
    up_to: u64,
    limit: u32,
) -> Result<Vec<StoredEntry>, DbError> {
    let mut sql = Sql::new("SELECT ");
    sql.push(ENTRY_COLUMNS).push(" FROM audit_log WHERE seq > ");
    sql.bind(Bind::Int(to_db(after)))
        .push(" AND seq <= ")
        .bind(Bind::Int(to_db(up_to)));
    push_filter(&mut sql, db.backend(), filter);
    sql.push(" ORDER BY seq LIMIT ")
        .bind(Bind::Int(i64::from(limit.max(1))));
    fetch_entries(db, sql).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_filters_are_canonical_addresses_or_plain_prefixes() {
        assert_eq!(
            IpFilter::parse("2001:DB8:0::1").unwrap(),
            IpFilter::Exact("2001:db8::1".into())
        );
        assert_eq!(
            IpFilter::parse(" 192.0.2.10 ").unwrap(),
            IpFilter::Exact("192.0.2.10".into())
        );
        assert_eq!(
            IpFilter::parse("2001:DB8:*").unwrap(),
            IpFilter::Prefix("2001:db8:".into())
        );
        for bad in [
            "",
            "*",
            "192.0.2.%*",
            "192.0.2._*",
            "10.0.0.0/8",
            "host.example",
            "1.2.3",
        ] {
            assert!(IpFilter::parse(bad).is_err(), "{bad}");
        }
        let json = serde_json::to_string(&IpFilter::Prefix("192.0.2.".into())).unwrap();
        assert_eq!(json, "\"192.0.2.*\"");
        assert!(serde_json::from_str::<IpFilter>("\"x*\"").is_err());
    }

    #[test]
    fn values_are_bound_never_written_into_the_sql() {
        let filter = Filter {
            actor: Some("4242".into()),
            action: Some("auth.sign_in'; DROP TABLE audit_log; --".into()),
            target: Some("x' OR 1=1 --".into()),
            outcome: Some("success".into()),
            from_us: Some(1),
            to_us: Some(2),
            ip: Some(IpFilter::Prefix("192.0.2.".into())),
        };
        for backend in [Backend::Sqlite, Backend::Postgres] {
            let mut sql = Sql::new("SELECT 1 FROM audit_log WHERE 1 = 1");
            push_filter(&mut sql, backend, &filter);
            for value in ["4242", "OR 1=1", "DROP", "success", "192.0.2."] {
                assert!(!sql.text.contains(value), "{value} in {}", sql.text);
            }
            // actor (id and name), action, target, outcome, from, to, prefix twice.
            assert_eq!(sql.binds.len(), 9, "{}", sql.text);
            assert!(sql.text.ends_with("= $9"), "{}", sql.text);
        }
    }
}
