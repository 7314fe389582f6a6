//! A JSONL export verifies with `audit/verify.py` and with `beffroi audit verify`; every way of
//! tampering with the file is named by its first bad entry or checkpoint; a filtered export
//! verifies despite its gaps; a log damaged in the database gets the same verdict from both.

use std::path::PathBuf;
use std::process::Command;

use beffroi::audit::checkpoint::{Checkpoint, CheckpointSigner};
use beffroi::audit::export::{ExportFormat, export};
use beffroi::audit::query::{Filter, Page, search};
use beffroi::audit::store;
use beffroi::audit::verify::{Tampering, VerifyError, verify};
use beffroi::security_events::Actor;
use serde_json::{Value, json};

use super::{Log, populate_for_export};
use crate::both_backends;
use crate::helpers::Backend;

both_backends!(
    an_export_verifies_in_python_and_in_rust,
    every_tampering_of_an_export_is_named,
    a_filtered_export_verifies_and_is_recorded,
    a_damaged_log_gets_the_same_verdict_from_both_verifiers,
);

async fn an_export_verifies_in_python_and_in_rust(backend: Backend) {
    let log = Log::new(backend).await;
    populate_for_export(&log).await;
    let (bytes, summary) = log.export(&Filter::default(), ExportFormat::Jsonl).await;
    assert_eq!(
        (summary.entries, summary.purged, summary.log_size),
        (12, 1, 12)
    );
    // Its own record is the next entry, not in the export; a fresh checkpoint covers both.
    assert_eq!(summary.record_seq, 13);
    let covering = summary.checkpoint.clone().unwrap();
    assert_eq!(covering.tree_size, 13);

    let (ok, out) = log.verify_py("export.jsonl", &bytes, &log.key_hex());
    assert!(ok, "{out}");
    assert!(
        out.starts_with(&format!(
            "ok   audit export verified: 12 entries (1 purged), 3 checkpoints, covering tree size 13, root {}",
            hex::encode(covering.root)
        )),
        "{out}"
    );
    let report = verify(&log.db, Some(&log.signer.public_key()))
        .await
        .unwrap();
    assert_eq!(
        (report.entries, report.purged, report.checkpoints),
        (13, 1, 3)
    );
    assert_eq!(report.root, covering.root);

    // The export shows every field as stored: details is the stored JSON text, as a string.
    let text = String::from_utf8(bytes).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1 + 12 + 1);
    let stored = store::stored_entries(&log.db).await.unwrap();
    let sixth = &lines[6];
    assert_eq!(sixth["details"], json!(stored[5].entry.details));
    assert_eq!(sixth["actor_name"], json!("Zoé \"Z\" Ñúñez, 東京"));
    assert_eq!(sixth["leaf_hash"], json!(hex::encode(&stored[5].leaf_hash)));
    assert_eq!(lines[3]["actor_id"], json!(-3));
    assert_eq!(lines[3]["actor_name"], json!(""));
    assert_eq!(lines[1]["actor_name"], json!(null));
    assert_eq!(lines[2]["purged"], json!(true));
    assert_eq!(lines[2]["details"], json!("{}"));
    assert_eq!(lines[0]["format"], json!("beffroi-audit-export/v1"));
    assert_eq!(lines[0]["public_key"], json!(log.key_hex()));
    let sizes: Vec<&Value> = lines[0]["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["tree_size"])
        .collect();
    assert_eq!(sizes, [&json!(4), &json!(9), &json!(13)]);
    assert_eq!(lines[0]["consistency"].as_array().unwrap().len(), 2);

    // A second export reuses the checkpoint that covers it: one more only when needed.
    let (_, again) = log.export(&Filter::default(), ExportFormat::Jsonl).await;
    assert_eq!(
        (again.entries, again.checkpoint.unwrap().tree_size),
        (13, 13)
    );
}

/// Applies `change` to the lines of an export and joins them again.
fn tampered(bytes: &[u8], change: impl FnOnce(&mut Vec<String>)) -> Vec<u8> {
    let mut lines: Vec<String> = String::from_utf8(bytes.to_vec())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    change(&mut lines);
    let mut out = lines.join("\n");
    out.push('\n');
    out.into_bytes()
}

/// Line index of entry `seq` in an unfiltered export (the header is line 0).
fn line_of(seq: usize) -> usize {
    seq
}

fn edit_json(line: &mut String, change: impl FnOnce(&mut Value)) {
    let mut value: Value = serde_json::from_str(line).unwrap();
    change(&mut value);
    *line = value.to_string();
}

async fn every_tampering_of_an_export_is_named(backend: Backend) {
    let log = Log::new(backend).await;
    populate_for_export(&log).await;
    let (bytes, _) = log.export(&Filter::default(), ExportFormat::Jsonl).await;
    let key = log.key_hex();
    let intruder = CheckpointSigner::from_seed(&[9u8; 32]).unwrap();
    let stored = store::stored_entries(&log.db).await.unwrap();

    type Change = Box<dyn FnOnce(&mut Vec<String>)>;
    let cases: Vec<(&str, Change, String)> = vec![
        (
            "a field changed",
            Box::new(|l| edit_json(&mut l[line_of(5)], |v| v["actor_name"] = json!("Mallory"))),
            "entry 5 does not match its hash (a field was changed)".into(),
        ),
        (
            "details re-serialised (same JSON, other bytes)",
            Box::new(|l| {
                edit_json(&mut l[line_of(4)], |v| {
                    let details: Value =
                        serde_json::from_str(v["details"].as_str().unwrap()).unwrap();
                    v["details"] = json!(serde_json::to_string_pretty(&details).unwrap());
                })
            }),
            "entry 4 does not match its hash (a field was changed)".into(),
        ),
        (
            "a field changed and its hash recomputed",
            Box::new({
                let mut forged = stored[6].entry.clone();
                forged.outcome = "success".into();
                let hash = hex::encode(forged.leaf_hash().unwrap());
                move |l| {
                    edit_json(&mut l[line_of(7)], |v| {
                        v["outcome"] = json!("success");
                        v["leaf_hash"] = json!(hash);
                    })
                }
            }),
            "entry 7 is not in the tree of the checkpoint at tree size 13 (history rewritten)"
                .into(),
        ),
        (
            "a line deleted",
            Box::new(|l| {
                l.remove(line_of(7));
            }),
            "entry 7 is missing (the next exported entry is 8)".into(),
        ),
        (
            // An export of the whole log must hold every entry up to its log size.
            "a line deleted and the next one's link mended",
            Box::new(|l| {
                l.remove(line_of(7));
                edit_json(&mut l[line_of(7)], |v| v["prev_seq"] = json!(6));
            }),
            "entry 7 is missing (the next exported entry is 8)".into(),
        ),
        (
            "two lines swapped",
            Box::new(|l| l.swap(line_of(4), line_of(5))),
            "entry 4 is missing (the next exported entry is 5)".into(),
        ),
        (
            "two lines swapped and their links mended",
            Box::new(|l| {
                l.swap(line_of(4), line_of(5));
                edit_json(&mut l[line_of(4)], |v| v["prev_seq"] = json!(3));
                edit_json(&mut l[line_of(5)], |v| v["prev_seq"] = json!(5));
            }),
            "entry 4 is missing (the next exported entry is 5)".into(),
        ),
        (
            "a line repeated",
            Box::new(|l| {
                let copy = l[line_of(3)].clone();
                l.insert(line_of(4), copy);
            }),
            "entry 3 is out of order (it comes after entry 3)".into(),
        ),
        (
            "the tail cut off",
            Box::new(|l| l.truncate(line_of(8) + 1)),
            "the export is truncated after entry 8 (no seal)".into(),
        ),
        (
            "a checkpoint's signature forged",
            Box::new(|l| {
                edit_json(&mut l[0], |v| {
                    let sig = v["checkpoints"][1]["signature"]
                        .as_str()
                        .unwrap()
                        .to_owned();
                    let flipped = if sig.starts_with('0') { "1" } else { "0" };
                    v["checkpoints"][1]["signature"] = json!(format!("{flipped}{}", &sig[1..]));
                })
            }),
            "checkpoint at tree size 9: bad signature".into(),
        ),
        (
            "a checkpoint moved to another tree size",
            Box::new(|l| edit_json(&mut l[0], |v| v["checkpoints"][0]["tree_size"] = json!(3))),
            "checkpoint at tree size 3: bad signature".into(),
        ),
        (
            "the key swapped: checkpoints re-signed by another key",
            Box::new({
                let forger = CheckpointSigner::from_seed(&[9u8; 32]).unwrap();
                let intruder_key = hex::encode(forger.public_key());
                move |l| {
                    edit_json(&mut l[0], |v| {
                        v["public_key"] = json!(intruder_key);
                        for cp in v["checkpoints"].as_array_mut().unwrap() {
                            let checkpoint = Checkpoint {
                                tree_size: cp["tree_size"].as_u64().unwrap(),
                                root: hex::decode(cp["root"].as_str().unwrap())
                                    .unwrap()
                                    .try_into()
                                    .unwrap(),
                                time_us: cp["time_us"].as_i64().unwrap(),
                            };
                            cp["public_key"] = json!(intruder_key);
                            cp["signature"] = json!(hex::encode(forger.sign(&checkpoint)));
                        }
                    })
                }
            }),
            "checkpoint at tree size 4 was signed by another key".into(),
        ),
        (
            "an entry marked purged to hide a change",
            Box::new(|l| {
                edit_json(&mut l[line_of(8)], |v| {
                    v["purged"] = json!(true);
                    v["actor_name"] = json!("Someone Else");
                })
            }),
            "entry 8 is marked purged but keeps personal fields (a field was changed)".into(),
        ),
        (
            "a purged entry's stored hash replaced",
            Box::new(|l| {
                edit_json(&mut l[line_of(2)], |v| {
                    v["leaf_hash"] = json!("00".repeat(32))
                })
            }),
            "entry 2 is not in the tree of the checkpoint at tree size 13 (history rewritten)"
                .into(),
        ),
        (
            "the filter in the header changed",
            Box::new(|l| edit_json(&mut l[0], |v| v["filter"]["action"] = json!("auth.sign_in"))),
            "the export was changed after it was sealed (its SHA-256 differs)".into(),
        ),
        (
            "the seal re-made without the key",
            Box::new(|l| {
                let seal = l.len() - 1;
                edit_json(&mut l[seal], |v| {
                    v["seal"]["signature"] = json!("11".repeat(64))
                });
            }),
            "the seal: bad signature".into(),
        ),
    ];
    for (i, (what, change, expected)) in cases.into_iter().enumerate() {
        let forged = tampered(&bytes, change);
        let (ok, out) = log.verify_py(&format!("tampered-{i}.jsonl"), &forged, &key);
        assert!(!ok, "{what}: accepted: {out}");
        assert_eq!(
            out.trim_end(),
            format!("error: audit export TAMPERED: {expected}"),
            "{what}"
        );
    }

    // A copy cut in the middle of a line (here, the seal).
    let cut = &bytes[..bytes.len() - 40];
    let (ok, out) = log.verify_py("cut.jsonl", cut, &key);
    assert!(!ok);
    assert_eq!(
        out.trim_end(),
        "error: audit export TAMPERED: the export is truncated after entry 12 (its last line is incomplete)"
    );

    // The genuine export, checked with another (valid) key than the server's.
    let (ok, out) = log.verify_py("export.jsonl", &bytes, &hex::encode(intruder.public_key()));
    assert!(!ok);
    assert!(
        out.contains("checkpoint at tree size 4 was signed by another key"),
        "{out}"
    );
    // Keys no honest key generation makes are refused before anything is read.
    for weak in [
        "0100000000000000000000000000000000000000000000000000000000000000",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ] {
        let path = log.dir.path().join("export.jsonl");
        let out = Command::new("python3")
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("audit/verify.py"))
            .arg(&path)
            .args(["--public-key", weak])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{weak}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("public key refused"),
            "{weak}"
        );
    }
    // The untouched export still verifies, the purged entry included.
    let (ok, out) = log.verify_py("export.jsonl", &bytes, &key);
    assert!(ok && out.contains("(1 purged)"), "{out}");
}

async fn a_filtered_export_verifies_and_is_recorded(backend: Backend) {
    let log = Log::new(backend).await;
    populate_for_export(&log).await;
    let checkpoints = |log: &Log| {
        let db = log.db.clone();
        async move {
            beffroi::with_db!(&db, pool => sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM audit_checkpoints").fetch_one(pool).await.unwrap())
        }
    };
    // Entries 1, 5 and 9 match; checkpoint 9 covers them all: no new checkpoint.
    let filter = Filter {
        action: Some("auth.sign_in_failure".into()),
        ..Filter::default()
    };
    let (bytes, summary) = log.export(&filter, ExportFormat::Jsonl).await;
    assert_eq!(summary.entries, 3);
    assert_eq!(summary.checkpoint.unwrap().tree_size, 9);
    assert_eq!(checkpoints(&log).await, 2);
    let (ok, out) = log.verify_py("filtered.jsonl", &bytes, &log.key_hex());
    assert!(ok, "{out}");
    assert!(
        out.contains("3 entries (0 purged), 2 checkpoints, covering tree size 9"),
        "{out}"
    );
    let text = String::from_utf8(bytes.clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let exported: Vec<(u64, u64)> = lines[1..4]
        .iter()
        .map(|l| (l["seq"].as_u64().unwrap(), l["prev_seq"].as_u64().unwrap()))
        .collect();
    assert_eq!(exported, [(1, 0), (5, 1), (9, 5)]);
    assert_eq!(lines[0]["filter"]["action"], json!("auth.sign_in_failure"));

    // Removing a line from a filtered export is named too, despite the gaps.
    let forged = tampered(&bytes, |l| {
        l.remove(2);
    });
    let (ok, out) = log.verify_py("filtered-forged.jsonl", &forged, &log.key_hex());
    assert!(!ok);
    assert!(
        out.contains("entry 5 is missing (the next exported entry is 9)"),
        "{out}"
    );
    // ...and so is a removal hidden by mending the next line's link: the seal counts lines.
    let forged = tampered(&bytes, |l| {
        l.remove(2);
        edit_json(&mut l[2], |v| v["prev_seq"] = json!(1));
    });
    let (ok, out) = log.verify_py("filtered-mended.jsonl", &forged, &log.key_hex());
    assert!(!ok);
    assert!(
        out.contains(
            "the seal counts 3 entries but the export has 2 (lines were added or removed)"
        ),
        "{out}"
    );

    // The export is on record, with who asked, the filter and the count.
    let records = search(
        &log.db,
        &Filter {
            action: Some("audit.export".into()),
            ..Filter::default()
        },
        Page::first(10),
    )
    .await
    .unwrap();
    let record = &records.entries[0].entry;
    assert_eq!(record.seq, summary.record_seq);
    assert_eq!(record.seq, 13);
    assert_eq!(
        (record.actor_id, record.actor_name.as_deref()),
        (Some(1), Some("Auditor"))
    );
    assert_eq!(record.actor_ip.as_deref(), Some("192.0.2.99"));
    let details: Value = serde_json::from_str(&record.details).unwrap();
    assert_eq!(details["count"], json!(3));
    assert_eq!(details["format"], json!("jsonl"));
    assert_eq!(details["filter"]["action"], json!("auth.sign_in_failure"));
    assert_eq!(details["log_size"], json!(12));

    // Entries past every checkpoint: the export signs one that covers them (and its record).
    let filter = Filter {
        action: Some("auth.sign_out".into()),
        ..Filter::default()
    };
    let (bytes, summary) = log.export(&filter, ExportFormat::Jsonl).await;
    assert_eq!(summary.entries, 3); // 3, 7, 11
    assert_eq!(summary.checkpoint.unwrap().tree_size, 14);
    assert_eq!(checkpoints(&log).await, 3);
    let (ok, out) = log.verify_py("past.jsonl", &bytes, &log.key_hex());
    assert!(ok, "{out}");

    // Nothing matches: an export with no entry still verifies.
    let filter = Filter {
        actor: Some("nobody".into()),
        ..Filter::default()
    };
    let (bytes, summary) = log.export(&filter, ExportFormat::Jsonl).await;
    assert_eq!(summary.entries, 0);
    let (ok, out) = log.verify_py("empty.jsonl", &bytes, &log.key_hex());
    assert!(ok && out.contains("0 entries"), "{out}");
    verify(&log.db, Some(&log.signer.public_key()))
        .await
        .unwrap();
}

async fn a_damaged_log_gets_the_same_verdict_from_both_verifiers(backend: Backend) {
    // A field changed in the database: `beffroi audit verify` and verify.py name entry 3.
    let log = Log::new(backend).await;
    populate_for_export(&log).await;
    log.disable_protection(backend).await;
    log.exec("UPDATE audit_log SET target = 'account:9' WHERE seq = 3")
        .await;
    match verify(&log.db, Some(&log.signer.public_key())).await {
        Err(VerifyError::Tampered(t)) => assert_eq!(t, Tampering::Altered { seq: 3 }),
        other => panic!("not detected: {other:?}"),
    }
    let (bytes, _) = log.export(&Filter::default(), ExportFormat::Jsonl).await;
    let (ok, out) = log.verify_py("damaged.jsonl", &bytes, &log.key_hex());
    assert!(!ok);
    assert_eq!(
        out.trim_end(),
        format!(
            "error: audit export TAMPERED: {}",
            Tampering::Altered { seq: 3 }
        )
    );

    // History rewritten in the database (field and hash): the checkpoints tell.
    let log = Log::new(backend).await;
    populate_for_export(&log).await;
    log.disable_protection(backend).await;
    let mut forged = store::stored_entries(&log.db).await.unwrap()[2]
        .entry
        .clone();
    forged.target = Some("account:9".into());
    let hash = forged.leaf_hash().unwrap().to_vec();
    beffroi::with_db!(&log.db, pool => sqlx::query(
        "UPDATE audit_log SET target = 'account:9', leaf_hash = $1 WHERE seq = 3"
    ).bind(hash).execute(pool).await.map(|_| ()).unwrap());
    assert!(matches!(
        verify(&log.db, Some(&log.signer.public_key())).await,
        Err(VerifyError::Tampered(Tampering::Rewritten { tree_size: 4 }))
    ));
    // An export that checkpoint 9 covers: entry 3 is not in the tree the key signed.
    let filter = Filter {
        target: Some("account:9".into()),
        ..Filter::default()
    };
    let (bytes, summary) = log.export(&filter, ExportFormat::Jsonl).await;
    assert_eq!(summary.checkpoint.unwrap().tree_size, 9);
    let (ok, out) = log.verify_py("rewritten-3.jsonl", &bytes, &log.key_hex());
    assert!(!ok);
    assert!(
        out.contains(
            "entry 3 is not in the tree of the checkpoint at tree size 9 (history rewritten)"
        ),
        "{out}"
    );
    // The whole log: the export signs checkpoint 14 over the rewritten history, which cannot be
    // an extension of the checkpoint signed at 9 before the rewrite.
    let (bytes, summary) = log.export(&Filter::default(), ExportFormat::Jsonl).await;
    assert_eq!(summary.checkpoint.unwrap().tree_size, 14);
    let (ok, out) = log.verify_py("rewritten.jsonl", &bytes, &log.key_hex());
    assert!(!ok);
    assert!(
        out.contains("checkpoint at tree size 14 is not consistent with the checkpoint at tree size 9 (history rewritten)"),
        "{out}"
    );

    // An entry deleted under a checkpoint: nothing can be proved; the export says why.
    let log = Log::new(backend).await;
    populate_for_export(&log).await;
    log.disable_protection(backend).await;
    log.exec("DELETE FROM audit_log WHERE seq = 7").await;
    let err = export(
        &log.db,
        &log.signer,
        &Filter::default(),
        ExportFormat::Jsonl,
        &Actor::console(),
        Vec::new(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("entry 7 is missing (the next stored entry is 8)"),
        "{err}"
    );
}
