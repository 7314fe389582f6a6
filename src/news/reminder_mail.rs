//! The e-mail of a reminder: who gets one and what it says.
//!
//! It goes to the agents of the item's audience who have not acknowledged the current round and
//! have a valid address. It names the item's title, its deadline and the absolute link to
//! `/news/{id}` — never its body, which may be meant for a narrower audience than whoever can
//! read a forwarded e-mail — in the agent's language first (French by default), then in the
//! other one.

use std::str::FromStr;

use crate::db::{Database, DbError};
use crate::i18n::Lang;
use crate::mail::Mailer;
use crate::mail::message::one_line;
use crate::mail::outbox::NewMessage;
use crate::news::store::Item;

/// An agent waiting for a reminder, with what their account says about reaching them.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Contact {
    id: i64,
    email: Option<String>,
    locale: Option<String>,
}

/// The messages for the agents `account_ids` (those who have not acknowledged), and how many of
/// them have no usable address.
pub async fn messages(
    db: &Database,
    mailer: &Mailer,
    item: &Item,
    account_ids: &[i64],
) -> Result<(Vec<NewMessage>, usize), DbError> {
    let ids = serde_json::Value::from(account_ids.to_vec()).to_string();
    let mut contacts: Vec<Contact> = match db {
        Database::Sqlite(pool) => {
            sqlx::query_as(
                "SELECT id, email, locale FROM accounts \
                 WHERE id IN (SELECT value FROM json_each($1))",
            )
            .bind(&ids)
            .fetch_all(pool)
            .await?
        }
        Database::Postgres(pool) => {
            sqlx::query_as(
                "SELECT id, email, locale FROM accounts \
                 WHERE id IN (SELECT CAST(jsonb_array_elements_text($1::jsonb) AS BIGINT))",
            )
            .bind(&ids)
            .fetch_all(pool)
            .await?
        }
    };
    contacts.sort_by_key(|c| c.id);
    let mut out = Vec::new();
    let mut without_address = account_ids.len().saturating_sub(contacts.len());
    for contact in contacts {
        let address = contact
            .email
            .as_deref()
            .map(str::trim)
            .filter(|a| lettre::Address::from_str(a).is_ok());
        let Some(address) = address else {
            without_address += 1;
            continue;
        };
        let first = contact
            .locale
            .as_deref()
            .and_then(Lang::parse)
            .unwrap_or_default();
        let (subject, body, languages) = compose(item, mailer.public_url(), mailer.zone(), first);
        out.push(NewMessage {
            kind: "news.reminder",
            news_id: Some(item.id),
            ack_round: Some(item.ack_round),
            account_id: Some(contact.id),
            recipient: address.to_owned(),
            subject,
            body,
            languages,
        });
    }
    Ok((out, without_address))
}

/// Subject, body and `Content-Language` of the reminder, `first` language on top.
pub fn compose(
    item: &Item,
    public_url: &str,
    zone: &crate::timefmt::OrgZone,
    first: Lang,
) -> (String, String, String) {
    let title = one_line(&item.title);
    let link = format!("{}/news/{}", public_url.trim_end_matches('/'), item.id);
    let second = match first {
        Lang::Fr => Lang::En,
        Lang::En => Lang::Fr,
    };
    let subject = first.t_args("mail-reminder-subject", &[("title", title.clone())]);
    let text = |lang: Lang| {
        let deadline = match item.ack_deadline {
            // In the organisation's time zone, with its offset: a mail may be read anywhere.
            Some(d) => lang.t_args(
                "mail-reminder-deadline",
                &[(
                    "deadline",
                    format!("{} ({})", zone.display(lang, d), zone.offset_label(d)),
                )],
            ),
            None => lang.t("mail-reminder-no-deadline"),
        };
        [
            lang.t("mail-reminder-greeting"),
            String::new(),
            lang.t("mail-reminder-intro"),
            format!("  « {title} »"),
            String::new(),
            deadline,
            String::new(),
            lang.t_args("mail-reminder-link", &[("link", link.clone())]),
            String::new(),
            lang.t("mail-reminder-footer"),
        ]
        .join("\n")
    };
    let body = format!("{}\n\n-- \n\n{}\n", text(first), text(second));
    let languages = format!("{}, {}", first.code(), second.code());
    (subject, body, languages)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(title: &str, deadline: Option<i64>) -> Item {
        Item {
            id: 42,
            space_id: 1,
            space_name: "RH".into(),
            approval_required: false,
            author_id: None,
            author_name: None,
            title: title.into(),
            body: "CONFIDENTIAL BODY".into(),
            body_sha256: String::new(),
            category: "rh".into(),
            important: false,
            pinned: false,
            status: "published".into(),
            rejection_reason: None,
            publish_at: 0,
            expire_at: None,
            image_sha256: None,
            image_type: None,
            image_alt: None,
            ack_required: true,
            ack_deadline: deadline,
            ack_round: 1,
            current_version_id: Some(1),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn the_reminder_names_title_deadline_and_link_but_not_the_body() {
        let (subject, body, languages) = compose(
            &item("Note de service\r\nBcc: x@y.fr", Some(1_767_225_600)),
            "https://intranet.example.gouv.fr/",
            &crate::timefmt::OrgZone::default(),
            Lang::Fr,
        );
        assert!(subject.contains("Note de service Bcc: x@y.fr"), "{subject}");
        assert!(!subject.contains('\n') && !subject.contains('\r'));
        assert!(
            body.contains("https://intranet.example.gouv.fr/news/42"),
            "{body}"
        );
        // Midnight UTC is 01:00 in Paris in winter, written with its offset in each language.
        assert!(body.contains("janv. 2026 à 01:00 (UTC+1)"), "{body}");
        assert!(body.contains("Jan 2026, 01:00 (UTC+1)"), "{body}");
        assert!(!body.contains("CONFIDENTIAL"), "{body}");
        assert_eq!(languages, "fr, en");
        // French first, English below.
        let fr = body.find("Bonjour").unwrap();
        let en = body.find("Hello").unwrap();
        assert!(fr < en);
        let (_, body, languages) = compose(
            &item("T", None),
            "https://i.test",
            &crate::timefmt::OrgZone::default(),
            Lang::En,
        );
        assert!(body.find("Hello").unwrap() < body.find("Bonjour").unwrap());
        assert_eq!(languages, "en, fr");
    }
}
