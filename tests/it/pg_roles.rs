//! PostgreSQL with a separate owner role: `Database::open` migrates as the owner and leaves the
//! server's runtime role unable to change or remove audit entries by any route — not by UPDATE,
//! DELETE or TRUNCATE, and not by disabling the triggers (only a table's owner may) — while the
//! server itself runs normally as that role. (SQLite has no roles; its triggers are tested in
//! audit.rs.)

use beffroi::config::Config;
use beffroi::db::Database;

use crate::helpers::{Backend, TestApp, TestDatabase, pg_base_url, snapshot_policy};

async fn admin_pool() -> sqlx::PgPool {
    sqlx::PgPool::connect(&format!("{}/postgres", pg_base_url()))
        .await
        .unwrap()
}

fn config_for(data_dir: &std::path::Path, runtime_url: &str, owner_url: &str) -> Config {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = \"{}\"\n\
         database_url = \"{runtime_url}\"\nmigration_database_url = \"{owner_url}\"\n\
         [tls]\nreload_check_secs = 1\n",
        data_dir.display()
    );
    Config::from_toml(&text, std::path::Path::new("test.toml"), Vec::new()).unwrap()
}

/// The error text of a statement run as the runtime role (which must fail).
async fn refused(db: &Database, sql: &'static str) -> String {
    let Database::Postgres(pool) = db else {
        unreachable!()
    };
    match sqlx::query(sql).execute(pool).await {
        Ok(_) => panic!("the runtime role could run {sql}"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_role_cannot_alter_the_audit_log_yet_the_server_runs() {
    beffroi::tls::install_crypto_provider();
    let role = format!(
        "beffroi_rt_{}",
        beffroi::auth::session::random_token()
            .unwrap()
            .to_ascii_lowercase()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(12)
            .collect::<String>()
    );
    let admin = admin_pool().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE ROLE {role} LOGIN")))
        .execute(&admin)
        .await
        .unwrap();

    let outcome = async {
        let test_db = TestDatabase::create(Backend::Postgres).await;
        let owner_url = test_db.url.clone().unwrap();
        let name = owner_url.rsplit('/').next().unwrap().to_owned();
        let runtime_url = format!(
            "{}/{name}",
            pg_base_url().replace("postgres@", &format!("{role}@"))
        );
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let config = config_for(&data_dir, &runtime_url, &owner_url);

        // The same role on both sides is refused, naming the key.
        let same = config_for(
            &data_dir,
            &owner_url,
            &owner_url.replace("127.0.0.1", "localhost"),
        );
        let err = Database::open(&same, &snapshot_policy(&data_dir))
            .await
            .expect_err("one role for both must be refused")
            .to_string();
        assert!(err.contains("storage.migration_database_url"), "{err}");

        let (db, report) = Database::open(&config, &snapshot_policy(&data_dir))
            .await
            .unwrap();
        assert!(!report.applied.is_empty());
        let Database::Postgres(pool) = &db else {
            unreachable!()
        };
        let me: String = sqlx::query_scalar("SELECT current_user::text")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(me, role);

        // The server runs as the runtime role: sign-in writes sessions and audit entries.
        let server = beffroi::server::start(config.clone(), db.clone())
            .await
            .unwrap();
        let base = format!("https://127.0.0.1:{}", server.addr.port());
        let app = TestApp {
            server,
            base,
            config,
            data_dir,
            _dir: dir,
            _db: test_db,
        };
        app.create_admin("alice", "correct-horse-battery-staple")
            .await;
        let client = app.client();
        let response = app
            .sign_in(&client, "alice", "correct-horse-battery-staple")
            .await;
        assert!(response.status().is_redirection(), "{}", response.status());
        let signed_in = crate::helpers::audit_entries(app.db(), "auth.sign_in").await;
        assert_eq!(signed_in.len(), 1);
        let summary = beffroi::audit::verify::verify(app.db(), None)
            .await
            .unwrap();
        let rows = app.count("SELECT COUNT(*) FROM audit_log").await;
        assert_eq!(summary.entries, u64::try_from(rows).unwrap());

        for sql in [
            "UPDATE audit_log SET action = action",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            "UPDATE audit_checkpoints SET tree_size = tree_size",
            "DELETE FROM audit_checkpoints",
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (999, 'x', TRUE, '\\x00', 0)",
        ] {
            let err = refused(app.db(), sql).await;
            assert!(err.contains("permission denied"), "{sql}: {err}");
        }
        for sql in [
            "ALTER TABLE audit_log DISABLE TRIGGER ALL",
            "DROP TRIGGER audit_log_guard_rows ON audit_log",
            "DROP TABLE audit_log",
        ] {
            let err = refused(app.db(), sql).await;
            assert!(err.contains("must be owner"), "{sql}: {err}");
        }
        let err = refused(app.db(), "CREATE TABLE shadow (id INTEGER)").await;
        assert!(err.contains("permission denied"), "{err}");
        app.server.shutdown().await;
    };
    outcome.await;
    // The test database is gone with its grants; the role can go too.
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS {role}")))
        .execute(&admin)
        .await
        .unwrap();
}
