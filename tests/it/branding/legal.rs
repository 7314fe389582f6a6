//! The built-in legal pages: every footer link the demo sets answers 200 without signing in,
//! with the demo's texts; an administrator writes a page in French and English (English shown
//! to English readers, French otherwise), the Markdown is sanitised, non-administrators are
//! refused, and each change is audited by hash. Both backends.

use beffroi::accounts::Role;
use reqwest::StatusCode;

use super::{get, post_form};
use crate::both_backends;
use crate::helpers::{Backend, audit_entries, details, spawn_app};

both_backends!(
    every_demo_footer_link_answers_without_signing_in,
    administrators_write_the_legal_pages,
);

/// The addresses of the footer's links in a page.
fn footer_links(page: &str) -> Vec<String> {
    let footer = page
        .split("class=\"footer-nav\"")
        .nth(1)
        .unwrap_or_default();
    let footer = footer.split("</nav>").next().unwrap_or_default();
    footer
        .split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

async fn every_demo_footer_link_answers_without_signing_in(backend: Backend) {
    let app = spawn_app(backend).await;
    beffroi::demo::seed(app.db()).await.unwrap();
    let visitor = app.client();
    let (status, login) = get(&app, &visitor, "/login").await;
    assert_eq!(status, StatusCode::OK);
    let links = footer_links(&login);
    assert_eq!(
        links,
        [
            "/mentions-legales",
            "/accessibilite",
            "/donnees-personnelles"
        ]
    );
    for link in &links {
        let (status, page) = get(&app, &visitor, link).await;
        assert_eq!(status, StatusCode::OK, "{link}");
        // The seeded text, not the "not written yet" notice; the footer is there again.
        assert!(!page.contains("pas encore été rédigé"), "{link}");
        assert_eq!(footer_links(&page), links, "{link}");
    }
    let (_, statement) = get(&app, &visitor, "/accessibilite").await;
    assert!(statement.contains("<h1>Déclaration d’accessibilité</h1>"));
    assert!(statement.contains("<strong>partiellement conforme</strong>"));
    assert!(statement.contains("Voies de recours"));
    let (_, notice) = get(&app, &visitor, "/mentions-legales").await;
    assert!(notice.contains("Directeur de la publication"));
    // Seeding again changes nothing and records nothing more.
    let seeded = audit_entries(app.db(), "branding.legal_page").await.len();
    assert_eq!(seeded, 3);
    beffroi::demo::seed(app.db()).await.unwrap();
    assert_eq!(
        audit_entries(app.db(), "branding.legal_page").await.len(),
        3
    );
}

async fn administrators_write_the_legal_pages(backend: Backend) {
    let app = spawn_app(backend).await;
    let visitor = app.client();
    // Nothing written yet: the page still answers, and says so.
    let (status, page) = get(&app, &visitor, "/accessibilite").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("pas encore été rédigé"));

    let text = [
        (
            "fr",
            "## État de conformité\n\nPartiellement conforme.\n\n<script>alert(1)</script>",
        ),
        ("en", "## Compliance status\n\nPartially compliant."),
    ];
    let (agent, _) = app.signed_in_as("camille", &[Role::Agent]).await;
    let refused = post_form(&app, &agent, "/admin/branding/pages/accessibility", &text).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let (status, _) = get(&app, &visitor, "/accessibilite").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        audit_entries(app.db(), "branding.legal_page")
            .await
            .is_empty()
    );

    let (admin, admin_id) = app.signed_in_as("alice", &[Role::Admin]).await;
    let (status, form) = get(&app, &admin, "/admin/branding/pages").await;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains("action=\"/admin/branding/pages/accessibility\""));
    let saved = post_form(&app, &admin, "/admin/branding/pages/accessibility", &text).await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let unknown = post_form(&app, &admin, "/admin/branding/pages/cgu", &text).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    // French by default, sanitised; English for an English reader.
    let (_, french) = get(&app, &visitor, "/accessibilite").await;
    assert!(french.contains("<h2>État de conformité</h2>"));
    assert!(!french.contains("<script>alert"));
    let english = visitor
        .get(app.url("/accessibilite"))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(english.contains("<h2>Compliance status</h2>"), "{english}");
    assert!(english.contains("<h1>Accessibility statement</h1>"));

    // Audited per language, by hash and length.
    let entries = audit_entries(app.db(), "branding.legal_page").await;
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].actor_id, Some(admin_id));
    let d = details(&entries[0]);
    assert_eq!(d["page"], "accessibility");
    assert_eq!(d["lang"], "fr");
    assert_eq!(d["before"], serde_json::Value::Null);
    assert_eq!(d["after"]["bytes"], text[0].1.len());
    assert_eq!(d["after"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(details(&entries[1])["lang"], "en");

    // Emptying the English text falls back to French for English readers.
    let french_only = [("fr", text[0].1), ("en", "")];
    post_form(
        &app,
        &admin,
        "/admin/branding/pages/accessibility",
        &french_only,
    )
    .await;
    let english = visitor
        .get(app.url("/accessibilite"))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(english.contains("<h2>État de conformité</h2>"));
    assert!(english.contains("This text exists in French only."));
    assert_eq!(
        audit_entries(app.db(), "branding.legal_page").await.len(),
        3
    );
}
