//! `beffroi bench audit`: the audit log's throughput and verification speed, measured on a
//! fresh database (SQLite in a temporary directory, or an empty PostgreSQL database given by
//! URL), printed as a Markdown table and optionally written into BENCHMARKS.md. These are
//! benchmarks, not tests: they fail nothing, they report figures.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;

use crate::audit::appender::GroupAppender;
use crate::audit::checkpoint::{Checkpoint, CheckpointSigner};
use crate::audit::merkle::CompactTree;
use crate::audit::store::{self, NewEntry};
use crate::config::Config;
use crate::db::{Database, SnapshotPolicy};

/// What to measure, from the command line.
#[derive(Debug, Clone)]
pub struct AuditBench {
    /// Entries in the log when it is verified.
    pub entries: u64,
    /// Concurrent callers of the group-commit appender.
    pub concurrency: usize,
    /// A PostgreSQL URL; SQLite in a temporary directory when absent.
    pub database_url: Option<String>,
    /// Where to write the results (a `## Audit log` section is replaced or added).
    pub write: Option<PathBuf>,
}

/// A realistic entry: a refused sign-in from a visitor.
fn sample(i: u64) -> NewEntry {
    NewEntry {
        actor_id: None,
        actor_name: None,
        actor_ip: Some(format!("192.0.2.{}", i % 250)),
        request_id: Some(format!("{i:024x}")),
        action: "auth.sign_in_failure",
        target: None,
        outcome: "denied",
        details: json!({ "method": "password", "login": format!("agent{}", i % 5000),
            "reason": "wrong_password" }),
    }
}

fn rate(n: u64, secs: f64) -> String {
    format!("{:.0}", n as f64 / secs.max(1e-9))
}

pub async fn run_audit(bench: &AuditBench) -> Result<String, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let db = open(dir.path(), bench.database_url.as_deref()).await?;
    let backend = if bench.database_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite (WAL, synchronous=FULL)"
    };
    let err = |e: crate::db::DbError| e.to_string();
    let mut rows: Vec<(String, String)> = Vec::new();

    // 1. One entry per transaction, one after the other: what a lone change costs.
    let single = 2_000u64;
    let start = Instant::now();
    for i in 0..single {
        let mut tx = db.begin().await.map_err(err)?;
        store::append(&mut tx, sample(i)).await.map_err(err)?;
        tx.commit().await.map_err(err)?;
    }
    let secs = start.elapsed().as_secs_f64();
    rows.push((
        format!("append, one transaction each, sequential ({single} entries)"),
        format!("{} entries/s", rate(single, secs)),
    ));

    // 2. Group commit: many concurrent callers, each waiting for its entry to be durable.
    let grouped = 100_000u64;
    let appender = GroupAppender::spawn(db.clone());
    let per_task = grouped / bench.concurrency.max(1) as u64;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..bench.concurrency.max(1) as u64 {
        let appender = appender.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_task {
                appender.append(sample(t * per_task + i)).await?;
            }
            Ok::<(), crate::db::DbError>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())?.map_err(err)?;
    }
    let done = per_task * bench.concurrency.max(1) as u64;
    let secs = start.elapsed().as_secs_f64();
    rows.push((
        format!(
            "append, group commit, {} concurrent callers ({done} entries)",
            bench.concurrency
        ),
        format!("{} entries/s", rate(done, secs)),
    ));

    // 3. Fill up to `entries` in batches, with a signed checkpoint every 1000 entries as the
    //    server would write them, so verification has a realistic number to check.
    let signer = CheckpointSigner::load_or_create(&dir.path().join("bench-key.pk8"))
        .map_err(|e| e.to_string())?;
    let mut tree = CompactTree::default();
    store::each_entry(&db, |e| {
        let hash: [u8; 32] = e.leaf_hash.try_into().unwrap_or([0; 32]);
        tree.push(hash);
        Ok::<(), crate::db::DbError>(())
    })
    .await
    .map_err(err)?;
    let start = Instant::now();
    let first = tree.size();
    while tree.size() < bench.entries {
        let n = (bench.entries - tree.size()).min(1000);
        let batch: Vec<NewEntry> = (0..n).map(|i| sample(tree.size() + i)).collect();
        let mut tx = db.begin().await.map_err(err)?;
        let stored = store::append_batch(&mut tx, batch).await.map_err(err)?;
        tx.commit().await.map_err(err)?;
        for entry in &stored {
            tree.push(entry.leaf_hash().map_err(|e| e.to_string())?);
        }
        let checkpoint = Checkpoint {
            tree_size: tree.size(),
            root: tree.root(),
            time_us: store::now_us(),
        };
        crate::audit::verify::store_checkpoint(&db, &checkpoint, &signer)
            .await
            .map_err(err)?;
    }
    let filled = tree.size() - first;
    let secs = start.elapsed().as_secs_f64();
    rows.push((
        format!("append, batches of 1000 + a signed checkpoint each ({filled} entries)"),
        format!("{} entries/s", rate(filled, secs)),
    ));

    // 4. Verify everything: every leaf hash, the tree, every checkpoint's signature and root.
    let start = Instant::now();
    let report = crate::audit::verify::verify(&db, Some(&signer.public_key()))
        .await
        .map_err(|e| e.to_string())?;
    let secs = start.elapsed().as_secs_f64();
    rows.push((
        format!(
            "`audit verify`: {} entries, {} checkpoints",
            report.entries, report.checkpoints
        ),
        format!("{secs:.2} s"),
    ));

    let mut out = format!(
        "## Audit log\n\nBackend: {backend}. Machine: {}. Command: `beffroi bench audit \
         --entries {} --concurrency {}{}` (release build).\n\n| measurement | result |\n|---|---|\n",
        machine(),
        bench.entries,
        bench.concurrency,
        if bench.database_url.is_some() {
            " --database-url …"
        } else {
            ""
        },
    );
    for (what, result) in rows {
        out.push_str(&format!("| {what} | {result} |\n"));
    }
    if let Some(path) = &bench.write {
        write_section(path, "## Audit log", &out)?;
    }
    Ok(out)
}

async fn open(dir: &Path, database_url: Option<&str>) -> Result<Database, String> {
    let mut text = format!("[storage]\ndata_dir = \"{}\"\n", dir.display());
    if let Some(url) = database_url {
        text.push_str(&format!("database_url = \"{url}\"\n"));
    }
    let config =
        Config::from_toml(&text, Path::new("bench.toml"), Vec::new()).map_err(|e| e.to_string())?;
    let db = Database::connect(&config)
        .await
        .map_err(|e| e.to_string())?;
    let fresh = SnapshotPolicy {
        dir: dir.join("snapshots"),
        pg_password: None,
        skip: true,
    };
    db.migrate(&fresh).await.map_err(|e| e.to_string())?;
    let existing = store::leaf_hashes(&db).await.map_err(|e| e.to_string())?;
    if !existing.is_empty() {
        return Err("the benchmark needs an empty database".into());
    }
    Ok(db)
}

/// CPU model and count, for the record.
fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} cores, {model}")
}

/// Replaces the section starting with `heading` (up to the next `## `) in the file at `path`,
/// or appends it; creates the file with a title if missing.
pub fn write_section(path: &Path, heading: &str, section: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|_| {
        "# Benchmarks\n\nFigures measured on the development machine with the commands shown; \
         regenerate them with those commands.\n\n"
            .into()
    });
    let new = match text.find(heading) {
        Some(start) => {
            let rest = &text[start + heading.len()..];
            let end = rest
                .find("\n## ")
                .map(|i| start + heading.len() + i + 1)
                .unwrap_or(text.len());
            format!("{}{}\n{}", &text[..start], section.trim_end(), &text[end..])
        }
        None => format!("{}\n{}", text.trim_end(), format_args!("\n\n{}", section)),
    };
    std::fs::write(path, new).map_err(|e| format!("{}: {e}", path.display()))
}
