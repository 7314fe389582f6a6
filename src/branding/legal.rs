//! The organisation's legal pages — legal notice (`/mentions-legales`), accessibility statement
//! (`/accessibilite`) and personal data (`/donnees-personnelles`) — served to everyone, signed in
//! or not: RGAA wants the accessibility statement reachable from every page, the sign-in page
//! included, and the footer links to them.
//!
//! Their Markdown is written by an administrator at `/admin/branding/pages`, in French (the
//! default) and optionally in English; a visitor reading in English gets the French text when no
//! English one exists. The text is rendered and sanitised by [`crate::markdown`] like any other
//! content. Each save records `branding.legal_page` with the SHA-256 and length of the text
//! before and after (the text itself stays in the page, not in the log).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::admin::require_admin;
use crate::db::{Database, DbError, now};
use crate::http::error::AppError;
use crate::http::extract::{CurrentUser, Form};
use crate::http::pages::{PageContext, Shell, render};
use crate::i18n::Lang;
use crate::routes::RouteTable;
use crate::security_events::{self, Actor};
use crate::{with_db, with_tx};

/// One of the built-in pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegalPage {
    LegalNotice,
    Accessibility,
    PersonalData,
}

impl LegalPage {
    pub const ALL: [LegalPage; 3] = [
        LegalPage::LegalNotice,
        LegalPage::Accessibility,
        LegalPage::PersonalData,
    ];

    /// As stored, and in the admin form's address.
    pub fn key(self) -> &'static str {
        match self {
            LegalPage::LegalNotice => "legal-notice",
            LegalPage::Accessibility => "accessibility",
            LegalPage::PersonalData => "personal-data",
        }
    }

    /// Where the page is served.
    pub fn path(self) -> &'static str {
        match self {
            LegalPage::LegalNotice => "/mentions-legales",
            LegalPage::Accessibility => "/accessibilite",
            LegalPage::PersonalData => "/donnees-personnelles",
        }
    }

    fn title_id(self) -> &'static str {
        match self {
            LegalPage::LegalNotice => "legal-title-legal-notice",
            LegalPage::Accessibility => "legal-title-accessibility",
            LegalPage::PersonalData => "legal-title-personal-data",
        }
    }

    pub fn parse(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.key() == key)
    }
}

pub fn routes(table: RouteTable) -> RouteTable {
    table
        .get("/mentions-legales", legal_notice)
        .get("/accessibilite", accessibility)
        .get("/donnees-personnelles", personal_data)
        .get("/admin/branding/pages", admin_page)
        .post("/admin/branding/pages/{kind}", admin_save)
}

/// The page's text in each language ("" when not written).
#[derive(Debug, Clone, Default)]
pub struct Texts {
    pub fr: String,
    pub en: String,
}

pub async fn texts(db: &Database, page: LegalPage) -> Result<Texts, DbError> {
    let rows: Vec<(String, String)> = with_db!(db, pool => sqlx::query_as(
        "SELECT lang, body FROM legal_pages WHERE kind = $1"
    ).bind(page.key()).fetch_all(pool).await?);
    let mut out = Texts::default();
    for (lang, body) in rows {
        match lang.as_str() {
            "fr" => out.fr = body,
            "en" => out.en = body,
            _ => {}
        }
    }
    Ok(out)
}

fn fingerprint(text: &str) -> serde_json::Value {
    if text.is_empty() {
        return serde_json::Value::Null;
    }
    json!({ "sha256": hex::encode(Sha256::digest(text.as_bytes())), "bytes": text.len() })
}

/// Saves the text of `page` in `lang` ("" removes it) with its audit entry; returns whether
/// anything changed.
pub async fn save(
    db: &Database,
    actor: &Actor,
    page: LegalPage,
    lang: Lang,
    body: &str,
) -> Result<bool, DbError> {
    let mut tx = db.begin().await?;
    let before: Option<String> = with_tx!(&mut tx, conn => sqlx::query_scalar(
        "SELECT body FROM legal_pages WHERE kind = $1 AND lang = $2"
    ).bind(page.key()).bind(lang.code()).fetch_optional(conn).await?);
    let before = before.unwrap_or_default();
    if before == body {
        return Ok(false);
    }
    with_tx!(&mut tx, conn => {
        if body.is_empty() {
            sqlx::query("DELETE FROM legal_pages WHERE kind = $1 AND lang = $2")
                .bind(page.key()).bind(lang.code()).execute(&mut *conn).await?;
        } else {
            sqlx::query(
                "INSERT INTO legal_pages (kind, lang, body, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (kind, lang) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
            ).bind(page.key()).bind(lang.code()).bind(body).bind(now()).execute(&mut *conn).await?;
        }
    });
    security_events::record(
        &mut tx,
        actor,
        "branding.legal_page",
        Some(format!("legal_page:{}", page.key())),
        "success",
        json!({ "page": page.key(), "lang": lang.code(),
                "before": fingerprint(&before), "after": fingerprint(body) }),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

#[derive(Template)]
#[template(path = "legal_page.html")]
struct PublicPage {
    shell: Shell,
    title: String,
    /// Sanitised HTML, or `None` when nothing is written yet.
    html: Option<String>,
    /// The text shown is French while the visitor reads English.
    in_french: bool,
}

async fn show(state: &AppState, ctx: PageContext, page: LegalPage) -> Result<Response, AppError> {
    let texts = texts(&state.db, page).await?;
    let shell = ctx.shell;
    let (body, in_french) = match shell.lang {
        Lang::En if !texts.en.trim().is_empty() => (texts.en, false),
        Lang::En => (texts.fr, true),
        Lang::Fr => (texts.fr, false),
    };
    let html = (!body.trim().is_empty()).then(|| crate::markdown::render(&body));
    render(
        StatusCode::OK,
        &PublicPage {
            title: shell.t(page.title_id()),
            in_french: in_french && html.is_some(),
            html,
            shell,
        },
    )
}

async fn legal_notice(
    State(state): State<AppState>,
    ctx: PageContext,
) -> Result<Response, AppError> {
    show(&state, ctx, LegalPage::LegalNotice).await
}

async fn accessibility(
    State(state): State<AppState>,
    ctx: PageContext,
) -> Result<Response, AppError> {
    show(&state, ctx, LegalPage::Accessibility).await
}

async fn personal_data(
    State(state): State<AppState>,
    ctx: PageContext,
) -> Result<Response, AppError> {
    show(&state, ctx, LegalPage::PersonalData).await
}

struct PageForm {
    key: &'static str,
    path: &'static str,
    title: String,
    fr: String,
    en: String,
}

#[derive(Template)]
#[template(path = "legal_admin.html")]
struct AdminPage {
    shell: Shell,
    pages: Vec<PageForm>,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct SavedQuery {
    #[serde(default)]
    saved: String,
}

async fn admin_forms(state: &AppState, shell: &Shell) -> Result<Vec<PageForm>, AppError> {
    let mut forms = Vec::new();
    for page in LegalPage::ALL {
        let t = texts(&state.db, page).await?;
        forms.push(PageForm {
            key: page.key(),
            path: page.path(),
            title: shell.t(page.title_id()),
            fr: t.fr,
            en: t.en,
        });
    }
    Ok(forms)
}

async fn admin_page(
    State(state): State<AppState>,
    ctx: PageContext,
    user: CurrentUser,
    actor: Actor,
    Query(query): Query<SavedQuery>,
) -> Result<Response, AppError> {
    require_admin(&state, &user, &actor, "/admin/branding/pages").await?;
    let pages = admin_forms(&state, &ctx.shell).await?;
    let notice = match query.saved.as_str() {
        "1" => Some(ctx.shell.t("legal-saved")),
        "0" => Some(ctx.shell.t("legal-unchanged")),
        _ => None,
    };
    render(
        StatusCode::OK,
        &AdminPage {
            shell: ctx.shell,
            pages,
            notice,
            error: None,
        },
    )
}

#[derive(Debug, Deserialize)]
struct TextsForm {
    #[serde(default)]
    fr: String,
    #[serde(default)]
    en: String,
}

async fn admin_save(
    State(state): State<AppState>,
    ctx: PageContext,
    user: CurrentUser,
    actor: Actor,
    Path(kind): Path<String>,
    Form(form): Form<TextsForm>,
) -> Result<Response, AppError> {
    require_admin(&state, &user, &actor, "/admin/branding/pages").await?;
    let page = LegalPage::parse(&kind).ok_or(AppError::NotFound)?;
    let fr = form.fr.replace("\r\n", "\n").trim().to_owned();
    let en = form.en.replace("\r\n", "\n").trim().to_owned();
    if fr.len() > crate::markdown::MAX_SOURCE_BYTES || en.len() > crate::markdown::MAX_SOURCE_BYTES
    {
        let mut pages = admin_forms(&state, &ctx.shell).await?;
        if let Some(p) = pages.iter_mut().find(|p| p.key == page.key()) {
            p.fr = form.fr;
            p.en = form.en;
        }
        let error = Some(ctx.shell.t("legal-error-too-long"));
        return render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &AdminPage {
                shell: ctx.shell,
                pages,
                notice: None,
                error,
            },
        );
    }
    let changed_fr = save(&state.db, &actor, page, Lang::Fr, &fr).await?;
    let changed_en = save(&state.db, &actor, page, Lang::En, &en).await?;
    let saved = if changed_fr || changed_en { "1" } else { "0" };
    Ok(Redirect::to(&format!(
        "/admin/branding/pages?saved={saved}#{}",
        page.key()
    ))
    .into_response())
}
