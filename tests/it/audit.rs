//! The audit log table: appends in the caller's transaction without gaps (also when concurrent),
//! stored leaf hashes equal to the entries' canonical hashes, and a table that refuses UPDATE,
//! DELETE (and TRUNCATE on PostgreSQL) except the retention purge.

use beffroi::audit::entry::Entry;
use beffroi::audit::merkle;
use beffroi::audit::store::{self, NewEntry};

use crate::both_backends;
use crate::helpers::{Backend, spawn_app};

both_backends!(
    appends_are_gapless_and_hash_what_is_stored,
    the_table_is_append_only
);

fn new_entry(n: usize) -> NewEntry {
    NewEntry {
        actor_id: Some(1),
        actor_name: Some("Alice".into()),
        actor_ip: Some("192.0.2.1".into()),
        request_id: None,
        action: "test.action",
        target: Some(format!("thing-{n}")),
        outcome: "success",
        details: serde_json::json!({ "n": n }),
    }
}

type Row = (
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    String,
    String,
    Vec<u8>,
);

async fn appends_are_gapless_and_hash_what_is_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let db = app.db().clone();
    // A rolled-back append leaves no entry and no gap.
    let mut tx = db.begin().await.unwrap();
    store::append(&mut tx, new_entry(0)).await.unwrap();
    drop(tx);
    let mut tasks = Vec::new();
    for n in 1..=40 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let mut tx = db.begin().await.unwrap();
            let e = store::append(&mut tx, new_entry(n)).await.unwrap();
            tx.commit().await.unwrap();
            e.seq
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.sort();
    assert_eq!(seqs, (1..=40).collect::<Vec<u64>>());
    let rows: Vec<Row> = beffroi::with_db!(&db, pool => sqlx::query_as(
        "SELECT seq, time_us, actor_id, actor_name, actor_ip, request_id, action, target, outcome, details, leaf_hash \
         FROM audit_log ORDER BY seq").fetch_all(pool).await.unwrap());
    let mut recomputed = Vec::new();
    for (
        seq,
        time_us,
        actor_id,
        actor_name,
        actor_ip,
        request_id,
        action,
        target,
        outcome,
        details,
        leaf,
    ) in rows
    {
        let entry = Entry {
            seq: u64::try_from(seq).unwrap(),
            time_us,
            actor_id,
            actor_name,
            actor_ip,
            request_id,
            action,
            target,
            outcome,
            details,
        };
        let hash = entry.leaf_hash().unwrap();
        assert_eq!(hash.to_vec(), leaf, "entry {seq}");
        recomputed.push(hash);
    }
    let (size, root) = store::tree_head(&db).await.unwrap();
    assert_eq!(size, 40);
    assert_eq!(root, merkle::root(&recomputed));
}

async fn the_table_is_append_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let db = app.db().clone();
    let mut tx = db.begin().await.unwrap();
    for n in 1..=3 {
        store::append(&mut tx, new_entry(n)).await.unwrap();
    }
    tx.commit().await.unwrap();
    let (_, root_before) = store::tree_head(&db).await.unwrap();
    for sql in [
        "UPDATE audit_log SET actor_name = 'Mallory' WHERE seq = 2",
        "UPDATE audit_log SET seq = 9 WHERE seq = 3",
        "DELETE FROM audit_log WHERE seq = 3",
        "DELETE FROM audit_log",
        // A "purge" that keeps a personal field is not a purge.
        "UPDATE audit_log SET purged_at = 1, actor_id = NULL, actor_name = NULL, actor_ip = NULL, request_id = NULL, details = '{}' WHERE seq = 1",
    ] {
        let result =
            beffroi::with_db!(&db, pool => sqlx::query(sql).execute(pool).await.map(|_| ()));
        let err = result.expect_err(sql).to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    if backend == Backend::Postgres {
        let result = beffroi::with_db!(&db, pool => sqlx::query("TRUNCATE audit_log").execute(pool).await.map(|_| ()));
        assert!(result.unwrap_err().to_string().contains("append-only"));
        let result = beffroi::with_db!(&db, pool => sqlx::query("TRUNCATE audit_checkpoints").execute(pool).await.map(|_| ()));
        assert!(result.unwrap_err().to_string().contains("append-only"));
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log").await, 3);
    assert_eq!(
        store::tree_head(&db).await.unwrap().1,
        root_before,
        "nothing changed"
    );
    // The retention purge: personal fields blanked, hash kept, tree unchanged.
    beffroi::with_db!(&db, pool => sqlx::query(
        "UPDATE audit_log SET purged_at = 1, actor_id = NULL, actor_name = NULL, actor_ip = NULL, \
         request_id = NULL, target = NULL, details = '{}' WHERE seq = 1"
    ).execute(pool).await.map(|_| ()).unwrap());
    assert_eq!(store::tree_head(&db).await.unwrap().1, root_before);
    // …and a purged entry cannot be purged into something else.
    let again = beffroi::with_db!(&db, pool => sqlx::query(
        "UPDATE audit_log SET action = 'x' WHERE seq = 1").execute(pool).await.map(|_| ()));
    assert!(again.is_err());
}
