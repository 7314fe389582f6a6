//! The auditor pages: only the `auditor` role reads the log (an administrator without it is
//! refused, and the refusal is on record); searches filter and page as asked and are themselves
//! audited; exports verify with `audit/verify.py`; what the log holds is shown as text.

use std::path::{Path, PathBuf};
use std::process::Command;

use beffroi::audit::store::stored_entries;
use beffroi::security_events::{Actor, record_alone};
use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, audit_entries, details, spawn_app};

both_backends!(
    only_auditors_may_read_or_export_the_log,
    filters_narrow_the_results_and_searches_are_audited,
    pages_follow_each_other_by_sequence_number,
    exports_verify_and_record_themselves,
    hostile_values_are_shown_as_text_and_bad_input_is_a_400,
);

/// Which stored entries a search should show.
type Keep = Box<dyn Fn(&beffroi::audit::entry::Entry) -> bool>;

const PASSWORD: &str = "a long enough password";

/// A local account holding exactly `roles`, signed in; returns its id and client.
async fn signed_in(app: &TestApp, username: &str, roles: &[&str]) -> (i64, reqwest::Client) {
    let id = app.create_admin(username, PASSWORD).await;
    beffroi::with_db!(app.db(), pool => {
        sqlx::query("DELETE FROM account_roles WHERE account_id = $1")
            .bind(id).execute(pool).await.unwrap();
        for role in roles {
            sqlx::query("INSERT INTO account_roles (account_id, role) VALUES ($1, $2)")
                .bind(id).bind(*role).execute(pool).await.unwrap();
        }
    });
    let client = app.client();
    let r = app.sign_in(&client, username, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{username} signs in");
    (id, client)
}

async fn get(client: &reqwest::Client, app: &TestApp, path: &str) -> (StatusCode, String) {
    let r = client.get(app.url(path)).send().await.unwrap();
    let status = r.status();
    (status, r.text().await.unwrap())
}

/// The sequence numbers of the rows shown, in page order.
fn shown(body: &str) -> Vec<u64> {
    body.split("<th scope=\"row\">")
        .skip(1)
        .map(|rest| rest.split('<').next().unwrap().parse().unwrap())
        .collect()
}

/// The `href` of the link with `rel`, unescaped.
fn link(body: &str, rel: &str) -> Option<String> {
    let marker = format!("\" rel=\"{rel}\"");
    let end = body.find(&marker)?;
    let start = body[..end].rfind("href=\"")? + "href=\"".len();
    Some(body[start..end].replace("&amp;", "&").replace("&#38;", "&"))
}

async fn add(
    app: &TestApp,
    name: &str,
    id: i64,
    ip: &str,
    action: &'static str,
    outcome: &'static str,
) {
    let actor = Actor {
        account_id: Some(id),
        name: Some(name.to_owned()),
        ip: Some(ip.to_owned()),
        request_id: None,
    };
    record_alone(
        &app.server.state.audit,
        &actor,
        action,
        Some(format!("account:{id}")),
        outcome,
        json!({"n": id}),
    )
    .await
    .unwrap();
}

/// Entries from two people, two networks, several actions and outcomes.
async fn populate(app: &TestApp) {
    for i in 0..3 {
        add(
            app,
            "Mallory Martin",
            900,
            &format!("198.51.100.{i}"),
            "auth.sign_in_failure",
            "denied",
        )
        .await;
    }
    add(
        app,
        "Mallory Martin",
        900,
        "198.51.100.7",
        "auth.sign_in",
        "success",
    )
    .await;
    add(
        app,
        "Bob Berger",
        901,
        "192.0.2.10",
        "auth.sign_in",
        "success",
    )
    .await;
    add(
        app,
        "Bob Berger",
        901,
        "192.0.2.11",
        "auth.password_change_failure",
        "failure",
    )
    .await;
}

/// The newest-first sequence numbers of the entries for which `keep` holds, up to the last
/// `audit.search` (the one that produced the page being checked).
async fn expected(app: &TestApp, keep: impl Fn(&beffroi::audit::entry::Entry) -> bool) -> Vec<u64> {
    let all = stored_entries(app.db()).await.unwrap();
    let last_search = audit_entries(app.db(), "audit.search")
        .await
        .last()
        .unwrap()
        .seq;
    let mut seqs: Vec<u64> = all
        .iter()
        .map(|s| &s.entry)
        .filter(|e| e.seq <= last_search && keep(e))
        .map(|e| e.seq)
        .collect();
    seqs.reverse();
    seqs.truncate(50);
    seqs
}

async fn only_auditors_may_read_or_export_the_log(backend: Backend) {
    let app = spawn_app(backend).await;
    populate(&app).await;
    let (admin, admin_client) = signed_in(&app, "root", &["admin"]).await;
    let (agent, agent_client) = signed_in(&app, "agent", &["agent", "editor"]).await;

    for (id, client) in [(admin, &admin_client), (agent, &agent_client)] {
        let (status, home) = get(client, &app, "/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            !home.contains("href=\"/audit\""),
            "no audit link for a non-auditor"
        );
        for path in [
            "/audit",
            "/audit?action=auth.sign_in",
            "/audit/export.jsonl",
            "/audit/export.csv?actor=Mallory",
        ] {
            let (status, body) = get(client, &app, path).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
            for secret in ["Mallory", "198.51.100", "auth.sign_in_failure"] {
                assert!(!body.contains(secret), "{path} leaks {secret}");
            }
        }
        let denied: Vec<_> = audit_entries(app.db(), "audit.search")
            .await
            .into_iter()
            .filter(|e| e.actor_id == Some(id))
            .collect();
        assert_eq!(denied.len(), 2, "each refused search is on record");
        assert!(denied.iter().all(|e| e.outcome == "denied"));
        assert_eq!(details(&denied[0])["path"], "/audit");
        let exports: Vec<_> = audit_entries(app.db(), "audit.export")
            .await
            .into_iter()
            .filter(|e| e.actor_id == Some(id))
            .collect();
        assert_eq!(exports.len(), 2);
        assert!(exports.iter().all(|e| e.outcome == "denied"));
    }

    // Nobody signed in: sent to sign in, nothing recorded as a search.
    let anonymous = app.client();
    let r = anonymous.get(app.url("/audit")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login")
    );

    // An administrator who is also an auditor gets in.
    let (_, both) = signed_in(&app, "chief", &["admin", "auditor"]).await;
    let (status, body) = get(&both, &app, "/audit").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Mallory Martin (#900)"));
    let (_, home) = get(&both, &app, "/").await;
    assert!(home.contains("href=\"/audit\""), "auditors see the link");
}

async fn filters_narrow_the_results_and_searches_are_audited(backend: Backend) {
    let app = spawn_app(backend).await;
    populate(&app).await;
    let (auditor, client) = signed_in(&app, "auditrice", &["agent", "auditor"]).await;

    let (status, body) = get(&client, &app, "/audit").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("<h1>Journal d&#39;audit</h1>") || body.contains("<h1>Journal d'audit</h1>"),
        "{body}"
    );
    assert!(body.contains("aria-current=\"page\""));
    assert_eq!(shown(&body), expected(&app, |_| true).await);
    // The newest entry shown is this very search.
    let searches = audit_entries(app.db(), "audit.search").await;
    assert_eq!(shown(&body)[0], searches.last().unwrap().seq);
    assert_eq!(searches.last().unwrap().actor_id, Some(auditor));

    let cases: Vec<(&str, Keep)> = vec![
        (
            "actor=mallory",
            Box::new(|e| e.actor_name.as_deref() == Some("Mallory Martin")),
        ),
        ("actor=901", Box::new(|e| e.actor_id == Some(901))),
        (
            "action=auth.sign_in",
            Box::new(|e| e.action == "auth.sign_in"),
        ),
        ("outcome=denied", Box::new(|e| e.outcome == "denied")),
        (
            "ip=198.51.100.*",
            Box::new(|e| {
                e.actor_ip
                    .as_deref()
                    .is_some_and(|ip| ip.starts_with("198.51.100."))
            }),
        ),
        (
            "ip=192.0.2.11",
            Box::new(|e| e.actor_ip.as_deref() == Some("192.0.2.11")),
        ),
        (
            "target=account%3A900",
            Box::new(|e| e.target.as_deref() == Some("account:900")),
        ),
        (
            "action=auth.sign_in&outcome=success&actor=Mallory",
            Box::new(|e| e.action == "auth.sign_in" && e.actor_id == Some(900)),
        ),
        (
            "from=2000-01-01T00%3A00&to=2000-01-02T00%3A00",
            Box::new(|_| false),
        ),
    ];
    for (query, keep) in cases {
        let (status, body) = get(&client, &app, &format!("/audit?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}");
        let want = expected(&app, keep).await;
        assert_eq!(shown(&body), want, "{query}");
        if want.is_empty() {
            assert!(body.contains("Aucune entrée ne correspond"), "{query}");
        }
    }
    // Narrowing really narrows: three refused sign-ins, all from Mallory's network.
    let (_, body) = get(&client, &app, "/audit?outcome=denied&ip=198.51.100.*").await;
    assert_eq!(shown(&body).len(), 3);
    assert!(
        body.contains("value=\"198.51.100.*\""),
        "the form keeps the criteria"
    );
    assert!(body.contains("<option value=\"denied\" selected>"));

    // Each search is on record with its filter and where its page started.
    let last = audit_entries(app.db(), "audit.search").await.pop().unwrap();
    assert_eq!(last.outcome, "success");
    assert_eq!(last.actor_id, Some(auditor));
    let d = details(&last);
    assert_eq!(d["filter"]["outcome"], "denied");
    assert_eq!(d["filter"]["ip"], "198.51.100.*");
    assert_eq!(d["page_start"], json!({"offset": 0}));

    // Proof status: nothing is covered until a checkpoint is signed, then entries are.
    let signer = beffroi::audit::checkpoint::CheckpointSigner::load_or_create(
        &app.data_dir.join("audit-checkpoint-key.pk8"),
    )
    .unwrap();
    let (_, body) = get(&client, &app, "/audit?actor=Mallory").await;
    assert!(body.contains("Pas encore couverte"), "{body}");
    beffroi::audit::verify::write_checkpoint(app.db(), &signer)
        .await
        .unwrap()
        .unwrap();
    let (_, body) = get(&client, &app, "/audit?actor=Mallory").await;
    assert!(body.contains("Couverte par le point de contrôle"), "{body}");
    assert!(!body.contains("Pas encore couverte"));
}

async fn pages_follow_each_other_by_sequence_number(backend: Backend) {
    let app = spawn_app(backend).await;
    for i in 0..120 {
        add(
            &app,
            "Carol",
            902,
            &format!("203.0.113.{}", i % 200),
            "auth.sign_in",
            "success",
        )
        .await;
    }
    let (_, client) = signed_in(&app, "auditrice", &["auditor"]).await;
    let (status, first) = get(&client, &app, "/audit?action=auth.sign_in").await;
    assert_eq!(status, StatusCode::OK);
    let all = expected(&app, |e| e.action == "auth.sign_in").await;
    let mut everything: Vec<u64> = stored_entries(app.db())
        .await
        .unwrap()
        .iter()
        .filter(|s| s.entry.action == "auth.sign_in")
        .map(|s| s.entry.seq)
        .collect();
    everything.reverse();
    assert_eq!(shown(&first), all);
    assert_eq!(shown(&first).len(), 50);
    assert!(link(&first, "prev").is_none());

    let next = link(&first, "next").expect("a next page");
    assert!(next.contains("action=auth.sign_in"), "{next}");
    let (_, second) = get(&client, &app, &next).await;
    assert_eq!(shown(&second), everything[50..100].to_vec());
    let (_, third) = get(&client, &app, &link(&second, "next").unwrap()).await;
    assert_eq!(shown(&third), everything[100..].to_vec());
    assert!(link(&third, "next").is_none(), "the last page has no next");

    // Back from the third page lands on the second, and from the second on the first.
    let back = link(&third, "prev").unwrap();
    let (_, again) = get(&client, &app, &back).await;
    assert_eq!(shown(&again), everything[50..100].to_vec());
    let (_, first_again) = get(&client, &app, &link(&again, "prev").unwrap()).await;
    assert_eq!(shown(&first_again), everything[..50].to_vec());

    let last = audit_entries(app.db(), "audit.search").await.pop().unwrap();
    assert_eq!(details(&last)["filter"]["action"], "auth.sign_in");
    let pages: Vec<_> = audit_entries(app.db(), "audit.search")
        .await
        .iter()
        .map(|e| details(e)["page_start"].clone())
        .collect();
    assert!(
        pages.contains(&json!({"after_seq": everything[49]})),
        "{pages:?}"
    );
}

fn verify_py(path: &Path, key: &str) -> (bool, String) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("audit/verify.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(path)
        .arg("--public-key")
        .arg(key)
        .output()
        .expect("python3 must be installed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn exports_verify_and_record_themselves(backend: Backend) {
    let app = spawn_app(backend).await;
    populate(&app).await;
    let (auditor, client) = signed_in(&app, "auditrice", &["agent", "auditor"]).await;
    let (_, page) = get(&client, &app, "/audit?outcome=denied").await;
    assert!(
        page.contains("href=\"/audit/export.jsonl?outcome=denied\""),
        "{page}"
    );
    assert!(page.contains("href=\"/audit/export.csv?outcome=denied\""));

    let r = client
        .get(app.url("/audit/export.jsonl?outcome=denied"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    assert!(r.headers().contains_key("content-security-policy"));
    let jsonl = r.bytes().await.unwrap();
    let file = app.data_dir.join("export-test.jsonl");
    std::fs::write(&file, &jsonl).unwrap();
    let key = beffroi::audit::checkpoint::CheckpointSigner::load_or_create(
        &app.data_dir.join("audit-checkpoint-key.pk8"),
    )
    .unwrap()
    .public_key();
    let (ok, verdict) = verify_py(&file, &hex::encode(key));
    assert!(ok, "{verdict}");
    assert!(verdict.contains("3 entries"), "{verdict}");
    // With another key, the same file is refused.
    let (ok, _) = verify_py(&file, &"00".repeat(32));
    assert!(!ok);

    let exports = audit_entries(app.db(), "audit.export").await;
    assert_eq!(exports.len(), 1);
    assert_eq!(exports[0].actor_id, Some(auditor));
    assert_eq!(details(&exports[0])["format"], "jsonl");
    assert_eq!(details(&exports[0])["filter"]["outcome"], "denied");

    let r = client
        .get(app.url("/audit/export.csv?actor=Bob"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("audit-export.csv")
    );
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].starts_with("seq,time,time_us,actor_id,actor_name"),
        "{csv}"
    );
    assert_eq!(lines.len(), 3, "header and Bob's two entries: {csv}");
    assert!(lines[1..].iter().all(|l| l.contains("Bob Berger")));
    let exports = audit_entries(app.db(), "audit.export").await;
    assert_eq!(exports.len(), 2);
    assert_eq!(details(&exports[1])["format"], "csv");

    // A malformed filter exports nothing and records nothing.
    let r = client
        .get(app.url("/audit/export.jsonl?ip=not-an-ip"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(audit_entries(app.db(), "audit.export").await.len(), 2);
}

async fn hostile_values_are_shown_as_text_and_bad_input_is_a_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let hostile = "<script>alert(\"x\")</script>";
    let visitor = app.client();
    let r = app.sign_in(&visitor, hostile, "whatever password").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (_, client) = signed_in(&app, "auditrice", &["auditor"]).await;

    let (status, body) = get(&client, &app, "/audit?action=auth.sign_in_failure").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown(&body).len(), 1);
    assert!(!body.contains("<script>"), "{body}");
    assert!(
        body.contains("&#60;script&#62;alert(") || body.contains("&lt;script&gt;alert("),
        "{body}"
    );
    // A hostile criterion is echoed as an attribute value, never as markup.
    let (status, body) = get(&client, &app, "/audit?target=%22%3E%3Cscript%3Ex").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!body.contains("\"><script>"));

    let searches_before = audit_entries(app.db(), "audit.search").await.len();
    for (query, message) in [
        ("from=yesterday", "Une date n&#39;est pas valide"),
        ("to=2026-02-30T10%3A00", "Une date n&#39;est pas valide"),
        ("ip=10.0.0.0%2F8", "L&#39;adresse IP doit"),
        (
            "from=2026-01-02T00%3A00&to=2026-01-01T00%3A00",
            "La fin de la période",
        ),
        ("action=auth.everything", "ne figure pas au catalogue"),
        ("outcome=maybe", "Le résultat doit être"),
        ("after=-3", "Le lien de page"),
    ] {
        let (status, body) = get(&client, &app, &format!("/audit?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        let plain = body.replace("&#39;", "'");
        let message = message.replace("&#39;", "'");
        assert!(plain.contains(&message), "{query}: {body}");
        assert!(body.contains("role=\"alert\""), "{query}");
        assert!(shown(&body).is_empty());
    }
    let r = client
        .get(app.url("/audit/export.csv?from=tomorrow"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        audit_entries(app.db(), "audit.search").await.len(),
        searches_before,
        "a refused filter runs no search"
    );
    // English works too.
    let r = client
        .get(app.url("/audit?from=nope"))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}
