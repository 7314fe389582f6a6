//! The integration harness: `spawn_app` starts the real server over real TLS on port 0, with a
//! fresh database — a SQLite file in a temporary directory or a brand-new PostgreSQL database
//! (dropped afterwards) — and returns a client that trusts the server's own certificate.

use std::path::PathBuf;
use std::sync::Arc;

use beffroi::config::Config;
use beffroi::db::{Database, SnapshotPolicy};
use beffroi::server::{RunningServer, start};
use reqwest::redirect::Policy;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the test PostgreSQL server is; the test script makes sure one answers.
pub fn pg_base_url() -> String {
    std::env::var("BEFFROI_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// Runs each named `async fn(Backend)` as two tests, one per backend.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}

/// A fresh database of either kind; PostgreSQL databases are dropped when this is.
pub struct TestDatabase {
    pub url: Option<String>,
    pg_name: Option<String>,
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => Self {
                url: None,
                pg_name: None,
            },
            Backend::Postgres => {
                let name = format!(
                    "beffroi_test_{}",
                    beffroi::auth::session::random_token()
                        .unwrap()
                        .get(..16)
                        .unwrap()
                );
                let admin = sqlx::PgPool::connect(&format!("{}/postgres", pg_base_url()))
                    .await
                    .expect("PostgreSQL must answer on 127.0.0.1:5432 (./scripts/test starts one)");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&admin)
                    .await
                    .unwrap();
                admin.close().await;
                Self {
                    url: Some(format!("{}/{name}", pg_base_url())),
                    pg_name: Some(name),
                }
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        // Async work in Drop: a separate thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(admin) =
                    sqlx::PgPool::connect(&format!("{}/postgres", pg_base_url())).await
                {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&admin)
                    .await;
                    admin.close().await;
                }
            });
        })
        .join();
    }
}

pub struct TestApp {
    pub server: RunningServer,
    pub base: String,
    pub config: Config,
    pub data_dir: PathBuf,
    pub _dir: tempfile::TempDir,
    pub _db: TestDatabase,
}

/// Test config text: the given extra TOML is appended (later sections may not repeat [server]
/// or [storage]: pass those keys through `server_extra` / `storage_extra`).
#[derive(Default)]
pub struct Options {
    pub server_extra: String,
    pub storage_extra: String,
    pub extra: String,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, Options::default()).await
}

pub fn test_config(data_dir: &std::path::Path, db: &TestDatabase, options: &Options) -> Config {
    let db_line = match &db.url {
        Some(url) => format!("database_url = \"{url}\"\n"),
        None => String::new(),
    };
    let listen = if options
        .server_extra
        .lines()
        .any(|l| l.trim_start().starts_with("listen ="))
    {
        ""
    } else {
        "listen = \"127.0.0.1:0\"\n"
    };
    let text = format!(
        "[server]\n{listen}{}\n[storage]\ndata_dir = \"{}\"\n{db_line}{}\n[tls]\nreload_check_secs = 1\n{}\n",
        options.server_extra,
        data_dir.display(),
        options.storage_extra,
        options.extra
    );
    Config::from_toml(&text, std::path::Path::new("test.toml"), Vec::new()).unwrap()
}

pub fn snapshot_policy(data_dir: &std::path::Path) -> SnapshotPolicy {
    SnapshotPolicy {
        dir: data_dir.join("snapshots"),
        pg_password: None,
        skip: false,
    }
}

pub async fn spawn_app_with(backend: Backend, options: Options) -> TestApp {
    beffroi::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let test_db = TestDatabase::create(backend).await;
    let config = test_config(&data_dir, &test_db, &options);
    let db = Database::connect(&config).await.unwrap();
    db.migrate(&snapshot_policy(&data_dir)).await.unwrap();
    let server = start(config.clone(), db).await.unwrap();
    let base = format!("https://127.0.0.1:{}", server.addr.port());
    TestApp {
        server,
        base,
        config,
        data_dir,
        _dir: dir,
        _db: test_db,
    }
}

/// A rustls client config trusting exactly the certificate at `cert_path`.
pub fn client_tls(cert_path: &std::path::Path) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(cert_path).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(beffroi::tls::crypto_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

impl TestApp {
    pub fn db(&self) -> &Database {
        &self.server.state.db
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn cert_path(&self) -> PathBuf {
        self.config.tls_cert_path()
    }

    fn builder(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .tls_backend_preconfigured(client_tls(&self.cert_path()))
            .redirect(Policy::none())
            .cookie_store(true)
            // A hang becomes a failure with a message, not a stuck CI run.
            .timeout(std::time::Duration::from_secs(60))
    }

    /// A browser-like client: keeps cookies, sends this site's Origin, does not follow redirects.
    pub fn client(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::ORIGIN, self.base.parse().unwrap());
        self.builder().default_headers(headers).build().unwrap()
    }

    /// A client that sends no Origin header.
    pub fn client_without_origin(&self) -> reqwest::Client {
        self.builder().build().unwrap()
    }

    /// Creates the break-glass admin with a known, already-changed password.
    pub async fn create_admin(&self, username: &str, password: &str) -> i64 {
        let hasher = beffroi::auth::password::PasswordHasher::new(2).unwrap();
        let hash = hasher
            .hash(&secrecy::SecretString::from(password.to_owned()))
            .await
            .unwrap();
        let mut tx = self.db().begin().await.unwrap();
        let (id, _) =
            beffroi::accounts::upsert_break_glass_admin(&mut tx, username, "Alice Admin", &hash)
                .await
                .unwrap();
        beffroi::accounts::set_password_hash(&mut tx, id, &hash, false)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        id
    }

    /// Creates a local account with exactly `roles` and a known, already-changed password
    /// (agents normally arrive by SSO; a local account signs in through the same session code).
    pub async fn create_account(
        &self,
        username: &str,
        display_name: &str,
        roles: &[beffroi::accounts::Role],
        password: &str,
    ) -> i64 {
        let hasher = beffroi::auth::password::PasswordHasher::new(2).unwrap();
        let hash = hasher
            .hash(&secrecy::SecretString::from(password.to_owned()))
            .await
            .unwrap();
        let mut tx = self.db().begin().await.unwrap();
        let (id, _) =
            beffroi::accounts::upsert_break_glass_admin(&mut tx, username, display_name, &hash)
                .await
                .unwrap();
        beffroi::accounts::set_password_hash(&mut tx, id, &hash, false)
            .await
            .unwrap();
        beffroi::with_tx!(&mut tx, conn => {
            sqlx::query("DELETE FROM account_roles WHERE account_id = $1")
                .bind(id).execute(&mut *conn).await.unwrap();
            for role in roles {
                sqlx::query("INSERT INTO account_roles (account_id, role) VALUES ($1, $2)")
                    .bind(id).bind(role.as_str()).execute(&mut *conn).await.unwrap();
            }
        });
        tx.commit().await.unwrap();
        id
    }

    /// A new client signed in as a fresh account with `roles`; returns it and the account id.
    pub async fn signed_in_as(
        &self,
        username: &str,
        roles: &[beffroi::accounts::Role],
    ) -> (reqwest::Client, i64) {
        let password = "correct-horse-battery-staple-42";
        let id = self
            .create_account(username, username, roles, password)
            .await;
        let client = self.client();
        let response = self.sign_in(&client, username, password).await;
        assert!(
            response.status().is_success() || response.status().is_redirection(),
            "sign-in as {username} failed: {}",
            response.status()
        );
        (client, id)
    }

    /// The CSRF token in the page at `path`, as a browser would find it in a form.
    pub async fn csrf_token(&self, client: &reqwest::Client, path: &str) -> String {
        let body = client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        extract_csrf(&body).unwrap_or_else(|| panic!("no csrf token in {path}: {body}"))
    }

    /// Signs in through the form; returns the response to the POST.
    pub async fn sign_in(
        &self,
        client: &reqwest::Client,
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        let token = self.csrf_token(client, "/login").await;
        client
            .post(self.url("/login"))
            .form(&[
                ("csrf_token", token.as_str()),
                ("username", username),
                ("password", password),
                ("next", "/"),
            ])
            .send()
            .await
            .unwrap()
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        beffroi::with_db!(self.db(), pool => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await.unwrap())
    }

    pub async fn exec(&self, sql: &'static str) {
        beffroi::with_db!(self.db(), pool => sqlx::query(sql).execute(pool).await.map(|_| ()).unwrap())
    }
}

pub fn extract_csrf(body: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = body.find(marker)? + marker.len();
    Some(body.get(start..start + 64)?.to_owned())
}

/// The audit entries recorded with `action`, oldest first.
pub async fn audit_entries(db: &Database, action: &str) -> Vec<beffroi::audit::entry::Entry> {
    beffroi::audit::store::stored_entries(db)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.entry)
        .filter(|e| e.action == action)
        .collect()
}

/// An entry's details, parsed.
pub fn details(entry: &beffroi::audit::entry::Entry) -> serde_json::Value {
    serde_json::from_str(&entry.details).unwrap()
}
