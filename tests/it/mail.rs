//! E-mail delivery through a real SMTP server: the test sink (tests/smtp-sink, npm
//! `smtp-server`) run as a separate process, with STARTTLS and AUTH when asked. A reminder
//! queues one message per agent who has not acknowledged and has an address, in the reminder's
//! transaction; the tests then run delivery passes themselves (`deliver_due`) instead of
//! waiting for the worker, and read what the sink received.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use beffroi::accounts::Role;
use beffroi::config::{Config, SmtpConfig};
use beffroi::mail::Mailer;
use beffroi::mail::outbox::{MAX_ATTEMPTS, PassReport, deliver_due};
use beffroi::spaces::{self, NewSpace, SpaceRole, Visibility};
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{Backend, Options, TestApp, audit_entries, details, spawn_app_with};

both_backends!(
    a_reminder_emails_exactly_the_agents_who_have_not_acknowledged,
    starttls_trusts_ca_file_and_refuses_an_unknown_certificate,
    a_wrong_password_is_recorded_without_the_password_then_given_up,
    messages_wait_while_the_relay_is_down_and_leave_once_it_is_up,
    without_smtp_reminders_stay_on_the_wall,
    an_administrator_sends_a_given_up_message_again_discards_one_and_tests_the_relay,
);

/// A running sink; killed when dropped.
struct Sink {
    port: u16,
    out: PathBuf,
    child: Child,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Default)]
struct SinkOptions<'a> {
    port: Option<u16>,
    tls: Option<(&'a Path, &'a Path)>,
    auth: Option<(&'a str, &'a str)>,
}

fn sink_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("smtp-sink")
}

impl Sink {
    fn start(dir: &Path, options: SinkOptions<'_>) -> Sink {
        assert!(
            sink_dir().join("node_modules").exists(),
            "run `npm ci` in tests/smtp-sink (./scripts/test does)"
        );
        let out = dir.join(format!(
            "sink-{}.jsonl",
            &beffroi::auth::session::random_token().unwrap()[..8]
        ));
        let mut command = Command::new("node");
        command
            .arg("sink.mjs")
            .current_dir(sink_dir())
            .env("SINK_OUT", &out)
            .env("SINK_EXIT_ON_STDIN_EOF", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(port) = options.port {
            command.env("SINK_PORT", port.to_string());
        }
        if let Some((cert, key)) = options.tls {
            command.env("SINK_CERT", cert).env("SINK_KEY", key);
        }
        if let Some((user, pass)) = options.auth {
            command.env("SINK_USER", user).env("SINK_PASS", pass);
        }
        let mut child = command.spawn().expect("node must be installed");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            let mut rest = String::new();
            while reader.read_line(&mut rest).is_ok_and(|n| n > 0) {
                rest.clear();
            }
        });
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the SMTP sink did not start within 30 s");
        let port = line
            .trim()
            .strip_prefix("SINK_READY ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the sink: {line:?}"));
        Sink { port, out, child }
    }

    /// Every message received so far.
    fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A self-signed certificate for 127.0.0.1, as (certificate file, key file).
fn self_signed(dir: &Path, tag: &str) -> (PathBuf, PathBuf) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let cert = dir.join(format!("{tag}-cert.pem"));
    let key = dir.join(format!("{tag}-key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

fn secret_file(dir: &Path, name: &str, content: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// An instance whose public URL is its own address, with `smtp` as its `[smtp]` section body
/// (`None`: no section).
async fn app_with_smtp(backend: Backend, smtp: Option<String>) -> (TestApp, String) {
    let port = free_port();
    let base = format!("https://127.0.0.1:{port}");
    let app = spawn_app_with(
        backend,
        Options {
            server_extra: format!("listen = \"127.0.0.1:{port}\"\npublic_url = \"{base}\"\n"),
            extra: smtp.map(|s| format!("[smtp]\n{s}")).unwrap_or_default(),
            ..Options::default()
        },
    )
    .await;
    (app, base)
}

/// A mailer built from another `[smtp]` section, for passes over the same outbox.
fn mailer(base: &str, smtp: &str) -> Mailer {
    let text = format!("[server]\npublic_url = \"{base}\"\n[smtp]\n{smtp}");
    let config = Config::from_toml(&text, Path::new("mail.toml"), Vec::new()).unwrap();
    let section: &SmtpConfig = config.smtp.as_ref().unwrap();
    Mailer::from_config(section, Some(base)).unwrap()
}

fn plain_smtp(port: u16) -> String {
    format!(
        "host = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\n\
         from = \"Intranet <intranet@agence.test>\"\ntimeout_seconds = 5\n"
    )
}

async fn pass(app: &TestApp, mailer: &Mailer, now: i64) -> PassReport {
    deliver_due(app.db(), mailer, &app.server.state.metrics, now)
        .await
        .unwrap()
}

async fn insert_agent(app: &TestApp, login: &str, email: Option<&str>, locale: &str) -> i64 {
    let now = beffroi::db::now();
    let id: i64 = beffroi::with_db!(app.db(), pool => sqlx::query_scalar(
        "INSERT INTO accounts (kind, username, display_name, email, locale, created_at, updated_at) \
         VALUES ('local', $1, $1, $2, $3, $4, $4) RETURNING id"
    ).bind(login).bind(email).bind(locale).bind(now).fetch_one(pool).await.unwrap());
    beffroi::with_db!(app.db(), pool => sqlx::query(
        "INSERT INTO account_roles (account_id, role) VALUES ($1, 'agent')"
    ).bind(id).execute(pool).await.map(|_| ()).unwrap());
    id
}

const TITLE: &str = "Consignes d'évacuation\r\nBcc: intrus@example.org";
const BODY: &str = "Texte confidentiel : le code du portail est 4321.";

/// The people of a reminder, and the item: `waiting` (in the audience, has not read, has an
/// address), `read` (has acknowledged), `outsider` (not in the audience), `no_address`.
struct Scene {
    id: i64,
    waiting: i64,
    read: i64,
    outsider: i64,
    no_address: i64,
    editor: reqwest::Client,
}

async fn scene(app: &TestApp) -> Scene {
    let space = spaces::create_space(
        app.db(),
        &NewSpace {
            slug: "securite",
            name: "Sécurité",
            description: "",
            visibility: Visibility::Public,
            approval_required: false,
            audience: &[beffroi::audience::Rule::Everyone],
        },
    )
    .await
    .unwrap();
    let (editor, editor_id) = app.signed_in_as("hugo", &[Role::Agent, Role::Editor]).await;
    spaces::set_member(app.db(), space, editor_id, SpaceRole::Editor)
        .await
        .unwrap();
    let waiting = insert_agent(app, "alice", Some("alice@agence.test"), "fr").await;
    let read = insert_agent(app, "bruno", Some("bruno@agence.test"), "fr").await;
    let outsider = insert_agent(app, "chloe", Some("chloe@agence.test"), "fr").await;
    let no_address = insert_agent(app, "denis", None, "en").await;
    let group: i64 = beffroi::with_db!(app.db(), pool => sqlx::query_scalar(
        "INSERT INTO groups (name, source, created_at) VALUES ('Bâtiment A', 'local', 0) RETURNING id"
    ).fetch_one(pool).await.unwrap());
    for member in [waiting, read, no_address] {
        beffroi::with_db!(app.db(), pool => sqlx::query(
            "INSERT INTO account_groups (account_id, group_id) VALUES ($1, $2)"
        ).bind(member).bind(group).execute(pool).await.map(|_| ()).unwrap());
    }
    // The item, through the editor's form.
    let audience = format!("group:{group}");
    let id = crate::news::create_news(
        app,
        &editor,
        space,
        &[
            ("title", TITLE),
            ("body", BODY),
            ("ack_required", "1"),
            ("ack_deadline", "2099-01-31T12:00"),
            ("audience", audience.as_str()),
            ("intent", "publish"),
        ],
    )
    .await;
    // bruno has read it.
    let version: i64 = beffroi::with_db!(app.db(), pool => sqlx::query_scalar(
        "SELECT current_version_id FROM news_items WHERE id = $1"
    ).bind(id).fetch_one(pool).await.unwrap());
    beffroi::with_db!(app.db(), pool => sqlx::query(
        "INSERT INTO news_receipts (news_id, account_id, ack_round, version_id, body_sha256, \
         acknowledged_at) VALUES ($1, $2, 1, $3, 'x', 1)"
    ).bind(id).bind(read).bind(version).execute(pool).await.map(|_| ()).unwrap());
    Scene {
        id,
        waiting,
        read,
        outsider,
        no_address,
        editor,
    }
}

/// The editor presses "Envoyer un rappel"; returns where it redirected.
async fn remind(app: &TestApp, scene: &Scene) -> String {
    let token = app.csrf_token(&scene.editor, "/").await;
    let response = scene
        .editor
        .post(app.url(&format!("/news/{}/remind", scene.id)))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// (status, attempts, last_error) of every outbox row, by id.
async fn outbox(app: &TestApp) -> Vec<(String, i64, Option<String>)> {
    beffroi::with_db!(app.db(), pool => sqlx::query_as(
        "SELECT status, attempts, last_error FROM mail_outbox ORDER BY id"
    ).fetch_all(pool).await.unwrap())
}

/// The decoded text of a received message's body (base64), and its header block.
fn split_message(raw: &str) -> (String, String) {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let joined: String = body.split("\r\n").collect();
    let text = base64::engine::general_purpose::STANDARD
        .decode(joined.trim())
        .unwrap();
    (head.to_owned(), String::from_utf8(text).unwrap())
}

async fn a_reminder_emails_exactly_the_agents_who_have_not_acknowledged(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start(dir.path(), SinkOptions::default());
    let (app, base) = app_with_smtp(backend, Some(plain_smtp(sink.port))).await;
    let scene = scene(&app).await;
    let dashboard = scene
        .editor
        .get(app.url(&format!("/news/{}/receipts", scene.id)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(dashboard.contains("envoyé par courriel"), "{dashboard}");

    let location = remind(&app, &scene).await;
    assert!(location.ends_with("done=reminded&queued=1"), "{location}");
    let page = scene
        .editor
        .get(app.url(&location))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("1 courriel(s) en file"), "{page}");
    // Queued with the reminder and its audit entry; nothing sent yet.
    let entries = audit_entries(app.db(), "news.reminder").await;
    let d = details(&entries[0]);
    assert_eq!(d["agents_not_acknowledged"], 2, "{d}");
    assert_eq!(d["emails_queued"], 1, "{d}");
    assert_eq!(d["agents_without_address"], 1, "{d}");
    assert_eq!(d["delivery"], "wall+email");
    let recipients: Vec<(Option<i64>, String)> = beffroi::with_db!(app.db(), pool => sqlx::query_as(
        "SELECT account_id, recipient FROM mail_outbox ORDER BY id"
    ).fetch_all(pool).await.unwrap());
    assert_eq!(
        recipients,
        [(Some(scene.waiting), "alice@agence.test".to_owned())]
    );
    for other in [scene.read, scene.outsider, scene.no_address] {
        assert!(recipients.iter().all(|(id, _)| *id != Some(other)));
    }
    assert!(sink.received().is_empty());
    // A second press while the first is unsent queues no second copy.
    remind(&app, &scene).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM mail_outbox").await, 1);
    let second = details(&audit_entries(app.db(), "news.reminder").await[1]);
    assert_eq!(second["emails_already_waiting"], 1, "{second}");

    // One pass delivers it.
    let report = pass(
        &app,
        app.server.state.mail.as_deref().unwrap(),
        beffroi::db::now(),
    )
    .await;
    assert_eq!((report.claimed, report.sent), (1, 1), "{report:?}");
    let received = sink.received();
    assert_eq!(received.len(), 1);
    let message = &received[0];
    assert_eq!(message["to"], serde_json::json!(["alice@agence.test"]));
    assert_eq!(message["from"], "intranet@agence.test");
    let (head, text) = split_message(message["data"].as_str().unwrap());
    assert!(head.contains("Auto-Submitted: auto-generated"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; charset=utf-8"),
        "{head}"
    );
    assert!(
        head.contains("From: \"Intranet\" <intranet@agence.test>"),
        "{head}"
    );
    assert!(
        !head
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("bcc")),
        "the title's line break must not make a header: {head}"
    );
    assert!(head.contains("Subject: =?UTF-8?B?"), "{head}");
    assert!(
        text.contains("Consignes d'évacuation Bcc: intrus@example.org"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{base}/news/{}", scene.id)),
        "{text}"
    );
    // Typed as Paris time in the form, written back as Paris time with its offset.
    assert!(text.contains("31 janv. 2099 à 12:00 (UTC+1)"), "{text}");
    assert!(
        !text.contains("4321") && !text.contains("confidentiel"),
        "{text}"
    );
    assert!(text.find("Bonjour").unwrap() < text.find("Hello").unwrap());
    assert_eq!(outbox(&app).await, [("sent".to_owned(), 1, None)]);
    // Nothing left to do.
    let report = pass(
        &app,
        app.server.state.mail.as_deref().unwrap(),
        beffroi::db::now(),
    )
    .await;
    assert_eq!(report, PassReport::default());
    assert_eq!(sink.received().len(), 1);
}

async fn starttls_trusts_ca_file_and_refuses_an_unknown_certificate(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), "sink");
    let (other, _) = self_signed(dir.path(), "other");
    let sink = Sink::start(
        dir.path(),
        SinkOptions {
            tls: Some((&cert, &key)),
            ..SinkOptions::default()
        },
    );
    let starttls = |ca: &Path| {
        format!(
            "host = \"127.0.0.1\"\nport = {}\nsecurity = \"starttls\"\nfrom = \"intranet@agence.test\"\n\
             ca_file = \"{}\"\ntimeout_seconds = 5\n",
            sink.port,
            ca.display()
        )
    };
    let (app, base) = app_with_smtp(backend, Some(starttls(&other))).await;
    let scene = scene(&app).await;
    remind(&app, &scene).await;

    // The sink's certificate is not signed by the authority given: nothing is sent, the message
    // stays queued with the reason.
    let now = beffroi::db::now();
    let report = pass(&app, app.server.state.mail.as_deref().unwrap(), now).await;
    assert_eq!((report.sent, report.retrying), (0, 1), "{report:?}");
    assert!(sink.received().is_empty());
    let rows = outbox(&app).await;
    assert_eq!(rows[0].0, "pending");
    assert_eq!(rows[0].1, 1);
    let error = rows[0].2.clone().unwrap();
    assert!(
        error.contains("127.0.0.1") && error.contains("starttls") && error.contains("certificate"),
        "{error}"
    );
    let metrics = app.server.state.metrics.render((0, 0));
    assert!(
        metrics.contains("beffroi_mail_send_failures_total{kind=\"tls\"} 1"),
        "{metrics}"
    );
    // Not due again before its backoff.
    let early = pass(&app, app.server.state.mail.as_deref().unwrap(), now + 10).await;
    assert_eq!(early.claimed, 0);

    // With the sink's own certificate as ca_file, it goes, over TLS.
    let trusting = mailer(&base, &starttls(&cert));
    let report = pass(&app, &trusting, now + 3600).await;
    assert_eq!(report.sent, 1, "{report:?}");
    let received = sink.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["tls"], true);
    assert_eq!(outbox(&app).await[0].0, "sent");
}

async fn a_wrong_password_is_recorded_without_the_password_then_given_up(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), "sink");
    let sink = Sink::start(
        dir.path(),
        SinkOptions {
            tls: Some((&cert, &key)),
            auth: Some(("intranet", "the-right-password")),
            ..SinkOptions::default()
        },
    );
    let wrong = secret_file(dir.path(), "wrong", "Wr0ng-Pa55word-xyz\n");
    let right = secret_file(dir.path(), "right", "the-right-password\n");
    let smtp = |password: &Path| {
        format!(
            "host = \"127.0.0.1\"\nport = {}\nfrom = \"intranet@agence.test\"\n\
             ca_file = \"{}\"\nusername = \"intranet\"\npassword_file = \"{}\"\n\
             timeout_seconds = 5\n",
            sink.port,
            cert.display(),
            password.display()
        )
    };
    let (app, base) = app_with_smtp(backend, Some(smtp(&wrong))).await;
    let scene = scene(&app).await;
    remind(&app, &scene).await;
    let mailer_wrong = app.server.state.mail.clone().unwrap();

    let mut now = beffroi::db::now();
    let report = pass(&app, &mailer_wrong, now).await;
    assert_eq!(report.retrying, 1, "{report:?}");
    let rows = outbox(&app).await;
    let error = rows[0].2.clone().unwrap();
    assert!(
        error.contains("535"),
        "the relay's refusal is kept: {error}"
    );
    assert!(!error.contains("Wr0ng-Pa55word"), "{error}");
    assert!(sink.received().is_empty());

    // Still refused at every attempt: after the last one it is given up, and audited.
    for _ in 1..MAX_ATTEMPTS {
        now += 3600;
        pass(&app, &mailer_wrong, now).await;
    }
    let rows = outbox(&app).await;
    assert_eq!(rows[0].0, "failed");
    assert_eq!(rows[0].1, MAX_ATTEMPTS);
    assert!(!rows[0].2.clone().unwrap().contains("Wr0ng-Pa55word"));
    let failed = audit_entries(app.db(), "mail.failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].outcome, "failure");
    let d = details(&failed[0]);
    assert_eq!(d["account_id"], scene.waiting, "{d}");
    assert_eq!(d["error_kind"], "authentication", "{d}");
    assert_eq!(d["smtp_code"], 535, "{d}");
    assert!(d["message_id"].as_i64().is_some(), "{d}");
    let whole = serde_json::to_string(&failed[0]).unwrap();
    assert!(!whole.contains("alice@agence.test"), "no address: {whole}");
    assert!(!whole.contains("Wr0ng-Pa55word"), "{whole}");
    // A failed message stays, and shows in /metrics; it is not tried again.
    let metrics = app
        .client()
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("beffroi_mail_outbox_messages{status=\"failed\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("beffroi_mail_outbox_messages{status=\"pending\"} 0"));
    assert!(metrics.contains("beffroi_mail_send_failures_total{kind=\"authentication\"}"));
    let right_mailer = mailer(&base, &smtp(&right));
    assert_eq!(pass(&app, &right_mailer, now + 86_400).await.claimed, 0);

    // The right password works (a new reminder, a new message).
    remind(&app, &scene).await;
    let report = pass(&app, &right_mailer, beffroi::db::now()).await;
    assert_eq!(report.sent, 1, "{report:?}");
    let received = sink.received();
    assert_eq!(received[0]["user"], "intranet");
    assert_eq!(received[0]["tls"], true);
}

async fn messages_wait_while_the_relay_is_down_and_leave_once_it_is_up(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (app, _) = app_with_smtp(backend, Some(plain_smtp(port))).await;
    let scene = scene(&app).await;
    // A second agent waiting, so that the pass has two messages to hold back.
    let extra = insert_agent(&app, "emile", Some("emile@agence.test"), "en").await;
    beffroi::with_db!(app.db(), pool => sqlx::query(
        "INSERT INTO account_groups (account_id, group_id) \
         SELECT $1, group_id FROM account_groups WHERE account_id = $2"
    ).bind(extra).bind(scene.waiting).execute(pool).await.map(|_| ()).unwrap());
    remind(&app, &scene).await;
    let mailer = app.server.state.mail.clone().unwrap();

    let now = beffroi::db::now();
    let report = pass(&app, &mailer, now).await;
    assert_eq!((report.claimed, report.retrying, report.sent), (2, 2, 0));
    for (status, attempts, error) in outbox(&app).await {
        assert_eq!((status.as_str(), attempts), ("pending", 1));
        assert!(error.unwrap().contains(&port.to_string()));
    }
    // The relay comes up on that port; the messages leave at their next attempt.
    let sink = Sink::start(
        dir.path(),
        SinkOptions {
            port: Some(port),
            ..SinkOptions::default()
        },
    );
    let report = pass(&app, &mailer, now + 120).await;
    assert_eq!(report.sent, 2, "{report:?}");
    let mut to: Vec<String> = sink
        .received()
        .iter()
        .map(|m| m["to"][0].as_str().unwrap().to_owned())
        .collect();
    to.sort();
    assert_eq!(to, ["alice@agence.test", "emile@agence.test"]);
    // emile's language is English: English first.
    let emile = sink
        .received()
        .into_iter()
        .find(|m| m["to"][0] == "emile@agence.test")
        .unwrap();
    let (head, text) = split_message(emile["data"].as_str().unwrap());
    assert!(head.contains("Content-Language: en, fr"), "{head}");
    assert!(text.find("Hello").unwrap() < text.find("Bonjour").unwrap());
    assert!(
        outbox(&app)
            .await
            .iter()
            .all(|(s, _, e)| s == "sent" && e.is_none())
    );
    assert!(audit_entries(app.db(), "mail.failed").await.is_empty());
}

async fn without_smtp_reminders_stay_on_the_wall(backend: Backend) {
    let (app, _) = app_with_smtp(backend, None).await;
    assert!(app.server.state.mail.is_none());
    let scene = scene(&app).await;
    let dashboard = scene
        .editor
        .get(app.url(&format!("/news/{}/receipts", scene.id)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(dashboard.contains("sur le mur seulement"), "{dashboard}");
    let location = remind(&app, &scene).await;
    assert!(location.ends_with("done=reminded"), "{location}");
    assert_eq!(app.count("SELECT COUNT(*) FROM mail_outbox").await, 0);
    let d = details(&audit_entries(app.db(), "news.reminder").await[0]);
    assert_eq!(d["delivery"], "wall");
    assert_eq!(d["emails_queued"], 0);
}

/// POSTs `fields` (plus the CSRF token) to `path` as `client`.
async fn post_form(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let token = app.csrf_token(client, "/").await;
    let mut form = vec![("csrf_token", token.as_str())];
    form.extend_from_slice(fields);
    client.post(app.url(path)).form(&form).send().await.unwrap()
}

async fn an_administrator_sends_a_given_up_message_again_discards_one_and_tests_the_relay(
    backend: Backend,
) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (app, _) = app_with_smtp(backend, Some(plain_smtp(port))).await;
    let scene = scene(&app).await;
    remind(&app, &scene).await;
    let mailer = app.server.state.mail.clone().unwrap();
    // Nothing listens on the relay's port: the message is given up after its last attempt.
    let now = beffroi::db::now();
    for attempt in 0..MAX_ATTEMPTS {
        pass(&app, &mailer, now + attempt * 4000).await;
    }
    let id: i64 = beffroi::with_db!(app.db(), pool => sqlx::query_scalar(
        "SELECT id FROM mail_outbox WHERE status = 'failed'"
    ).fetch_one(pool).await.unwrap());

    // An agent is refused the page and its actions.
    let (agent, _) = app.signed_in_as("gaston", &[Role::Agent]).await;
    let refused = agent.get(app.url("/admin/mail")).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    let refused = post_form(&app, &agent, &format!("/admin/mail/{id}/retry"), &[]).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(outbox(&app).await[0].0, "failed");

    let (admin, _) = app.signed_in_as("ines", &[Role::Agent, Role::Admin]).await;
    let hub = admin
        .get(app.url("/admin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(hub.contains("href=\"/admin/mail\""), "{hub}");
    let page = admin.get(app.url("/admin/mail")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("id=\"mail-failed\">1<"), "{page}");
    assert!(page.contains("alice@agence.test"), "{page}");
    assert!(page.contains("Abandonné le"), "{page}");
    assert!(
        page.contains(&format!("action=\"/admin/mail/{id}/retry\"")),
        "{page}"
    );
    // The relay's last error is shown, naming the port it could not reach.
    assert!(page.contains(&port.to_string()), "{page}");

    // The relay comes up; "send again" makes the message due now, and the next pass sends it.
    let sink = Sink::start(
        dir.path(),
        SinkOptions {
            port: Some(port),
            ..SinkOptions::default()
        },
    );
    let again = post_form(&app, &admin, &format!("/admin/mail/{id}/retry"), &[]).await;
    assert_eq!(again.status(), 303);
    assert!(
        again.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with("done=retried")
    );
    assert_eq!(outbox(&app).await[0].0, "pending");
    assert_eq!(outbox(&app).await[0].1, 0);
    let d = details(&audit_entries(app.db(), "mail.retry").await[0]);
    assert_eq!(d["message_id"], id);
    let report = pass(&app, &mailer, beffroi::db::now()).await;
    assert_eq!(report.sent, 1, "{report:?}");
    assert_eq!(sink.received()[0]["to"][0], "alice@agence.test");
    // A sent message can be neither sent again nor discarded.
    let late = post_form(&app, &admin, &format!("/admin/mail/{id}/discard"), &[]).await;
    assert!(
        late.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with("done=gone")
    );
    assert_eq!(outbox(&app).await[0].0, "sent");

    // A message a worker holds right now is left alone; once free, it can be discarded.
    beffroi::with_db!(app.db(), pool => sqlx::query(
        "UPDATE mail_outbox SET status = 'failed', claimed_until = $1 WHERE id = $2"
    ).bind(beffroi::db::now() + 600).bind(id).execute(pool).await.map(|_| ()).unwrap());
    let busy = post_form(&app, &admin, &format!("/admin/mail/{id}/discard"), &[]).await;
    assert!(
        busy.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with("done=busy")
    );
    assert_eq!(outbox(&app).await.len(), 1);
    beffroi::with_db!(app.db(), pool => sqlx::query(
        "UPDATE mail_outbox SET claimed_until = NULL WHERE id = $1"
    ).bind(id).execute(pool).await.map(|_| ()).unwrap());
    let gone = post_form(&app, &admin, &format!("/admin/mail/{id}/discard"), &[]).await;
    assert!(
        gone.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with("done=discarded")
    );
    assert!(outbox(&app).await.is_empty());
    assert_eq!(audit_entries(app.db(), "mail.discard").await.len(), 1);

    // The relay test: a bad address is refused, a good one reaches the sink, and the audit log
    // keeps only the address's domain.
    let bad = post_form(
        &app,
        &admin,
        "/admin/mail/test",
        &[("to", "pas une adresse")],
    )
    .await;
    assert_eq!(bad.status(), 422);
    let tested = post_form(
        &app,
        &admin,
        "/admin/mail/test",
        &[("to", "essai@agence.test")],
    )
    .await;
    assert_eq!(tested.status(), 200);
    let text = tested.text().await.unwrap();
    assert!(
        text.contains("Le relais a accepté le message de test"),
        "{text}"
    );
    let received = sink.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[1]["to"][0], "essai@agence.test");
    let entry = &audit_entries(app.db(), "mail.test").await[0];
    assert_eq!(entry.outcome, "success");
    let d = details(entry);
    assert_eq!(d["to_domain"], "agence.test");
    assert!(!d.to_string().contains("essai@"), "{d}");
    // The relay goes away: the test says so and is recorded as a failure.
    drop(sink);
    let failed = post_form(
        &app,
        &admin,
        "/admin/mail/test",
        &[("to", "essai@agence.test")],
    )
    .await;
    assert_eq!(failed.status(), 502);
    assert!(
        failed
            .text()
            .await
            .unwrap()
            .contains("pas accepté le message de test")
    );
    let entries = audit_entries(app.db(), "mail.test").await;
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().any(|e| e.outcome == "failure"));
}
