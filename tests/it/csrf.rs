//! CSRF: a state-changing request without the session's token, or from another origin, is
//! refused with 403 and changes nothing.

use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::{Backend, spawn_app};

both_backends!(
    forged_requests_are_refused_and_change_nothing,
    sign_in_form_needs_its_pre_session_token
);

async fn locale(app: &crate::helpers::TestApp) -> Option<String> {
    beffroi::with_db!(app.db(), pool => sqlx::query_scalar::<_, Option<String>>("SELECT locale FROM accounts").fetch_one(pool).await.unwrap())
}

async fn forged_requests_are_refused_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin("alice", "a long enough password").await;
    let client = app.client();
    app.sign_in(&client, "alice", "a long enough password")
        .await;
    let token = app.csrf_token(&client, "/").await;

    // No token, a wrong token, a foreign origin, no origin at all: 403 each time, as a page.
    let cases: Vec<(reqwest::RequestBuilder, &str)> = vec![
        (
            client.post(app.url("/language")).form(&[("lang", "en")]),
            "missing token",
        ),
        (
            client
                .post(app.url("/language"))
                .form(&[("csrf_token", "0".repeat(64).as_str()), ("lang", "en")]),
            "wrong token",
        ),
        (
            client
                .post(app.url("/language"))
                .header("origin", "https://evil.example")
                .form(&[("csrf_token", token.as_str()), ("lang", "en")]),
            "foreign origin",
        ),
        (
            client
                .post(app.url("/language"))
                .header("origin", "null")
                .form(&[("csrf_token", token.as_str()), ("lang", "en")]),
            "null origin",
        ),
    ];
    for (request, why) in cases {
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{why}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{why}"
        );
        assert!(
            r.text().await.unwrap().contains("Le formulaire a expiré"),
            "{why}"
        );
        assert_eq!(locale(&app).await, None, "{why} changed the locale");
    }
    let no_origin = app.client_without_origin();
    let r = no_origin
        .post(app.url("/logout"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions").await,
        1,
        "sign-out without Origin must not sign out"
    );

    // The real form, from this origin with the token, works.
    let r = client
        .post(app.url("/language"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("lang", "en"),
            ("return_to", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(locale(&app).await.as_deref(), Some("en"));
    let home = client
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains("<html lang=\"en\">"));
    assert!(home.contains("Hello Alice Admin!"));
}

async fn sign_in_form_needs_its_pre_session_token(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin("alice", "a long enough password").await;
    let client = app.client();
    // A login CSRF: posting credentials without having loaded the form.
    let r = client
        .post(app.url("/login"))
        .form(&[
            ("username", "alice"),
            ("password", "a long enough password"),
            ("csrf_token", &"a".repeat(64)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);
    // The pre-session cookie is __Host- and goes away at sign-in (the token rotates).
    let client = app.client();
    let r = client.get(app.url("/login")).send().await.unwrap();
    let set = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    assert!(
        set.iter().any(|c| c.starts_with("__Host-beffroi-csrf=")
            && c.contains("Secure")
            && c.contains("HttpOnly")),
        "{set:?}"
    );
    let before = crate::helpers::extract_csrf(&r.text().await.unwrap()).unwrap();
    app.sign_in(&client, "alice", "a long enough password")
        .await;
    let after = app.csrf_token(&client, "/").await;
    assert_ne!(before, after);
}
