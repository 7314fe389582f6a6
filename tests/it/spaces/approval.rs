//! Page approval in a space with `approval_required`, on both backends: a contributor's or an
//! editor's page waits for a manager, no reader ever sees an unapproved version, approval
//! publishes it, rejection leaves the published version as it was, and each step is audited.

use beffroi::accounts::Role;
use beffroi::audience::Rule;
use beffroi::spaces::{self, NewSpace, SpaceRole, Visibility};
use reqwest::StatusCode;

use super::{add_page, get, multipart, post_form};
use crate::both_backends;
use crate::helpers::{Backend, TestApp, audit_entries, details, spawn_app};

both_backends!(
    pages_wait_for_a_managers_approval,
    files_and_deletions_wait_for_a_manager,
);

async fn text(app: &TestApp, client: &reqwest::Client, path: &str) -> (StatusCode, String) {
    let response = get(app, client, path).await;
    (response.status(), response.text().await.unwrap())
}

/// The pending version whose proposed title is `title`: (page id, version).
async fn pending_version(app: &TestApp, title: &str) -> (i64, i64) {
    beffroi::with_db!(app.db(), pool => sqlx::query_as(
        "SELECT page_id, version FROM page_versions WHERE status = 'pending' AND title = $1"
    ).bind(title).fetch_one(pool).await.unwrap())
}

async fn decide(
    app: &TestApp,
    client: &reqwest::Client,
    (page, version): (i64, i64),
    fields: &[(&str, &str)],
) -> reqwest::Response {
    post_form(
        app,
        client,
        &format!("/spaces/rh/pending/{page}/{version}"),
        fields,
    )
    .await
}

/// An instance with the approval space `rh` and its page `teletravail`; a reader, and the
/// space's contributor, editor and manager, in that order.
async fn approval_space(backend: Backend) -> (TestApp, reqwest::Client, Vec<reqwest::Client>) {
    let app = spawn_app(backend).await;
    let space = spaces::create_space(
        app.db(),
        &NewSpace {
            slug: "rh",
            name: "Ressources humaines",
            description: "",
            visibility: Visibility::Public,
            approval_required: true,
            audience: &[Rule::Everyone],
        },
    )
    .await
    .unwrap();
    add_page(&app, space, "teletravail", "Deux jours par semaine.", &[]).await;
    let (reader, _) = app.signed_in_as("lectrice", &[Role::Agent]).await;
    let mut writers = Vec::new();
    for (name, role) in [
        ("contrib", SpaceRole::Contributor),
        ("editeur", SpaceRole::Editor),
        ("gestion", SpaceRole::Manager),
    ] {
        let (client, id) = app.signed_in_as(name, &[Role::Agent]).await;
        spaces::set_member(app.db(), space, id, role).await.unwrap();
        writers.push(client);
    }
    (app, reader, writers)
}

async fn pages_wait_for_a_managers_approval(backend: Backend) {
    let (app, reader, writers) = approval_space(backend).await;
    let [contrib, editor, manager] = &writers[..] else {
        unreachable!()
    };

    // The form tells the editor that their change will wait.
    let (_, form) = text(&app, editor, "/spaces/rh/pages/teletravail/edit").await;
    assert!(form.contains("approuvées par un gestionnaire"), "{form}");

    // An editor's edit and a contributor's new page are saved as proposals.
    let edit = [
        ("title", "Télétravail (proposé)"),
        ("slug", "teletravail"),
        ("body", "Trois jours par semaine."),
    ];
    let response = post_form(&app, editor, "/spaces/rh/pages/teletravail/edit", &edit).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()["location"],
        "/spaces/rh/pending?done=submitted"
    );
    let new_page = [
        ("title", "Astreintes"),
        ("slug", "astreintes"),
        ("body", "Règles des astreintes."),
    ];
    let response = post_form(&app, contrib, "/spaces/rh/pages", &new_page).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    // No reader — nor the writers themselves — sees an unapproved version anywhere.
    for client in [&reader, contrib, editor, manager] {
        let (status, page) = text(&app, client, "/spaces/rh/pages/teletravail").await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("Deux jours") && !page.contains("Trois jours"));
        assert!(!page.contains("(proposé)"));
        let (_, home) = text(&app, client, "/spaces/rh").await;
        assert!(!home.contains("Astreintes"));
        let (status, _) = text(&app, client, "/spaces/rh/pages/astreintes").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, history) = text(&app, client, "/spaces/rh/pages/teletravail/history").await;
        assert!(!history.contains("/versions/2\""));
        let (status, _) = text(&app, client, "/spaces/rh/pages/teletravail/versions/2").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let submits = audit_entries(app.db(), "page.submit").await;
    assert_eq!(submits.len(), 2);
    assert_eq!(details(&submits[0])["version"], 2);
    assert_eq!(details(&submits[1])["new_page"], true);

    // The queue: a reader cannot open it, a contributor sees only their own proposal, the
    // manager sees both (and the count on the space's home).
    let (status, _) = text(&app, &reader, "/spaces/rh/pending").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, own) = text(&app, contrib, "/spaces/rh/pending").await;
    assert!(own.contains("Astreintes") && !own.contains("Trois jours"));
    let (_, queue) = text(&app, manager, "/spaces/rh/pending").await;
    assert!(queue.contains("Astreintes") && queue.contains("Trois jours"));
    let (_, home) = text(&app, manager, "/spaces/rh").await;
    assert!(home.contains("Modifications à approuver (2)"), "{home}");

    // Only a manager decides; a rejection needs a reason.
    let edit_version = pending_version(&app, "Télétravail (proposé)").await;
    let approve = [("decision", "approve")];
    for client in [contrib, editor] {
        let response = decide(&app, client, edit_version, &approve).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
    let response = decide(&app, manager, edit_version, &[("decision", "reject")]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Rejection keeps the published version.
    let reject = [
        ("decision", "reject"),
        ("reason", "Pas encore validé en CSA"),
    ];
    let response = decide(&app, manager, edit_version, &reject).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, page) = text(&app, &reader, "/spaces/rh/pages/teletravail").await;
    assert!(page.contains("Deux jours") && !page.contains("Trois jours"));
    let rejected = audit_entries(app.db(), "page.reject").await;
    assert_eq!(rejected.len(), 1);
    assert_eq!(details(&rejected[0])["reason"], "Pas encore validé en CSA");
    // A decision cannot be taken twice.
    let response = decide(&app, manager, edit_version, &approve).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Approval publishes the new page to readers.
    let new_version = pending_version(&app, "Astreintes").await;
    let response = decide(&app, manager, new_version, &approve).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (status, page) = text(&app, &reader, "/spaces/rh/pages/astreintes").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Règles des astreintes."));
    let approved = audit_entries(app.db(), "page.approve").await;
    assert_eq!(approved.len(), 1);
    assert_eq!(details(&approved[0])["author"], "contrib");

    // Authors see what became of their proposals, with the manager's reason; nobody else's.
    let (_, theirs) = text(&app, editor, "/spaces/rh/pending").await;
    assert!(theirs.contains("Vos propositions traitées"), "{theirs}");
    assert!(
        theirs.contains("refusée") && theirs.contains("Motif du refus : Pas encore validé en CSA"),
        "{theirs}"
    );
    assert!(
        !theirs.contains("Astreintes"),
        "not the contributor's: {theirs}"
    );
    let (_, own) = text(&app, contrib, "/spaces/rh/pending").await;
    assert!(
        own.contains("href=\"/spaces/rh/pages/astreintes\">Astreintes</a></strong> — approuvée"),
        "{own}"
    );
    assert!(!own.contains("Pas encore validé en CSA"), "{own}");

    // A second proposal replaces a waiting one; approving it publishes its text and title.
    let first = [
        ("title", "Télétravail"),
        ("slug", "teletravail"),
        ("body", "Brouillon remplacé."),
    ];
    let second = [
        ("title", "Télétravail 2027"),
        ("slug", "teletravail"),
        ("body", "Trois jours, validé en CSA."),
    ];
    for edit in [&first[..], &second[..]] {
        let response = post_form(&app, editor, "/spaces/rh/pages/teletravail/edit", edit).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }
    let replaced: i64 = beffroi::with_db!(app.db(), pool => sqlx::query_scalar(
        "SELECT version FROM page_versions WHERE status = 'superseded'"
    ).fetch_one(pool).await.unwrap());
    let response = decide(&app, manager, (edit_version.0, replaced), &approve).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = decide(
        &app,
        manager,
        pending_version(&app, "Télétravail 2027").await,
        &approve,
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, page) = text(&app, &reader, "/spaces/rh/pages/teletravail").await;
    assert!(page.contains("Télétravail 2027") && page.contains("validé en CSA"));
    assert!(!page.contains("Brouillon remplacé"));

    // A manager's own edit is published at once.
    let own = [
        ("title", "Télétravail 2027"),
        ("slug", "teletravail"),
        ("body", "Trois jours, validé en CSA le 3 mars."),
    ];
    let response = post_form(&app, manager, "/spaces/rh/pages/teletravail/edit", &own).await;
    assert_eq!(
        response.headers()["location"],
        "/spaces/rh/pages/teletravail"
    );
    let (_, page) = text(&app, &reader, "/spaces/rh/pages/teletravail").await;
    assert!(page.contains("le 3 mars"));
}

/// Uploads `bytes` as `file_name` to the page `teletravail` of `rh`; returns the status.
async fn upload(app: &TestApp, client: &reqwest::Client, file_name: &str, bytes: &[u8]) -> u16 {
    let token = app.csrf_token(client, "/spaces").await;
    let (content_type, body) = multipart(&token, file_name, bytes);
    client
        .post(app.url("/spaces/rh/pages/teletravail/files"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn file_id(app: &TestApp, file_name: &str) -> i64 {
    beffroi::with_db!(app.db(), pool => sqlx::query_scalar(
        "SELECT id FROM page_attachments WHERE file_name = $1"
    ).bind(file_name).fetch_one(pool).await.unwrap())
}

fn file_path(id: i64) -> String {
    format!("/spaces/rh/pages/teletravail/files/{id}")
}

async fn files_and_deletions_wait_for_a_manager(backend: Backend) {
    let (app, reader, writers) = approval_space(backend).await;
    let [contrib, editor, manager] = &writers[..] else {
        unreachable!()
    };

    // A manager's file is published at once.
    assert_eq!(
        upload(&app, manager, "charte.txt", b"Charte du teletravail.\n").await,
        303
    );
    let charte = file_id(&app, "charte.txt").await;
    let (_, seen) = text(&app, &reader, "/spaces/rh/pages/teletravail").await;
    assert!(seen.contains("charte.txt"), "{seen}");

    // A contributor's file waits: readers neither see nor download it; its author and the
    // manager do, and the manager's queue lists it.
    assert_eq!(
        upload(&app, contrib, "horaires.txt", b"Plages fixes 10h-16h.\n").await,
        303
    );
    let horaires = file_id(&app, "horaires.txt").await;
    let added = audit_entries(app.db(), "page.attachment_add").await;
    assert_eq!(details(&added[1])["pending"], true);
    assert_eq!(details(&added[0])["pending"], false);
    let (_, seen) = text(&app, &reader, "/spaces/rh/pages/teletravail").await;
    assert!(!seen.contains("horaires.txt"), "{seen}");
    let (status, _) = text(&app, &reader, &file_path(horaires)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for client in [contrib, manager] {
        let (status, body) = text(&app, client, &file_path(horaires)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "Plages fixes 10h-16h.\n");
        let (_, form) = text(&app, client, "/spaces/rh/pages/teletravail/edit").await;
        assert!(
            form.contains("horaires.txt") && form.contains("en attente d’approbation"),
            "{form}"
        );
    }
    let (_, queue) = text(&app, manager, "/spaces/rh/pending").await;
    assert!(queue.contains("Fichier ajouté : horaires.txt"), "{queue}");
    let (_, home) = text(&app, manager, "/spaces/rh").await;
    assert!(home.contains("(1)"), "{home}");

    // Only a manager decides, and a refusal needs a reason.
    let files = |id: i64| format!("/spaces/rh/pending-files/{id}");
    let approve = [("decision", "approve")];
    for client in [contrib, editor, &reader] {
        let response = post_form(&app, client, &files(horaires), &approve).await;
        assert_ne!(response.status(), StatusCode::SEE_OTHER);
    }
    let response = post_form(&app, manager, &files(horaires), &[("decision", "reject")]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = post_form(&app, manager, &files(horaires), &approve).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()["location"],
        "/spaces/rh/pending?done=file-approved"
    );
    let (status, _) = text(&app, &reader, &file_path(horaires)).await;
    assert_eq!(status, StatusCode::OK);
    let d = details(&audit_entries(app.db(), "page.attachment_approve").await[0]);
    assert_eq!(
        (d["change"].as_str(), d["file_name"].as_str()),
        (Some("add"), Some("horaires.txt"))
    );
    // Twice is refused.
    let response = post_form(&app, manager, &files(horaires), &approve).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // A refused file is gone; the audit log keeps its name, hash and the reason.
    assert_eq!(
        upload(&app, contrib, "intrus.txt", b"Hors sujet.\n").await,
        303
    );
    let intrus = file_id(&app, "intrus.txt").await;
    let refuse = [("decision", "reject"), ("reason", "Hors sujet")];
    let response = post_form(&app, manager, &files(intrus), &refuse).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM page_attachments WHERE file_name = 'intrus.txt'")
            .await,
        0
    );
    let d = details(&audit_entries(app.db(), "page.attachment_reject").await[0]);
    assert_eq!(d["reason"], "Hors sujet");
    assert_eq!(d["sha256"].as_str().unwrap().len(), 64);

    // Its author withdraws a pending file at once (it was never published).
    assert_eq!(upload(&app, contrib, "erreur.txt", b"Oups.\n").await, 303);
    let erreur = file_id(&app, "erreur.txt").await;
    let response = post_form(&app, contrib, &format!("{}/delete", file_path(erreur)), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM page_attachments WHERE file_name = 'erreur.txt'")
            .await,
        0
    );

    // An editor's removal of a published file is a request: the file stays until a manager
    // approves; a refused removal keeps it.
    let remove = format!("{}/delete", file_path(charte));
    let response = post_form(&app, editor, &remove, &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (status, _) = text(&app, &reader, &file_path(charte)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        audit_entries(app.db(), "page.attachment_remove_request")
            .await
            .len(),
        1
    );
    let (_, queue) = text(&app, manager, "/spaces/rh/pending").await;
    assert!(queue.contains("Retrait demandé : charte.txt"), "{queue}");
    let keep = [("decision", "reject"), ("reason", "Toujours en vigueur")];
    let response = post_form(&app, manager, &files(charte), &keep).await;
    assert_eq!(
        response.headers()["location"],
        "/spaces/rh/pending?done=file-kept"
    );
    let (status, _) = text(&app, &reader, &file_path(charte)).await;
    assert_eq!(status, StatusCode::OK);
    post_form(&app, editor, &remove, &[]).await;
    let response = post_form(&app, manager, &files(charte), &approve).await;
    assert_eq!(
        response.headers()["location"],
        "/spaces/rh/pending?done=file-removed"
    );
    let (status, _) = text(&app, &reader, &file_path(charte)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let removed = audit_entries(app.db(), "page.attachment_remove").await;
    assert_eq!(details(removed.last().unwrap())["change"], "remove");

    // An editor's page deletion is a request too: the page stays online until approved.
    let response = post_form(&app, editor, "/spaces/rh/pages/teletravail/delete", &[]).await;
    assert_eq!(
        response.headers()["location"],
        "/spaces/rh/pending?done=deletion-requested"
    );
    let (status, _) = text(&app, &reader, "/spaces/rh/pages/teletravail").await;
    assert_eq!(status, StatusCode::OK);
    let (_, asked) = text(&app, editor, "/spaces/rh/pages/teletravail").await;
    assert!(asked.contains("Sa suppression a été demandée"), "{asked}");
    let page_id: i64 = app
        .count("SELECT id FROM space_pages WHERE slug = 'teletravail'")
        .await;
    let deletion = format!("/spaces/rh/pending-deletions/{page_id}");
    let response = post_form(&app, editor, &deletion, &approve).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = post_form(
        &app,
        manager,
        &deletion,
        &[("decision", "reject"), ("reason", "Non")],
    )
    .await;
    assert_eq!(
        response.headers()["location"],
        "/spaces/rh/pending?done=page-kept"
    );
    assert_eq!(audit_entries(app.db(), "page.delete_reject").await.len(), 1);
    post_form(&app, editor, "/spaces/rh/pages/teletravail/delete", &[]).await;
    let response = post_form(&app, manager, &deletion, &approve).await;
    assert_eq!(
        response.headers()["location"],
        "/spaces/rh/pending?done=page-deleted"
    );
    let (status, _) = text(&app, &reader, "/spaces/rh/pages/teletravail").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let deleted = audit_entries(app.db(), "page.delete").await;
    assert_eq!(deleted.len(), 1);
    assert!(details(&deleted[0])["requested_by"].is_number());
    assert_eq!(
        audit_entries(app.db(), "page.delete_request").await.len(),
        2
    );
}
