//! The who's-who through HTTP: the field policy holds on the profile page, the vCard, the photo
//! and in search (a hidden field can neither be seen nor matched); agents edit only what the
//! administrator allows; policy and placement changes are audited; photo uploads are sniffed
//! and bounded; the org chart survives a loop in manager links; disabled accounts never appear.

use beffroi::accounts::Role;
use beffroi::directory::people::{self, RawProfile};
use beffroi::directory::structure;

use crate::both_backends;
use crate::helpers::{
    Backend, Options, TestApp, audit_entries, details, extract_csrf, spawn_app, spawn_app_with,
};

mod admin_photo;

const ALICE_MOBILE: &str = "06 39 98 11 22";
const ALICE_OFFICE: &str = "02 99 00 12 34";

/// Finances > Comptabilité, and Culture; alice in accounting, bob directs finances, carol is
/// in culture.
struct Org {
    app: TestApp,
    alice: (reqwest::Client, i64),
    bob: (reqwest::Client, i64),
    carol: (reqwest::Client, i64),
    admin: (reqwest::Client, i64),
    accounting: i64,
}

async fn organisation(backend: Backend) -> Org {
    let app = spawn_app(backend).await;
    let db = app.db();
    let finances = structure::create_department(db, "Direction des finances", None)
        .await
        .unwrap();
    let accounting = structure::create_department(db, "Comptabilité", Some(finances))
        .await
        .unwrap();
    let culture = structure::create_department(db, "Culture", None)
        .await
        .unwrap();
    let town_hall = structure::create_site(db, "Hôtel de ville", None)
        .await
        .unwrap();
    let alice = app.signed_in_as("alice", &[Role::Agent]).await;
    let bob = app.signed_in_as("bob", &[Role::Agent]).await;
    let carol = app.signed_in_as("carol", &[Role::Agent]).await;
    let admin = app.signed_in_as("root", &[Role::Agent, Role::Admin]).await;
    let mut tx = db.begin().await.unwrap();
    people::save_profile(
        &mut tx,
        alice.1,
        &RawProfile {
            title: Some("Gestionnaire comptable".into()),
            department_id: Some(accounting),
            site_id: Some(town_hall),
            manager_id: Some(bob.1),
            office_phone: Some(ALICE_OFFICE.into()),
            mobile_phone: Some(ALICE_MOBILE.into()),
            skills: vec!["Marchés publics".into(), "Excel".into()],
            bio: Some("Comptable depuis 2010.".into()),
            ..RawProfile::default()
        },
    )
    .await
    .unwrap();
    people::save_profile(
        &mut tx,
        bob.1,
        &RawProfile {
            title: Some("Directeur des finances".into()),
            department_id: Some(finances),
            ..RawProfile::default()
        },
    )
    .await
    .unwrap();
    people::save_profile(
        &mut tx,
        carol.1,
        &RawProfile {
            department_id: Some(culture),
            ..RawProfile::default()
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    Org {
        app,
        alice,
        bob,
        carol,
        admin,
        accounting,
    }
}

async fn get(app: &TestApp, client: &reqwest::Client, path: &str) -> (u16, String) {
    let response = client.get(app.url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

async fn set_policy(app: &TestApp, sql: &'static str) {
    app.exec(sql).await;
}

async fn mobile_is_seen_and_searchable_only_on_the_same_branch(backend: Backend) {
    let org = organisation(backend).await;
    let app = &org.app;
    let alice_page = format!("/people/{}", org.alice.1);

    // Bob directs the finances, above accounting: the mobile reaches him.
    let (status, body) = get(app, &org.bob.0, &alice_page).await;
    assert_eq!(status, 200);
    assert!(body.contains(ALICE_MOBILE), "bob sees the mobile");
    assert!(body.contains("Direction des finances › Comptabilité"));
    assert!(body.contains("Marchés publics"));
    // Carol is in culture: office phone yes, mobile no.
    let (status, body) = get(app, &org.carol.0, &alice_page).await;
    assert_eq!(status, 200);
    assert!(body.contains(ALICE_OFFICE));
    assert!(
        !body.contains(ALICE_MOBILE),
        "carol must not see the mobile"
    );
    assert!(!body.contains("06 39 98"), "not even part of it");

    // The vCard carries the same fields as the page.
    let card = |client: &reqwest::Client| {
        let url = app.url(&format!("{alice_page}/vcard"));
        let client = client.clone();
        async move {
            let response = client.get(url).send().await.unwrap();
            assert_eq!(response.status(), 200);
            assert!(
                response.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/vcard")
            );
            assert!(
                response.headers()["content-disposition"]
                    .to_str()
                    .unwrap()
                    .starts_with("attachment; filename=\"alice.vcf\"")
            );
            response.text().await.unwrap()
        }
    };
    let bob_card = card(&org.bob.0).await;
    assert!(bob_card.starts_with("BEGIN:VCARD\r\nVERSION:4.0\r\n"));
    assert!(bob_card.contains(&format!("TEL;VALUE=text;TYPE=cell:{ALICE_MOBILE}\r\n")));
    let carol_card = card(&org.carol.0).await;
    assert!(carol_card.contains(&format!("TEL;VALUE=text;TYPE=work,voice:{ALICE_OFFICE}")));
    assert!(!carol_card.contains("TYPE=cell"));
    assert!(!carol_card.contains("39 98"));

    // Search by the mobile number: found for bob, not for carol (no oracle).
    let link = format!("href=\"/people/{}\"", org.alice.1);
    let (_, found) = get(app, &org.bob.0, "/people?q=0639981122").await;
    assert!(found.contains(&link), "bob finds alice by her mobile");
    let (_, found) = get(app, &org.carol.0, "/people?q=06+39+98+11+22").await;
    assert!(
        !found.contains(&link),
        "carol must not find alice by her mobile"
    );
    // Names and skills match without case or accents (SQLite's lower() folds ASCII only).
    set_policy(
        app,
        "UPDATE accounts SET display_name = 'Éloïse Carol' WHERE username = 'carol'",
    )
    .await;
    let (_, found) = get(app, &org.bob.0, "/people?q=eloise").await;
    assert!(found.contains(&format!("href=\"/people/{}\"", org.carol.1)));
    let (_, found) = get(app, &org.bob.0, "/people?q=%C3%89LO%C3%8FSE").await;
    assert!(found.contains(&format!("href=\"/people/{}\"", org.carol.1)));
    let (_, found) = get(app, &org.carol.0, "/people?q=MARCHES+PUB").await;
    assert!(
        found.contains(&link),
        "a skill typed without accents still matches"
    );
    // By name, carol finds her, and the result card shows no mobile.
    let (_, found) = get(app, &org.carol.0, "/people?q=ALI").await;
    assert!(found.contains(&link));
    assert!(found.contains(ALICE_OFFICE) && !found.contains(ALICE_MOBILE));
    // By department, sub-departments included.
    let (_, found) = get(
        app,
        &org.carol.0,
        &format!("/people?department={}", org.accounting - 1),
    )
    .await;
    assert!(
        found.contains(&link),
        "a search on the directorate reaches its services"
    );

    // Skills made private: neither shown nor searchable, except to alice and admins.
    set_policy(
        app,
        "UPDATE directory_field_policy SET visibility = 'private' WHERE field = 'skills'",
    )
    .await;
    let (_, found) = get(app, &org.carol.0, "/people?skill=march%C3%A9s").await;
    assert!(!found.contains(&link));
    let (_, found) = get(app, &org.carol.0, "/people?q=excel").await;
    assert!(!found.contains(&link));
    let (_, body) = get(app, &org.carol.0, &alice_page).await;
    assert!(!body.contains("Marchés publics"));
    for viewer in [&org.alice.0, &org.admin.0] {
        let (_, found) = get(app, viewer, "/people?skill=march%C3%A9s").await;
        assert!(found.contains(&link));
    }
    // The administrator's reads of restricted data are on record; the agent's own are not.
    let reads = audit_entries(app.db(), "directory.private_read").await;
    assert_eq!(reads.len(), 1, "one search by the administrator");
    assert_eq!(reads[0].actor_id, Some(org.admin.1));
    assert_eq!(details(&reads[0])["what"], "search");
    assert_eq!(details(&reads[0])["accounts"][0], org.alice.1);
    let (status, _) = get(app, &org.admin.0, &alice_page).await;
    assert_eq!(status, 200);
    let reads = audit_entries(app.db(), "directory.private_read").await;
    assert_eq!(reads.len(), 2);
    assert_eq!(
        reads[1].target.as_deref(),
        Some(format!("account:{}", org.alice.1).as_str())
    );

    // A disabled account is nowhere.
    set_policy(
        app,
        "UPDATE accounts SET disabled = TRUE WHERE username = 'alice'",
    )
    .await;
    let (_, found) = get(app, &org.carol.0, "/people?q=alice").await;
    assert!(!found.contains(&link));
    let (status, _) = get(app, &org.carol.0, &alice_page).await;
    assert_eq!(status, 404);
    let (_, body) = get(app, &org.bob.0, &format!("/people/{}", org.bob.1)).await;
    assert!(
        !body.contains(&link),
        "no longer listed among bob's reports"
    );
}

/// A multipart body with the CSRF token, text fields and at most one file.
fn multipart(
    token: &str,
    fields: &[(&str, &str)],
    file: Option<(&str, &[u8])>,
) -> (String, Vec<u8>) {
    let boundary = "beffroi-test-boundary-7d1f";
    let mut body = Vec::new();
    let mut text = |name: &str, value: &str| {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    };
    text("csrf_token", token);
    for (name, value) in fields {
        text(name, value);
    }
    if let Some((name, bytes)) = file {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"f\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub(crate) async fn post_profile(
    app: &TestApp,
    client: &reqwest::Client,
    fields: &[(&str, &str)],
    file: Option<(&str, &[u8])>,
) -> u16 {
    let token = app.csrf_token(client, "/profile").await;
    let (content_type, body) = multipart(&token, fields, file);
    client
        .post(app.url("/profile"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

pub(crate) const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";

async fn photos_are_sniffed_bounded_and_served_after_the_visibility_check(backend: Backend) {
    let org = organisation(backend).await;
    let app = &org.app;
    let photo_url = format!("/people/{}/photo", org.alice.1);
    let (status, _) = get(app, &org.bob.0, &photo_url).await;
    assert_eq!(status, 404, "no photo yet");

    // Markup and oversized files are refused, and nothing is stored.
    for (bytes, expected) in [
        (
            &b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"[..],
            415,
        ),
        (&b"<!DOCTYPE html><html><script>alert(1)</script>"[..], 415),
        (&b"GIF89a...."[..], 415),
    ] {
        assert_eq!(
            post_profile(app, &org.alice.0, &[], Some(("photo", bytes))).await,
            expected
        );
    }
    let mut big = PNG.to_vec();
    big.resize(2 * 1024 * 1024 + 1, 0);
    assert_eq!(
        post_profile(app, &org.alice.0, &[], Some(("photo", &big))).await,
        413
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM agent_profiles WHERE photo_sha256 IS NOT NULL")
            .await,
        0
    );

    assert_eq!(
        post_profile(app, &org.alice.0, &[], Some(("photo", PNG))).await,
        303
    );
    let response = org.carol.0.get(app.url(&photo_url)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "image/png");
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("private")
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(&response.bytes().await.unwrap()[..], PNG);

    set_policy(
        app,
        "UPDATE directory_field_policy SET visibility = 'private' WHERE field = 'photo'",
    )
    .await;
    for (client, expected) in [
        (&org.carol.0, 404),
        (&org.bob.0, 404),
        (&org.alice.0, 200),
        (&org.admin.0, 200),
    ] {
        let (status, _) = get(app, client, &photo_url).await;
        assert_eq!(status, expected);
    }
    let (_, page) = get(app, &org.carol.0, &format!("/people/{}", org.alice.1)).await;
    assert!(!page.contains(&photo_url));
}

async fn agents_edit_only_allowed_fields_and_policy_changes_are_audited(backend: Backend) {
    let org = organisation(backend).await;
    let app = &org.app;
    let status = post_profile(
        app,
        &org.carol.0,
        &[
            ("office_phone", "02 99 00 55 66"),
            ("mobile_phone", ""),
            ("skills", "Médiation culturelle\nPhotographie, photographie"),
            ("bio", "Chargée des expositions."),
        ],
        None,
    )
    .await;
    assert_eq!(status, 303);
    let saved = people::raw_profile(app.db(), org.carol.1).await.unwrap();
    assert_eq!(saved.office_phone.as_deref(), Some("02 99 00 55 66"));
    assert_eq!(saved.skills, vec!["Médiation culturelle", "Photographie"]);
    assert_eq!(saved.bio.as_deref(), Some("Chargée des expositions."));
    let entries = audit_entries(app.db(), "directory.profile_update").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(details(&entries[0])["by"], "self");

    // Invalid input: 422, nothing written.
    let status = post_profile(app, &org.carol.0, &[("office_phone", "appelez-moi")], None).await;
    assert_eq!(status, 422);
    // A placement field is never the agent's to change.
    let status = post_profile(app, &org.carol.0, &[("title", "Directrice générale")], None).await;
    assert_eq!(status, 403);

    // Only administrators change the policy.
    let form_of = |token: &str| {
        let mut form: Vec<(String, String)> = vec![("csrf_token".into(), token.into())];
        for field in [
            "email",
            "office_phone",
            "mobile_phone",
            "site",
            "skills",
            "bio",
            "photo",
            "manager",
        ] {
            let visibility = if field == "mobile_phone" {
                "private"
            } else {
                "everyone"
            };
            form.push((format!("visibility.{field}"), visibility.into()));
        }
        for field in ["mobile_phone", "skills", "bio", "photo"] {
            form.push((format!("self_edit.{field}"), "1".into()));
        }
        form
    };
    let (status, _) = get(app, &org.carol.0, "/admin/directory/fields").await;
    assert_eq!(status, 403);
    let token = app.csrf_token(&org.carol.0, "/profile").await;
    let refused = org
        .carol
        .0
        .post(app.url("/admin/directory/fields"))
        .form(&form_of(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert!(
        audit_entries(app.db(), "directory.field_policy_change")
            .await
            .is_empty()
    );

    let token = app
        .csrf_token(&org.admin.0, "/admin/directory/fields")
        .await;
    let saved = org
        .admin
        .0
        .post(app.url("/admin/directory/fields"))
        .form(&form_of(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 303);
    let entries = audit_entries(app.db(), "directory.field_policy_change").await;
    assert_eq!(entries.len(), 1);
    let change = details(&entries[0]);
    assert_eq!(change["office_phone"]["before"]["self_edit"], true);
    assert_eq!(change["office_phone"]["after"]["self_edit"], false);
    assert_eq!(change["mobile_phone"]["before"]["visibility"], "department");
    assert_eq!(change["mobile_phone"]["after"]["visibility"], "private");
    assert_eq!(entries[0].actor_id, Some(org.admin.1));

    // The office phone is now the administration's: the agent's change is refused whole.
    let status = post_profile(
        app,
        &org.carol.0,
        &[("office_phone", "02 99 00 77 88"), ("bio", "Autre texte")],
        None,
    )
    .await;
    assert_eq!(status, 403);
    let unchanged = people::raw_profile(app.db(), org.carol.1).await.unwrap();
    assert_eq!(unchanged.office_phone.as_deref(), Some("02 99 00 55 66"));
    assert_eq!(unchanged.bio.as_deref(), Some("Chargée des expositions."));
    // And the form no longer offers it.
    let (_, page) = get(app, &org.carol.0, "/profile").await;
    assert!(!page.contains("name=\"office_phone\"") && page.contains("name=\"bio\""));
}

async fn administrators_edit_placements_with_an_audited_before_and_after(backend: Backend) {
    let org = organisation(backend).await;
    let app = &org.app;
    let path = format!("/people/{}/edit", org.carol.1);
    let (status, _) = get(app, &org.bob.0, &path).await;
    assert_eq!(status, 403);
    let token = app.csrf_token(&org.admin.0, &path).await;
    let post = |fields: Vec<(&'static str, String)>| {
        let mut form = vec![("csrf_token", token.clone())];
        form.extend(fields);
        org.admin.0.post(app.url(&path)).form(&form).send()
    };
    let response = post(vec![
        ("title", "Chargée de mission".into()),
        ("department", org.accounting.to_string()),
        ("manager", org.alice.1.to_string()),
    ])
    .await
    .unwrap();
    assert_eq!(response.status(), 303);
    let saved = people::raw_profile(app.db(), org.carol.1).await.unwrap();
    assert_eq!(saved.manager_id, Some(org.alice.1));
    assert_eq!(saved.department_id, Some(org.accounting));
    let entries = audit_entries(app.db(), "directory.profile_update").await;
    assert_eq!(entries.len(), 1);
    let d = details(&entries[0]);
    assert_eq!(d["by"], "admin");
    assert_eq!(d["changes"]["title"]["before"], serde_json::Value::Null);
    assert_eq!(d["changes"]["title"]["after"], "Chargée de mission");
    assert_eq!(d["changes"]["manager_id"]["after"], org.alice.1);
    assert_eq!(
        entries[0].target.as_deref(),
        Some(format!("account:{}", org.carol.1).as_str())
    );

    // Bob manages alice who now manages carol: carol cannot become bob's manager.
    let bob_path = format!("/people/{}/edit", org.bob.1);
    let token = app.csrf_token(&org.admin.0, &bob_path).await;
    let refused = org
        .admin
        .0
        .post(app.url(&bob_path))
        .form(&[
            ("csrf_token", token.as_str()),
            ("manager", &org.carol.1.to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    assert_eq!(
        people::raw_profile(app.db(), org.bob.1)
            .await
            .unwrap()
            .manager_id,
        None
    );
    assert_eq!(
        audit_entries(app.db(), "directory.profile_update")
            .await
            .len(),
        1
    );
}

async fn the_org_chart_survives_a_loop_in_manager_links(backend: Backend) {
    let org = organisation(backend).await;
    let app = &org.app;
    let (status, top) = get(app, &org.carol.0, "/org-chart").await;
    assert_eq!(status, 200);
    assert!(
        top.contains(&format!("href=\"/org-chart/{}\"", org.bob.1)),
        "bob heads a branch"
    );
    assert!(
        top.contains(&format!("href=\"/org-chart/{}\"", org.alice.1)),
        "with alice below"
    );

    // Alice reports to bob; data written behind the application's back closes the loop.
    set_policy(
        app,
        "UPDATE agent_profiles SET manager_id = (SELECT id FROM accounts WHERE username = 'alice') \
         WHERE account_id = (SELECT id FROM accounts WHERE username = 'bob')",
    )
    .await;
    let (status, page) = get(app, &org.carol.0, &format!("/org-chart/{}", org.alice.1)).await;
    assert_eq!(status, 200);
    assert!(page.contains("org-node--centre"));
    assert!(page.contains(&format!("href=\"/org-chart/{}\"", org.bob.1)));
    assert!(page.contains("boucle"), "the loop is pointed out");
    let (status, _) = get(app, &org.carol.0, "/org-chart").await;
    assert_eq!(status, 200);
    let (status, _) = get(app, &org.carol.0, &format!("/people/{}", org.bob.1)).await;
    assert_eq!(status, 200);
}

async fn departments_move_without_cycles_and_every_change_is_audited(backend: Backend) {
    let org = organisation(backend).await;
    let app = &org.app;
    let (status, _) = get(app, &org.alice.0, "/admin/directory").await;
    assert_eq!(status, 403);
    let post = |path: &'static str, fields: Vec<(&'static str, String)>| {
        let app = &org.app;
        let client = org.admin.0.clone();
        async move {
            let token = app.csrf_token(&client, "/admin/directory").await;
            let mut form = vec![("csrf_token", token)];
            form.extend(fields);
            let response = client.post(app.url(path)).form(&form).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };
    let finances = org.accounting - 1;
    let (status, _) = post(
        "/admin/directory/departments",
        vec![
            ("name", "Paie".into()),
            ("parent", org.accounting.to_string()),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let paie: i64 = app
        .count("SELECT id FROM departments WHERE name = 'Paie'")
        .await;
    // Under its own descendant: refused, nothing moves.
    let (status, body) = post(
        "/admin/directory/departments/move",
        vec![("id", finances.to_string()), ("parent", paie.to_string())],
    )
    .await;
    assert_eq!(status, 422);
    assert!(body.contains("sous-services"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM departments WHERE parent_id IS NULL")
            .await,
        2
    );
    let (status, _) = post(
        "/admin/directory/departments/move",
        vec![("id", paie.to_string()), ("parent", String::new())],
    )
    .await;
    assert_eq!(status, 303);
    let (status, _) = post(
        "/admin/directory/departments/rename",
        vec![
            ("id", paie.to_string()),
            ("name", "Paie et carrières".into()),
        ],
    )
    .await;
    assert_eq!(status, 303);
    // A sibling with the same name is a conflict with a message.
    let (status, body) = post(
        "/admin/directory/departments",
        vec![("name", "Culture".into()), ("parent", String::new())],
    )
    .await;
    assert_eq!(status, 409);
    assert!(body.contains("déjà pris"));
    let (status, _) = post(
        "/admin/directory/sites",
        vec![("name", "Médiathèque".into())],
    )
    .await;
    assert_eq!(status, 303);
    for action in [
        "directory.department_create",
        "directory.department_move",
        "directory.department_rename",
        "directory.site_create",
    ] {
        assert_eq!(audit_entries(app.db(), action).await.len(), 1, "{action}");
    }
    let moved = &audit_entries(app.db(), "directory.department_move").await[0];
    assert_eq!(details(moved)["before"], org.accounting);
    assert_eq!(details(moved)["after"], serde_json::Value::Null);
    let (_, page) = get(app, &org.admin.0, "/admin/directory").await;
    assert!(page.contains("Paie et carrières") && extract_csrf(&page).is_some());
}

/// Beffroi with SCIM provisioning (and an identity provider that is never contacted).
async fn spawn_scim_app(backend: Backend) -> (TestApp, String) {
    use std::os::unix::fs::PermissionsExt;
    let token = beffroi::auth::session::random_token().unwrap();
    let dir = tempfile::tempdir().unwrap().keep();
    let token_path = dir.join("scim-token");
    std::fs::write(&token_path, format!("{token}\n")).unwrap();
    let secret = dir.join("oidc-secret");
    std::fs::write(&secret, "unused\n").unwrap();
    for path in [&token_path, &secret] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = spawn_app_with(
        backend,
        Options {
            server_extra: format!(
                "listen = \"127.0.0.1:{port}\"\npublic_url = \"https://127.0.0.1:{port}\"\n"
            ),
            extra: format!(
                "[oidc]\nissuer = \"http://127.0.0.1:9\"\nclient_id = \"beffroi\"\n\
                 client_secret_file = \"{}\"\n[scim]\ntoken_file = \"{}\"\n",
                secret.display(),
                token_path.display()
            ),
            ..Options::default()
        },
    )
    .await;
    (app, token)
}

async fn account_of(app: &TestApp, subject: &str) -> i64 {
    beffroi::with_db!(app.db(), pool => sqlx::query_scalar::<_, i64>(
        "SELECT id FROM accounts WHERE subject = $1").bind(subject).fetch_one(pool).await.unwrap())
}

async fn scim_users_carry_their_placement(backend: Backend) {
    const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let (app, token) = spawn_scim_app(backend).await;
    let http = app.client_without_origin();
    let send = |method: reqwest::Method, path: String, body: serde_json::Value| {
        http.request(method, app.url(&format!("/scim/v2{path}")))
            .bearer_auth(&token)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
    };
    let created = send(
        reqwest::Method::POST,
        "/Users".into(),
        serde_json::json!({
            "schemas": [USER, ENTERPRISE], "userName": "mdurand", "displayName": "Marie Durand",
            "title": "Directrice des finances",
            ENTERPRISE: { "department": "Direction des finances" }
        }),
    )
    .await
    .unwrap();
    assert_eq!(created.status(), 201);
    let boss: serde_json::Value = created.json().await.unwrap();
    let boss_scim = boss["id"].as_str().unwrap().to_owned();
    let agent_body = |title: &str| {
        serde_json::json!({
            "schemas": [USER, ENTERPRISE], "userName": "pleroy", "displayName": "Paul Leroy",
            "title": title,
            ENTERPRISE: { "department": "Direction des finances", "manager": { "value": boss_scim } }
        })
    };
    let created = send(
        reqwest::Method::POST,
        "/Users".into(),
        agent_body("Comptable"),
    )
    .await
    .unwrap();
    assert_eq!(created.status(), 201);
    let agent_scim = created.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (boss_id, agent_id) = (
        account_of(&app, "mdurand").await,
        account_of(&app, "pleroy").await,
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM departments WHERE name = 'Direction des finances'")
            .await,
        1
    );
    let finances = app
        .count("SELECT id FROM departments WHERE name = 'Direction des finances'")
        .await;
    let placed = people::raw_profile(app.db(), agent_id).await.unwrap();
    assert_eq!(placed.title.as_deref(), Some("Comptable"));
    assert_eq!(placed.department_id, Some(finances));
    assert_eq!(placed.manager_id, Some(boss_id));
    assert_eq!(
        people::raw_profile(app.db(), boss_id)
            .await
            .unwrap()
            .department_id,
        Some(finances)
    );
    assert_eq!(
        audit_entries(app.db(), "directory.department_create")
            .await
            .len(),
        1
    );

    // A PUT changes the title; the audit entry says what changed, by SCIM.
    let replaced = send(
        reqwest::Method::PUT,
        format!("/Users/{agent_scim}"),
        agent_body("Comptable principal"),
    )
    .await
    .unwrap();
    assert_eq!(replaced.status(), 200);
    assert_eq!(
        people::raw_profile(app.db(), agent_id)
            .await
            .unwrap()
            .title
            .as_deref(),
        Some("Comptable principal")
    );
    let updates = audit_entries(app.db(), "directory.profile_update").await;
    assert_eq!(updates.len(), 3);
    let last = details(updates.last().unwrap());
    assert_eq!(last["by"], "scim");
    assert_eq!(last["changes"]["title"]["before"], "Comptable");
    assert!(last["changes"].get("manager_id").is_none());
    assert_eq!(
        updates.last().unwrap().target.as_deref(),
        Some(format!("account:{agent_id}").as_str())
    );
    // A PATCH, as Entra ID sends it, moves the agent to another department (created by name).
    let patched = send(
        reqwest::Method::PATCH,
        format!("/Users/{agent_scim}"),
        serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "op": "replace",
                "path": format!("{ENTERPRISE}:department"), "value": "Culture" }]
        }),
    )
    .await
    .unwrap();
    assert_eq!(patched.status(), 200);
    let culture = app
        .count("SELECT id FROM departments WHERE name = 'Culture'")
        .await;
    let moved = people::raw_profile(app.db(), agent_id).await.unwrap();
    assert_eq!(moved.department_id, Some(culture));
    assert_eq!(moved.manager_id, Some(boss_id), "the manager stays");
    assert_eq!(
        audit_entries(app.db(), "directory.department_create")
            .await
            .len(),
        2
    );

    // Round trip: the PATCH answer, GET of the User and the list report the placement in
    // `title` and the enterprise extension, and declare the extension in `schemas`.
    let answered: serde_json::Value = patched.json().await.unwrap();
    assert_eq!(answered[ENTERPRISE]["department"], "Culture");
    let get_json = |path: String| {
        let request = http
            .get(app.url(&format!("/scim/v2{path}")))
            .bearer_auth(&token)
            .send();
        async move {
            request
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let user = get_json(format!("/Users/{agent_scim}")).await;
    assert_eq!(user["schemas"], serde_json::json!([USER, ENTERPRISE]));
    assert_eq!(user["title"], "Comptable principal");
    assert_eq!(user[ENTERPRISE]["department"], "Culture");
    assert_eq!(user[ENTERPRISE]["manager"]["value"], boss_scim.as_str());
    let boss = get_json(format!("/Users/{boss_scim}")).await;
    assert_eq!(boss["title"], "Directrice des finances");
    assert_eq!(boss[ENTERPRISE]["department"], "Direction des finances");
    assert!(boss[ENTERPRISE].get("manager").is_none());
    let list = get_json("/Users".into()).await;
    let listed = list["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == agent_scim.as_str())
        .unwrap()
        .clone();
    assert_eq!(listed[ENTERPRISE], user[ENTERPRISE]);
    // Discovery names the extension.
    let user_type = get_json("/ResourceTypes/User".into()).await;
    assert_eq!(
        user_type["schemaExtensions"],
        serde_json::json!([{ "schema": ENTERPRISE, "required": false }])
    );
    let schema = get_json(format!("/Schemas/{ENTERPRISE}")).await;
    let names: Vec<&str> = schema["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["department"]);
    let schemas = get_json("/Schemas".into()).await;
    assert!(
        schemas["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == ENTERPRISE)
    );
    // A PATCH remove clears the manager.
    let removed = send(
        reqwest::Method::PATCH,
        format!("/Users/{agent_scim}"),
        serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "op": "remove", "path": format!("{ENTERPRISE}:manager") }]
        }),
    )
    .await
    .unwrap();
    assert_eq!(removed.status(), 200);
    assert_eq!(
        people::raw_profile(app.db(), agent_id)
            .await
            .unwrap()
            .manager_id,
        None
    );
    let user = get_json(format!("/Users/{agent_scim}")).await;
    assert!(user[ENTERPRISE].get("manager").is_none());
    assert_eq!(user[ENTERPRISE]["department"], "Culture");
}

both_backends!(
    mobile_is_seen_and_searchable_only_on_the_same_branch,
    photos_are_sniffed_bounded_and_served_after_the_visibility_check,
    agents_edit_only_allowed_fields_and_policy_changes_are_audited,
    administrators_edit_placements_with_an_audited_before_and_after,
    the_org_chart_survives_a_loop_in_manager_links,
    departments_move_without_cycles_and_every_change_is_audited,
    scim_users_carry_their_placement,
);
