//! Per-address rate limits answer 429 with Retry-After, as a page, and count in /metrics.
//! Sign-in attempts are counted in the database (the allowance every node shares; the two-node
//! case is in `multi_node`).

use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::{Backend, Options, spawn_app_with};

both_backends!(
    request_flood_trips_the_limit,
    sign_in_attempts_have_their_own_limit,
    every_sign_in_path_counts_in_the_database_and_a_passed_window_lets_the_address_in,
);

async fn request_flood_trips_the_limit(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            extra: "[security]\nrequests_per_second = 1\nrequest_burst = 5\n".into(),
            ..Options::default()
        },
    )
    .await;
    let client = app.client();
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(client.get(app.url("/login")).send().await.unwrap());
    }
    let limited = statuses
        .iter()
        .position(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
        .expect("no 429 after 8 requests");
    assert!(limited >= 4, "limited too early: request {limited}");
    let r = statuses.swap_remove(limited);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "retry-after {retry}");
    assert!(r.text().await.unwrap().contains("Trop de requêtes"));
    let metrics = client.get(app.url("/metrics")).send().await;
    // /metrics itself may be limited now; read the counter from the state instead.
    drop(metrics);
    let text = app.server.state.metrics.render((0, 0));
    assert!(
        text.contains("beffroi_rate_limited_total{scope=\"general\"}"),
        "{text}"
    );
}

async fn sign_in_attempts_have_their_own_limit(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            extra: "[security]\nsign_in_attempts_per_minute = 2\nbackoff_free_failures = 100\n"
                .into(),
            ..Options::default()
        },
    )
    .await;
    let client = app.client();
    let mut last = None;
    for n in 0..3 {
        let r = app
            .sign_in(&client, &format!("user{n}"), "wrong password")
            .await;
        last = Some(r.status());
        if n < 2 {
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        } else {
            assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
            let retry: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&retry), "retry-after {retry}");
        }
    }
    assert_eq!(last, Some(StatusCode::TOO_MANY_REQUESTS));
    // Other pages stay reachable: the sign-in limit is separate.
    assert_eq!(
        client.get(app.url("/login")).send().await.unwrap().status(),
        StatusCode::OK
    );
}

/// The shared count of an address, as the database holds it: (attempts, window start).
pub async fn sign_in_count(db: &beffroi::db::Database, key: &str) -> Option<(i64, i64)> {
    beffroi::with_db!(db, pool => sqlx::query_as::<_, (i64, i64)>(
        "SELECT attempts, window_start FROM sign_in_attempts WHERE client_key = $1"
    ).bind(key).fetch_optional(pool).await.unwrap())
}

/// Moves the window of `key` a minute and a second into the past, as if it had opened then.
pub async fn age_sign_in_window(db: &beffroi::db::Database, key: &str) {
    let moved = beffroi::with_db!(db, pool => sqlx::query(
        "UPDATE sign_in_attempts SET window_start = window_start - 61 WHERE client_key = $1"
    ).bind(key).execute(pool).await.unwrap().rows_affected());
    assert_eq!(moved, 1, "no count for {key}");
}

async fn every_sign_in_path_counts_in_the_database_and_a_passed_window_lets_the_address_in(
    backend: Backend,
) {
    let app = spawn_app_with(
        backend,
        Options {
            extra: "[security]\nsign_in_attempts_per_minute = 4\nbackoff_free_failures = 100\n"
                .into(),
            ..Options::default()
        },
    )
    .await;
    let client = app.client();
    // Pages are not attempts: nothing is counted for reading the form.
    let token = app.csrf_token(&client, "/login").await;
    assert_eq!(sign_in_count(app.db(), "127.0.0.1").await, None);

    let r = app.sign_in(&client, "nobody", "wrong password").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sign_in_count(app.db(), "127.0.0.1").await.unwrap().0, 1);
    // The password change checks a password: it uses the same allowance, whatever it answers
    // (no session here). The single sign-on callback checks none and is not counted.
    let r = client
        .post(app.url("/account/password"))
        .form(&[("csrf_token", token.as_str()), ("current", "guess")])
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let r = client
        .get(app.url("/auth/oidc/callback?code=x&state=y"))
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(sign_in_count(app.db(), "127.0.0.1").await.unwrap().0, 2);
    for n in 3..=4 {
        let r = app.sign_in(&client, "nobody", "wrong password").await;
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "attempt {n} is allowed"
        );
    }

    let r = app.sign_in(&client, "nobody", "wrong password").await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the fifth is not"
    );
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "retry-after {retry}");
    let (attempts, window_start) = sign_in_count(app.db(), "127.0.0.1").await.unwrap();
    assert_eq!(attempts, 5);
    let trips = crate::helpers::audit_entries(app.db(), "security.rate_limited").await;
    assert_eq!(trips.len(), 1, "{trips:?}");
    assert_eq!(crate::helpers::details(&trips[0])["scope"], "sign_in");
    assert_eq!(trips[0].actor_ip.as_deref(), Some("127.0.0.1"));

    // The window passes (moved into the past rather than waited for): the address is let in
    // again, with a fresh count in a new window.
    age_sign_in_window(app.db(), "127.0.0.1").await;
    let r = app.sign_in(&client, "nobody", "wrong password").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "a new window");
    let (attempts, new_start) = sign_in_count(app.db(), "127.0.0.1").await.unwrap();
    assert_eq!(attempts, 1);
    assert!(new_start >= window_start, "{new_start} vs {window_start}");

    // The periodic purge deletes passed windows and keeps current ones.
    let now = beffroi::db::now();
    assert_eq!(
        beffroi::auth::sign_in_limit::purge_expired(app.db(), now)
            .await
            .unwrap(),
        0
    );
    age_sign_in_window(app.db(), "127.0.0.1").await;
    assert_eq!(
        beffroi::auth::sign_in_limit::purge_expired(app.db(), now)
            .await
            .unwrap(),
        1
    );
    assert_eq!(sign_in_count(app.db(), "127.0.0.1").await, None);
}
