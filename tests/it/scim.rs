//! SCIM provisioning as the agency's directory uses it: agents and groups pushed, changed and
//! removed over `/scim/v2` with a bearer token; a deactivated agent's sessions end at once and
//! their SSO sign-in is refused; every refusal is a SCIM JSON error and writes nothing.

use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, Options, TestApp, spawn_app, spawn_app_with};
use crate::idp::{Idp, SsoOptions, spawn_sso_app};

both_backends!(
    users_are_created_read_filtered_replaced_and_patched,
    uniqueness_and_bad_requests_are_refused_and_change_nothing,
    bad_token_unknown_endpoint_and_wrong_method_answer_scim_json,
    invalid_filters_are_refused,
    deactivation_ends_sessions_at_once_and_delete_keeps_the_account,
    groups_set_membership_and_roles,
    provisioned_agent_signs_in_by_sso_until_deactivated,
    without_scim_config_the_endpoints_do_not_exist,
);

const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// A token file (chmod 600) in a directory kept for the test's lifetime.
fn token_file() -> (String, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let token = beffroi::auth::session::random_token().unwrap();
    let dir = tempfile::tempdir().unwrap().keep();
    let path = dir.join("scim-token");
    std::fs::write(&path, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (token, path)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A SCIM client of one Beffroi instance: the directory's side.
struct Scim<'a> {
    app: &'a TestApp,
    token: &'a str,
    http: reqwest::Client,
}

/// Beffroi with `[scim]` and an `[oidc]` section whose provider is never contacted; returns
/// the app and the bearer token.
async fn spawn_scim_app(backend: Backend) -> (TestApp, String) {
    use std::os::unix::fs::PermissionsExt;
    let (token, token_path) = token_file();
    let secret = token_path.with_file_name("oidc-secret");
    std::fs::write(&secret, "unused\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let port = free_port();
    let app = spawn_app_with(
        backend,
        Options {
            server_extra: format!(
                "listen = \"127.0.0.1:{port}\"\npublic_url = \"https://127.0.0.1:{port}\"\n\
                 max_body_bytes = 65536\n"
            ),
            extra: format!(
                "[oidc]\nissuer = \"http://127.0.0.1:9\"\nclient_id = \"beffroi\"\n\
                 client_secret_file = \"{}\"\nadmin_groups = [\"admins\"]\n\
                 [scim]\ntoken_file = \"{}\"\n",
                secret.display(),
                token_path.display()
            ),
            ..Options::default()
        },
    )
    .await;
    (app, token)
}

impl<'a> Scim<'a> {
    fn new(app: &'a TestApp, token: &'a str) -> Self {
        Scim {
            app,
            token,
            http: app.client_without_origin(),
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.app.url(&format!("/scim/v2{path}")))
            .bearer_auth(self.token)
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut r = self.request(method, path);
        if let Some(body) = body {
            r = r
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        let response = r.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        (status, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::PUT, path, Some(body)).await
    }

    async fn patch(&self, path: &str, ops: Value) -> (StatusCode, Value) {
        self.send(
            Method::PATCH,
            path,
            Some(json!({"schemas": [PATCH_URN], "Operations": ops})),
        )
        .await
    }

    async fn delete(&self, path: &str) -> StatusCode {
        self.send(Method::DELETE, path, None).await.0
    }

    /// Creates a User and returns its id.
    async fn create_user(&self, body: Value) -> String {
        let (status, user) = self.post("/Users", body).await;
        assert_eq!(status, StatusCode::CREATED, "{user}");
        user["id"].as_str().unwrap().to_owned()
    }

    async fn account_of(&self, subject: &str) -> (i64, String, Option<String>, bool) {
        beffroi::with_db!(self.app.db(), pool => sqlx::query_as::<_, (i64, String, Option<String>, bool)>(
            "SELECT id, display_name, email, disabled FROM accounts WHERE subject = $1"
        ).bind(subject).fetch_one(pool).await.unwrap())
    }
}

fn assert_scim_error(
    status: StatusCode,
    body: &Value,
    expected: StatusCode,
    scim_type: Option<&str>,
) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["schemas"], json!([ERROR_URN]), "{body}");
    assert_eq!(
        body["status"],
        json!(expected.as_u16().to_string()),
        "{body}"
    );
    assert_eq!(body["scimType"].as_str(), scim_type, "{body}");
}

/// Row counts of everything a SCIM request could write.
async fn snapshot(app: &TestApp) -> (i64, i64, i64, i64) {
    (
        app.count("SELECT COUNT(*) FROM accounts").await,
        app.count("SELECT COUNT(*) FROM scim_users").await,
        app.count("SELECT COUNT(*) FROM groups").await,
        app.count("SELECT COUNT(*) FROM account_groups").await,
    )
}

async fn sessions_of(app: &TestApp, account_id: i64) -> i64 {
    beffroi::with_db!(app.db(), pool => sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM sessions WHERE account_id = $1"
    ).bind(account_id).fetch_one(pool).await.unwrap())
}

async fn roles_of(app: &TestApp, account_id: i64) -> Vec<String> {
    beffroi::with_db!(app.db(), pool => sqlx::query_scalar::<_, String>(
        "SELECT role FROM account_roles WHERE account_id = $1 ORDER BY role"
    ).bind(account_id).fetch_all(pool).await.unwrap())
}

async fn groups_of(app: &TestApp, account_id: i64) -> Vec<String> {
    beffroi::auth::oidc::store::groups_of(app.db(), account_id)
        .await
        .unwrap()
}

async fn users_are_created_read_filtered_replaced_and_patched(backend: Backend) {
    let (app, token) = spawn_scim_app(backend).await;
    let scim = Scim::new(&app, &token);
    let r = scim
        .request(Method::POST, "/Users")
        .header("content-type", "application/scim+json")
        .body(
            json!({
                "schemas": [USER_URN],
                "userName": "jdupont",
                "externalId": "HR-0042",
                "name": {"givenName": "Jeanne", "familyName": "Dupont"},
                "emails": [{"value": "jeanne.dupont@interieur.gouv.fr", "type": "work", "primary": true}],
                "active": true
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["content-type"], "application/scim+json");
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let user: Value = r.json().await.unwrap();
    let id = user["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("{}/scim/v2/Users/{id}", scim.app.base));
    assert_eq!(user["meta"]["location"], json!(location));
    assert_eq!(user["meta"]["resourceType"], "User");
    assert_eq!(user["userName"], "jdupont");
    assert_eq!(user["active"], true);

    // The account Beffroi uses is an SSO account keyed by (issuer, userName).
    let (account_id, display_name, email, disabled) = scim.account_of("jdupont").await;
    assert_eq!(display_name, "Jeanne Dupont");
    assert_eq!(email.as_deref(), Some("jeanne.dupont@interieur.gouv.fr"));
    assert!(!disabled);
    assert_eq!(roles_of(scim.app, account_id).await, ["agent"]);

    let (status, got) = scim.get(&format!("/Users/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, user);

    // Filters: case-insensitive userName, value filter, dates, logic.
    for (filter, hits) in [
        ("userName eq \"JDUPONT\"", 1),
        ("emails[type eq \"work\" and value ew \"gouv.fr\"]", 1),
        ("externalId eq \"hr-0042\"", 0),
        (
            "meta.created gt \"2000-01-01T00:00:00Z\" and not (active eq false)",
            1,
        ),
        ("name.familyName sw \"X\" or displayName pr", 0),
    ] {
        let q = url::form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>();
        let (status, list) = scim.get(&format!("/Users?filter={q}")).await;
        assert_eq!(status, StatusCode::OK, "{filter}: {list}");
        assert_eq!(list["totalResults"], hits, "{filter}: {list}");
    }
    let (_, list) = scim
        .get("/Users?attributes=userName,emails.value&count=5")
        .await;
    assert_eq!(
        list["Resources"][0],
        json!({"schemas": [USER_URN], "id": id, "userName": "jdupont",
               "emails": [{"value": "jeanne.dupont@interieur.gouv.fr"}]})
    );
    let (status, found) = scim
        .post(
            "/Users/.search",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                   "filter": "userName eq \"jdupont\"", "excludedAttributes": ["emails", "name"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["totalResults"], 1);
    assert!(found["Resources"][0].get("emails").is_none());

    // PUT replaces everything writable; what is left out is unassigned.
    let (status, replaced) = scim
        .put(
            &format!("/Users/{id}"),
            json!({"schemas": [USER_URN], "id": "ignored", "userName": "jdupont",
                   "displayName": "Jeanne Dupont-Martin",
                   "emails": [{"value": "jdm@interieur.gouv.fr"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["id"], json!(id));
    assert!(replaced.get("name").is_none() && replaced.get("externalId").is_none());
    let (_, display_name, email, _) = scim.account_of("jdupont").await;
    assert_eq!(display_name, "Jeanne Dupont-Martin");
    assert_eq!(email.as_deref(), Some("jdm@interieur.gouv.fr"));

    // PATCH with a sub-attribute path and a value filter, as directories send them.
    let (status, patched) = scim
        .patch(
            &format!("/Users/{id}"),
            json!([
                {"op": "add", "path": "name.givenName", "value": "Jeanne"},
                {"op": "add", "path": "emails[type eq \"work\"].value", "value": "jeanne@interieur.gouv.fr"},
                {"op": "replace", "path": "emails[type eq \"work\"].primary", "value": true},
                {"op": "Replace", "value": {"displayName": "J. Dupont"}}
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], json!({"givenName": "Jeanne"}));
    assert_eq!(
        patched["emails"],
        json!([{"value": "jdm@interieur.gouv.fr"},
               {"value": "jeanne@interieur.gouv.fr", "type": "work", "primary": true}])
    );
    let (_, display_name, email, _) = scim.account_of("jdupont").await;
    assert_eq!(display_name, "J. Dupont");
    assert_eq!(email.as_deref(), Some("jeanne@interieur.gouv.fr"));
    let (status, _) = scim
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "remove", "path": "emails[value eq \"jdm@interieur.gouv.fr\"]"}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, got) = scim
        .get(&format!("/Users/{id}?excludedAttributes=meta"))
        .await;
    assert_eq!(got["emails"].as_array().unwrap().len(), 1);
    assert!(got.get("meta").is_none() && got.get("id").is_some());
}

async fn uniqueness_and_bad_requests_are_refused_and_change_nothing(backend: Backend) {
    let (app, token) = spawn_scim_app(backend).await;
    let scim = Scim::new(&app, &token);
    let id = scim
        .create_user(json!({"schemas": [USER_URN], "userName": "Alice", "displayName": "Alice"}))
        .await;
    let before = snapshot(&app).await;
    let (_, alice_before) = scim.get(&format!("/Users/{id}")).await;

    // userName is unique whatever its case (RFC 7643 §4.1.1: caseExact false).
    let (status, body) = scim
        .post(
            "/Users",
            json!({"schemas": [USER_URN], "userName": "aLiCe"}),
        )
        .await;
    assert_scim_error(status, &body, StatusCode::CONFLICT, Some("uniqueness"));
    let bob = scim
        .create_user(json!({"schemas": [USER_URN], "userName": "bob"}))
        .await;
    let (status, body) = scim
        .patch(
            &format!("/Users/{bob}"),
            json!([{"op": "replace", "path": "userName", "value": "ALICE"}]),
        )
        .await;
    assert_scim_error(status, &body, StatusCode::CONFLICT, Some("uniqueness"));
    assert_eq!(
        scim.delete(&format!("/Users/{bob}")).await,
        StatusCode::NO_CONTENT
    );
    let before = (before.0 + 1, before.1 + 1, before.2, before.3);

    for (method, path, body, expected, scim_type) in [
        (
            Method::POST,
            "/Users".to_owned(),
            json!({"schemas": [USER_URN], "displayName": "no userName"}),
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
        ),
        (
            Method::POST,
            "/Users".to_owned(),
            json!({"userName": "no-schemas"}),
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
        ),
        (
            Method::POST,
            "/Users".to_owned(),
            json!({"schemas": [USER_URN], "userName": "x", "emails": [{"value": "a@x", "primary": true}, {"value": "b@x", "primary": true}]}),
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
        ),
        (
            Method::POST,
            "/Groups".to_owned(),
            json!({"schemas": [GROUP_URN], "displayName": "G", "members": [{"value": "no-such-user"}]}),
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
        ),
        (
            Method::PUT,
            format!("/Users/{id}"),
            json!({"schemas": [USER_URN], "userName": "Alice", "active": "perhaps"}),
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
        ),
        // The first operation is fine, the second is not: neither applies.
        (
            Method::PATCH,
            format!("/Users/{id}"),
            json!({"schemas": [PATCH_URN], "Operations": [
            {"op": "replace", "path": "displayName", "value": "Changed"},
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "x@y"}]}),
            StatusCode::BAD_REQUEST,
            Some("noTarget"),
        ),
        (
            Method::PATCH,
            format!("/Users/{id}"),
            json!({"schemas": [PATCH_URN], "Operations": [
            {"op": "replace", "path": "displayName", "value": "Changed"},
            {"op": "remove", "path": "userName"}]}),
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
        ),
        (
            Method::PATCH,
            format!("/Users/{id}"),
            json!({"schemas": [PATCH_URN], "Operations": [
            {"op": "replace", "path": "groups", "value": []}]}),
            StatusCode::BAD_REQUEST,
            Some("mutability"),
        ),
        (
            Method::PATCH,
            format!("/Users/{id}"),
            json!({"schemas": [PATCH_URN], "Operations": [
            {"op": "add", "path": "emails[type eq ]", "value": "x"}]}),
            StatusCode::BAD_REQUEST,
            Some("invalidPath"),
        ),
        (
            Method::PATCH,
            "/Users/no-such-id".to_owned(),
            json!({"schemas": [PATCH_URN], "Operations": [
            {"op": "replace", "path": "displayName", "value": "x"}]}),
            StatusCode::NOT_FOUND,
            None,
        ),
    ] {
        let (status, error) = scim.send(method.clone(), &path, Some(body.clone())).await;
        assert_scim_error(status, &error, expected, scim_type);
        assert_eq!(
            snapshot(&app).await,
            before,
            "{method} {path} {body} changed something"
        );
    }
    // Not JSON, not a SCIM media type, too large.
    let r = scim
        .request(Method::POST, "/Users")
        .header("content-type", "application/scim+json")
        .body("{\"userName\": ")
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_scim_error(
        status,
        &r.json().await.unwrap(),
        StatusCode::BAD_REQUEST,
        Some("invalidSyntax"),
    );
    let r = scim
        .request(Method::POST, "/Users")
        .header("content-type", "text/plain")
        .body(json!({"schemas": [USER_URN], "userName": "t"}).to_string())
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_scim_error(
        status,
        &r.json().await.unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        None,
    );
    // Just over the 64 KiB limit: small enough that the client finishes sending before the
    // server answers 413 and closes (a much larger body can meet a closed socket instead).
    let huge =
        json!({"schemas": [USER_URN], "userName": "h", "displayName": "x".repeat(70 * 1024)});
    let (status, body) = scim.post("/Users", huge).await;
    assert_scim_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE, None);
    assert_eq!(snapshot(&app).await, before);
    let (_, alice_after) = scim.get(&format!("/Users/{id}")).await;
    assert_eq!(alice_after, alice_before);
}

async fn bad_token_unknown_endpoint_and_wrong_method_answer_scim_json(backend: Backend) {
    let (app, token) = spawn_scim_app(backend).await;
    let scim = Scim::new(&app, &token);
    let url = scim.app.url("/scim/v2/Users");
    let create = json!({"schemas": [USER_URN], "userName": "intruder"}).to_string();
    for (label, auth) in [
        ("no token", None),
        ("wrong token", Some(format!("Bearer {}", "0".repeat(64)))),
        (
            "token prefix",
            Some(format!("Bearer {}", &scim.token[..32])),
        ),
        ("basic", Some(format!("Basic {}", scim.token))),
    ] {
        for method in [Method::GET, Method::POST] {
            let mut r = scim.http.request(method.clone(), &url);
            if let Some(auth) = &auth {
                r = r.header("authorization", auth);
            }
            let r = r
                .header("content-type", "application/scim+json")
                .body(create.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{label} {method}");
            assert!(
                r.headers()["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .starts_with("Bearer"),
                "{label}"
            );
            assert_eq!(
                r.headers()["content-type"],
                "application/scim+json",
                "{label}"
            );
            assert!(r.headers().get("set-cookie").is_none(), "{label}");
            // The site's security headers still apply.
            assert!(r.headers().contains_key("content-security-policy"));
            let body: Value = r.json().await.unwrap();
            assert_scim_error(
                StatusCode::UNAUTHORIZED,
                &body,
                StatusCode::UNAUTHORIZED,
                None,
            );
        }
    }
    assert_eq!(scim.app.count("SELECT COUNT(*) FROM accounts").await, 0);
    // Each refusal is a `scim.auth_failure` entry, signed "scim" with the caller's address and
    // the reason, and never the token that was tried (ASVS 7.2.1).
    let failures = crate::helpers::audit_entries(scim.app.db(), "scim.auth_failure").await;
    let reasons: Vec<String> = failures
        .iter()
        .map(|e| {
            crate::helpers::details(e)["reason"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        reasons,
        [
            "missing_token",
            "missing_token",
            "wrong_token",
            "wrong_token",
            "wrong_token",
            "wrong_token",
            "missing_token",
            "missing_token"
        ]
    );
    for entry in &failures {
        assert_eq!(entry.actor_name.as_deref(), Some("scim"));
        assert_eq!(entry.actor_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(entry.outcome, "denied");
        assert!(entry.request_id.is_some());
        assert!(!entry.details.contains(&scim.token[..32]) && !entry.details.contains("00000000"));
    }

    // Unknown endpoints and methods are SCIM errors too, never the HTML error page.
    let (status, body) = scim.get("/Nope").await;
    assert_scim_error(status, &body, StatusCode::NOT_FOUND, None);
    let (status, body) = scim.get(&format!("/Users/{}", "f".repeat(36))).await;
    assert_scim_error(status, &body, StatusCode::NOT_FOUND, None);
    for path in ["/ServiceProviderConfig", "/Schemas", "/ResourceTypes"] {
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let (status, body) = scim.send(method.clone(), path, Some(json!({}))).await;
            assert_scim_error(status, &body, StatusCode::METHOD_NOT_ALLOWED, None);
        }
    }
    let (status, body) = scim.get("/Schemas?filter=id%20pr").await;
    assert_scim_error(status, &body, StatusCode::FORBIDDEN, None);

    // Discovery says exactly what is supported.
    let (status, spc) = scim.get("/ServiceProviderConfig").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(spc["patch"]["supported"], true);
    assert_eq!(spc["filter"]["supported"], true);
    assert!(spc["filter"]["maxResults"].as_u64().unwrap() > 0);
    for unsupported in ["bulk", "sort", "etag", "changePassword"] {
        assert_eq!(spc[unsupported]["supported"], false, "{unsupported}");
    }
    let (_, types) = scim.get("/ResourceTypes").await;
    assert_eq!(types["totalResults"], 2);
    let (status, schema) = scim.get(&format!("/Schemas/{USER_URN}")).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = schema["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "userName",
            "name",
            "displayName",
            "title",
            "emails",
            "active",
            "groups"
        ]
    );
}

async fn invalid_filters_are_refused(backend: Backend) {
    let (app, token) = spawn_scim_app(backend).await;
    let scim = Scim::new(&app, &token);
    for filter in [
        "userName",
        "password eq \"x\"",
        "active gt true",
        "userName eq \"a\" or",
        "((userName eq \"a\")",
        "meta.created gt \"not a date\"",
        "emails[type eq \"work\"",
    ] {
        let q = url::form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>();
        let (status, body) = scim.get(&format!("/Users?filter={q}")).await;
        assert_scim_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            Some("invalidFilter"),
        );
    }
    let (status, body) = scim.get("/Groups?filter=userName%20eq%20%22a%22").await;
    assert_scim_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        Some("invalidFilter"),
    );
    let (status, body) = scim.get("/Users?startIndex=first").await;
    assert_scim_error(status, &body, StatusCode::BAD_REQUEST, Some("invalidValue"));
}

async fn deactivation_ends_sessions_at_once_and_delete_keeps_the_account(backend: Backend) {
    let (app, token) = spawn_scim_app(backend).await;
    let scim = Scim::new(&app, &token);
    let id = scim
        .create_user(
            json!({"schemas": [USER_URN], "userName": "leaver", "displayName": "Léa Verne"}),
        )
        .await;
    let (account_id, _, _, _) = scim.account_of("leaver").await;
    let state = &scim.app.server.state;
    let mut tx = scim.app.db().begin().await.unwrap();
    let (cookie, _) = beffroi::auth::session::create(
        &mut tx,
        account_id,
        "127.0.0.1",
        Some("test"),
        state.timeouts,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let browser = scim.app.client();
    let home = |browser: reqwest::Client| {
        let url = scim.app.url("/");
        let cookie = format!("__Host-beffroi={}", cookie.expose_secret());
        async move {
            browser
                .get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
        }
    };
    let r = home(browser.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Léa Verne"));

    // Entra ID's way of saying it: a capitalised op and a string boolean.
    let (status, user) = scim
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["active"], false);
    assert_eq!(sessions_of(scim.app, account_id).await, 0);
    assert!(scim.account_of("leaver").await.3, "account not disabled");
    let r = home(browser.clone()).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "the session outlived deactivation"
    );

    // Reactivation by PUT; the ended session stays ended.
    let (status, user) = scim
        .put(
            &format!("/Users/{id}"),
            json!({"schemas": [USER_URN], "userName": "leaver", "displayName": "Léa Verne", "active": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["active"], true);
    assert!(!scim.account_of("leaver").await.3);
    assert_eq!(home(browser.clone()).await.status(), StatusCode::SEE_OTHER);
    {
        use crate::helpers::{audit_entries, details};
        let off = audit_entries(app.db(), "scim.user_deactivate").await;
        assert_eq!(off.len(), 1);
        assert_eq!(off[0].target, Some(format!("account:{account_id}")));
        assert_eq!(details(&off[0])["sessions_ended"], 1);
        let patch = audit_entries(app.db(), "scim.user_patch").await;
        assert_eq!(patch.len(), 1);
        assert!(patch[0].seq < off[0].seq, "the cause comes first");
        assert_eq!(
            audit_entries(app.db(), "scim.user_reactivate").await.len(),
            1
        );
        assert_eq!(audit_entries(app.db(), "scim.user_replace").await.len(), 1);
        let created = audit_entries(app.db(), "scim.user_create").await;
        assert_eq!(details(&created[0])["how"], "new");
        assert_eq!(created[0].target, Some(format!("account:{account_id}")));
    }

    // DELETE: gone from SCIM, account kept (disabled), sessions ended.
    let mut tx = scim.app.db().begin().await.unwrap();
    let (cookie2, _) =
        beffroi::auth::session::create(&mut tx, account_id, "127.0.0.1", None, state.timeouts)
            .await
            .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        scim.delete(&format!("/Users/{id}")).await,
        StatusCode::NO_CONTENT
    );
    let (status, body) = scim.get(&format!("/Users/{id}")).await;
    assert_scim_error(status, &body, StatusCode::NOT_FOUND, None);
    assert_eq!(
        scim.delete(&format!("/Users/{id}")).await,
        StatusCode::NOT_FOUND
    );
    let (_, list) = scim.get("/Users").await;
    assert_eq!(list["totalResults"], 0);
    assert_eq!(sessions_of(scim.app, account_id).await, 0);
    let r = browser
        .get(scim.app.url("/"))
        .header(
            "cookie",
            format!("__Host-beffroi={}", cookie2.expose_secret()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (kept_id, name, _, disabled) = scim.account_of("leaver").await;
    assert_eq!(
        (kept_id, name.as_str(), disabled),
        (account_id, "Léa Verne", true)
    );

    // The same agent provisioned again gets the same account back, under a new SCIM id.
    let again = scim
        .create_user(
            json!({"schemas": [USER_URN], "userName": "leaver", "displayName": "Léa Verne"}),
        )
        .await;
    assert_ne!(again, id);
    let (revived, _, _, disabled) = scim.account_of("leaver").await;
    assert_eq!((revived, disabled), (account_id, false));
    assert_eq!(scim.app.count("SELECT COUNT(*) FROM accounts").await, 1);
}

async fn groups_set_membership_and_roles(backend: Backend) {
    let (app, token) = spawn_scim_app(backend).await;
    let scim = Scim::new(&app, &token);
    let u1 = scim
        .create_user(json!({"schemas": [USER_URN], "userName": "u1"}))
        .await;
    let u2 = scim
        .create_user(json!({"schemas": [USER_URN], "userName": "u2"}))
        .await;
    let (a1, _, _, _) = scim.account_of("u1").await;
    let (a2, _, _, _) = scim.account_of("u2").await;

    let (status, group) = scim
        .post(
            "/Groups",
            json!({"schemas": [GROUP_URN], "displayName": "admins", "externalId": "g-1",
                   "members": [{"value": u1, "type": "User"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let gid = group["id"].as_str().unwrap().to_owned();
    assert_eq!(
        group["members"],
        json!([{"value": u1, "$ref": format!("{}/scim/v2/Users/{u1}", scim.app.base), "type": "User"}])
    );
    assert_eq!(groups_of(scim.app, a1).await, ["admins"]);
    // oidc.admin_groups names "admins": membership pushed by SCIM grants the role.
    assert_eq!(roles_of(scim.app, a1).await, ["admin", "agent"]);
    let (_, user) = scim.get(&format!("/Users/{u1}")).await;
    assert_eq!(user["groups"][0]["value"], json!(gid));
    assert_eq!(user["groups"][0]["display"], "admins");

    let (status, body) = scim
        .post(
            "/Groups",
            json!({"schemas": [GROUP_URN], "displayName": "admins"}),
        )
        .await;
    assert_scim_error(status, &body, StatusCode::CONFLICT, Some("uniqueness"));

    // PATCH adds and removes members as directories do.
    let (status, group) = scim
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "add", "path": "members", "value": [{"value": u2}]}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{group}");
    assert_eq!(group["members"].as_array().unwrap().len(), 2);
    assert_eq!(groups_of(scim.app, a2).await, ["admins"]);
    let (status, _) = scim
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "remove", "path": format!("members[value eq \"{u1}\"]")}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(groups_of(scim.app, a1).await.is_empty());
    assert_eq!(
        roles_of(scim.app, a1).await,
        ["agent"],
        "the role goes with the group"
    );
    assert_eq!(roles_of(scim.app, a2).await, ["admin", "agent"]);

    let q = url::form_urlencoded::byte_serialize(format!("members[value eq \"{u2}\"]").as_bytes())
        .collect::<String>();
    let (_, found) = scim.get(&format!("/Groups?filter={q}")).await;
    assert_eq!(found["totalResults"], 1);

    // PUT renames and replaces the member list.
    let (status, group) = scim
        .put(
            &format!("/Groups/{gid}"),
            json!({"schemas": [GROUP_URN], "displayName": "Agents du SGAR", "members": [{"value": u1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{group}");
    assert_eq!(group["displayName"], "Agents du SGAR");
    assert!(group.get("externalId").is_none());
    assert_eq!(groups_of(scim.app, a1).await, ["Agents du SGAR"]);
    assert!(groups_of(scim.app, a2).await.is_empty());
    assert_eq!(roles_of(scim.app, a2).await, ["agent"]);

    // Deleting a member User takes it out of its groups; deleting the group ends the rest.
    assert_eq!(
        scim.delete(&format!("/Users/{u1}")).await,
        StatusCode::NO_CONTENT
    );
    let (_, group) = scim.get(&format!("/Groups/{gid}")).await;
    assert!(group.get("members").is_none(), "{group}");
    let (status, _) = scim
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "add", "path": "members", "value": [{"value": u2}]}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        scim.delete(&format!("/Groups/{gid}")).await,
        StatusCode::NO_CONTENT
    );
    let (status, _) = scim.get(&format!("/Groups/{gid}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        scim.app.count("SELECT COUNT(*) FROM account_groups").await,
        0
    );
    assert_eq!(scim.app.count("SELECT COUNT(*) FROM groups").await, 0);

    // Each change is in the audit log, signed "scim"; the refused duplicate is not.
    use crate::helpers::{audit_entries, details};
    let created = audit_entries(app.db(), "scim.group_create").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].target, Some(format!("scim-group:{gid}")));
    assert_eq!(created[0].actor_name.as_deref(), Some("scim"));
    let moves: Vec<(serde_json::Value, serde_json::Value)> =
        audit_entries(app.db(), "scim.membership_change")
            .await
            .iter()
            .map(|e| (details(e)["added"].clone(), details(e)["removed"].clone()))
            .collect();
    assert_eq!(
        moves,
        [
            (json!([a1]), json!([])),
            (json!([a2]), json!([])),
            (json!([]), json!([a1])),
            (json!([a1]), json!([a2])),
            (json!([a2]), json!([])),
            (json!([]), json!([a2])),
        ]
    );
    let roles: Vec<(Option<String>, serde_json::Value)> =
        audit_entries(app.db(), "account.roles_change")
            .await
            .iter()
            .map(|e| (e.target.clone(), details(e)["after"].clone()))
            .collect();
    let (t1, t2) = (Some(format!("account:{a1}")), Some(format!("account:{a2}")));
    assert_eq!(
        roles,
        [
            // Each new account gets the agent role, then the admin group adds admin.
            (t1.clone(), json!(["agent"])),
            (t2.clone(), json!(["agent"])),
            (t1.clone(), json!(["agent", "admin"])),
            (t2.clone(), json!(["agent", "admin"])),
            (t1, json!(["agent"])),
            (t2, json!(["agent"])),
        ]
    );
    assert_eq!(audit_entries(app.db(), "scim.user_delete").await.len(), 1);
    assert_eq!(audit_entries(app.db(), "scim.group_delete").await.len(), 1);
    beffroi::audit::verify::verify(app.db(), None)
        .await
        .unwrap();
}

async fn provisioned_agent_signs_in_by_sso_until_deactivated(backend: Backend) {
    let (token, token_path) = token_file();
    let sso = spawn_sso_app(
        backend,
        Idp::shared(),
        SsoOptions {
            extra: format!("[scim]\ntoken_file = \"{}\"\n", token_path.display()),
            ..SsoOptions::default()
        },
    )
    .await;
    let scim = Scim::new(&sso.app, &token);
    // The test provider's "bob" has groups ["staff"]; the directory puts him in "admins"
    // (which oidc.admin_groups names).
    let bob = scim
        .create_user(json!({"schemas": [USER_URN], "userName": "bob",
                            "displayName": "Robert Durand (SGAR)",
                            "emails": [{"value": "robert.durand@sgar.gouv.fr", "primary": true}]}))
        .await;
    let (status, _) = scim
        .post(
            "/Groups",
            json!({"schemas": [GROUP_URN], "displayName": "admins", "members": [{"value": bob}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (account_id, _, _, _) = scim.account_of("bob").await;

    let browser = sso.app.client();
    let r = sso.sign_in(&browser, "bob").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    // One account: the provisioned one. The directory's name and e-mail stay; the claim's
    // group is added beside the SCIM group (not instead of it), and both count for roles.
    assert_eq!(sso.app.count("SELECT COUNT(*) FROM accounts").await, 1);
    let home = browser
        .get(sso.app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains("Robert Durand (SGAR)"), "{home}");
    let (_, _, email, _) = scim.account_of("bob").await;
    assert_eq!(email.as_deref(), Some("robert.durand@sgar.gouv.fr"));
    assert_eq!(groups_of(&sso.app, account_id).await, ["admins", "staff"]);
    assert_eq!(roles_of(&sso.app, account_id).await, ["admin", "agent"]);
    assert_eq!(sessions_of(&sso.app, account_id).await, 1);

    // The directory deactivates him: the open session ends at once, and SSO refuses him.
    let (status, _) = scim
        .patch(
            &format!("/Users/{bob}"),
            json!([{"op": "replace", "value": {"active": false}}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sessions_of(&sso.app, account_id).await, 0);
    let r = browser.get(sso.app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let before = sso.failures("account_disabled");
    let r = sso.sign_in(&sso.app.client(), "bob").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(sso.failures("account_disabled"), before + 1);
    assert_eq!(sessions_of(&sso.app, account_id).await, 0);
    assert!(
        scim.account_of("bob").await.3,
        "signing in re-enabled an account the directory disabled"
    );
}

async fn without_scim_config_the_endpoints_do_not_exist(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client_without_origin();
    for path in [
        "/scim/v2/Users",
        "/scim/v2/ServiceProviderConfig",
        "/scim/v2/Nope",
    ] {
        let r = client
            .get(app.url(path))
            .bearer_auth("0".repeat(64))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
}
