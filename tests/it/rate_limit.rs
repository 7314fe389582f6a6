//! Per-address rate limits answer 429 with Retry-After, as a page, and count in /metrics.

use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::{Backend, Options, spawn_app_with};

both_backends!(
    request_flood_trips_the_limit,
    sign_in_attempts_have_their_own_limit
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
