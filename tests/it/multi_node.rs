//! Two nodes on one PostgreSQL database, as deploy/MULTI-NODE.md describes them behind a load
//! balancer: a session opened through one is honoured by the other, a sign-out on one ends it on
//! both, a mandatory read confirmed on one is confirmed everywhere, and audit entries written
//! by both at once keep one unbroken, verifiable chain, and sign-in attempts spread over both
//! count against one allowance. PostgreSQL only: SQLite is one node.

use std::sync::Arc;

use beffroi::accounts::Role;
use beffroi::audit::store::NewEntry;
use beffroi::server::{RunningServer, start};
use reqwest::StatusCode;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use secrecy::ExposeSecret;

use crate::helpers::{Backend, Options, spawn_app, test_config};

/// A second node: its own data directory (TLS certificate, scratch files) on the first node's
/// database, with the first node's audit checkpoint key copied over as the guide says.
async fn second_node(
    app: &crate::helpers::TestApp,
) -> (RunningServer, String, std::path::PathBuf, tempfile::TempDir) {
    second_node_with(app, &Options::default()).await
}

/// [`second_node`] with configuration `options` (the first node's, for a consistent cluster).
async fn second_node_with(
    app: &crate::helpers::TestApp,
    options: &Options,
) -> (RunningServer, String, std::path::PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    for shared in ["audit-checkpoint-key.pk8", "instance-id"] {
        let from = app.data_dir.join(shared);
        if from.exists() {
            std::fs::copy(&from, data_dir.join(shared)).unwrap();
        }
    }
    let config = test_config(&data_dir, &app._db, options);
    let db = beffroi::db::Database::connect(&config).await.unwrap();
    let server = start(config, db).await.unwrap();
    let base = format!("https://127.0.0.1:{}", server.addr.port());
    let cert = data_dir.join("tls").join("cert.pem");
    (server, base, cert, dir)
}

/// A client that trusts both nodes' certificates and sends `token` as its session cookie.
fn client_with_session(certs: &[&std::path::Path], token: &str, origin: &str) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    for path in certs {
        for cert in CertificateDer::pem_file_iter(path).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    let tls =
        rustls::ClientConfig::builder_with_provider(Arc::new(beffroi::tls::crypto_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::COOKIE,
        format!("{}={token}", beffroi::auth::session::SESSION_COOKIE)
            .parse()
            .unwrap(),
    );
    headers.insert(reqwest::header::ORIGIN, origin.parse().unwrap());
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

fn csrf(page: &str) -> String {
    crate::helpers::extract_csrf(page).unwrap_or_else(|| panic!("no csrf token in {page}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_sessions_sign_outs_receipts_and_one_audit_chain() {
    let a = spawn_app(Backend::Postgres).await;
    let (b_server, b_base, b_cert, _b_dir) = second_node(&a).await;

    let camille = a
        .create_account(
            "camille",
            "Camille Martin",
            &[Role::Agent],
            "unused-password-123",
        )
        .await;
    let mut tx = a.db().begin().await.unwrap();
    let (token, _) = beffroi::auth::session::create(
        &mut tx,
        camille,
        "127.0.0.1",
        None,
        a.server.state.timeouts,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let token = token.expose_secret().to_owned();
    let a_cert = a.cert_path();
    let on_a = client_with_session(&[&a_cert, &b_cert], &token, &a.base);
    let on_b = client_with_session(&[&a_cert, &b_cert], &token, &b_base);

    // The session opened on A is good on B: a load balancer need not be sticky.
    for (client, base) in [(&on_a, &a.base), (&on_b, &b_base)] {
        let r = client.get(format!("{base}/")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{base}");
        assert!(r.text().await.unwrap().contains("Camille Martin"));
    }

    // A mandatory read published through A, confirmed through B, is confirmed on A.
    let space = beffroi::spaces::create_space(
        a.db(),
        &beffroi::spaces::NewSpace {
            slug: "rh",
            name: "RH",
            description: "",
            visibility: beffroi::spaces::Visibility::Public,
            approval_required: false,
            audience: &[beffroi::audience::Rule::Everyone],
        },
    )
    .await
    .unwrap();
    let (editor, editor_id) = a.signed_in_as("hugo", &[Role::Agent, Role::Editor]).await;
    beffroi::spaces::set_member(a.db(), space, editor_id, beffroi::spaces::SpaceRole::Editor)
        .await
        .unwrap();
    let id = crate::news::create_news(
        &a,
        &editor,
        space,
        &[
            ("title", "Consignes d'évacuation"),
            ("body", "À lire."),
            ("ack_required", "1"),
            ("ack_deadline", "2099-01-31T12:00"),
            ("audience", "everyone"),
            ("intent", "publish"),
        ],
    )
    .await;
    let wall_b = on_b
        .get(format!("{b_base}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let version = wall_b
        .split("name=\"version\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no acknowledgement form on B's wall: {wall_b}"))
        .to_owned();
    let r = on_b
        .post(format!("{b_base}/news/{id}/ack"))
        .form(&[
            ("csrf_token", csrf(&wall_b).as_str()),
            ("version", version.as_str()),
            ("from", "wall"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let item_a = on_a
        .get(a.url(&format!("/news/{id}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(item_a.contains("Vous avez confirmé la lecture"), "{item_a}");

    // Audit entries from both nodes at once: one chain, no gap, no fork.
    let before = crate::helpers::audit_entries(a.db(), "access.denied")
        .await
        .len();
    let mut writers = Vec::new();
    for (n, state) in [a.server.state.clone(), b_server.state.clone()]
        .into_iter()
        .enumerate()
    {
        for i in 0..25 {
            let state = state.clone();
            writers.push(tokio::spawn(async move {
                state
                    .audit
                    .append(NewEntry {
                        actor_id: None,
                        actor_name: None,
                        actor_ip: Some("192.0.2.1".into()),
                        request_id: None,
                        action: "access.denied",
                        target: Some(format!("node{n}/{i}")),
                        outcome: "failure",
                        details: serde_json::json!({ "path": "/admin", "test": "two nodes" }),
                    })
                    .await
                    .unwrap();
            }));
        }
    }
    for w in writers {
        w.await.unwrap();
    }
    let after = crate::helpers::audit_entries(a.db(), "access.denied")
        .await
        .len();
    assert_eq!(after - before, 50, "every entry of both nodes is kept");
    let report = beffroi::audit::verify::verify(a.db(), None).await.unwrap();
    assert!(report.entries >= 50);

    // A sign-out on B ends the session on A too.
    let home_b = on_b
        .get(format!("{b_base}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = on_b
        .post(format!("{b_base}/logout"))
        .form(&[("csrf_token", csrf(&home_b).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = on_a.get(a.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "signed out everywhere");
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login"),
        "{:?}",
        r.headers()["location"]
    );
    b_server.shutdown().await;
}

/// A browser of node `base`: keeps cookies, trusts both nodes, sends `base` as its Origin.
fn browser(certs: &[&std::path::Path], base: &str) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    for path in certs {
        for cert in CertificateDer::pem_file_iter(path).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    let tls =
        rustls::ClientConfig::builder_with_provider(Arc::new(beffroi::tls::crypto_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::ORIGIN, base.parse().unwrap());
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .default_headers(headers)
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap()
}

/// One wrong-password sign-in through the form of node `base`; its response.
async fn wrong_sign_in(client: &reqwest::Client, base: &str) -> reqwest::Response {
    let page = client
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    client
        .post(format!("{base}/login"))
        .form(&[
            ("csrf_token", csrf(&page).as_str()),
            ("username", "nobody"),
            ("password", "wrong password"),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_sign_in_allowance() {
    const ALLOWANCE: usize = 4;
    let options = Options {
        extra: format!(
            "[security]\nsign_in_attempts_per_minute = {ALLOWANCE}\nbackoff_free_failures = 100\n"
        ),
        ..Options::default()
    };
    let a = crate::helpers::spawn_app_with(
        Backend::Postgres,
        Options {
            extra: options.extra.clone(),
            ..Options::default()
        },
    )
    .await;
    let (b_server, b_base, b_cert, _b_dir) = second_node_with(&a, &options).await;
    let a_cert = a.cert_path();
    let certs = [a_cert.as_path(), b_cert.as_path()];

    // Ten attempts from one address at once, five through each node. Counted per node, each
    // would let four through (eight in all); counted once, exactly four get an answer on the
    // password and the others 429.
    let mut attempts = Vec::new();
    for i in 0..10 {
        let base = if i % 2 == 0 {
            a.base.clone()
        } else {
            b_base.clone()
        };
        let client = browser(&certs, &base);
        attempts.push(tokio::spawn(async move {
            (base.clone(), wrong_sign_in(&client, &base).await.status())
        }));
    }
    let mut let_through = Vec::new();
    for attempt in attempts {
        let (base, status) = attempt.await.unwrap();
        match status {
            StatusCode::UNAUTHORIZED => let_through.push(base),
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other} from {base}"),
        }
    }
    assert_eq!(let_through.len(), ALLOWANCE, "let through: {let_through:?}");
    let (count, _) = crate::rate_limit::sign_in_count(a.db(), "127.0.0.1")
        .await
        .unwrap();
    assert_eq!(count, 10, "every attempt of both nodes is in the one count");

    // Either node refuses the next one, saying when the window ends.
    for base in [&a.base, &b_base] {
        let r = wrong_sign_in(&browser(&certs, base), base).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{base}");
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "{base}: retry-after {retry}");
    }

    // Once the window has passed (moved into the past, not waited for), both let it in again.
    crate::rate_limit::age_sign_in_window(a.db(), "127.0.0.1").await;
    for base in [&b_base, &a.base] {
        let r = wrong_sign_in(&browser(&certs, base), base).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{base}");
    }
    assert_eq!(
        crate::rate_limit::sign_in_count(a.db(), "127.0.0.1")
            .await
            .unwrap()
            .0,
        2
    );
    b_server.shutdown().await;
}
