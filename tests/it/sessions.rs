//! Sign-in, sign-out, one-time passwords, idle and absolute expiry, backoff.

use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::{Backend, spawn_app};

both_backends!(
    sign_in_then_sign_out_revokes_the_session,
    one_time_password_must_be_changed_first,
    idle_and_absolute_timeouts_end_sessions,
    wrong_passwords_back_off_exponentially,
    unknown_and_disabled_accounts_are_refused_alike,
    return_path_is_kept_and_open_redirects_refused,
    weaker_password_hash_is_upgraded_at_sign_in,
    local_sign_in_can_be_turned_off,
    an_expired_one_time_password_is_refused,
    a_password_change_ends_the_other_sessions,
);

/// Changing the password ends every other session of the account, and only those (ASVS 3.3.3).
async fn a_password_change_ends_the_other_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin("alice", "a long enough password").await;
    let (here, laptop, phone) = (app.client(), app.client(), app.client());
    for client in [&here, &laptop, &phone] {
        app.sign_in(client, "alice", "a long enough password").await;
        assert_eq!(
            client.get(app.url("/")).send().await.unwrap().status(),
            StatusCode::OK
        );
    }
    let csrf = app.csrf_token(&here, "/account/password").await;
    let r = here
        .post(app.url("/account/password"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("current", "a long enough password"),
            ("new", "correct horse battery staple"),
            ("confirm", "correct horse battery staple"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // The browser that changed it stays signed in; the other two are sent to sign in.
    assert_eq!(
        here.get(app.url("/")).send().await.unwrap().status(),
        StatusCode::OK
    );
    for client in [&laptop, &phone] {
        let r = client.get(app.url("/")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()["location"], "/login");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 1);
    let changes = crate::helpers::audit_entries(app.db(), "auth.password_change").await;
    assert_eq!(changes.len(), 1);
    assert_eq!(
        crate::helpers::details(&changes[0])["other_sessions_ended"],
        2
    );
}

/// `recover-admin`'s password works for 24 hours only (ASVS 2.3.1).
async fn an_expired_one_time_password_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let otp = beffroi::cli::recover_admin(&app.config, app.db(), "admin")
        .await
        .unwrap();
    let otp = secrecy::ExposeSecret::expose_secret(&otp).to_owned();
    let expires_at: Option<i64> = beffroi::with_db!(app.db(), pool => sqlx::query_scalar(
        "SELECT password_expires_at FROM accounts").fetch_one(pool).await.unwrap());
    let in_a_day = beffroi::db::now() + 24 * 3600;
    let expires_at = expires_at.expect("a one-time password has an expiry");
    assert!(
        (in_a_day - 60..=in_a_day).contains(&expires_at),
        "{expires_at}"
    );

    // Printed a day and a second ago.
    app.exec("UPDATE accounts SET password_expires_at = password_expires_at - 86401")
        .await;
    let client = app.client();
    let r = app.sign_in(&client, "admin", &otp).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("mot de passe à usage unique a expiré"),
        "{body}"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);
    let failures = crate::helpers::audit_entries(app.db(), "auth.sign_in_failure").await;
    assert_eq!(failures.len(), 1);
    assert_eq!(
        crate::helpers::details(&failures[0])["reason"],
        "one_time_password_expired"
    );
    // A wrong password learns nothing about expiry.
    let r = app.sign_in(&client, "admin", "not-the-password").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body = r.text().await.unwrap();
    assert!(body.contains("Identifiant ou mot de passe incorrect") && !body.contains("expiré"));

    // A new one works, and leads to the password page.
    let otp = beffroi::cli::recover_admin(&app.config, app.db(), "admin")
        .await
        .unwrap();
    let otp = secrecy::ExposeSecret::expose_secret(&otp).to_owned();
    let r = app.sign_in(&client, "admin", &otp).await;
    assert_eq!(r.headers()["location"], "/account/password");
}

async fn local_sign_in_can_be_turned_off(backend: Backend) {
    let app = crate::helpers::spawn_app_with(
        backend,
        crate::helpers::Options {
            extra: "[local_sign_in]\nenabled = false\n".into(),
            ..Default::default()
        },
    )
    .await;
    app.create_admin("alice", "a long enough password").await;
    let client = app.client();
    let page = client
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("désactivée"), "{page}");
    assert!(!page.contains("name=\"password\""));
    let token = crate::helpers::extract_csrf(&page).unwrap();
    let r = client
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "alice"),
            ("password", "a long enough password"),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);
}

async fn weaker_password_hash_is_upgraded_at_sign_in(backend: Backend) {
    use argon2::PasswordHasher as _;
    let app = spawn_app(backend).await;
    let id = app.create_admin("alice", "a long enough password").await;
    // A hash made with older, weaker parameters (19 MiB, t=2, p=1).
    let weak = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(19 * 1024, 2, 1, None).unwrap(),
    )
    .hash_password_with_salt(b"a long enough password", b"0123456789abcdef")
    .unwrap()
    .to_string();
    let mut tx = app.db().begin().await.unwrap();
    beffroi::accounts::set_password_hash(&mut tx, id, &weak, false)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let r = app
        .sign_in(&app.client(), "alice", "a long enough password")
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let stored: String = beffroi::with_db!(app.db(), pool => sqlx::query_scalar(
        "SELECT password_hash FROM accounts").fetch_one(pool).await.unwrap());
    assert!(
        stored.starts_with("$argon2id$v=19$m=65536,t=3,p=4$"),
        "{stored}"
    );
    assert_eq!(
        app.sign_in(&app.client(), "alice", "a long enough password")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
}

async fn sign_in_then_sign_out_revokes_the_session(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin("alice", "a long enough password").await;
    let client = app.client();

    // Not signed in: the home page sends to the sign-in page.
    let r = client.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login");

    let r = app
        .sign_in(&client, "Alice", "a long enough password")
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-beffroi="))
        .expect("session cookie");
    for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    let token = cookie
        .trim_start_matches("__Host-beffroi=")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(token.len(), 64);
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 1);
    // Only the hash of the token is stored.
    let stored: String = beffroi::with_db!(app.db(), pool => sqlx::query_scalar("SELECT id_hash FROM sessions").fetch_one(pool).await.unwrap());
    assert_ne!(stored, token);
    assert_eq!(stored, beffroi::auth::session::hash_token(&token));

    let home = client.get(app.url("/")).send().await.unwrap();
    assert_eq!(home.status(), StatusCode::OK);
    assert!(home.text().await.unwrap().contains("Alice Admin"));

    let csrf = app.csrf_token(&client, "/").await;
    let r = client
        .post(app.url("/logout"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);

    // The old token is worthless even if replayed by hand.
    let replay = app.client_without_origin();
    let r = replay
        .get(app.url("/"))
        .header("cookie", format!("__Host-beffroi={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

async fn one_time_password_must_be_changed_first(backend: Backend) {
    let app = spawn_app(backend).await;
    let otp = beffroi::cli::recover_admin(&app.config, app.db(), "admin")
        .await
        .unwrap();
    let otp = secrecy::ExposeSecret::expose_secret(&otp).to_owned();
    let client = app.client();
    let r = app.sign_in(&client, "admin", &otp).await;
    assert_eq!(r.headers()["location"], "/account/password");
    // Any other page sends back to the password page until it is changed.
    let r = client.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/account/password");

    let csrf = app.csrf_token(&client, "/account/password").await;
    // Too short and mismatched: refused, nothing changed.
    let r = client
        .post(app.url("/account/password"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("current", otp.as_str()),
            ("new", "short"),
            ("confirm", "other"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.unwrap();
    assert!(body.contains("au moins 12 caractères"), "{body}");
    assert!(body.contains("ne sont pas identiques"), "{body}");

    let r = client
        .post(app.url("/account/password"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("current", otp.as_str()),
            ("new", "correct horse battery staple"),
            ("confirm", "correct horse battery staple"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        client.get(app.url("/")).send().await.unwrap().status(),
        StatusCode::OK
    );

    // The one-time password no longer works; the new one does.
    let other = app.client();
    assert_eq!(
        app.sign_in(&other, "admin", &otp).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let r = app
        .sign_in(&other, "admin", "correct horse battery staple")
        .await;
    assert_eq!(r.headers()["location"], "/");
}

async fn idle_and_absolute_timeouts_end_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin("alice", "a long enough password").await;
    let client = app.client();
    app.sign_in(&client, "alice", "a long enough password")
        .await;
    assert_eq!(
        client.get(app.url("/")).send().await.unwrap().status(),
        StatusCode::OK
    );

    // 31 minutes without use (idle timeout is 30): the session ends and its row goes.
    app.exec("UPDATE sessions SET last_seen_at = last_seen_at - 1860")
        .await;
    let r = client.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);

    // Active all along, but signed in more than 10 hours ago: ends too.
    app.sign_in(&client, "alice", "a long enough password")
        .await;
    assert_eq!(
        client.get(app.url("/")).send().await.unwrap().status(),
        StatusCode::OK
    );
    app.exec("UPDATE sessions SET expires_at = expires_at - 36001")
        .await;
    let r = client.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);
}

async fn wrong_passwords_back_off_exponentially(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin("alice", "a long enough password").await;
    let client = app.client();
    for _ in 0..2 {
        let r = app.sign_in(&client, "alice", "wrong").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("Identifiant ou mot de passe incorrect")
        );
    }
    // Third failure: locked for the base delay.
    let r = app.sign_in(&client, "alice", "wrong").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "2");
    // While locked, even the right password is not checked, and no session is made.
    let r = app
        .sign_in(&client, "alice", "a long enough password")
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);
    // Next failure after the lock doubles the delay.
    app.exec("UPDATE sign_in_backoff SET locked_until = 0")
        .await;
    let r = app.sign_in(&client, "alice", "wrong").await;
    assert_eq!(r.headers()["retry-after"], "4");
    // A success clears the record.
    app.exec("UPDATE sign_in_backoff SET locked_until = 0")
        .await;
    let r = app
        .sign_in(&client, "alice", "a long enough password")
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.count("SELECT COUNT(*) FROM sign_in_backoff").await, 0);

    // Old failures are forgiven: two days later, one failure does not lock.
    let client = app.client();
    for _ in 0..3 {
        app.exec("UPDATE sign_in_backoff SET locked_until = 0")
            .await;
        app.sign_in(&client, "alice", "wrong").await;
    }
    app.exec(
        "UPDATE sign_in_backoff SET locked_until = 0, last_failure_at = last_failure_at - 172800",
    )
    .await;
    let r = app.sign_in(&client, "alice", "wrong").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

async fn unknown_and_disabled_accounts_are_refused_alike(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin("alice", "a long enough password").await;
    app.exec("UPDATE accounts SET disabled = TRUE").await;
    let client = app.client();
    let disabled = app
        .sign_in(&client, "alice", "a long enough password")
        .await;
    let unknown = app
        .sign_in(&client, "nobody", "a long enough password")
        .await;
    assert_eq!(disabled.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let (a, b) = (
        disabled.text().await.unwrap(),
        unknown.text().await.unwrap(),
    );
    assert!(
        a.contains("Identifiant ou mot de passe incorrect")
            && b.contains("Identifiant ou mot de passe incorrect")
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);
}

async fn return_path_is_kept_and_open_redirects_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin("alice", "a long enough password").await;
    let client = app.client();
    let r = client
        .get(app.url("/account/password?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["location"],
        "/login?next=%2Faccount%2Fpassword%3Fx%3D1"
    );
    for (next, expected) in [
        ("/account/password?x=1", "/account/password?x=1"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
    ] {
        let c = app.client();
        let token = app.csrf_token(&c, "/login").await;
        let r = c
            .post(app.url("/login"))
            .form(&[
                ("csrf_token", token.as_str()),
                ("username", "alice"),
                ("password", "a long enough password"),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["location"], expected, "next={next}");
    }
}
