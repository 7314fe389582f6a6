//! An auditor searches the audit log and exports it. Every filter criterion selects exactly its
//! entries on both backends (`search`); a JSONL export verifies with the independent
//! `audit/verify.py` and with `beffroi audit verify`, and each way of tampering with the file is
//! caught and named (`verify`); a CSV export quotes by RFC 4180 and defuses spreadsheet formulas,
//! and the command line exports what verify.py accepts (`formats`).
//!
//! This file holds what they share: a migrated database without a server (these tests talk to
//! the log directly), ways to fill it, and a runner for verify.py.

mod formats;
mod search;
mod verify;

use std::path::{Path, PathBuf};
use std::process::Command;

use beffroi::audit::checkpoint::CheckpointSigner;
use beffroi::audit::export::{ExportFormat, ExportSummary, export};
use beffroi::audit::query::Filter;
use beffroi::audit::store::{self, NewEntry};
use beffroi::audit::verify::write_checkpoint;
use beffroi::db::Database;
use beffroi::security_events::Actor;
use serde_json::{Value, json};

use crate::helpers::{Backend, Options, TestDatabase, snapshot_policy, test_config};

/// A migrated database of its own, without a server: these tests talk to the log directly.
pub struct Log {
    pub db: Database,
    pub dir: tempfile::TempDir,
    pub test_db: TestDatabase,
    pub signer: CheckpointSigner,
}

impl Log {
    async fn new(backend: Backend) -> Self {
        beffroi::tls::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let test_db = TestDatabase::create(backend).await;
        let config = test_config(&data_dir, &test_db, &Options::default());
        let db = Database::connect(&config).await.unwrap();
        db.migrate(&snapshot_policy(&data_dir)).await.unwrap();
        Self {
            db,
            dir,
            test_db,
            signer: CheckpointSigner::from_seed(&[5u8; 32]).unwrap(),
        }
    }

    fn key_hex(&self) -> String {
        hex::encode(self.signer.public_key())
    }

    async fn append(&self, new: NewEntry) -> u64 {
        let mut tx = self.db.begin().await.unwrap();
        let entry = store::append(&mut tx, new).await.unwrap();
        tx.commit().await.unwrap();
        entry.seq
    }

    async fn checkpoint(&self) {
        assert!(
            write_checkpoint(&self.db, &self.signer)
                .await
                .unwrap()
                .is_some()
        );
    }

    async fn export(&self, filter: &Filter, format: ExportFormat) -> (Vec<u8>, ExportSummary) {
        let mut out = Vec::new();
        let summary = export(
            &self.db,
            &self.signer,
            filter,
            format,
            &Actor {
                account_id: Some(1),
                name: Some("Auditor".into()),
                ip: Some("192.0.2.99".into()),
                request_id: Some("req-1".into()),
            },
            &mut out,
        )
        .await
        .unwrap();
        (out, summary)
    }

    /// Writes `bytes` to a file in the test's directory and runs `audit/verify.py` on it.
    fn verify_py(&self, name: &str, bytes: &[u8], key: &str) -> (bool, String) {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        verify_py(&path, key)
    }

    async fn exec(&self, sql: &'static str) {
        beffroi::with_db!(&self.db, pool => sqlx::query(sql).execute(pool).await.map(|_| ()).unwrap())
    }

    /// Drops the append-only protection, as a database superuser could.
    async fn disable_protection(&self, backend: Backend) {
        let statements: &[&'static str] = match backend {
            Backend::Sqlite => &[
                "DROP TRIGGER audit_log_no_delete",
                "DROP TRIGGER audit_log_only_purge",
            ],
            Backend::Postgres => &["ALTER TABLE audit_log DISABLE TRIGGER USER"],
        };
        for sql in statements {
            self.exec(sql).await;
        }
    }
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

#[allow(clippy::too_many_arguments)]
fn entry(
    actor_id: Option<i64>,
    actor_name: Option<&str>,
    actor_ip: Option<&str>,
    action: &'static str,
    target: Option<&str>,
    outcome: &'static str,
    details: Value,
) -> NewEntry {
    NewEntry {
        actor_id,
        actor_name: actor_name.map(str::to_owned),
        actor_ip: actor_ip.map(str::to_owned),
        request_id: Some("0123abcd".into()),
        action,
        target: target.map(str::to_owned),
        outcome,
        details,
    }
}

/// The log the filter tests search: six entries, one per line below.
async fn populate_for_search(log: &Log) {
    #[rustfmt::skip]
    let entries = [
        entry(Some(7), Some("Alice Martin"), Some("192.0.2.10"), "auth.sign_in", None, "success", json!({"method": "sso"})),
        entry(Some(8), Some("Bob Durand"), Some("192.0.2.11"), "auth.sign_in_failure", Some("account:8"), "failure", json!({})),
        entry(None, Some("console"), None, "account.roles_change", Some("account:7"), "success", json!({"after": "admin"})),
        entry(Some(7), Some("alice martin"), Some("2001:db8::1"), "auth.sign_out", None, "success", json!({})),
        entry(Some(17), Some("Élodie Zoé"), Some("198.51.100.7"), "auth.sign_in", Some("Account:7"), "denied", json!({})),
        entry(Some(70), Some("Mallory 7"), Some("192.0.2.100"), "scim.user_create", Some("100% sure"), "success", json!({})),
    ];
    for new in entries {
        log.append(new).await;
    }
}

/// Entry `n` of the export tests' log: the fields vary with `n % 4`.
#[rustfmt::skip]
fn export_entry(n: u64) -> NewEntry {
    match n % 4 {
        0 => entry(Some(7), Some("Alice Martin"), Some("192.0.2.10"), "auth.sign_in", None, "success", json!({"n": n, "method": "sso"})),
        1 => entry(None, None, None, "auth.sign_in_failure", Some("login:bob"), "failure", json!({"n": n, "reason": "wrong_password"})),
        2 => entry(Some(8), Some("Zoé \"Z\" Ñúñez, 東京"), Some("2001:db8::1"), "account.roles_change", Some("account:8"), "success", json!({"n": n, "note": "line\nbreak \u{1F600}"})),
        _ => entry(Some(-3), Some(""), Some("198.51.100.7"), "auth.sign_out", Some(""), "denied", json!({"n": n})),
    }
}

/// The retention purge of entry 2: personal fields blanked, the leaf hash kept.
async fn purge_entry_2(log: &Log) {
    log.exec(
        "UPDATE audit_log SET purged_at = 1, actor_id = NULL, actor_name = NULL, actor_ip = NULL, \
         request_id = NULL, target = NULL, details = '{}' WHERE seq = 2",
    )
    .await;
}

/// A log of 12 entries with checkpoints at 4 and 9, varied fields, and entry 2 purged.
async fn populate_for_export(log: &Log) {
    for n in 1..=12u64 {
        log.append(export_entry(n)).await;
        if n == 4 || n == 9 {
            log.checkpoint().await;
        }
    }
    purge_entry_2(log).await;
}
