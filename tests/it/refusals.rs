//! Access-control refusals are security events: a handler's 403 and a CSRF refusal each leave
//! exactly one audit entry naming who asked, from where, and what for; refusals that their own
//! check records (`admin.denied`) are not recorded twice.

use beffroi::accounts::Role;
use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::{Backend, audit_entries, details, spawn_app};

both_backends!(
    a_forbidden_page_leaves_one_entry,
    a_csrf_refusal_leaves_one_entry,
    admin_gate_refusals_are_not_recorded_twice,
);

async fn a_forbidden_page_leaves_one_entry(backend: Backend) {
    let app = spawn_app(backend).await;
    let (agent, agent_id) = app.signed_in_as("bob", &[Role::Agent]).await;
    // Another agent's directory entry, in the administrators' editor: a handler-level 403.
    let r = agent
        .get(app.url(&format!("/people/{agent_id}/edit")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let request_id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let entries = audit_entries(app.db(), "access.denied").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    assert_eq!(entry.actor_id, Some(agent_id));
    assert_eq!(entry.actor_name.as_deref(), Some("bob"));
    assert_eq!(entry.actor_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(entry.request_id.as_deref(), Some(request_id.as_str()));
    assert_eq!(
        entry.target.as_deref(),
        Some(format!("/people/{agent_id}/edit").as_str())
    );
    assert_eq!(entry.outcome, "denied");
    let d = details(entry);
    assert_eq!(d["method"], "GET");
    assert_eq!(d["reason"], "not permitted");
    // A page they may see leaves nothing.
    let r = agent.get(app.url("/people")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(audit_entries(app.db(), "access.denied").await.len(), 1);
    assert!(audit_entries(app.db(), "csrf.refused").await.is_empty());
}

async fn a_csrf_refusal_leaves_one_entry(backend: Backend) {
    let app = spawn_app(backend).await;
    let (agent, agent_id) = app.signed_in_as("carol", &[Role::Agent]).await;
    let r = agent
        .post(app.url("/language"))
        .form(&[("csrf_token", "0".repeat(64).as_str()), ("lang", "en")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let entries = audit_entries(app.db(), "csrf.refused").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    assert_eq!(entry.actor_id, Some(agent_id));
    assert_eq!(entry.actor_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(entry.target.as_deref(), Some("/language"));
    assert_eq!(entry.outcome, "denied");
    let d = details(entry);
    assert_eq!(d["method"], "POST");
    assert_eq!(d["reason"], "token mismatch");
    // Nobody signed in, from another site: recorded too, with the address alone.
    let visitor = app.client();
    let r = visitor
        .post(app.url("/login"))
        .header("origin", "https://evil.example")
        .form(&[("username", "carol"), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let entries = audit_entries(app.db(), "csrf.refused").await;
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1].actor_id, None);
    assert_eq!(entries[1].actor_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(entries[1].target.as_deref(), Some("/login"));
    assert_eq!(details(&entries[1])["reason"], "foreign origin");
    // Neither is an access-control refusal of a handler.
    assert!(audit_entries(app.db(), "access.denied").await.is_empty());
}

async fn admin_gate_refusals_are_not_recorded_twice(backend: Backend) {
    let app = spawn_app(backend).await;
    let (agent, _) = app.signed_in_as("dave", &[Role::Agent]).await;
    let r = agent.get(app.url("/admin/sessions")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(audit_entries(app.db(), "admin.denied").await.len(), 1);
    assert!(audit_entries(app.db(), "access.denied").await.is_empty());
}
