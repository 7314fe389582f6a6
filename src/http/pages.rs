//! The page shell shared by every HTML page (organisation name and logo, navigation, language
//! switch, sign-out), the [`PageContext`] extractor that gathers it, and [`render`], which turns
//! an askama template into a response marked as a finished page.
//!
//! Templates never decide who may see what: handlers check first, templates only display.

use std::sync::Arc;

use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::accounts::Role;
use crate::auth::session::ActiveSession;
use crate::branding::{Branding, ImageKind};
use crate::http::error::AppError;
use crate::http::middleware::session::{CsrfToken, MaybeSession};
use crate::http::static_files::asset_url;
use crate::i18n::Lang;
use crate::timefmt::OrgZone;

/// Marks a response whose body is already a complete page, so the error-page middleware leaves
/// it alone (a sign-in form shown again with a 401, say).
#[derive(Debug, Clone, Copy)]
pub struct HtmlPage;

pub struct NavItem {
    pub href: &'static str,
    pub label: String,
    pub current: bool,
}

pub struct LangChoice {
    pub code: &'static str,
    pub name: &'static str,
    pub selected: bool,
}

/// Everything the layout needs.
pub struct Shell {
    pub lang: Lang,
    pub org_name: String,
    pub user_name: Option<String>,
    pub csrf_token: Option<String>,
    pub current_path: String,
    pub nav: Vec<NavItem>,
    pub languages: Vec<LangChoice>,
    pub css_url: String,
    pub logo_url: String,
    /// `/branding/theme.css` with the version of the colours it carries.
    pub theme_url: String,
    pub favicon_url: String,
    pub favicon_type: &'static str,
    pub footer_links: Vec<crate::branding::FooterLink>,
    /// The organisation's time zone (`locale.timezone`): every time on the page is shown in it.
    pub zone: OrgZone,
}

impl Shell {
    pub fn new(
        lang: Lang,
        org_name: String,
        session: Option<&ActiveSession>,
        csrf_token: Option<String>,
        current_path: &str,
        zone: OrgZone,
    ) -> Self {
        let signed_in = session.is_some();
        let mut nav = Vec::new();
        if signed_in {
            nav.push(NavItem {
                href: "/",
                label: lang.t("nav-home"),
                current: current_path == "/",
            });
            nav.push(NavItem {
                href: "/people",
                label: lang.t("nav-directory"),
                current: ["/people", "/org-chart", "/profile"]
                    .iter()
                    .any(|p| current_path.starts_with(p)),
            });
            nav.push(NavItem {
                href: "/spaces",
                label: lang.t("nav-spaces"),
                current: current_path.starts_with("/spaces"),
            });
            nav.push(NavItem {
                href: crate::auth::sessions_page::OWN_PAGE,
                label: lang.t("nav-account"),
                current: current_path.starts_with("/account"),
            });
        }
        // Administrators and auditors only: the links are a convenience, the handlers check
        // the role themselves.
        if session.is_some_and(|s| s.account.has_role(Role::Admin)) {
            nav.push(NavItem {
                href: "/admin",
                label: lang.t("nav-admin"),
                current: current_path == "/admin" || current_path.starts_with("/admin/"),
            });
        }
        if session.is_some_and(|s| s.account.has_role(Role::Auditor)) {
            nav.push(NavItem {
                href: "/audit",
                label: lang.t("nav-audit"),
                current: current_path.starts_with("/audit"),
            });
        }
        Self {
            lang,
            org_name,
            user_name: session.map(|s| s.account.display_name.clone()),
            csrf_token,
            current_path: current_path.to_owned(),
            nav,
            languages: Lang::ALL
                .iter()
                .map(|l| LangChoice {
                    code: l.code(),
                    name: l.endonym(),
                    selected: *l == lang,
                })
                .collect(),
            css_url: asset_url("app.css"),
            logo_url: asset_url("logo.svg"),
            theme_url: "/branding/theme.css".to_owned(),
            favicon_url: asset_url("logo.svg"),
            favicon_type: "image/svg+xml",
            footer_links: Vec::new(),
            zone,
        }
    }

    /// Shows the organisation's own theme, logo, favicon and footer links.
    pub fn with_branding(mut self, branding: &Branding) -> Self {
        self.theme_url = branding.theme_url();
        if let Some(url) = branding.image_url(ImageKind::Logo) {
            self.logo_url = url;
        }
        if let Some(url) = branding.image_url(ImageKind::Favicon) {
            self.favicon_url = url;
            self.favicon_type = "image/png";
        }
        self.footer_links = branding.footer_links.clone();
        self
    }

    /// Adds the news approval queue, with how many items wait, after "Spaces" (only for
    /// those who approve in at least one space; the page checks for itself).
    pub fn with_approval_queue(mut self, waiting: i64) -> Self {
        let item = NavItem {
            href: "/news/pending",
            label: self
                .lang
                .t_args("nav-approvals", &[("count", waiting.to_string())]),
            current: self.current_path == "/news/pending",
        };
        let at = self
            .nav
            .iter()
            .position(|i| i.href == "/spaces")
            .map_or(self.nav.len(), |i| i + 1);
        self.nav.insert(at, item);
        self
    }

    /// Translates a message id.
    pub fn t(&self, id: &str) -> String {
        self.lang.t(id)
    }

    /// Translates a message id with one argument.
    pub fn t1(&self, id: &str, name: &'static str, value: &str) -> String {
        self.lang.t_args(id, &[(name, value.to_owned())])
    }

    /// An instant as the reader sees it: the organisation's zone, the page's language.
    pub fn when(&self, unix_secs: i64) -> String {
        self.zone.display(self.lang, unix_secs)
    }

    /// The same instant for `<time datetime>`: ISO 8601 with its offset.
    pub fn when_iso(&self, unix_secs: i64) -> String {
        self.zone.iso(unix_secs)
    }

    /// Both, for templates that show a `<time>` element: (text, `datetime` attribute).
    pub fn when_pair(&self, unix_secs: i64) -> (String, String) {
        (self.when(unix_secs), self.when_iso(unix_secs))
    }
}

/// The request's shell plus the session, for handlers that render pages.
pub struct PageContext {
    pub shell: Shell,
    pub session: Option<Arc<ActiveSession>>,
}

impl FromRequestParts<AppState> for PageContext {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let session = parts
            .extensions
            .get::<MaybeSession>()
            .and_then(|m| m.0.clone());
        let csrf = parts.extensions.get::<CsrfToken>().map(|t| t.0.clone());
        let lang = Lang::negotiate(
            session.as_ref().and_then(|s| s.account.locale.as_deref()),
            &parts.headers,
        );
        let branding = state.branding.get(&state.db).await?;
        let shell = Shell::new(
            lang,
            branding.name.clone(),
            session.as_deref(),
            csrf,
            parts.uri.path(),
            state.config.locale.timezone.clone(),
        )
        .with_branding(&branding);
        let shell = match session.as_deref() {
            // Only approvers (administrators and space managers) see the queue.
            Some(s) if s.account.has_role(Role::Admin) || s.standing.manages => {
                let admin = s.account.has_role(Role::Admin);
                let waiting =
                    crate::news::store::approval_queue_size(&state.db, s.account.id, admin).await?;
                shell.with_approval_queue(waiting)
            }
            Some(_) => shell,
            None => shell,
        };
        Ok(PageContext { shell, session })
    }
}

/// Renders a template as a page with the given status.
pub fn render(status: StatusCode, template: &impl Template) -> Result<Response, AppError> {
    let body = template.render()?;
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response.extensions_mut().insert(HtmlPage);
    Ok(response)
}
