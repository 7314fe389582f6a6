//! News queries. Every value is bound; the only SQL that differs per backend is how the
//! agent's audience keys (one JSON array parameter, see [`crate::audience`]) are expanded.
//! Functions taking a [`Tx`] write; the service layer decides whether they may.

use crate::audience::AgentAudience;
use crate::db::{Database, DbError, Tx};
use crate::{with_db, with_tx};

/// Expands to the same query for each backend, with `$1` (the agent's keys, a JSON array)
/// expanded the way each one can.
macro_rules! per_backend {
    ($db:expr, $pool:ident => |$sql:ident| $body:expr, $($part:expr)+) => {
        match $db {
            Database::Sqlite($pool) => {
                let $sql = concat!($($part),+).replace("{KEYS}", "SELECT value FROM json_each($1)");
                $body
            }
            Database::Postgres($pool) => {
                let $sql = concat!($($part),+)
                    .replace("{KEYS}", "SELECT jsonb_array_elements_text($1::jsonb)");
                $body
            }
        }
    };
}

// The wall's two queries, in pieces that `wall`, `unacknowledged` and `first_page` assemble
// (macros, because `concat!` takes only literals). Parameters: $1 the agent's keys, $2 now,
// $3 the account, $4 a category or NULL; each query numbers its limits after these.

/// A wall row's columns, with whether the agent acknowledged it and whether a reminder went.
macro_rules! wall_columns {
    () => {
        concat!(
            "n.id, n.title, n.summary, CASE WHEN n.summary IS NULL THEN n.body ELSE '' END AS body, ",
            "n.category, n.important, n.pinned, n.publish_at, ",
            "n.image_sha256 IS NOT NULL AS has_image, n.image_alt, s.name AS space_name, n.ack_required, ",
            "n.ack_deadline, n.current_version_id, ",
            "EXISTS (SELECT 1 FROM news_receipts r WHERE r.news_id = n.id ",
            "  AND r.ack_round = n.ack_round AND r.account_id = $3) AS acknowledged, ",
            "EXISTS (SELECT 1 FROM news_reminders m WHERE m.news_id = n.id ",
            "  AND m.ack_round = n.ack_round) AS reminded "
        )
    };
}

/// Live items in the agent's audience, of the category if one is given.
macro_rules! wall_filter {
    () => {
        concat!(
            "FROM news_items n JOIN spaces s ON s.id = n.space_id ",
            "WHERE n.status = 'published' AND n.publish_at <= $2 ",
            "AND (n.expire_at IS NULL OR n.expire_at > $2) ",
            "AND EXISTS (SELECT 1 FROM news_audience a WHERE a.news_id = n.id ",
            "  AND a.audience_key IN ({KEYS})) ",
            "AND (CAST($4 AS TEXT) IS NULL OR n.category = $4) "
        )
    };
}

/// A pending mandatory read's columns: listed by title, so neither body nor summary is read.
macro_rules! pending_columns {
    () => {
        concat!(
            "n.id, n.title, '' AS summary, '' AS body, n.category, n.important, n.pinned, ",
            "n.publish_at, n.image_sha256 IS NOT NULL AS has_image, n.image_alt, ",
            "s.name AS space_name, n.ack_required, n.ack_deadline, n.current_version_id, ",
            "FALSE AS acknowledged, ",
            "EXISTS (SELECT 1 FROM news_reminders m WHERE m.news_id = n.id ",
            "  AND m.ack_round = n.ack_round) AS reminded "
        )
    };
}

/// Live mandatory reads in the agent's audience not acknowledged in their current round, in
/// deadline order (the order of the `news_items_pending_reads` index, so a LIMIT stops early).
macro_rules! pending_filter_and_order {
    () => {
        concat!(
            "FROM news_items n JOIN spaces s ON s.id = n.space_id ",
            "WHERE n.ack_required = TRUE AND n.status = 'published' AND n.publish_at <= $2 ",
            "AND (n.expire_at IS NULL OR n.expire_at > $2) ",
            "AND EXISTS (SELECT 1 FROM news_audience a WHERE a.news_id = n.id ",
            "  AND a.audience_key IN ({KEYS})) ",
            "AND NOT EXISTS (SELECT 1 FROM news_receipts r WHERE r.news_id = n.id ",
            "  AND r.ack_round = n.ack_round AND r.account_id = $3) ",
            "ORDER BY COALESCE(n.ack_deadline, 9000000000000), n.id "
        )
    };
}

/// One item, with its space's name and policy and its author's name.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Item {
    pub id: i64,
    pub space_id: i64,
    pub space_name: String,
    pub approval_required: bool,
    pub author_id: Option<i64>,
    pub author_name: Option<String>,
    pub title: String,
    pub body: String,
    pub body_sha256: String,
    pub category: String,
    pub important: bool,
    pub pinned: bool,
    pub status: String,
    pub rejection_reason: Option<String>,
    pub publish_at: i64,
    pub expire_at: Option<i64>,
    pub image_sha256: Option<String>,
    pub image_type: Option<String>,
    /// The image's text alternative; "" for a decorative image (NULL from before it existed).
    pub image_alt: Option<String>,
    pub ack_required: bool,
    pub ack_deadline: Option<i64>,
    pub ack_round: i64,
    pub current_version_id: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Item {
    /// Published and inside its publication window at `now`.
    pub fn is_live(&self, now: i64) -> bool {
        self.status == "published"
            && self.publish_at <= now
            && self.expire_at.is_none_or(|e| e > now)
    }
}

const ITEM_SELECT: &str = "SELECT n.id, n.space_id, s.name AS space_name, s.approval_required, \
     n.author_id, a.display_name AS author_name, n.title, n.body, n.body_sha256, n.category, \
     n.important, n.pinned, n.status, n.rejection_reason, n.publish_at, n.expire_at, \
     n.image_sha256, n.image_type, n.image_alt, n.ack_required, n.ack_deadline, n.ack_round, \
     n.current_version_id, n.created_at, n.updated_at \
     FROM news_items n JOIN spaces s ON s.id = n.space_id \
     LEFT JOIN accounts a ON a.id = n.author_id";

pub async fn item(db: &Database, id: i64) -> Result<Option<Item>, DbError> {
    let sql = sqlx::AssertSqlSafe(format!("{ITEM_SELECT} WHERE n.id = $1"));
    Ok(with_db!(db, pool => sqlx::query_as(sql).bind(id).fetch_optional(pool).await?))
}

pub async fn audience_keys(db: &Database, id: i64) -> Result<Vec<String>, DbError> {
    Ok(with_db!(db, pool => sqlx::query_scalar(
        "SELECT audience_key FROM news_audience WHERE news_id = $1 ORDER BY audience_key"
    ).bind(id).fetch_all(pool).await?))
}

/// One item as the wall lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WallRow {
    pub id: i64,
    pub title: String,
    /// The stored summary; when absent (rows from before summaries), `body` holds the text to
    /// summarise, else it is empty.
    pub summary: Option<String>,
    pub body: String,
    pub category: String,
    pub important: bool,
    pub pinned: bool,
    pub publish_at: i64,
    pub has_image: bool,
    pub image_alt: Option<String>,
    pub space_name: String,
    pub ack_required: bool,
    pub ack_deadline: Option<i64>,
    pub current_version_id: Option<i64>,
    pub acknowledged: bool,
    pub reminded: bool,
}

/// Where a wall page starts: strictly after this item in display order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallCursor {
    pub pinned: bool,
    pub publish_at: i64,
    pub id: i64,
}

impl WallCursor {
    pub fn encode(&self) -> String {
        format!("{}.{}.{}", u8::from(self.pinned), self.publish_at, self.id)
    }

    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('.');
        let pinned = match parts.next()? {
            "0" => false,
            "1" => true,
            _ => return None,
        };
        let publish_at = parts.next()?.parse().ok()?;
        let id = parts.next()?.parse().ok()?;
        parts.next().is_none().then_some(Self {
            pinned,
            publish_at,
            id,
        })
    }
}

/// One page of an agent's wall: live items in their audience, pinned first, newest first.
/// The audience test is an `EXISTS` on `news_audience`'s primary key, evaluated while the
/// `news_items_wall` index is walked in display order, so a page costs about one page of rows.
pub async fn wall(
    db: &Database,
    audience: &AgentAudience,
    account_id: i64,
    now: i64,
    category: Option<&str>,
    after: Option<WallCursor>,
    limit: i64,
) -> Result<Vec<WallRow>, DbError> {
    if audience.is_empty() {
        return Ok(Vec::new());
    }
    let keys = audience.json();
    let rows = per_backend!(db, pool => |sql| {
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&keys).bind(now).bind(account_id).bind(category)
            .bind(after.map(|c| c.publish_at)).bind(after.is_some_and(|c| c.pinned))
            .bind(after.map_or(0, |c| c.id)).bind(limit)
            .fetch_all(pool).await?
    },
        "SELECT " wall_columns!() wall_filter!()
        "AND (CAST($5 AS BIGINT) IS NULL OR (n.pinned, n.publish_at, n.id) < ($6, $5, $7)) "
        "ORDER BY n.pinned DESC, n.publish_at DESC, n.id DESC LIMIT $8"
    );
    Ok(rows)
}

/// A wall's first page and the agent's first pending mandatory reads, in one round trip to the
/// database: the two queries of [`wall`] and [`unacknowledged`], unchanged, as the two halves of
/// a `UNION ALL`, each with its own `ORDER BY … LIMIT` (so each still walks its index and stops
/// early). The outer `ORDER BY` only puts the halves back in their own orders, on a few dozen
/// rows: `part` first, then each half's keys, made descending for both.
pub async fn first_page(
    db: &Database,
    audience: &AgentAudience,
    account_id: i64,
    now: i64,
    category: Option<&str>,
    limit: i64,
    pending_limit: i64,
) -> Result<(Vec<WallRow>, Vec<WallRow>), DbError> {
    if audience.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let keys = audience.json();
    let rows: Vec<FirstPageRow> = per_backend!(db, pool => |sql| {
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&keys).bind(now).bind(account_id).bind(category)
            .bind(limit).bind(pending_limit)
            .fetch_all(pool).await?
    },
        "SELECT * FROM (SELECT CAST(0 AS BIGINT) AS part, "
        "CAST(CASE WHEN n.pinned THEN 1 ELSE 0 END AS BIGINT) AS k1, "
        "CAST(n.publish_at AS BIGINT) AS k2, CAST(n.id AS BIGINT) AS k3, "
        wall_columns!() wall_filter!()
        "ORDER BY n.pinned DESC, n.publish_at DESC, n.id DESC LIMIT $5) AS page "
        "UNION ALL "
        "SELECT * FROM (SELECT CAST(1 AS BIGINT) AS part, CAST(0 AS BIGINT) AS k1, "
        "CAST(-COALESCE(n.ack_deadline, 9000000000000) AS BIGINT) AS k2, "
        "CAST(-n.id AS BIGINT) AS k3, "
        pending_columns!() pending_filter_and_order!()
        "LIMIT $6) AS pending "
        "ORDER BY part, k1 DESC, k2 DESC, k3 DESC"
    );
    let (mut page, mut pending) = (Vec::new(), Vec::new());
    for row in rows {
        if row.part == 0 {
            page.push(row.row);
        } else {
            pending.push(row.row);
        }
    }
    Ok((page, pending))
}

/// One row of [`first_page`]: which half it belongs to, and the row itself (the sort keys are
/// only for the query).
#[derive(sqlx::FromRow)]
struct FirstPageRow {
    part: i64,
    #[sqlx(flatten)]
    row: WallRow,
}

/// The agent's live mandatory reads not yet acknowledged in their current round, earliest
/// deadline first, at most `limit` of them. The body is not read (it comes back empty): these
/// rows are listed by title, and an agent with many pending reads would otherwise pay for
/// every body on every wall.
pub async fn unacknowledged(
    db: &Database,
    audience: &AgentAudience,
    account_id: i64,
    now: i64,
    limit: i64,
) -> Result<Vec<WallRow>, DbError> {
    if audience.is_empty() {
        return Ok(Vec::new());
    }
    let keys = audience.json();
    let rows = per_backend!(db, pool => |sql| {
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&keys).bind(now).bind(account_id).bind(limit)
            .fetch_all(pool).await?
    },
        "SELECT " pending_columns!() pending_filter_and_order!() "LIMIT $4"
    );
    Ok(rows)
}

/// What a new or edited item says.
#[derive(Debug, Clone)]
pub struct ItemFields {
    pub title: String,
    pub body: String,
    pub body_sha256: String,
    pub category: String,
    pub important: bool,
    pub pinned: bool,
    pub publish_at: i64,
    pub expire_at: Option<i64>,
    pub ack_required: bool,
    pub ack_deadline: Option<i64>,
    /// The wall's plain-text summary of `body` ([`crate::news::summary_of`]).
    pub summary: String,
}

pub async fn insert_item(
    tx: &mut Tx,
    space_id: i64,
    author_id: i64,
    fields: &ItemFields,
    status: &str,
    now: i64,
) -> Result<i64, DbError> {
    Ok(with_tx!(tx, conn => sqlx::query_scalar(
        "INSERT INTO news_items (space_id, author_id, title, body, body_sha256, category, \
         important, pinned, status, publish_at, expire_at, ack_required, ack_deadline, \
         created_at, updated_at, summary) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15) RETURNING id"
    ).bind(space_id).bind(author_id).bind(&fields.title).bind(&fields.body)
     .bind(&fields.body_sha256).bind(&fields.category).bind(fields.important).bind(fields.pinned)
     .bind(status).bind(fields.publish_at).bind(fields.expire_at).bind(fields.ack_required)
     .bind(fields.ack_deadline).bind(now).bind(&fields.summary)
     .fetch_one(conn).await?))
}

/// Replaces an item's content and state; `new_round` starts a new acknowledgement round.
pub async fn update_item(
    tx: &mut Tx,
    id: i64,
    fields: &ItemFields,
    status: &str,
    new_round: bool,
    now: i64,
) -> Result<(), DbError> {
    with_tx!(tx, conn => sqlx::query(
        "UPDATE news_items SET title = $2, body = $3, body_sha256 = $4, category = $5, \
         important = $6, pinned = $7, status = $8, publish_at = $9, expire_at = $10, \
         ack_required = $11, ack_deadline = $12, updated_at = $13, rejection_reason = NULL, \
         ack_round = ack_round + (CASE WHEN $14 THEN 1 ELSE 0 END), summary = $15 WHERE id = $1"
    ).bind(id).bind(&fields.title).bind(&fields.body).bind(&fields.body_sha256)
     .bind(&fields.category).bind(fields.important).bind(fields.pinned).bind(status)
     .bind(fields.publish_at).bind(fields.expire_at).bind(fields.ack_required)
     .bind(fields.ack_deadline).bind(now).bind(new_round).bind(&fields.summary)
     .execute(conn).await.map(|_| ())?);
    Ok(())
}

pub async fn set_image_alt(tx: &mut Tx, id: i64, alt: &str) -> Result<(), DbError> {
    with_tx!(tx, conn => sqlx::query("UPDATE news_items SET image_alt = $2 WHERE id = $1")
        .bind(id).bind(alt).execute(conn).await.map(|_| ())?);
    Ok(())
}

pub async fn set_image(tx: &mut Tx, id: i64, sha256: &str, mime: &str) -> Result<(), DbError> {
    with_tx!(tx, conn => sqlx::query(
        "UPDATE news_items SET image_sha256 = $2, image_type = $3 WHERE id = $1"
    ).bind(id).bind(sha256).bind(mime).execute(conn).await.map(|_| ())?);
    Ok(())
}

/// Records a version and makes it the item's current one; returns its id.
pub async fn insert_version(
    tx: &mut Tx,
    news_id: i64,
    fields: &ItemFields,
    author: (i64, &str),
    change_kind: &str,
    now: i64,
) -> Result<i64, DbError> {
    let version: i64 = with_tx!(tx, conn => sqlx::query_scalar(
        "INSERT INTO news_versions (news_id, title, body, body_sha256, author_id, author_name, \
         change_kind, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id"
    ).bind(news_id).bind(&fields.title).bind(&fields.body).bind(&fields.body_sha256)
     .bind(author.0).bind(author.1).bind(change_kind).bind(now)
     .fetch_one(&mut *conn).await?);
    with_tx!(tx, conn => sqlx::query(
        "UPDATE news_items SET current_version_id = $2 WHERE id = $1"
    ).bind(news_id).bind(version).execute(conn).await.map(|_| ())?);
    Ok(version)
}

pub async fn set_audience(tx: &mut Tx, news_id: i64, keys: &[String]) -> Result<(), DbError> {
    with_tx!(tx, conn => sqlx::query("DELETE FROM news_audience WHERE news_id = $1")
        .bind(news_id).execute(&mut *conn).await.map(|_| ())?);
    for key in keys {
        with_tx!(tx, conn => sqlx::query(
            "INSERT INTO news_audience (news_id, audience_key) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        ).bind(news_id).bind(key).execute(conn).await.map(|_| ())?);
    }
    Ok(())
}

/// Moves an item to `status` only if it is still in `from` (so two managers deciding at once
/// cannot both win); returns whether it moved.
pub async fn transition(
    tx: &mut Tx,
    id: i64,
    from: &[&str],
    status: &str,
    reason: Option<&str>,
    now: i64,
) -> Result<bool, DbError> {
    let from = serde_json::Value::from(from.to_vec()).to_string();
    let done = match tx {
        Tx::Sqlite(t) => sqlx::query(
            "UPDATE news_items SET status = $2, rejection_reason = $3, updated_at = $4 \
             WHERE id = $1 AND status IN (SELECT value FROM json_each($5))",
        )
        .bind(id)
        .bind(status)
        .bind(reason)
        .bind(now)
        .bind(&from)
        .execute(&mut **t)
        .await?
        .rows_affected(),
        Tx::Postgres(t) => sqlx::query(
            "UPDATE news_items SET status = $2, rejection_reason = $3, updated_at = $4 \
             WHERE id = $1 AND status IN (SELECT jsonb_array_elements_text($5::jsonb))",
        )
        .bind(id)
        .bind(status)
        .bind(reason)
        .bind(now)
        .bind(&from)
        .execute(&mut **t)
        .await?
        .rows_affected(),
    };
    Ok(done == 1)
}

/// Stores a receipt unless the agent already acknowledged this round; returns whether it did.
pub async fn insert_receipt(
    tx: &mut Tx,
    item: &Item,
    version_id: i64,
    account_id: i64,
    now: i64,
) -> Result<bool, DbError> {
    let done = with_tx!(tx, conn => sqlx::query(
        "INSERT INTO news_receipts (news_id, account_id, ack_round, version_id, body_sha256, \
         acknowledged_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"
    ).bind(item.id).bind(account_id).bind(item.ack_round).bind(version_id)
     .bind(&item.body_sha256).bind(now).execute(conn).await?.rows_affected());
    Ok(done == 1)
}

pub async fn insert_reminder(
    tx: &mut Tx,
    item: &Item,
    sent_by: i64,
    now: i64,
) -> Result<(), DbError> {
    with_tx!(tx, conn => sqlx::query(
        "INSERT INTO news_reminders (news_id, ack_round, sent_by, sent_at) VALUES ($1, $2, $3, $4)"
    ).bind(item.id).bind(item.ack_round).bind(sent_by).bind(now).execute(conn).await.map(|_| ())?);
    Ok(())
}

/// When the account acknowledged the item's current round, if it did.
pub async fn acknowledged_at(
    db: &Database,
    item: &Item,
    account_id: i64,
) -> Result<Option<i64>, DbError> {
    Ok(with_db!(db, pool => sqlx::query_scalar(
        "SELECT acknowledged_at FROM news_receipts WHERE news_id = $1 AND ack_round = $2 \
         AND account_id = $3"
    ).bind(item.id).bind(item.ack_round).bind(account_id).fetch_optional(pool).await?))
}

pub async fn reminded(db: &Database, item: &Item) -> Result<bool, DbError> {
    let n: i64 = with_db!(db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM news_reminders WHERE news_id = $1 AND ack_round = $2"
    ).bind(item.id).bind(item.ack_round).fetch_one(pool).await?);
    Ok(n > 0)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Version {
    pub id: i64,
    pub title: String,
    pub body_sha256: String,
    pub author_name: String,
    pub change_kind: String,
    pub created_at: i64,
}

pub async fn versions(db: &Database, news_id: i64) -> Result<Vec<Version>, DbError> {
    Ok(with_db!(db, pool => sqlx::query_as(
        "SELECT id, title, body_sha256, author_name, change_kind, created_at FROM news_versions \
         WHERE news_id = $1 ORDER BY id DESC"
    ).bind(news_id).fetch_all(pool).await?))
}

/// An agent in an item's audience, with their receipt for the current round if any.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Member {
    pub account_id: i64,
    pub display_name: String,
    pub login: Option<String>,
    pub department: Option<String>,
    pub site: Option<String>,
    pub acknowledged_at: Option<i64>,
}

/// Every enabled account's audience keys, as SQL: the same rules as
/// [`AgentAudience::of_account`], for all agents at once.
const AGENT_KEYS: &str = "WITH RECURSIVE dept_up(account_id, dept_id) AS ( \
        SELECT account_id, department_id FROM agent_profiles WHERE department_id IS NOT NULL \
        UNION \
        SELECT u.account_id, d.parent_id FROM departments d JOIN dept_up u ON d.id = u.dept_id \
        WHERE d.parent_id IS NOT NULL), \
     agent_keys(account_id, k) AS ( \
        SELECT id, 'everyone' FROM accounts \
        UNION ALL SELECT account_id, 'group:' || CAST(group_id AS TEXT) FROM account_groups \
        UNION ALL SELECT account_id, 'department:' || CAST(dept_id AS TEXT) FROM dept_up \
        UNION ALL SELECT account_id, 'site:' || CAST(site_id AS TEXT) FROM agent_profiles \
                  WHERE site_id IS NOT NULL \
        UNION ALL SELECT account_id, 'role:' || role FROM account_roles), \
     members AS (SELECT DISTINCT k.account_id FROM agent_keys k \
        JOIN news_audience na ON na.audience_key = k.k WHERE na.news_id = $1) ";

/// The agents an item is for (enabled accounts only), by name.
pub async fn audience_members(db: &Database, item: &Item) -> Result<Vec<Member>, DbError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "{AGENT_KEYS} SELECT a.id AS account_id, a.display_name, a.username AS login, \
         d.name AS department, st.name AS site, r.acknowledged_at \
         FROM members m JOIN accounts a ON a.id = m.account_id \
         LEFT JOIN agent_profiles p ON p.account_id = a.id \
         LEFT JOIN departments d ON d.id = p.department_id \
         LEFT JOIN sites st ON st.id = p.site_id \
         LEFT JOIN news_receipts r ON r.news_id = $1 AND r.ack_round = $2 AND r.account_id = a.id \
         WHERE a.disabled = FALSE ORDER BY a.display_name, a.id"
    ));
    Ok(
        with_db!(db, pool => sqlx::query_as(sql).bind(item.id).bind(item.ack_round)
        .fetch_all(pool).await?),
    )
}

/// (account, group name) for the groups of an item's audience members.
pub async fn member_groups(db: &Database, item: &Item) -> Result<Vec<(i64, String)>, DbError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "{AGENT_KEYS} SELECT ag.account_id, g.name FROM members m \
         JOIN account_groups ag ON ag.account_id = m.account_id \
         JOIN groups g ON g.id = ag.group_id"
    ));
    Ok(with_db!(db, pool => sqlx::query_as(sql).bind(item.id).fetch_all(pool).await?))
}

/// An item in a list of an editor's or a manager's work.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ListRow {
    pub id: i64,
    pub title: String,
    pub status: String,
    pub space_name: String,
    pub author_name: Option<String>,
    pub rejection_reason: Option<String>,
    pub publish_at: i64,
    pub updated_at: i64,
}

const LIST_SELECT: &str = "SELECT n.id, n.title, n.status, s.name AS space_name, \
     a.display_name AS author_name, n.rejection_reason, n.publish_at, n.updated_at \
     FROM news_items n JOIN spaces s ON s.id = n.space_id \
     LEFT JOIN accounts a ON a.id = n.author_id";

/// Items waiting for approval in the spaces the account manages (all spaces for an admin).
pub async fn pending_for(
    db: &Database,
    account_id: i64,
    admin: bool,
) -> Result<Vec<ListRow>, DbError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "{LIST_SELECT} WHERE n.status = 'pending' AND ($2 OR EXISTS (SELECT 1 FROM space_members sm \
         WHERE sm.space_id = n.space_id AND sm.account_id = $1 AND sm.role = 'manager')) \
         ORDER BY n.updated_at, n.id LIMIT 200"
    ));
    Ok(
        with_db!(db, pool => sqlx::query_as(sql).bind(account_id).bind(admin)
        .fetch_all(pool).await?),
    )
}

/// For the navigation of approvers (administrators and space managers; the caller knows which
/// accounts are, from the session): how many items wait in the queue (as [`pending_for`] counts).
pub async fn approval_queue_size(
    db: &Database,
    account_id: i64,
    admin: bool,
) -> Result<i64, DbError> {
    let n: i64 = with_db!(db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM news_items n WHERE n.status = 'pending' AND ($2 OR EXISTS          (SELECT 1 FROM space_members sm WHERE sm.space_id = n.space_id AND sm.account_id = $1          AND sm.role = 'manager'))"
    ).bind(account_id).bind(admin).fetch_one(pool).await?);
    Ok(n)
}

/// The account's own items, newest change first.
pub async fn written_by(db: &Database, account_id: i64) -> Result<Vec<ListRow>, DbError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "{LIST_SELECT} WHERE n.author_id = $1 ORDER BY n.updated_at DESC, n.id DESC LIMIT 100"
    ));
    Ok(with_db!(db, pool => sqlx::query_as(sql).bind(account_id).fetch_all(pool).await?))
}

/// Spaces where the account may write (all spaces for an admin): (id, name, slug).
pub async fn writable_spaces(
    db: &Database,
    account_id: i64,
    admin: bool,
) -> Result<Vec<(i64, String, String)>, DbError> {
    Ok(with_db!(db, pool => sqlx::query_as(
        "SELECT s.id, s.name, s.slug FROM spaces s WHERE s.archived_at IS NULL AND ($2 OR EXISTS \
         (SELECT 1 FROM space_members sm WHERE sm.space_id = s.id AND sm.account_id = $1 \
          AND sm.role IN ('contributor', 'editor', 'manager'))) ORDER BY s.name"
    ).bind(account_id).bind(admin).fetch_all(pool).await?))
}

/// The audiences an editor can choose from: (key, label) for groups, departments and sites.
pub async fn audience_choices(db: &Database) -> Result<Vec<(String, String)>, DbError> {
    let groups: Vec<(i64, String)> = with_db!(db, pool => sqlx::query_as(
        "SELECT id, name FROM groups ORDER BY name LIMIT 500").fetch_all(pool).await?);
    let departments: Vec<(i64, String)> = with_db!(db, pool => sqlx::query_as(
        "SELECT id, name FROM departments ORDER BY name LIMIT 500").fetch_all(pool).await?);
    let sites: Vec<(i64, String)> = with_db!(db, pool => sqlx::query_as(
        "SELECT id, name FROM sites ORDER BY name LIMIT 500").fetch_all(pool).await?);
    let mut out = Vec::new();
    out.extend(
        departments
            .into_iter()
            .map(|(id, n)| (format!("department:{id}"), n)),
    );
    out.extend(sites.into_iter().map(|(id, n)| (format!("site:{id}"), n)));
    out.extend(groups.into_iter().map(|(id, n)| (format!("group:{id}"), n)));
    Ok(out)
}

pub async fn space_approval_required(
    db: &Database,
    space_id: i64,
) -> Result<Option<bool>, DbError> {
    Ok(with_db!(db, pool => sqlx::query_scalar(
        "SELECT approval_required FROM spaces WHERE id = $1 AND archived_at IS NULL"
    ).bind(space_id).fetch_optional(pool).await?))
}

pub async fn space_id_by_slug(db: &Database, slug: &str) -> Result<Option<i64>, DbError> {
    Ok(with_db!(db, pool => sqlx::query_scalar(
        "SELECT id FROM spaces WHERE slug = $1 AND archived_at IS NULL"
    ).bind(slug).fetch_optional(pool).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_cursors_round_trip_and_junk_is_refused() {
        let cursor = WallCursor {
            pinned: true,
            publish_at: 1_764_000_000,
            id: 42,
        };
        assert_eq!(WallCursor::parse(&cursor.encode()), Some(cursor));
        for junk in ["", "1.2", "2.1.1", "1.x.3", "0.1.2.3", "1.1.1 "] {
            assert_eq!(WallCursor::parse(junk), None, "{junk:?}");
        }
    }
}
