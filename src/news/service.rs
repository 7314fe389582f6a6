//! The news rules: each function checks who may act first, then writes the change and its
//! audit entry in one transaction. Handlers parse input and render; they decide nothing.

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::audience::{AgentAudience, Rule};
use crate::auth::session::ActiveSession;
use crate::blobs::StoredBlob;
use crate::db::{Database, DbError};
use crate::news::store::{self, Item, ItemFields};
use crate::news::{Access, Status};
use crate::security_events::{Actor, record};

#[derive(Debug, thiserror::Error)]
pub enum NewsError {
    /// Absent, or not for this agent: the same answer, so existence does not leak.
    #[error("not found")]
    NotFound,
    #[error("forbidden")]
    Forbidden,
    /// Refused input or a stale action; the fluent id of the explanation.
    #[error("invalid: {0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<NewsError> for crate::http::error::AppError {
    fn from(e: NewsError) -> Self {
        use crate::http::error::AppError;
        match e {
            NewsError::NotFound => AppError::NotFound,
            NewsError::Forbidden => AppError::Forbidden,
            NewsError::Invalid(id) => AppError::BadRequest(id),
            NewsError::Db(e) => AppError::Internal(e.to_string()),
        }
    }
}

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// An item with what the viewer may do with it.
pub struct Viewed {
    pub item: Item,
    pub access: Access,
    pub audience: Vec<String>,
}

/// Loads an item for `session`: its space's editors see it in any state, an agent only when
/// it is live and in their audience; anyone else gets `NotFound`.
pub async fn view(
    db: &Database,
    session: &ActiveSession,
    agent: &AgentAudience,
    now: i64,
    id: i64,
) -> Result<Viewed, NewsError> {
    let item = store::item(db, id).await?.ok_or(NewsError::NotFound)?;
    let role = crate::spaces::role_of(db, item.space_id, session.account.id, agent).await?;
    let access = Access::of(session, role);
    let audience = store::audience_keys(db, id).await?;
    let own = item.author_id == Some(session.account.id) && access.can_write();
    let readable = access.can_manage_items()
        || access.can_approve()
        || own
        || (item.is_live(now) && agent.matches(audience.iter().map(String::as_str)));
    if !readable {
        return Err(NewsError::NotFound);
    }
    Ok(Viewed {
        item,
        access,
        audience,
    })
}

/// Who is acting, as what agent, and when (the injected clock's time).
#[derive(Clone, Copy)]
pub struct Caller<'a> {
    pub db: &'a Database,
    pub actor: &'a Actor,
    pub session: &'a ActiveSession,
    pub agent: &'a AgentAudience,
    pub now: i64,
}

/// What the writer asked for when saving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Draft,
    Publish,
}

/// How an edit relates to receipts already given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Minor,
    Material,
}

/// A checked submission of the editor form.
#[derive(Debug, Clone)]
pub struct Submission {
    pub fields: ItemFields,
    pub audience: Vec<Rule>,
    pub intent: Intent,
    pub change: Change,
    /// The image's text alternative to store ("" for a decorative image); `None` leaves it.
    pub image_alt: Option<String>,
}

fn audience_keys(rules: &[Rule]) -> Vec<String> {
    let mut keys: Vec<String> = rules.iter().map(Rule::key).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Creates an item in a space; returns its id and state.
pub async fn create(
    caller: &Caller<'_>,
    space_id: i64,
    submission: &Submission,
    image: Option<&StoredBlob>,
) -> Result<(i64, Status), NewsError> {
    let Caller {
        db,
        actor,
        session,
        agent,
        now,
    } = *caller;
    let approval_required = store::space_approval_required(db, space_id)
        .await?
        .ok_or(NewsError::NotFound)?;
    let role = crate::spaces::role_of(db, space_id, session.account.id, agent).await?;
    let access = Access::of(session, role);
    if !access.can_write() {
        return Err(if role.is_some() {
            NewsError::Forbidden
        } else {
            NewsError::NotFound
        });
    }
    let status = match submission.intent {
        Intent::Draft => Status::Draft,
        Intent::Publish => access.publication_status(approval_required),
    };
    let account = &session.account;
    let mut tx = db.begin().await?;
    let id = store::insert_item(
        &mut tx,
        space_id,
        account.id,
        &submission.fields,
        status.as_str(),
        now,
    )
    .await?;
    let version = store::insert_version(
        &mut tx,
        id,
        &submission.fields,
        (account.id, &account.display_name),
        "create",
        now,
    )
    .await?;
    let keys = audience_keys(&submission.audience);
    store::set_audience(&mut tx, id, &keys).await?;
    if let Some(blob) = image {
        store::set_image(&mut tx, id, &blob.sha256, blob.media_type.mime()).await?;
    }
    if let Some(alt) = &submission.image_alt {
        store::set_image_alt(&mut tx, id, alt).await?;
    }
    let target = Some(format!("news:{id}"));
    record(
        &mut tx,
        actor,
        "news.create",
        target.clone(),
        "success",
        json!({ "space_id": space_id, "title": submission.fields.title, "status": status.as_str(),
                "version_id": version, "body_sha256": submission.fields.body_sha256,
                "audience": keys, "publish_at": submission.fields.publish_at,
                "ack_required": submission.fields.ack_required }),
    )
    .await?;
    if status == Status::Pending {
        record(
            &mut tx,
            actor,
            "news.submit",
            target,
            "success",
            json!({ "space_id": space_id }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok((id, status))
}

/// Saves an edit: a new version, and a new acknowledgement round when the change is material.
pub async fn update(
    caller: &Caller<'_>,
    id: i64,
    submission: &Submission,
    image: Option<&StoredBlob>,
) -> Result<Status, NewsError> {
    let Caller {
        db,
        actor,
        session,
        agent,
        now,
    } = *caller;
    let viewed = view(db, session, agent, now, id).await?;
    let (item, access) = (&viewed.item, viewed.access);
    let status_now = Status::parse(&item.status).unwrap_or(Status::Draft);
    let own_unpublished = item.author_id == Some(session.account.id)
        && access.can_write()
        && matches!(
            status_now,
            Status::Draft | Status::Pending | Status::Rejected
        );
    if !(access.can_manage_items() || own_unpublished) {
        return Err(NewsError::Forbidden);
    }
    if status_now == Status::Archived {
        return Err(NewsError::Invalid("news-error-archived"));
    }
    let status = match submission.intent {
        Intent::Draft if status_now == Status::Published => {
            return Err(NewsError::Invalid("news-error-unpublish"));
        }
        Intent::Draft => Status::Draft,
        Intent::Publish => access.publication_status(item.approval_required),
    };
    // Only a text already acknowledged by someone can be "asked again"; otherwise the change
    // is recorded as what the editor said but nobody's receipt moves.
    let material = submission.change == Change::Material && submission.fields.ack_required;
    let account = &session.account;
    let mut tx = db.begin().await?;
    store::update_item(
        &mut tx,
        id,
        &submission.fields,
        status.as_str(),
        material,
        now,
    )
    .await?;
    let kind = if material { "material" } else { "minor" };
    let version = store::insert_version(
        &mut tx,
        id,
        &submission.fields,
        (account.id, &account.display_name),
        kind,
        now,
    )
    .await?;
    let keys = audience_keys(&submission.audience);
    store::set_audience(&mut tx, id, &keys).await?;
    if let Some(blob) = image {
        store::set_image(&mut tx, id, &blob.sha256, blob.media_type.mime()).await?;
    }
    if let Some(alt) = &submission.image_alt {
        store::set_image_alt(&mut tx, id, alt).await?;
    }
    let target = Some(format!("news:{id}"));
    record(
        &mut tx,
        actor,
        "news.update",
        target.clone(),
        "success",
        json!({ "change": kind, "status": status.as_str(), "version_id": version,
                "body_sha256": submission.fields.body_sha256, "audience": keys,
                "title": submission.fields.title }),
    )
    .await?;
    if material {
        record(
            &mut tx,
            actor,
            "news.receipts_reset",
            target.clone(),
            "success",
            json!({ "previous_round": item.ack_round, "round": item.ack_round + 1,
                    "version_id": version }),
        )
        .await?;
    }
    if status == Status::Pending && status_now != Status::Pending {
        record(
            &mut tx,
            actor,
            "news.submit",
            target,
            "success",
            json!({ "space_id": item.space_id }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(status)
}

/// A manager's decision on a pending item.
#[derive(Debug, Clone)]
pub enum Decision {
    Approve,
    Reject { reason: String },
}

pub async fn decide(caller: &Caller<'_>, id: i64, decision: &Decision) -> Result<(), NewsError> {
    let Caller {
        db,
        actor,
        session,
        agent,
        now,
    } = *caller;
    let viewed = view(db, session, agent, now, id).await?;
    if !viewed.access.can_approve() {
        return Err(NewsError::Forbidden);
    }
    let mut tx = db.begin().await?;
    let target = Some(format!("news:{id}"));
    let moved = match decision {
        Decision::Approve => {
            let moved =
                store::transition(&mut tx, id, &["pending"], "published", None, now).await?;
            if moved {
                record(
                    &mut tx,
                    actor,
                    "news.approve",
                    target,
                    "success",
                    json!({ "publish_at": viewed.item.publish_at,
                            "scheduled": viewed.item.publish_at > now }),
                )
                .await?;
            }
            moved
        }
        Decision::Reject { reason } => {
            let moved =
                store::transition(&mut tx, id, &["pending"], "rejected", Some(reason), now).await?;
            if moved {
                record(
                    &mut tx,
                    actor,
                    "news.reject",
                    target,
                    "success",
                    json!({ "reason": reason }),
                )
                .await?;
            }
            moved
        }
    };
    if !moved {
        return Err(NewsError::Invalid("news-error-not-pending"));
    }
    tx.commit().await?;
    Ok(())
}

pub async fn archive(caller: &Caller<'_>, id: i64) -> Result<(), NewsError> {
    let Caller {
        db,
        actor,
        session,
        agent,
        now,
    } = *caller;
    let viewed = view(db, session, agent, now, id).await?;
    if !viewed.access.can_manage_items() {
        return Err(NewsError::Forbidden);
    }
    let mut tx = db.begin().await?;
    let from = ["draft", "pending", "published", "rejected"];
    if !store::transition(&mut tx, id, &from, "archived", None, now).await? {
        return Err(NewsError::Invalid("news-error-archived"));
    }
    record(
        &mut tx,
        actor,
        "news.archive",
        Some(format!("news:{id}")),
        "success",
        json!({ "previous_status": viewed.item.status }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// "J'ai lu ce message": records the receipt for the version the agent was shown. A text that
/// changed since the page was loaded is refused, so nobody acknowledges a version they have
/// not seen. Acknowledging twice is harmless and records nothing new.
pub async fn acknowledge(
    caller: &Caller<'_>,
    id: i64,
    shown_version: i64,
) -> Result<bool, NewsError> {
    let Caller {
        db,
        actor,
        session,
        agent,
        now,
    } = *caller;
    let viewed = view(db, session, agent, now, id).await?;
    let item = &viewed.item;
    // Editors may open any item; a receipt is only for an agent the live item is for.
    let for_agent = item.is_live(now) && agent.matches(viewed.audience.iter().map(String::as_str));
    if !for_agent {
        return Err(NewsError::NotFound);
    }
    if !item.ack_required {
        return Err(NewsError::Invalid("news-error-no-ack"));
    }
    let version = item.current_version_id.ok_or(NewsError::NotFound)?;
    if version != shown_version {
        return Err(NewsError::Invalid("news-error-text-changed"));
    }
    let mut tx = db.begin().await?;
    let stored = store::insert_receipt(&mut tx, item, version, session.account.id, now).await?;
    if stored {
        record(
            &mut tx,
            actor,
            "news.acknowledge",
            Some(format!("news:{id}")),
            "success",
            json!({ "round": item.ack_round, "version_id": version,
                    "body_sha256": item.body_sha256 }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(stored)
}

/// What a reminder did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reminded {
    /// Agents of the audience who have not acknowledged the current round.
    pub waiting: usize,
    /// E-mails queued (none without `[smtp]`).
    pub emails_queued: usize,
    /// Waiting agents without a usable e-mail address (they see the wall's mark only).
    pub without_address: usize,
}

/// Records a reminder to the agents who have not acknowledged yet: a mark on their wall, and,
/// when `mailer` is given, one e-mail each (to those with an address) queued in the outbox in
/// the same transaction as the reminder and its audit entry, so neither exists without the
/// other.
pub async fn remind(
    caller: &Caller<'_>,
    id: i64,
    mailer: Option<&crate::mail::Mailer>,
) -> Result<Reminded, NewsError> {
    let Caller {
        db,
        actor,
        session,
        agent,
        now,
    } = *caller;
    let viewed = view(db, session, agent, now, id).await?;
    if !viewed.access.can_manage_items() {
        return Err(NewsError::Forbidden);
    }
    if !viewed.item.ack_required {
        return Err(NewsError::Invalid("news-error-no-ack"));
    }
    let members = store::audience_members(db, &viewed.item).await?;
    let waiting: Vec<i64> = members
        .iter()
        .filter(|m| m.acknowledged_at.is_none())
        .map(|m| m.account_id)
        .collect();
    let (messages, without_address) = match mailer {
        Some(mailer) if !waiting.is_empty() => {
            crate::news::reminder_mail::messages(db, mailer, &viewed.item, &waiting).await?
        }
        _ => (Vec::new(), 0),
    };
    let mut tx = db.begin().await?;
    store::insert_reminder(&mut tx, &viewed.item, session.account.id, now).await?;
    // The outbox keeps real time, not the news clock: it is about when to talk to the relay.
    let queued_at = crate::db::now();
    let mut emails_queued = 0;
    for message in &messages {
        if crate::mail::outbox::enqueue(&mut tx, message, queued_at).await? {
            emails_queued += 1;
        }
    }
    record(
        &mut tx,
        actor,
        "news.reminder",
        Some(format!("news:{id}")),
        "success",
        json!({ "round": viewed.item.ack_round, "agents_not_acknowledged": waiting.len(),
                "delivery": if mailer.is_some() { "wall+email" } else { "wall" },
                "emails_queued": emails_queued,
                "emails_already_waiting": messages.len() - emails_queued,
                "agents_without_address": without_address }),
    )
    .await?;
    tx.commit().await?;
    Ok(Reminded {
        waiting: waiting.len(),
        emails_queued,
        without_address,
    })
}
