//! An administrator replaces and removes another agent's photo: the upload is sniffed like the
//! agent's own, non-administrators are refused, and each change is audited with the photo's
//! hash before and after. Both backends.

use beffroi::directory::people;

use super::{PNG, get, multipart, organisation};
use crate::both_backends;
use crate::helpers::{Backend, TestApp, audit_entries, details};

both_backends!(administrators_replace_and_remove_an_agents_photo);

async fn upload(app: &TestApp, client: &reqwest::Client, account: i64, bytes: &[u8]) -> u16 {
    let edit = format!("/people/{account}/edit");
    let token = app.csrf_token(client, "/profile").await;
    let (content_type, body) = multipart(&token, &[], Some(("photo", bytes)));
    client
        .post(app.url(&format!("{edit}/photo")))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn administrators_replace_and_remove_an_agents_photo(backend: Backend) {
    let org = organisation(backend).await;
    let app = &org.app;
    let carol = org.carol.1;
    let admin = &org.admin.0;

    // Not an administrator: refused, nothing stored.
    assert_eq!(upload(app, &org.bob.0, carol, PNG).await, 403);
    // Markup passed off as a photo: refused by the sniffed type, with the message.
    let svg = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>";
    assert_eq!(upload(app, admin, carol, svg).await, 415);
    let mut big = PNG.to_vec();
    big.resize(2 * 1024 * 1024 + 1, 0);
    assert_eq!(upload(app, admin, carol, &big).await, 413);
    assert_eq!(
        people::raw_profile(app.db(), carol)
            .await
            .unwrap()
            .photo_sha256,
        None
    );
    assert!(
        audit_entries(app.db(), "directory.profile_update")
            .await
            .is_empty()
    );

    // A PNG: stored, served, audited with before and after.
    assert_eq!(upload(app, admin, carol, PNG).await, 303);
    let stored = people::raw_profile(app.db(), carol).await.unwrap();
    let sha = stored.photo_sha256.clone().expect("photo stored");
    assert_eq!(stored.photo_type.as_deref(), Some("png"));
    let response = org
        .alice
        .0
        .get(app.url(&format!("/people/{carol}/photo")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().as_ref(), PNG);
    let entries = audit_entries(app.db(), "directory.profile_update").await;
    assert_eq!(entries.len(), 1);
    let d = details(&entries[0]);
    assert_eq!(d["by"], "admin");
    assert_eq!(d["changes"]["photo"]["before"], serde_json::Value::Null);
    assert_eq!(d["changes"]["photo"]["after"], sha.as_str());
    assert_eq!(
        entries[0].target.as_deref(),
        Some(format!("account:{carol}").as_str())
    );
    let (_, form) = get(app, admin, &format!("/people/{carol}/edit")).await;
    assert!(form.contains(&format!("/people/{carol}/edit/photo/remove")));

    // Removal: gone, audited; a non-administrator cannot remove.
    let remove = format!("/people/{carol}/edit/photo/remove");
    let token = app.csrf_token(&org.bob.0, "/profile").await;
    let refused = org
        .bob
        .0
        .post(app.url(&remove))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let token = app.csrf_token(admin, "/profile").await;
    let removed = admin
        .post(app.url(&remove))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 303);
    assert_eq!(
        people::raw_profile(app.db(), carol)
            .await
            .unwrap()
            .photo_sha256,
        None
    );
    let entries = audit_entries(app.db(), "directory.profile_update").await;
    assert_eq!(entries.len(), 2);
    let d = details(&entries[1]);
    assert_eq!(d["changes"]["photo"]["before"], sha.as_str());
    assert_eq!(d["changes"]["photo"]["after"], serde_json::Value::Null);
    let (status, _) = get(app, &org.alice.0, &format!("/people/{carol}/photo")).await;
    assert_eq!(status, 404);
}
