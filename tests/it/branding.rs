//! Branding and the administration hub: only administrators get in (everyone else is refused
//! and the refusal is on record); colours below WCAG AA are refused with the ratio and nothing
//! is saved; name, colours, logo and footer links show on the next page, without a restart,
//! under versioned URLs; uploads are sniffed and bounded; every change is audited with its
//! before and after.

use beffroi::accounts::Role;
use beffroi::branding::colour::{Colour, format_ratio};
use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, audit_entries, details, spawn_app};

mod legal;

both_backends!(
    only_administrators_get_in_and_refusals_are_recorded,
    low_contrast_colours_are_refused_and_nothing_is_saved,
    name_colours_and_footer_show_on_the_next_page,
    logo_and_favicon_uploads_are_sniffed_and_bounded,
    footer_links_must_be_https_or_site_paths,
);

const BOUNDARY: &str = "beffroi-test-boundary-7d2f";

/// A small valid PNG (1 × 1, opaque), written by hand.
fn png() -> Vec<u8> {
    hex::decode(
        "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de\
         0000000c4944415408d763f8cfc000000301010018dd8db00000000049454e44ae426082",
    )
    .unwrap()
}

/// A multipart form body with the CSRF token and one file (reqwest's multipart feature is not
/// needed for one part).
fn multipart(
    token: &str,
    field: &str,
    file_name: &str,
    content_type: &str,
    bytes: &[u8],
) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{file_name}\"\r\n\
         Content-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn upload(
    app: &TestApp,
    client: &reqwest::Client,
    kind: &str,
    file_name: &str,
    content_type: &str,
    bytes: &[u8],
) -> (StatusCode, String) {
    let token = app.csrf_token(client, "/").await;
    let r = client
        .post(app.url(&format!("/admin/branding/{kind}")))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(multipart(&token, kind, file_name, content_type, bytes))
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.text().await.unwrap())
}

async fn get(app: &TestApp, client: &reqwest::Client, path: &str) -> (StatusCode, String) {
    let r = client.get(app.url(path)).send().await.unwrap();
    let status = r.status();
    (status, r.text().await.unwrap())
}

async fn post_form(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let token = app.csrf_token(client, "/").await;
    let mut form = vec![("csrf_token", token.as_str())];
    form.extend_from_slice(fields);
    client.post(app.url(path)).form(&form).send().await.unwrap()
}

async fn save_identity(
    app: &TestApp,
    client: &reqwest::Client,
    name: &str,
    colours: [&str; 4],
) -> reqwest::Response {
    post_form(
        app,
        client,
        "/admin/branding",
        &[
            ("name", name),
            ("primary", colours[0]),
            ("on_primary", colours[1]),
            ("secondary", colours[2]),
            ("on_secondary", colours[3]),
        ],
    )
    .await
}

/// The stored name and colours, read from the database itself.
async fn stored(app: &TestApp) -> (String, String, String, String, String, String) {
    beffroi::with_db!(app.db(), pool => sqlx::query_as(
        "SELECT name, colour_primary, colour_on_primary, colour_secondary, colour_on_secondary, \
         footer_links FROM organisation WHERE id = 1"
    ).fetch_one(pool).await.unwrap())
}

/// The value of the first `attr="…"` after `marker` in `body`.
fn attr_after(body: &str, marker: &str, attr: &str) -> Option<String> {
    let at = body.find(marker)?;
    let rest = &body[at..];
    let start = rest.find(&format!("{attr}=\""))? + attr.len() + 2;
    let end = rest[start..].find('"')?;
    Some(
        rest[start..start + end]
            .replace("&#38;", "&")
            .replace("&amp;", "&"),
    )
}

fn theme_url(body: &str) -> String {
    let url = attr_after(
        body,
        "<link rel=\"stylesheet\" href=\"/branding/theme.css",
        "href",
    )
    .expect("no versioned theme link");
    assert!(url.starts_with("/branding/theme.css?v="), "{url}");
    url
}

async fn only_administrators_get_in_and_refusals_are_recorded(backend: Backend) {
    let app = spawn_app(backend).await;
    let (agent, agent_id) = app.signed_in_as("camille", &[Role::Agent]).await;
    let (home_status, home) = get(&app, &agent, "/").await;
    assert_eq!(home_status, StatusCode::OK);
    assert!(
        !home.contains("href=\"/admin\""),
        "an agent sees the admin link"
    );

    // Every administration area, including those of other capabilities: the admin gate refuses
    // and records them all in one place.
    let areas = [
        "/admin",
        "/admin/branding",
        "/admin/directory",
        "/admin/directory/fields",
        "/admin/spaces",
        "/admin/spaces/new",
    ];
    for path in areas {
        let (status, body) = get(&app, &agent, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(body.contains("Accès refusé"), "{path}: {body}");
        assert!(
            !body.contains("Couleur principale"),
            "{path} leaked the form"
        );
    }
    // A forged post by an agent, with a valid CSRF token of their own, changes nothing.
    let before = stored(&app).await;
    let r = save_identity(
        &app,
        &agent,
        "Pirates",
        ["#000000", "#ffffff", "#ffffff", "#000000"],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (status, _) = upload(&app, &agent, "logo", "logo.png", "image/png", &png()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(stored(&app).await, before);
    assert_eq!(app.count("SELECT COUNT(*) FROM branding_images").await, 0);

    let denied = audit_entries(app.db(), "admin.denied").await;
    let paths: Vec<String> = denied
        .iter()
        .map(|e| details(e)["path"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        paths,
        areas
            .iter()
            .chain(&["/admin/branding", "/admin/branding/logo"])
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
    );
    for e in &denied {
        assert_eq!(e.outcome, "denied");
        assert_eq!(e.actor_id, Some(agent_id));
        assert_eq!(details(e)["reason"], "not an administrator");
    }

    let (admin, _) = app.signed_in_as("alice", &[Role::Admin]).await;
    let (status, hub) = get(&app, &admin, "/admin").await;
    assert_eq!(status, StatusCode::OK);
    for link in ["/admin/branding", "/admin/directory", "/admin/spaces"] {
        assert!(
            hub.contains(&format!("href=\"{link}\"")),
            "hub lacks {link}"
        );
    }
    assert!(
        hub.contains("<a href=\"/admin\" aria-current=\"page\">Administration</a>"),
        "no current Administration item in the nav"
    );
    let (status, page) = get(&app, &admin, "/admin/branding").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("name=\"csrf_token\""));
    assert_eq!(
        audit_entries(app.db(), "admin.denied").await.len(),
        areas.len() + 2
    );
}

async fn low_contrast_colours_are_refused_and_nothing_is_saved(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = app.signed_in_as("alice", &[Role::Admin]).await;
    let before = stored(&app).await;

    // Grey text on a slightly darker grey: the header pair fails.
    let r = save_identity(
        &app,
        &admin,
        "Mairie",
        ["#1b4f72", "#3a6f92", "#f4f4f6", "#1e1e1e"],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    let ratio = Colour::parse("#3a6f92")
        .unwrap()
        .contrast(Colour::parse("#1b4f72").unwrap());
    let shown = format!(
        "Texte sur la couleur principale (en-tête, boutons) : #3a6f92 sur #1b4f72 donne un \
         contraste de {}:1",
        format_ratio(ratio, true)
    );
    assert!(
        body.contains(&shown),
        "no ratio message {shown:?} in {body}"
    );
    assert!(
        body.contains("<title>Erreur :"),
        "the title does not say there is an error"
    );
    // What was typed stays in the form.
    assert!(body.contains("value=\"#3a6f92\""));
    assert!(body.contains("value=\"Mairie\""));

    // Yellow on black passes in the header, but the CSS also uses the primary colour for links
    // on white: that pair is checked too, and named.
    let r = save_identity(
        &app,
        &admin,
        "Mairie",
        ["#ffdd00", "#000000", "#f4f4f6", "#1e1e1e"],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    assert!(
        body.contains(
            "Liens dans la couleur principale sur le fond des pages : #ffdd00 sur #ffffff"
        )
    );
    assert!(!body.contains("Texte sur la couleur principale (en-tête, boutons) :"));

    // The footer pair, and a colour that is not one.
    let r = save_identity(
        &app,
        &admin,
        "Mairie",
        ["#1b4f72", "#ffffff", "#777777", "#ffffff"],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("Texte sur la couleur secondaire (pied de page) : #ffffff sur #777777 donne un contraste de 4,47:1"));
    let r = save_identity(
        &app,
        &admin,
        "Mairie",
        ["red", "#ffffff", "#f4f4f6", "#1e1e1e"],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("« Couleur principale » n’est pas une couleur")
    );
    let r = save_identity(
        &app,
        &admin,
        "   ",
        ["#1b4f72", "#ffffff", "#f4f4f6", "#1e1e1e"],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    assert_eq!(stored(&app).await, before, "a refused palette was saved");
    assert!(audit_entries(app.db(), "branding.update").await.is_empty());
    let (_, home) = get(&app, &admin, "/").await;
    assert!(!home.contains("Mairie"));
}

async fn name_colours_and_footer_show_on_the_next_page(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, admin_id) = app.signed_in_as("alice", &[Role::Admin]).await;
    let (_, home) = get(&app, &admin, "/").await;
    let old_theme = theme_url(&home);
    let r = admin.get(app.url(&old_theme)).send().await.unwrap();
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(r.text().await.unwrap().contains("--brand: #000091;"));

    let r = save_identity(
        &app,
        &admin,
        "  Mairie de Saint-Clocher ",
        ["#1B4F72", "#ffffff", "#e8eef3", "#1b2a36"],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/admin/branding?saved=identity");
    let (_, page) = get(&app, &admin, "/admin/branding?saved=identity").await;
    assert!(page.contains("Le nom et les couleurs sont enregistrés."));

    // The very next page shows the change, with a new theme URL carrying the new colours.
    let (_, home) = get(&app, &admin, "/").await;
    assert!(home.contains("<span>Mairie de Saint-Clocher</span>"));
    assert!(home.contains("<title>Actualités — Mairie de Saint-Clocher</title>"));
    let new_theme = theme_url(&home);
    assert_ne!(new_theme, old_theme);
    let r = admin.get(app.url(&new_theme)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/css; charset=utf-8");
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let css = r.text().await.unwrap();
    for property in [
        "--brand: #1b4f72;",
        "--on-brand: #ffffff;",
        "--brand-secondary: #e8eef3;",
        "--on-brand-secondary: #1b2a36;",
    ] {
        assert!(css.contains(property), "{property} missing from {css}");
    }
    // An old page's theme URL gets the current colours, and is not kept by the browser.
    let r = admin.get(app.url(&old_theme)).send().await.unwrap();
    assert_eq!(r.headers()["cache-control"], "no-cache");
    assert!(r.text().await.unwrap().contains("--brand: #1b4f72;"));
    // The sign-in page (no session) is branded too.
    let (_, login) = get(&app, &app.client(), "/login").await;
    assert!(login.contains("Mairie de Saint-Clocher"));
    assert_eq!(theme_url(&login), new_theme);

    let updates = audit_entries(app.db(), "branding.update").await;
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].actor_id, Some(admin_id));
    assert_eq!(updates[0].target.as_deref(), Some("organisation"));
    let d = details(&updates[0]);
    assert_eq!(d["before"]["name"], "Beffroi");
    assert_eq!(d["before"]["primary"], "#000091");
    assert_eq!(d["after"]["name"], "Mairie de Saint-Clocher");
    assert_eq!(d["after"]["primary"], "#1b4f72");
    assert_eq!(d["after"]["on_secondary"], "#1b2a36");

    // Saving the same values again changes and records nothing.
    let r = save_identity(
        &app,
        &admin,
        "Mairie de Saint-Clocher",
        ["#1b4f72", "#ffffff", "#e8eef3", "#1b2a36"],
    )
    .await;
    assert_eq!(r.headers()["location"], "/admin/branding?saved=unchanged");
    assert_eq!(audit_entries(app.db(), "branding.update").await.len(), 1);

    // Footer links, in the order of the rows, on every page.
    let (_, page) = get(&app, &admin, "/admin/branding").await;
    assert!(page.contains("Aucun lien ne commence par « Accessibilité »"));
    let r = post_form(
        &app,
        &admin,
        "/admin/branding/footer",
        &[
            ("label_0", "Mentions légales"),
            ("url_0", "/mentions-legales"),
            ("label_1", ""),
            ("url_1", ""),
            ("label_2", "Accessibilité : non conforme"),
            ("url_2", "https://www.example.gouv.fr/accessibilite?a=1&b=2"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, home) = get(&app, &admin, "/").await;
    let footer = &home[home.find("<footer").unwrap()..];
    let legal = footer
        .find("<a href=\"/mentions-legales\">Mentions légales</a>")
        .unwrap();
    let a11y = footer.find("Accessibilité : non conforme</a>").unwrap();
    assert!(legal < a11y, "footer links out of order");
    assert!(
        footer.contains("https://www.example.gouv.fr/accessibilite?a=1&amp;b=2")
            || footer.contains("https://www.example.gouv.fr/accessibilite?a=1&#38;b=2")
    );
    let (_, page) = get(&app, &admin, "/admin/branding").await;
    assert!(!page.contains("Aucun lien ne commence par « Accessibilité »"));
    let footers = audit_entries(app.db(), "branding.footer").await;
    assert_eq!(footers.len(), 1);
    let d = details(&footers[0]);
    assert_eq!(d["before"], serde_json::json!([]));
    assert_eq!(d["after"][0]["label"], "Mentions légales");
    assert_eq!(
        d["after"][1]["url"],
        "https://www.example.gouv.fr/accessibilite?a=1&b=2"
    );
    assert_eq!(d["after"].as_array().unwrap().len(), 2);
}

async fn logo_and_favicon_uploads_are_sniffed_and_bounded(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = app.signed_in_as("alice", &[Role::Admin]).await;
    let (_, home) = get(&app, &admin, "/").await;
    let default_logo = attr_after(&home, "<a class=\"brand\"", "src").unwrap();
    assert!(default_logo.starts_with("/static/logo."), "{default_logo}");
    // No logo uploaded: the route sends the built-in one.
    let r = admin.get(app.url("/branding/logo")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"].to_str().unwrap(), default_logo);

    // Refused: SVG (script-capable), HTML passed off as a PNG, and a PNG over 512 KiB.
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
    let (status, body) = upload(&app, &admin, "logo", "logo.svg", "image/svg+xml", svg).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        body.contains("Ce fichier n’est pas une image PNG, JPEG ou WebP"),
        "{body}"
    );
    let html = b"<!DOCTYPE html><html><script>alert(1)</script></html>";
    let (status, _) = upload(&app, &admin, "logo", "logo.png", "image/png", html).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let mut big = png();
    big.resize(512 * 1024 + 1, 0);
    let (status, body) = upload(&app, &admin, "logo", "big.png", "image/png", &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        body.contains("Le fichier pèse 513 Kio ; le maximum est de 512 Kio."),
        "{body}"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM branding_images").await, 0);
    assert!(audit_entries(app.db(), "branding.logo").await.is_empty());

    // Accepted: a real PNG, served under a content-derived URL with a long cache.
    let (status, _) = upload(&app, &admin, "logo", "logo.png", "image/png", &png()).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, home) = get(&app, &admin, "/").await;
    let logo = attr_after(&home, "<a class=\"brand\"", "src").unwrap();
    assert!(logo.starts_with("/branding/logo?v="), "{logo}");
    let r = admin.get(app.url(&logo)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.bytes().await.unwrap().to_vec(), png());
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(png()))
    };
    assert_eq!(logo, format!("/branding/logo?v={}", &sha[..16]));
    let logos = audit_entries(app.db(), "branding.logo").await;
    assert_eq!(logos.len(), 1);
    let d = details(&logos[0]);
    assert_eq!(d["before"], serde_json::Value::Null);
    assert_eq!(d["after"]["sha256"], sha);
    assert_eq!(d["after"]["media_type"], "png");

    // The favicon takes PNG only.
    let jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00";
    let (status, body) = upload(&app, &admin, "favicon", "icon.jpg", "image/jpeg", jpeg).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(body.contains("Ce fichier n’est pas une image PNG"));
    let (status, _) = upload(&app, &admin, "favicon", "icon.png", "image/png", &png()).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, home) = get(&app, &admin, "/").await;
    assert!(home.contains(&format!(
        "<link rel=\"icon\" href=\"/branding/favicon?v={}\" type=\"image/png\">",
        &sha[..16]
    )));

    // Back to the default logo: recorded with the old one as "before".
    let r = post_form(&app, &admin, "/admin/branding/logo/remove", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, home) = get(&app, &admin, "/").await;
    assert_eq!(
        attr_after(&home, "<a class=\"brand\"", "src").unwrap(),
        default_logo
    );
    let logos = audit_entries(app.db(), "branding.logo").await;
    assert_eq!(logos.len(), 2);
    assert_eq!(details(&logos[1])["before"]["sha256"], sha);
    assert_eq!(details(&logos[1])["after"], serde_json::Value::Null);
    assert_eq!(audit_entries(app.db(), "branding.favicon").await.len(), 1);
}

async fn footer_links_must_be_https_or_site_paths(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = app.signed_in_as("alice", &[Role::Admin]).await;
    let before = stored(&app).await;
    for (url, why) in [
        ("javascript:alert(document.cookie)", "javascript"),
        ("  JavaScript:alert(1)", "javascript, mixed case"),
        ("data:text/html,<script>alert(1)</script>", "data"),
        ("http://example.fr/", "plain http"),
        ("//evil.example/", "protocol-relative"),
    ] {
        let r = post_form(
            &app,
            &admin,
            "/admin/branding/footer",
            &[
                ("label_0", "Mentions légales"),
                ("url_0", "/mentions-legales"),
                ("label_1", "Piège"),
                ("url_1", url),
            ],
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{why}");
        let body = r.text().await.unwrap();
        assert!(
            body.contains("Lien 2 : l’adresse doit commencer par https:// ou par /"),
            "{why}: {body}"
        );
        // What was typed is shown back as text in the field, never as a link.
        assert!(!body.contains(&format!("href=\"{url}\"")), "{why}");
    }
    let r = post_form(
        &app,
        &admin,
        "/admin/branding/footer",
        &[("label_0", ""), ("url_0", "/sans-intitule")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Lien 1 : l’intitulé est vide")
    );
    assert_eq!(stored(&app).await, before);
    assert!(audit_entries(app.db(), "branding.footer").await.is_empty());
    let (_, home) = get(&app, &admin, "/").await;
    assert!(!home.contains("javascript:"));
    assert!(!home.contains("class=\"footer-nav\""));
}
