//! The S3 blob store against a real S3 server (s3s-fs, see `s3_server`): files uploaded through
//! the pages land in the bucket and not in `<data_dir>/files`, and come back byte for byte; an
//! object altered in the server's storage is refused; a stopped server gives a 503 page saying
//! so while the rest of the site answers, and `/readyz` reports it; a backup of an S3 instance
//! restores into a fresh S3 instance (and into a local one) byte for byte; a bad `[storage.s3]`
//! refuses to start naming its key.

use std::path::Path;

use beffroi::accounts::Role;
use beffroi::blobs::{BlobStore, MediaType};
use beffroi::config::Config;
use beffroi::db::Database;
use beffroi::spaces::{self, SpaceRole};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};

use crate::backup::{beffroi, create_backup, keys, write_config};
use crate::both_backends;
use crate::directory::{PNG, post_profile};
use crate::helpers::{Backend, Options, TestApp, TestDatabase, client_tls, spawn_app_with};
use crate::s3_server::S3Server;
use crate::spaces::{add_page, multipart, private_space};

both_backends!(
    uploads_land_in_the_bucket_and_altered_objects_are_refused,
    a_stopped_store_gives_a_503_page_and_the_site_stays_up,
    backup_of_an_s3_instance_restores_into_another_byte_for_byte,
);

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn s3_app(backend: Backend, s3: &S3Server, extra: String) -> TestApp {
    spawn_app_with(
        backend,
        Options {
            storage_extra: s3.storage_config(),
            extra,
            ..Options::default()
        },
    )
    .await
}

/// Uploads `bytes` as an attachment of page `reglement` in space `projet`; returns the status.
async fn attach(app: &TestApp, client: &reqwest::Client, name: &str, bytes: &[u8]) -> StatusCode {
    let token = app.csrf_token(client, "/spaces").await;
    let (content_type, body) = multipart(&token, name, bytes);
    client
        .post(app.url("/spaces/projet/pages/reglement/files"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
}

/// A contributor of space `projet` with a page `reglement`, signed in.
async fn contributor(app: &TestApp) -> (reqwest::Client, i64) {
    let space = private_space(app, "projet").await;
    let (client, id) = app.signed_in_as("contrib", &[Role::Agent]).await;
    spaces::set_member(app.db(), space, id, SpaceRole::Contributor)
        .await
        .unwrap();
    add_page(app, space, "reglement", "Règlement", &[]).await;
    (client, id)
}

async fn attachment_ids(app: &TestApp) -> Vec<i64> {
    crate::helpers::audit_entries(app.db(), "page.attachment_add")
        .await
        .iter()
        .map(|e| crate::helpers::details(e)["attachment"].as_i64().unwrap())
        .collect()
}

async fn get(app: &TestApp, client: &reqwest::Client, path: &str) -> (StatusCode, Vec<u8>) {
    let response = client.get(app.url(path)).send().await.unwrap();
    let status = response.status();
    (status, response.bytes().await.unwrap().to_vec())
}

async fn uploads_land_in_the_bucket_and_altered_objects_are_refused(backend: Backend) {
    let s3 = S3Server::start().await;
    let app = s3_app(backend, &s3, String::new()).await;
    let (client, id) = contributor(&app).await;

    // A profile photo and a space attachment, through the pages.
    assert_eq!(
        post_profile(&app, &client, &[], Some(("photo", PNG))).await,
        303
    );
    let text = "Article 1 : horaires d’ouverture.\n".as_bytes();
    assert_eq!(attach(&app, &client, "reglement.txt", text).await, 303);
    let photo_url = format!("/people/{id}/photo");
    let attachment_url = format!(
        "/spaces/projet/pages/reglement/files/{}",
        attachment_ids(&app).await[0]
    );
    assert_eq!(
        get(&app, &client, &photo_url).await,
        (StatusCode::OK, PNG.to_vec())
    );
    assert_eq!(
        get(&app, &client, &attachment_url).await,
        (StatusCode::OK, text.to_vec())
    );

    // The bytes are in the bucket, under the prefix, named by their hash, and not on disk.
    let objects = s3.objects();
    let key = |bytes: &[u8]| {
        let h = sha256(bytes);
        format!("{}/{}", &h[..2], &h[2..])
    };
    assert_eq!(objects.get(&key(PNG)).map(Vec::as_slice), Some(PNG));
    assert_eq!(objects.get(&key(text)).map(Vec::as_slice), Some(text));
    assert_eq!(objects.len(), 2, "{:?}", objects.keys());
    assert!(!app.data_dir.join("files").exists());

    // The same bytes again: one object, and the upload succeeds.
    assert_eq!(attach(&app, &client, "copie.txt", text).await, 303);
    assert_eq!(s3.objects().len(), 2);

    // An object altered in the server's storage (same length) is refused, not served.
    let path = s3.object_path(&sha256(text));
    let mut altered = std::fs::read(&path).unwrap();
    altered[0] ^= 0x20;
    std::fs::write(&path, &altered).unwrap();
    let (status, body) = get(&app, &client, &attachment_url).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        !body.windows(altered.len()).any(|w| w == altered.as_slice()),
        "the altered bytes were served"
    );
    // The photo, untouched, is still served.
    assert_eq!(get(&app, &client, &photo_url).await.0, StatusCode::OK);
}

async fn a_stopped_store_gives_a_503_page_and_the_site_stays_up(backend: Backend) {
    let mut s3 = S3Server::start().await;
    let app = s3_app(backend, &s3, String::new()).await;
    let (client, id) = contributor(&app).await;
    assert_eq!(
        post_profile(&app, &client, &[], Some(("photo", PNG))).await,
        303
    );
    let probe = app.client_without_origin();
    let ready = probe.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    s3.stop().await;

    // Reading and writing a file: a 503 page that says the file store does not answer.
    let response = client
        .get(app.url(&format!("/people/{id}/photo")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("Le stockage des fichiers ne répond pas"),
        "{page}"
    );
    assert!(!page.contains("127.0.0.1"), "the page leaks the endpoint");
    assert_eq!(
        attach(&app, &client, "note.txt", b"hello").await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM page_attachments").await,
        0,
        "no row for a file that was not stored"
    );

    // The rest of the site answers; readiness takes the node out of the pool.
    assert_eq!(get(&app, &client, "/").await.0, StatusCode::OK);
    assert_eq!(get(&app, &client, "/healthz").await.0, StatusCode::OK);
    let ready = probe.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
}

/// The config file of an instance with the S3 store and backups.
fn config_text(data_dir: &Path, db: &TestDatabase, storage: &str, recipient: &str) -> String {
    let db_line = db
        .url
        .as_ref()
        .map(|u| format!("database_url = \"{u}\"\n"))
        .unwrap_or_default();
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[backup]\nrecipients = [\"{recipient}\"]\n\
         [storage]\ndata_dir = \"{}\"\n{db_line}{storage}",
        data_dir.display()
    )
}

/// A fresh data directory and database with its config file, restored into from `archive`;
/// returns the config.
async fn restore_into(
    backend: Backend,
    storage: &str,
    recipient: &str,
    archive: &Path,
    identity: &Path,
    key: &str,
    dir: &Path,
) -> (Config, TestDatabase) {
    let db = TestDatabase::create(backend).await;
    let config_path = dir.join("beffroi.toml");
    write_config(
        &config_path,
        &config_text(&dir.join("data"), &db, storage, recipient),
    );
    let (ok, out, err) = beffroi(
        &config_path,
        &[
            "backup",
            "restore",
            archive.to_str().unwrap(),
            "--identity",
            identity.to_str().unwrap(),
            "--public-key",
            key,
        ],
    )
    .await;
    assert!(ok && out.contains("RESTORED"), "{out}{err}");
    (Config::load(&config_path, Vec::new()).unwrap(), db)
}

async fn backup_of_an_s3_instance_restores_into_another_byte_for_byte(backend: Backend) {
    let keys = keys();
    let source_s3 = S3Server::start().await;
    let app = s3_app(
        backend,
        &source_s3,
        format!("[backup]\nrecipients = [\"{}\"]\n", keys.recipient),
    )
    .await;
    let (client, _) = contributor(&app).await;
    assert_eq!(
        post_profile(&app, &client, &[], Some(("photo", PNG))).await,
        303
    );
    assert_eq!(
        attach(&app, &client, "reglement.txt", b"Article 1.\n").await,
        303
    );
    // A larger blob, and an object in the bucket that Beffroi did not write.
    let large: Vec<u8> = (0..300_000u32).map(|n| (n * 7 % 251) as u8).collect();
    app.server
        .state
        .blobs
        .put(large.clone(), MediaType::Text)
        .await
        .unwrap();
    let stray = source_s3
        .root
        .join(crate::s3_server::BUCKET)
        .join("site-a/notes.txt");
    std::fs::write(&stray, b"not a blob").unwrap();
    let before = source_s3.objects();
    assert_eq!(before.len(), 4, "{:?}", before.keys());

    let config_path = app._dir.path().join("beffroi.toml");
    write_config(
        &config_path,
        &config_text(
            &app.data_dir,
            &app._db,
            &source_s3.storage_config(),
            &keys.recipient,
        ),
    );
    let (archive, report) = create_backup(&config_path, &app._dir.path().join("backups")).await;
    let skipped = report["backup"]["skipped"].to_string();
    assert!(skipped.contains("site-a/notes.txt"), "{skipped}");
    let envelope =
        beffroi::backup::manifest::Envelope::read(&beffroi::backup::envelope_path(&archive))
            .unwrap();
    let mut archived: Vec<&str> = envelope
        .manifest
        .members
        .iter()
        .filter_map(|m| m.name.strip_prefix("files/"))
        .collect();
    archived.sort_unstable();
    let blobs: Vec<&str> = before
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "notes.txt")
        .collect();
    assert_eq!(archived, blobs);
    let key = report["backup"]["signing_key"].as_str().unwrap().to_owned();

    // Into a fresh instance with its own, empty, S3 server.
    let target_s3 = S3Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (config, db) = restore_into(
        backend,
        &target_s3.storage_config(),
        &keys.recipient,
        &archive,
        &keys.identity_file,
        &key,
        dir.path(),
    )
    .await;
    let mut expected = before.clone();
    expected.remove("notes.txt");
    assert_eq!(target_s3.objects(), expected);
    assert!(!config.storage.data_dir.join("files").exists());
    // The restored instance serves them: its store reads every blob back, checked.
    let store = BlobStore::from_config(&config).unwrap();
    assert_eq!(
        store.get(&sha256(&large)).await.unwrap(),
        Some(large.clone())
    );
    let restored = Database::connect(&config).await.unwrap();
    let server = beffroi::server::start(config.clone(), restored.clone())
        .await
        .unwrap();
    let probe = reqwest::Client::builder()
        .tls_backend_preconfigured(client_tls(&config.tls_cert_path()))
        .build()
        .unwrap();
    let ready = probe
        .get(format!("https://127.0.0.1:{}/readyz", server.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    server.shutdown().await;
    restored.close().await;
    drop(db);

    // The same archive into an instance that keeps files on disk.
    let dir = tempfile::tempdir().unwrap();
    let (config, _db) = restore_into(
        backend,
        "",
        &keys.recipient,
        &archive,
        &keys.identity_file,
        &key,
        dir.path(),
    )
    .await;
    for (key, bytes) in &expected {
        let on_disk = std::fs::read(config.storage.data_dir.join("files").join(key)).unwrap();
        assert_eq!(&on_disk, bytes, "{key}");
    }
}

/// `serve` and `check-config` refuse a bad `[storage.s3]`, naming the key.
#[tokio::test]
async fn bad_s3_settings_refuse_to_start_naming_the_key() {
    let s3 = S3Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let good = s3.storage_config();
    let world_readable = dir.path().join("readable-secret");
    std::fs::write(&world_readable, "x").unwrap();
    std::fs::set_permissions(
        &world_readable,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let secret_line = format!("secret_access_key_file = \"{}\"", s3.secret_file.display());
    let cases = [
        (
            good.replace(&s3.endpoint, "http://s3.example.org:9000"),
            "storage.s3.endpoint",
        ),
        (
            good.replace("beffroi-test", "Beffroi_Test"),
            "storage.s3.bucket",
        ),
        (good.replace("site-a/", "../x/"), "storage.s3.prefix"),
        (
            good.replace(&secret_line, "secret_access_key = \"hunter2\""),
            "storage.s3.secret_access_key",
        ),
        (
            good.replace(
                &secret_line,
                &format!(
                    "secret_access_key_file = \"{}/missing\"",
                    dir.path().display()
                ),
            ),
            "storage.s3.secret_access_key_file",
        ),
        (
            good.replace(
                &secret_line,
                &format!("secret_access_key_file = \"{}\"", world_readable.display()),
            ),
            "readable-secret",
        ),
        (
            good.replace("blob_store = \"s3\"\n", ""),
            "storage.blob_store",
        ),
        ("blob_store = \"s3\"\n".to_owned(), "storage.s3"),
    ];
    for (storage, key) in cases {
        let path = dir.path().join("beffroi.toml");
        write_config(
            &path,
            &format!(
                "[storage]\ndata_dir = \"{}\"\n{storage}",
                dir.path().join("data").display()
            ),
        );
        for command in ["check-config", "serve"] {
            let (ok, out, err) = beffroi(&path, &[command]).await;
            assert!(!ok, "{command} accepted {storage}: {out}");
            assert!(err.contains(key), "{command} with {storage}: {err}");
            assert!(!err.contains(&s3.secret), "{err}");
        }
    }
    // The good settings pass, and check-config reaches the bucket with them.
    let path = dir.path().join("beffroi.toml");
    write_config(
        &path,
        &format!(
            "[storage]\ndata_dir = \"{}\"\n{good}",
            dir.path().join("data").display()
        ),
    );
    let (ok, out, err) = beffroi(&path, &["check-config"]).await;
    assert!(ok && out.contains("file store"), "{out}{err}");
}
