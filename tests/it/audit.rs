//! The audit log table: appends in the caller's transaction without gaps (also when concurrent),
//! stored leaf hashes equal to the entries' canonical hashes, and a table that refuses UPDATE,
//! DELETE (and TRUNCATE on PostgreSQL) except the retention purge.

use beffroi::audit::merkle;
use beffroi::audit::store::{self, NewEntry};

use crate::both_backends;
use crate::helpers::{Backend, spawn_app};

both_backends!(
    appends_are_gapless_and_hash_what_is_stored,
    the_table_is_append_only,
    verify_names_the_first_bad_entry,
);

fn new_entry(n: usize) -> NewEntry {
    NewEntry {
        actor_id: Some(1),
        actor_name: Some("Alice".into()),
        actor_ip: Some("192.0.2.1".into()),
        request_id: None,
        action: "audit.checkpoint",
        target: Some(format!("thing-{n}")),
        outcome: "success",
        details: serde_json::json!({ "n": n }),
    }
}

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
    let mut recomputed = Vec::new();
    for stored in store::stored_entries(&db).await.unwrap() {
        let hash = stored.entry.leaf_hash().unwrap();
        assert_eq!(
            hash.to_vec(),
            stored.leaf_hash,
            "entry {}",
            stored.stored_seq
        );
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

/// Drops the append-only protection, as a database superuser could.
async fn disable_protection(app: &crate::helpers::TestApp, backend: Backend) {
    let statements: &[&'static str] = match backend {
        Backend::Sqlite => &[
            "DROP TRIGGER audit_log_no_delete",
            "DROP TRIGGER audit_log_only_purge",
            "DROP TRIGGER audit_checkpoints_no_update",
            "DROP TRIGGER audit_checkpoints_no_delete",
        ],
        Backend::Postgres => &[
            "ALTER TABLE audit_log DISABLE TRIGGER USER",
            "ALTER TABLE audit_checkpoints DISABLE TRIGGER USER",
        ],
    };
    for sql in statements {
        app.exec(sql).await;
    }
}

async fn verify_names_the_first_bad_entry(backend: Backend) {
    use beffroi::audit::checkpoint::CheckpointSigner;
    use beffroi::audit::verify::{Tampering, VerifyError, verify, write_checkpoint};
    let signer = CheckpointSigner::from_seed(&[3u8; 32]).unwrap();
    let key = signer.public_key();
    // Each tampering on a fresh log of 10 entries with checkpoints at 5 and 10.
    let cases: Vec<(&'static str, &'static [&'static str], Tampering)> = vec![
        (
            "field changed",
            &["UPDATE audit_log SET actor_name = 'Mallory' WHERE seq = 3"],
            Tampering::Altered { seq: 3 },
        ),
        (
            "entry deleted",
            &["DELETE FROM audit_log WHERE seq = 7"],
            Tampering::Gap {
                expected: 7,
                found: 8,
            },
        ),
        (
            "tail truncated",
            &["DELETE FROM audit_log WHERE seq > 8"],
            Tampering::Truncated {
                tree_size: 10,
                entries: 8,
            },
        ),
        (
            "entries reordered",
            &[
                "UPDATE audit_log SET seq = 100 WHERE seq = 4",
                "UPDATE audit_log SET seq = 4 WHERE seq = 5",
                "UPDATE audit_log SET seq = 5 WHERE seq = 100",
            ],
            Tampering::Altered { seq: 4 },
        ),
        (
            "checkpoint forged",
            &["UPDATE audit_checkpoints SET tree_size = 4 WHERE tree_size = 5"],
            Tampering::BadSignature { tree_size: 4 },
        ),
    ];
    for (what, statements, expected) in cases {
        let app = spawn_app(backend).await;
        let db = app.db().clone();
        for n in 1..=10 {
            let mut tx = db.begin().await.unwrap();
            store::append(&mut tx, new_entry(n)).await.unwrap();
            tx.commit().await.unwrap();
            if n == 5 || n == 10 {
                assert!(write_checkpoint(&db, &signer).await.unwrap().is_some());
            }
        }
        let clean = verify(&db, Some(&key)).await.unwrap();
        assert_eq!((clean.entries, clean.checkpoints), (10, 2), "{what}");
        disable_protection(&app, backend).await;
        for sql in statements {
            app.exec(sql).await;
        }
        match verify(&db, Some(&key)).await {
            Err(VerifyError::Tampered(found)) => assert_eq!(found, expected, "{what}"),
            other => panic!("{what}: not detected: {other:?}"),
        }
    }
    // History rewritten consistently: entry 2 changed AND its stored hash recomputed, so only the
    // signed checkpoint can tell.
    let app = spawn_app(backend).await;
    let db = app.db().clone();
    let mut written = Vec::new();
    for n in 1..=5 {
        let mut tx = db.begin().await.unwrap();
        written.push(store::append(&mut tx, new_entry(n)).await.unwrap());
        tx.commit().await.unwrap();
    }
    write_checkpoint(&db, &signer).await.unwrap();
    disable_protection(&app, backend).await;
    let mut forged = written[1].clone();
    forged.actor_name = Some("Mallory".into());
    let hash = forged.leaf_hash().unwrap().to_vec();
    beffroi::with_db!(&db, pool => sqlx::query(
        "UPDATE audit_log SET actor_name = 'Mallory', leaf_hash = $1 WHERE seq = 2"
    ).bind(hash).execute(pool).await.map(|_| ()).unwrap());
    assert!(matches!(
        verify(&db, Some(&key)).await,
        Err(VerifyError::Tampered(Tampering::Rewritten { tree_size: 5 }))
    ));

    // A checkpoint signed by another key.
    let app = spawn_app(backend).await;
    let db = app.db().clone();
    let mut tx = db.begin().await.unwrap();
    store::append(&mut tx, new_entry(1)).await.unwrap();
    tx.commit().await.unwrap();
    let intruder = CheckpointSigner::from_seed(&[9u8; 32]).unwrap();
    write_checkpoint(&db, &intruder).await.unwrap();
    assert!(matches!(
        verify(&db, Some(&key)).await,
        Err(VerifyError::Tampered(Tampering::ForeignKey {
            tree_size: 1
        }))
    ));
}
