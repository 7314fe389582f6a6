//! Encrypted backups through the real binary, while the server runs: a backup restores to the
//! same content on a fresh data directory and the instance starts; every kind of tampering is
//! refused with a message naming it, before anything is touched; the stock `age` CLI decrypts an
//! archive; a backup taken during writes restores to a consistent state; the configuration
//! refuses age secret keys and bad recipients.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use beffroi::audit::checkpoint::CheckpointSigner;
use beffroi::audit::store::{self, NewEntry};
use beffroi::backup::manifest::Envelope;
use beffroi::config::Config;
use beffroi::db::Database;
use secrecy::ExposeSecret;

use crate::both_backends;
use crate::helpers::{Backend, Options, TestApp, TestDatabase, client_tls, spawn_app_with};

both_backends!(
    round_trip_restores_the_same_content_and_the_instance_starts,
    tampered_or_foreign_archives_are_refused_before_anything_is_touched,
    stock_age_cli_decrypts_the_archive,
    backup_during_writes_restores_a_consistent_state,
);

/// An age key pair for the test, the identity in a file as age-keygen writes it.
pub(crate) struct Keys {
    pub recipient: String,
    pub identity_file: PathBuf,
    _dir: tempfile::TempDir,
}

pub(crate) fn keys() -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let identity = age::x25519::Identity::generate();
    let identity_file = dir.path().join("backup-key.txt");
    std::fs::write(
        &identity_file,
        format!(
            "# created: test\n# public key: {}\n{}\n",
            identity.to_public(),
            identity.to_string().expose_secret()
        ),
    )
    .unwrap();
    Keys {
        recipient: identity.to_public().to_string(),
        identity_file,
        _dir: dir,
    }
}

fn config_text(data_dir: &Path, db: &TestDatabase, recipient: &str, backup_extra: &str) -> String {
    let db_line = db
        .url
        .as_ref()
        .map(|u| format!("database_url = \"{u}\"\n"))
        .unwrap_or_default();
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = \"{}\"\n{db_line}[backup]\nrecipients = [\"{recipient}\"]\n{backup_extra}",
        data_dir.display()
    )
}

pub(crate) fn write_config(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A running instance with backups configured, and its config file for the binary.
struct Source {
    app: TestApp,
    config_path: PathBuf,
    keys: Keys,
}

async fn source(backend: Backend) -> Source {
    let keys = keys();
    let app = spawn_app_with(
        backend,
        Options {
            extra: format!("[backup]\nrecipients = [\"{}\"]\n", keys.recipient),
            ..Options::default()
        },
    )
    .await;
    let config_path = app._dir.path().join("beffroi.toml");
    write_config(
        &config_path,
        &config_text(&app.data_dir, &app._db, &keys.recipient, ""),
    );
    Source {
        app,
        config_path,
        keys,
    }
}

/// A fresh data directory and database, with a config file, to restore into.
struct Target {
    config: Config,
    config_path: PathBuf,
    db: TestDatabase,
    _dir: tempfile::TempDir,
}

async fn target(backend: Backend, recipient: &str) -> Target {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::create(backend).await;
    let config_path = dir.path().join("beffroi.toml");
    let text = config_text(&dir.path().join("data"), &db, recipient, "");
    write_config(&config_path, &text);
    Target {
        config: Config::load(&config_path, Vec::new()).unwrap(),
        config_path,
        db,
        _dir: dir,
    }
}

/// Runs the binary; returns (success, stdout, stderr).
pub(crate) async fn beffroi(config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_beffroi"))
        .env_remove("BEFFROI_CONFIG")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `backup create --json`; returns the archive path and the JSON report.
pub(crate) async fn create_backup(config: &Path, to: &Path) -> (PathBuf, serde_json::Value) {
    let (ok, out, err) = beffroi(
        config,
        &["backup", "create", "--json", "--to", to.to_str().unwrap()],
    )
    .await;
    assert!(ok, "backup create failed: {out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["ok"], true, "{out}");
    (
        PathBuf::from(report["backup"]["archive"].as_str().unwrap()),
        report,
    )
}

fn audit_entry(source: &str) -> NewEntry {
    NewEntry {
        actor_id: None,
        actor_name: Some("Alice".into()),
        actor_ip: None,
        request_id: None,
        action: "auth.sign_out",
        target: Some(source.into()),
        outcome: "success",
        details: serde_json::json!({ "n": 1 }),
    }
}

/// Some content in every place a backup covers: rows, audit entries, uploaded files.
async fn fill(app: &TestApp) {
    app.create_admin("alice", "correct horse battery").await;
    let mut tx = app.db().begin().await.unwrap();
    for n in 0..5 {
        store::append(&mut tx, audit_entry(&format!("thing-{n}")))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let files = app.data_dir.join("files").join("2026").join("photos");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("logo.png"), vec![7u8; 300_000]).unwrap();
    std::fs::write(app.data_dir.join("files").join("notes.txt"), b"hello").unwrap();
}

/// Every table's rows as text, sorted, with the backup's own audit entries (written after the
/// snapshot) left out.
async fn dump(db: &Database) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    match db {
        Database::Sqlite(pool) => {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            for t in tables {
                let cols: Vec<String> =
                    sqlx::query_scalar("SELECT name FROM pragma_table_info($1)")
                        .bind(&t)
                        .fetch_all(pool)
                        .await
                        .unwrap();
                let expr = cols
                    .iter()
                    .map(|c| format!("quote(\"{c}\")"))
                    .collect::<Vec<_>>()
                    .join(" || '|' || ");
                let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT {expr} FROM \"{t}\" ORDER BY 1"
                )))
                .fetch_all(pool)
                .await
                .unwrap();
                out.insert(t, rows);
            }
        }
        Database::Postgres(pool) => {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            for t in tables {
                let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT x::text FROM \"{t}\" x ORDER BY 1"
                )))
                .fetch_all(pool)
                .await
                .unwrap();
                out.insert(t, rows);
            }
        }
    }
    for rows in out.values_mut() {
        rows.retain(|r| !r.contains("backup."));
    }
    out
}

fn files_under(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

async fn last_audit(db: &Database) -> (String, String, String) {
    let entries = store::stored_entries(db).await.unwrap();
    let e = &entries.last().unwrap().entry;
    (e.action.clone(), e.outcome.clone(), e.details.clone())
}

fn database_exists(target: &Target) -> bool {
    match target.config.database_target() {
        beffroi::config::DatabaseTarget::Sqlite(p) => p.exists(),
        beffroi::config::DatabaseTarget::Postgres(_) => false,
    }
}

async fn round_trip_restores_the_same_content_and_the_instance_starts(backend: Backend) {
    let src = source(backend).await;
    fill(&src.app).await;
    let out_dir = src.app._dir.path().join("backups");
    let (archive, report) = create_backup(&src.config_path, &out_dir).await;
    let backup = &report["backup"];
    assert!(archive.exists() && archive.to_string_lossy().ends_with(".tar.age"));
    assert_eq!(
        std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The backup is in the audit log, with its file, size and hash.
    let (action, outcome, details) = last_audit(src.app.db()).await;
    assert_eq!(
        (action.as_str(), outcome.as_str()),
        ("backup.create", "success")
    );
    let details: serde_json::Value = serde_json::from_str(&details).unwrap();
    assert_eq!(details["sha256"], backup["sha256"]);
    assert_eq!(details["size"], backup["size"]);
    assert_eq!(
        details["file"].as_str().unwrap(),
        archive.file_name().unwrap().to_str().unwrap()
    );
    // The manifest beside it lists every member with its hash, and the audit checkpoint.
    let envelope = Envelope::read(&beffroi::backup::envelope_path(&archive)).unwrap();
    let names: Vec<&str> = envelope
        .manifest
        .members
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert!(names.contains(&"files/2026/photos/logo.png"), "{names:?}");
    assert!(names.contains(&"config/beffroi.toml"), "{names:?}");
    assert!(envelope.manifest.audit_checkpoint.is_some());
    assert_eq!(
        envelope.manifest.instance_id,
        std::fs::read_to_string(src.app.data_dir.join("instance-id"))
            .unwrap()
            .trim()
    );

    // Verify without and with the identity, on the instance.
    let (ok, out, err) = beffroi(
        &src.config_path,
        &["backup", "verify", archive.to_str().unwrap()],
    )
    .await;
    assert!(
        ok && out.contains("VERIFIED") && out.contains("not decrypted"),
        "{out}{err}"
    );
    let (ok, out, err) = beffroi(
        &src.config_path,
        &[
            "backup",
            "verify",
            archive.to_str().unwrap(),
            "--identity",
            src.keys.identity_file.to_str().unwrap(),
        ],
    )
    .await;
    assert!(ok && out.contains("VERIFIED"), "{out}{err}");
    assert!(
        out.contains("audit log verified") || backend == Backend::Postgres,
        "{out}"
    );
    assert_eq!(last_audit(src.app.db()).await.0, "backup.verify");
    let before = dump(src.app.db()).await;
    assert!(!before["accounts"].is_empty() && before["audit_log"].len() >= 5);

    // Restore on a fresh data directory: it has no key of its own, so the key is given.
    let tgt = target(backend, &src.keys.recipient).await;
    let base: Vec<String> = vec![
        "backup".into(),
        "restore".into(),
        archive.display().to_string(),
        "--identity".into(),
        src.keys.identity_file.display().to_string(),
    ];
    let run = |args: Vec<String>| {
        let path = tgt.config_path.clone();
        async move {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            beffroi(&path, &a).await
        }
    };
    let (ok, _, err) = run(base.clone()).await;
    assert!(!ok && err.contains("--public-key"), "{err}");
    let key = backup["signing_key"].as_str().unwrap().to_owned();
    let mut with_key = base.clone();
    with_key.extend(["--public-key".to_owned(), key.clone()]);
    let (ok, out, err) = run(with_key.clone()).await;
    assert!(ok && out.contains("RESTORED"), "{out}{err}");

    let restored = Database::connect(&tgt.config).await.unwrap();
    assert_eq!(dump(&restored).await, before, "restored content differs");
    assert_eq!(last_audit(&restored).await.0, "backup.restore");
    let restored_dir = &tgt.config.storage.data_dir;
    assert_eq!(
        files_under(&restored_dir.join("files")),
        files_under(&src.app.data_dir.join("files"))
    );
    assert_eq!(
        std::fs::read(restored_dir.join("instance-id")).unwrap(),
        std::fs::read(src.app.data_dir.join("instance-id")).unwrap()
    );
    // The audit log verifies with the instance's key, through the binary as an auditor would.
    let (ok, out, err) = beffroi(&tgt.config_path, &["audit", "verify"]).await;
    assert!(ok && out.contains("audit log verified"), "{out}{err}");

    // The restored instance starts and answers.
    let server = beffroi::server::start(tgt.config.clone(), restored.clone())
        .await
        .unwrap();
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(client_tls(&tgt.config.tls_cert_path()))
        .build()
        .unwrap();
    let status = client
        .get(format!("https://127.0.0.1:{}/readyz", server.addr.port()))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    server.shutdown().await;
    restored.close().await;

    // A second restore finds a live database: refused without --force, done with it, and the
    // replaced database set aside.
    let (ok, _, err) = run(with_key.clone()).await;
    assert!(!ok && err.contains("--force"), "{err}");
    let mut forced = with_key.clone();
    forced.push("--force".into());
    let (ok, out, err) = run(forced).await;
    assert!(ok && out.contains("set aside"), "{out}{err}");
    let restored = Database::connect(&tgt.config).await.unwrap();
    assert_eq!(dump(&restored).await, before);
    restored.close().await;
}

/// Copies an archive and its manifest into `dir`.
fn copy_backup(archive: &Path, dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let copy = dir.join(archive.file_name().unwrap());
    std::fs::copy(archive, &copy).unwrap();
    std::fs::copy(
        beffroi::backup::envelope_path(archive),
        beffroi::backup::envelope_path(&copy),
    )
    .unwrap();
    copy
}

async fn tampered_or_foreign_archives_are_refused_before_anything_is_touched(backend: Backend) {
    let src = source(backend).await;
    fill(&src.app).await;
    let work = src.app._dir.path().join("tamper");
    let (archive, report) = create_backup(&src.config_path, &work.join("original")).await;
    let key = report["backup"]["signing_key"].as_str().unwrap().to_owned();
    let identity = src.keys.identity_file.to_str().unwrap().to_owned();

    let flipped = copy_backup(&archive, &work.join("flipped"));
    let mut bytes = std::fs::read(&flipped).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&flipped, &bytes).unwrap();

    let truncated = copy_backup(&archive, &work.join("truncated"));
    let len = std::fs::metadata(&truncated).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&truncated)
        .unwrap()
        .set_len(len - 1000)
        .unwrap();

    let edited = copy_backup(&archive, &work.join("edited"));
    let manifest_path = beffroi::backup::envelope_path(&edited);
    let text = std::fs::read_to_string(&manifest_path).unwrap();
    let mut envelope: Envelope = serde_json::from_str(&text).unwrap();
    envelope.manifest.schema_version += 1;
    std::fs::write(&manifest_path, serde_json::to_vec(&envelope).unwrap()).unwrap();

    // Signed by another key that claims to be the signer.
    let other_key = copy_backup(&archive, &work.join("other-key"));
    let mallory = CheckpointSigner::from_seed(&[9u8; 32]).unwrap();
    let path = beffroi::backup::envelope_path(&other_key);
    let mut envelope = Envelope::read(&path).unwrap();
    envelope.manifest.signing_key = hex::encode(mallory.public_key());
    envelope.resign(&mallory).unwrap().write(&path).unwrap();

    // Signed by another key, claiming nothing.
    let bad_signature = copy_backup(&archive, &work.join("bad-signature"));
    let path = beffroi::backup::envelope_path(&bad_signature);
    let envelope = Envelope::read(&path).unwrap();
    envelope.resign(&mallory).unwrap().write(&path).unwrap();

    // An archive of another instance, with that instance's valid manifest.
    let other = source(backend).await;
    let (foreign, _) = create_backup(&other.config_path, &work.join("foreign")).await;

    let wrong_identity = keys();
    let cases: Vec<(&str, PathBuf, String, &str)> = vec![
        ("flipped byte", flipped, identity.clone(), "SHA-256"),
        ("truncated", truncated, identity.clone(), "truncated"),
        ("manifest edited", edited, identity.clone(), "edited"),
        (
            "another key",
            other_key,
            identity.clone(),
            "signed by another key",
        ),
        (
            "bad signature",
            bad_signature,
            identity.clone(),
            "does not match its signature",
        ),
        (
            "wrong identity",
            archive.clone(),
            wrong_identity.identity_file.display().to_string(),
            "wrong identity",
        ),
    ];
    for (what, file, id, expected) in &cases {
        let (ok, out, err) = beffroi(
            &src.config_path,
            &["backup", "verify", file.to_str().unwrap(), "--identity", id],
        )
        .await;
        assert!(!ok, "{what}: verify accepted it: {out}");
        assert!(err.contains(expected), "{what}: verify said {err}");
        // The refusal is in the audit log.
        let (action, outcome, _) = last_audit(src.app.db()).await;
        assert_eq!(
            (action.as_str(), outcome.as_str()),
            ("backup.verify", "failure"),
            "{what}"
        );

        // Restore into a fresh instance with the right key: refused, nothing created.
        let tgt = target(backend, &src.keys.recipient).await;
        let (ok, out, err) = beffroi(
            &tgt.config_path,
            &[
                "backup",
                "restore",
                file.to_str().unwrap(),
                "--identity",
                id,
                "--public-key",
                &key,
            ],
        )
        .await;
        assert!(!ok, "{what}: restore accepted it: {out}");
        assert!(err.contains(expected), "{what}: restore said {err}");
        assert!(!database_exists(&tgt), "{what}: a database was created");
        if backend == Backend::Postgres {
            let db = Database::connect(&tgt.config).await.unwrap();
            let tables: i64 = beffroi::with_db!(&db, pool => sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'"
            ).fetch_one(pool).await.unwrap());
            assert_eq!(tables, 0, "{what}: the database was touched");
            db.close().await;
        }
        let _ = &tgt.db;
    }

    // Without an identity, what can be checked is checked.
    let (ok, _, err) = beffroi(
        &src.config_path,
        &["backup", "verify", cases[0].1.to_str().unwrap()],
    )
    .await;
    assert!(!ok && err.contains("SHA-256"), "{err}");

    // The other instance's archive, checked on this instance.
    let (ok, _, err) = beffroi(
        &src.config_path,
        &["backup", "verify", foreign.to_str().unwrap()],
    )
    .await;
    assert!(!ok && err.contains("from another instance"), "{err}");
    let (ok, _, err) = beffroi(
        &src.config_path,
        &[
            "backup",
            "restore",
            foreign.to_str().unwrap(),
            "--identity",
            &identity,
            "--force",
        ],
    )
    .await;
    assert!(!ok && err.contains("from another instance"), "{err}");
    // …and the live database is still the one it was.
    assert_eq!(
        src.app
            .count("SELECT COUNT(*) FROM accounts WHERE username = 'alice'")
            .await,
        1
    );

    // The untouched original still verifies.
    let (ok, out, err) = beffroi(
        &src.config_path,
        &[
            "backup",
            "verify",
            archive.to_str().unwrap(),
            "--identity",
            &identity,
        ],
    )
    .await;
    assert!(ok, "{out}{err}");
}

async fn stock_age_cli_decrypts_the_archive(backend: Backend) {
    let src = source(backend).await;
    fill(&src.app).await;
    let dir = src.app._dir.path().join("age-cli");
    let (archive, _) = create_backup(&src.config_path, &dir).await;
    let tar = dir.join("backup.tar");
    let out = std::process::Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&src.keys.identity_file)
        .arg("-o")
        .arg(&tar)
        .arg(&archive)
        .output()
        .expect("the stock age CLI must be installed (apt-get install age; scripts/test does it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&tar)
        .output()
        .unwrap();
    assert!(list.status.success());
    let members: Vec<String> = String::from_utf8(list.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let envelope = Envelope::read(&beffroi::backup::envelope_path(&archive)).unwrap();
    let mut expected: Vec<String> = envelope
        .manifest
        .members
        .iter()
        .map(|m| m.name.clone())
        .collect();
    expected.push("manifest.json".into());
    assert_eq!(members, expected);
    // Every member extracted by tar hashes to the manifest's value.
    let extracted = dir.join("x");
    std::fs::create_dir_all(&extracted).unwrap();
    let x = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&extracted)
        .status()
        .unwrap();
    assert!(x.success());
    for m in &envelope.manifest.members {
        use sha2::Digest;
        let bytes = std::fs::read(extracted.join(&m.name)).unwrap();
        assert_eq!(bytes.len() as u64, m.size, "{}", m.name);
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&bytes)),
            m.sha256,
            "{}",
            m.name
        );
    }
    let inner: beffroi::backup::manifest::SignedManifest =
        serde_json::from_slice(&std::fs::read(extracted.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(inner.manifest, envelope.manifest);
}

async fn backup_during_writes_restores_a_consistent_state(backend: Backend) {
    let src = source(backend).await;
    fill(&src.app).await;
    // Each write is an account and its audit entry, in one transaction.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let db = src.app.db().clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut tx = db.begin().await.unwrap();
                let name = format!("load-{n}");
                beffroi::with_tx!(&mut tx, conn => sqlx::query(
                    "INSERT INTO accounts (kind, username, display_name, created_at, updated_at) \
                     VALUES ('local', $1, 'Load', 0, 0)"
                ).bind(&name).execute(conn).await.map(|_| ()).unwrap());
                let mut entry = audit_entry(&name);
                entry.action = "auth.sign_in";
                store::append(&mut tx, entry).await.unwrap();
                tx.commit().await.unwrap();
                n += 1;
            }
            n
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (archive, report) =
        create_backup(&src.config_path, &src.app._dir.path().join("busy")).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.unwrap();

    let tgt = target(backend, &src.keys.recipient).await;
    let key = report["backup"]["signing_key"].as_str().unwrap();
    let (ok, out, err) = beffroi(
        &tgt.config_path,
        &[
            "backup",
            "restore",
            archive.to_str().unwrap(),
            "--identity",
            src.keys.identity_file.to_str().unwrap(),
            "--public-key",
            key,
        ],
    )
    .await;
    assert!(ok, "{out}{err}");
    let restored = Database::connect(&tgt.config).await.unwrap();
    let (accounts, entries): (i64, i64) = beffroi::with_db!(&restored, pool => (
        sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE username LIKE 'load-%'")
            .fetch_one(pool).await.unwrap(),
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'auth.sign_in'")
            .fetch_one(pool).await.unwrap(),
    ));
    assert_eq!(accounts, entries, "a transaction was cut in two");
    assert!(accounts > 0, "the writes before the backup are missing");
    // The writer kept going after the snapshot: the backup did not stop the writes.
    assert!(
        u64::try_from(accounts).unwrap() < written,
        "{accounts} of {written} writes restored"
    );
    beffroi::audit::verify::verify(&restored, None)
        .await
        .unwrap();
    restored.close().await;
}

#[tokio::test]
async fn rotation_after_create_keeps_what_the_policy_says() {
    let keys = keys();
    let app = spawn_app_with(
        Backend::Sqlite,
        Options {
            extra: format!("[backup]\nrecipients = [\"{}\"]\n", keys.recipient),
            ..Options::default()
        },
    )
    .await;
    let config_path = app._dir.path().join("beffroi.toml");
    write_config(
        &config_path,
        &config_text(
            &app.data_dir,
            &app._db,
            &keys.recipient,
            "keep_daily = 1\nkeep_weekly = 0\nkeep_monthly = 0\n",
        ),
    );
    let dir = app.data_dir.join("backups");
    let (first, _) = create_backup(&config_path, &dir).await;
    // Archive names carry the second they were taken.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (second, report) = create_backup(&config_path, &dir).await;
    assert_eq!(
        report["prune"]["deleted"][0].as_str().unwrap(),
        first.to_str().unwrap()
    );
    assert!(!first.exists() && !beffroi::backup::envelope_path(&first).exists());
    assert!(second.exists());
    let (ok, out, _) = beffroi(&config_path, &["backup", "prune", "--json"]).await;
    assert!(ok);
    let prune: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(prune["prune"]["kept"].as_array().unwrap().len(), 1);
}

#[test]
fn config_with_an_age_secret_key_or_a_bad_recipient_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("beffroi.toml");
    let base = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = \"{}\"\n",
        dir.path().join("data").display()
    );
    let secret = age::x25519::Identity::generate();
    let secret = secret.to_string();
    let secret = secret.expose_secret();
    for (text, expected) in [
        (
            format!("{base}# backup key, just in case: {secret}\n"),
            "AGE-SECRET-KEY",
        ),
        (
            format!("{base}[backup]\nrecipients = [\"age1nope\"]\n"),
            "backup.recipients[0]",
        ),
        (
            format!("{base}[backup]\nrecipients = []\n"),
            "backup.recipients",
        ),
    ] {
        write_config(&config, &text);
        for sub in ["check-config", "serve"] {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_beffroi"))
                .env_remove("BEFFROI_CONFIG")
                .args([sub, "--config"])
                .arg(&config)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{sub} accepted {text}");
            assert!(err.contains(expected), "{sub}: {err}");
            assert!(!err.contains(secret), "{sub} echoed the secret key");
        }
    }
}

/// Streaming: archiving a database several times larger than the memory bound keeps the
/// process's resident memory far below the database's size (sampled from /proc while it runs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_while_archiving_a_large_database() {
    let src = source(Backend::Sqlite).await;
    const MIB: i64 = 256;
    beffroi::with_db!(src.app.db(), pool => {
        sqlx::query("CREATE TABLE big (data BLOB NOT NULL)").execute(pool).await.unwrap();
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
             INSERT INTO big (data) SELECT randomblob(65536) FROM n",
        )
        .bind(MIB * 16)
        .execute(pool)
        .await
        .unwrap();
    });
    let dir = src.app._dir.path().join("big");
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_beffroi"))
        .env_remove("BEFFROI_CONFIG")
        .arg("--config")
        .arg(&src.config_path)
        .args(["backup", "create", "--json", "--to"])
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id().unwrap());
    let sampler = tokio::spawn(async move {
        let mut peak_kib = 0u64;
        while let Ok(status) = tokio::fs::read_to_string(&status_file).await {
            if let Some(kib) = status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
            {
                peak_kib = peak_kib.max(kib);
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        peak_kib
    });
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let peak_mib = sampler.await.unwrap() / 1024;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let plaintext = report["backup"]["plaintext_bytes"].as_u64().unwrap();
    assert!(plaintext > (MIB as u64) << 20, "{report}");
    // The binary alone (runtime, pools, buffers) stays well under 64 MiB; a member read whole
    // would add 256 MiB.
    eprintln!("backup create: peak RSS {peak_mib} MiB while archiving {plaintext} bytes");
    assert!(peak_mib > 0 && peak_mib < 64, "peak RSS {peak_mib} MiB");
}
