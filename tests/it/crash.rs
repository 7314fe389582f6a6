//! Crash safety: `kill -9` the real server while a thousand audited changes run concurrently.
//! After a restart, every change the client saw acknowledged is there with its audit entry,
//! no entry exists for a change that is not there (change and entry commit together), and the
//! log verifies.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use beffroi::config::Config;
use beffroi::db::Database;

use crate::both_backends;
use crate::helpers::{Backend, TestDatabase};

both_backends!(kill_9_during_a_thousand_audited_changes_loses_nothing_committed);

const CHANGES: usize = 1000;

fn private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Starts `beffroi serve`; returns the child and the port it listens on.
fn serve(config: &Path) -> (Child, u16) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_beffroi"))
        .env_remove("BEFFROI_CONFIG")
        .args(["serve", "--config"])
        .arg(config)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    loop {
        let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(60)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve did not start: {}", seen.join("\n"));
        };
        seen.push(line.clone());
        let json: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if json["message"] == "listening" {
            let addr: std::net::SocketAddr = json["addr"].as_str().unwrap().parse().unwrap();
            // Keep draining the log so the server never blocks on a full pipe.
            std::thread::spawn(move || while rx.recv().is_ok() {});
            return (child, addr.port());
        }
    }
}

async fn kill_9_during_a_thousand_audited_changes_loses_nothing_committed(backend: Backend) {
    beffroi::tls::install_crypto_provider();
    let database = TestDatabase::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let token = beffroi::auth::session::random_token().unwrap();
    private(&dir.path().join("scim-token"), &format!("{token}\n"));
    private(&dir.path().join("oidc-secret"), "unused\n");
    let db_line = database
        .url
        .as_ref()
        .map(|u| format!("database_url = \"{u}\"\n"))
        .unwrap_or_default();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = \"{data}\"\n{db_line}\
         [security]\nrequests_per_second = 100000\nrequest_burst = 100000\n\
         [log]\nformat = \"json\"\n\
         [oidc]\nissuer = \"http://127.0.0.1:9\"\nclient_id = \"beffroi\"\n\
         client_secret_file = \"{dir}/oidc-secret\"\n\
         redirect_url = \"https://127.0.0.1/auth/oidc/callback\"\n\
         [scim]\ntoken_file = \"{dir}/scim-token\"\n",
        data = dir.path().join("data").display(),
        dir = dir.path().display(),
    );
    let config_path = dir.path().join("beffroi.toml");
    private(&config_path, &text);

    let (mut child, port) = serve(&config_path);
    let cert = dir.path().join("data").join("tls").join("cert.pem");
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(crate::helpers::client_tls(&cert))
        .build()
        .unwrap();
    let base = format!("https://127.0.0.1:{port}/scim/v2/Users");

    // A thousand creations, 64 in flight at a time; the server dies while they run.
    let acknowledged = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let gate = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::new();
    for i in 0..CHANGES {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        let (acknowledged, gate) = (acknowledged.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            let name = format!("agent{i:04}");
            let body = serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": name,
            });
            let sent = client
                .post(&base)
                .bearer_auth(&token)
                .header("content-type", "application/scim+json")
                .body(body.to_string())
                .send()
                .await;
            if let Ok(r) = sent {
                if r.status() == reqwest::StatusCode::CREATED {
                    acknowledged.lock().unwrap().insert(name);
                }
            }
        }));
    }
    // Kill once a good part is acknowledged, so that many are in flight at that moment.
    let started = std::time::Instant::now();
    while acknowledged.lock().unwrap().len() < CHANGES / 4 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the server acknowledged only {} changes in two minutes",
            acknowledged.lock().unwrap().len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() < CHANGES,
        "the kill came too late to interrupt anything"
    );

    // Restart: the server opens the same database and serves again.
    let (mut child, _) = serve(&config_path);
    let config = Config::load(&config_path, Vec::new()).unwrap();
    let db = Database::connect(&config).await.unwrap();
    let stored: BTreeSet<String> = beffroi::with_db!(&db, pool => sqlx::query_scalar(
        "SELECT user_name FROM scim_users").fetch_all(pool).await.unwrap())
    .into_iter()
    .collect();
    let audited: BTreeSet<String> = crate::helpers::audit_entries(&db, "scim.user_create")
        .await
        .iter()
        .map(|e| {
            crate::helpers::details(e)["user_name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let missing: Vec<_> = acknowledged.difference(&stored).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    assert_eq!(
        stored, audited,
        "a change without its entry, or an entry without its change"
    );
    let report = beffroi::audit::verify::verify(&db, None).await.unwrap();
    assert!(report.entries >= acknowledged.len() as u64);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
}
