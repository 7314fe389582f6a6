//! Health, readiness and metrics, and who may read the metrics.

use std::os::unix::fs::PermissionsExt;

use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::{Backend, Options, spawn_app, spawn_app_with};

both_backends!(
    probes_and_metrics_report_the_truth,
    metrics_are_private,
    security_txt_is_served_from_the_config
);

/// `/.well-known/security.txt` carries the configured contact, anonymously, as plain text; an
/// instance without the section answers 404 instead of inventing one.
async fn security_txt_is_served_from_the_config(backend: Backend) {
    let bare = spawn_app(backend).await;
    let r = bare
        .client()
        .get(bare.url("/.well-known/security.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let app = spawn_app_with(
        backend,
        Options {
            server_extra: "public_url = \"https://intranet.example.gouv.fr\"\n".into(),
            extra: "[security_txt]\ncontact = [\"mailto:securite@example.gouv.fr\"]\n\
                    expires = \"2099-06-30T00:00:00Z\"\npreferred_languages = [\"fr\", \"en\"]\n"
                .into(),
            ..Options::default()
        },
    )
    .await;
    let r = app
        .client()
        .get(app.url("/.well-known/security.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    let text = r.text().await.unwrap();
    assert!(
        text.starts_with("Contact: mailto:securite@example.gouv.fr\n"),
        "{text}"
    );
    assert!(text.contains("Expires: 2099-06-30T00:00:00Z\n"));
    assert!(text.contains("Preferred-Languages: fr, en\n"));
    assert!(
        text.contains("Canonical: https://intranet.example.gouv.fr/.well-known/security.txt\n")
    );
}

async fn probes_and_metrics_report_the_truth(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client();
    assert_eq!(
        client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    app.sign_in(&client, "nobody", "wrong password").await;
    client.get(app.url("/nowhere")).send().await.unwrap();

    let text = client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            "beffroi_http_requests_total{route=\"/login\",method=\"POST\",status=\"401\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "beffroi_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "beffroi_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"+Inf\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("beffroi_sign_in_failures_total{reason=\"unknown_account\"} 1"),
        "{text}"
    );
    assert!(text.contains("beffroi_db_pool_connections "), "{text}");

    // A closed pool: not ready, while still alive.
    app.db().close().await;
    assert_eq!(
        client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
}

async fn metrics_are_private(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("metrics-token");
    std::fs::write(&token_file, "s3cret-metrics-token\n").unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let app = spawn_app_with(
        backend,
        Options {
            extra: format!(
                "[metrics]\nallow_from = [\"192.0.2.0/24\"]\nbearer_token_file = \"{}\"\n",
                token_file.display()
            ),
            ..Options::default()
        },
    )
    .await;
    let client = app.client();
    assert_eq!(
        client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    let r = client
        .get(app.url("/metrics"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = client
        .get(app.url("/metrics"))
        .bearer_auth("s3cret-metrics-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("# TYPE beffroi_http_requests_total counter")
    );
}
