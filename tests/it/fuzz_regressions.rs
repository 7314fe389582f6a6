//! Replays the inputs that once crashed a fuzz target (`fuzz/regressions/<target>/`, see
//! `scripts/fuzz` and SECURITY.md § Fuzzing) through the same product functions, so that plain
//! `cargo test` catches a fixed bug that comes back, without libFuzzer. Each replay also checks
//! the property that the input once broke.

use std::panic::{UnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use beffroi::audit::checkpoint::CheckpointSigner;
use beffroi::backup::manifest::Envelope;
use beffroi::markdown::{render, sanitise};
use beffroi::scim::filter;
use beffroi::scim::list::ListQuery;
use beffroi::scim::patch;
use beffroi::scim::resource::canonical_attributes;
use beffroi::scim::resource::group::GroupData;
use beffroi::scim::resource::user::UserData;
use beffroi::scim::schema::{GROUP, RESOURCE_SCHEMAS, USER};
use serde_json::Value;

const TARGETS: [&str; 6] = [
    "audit_export",
    "backup_manifest",
    "config",
    "markdown",
    "oidc_callback",
    "scim_json",
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `fuzz/<kind>/<target>/`, sorted, with their bytes.
fn inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// Runs `check` on one input, naming the file when it panics.
fn replay(path: &Path, check: impl FnOnce() + UnwindSafe) {
    assert!(
        catch_unwind(check).is_ok(),
        "{} panics again (replay it with scripts/fuzz)",
        path.display()
    );
}

/// The `src` of every `<img>` in sanitised output (double-quoted, `&amp;` and `&quot;` escaped).
fn image_sources(html: &str) -> Vec<String> {
    html.split("<img")
        .skip(1)
        .filter_map(|tag| {
            let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
            let value = tag.split(" src=\"").nth(1)?;
            let value = &value[..value.find('"')?];
            Some(value.replace("&quot;", "\"").replace("&amp;", "&"))
        })
        .collect()
}

#[test]
fn every_fuzz_target_has_seeds_and_a_source_file() {
    for target in TARGETS {
        assert!(
            fuzz_dir()
                .join("fuzz_targets")
                .join(format!("{target}.rs"))
                .is_file(),
            "{target}"
        );
        assert!(
            !inputs("corpus", target).is_empty(),
            "no seeds for {target}"
        );
    }
    // The signed seeds are signed by the key the backup_manifest target checks with, so the
    // fuzzer starts from manifests that verify and mutates past the signature check.
    let key = CheckpointSigner::from_seed(&[7; 32]).unwrap().public_key();
    let verified = inputs("corpus", "backup_manifest")
        .iter()
        .filter_map(|(_, bytes)| serde_json::from_slice::<Envelope>(bytes).ok())
        .filter(|e| e.verify(&key).is_ok())
        .count();
    assert!(verified >= 2, "{verified} signed seed envelopes verify");
}

/// An image written as relative must stay on this site once a browser resolves it (a leading
/// control character, a tab or a backslash made `//evil.example` pass as relative).
#[test]
fn markdown_regressions_keep_images_on_site() {
    let found = inputs("regressions", "markdown");
    assert!(!found.is_empty());
    let page = url::Url::parse("https://intranet.example/news/42").unwrap();
    for (path, bytes) in found {
        let source = String::from_utf8_lossy(&bytes).into_owned();
        for html in [render(&source), sanitise(&source)] {
            for src in image_sources(&html) {
                let resolved = page.join(&src);
                assert!(
                    resolved.as_ref().is_ok_and(|u| u.origin() == page.origin()),
                    "{}: <img src={src:?}> resolves to {resolved:?}",
                    path.display()
                );
            }
        }
    }
}

/// A URN-qualified name whose URN-length prefix ends inside a multi-byte character panicked in
/// `strip_urn`, through a filter, a PATCH path or a body key.
#[test]
fn scim_regressions_are_refused_without_panicking() {
    let found = inputs("regressions", "scim_json");
    assert!(!found.is_empty());
    for (path, bytes) in found {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(body)) => replay(&path, || {
                let _ = UserData::parse(&canonical_attributes(&USER, &body));
                let _ = GroupData::parse(&canonical_attributes(&GROUP, &body));
                let _ = patch::parse_request(&body, &USER);
                let _ = patch::parse_request(&body, &GROUP);
            }),
            _ => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                replay(&path, || {
                    let _ = ListQuery::from_query(Some(&text));
                    for schema in RESOURCE_SCHEMAS {
                        assert!(filter::parse(&text, schema).is_err());
                        let _ = filter::parse_path(&text, schema);
                    }
                });
            }
        }
    }
}
