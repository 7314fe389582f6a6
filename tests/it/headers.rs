//! Security headers on every route of the route table, on static files, errors and redirects.

use reqwest::{Method, StatusCode};

use crate::both_backends;
use crate::helpers::{Backend, Options, TestApp, spawn_app_with};
use beffroi::http::middleware::security_headers::security_headers;

both_backends!(every_route_answers_with_the_security_headers);

fn assert_headers(response: &reqwest::Response, what: &str) {
    let csp = response
        .headers()
        .get("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no CSP"));
    assert_eq!(
        csp,
        &beffroi::http::middleware::security_headers::default_content_security_policy(),
        "{what}: CSP"
    );
    for (name, value) in security_headers() {
        let got = response
            .headers()
            .get(name.as_str())
            .unwrap_or_else(|| panic!("{what}: no {name}"));
        assert_eq!(got, value, "{what}: {name}");
    }
    assert!(
        response.headers().contains_key("x-request-id"),
        "{what}: no x-request-id"
    );
    assert!(
        response.headers().contains_key("cache-control"),
        "{what}: no cache-control"
    );
}

async fn walk(app: &TestApp, client: &reqwest::Client, label: &str) {
    let routes = beffroi::routes::list();
    assert!(
        routes.len() >= 10,
        "route table looks incomplete: {routes:?}"
    );
    for (path, method) in routes {
        let concrete = path
            .split('/')
            .map(|s| if s.starts_with('{') { "x" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        let request = client.request(
            Method::from_bytes(method.as_str().as_bytes()).unwrap(),
            app.url(&concrete),
        );
        let response = request.send().await.unwrap();
        assert!(
            response.status() != StatusCode::INTERNAL_SERVER_ERROR,
            "{label} {method} {path}"
        );
        assert_headers(
            &response,
            &format!("{label} {method} {path} ({})", response.status()),
        );
    }
}

async fn every_route_answers_with_the_security_headers(backend: Backend) {
    // Two walks over every route from one address outgrow the default burst as routes are
    // added; the rate limiter has its own tests.
    let options = Options {
        extra: "[security]\nrequests_per_second = 10000\nrequest_burst = 10000\n".into(),
        ..Options::default()
    };
    let app = spawn_app_with(backend, options).await;
    app.create_admin("alice", "a long enough password").await;
    let anonymous = app.client();
    walk(&app, &anonymous, "anonymous").await;
    let signed_in = app.client();
    app.sign_in(&signed_in, "alice", "a long enough password")
        .await;
    walk(&app, &signed_in, "signed in").await;

    for url in beffroi::http::static_files::all_asset_urls() {
        let r = anonymous.get(app.url(&url)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{url}");
        assert_eq!(
            r.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert!(
            !r.headers().contains_key("set-cookie"),
            "{url} sets a cookie"
        );
        assert_headers(&r, &url);
    }
    // Unhashed names are not served: only the content-addressed URL is cacheable forever.
    assert_eq!(
        anonymous
            .get(app.url("/static/app.css"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    for (method, path) in [
        (Method::GET, "/no/such/page"),
        (Method::DELETE, "/login"),
        (Method::GET, "/"),
    ] {
        let r = anonymous
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_headers(&r, &format!("{method} {path}"));
    }
}
