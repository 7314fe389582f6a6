//! CSV quotes by RFC 4180 and defuses spreadsheet formulas; `beffroi audit export` writes a
//! private file that verify.py accepts, with every filter flag; and the fixture of
//! `audit/test_verify.py` is made here, by the real binary.

use std::path::PathBuf;
use std::process::Command;

use beffroi::audit::export::ExportFormat;
use beffroi::audit::query::Filter;
use beffroi::audit::store;
use serde_json::{Value, json};

use super::{Log, entry, export_entry, populate_for_search, purge_entry_2, verify_py};
use crate::both_backends;
use crate::helpers::Backend;

both_backends!(
    csv_is_quoted_and_formulas_are_neutralised,
    the_command_line_exports_what_verify_py_accepts,
);

async fn csv_is_quoted_and_formulas_are_neutralised(backend: Backend) {
    let log = Log::new(backend).await;
    log.append(entry(
        Some(4),
        Some("=HYPERLINK(\"http://evil.example\",\"x\")"),
        Some("192.0.2.1"),
        "auth.sign_in",
        Some("a,b \"c\"\r\nd"),
        "success",
        json!({"k": "v, \"w\""}),
    ))
    .await;
    log.append(entry(
        None,
        Some("+33 1 23 45"),
        None,
        "auth.sign_in_failure",
        Some("-1"),
        "failure",
        json!({}),
    ))
    .await;
    log.append(entry(
        None,
        Some("@SUM(A1)"),
        None,
        "auth.sign_out",
        Some("\tTAB"),
        "denied",
        json!({}),
    ))
    .await;
    log.append(entry(
        None,
        Some("plain"),
        None,
        "auth.sign_out",
        Some("Zoé"),
        "success",
        json!({}),
    ))
    .await;
    let (bytes, summary) = log.export(&Filter::default(), ExportFormat::Csv).await;
    assert_eq!((summary.entries, summary.record_seq), (4, 5));
    assert!(summary.checkpoint.is_none());
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.starts_with(
        "seq,time,time_us,actor_id,actor_name,actor_ip,request_id,action,target,outcome,details,leaf_hash,purged\r\n"
    ));
    assert!(text.ends_with("\r\n"));
    assert!(
        text.contains(",\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\",192.0.2.1,0123abcd,auth.sign_in,\"a,b \"\"c\"\"\r\nd\",success,\"{\"\"k\"\":\"\"v, \\\"\"w\\\"\"\"\"}\","),
        "{text}"
    );
    assert!(
        text.contains(",'+33 1 23 45,,0123abcd,auth.sign_in_failure,'-1,failure,{},"),
        "{text}"
    );
    assert!(
        text.contains(",'@SUM(A1),,0123abcd,auth.sign_out,'\tTAB,denied,{},"),
        "{text}"
    );
    assert!(
        text.contains(",plain,,0123abcd,auth.sign_out,Zoé,success,{},"),
        "{text}"
    );

    // Python's csv module (an RFC 4180 reader) reads back every cell, apostrophes included.
    let path = log.dir.path().join("export.csv");
    std::fs::write(&path, &text).unwrap();
    let out = Command::new("python3")
        .args([
            "-c",
            "import csv, json, sys\n\
             rows = list(csv.reader(open(sys.argv[1], newline='', encoding='utf-8')))\n\
             print(json.dumps([[r[0], r[4], r[8], r[10]] for r in rows]))",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        rows,
        json!([
            ["seq", "actor_name", "target", "details"],
            [
                "1",
                "'=HYPERLINK(\"http://evil.example\",\"x\")",
                "a,b \"c\"\r\nd",
                "{\"k\":\"v, \\\"w\\\"\"}"
            ],
            ["2", "'+33 1 23 45", "'-1", "{}"],
            ["3", "'@SUM(A1)", "'\tTAB", "{}"],
            ["4", "plain", "Zoé", "{}"],
        ])
    );
    // The CSV export is on record like any other.
    let record = &store::stored_entries(&log.db).await.unwrap()[4].entry;
    assert_eq!(record.action, "audit.export");
    assert!(
        record.details.contains("\"format\":\"csv\""),
        "{}",
        record.details
    );
}

async fn the_command_line_exports_what_verify_py_accepts(backend: Backend) {
    let log = Log::new(backend).await;
    populate_for_search(&log).await;
    let config = log.dir.path().join("beffroi.toml");
    let db_line = match &log.test_db.url {
        Some(url) => format!("database_url = \"{url}\"\n"),
        None => String::new(),
    };
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = \"{}\"\n{db_line}",
            log.dir.path().join("data").display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let beffroi = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_beffroi"))
            .env_remove("BEFFROI_CONFIG")
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let file = log.dir.path().join("sign-ins.jsonl");
    let file_arg = file.to_str().unwrap();
    let (ok, out, err) = beffroi(&[
        "audit",
        "export",
        "--format",
        "jsonl",
        "--out",
        file_arg,
        "--action",
        "auth.sign_in",
        "--from",
        "2000-01-01T00:00:00Z",
        "--to",
        "2999-01-01T00:00:00+02:00",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("exported 2 entries (0 purged) of the log up to entry 6"),
        "{out}"
    );
    assert!(out.contains("recorded as entry 7"), "{out}");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The key the command names is the one the server's key file holds.
    let key = out
        .split("key ")
        .nth(1)
        .and_then(|rest| rest.get(..64))
        .unwrap()
        .to_owned();
    let (ok, verdict) = verify_py(&file, &key);
    assert!(ok, "{verdict}");
    assert!(verdict.contains("2 entries"), "{verdict}");
    let (ok, out, err) = beffroi(&["audit", "verify"]);
    assert!(
        ok && out.starts_with("ok   audit log verified: 7 entries"),
        "{out}{err}"
    );

    // An existing file is not overwritten.
    let (ok, _, err) = beffroi(&["audit", "export", "--format", "csv", "--out", file_arg]);
    assert!(!ok && err.contains("File exists"), "{err}");
    // CSV to standard output, the summary on standard error; --ip and --actor parse.
    let (ok, out, err) = beffroi(&[
        "audit",
        "export",
        "--format",
        "csv",
        "--ip",
        "192.0.2.*",
        "--actor",
        "alice",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains(",Alice Martin,192.0.2.10,"), "{out}");
    assert!(err.contains("exported 1 entries"), "{err}");
    for bad in [
        &["audit", "export", "--format", "xml"][..],
        &["audit", "export", "--format", "csv", "--from", "yesterday"],
        &["audit", "export", "--format", "csv", "--ip", "10.0.0.0/8"],
    ] {
        let (ok, _, err) = beffroi(bad);
        assert!(!ok && err.contains("invalid value"), "{bad:?}: {err}");
    }
}

/// The real binary signs checkpoints and exports a log with a purged entry, and the Python
/// verifier accepts the result. With `WRITE_AUDIT_FIXTURE=1` the export also replaces the
/// fixture `audit/test_verify.py` reads (`audit/testdata/export-v1.{jsonl,key}`).
#[tokio::test]
async fn the_binarys_export_verifies_and_makes_the_python_fixture() {
    let log = Log::new(Backend::Sqlite).await;
    let config = log.dir.path().join("beffroi.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = \"{}\"\n",
            log.dir.path().join("data").display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let beffroi = |args: &[&std::ffi::OsStr]| {
        let out = Command::new(env!("CARGO_BIN_EXE_beffroi"))
            .env_remove("BEFFROI_CONFIG")
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for n in 1..=12u64 {
        log.append(export_entry(n)).await;
        if n == 4 || n == 9 {
            beffroi(&["audit".as_ref(), "checkpoint".as_ref()]);
        }
    }
    purge_entry_2(&log).await;
    let write_fixture = std::env::var("WRITE_AUDIT_FIXTURE").is_ok_and(|v| v == "1");
    let testdata = if write_fixture {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("audit/testdata")
    } else {
        log.dir.path().join("testdata")
    };
    std::fs::create_dir_all(&testdata).unwrap();
    let file = testdata.join("export-v1.jsonl");
    let _ = std::fs::remove_file(&file);
    let out = beffroi(&[
        "audit".as_ref(),
        "export".as_ref(),
        "--format".as_ref(),
        "jsonl".as_ref(),
        "--out".as_ref(),
        file.as_os_str(),
    ]);
    let key = out.split("key ").nth(1).and_then(|r| r.get(..64)).unwrap();
    std::fs::write(testdata.join("export-v1.key"), format!("{key}\n")).unwrap();
    let (ok, verdict) = verify_py(&file, key);
    assert!(ok, "{verdict}");
}
