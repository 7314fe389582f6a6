//! `/admin/branding`: the administrator's page for the name, colours, logo, favicon and footer
//! links. Four forms, each posting on its own so that a refused logo never loses typed colours:
//! a refusal shows the page again with the values as sent and the reason; a success redirects
//! back (post/redirect/get) with a confirmation. Everything here works without JavaScript.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::AppState;
use crate::admin::require_admin;
use crate::branding::colour::{Colour, Palette, format_ratio};
use crate::branding::footer::{self, FooterError, MAX_FOOTER_LINKS};
use crate::branding::images::{self, ImageKind, ImageRefusal};
use crate::branding::{Branding, OrganisationName, service};
use crate::http::error::AppError;
use crate::http::extract::{CurrentUser, Form};
use crate::http::pages::{PageContext, Shell, render};
use crate::http::upload::UploadForm;
use crate::i18n::Lang;
use crate::routes::RouteTable;
use crate::security_events::Actor;

const PAGE: &str = "/admin/branding";

pub fn routes(table: RouteTable) -> RouteTable {
    table
        .get(PAGE, show)
        .post(PAGE, save_identity)
        .post("/admin/branding/logo", upload_logo)
        .post("/admin/branding/logo/remove", remove_logo)
        .post("/admin/branding/favicon", upload_favicon)
        .post("/admin/branding/favicon/remove", remove_favicon)
        .post("/admin/branding/footer", save_footer)
}

/// The name and colours as shown in the form (as sent, when a submission is refused).
struct IdentityView {
    name: String,
    primary: String,
    on_primary: String,
    secondary: String,
    on_secondary: String,
}

/// One computed contrast, for the table of the saved palette.
struct ContrastRow {
    label: String,
    foreground: String,
    background: String,
    ratio: String,
    passes: bool,
}

struct FooterRow {
    index: usize,
    number: String,
    label: String,
    url: String,
}

#[derive(Template)]
#[template(path = "branding.html")]
struct BrandingPage {
    shell: Shell,
    has_errors: bool,
    saved: Option<String>,
    identity: IdentityView,
    identity_errors: Vec<String>,
    contrast: Vec<ContrastRow>,
    logo_url: Option<String>,
    logo_errors: Vec<String>,
    logo_hint: String,
    favicon_url: Option<String>,
    favicon_errors: Vec<String>,
    favicon_hint: String,
    footer_rows: Vec<FooterRow>,
    footer_errors: Vec<String>,
    accessibility_link_missing: bool,
}

fn kib(bytes: usize) -> String {
    bytes.div_ceil(1024).to_string()
}

fn footer_rows(links: &[(String, String)]) -> Vec<FooterRow> {
    (0..MAX_FOOTER_LINKS)
        .map(|index| {
            let (label, url) = links.get(index).cloned().unwrap_or_default();
            FooterRow {
                index,
                number: (index + 1).to_string(),
                label,
                url,
            }
        })
        .collect()
}

impl BrandingPage {
    /// The page showing what is saved.
    fn new(shell: Shell, branding: &Branding) -> Self {
        let lang = shell.lang;
        let p = &branding.palette;
        let contrast = p
            .pairs()
            .iter()
            .map(|pair| ContrastRow {
                label: lang.t(pair.usage.message_id()),
                foreground: pair.foreground.css(),
                background: pair.background.css(),
                ratio: format_ratio(pair.ratio, lang == Lang::Fr),
                passes: pair.passes(),
            })
            .collect();
        let links: Vec<(String, String)> = branding
            .footer_links
            .iter()
            .map(|l| (l.label.clone(), l.url.clone()))
            .collect();
        let max = |kind: ImageKind| kib(kind.max_bytes());
        Self {
            has_errors: false,
            saved: None,
            identity: IdentityView {
                name: branding.name.clone(),
                primary: p.primary.css(),
                on_primary: p.on_primary.css(),
                secondary: p.secondary.css(),
                on_secondary: p.on_secondary.css(),
            },
            identity_errors: Vec::new(),
            contrast,
            logo_url: branding.image_url(ImageKind::Logo),
            logo_errors: Vec::new(),
            logo_hint: lang.t_args("branding-logo-hint", &[("max", max(ImageKind::Logo))]),
            favicon_url: branding.image_url(ImageKind::Favicon),
            favicon_errors: Vec::new(),
            favicon_hint: lang.t_args("branding-favicon-hint", &[("max", max(ImageKind::Favicon))]),
            footer_rows: footer_rows(&links),
            footer_errors: Vec::new(),
            accessibility_link_missing: !footer::has_accessibility_link(&branding.footer_links),
            shell,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct SavedQuery {
    #[serde(default)]
    saved: String,
}

fn saved_message(saved: &str) -> Option<&'static str> {
    Some(match saved {
        "identity" => "branding-saved-identity",
        "logo" => "branding-saved-logo",
        "favicon" => "branding-saved-favicon",
        "footer" => "branding-saved-footer",
        "unchanged" => "branding-saved-unchanged",
        _ => return None,
    })
}

async fn show(
    State(state): State<AppState>,
    ctx: PageContext,
    user: CurrentUser,
    actor: Actor,
    query: Result<Query<SavedQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    require_admin(&state, &user, &actor, PAGE).await?;
    let branding = state.branding.get(&state.db).await?;
    let mut page = BrandingPage::new(ctx.shell, &branding);
    let saved = query.map(|Query(q)| q.saved).unwrap_or_default();
    page.saved = saved_message(&saved).map(|id| page.shell.t(id));
    render(StatusCode::OK, &page)
}

/// After a change: drop this node's copy, then show the page again with a confirmation.
fn saved(state: &AppState, changed: bool, what: &str) -> Response {
    if changed {
        state.branding.invalidate();
    }
    let what = if changed { what } else { "unchanged" };
    Redirect::to(&format!("{PAGE}?saved={what}")).into_response()
}

#[derive(Debug, Default, Deserialize)]
struct IdentityForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    primary: String,
    #[serde(default)]
    on_primary: String,
    #[serde(default)]
    secondary: String,
    #[serde(default)]
    on_secondary: String,
}

/// The name and palette, or every reason they are refused, in the visitor's language.
fn check_identity(
    lang: Lang,
    form: &IdentityForm,
) -> Result<(OrganisationName, Palette), Vec<String>> {
    let mut errors = Vec::new();
    let name = OrganisationName::parse(&form.name);
    if name.is_none() {
        errors.push(lang.t("branding-error-name"));
    }
    let mut colour = |text: &str, field: &str| {
        let parsed = Colour::parse(text);
        if parsed.is_none() {
            errors.push(lang.t_args("branding-error-colour", &[("field", lang.t(field))]));
        }
        parsed
    };
    let primary = colour(&form.primary, "branding-primary");
    let on_primary = colour(&form.on_primary, "branding-on-primary");
    let secondary = colour(&form.secondary, "branding-secondary");
    let on_secondary = colour(&form.on_secondary, "branding-on-secondary");
    let (Some(name), Some(primary), Some(on_primary), Some(secondary), Some(on_secondary)) =
        (name, primary, on_primary, secondary, on_secondary)
    else {
        return Err(errors);
    };
    let palette = Palette {
        primary,
        on_primary,
        secondary,
        on_secondary,
    };
    let failures = palette.failures();
    if failures.is_empty() {
        return Ok((name, palette));
    }
    Err(failures
        .iter()
        .map(|pair| {
            lang.t_args(
                "branding-error-contrast",
                &[
                    ("pair", lang.t(pair.usage.message_id())),
                    ("foreground", pair.foreground.css()),
                    ("background", pair.background.css()),
                    ("ratio", format_ratio(pair.ratio, lang == Lang::Fr)),
                ],
            )
        })
        .collect())
}

async fn save_identity(
    State(state): State<AppState>,
    ctx: PageContext,
    user: CurrentUser,
    actor: Actor,
    Form(form): Form<IdentityForm>,
) -> Result<Response, AppError> {
    require_admin(&state, &user, &actor, PAGE).await?;
    match check_identity(ctx.shell.lang, &form) {
        Ok((name, palette)) => {
            let changed = service::update_identity(&state.db, &actor, &name, &palette).await?;
            Ok(saved(&state, changed, "identity"))
        }
        Err(errors) => {
            let branding = state.branding.get(&state.db).await?;
            let mut page = BrandingPage::new(ctx.shell, &branding);
            let shown = |text: &str| {
                Colour::parse(text).map_or_else(|| text.trim().to_owned(), Colour::css)
            };
            page.identity = IdentityView {
                name: form.name.trim().to_owned(),
                primary: shown(&form.primary),
                on_primary: shown(&form.on_primary),
                secondary: shown(&form.secondary),
                on_secondary: shown(&form.on_secondary),
            };
            page.identity_errors = errors;
            page.has_errors = true;
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
    }
}

async fn upload_logo(
    state: State<AppState>,
    ctx: PageContext,
    user: CurrentUser,
    actor: Actor,
    form: UploadForm,
) -> Result<Response, AppError> {
    upload(state, ctx, user, actor, form, ImageKind::Logo).await
}

async fn upload_favicon(
    state: State<AppState>,
    ctx: PageContext,
    user: CurrentUser,
    actor: Actor,
    form: UploadForm,
) -> Result<Response, AppError> {
    upload(state, ctx, user, actor, form, ImageKind::Favicon).await
}

async fn upload(
    State(state): State<AppState>,
    ctx: PageContext,
    user: CurrentUser,
    actor: Actor,
    form: UploadForm,
    kind: ImageKind,
) -> Result<Response, AppError> {
    require_admin(&state, &user, &actor, &format!("{PAGE}/{}", kind.as_str())).await?;
    let bytes = form.file(kind.as_str()).map(|f| &f.bytes[..]);
    let refusal = match images::check(kind, bytes) {
        Ok(media_type) => {
            let bytes = bytes.unwrap_or_default();
            let changed =
                service::set_image(&state.db, &actor, kind, Some((bytes, media_type))).await?;
            return Ok(saved(&state, changed, kind.as_str()));
        }
        Err(refusal) => refusal,
    };
    let lang = ctx.shell.lang;
    let (status, message) = match refusal {
        ImageRefusal::NoFile => (
            StatusCode::UNPROCESSABLE_ENTITY,
            lang.t("branding-error-no-file"),
        ),
        ImageRefusal::TooLarge { size, max } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            lang.t_args(
                "branding-error-too-large",
                &[("size", kib(size)), ("max", kib(max))],
            ),
        ),
        ImageRefusal::WrongType => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            lang.t(match kind {
                ImageKind::Logo => "branding-error-logo-type",
                ImageKind::Favicon => "branding-error-favicon-type",
            }),
        ),
    };
    let branding = state.branding.get(&state.db).await?;
    let mut page = BrandingPage::new(ctx.shell, &branding);
    match kind {
        ImageKind::Logo => page.logo_errors.push(message),
        ImageKind::Favicon => page.favicon_errors.push(message),
    }
    page.has_errors = true;
    render(status, &page)
}

async fn remove_logo(
    State(state): State<AppState>,
    user: CurrentUser,
    actor: Actor,
) -> Result<Response, AppError> {
    require_admin(&state, &user, &actor, "/admin/branding/logo/remove").await?;
    let changed = service::set_image(&state.db, &actor, ImageKind::Logo, None).await?;
    Ok(saved(&state, changed, "logo"))
}

async fn remove_favicon(
    State(state): State<AppState>,
    user: CurrentUser,
    actor: Actor,
) -> Result<Response, AppError> {
    require_admin(&state, &user, &actor, "/admin/branding/favicon/remove").await?;
    let changed = service::set_image(&state.db, &actor, ImageKind::Favicon, None).await?;
    Ok(saved(&state, changed, "favicon"))
}

async fn save_footer(
    State(state): State<AppState>,
    ctx: PageContext,
    user: CurrentUser,
    actor: Actor,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    require_admin(&state, &user, &actor, "/admin/branding/footer").await?;
    let lang = ctx.shell.lang;
    let error = match footer::from_form(&fields) {
        Ok(links) => {
            let changed = service::update_footer(&state.db, &actor, &links).await?;
            return Ok(saved(&state, changed, "footer"));
        }
        Err(FooterError::TooMany) => lang.t_args(
            "branding-error-footer-too-many",
            &[("max", MAX_FOOTER_LINKS.to_string())],
        ),
        Err(FooterError::BadLabel(row)) => {
            lang.t_args("branding-error-footer-label", &[("n", row.to_string())])
        }
        Err(FooterError::BadUrl(row)) => {
            lang.t_args("branding-error-footer-url", &[("n", row.to_string())])
        }
    };
    let branding = state.branding.get(&state.db).await?;
    let mut page = BrandingPage::new(ctx.shell, &branding);
    // The rows as sent, so nothing typed is lost.
    let field = |name: String| {
        fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let sent: Vec<(String, String)> = (0..MAX_FOOTER_LINKS)
        .map(|i| (field(format!("label_{i}")), field(format!("url_{i}"))))
        .collect();
    page.footer_rows = footer_rows(&sent);
    page.footer_errors.push(error);
    page.has_errors = true;
    render(StatusCode::UNPROCESSABLE_ENTITY, &page)
}
