//! Agents see and end their own sessions; administrators see and end anyone's (ASVS 3.3.4).
//! Sessions are named by a handle that is neither the cookie token nor its hash, and a handle is
//! only looked up among the sessions of the account the page is about.

use beffroi::accounts::Role;
use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, audit_entries, details, spawn_app};

both_backends!(
    agents_end_their_other_sessions,
    a_guessed_or_foreign_session_cannot_be_ended,
    administrators_list_and_revoke_an_accounts_sessions,
);

const PASSWORD: &str = "correct-horse-battery-staple-42";

/// The handles in the end buttons of a page whose forms post to `{prefix}{handle}/end`.
fn handles(page: &str, prefix: &str) -> Vec<String> {
    let marker = format!("action=\"{prefix}");
    page.match_indices(&marker)
        .map(|(at, _)| page[at + marker.len()..at + marker.len() + 16].to_owned())
        // The "end all" form shares the prefix.
        .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect()
}

async fn page(app: &TestApp, client: &reqwest::Client, path: &str) -> String {
    let r = client.get(app.url(path)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.text().await.unwrap()
}

async fn signed_in(app: &TestApp, client: &reqwest::Client) -> bool {
    client.get(app.url("/")).send().await.unwrap().status() == StatusCode::OK
}

async fn session_hashes(app: &TestApp) -> Vec<String> {
    beffroi::with_db!(app.db(), pool => sqlx::query_scalar("SELECT id_hash FROM sessions")
        .fetch_all(pool).await.unwrap())
}

async fn agents_end_their_other_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    let (laptop, id) = app.signed_in_as("erin", &[Role::Agent]).await;
    let phone = app.client();
    app.sign_in(&phone, "erin", PASSWORD).await;
    let tablet = app.client();
    app.sign_in(&tablet, "erin", PASSWORD).await;

    let listing = page(&app, &laptop, "/account/sessions").await;
    assert_eq!(listing.matches("Cette session").count(), 1, "{listing}");
    assert!(listing.contains("127.0.0.1"));
    let others = handles(&listing, "/account/sessions/");
    assert_eq!(others.len(), 2, "{listing}");
    // Neither a token nor a stored hash appears in the page.
    for hash in session_hashes(&app).await {
        assert!(!listing.contains(&hash));
    }

    // End one of them.
    let phone_handle = others[0].clone();
    let csrf = app.csrf_token(&laptop, "/account/sessions").await;
    let r = laptop
        .post(app.url(&format!("/account/sessions/{phone_handle}/end")))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/account/sessions?ended=1");
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 2);
    let still = [
        signed_in(&app, &phone).await,
        signed_in(&app, &tablet).await,
    ];
    assert_eq!(
        still.iter().filter(|s| **s).count(),
        1,
        "one of the two ended"
    );
    assert!(signed_in(&app, &laptop).await);
    let entries = audit_entries(app.db(), "auth.session_revoke").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].actor_id, Some(id));
    assert_eq!(
        entries[0].target.as_deref(),
        Some(format!("account:{id}").as_str())
    );
    let d = details(&entries[0]);
    assert_eq!(d["scope"], "one");
    assert_eq!(d["by"], "self");
    assert_eq!(d["session"], phone_handle.as_str());
    assert_eq!(d["sessions_ended"], 1);

    // End all the others: only the laptop is left.
    let r = laptop
        .post(app.url("/account/sessions/end-others"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(!signed_in(&app, &phone).await && !signed_in(&app, &tablet).await);
    assert!(signed_in(&app, &laptop).await);
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 1);
    let entries = audit_entries(app.db(), "auth.session_revoke").await;
    assert_eq!(entries.len(), 2);
    assert_eq!(details(&entries[1])["scope"], "others");
    assert_eq!(details(&entries[1])["sessions_ended"], 1);
    let listing = page(&app, &laptop, "/account/sessions?ended=1").await;
    assert!(listing.contains("Sessions terminées"), "{listing}");
    assert!(handles(&listing, "/account/sessions/").is_empty());
}

async fn a_guessed_or_foreign_session_cannot_be_ended(backend: Backend) {
    let app = spawn_app(backend).await;
    let (mallory, _) = app.signed_in_as("mallory", &[Role::Agent]).await;
    let mallory_hash = session_hashes(&app).await.remove(0);
    let (victim, _) = app.signed_in_as("victor", &[Role::Agent]).await;
    let victim_hash = session_hashes(&app)
        .await
        .into_iter()
        .find(|h| *h != mallory_hash)
        .unwrap();
    let csrf = app.csrf_token(&mallory, "/account/sessions").await;
    let victim_handle = beffroi::auth::session::handle(&victim_hash);
    // The victim's real handle, its stored hash, a prefix of it, a guess: none names a session
    // of Mallory's account, so each is "not found" and nothing ends.
    for guess in [
        victim_handle.clone(),
        victim_hash.clone(),
        victim_hash[..16].to_owned(),
        "0000000000000000".to_owned(),
    ] {
        let r = mallory
            .post(app.url(&format!("/account/sessions/{guess}/end")))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{guess}");
    }
    assert!(signed_in(&app, &victim).await);
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 2);
    assert!(
        audit_entries(app.db(), "auth.session_revoke")
            .await
            .is_empty()
    );
    // Nor does an agent reach the administrators' form.
    let r = mallory
        .post(app.url(&format!(
            "/admin/sessions/{}/{victim_handle}/end",
            beffroi::with_db!(app.db(), pool => sqlx::query_scalar::<_, i64>(
                "SELECT account_id FROM sessions WHERE id_hash = $1").bind(&victim_hash)
                .fetch_one(pool).await.unwrap())
        )))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(signed_in(&app, &victim).await);
    // The handle is no credential: presented as a cookie it opens nothing.
    let replay = app.client_without_origin();
    for fake in [victim_handle.as_str(), victim_hash.as_str()] {
        let r = replay
            .get(app.url("/"))
            .header("cookie", format!("__Host-beffroi={fake}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{fake}");
    }
}

async fn administrators_list_and_revoke_an_accounts_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, admin_id) = app.signed_in_as("ada", &[Role::Admin]).await;
    let (desk, agent_id) = app.signed_in_as("frank", &[Role::Agent]).await;
    let home = app.client();
    app.sign_in(&home, "frank", PASSWORD).await;

    let index = page(&app, &admin, "/admin/sessions").await;
    assert!(
        index.contains(&format!("href=\"/admin/sessions/{agent_id}\">frank<")),
        "{index}"
    );
    let prefix = format!("/admin/sessions/{agent_id}/");
    let listing = page(&app, &admin, &format!("/admin/sessions/{agent_id}")).await;
    let found = handles(&listing, &prefix);
    assert_eq!(found.len(), 2, "{listing}");
    assert!(!listing.contains("Cette session"), "not the admin's own");

    let csrf = app.csrf_token(&admin, "/admin/sessions").await;
    let r = admin
        .post(app.url(&format!("{prefix}{}/end", found[0])))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        [signed_in(&app, &desk).await, signed_in(&app, &home).await]
            .iter()
            .filter(|s| **s)
            .count(),
        1
    );
    let r = admin
        .post(app.url(&format!("/admin/sessions/{agent_id}/end-all")))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(!signed_in(&app, &desk).await && !signed_in(&app, &home).await);
    assert!(
        signed_in(&app, &admin).await,
        "the administrator's own session stays"
    );
    let entries = audit_entries(app.db(), "auth.session_revoke").await;
    assert_eq!(entries.len(), 2);
    for (entry, scope) in entries.iter().zip(["one", "all"]) {
        assert_eq!(entry.actor_id, Some(admin_id));
        assert_eq!(
            entry.target.as_deref(),
            Some(format!("account:{agent_id}").as_str())
        );
        assert_eq!(details(entry)["by"], "admin");
        assert_eq!(details(entry)["scope"], scope);
        assert_eq!(details(entry)["sessions_ended"], 1);
    }
    // An unknown account is a 404.
    let r = admin
        .get(app.url("/admin/sessions/999999"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
