//! The binary's command line: configuration errors name the key or file and stop the start;
//! files others can read are refused; every subcommand has --help.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn beffroi() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_beffroi"));
    cmd.env_remove("BEFFROI_CONFIG");
    cmd
}

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Runs `args` and returns (success, stderr).
fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn base_config(dir: &Path) -> String {
    config_with_server(dir, "")
}

fn config_with_server(dir: &Path, server_extra: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n{server_extra}[storage]\ndata_dir = \"{}\"\n",
        dir.join("data").display()
    )
}

#[test]
fn version_and_help_for_every_subcommand() {
    let (ok, out, _) = run(beffroi().arg("--version"));
    assert!(ok && out.starts_with("beffroi 0."), "{out}");
    for sub in [
        "serve",
        "default-config",
        "check-config",
        "migrate",
        "recover-admin",
        "demo",
    ] {
        let (ok, out, err) = run(beffroi().args([sub, "--help"]));
        assert!(ok, "{sub} --help failed: {err}");
        assert!(out.contains("Usage: beffroi"), "{sub}: {out}");
    }
}

#[test]
fn default_config_is_valid_once_pointed_at_a_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, text, _) = run(beffroi().arg("default-config"));
    assert!(ok);
    let text = text.replace(
        "#data_dir = \"/var/lib/beffroi\"",
        &format!("data_dir = \"{}\"", dir.path().join("data").display()),
    );
    let config = dir.path().join("beffroi.toml");
    write(&config, &text, 0o600);
    let (ok, out, err) = run(beffroi().args(["check-config", "--config"]).arg(&config));
    assert!(ok, "{out}{err}");
    assert!(out.contains("ok   database"), "{out}");
}

#[test]
fn bad_values_and_unknown_keys_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("beffroi.toml");
    for (extra, expected) in [
        ("lsiten = 1\n", "unknown field `lsiten`"),
        (
            "[session]\nidle_timeout_minutes = 0\n",
            "session.idle_timeout_minutes: must be at least 1",
        ),
        ("[tls]\nmin_version = \"1.1\"\n", "tls.min_version"),
        (
            "[security]\nrequests_per_second = -3\n",
            "security.requests_per_second",
        ),
        (
            "[metrics]\nbearer_token = \"hunter2\"\n",
            "metrics.bearer_token: secrets are never written in the config",
        ),
        ("[frobnicate]\nx = 1\n", "unknown field `frobnicate`"),
    ] {
        let text = if extra.starts_with('[') {
            format!("{}{extra}", base_config(dir.path()))
        } else {
            config_with_server(dir.path(), extra)
        };
        write(&config, &text, 0o600);
        let (ok, _, err) = run(beffroi().args(["check-config", "--config"]).arg(&config));
        assert!(!ok, "{extra} accepted");
        assert!(err.contains(expected), "{extra}: {err}");
        // `serve` refuses the same way, before listening.
        let (ok, _, err) = run(beffroi().args(["serve", "--config"]).arg(&config));
        assert!(!ok && err.contains(expected), "serve with {extra}: {err}");
    }
    // Environment overrides go through the same checks.
    write(&config, &base_config(dir.path()), 0o600);
    let (ok, _, err) = run(beffroi()
        .args(["check-config", "--config"])
        .arg(&config)
        .env("BEFFROI_SERVER__LISTEN", "nowhere"));
    assert!(!ok && err.contains("server.listen"), "{err}");
}

#[test]
fn readable_config_or_key_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("beffroi.toml");
    write(&config, &base_config(dir.path()), 0o644);
    let (ok, _, err) = run(beffroi().args(["serve", "--config"]).arg(&config));
    assert!(!ok);
    assert!(
        err.contains("beffroi.toml") && err.contains("chmod 600"),
        "{err}"
    );

    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    beffroi::tls::generate_self_signed(&cert, &key, vec!["localhost".into()]).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let text = format!(
        "{}[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        base_config(dir.path()),
        cert.display(),
        key.display()
    );
    write(&config, &text, 0o600);
    let (ok, _, err) = run(beffroi().args(["serve", "--config"]).arg(&config));
    assert!(!ok);
    assert!(err.contains("key.pem") && err.contains("0640"), "{err}");
    let (ok, _, err) = run(beffroi().args(["check-config", "--config"]).arg(&config));
    assert!(!ok && err.contains("key.pem"), "{err}");
}

#[test]
fn recover_admin_prints_a_one_time_password_and_migrate_reports() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("beffroi.toml");
    write(&config, &base_config(dir.path()), 0o600);
    let (ok, out, err) = run(beffroi().args(["migrate", "--config"]).arg(&config));
    assert!(ok, "{err}");
    assert!(out.contains("Applied migrations: [1, 2]"), "{out}");
    let (ok, out, _) = run(beffroi().args(["migrate", "--config"]).arg(&config));
    assert!(ok && out.contains("up to date"), "{out}");
    let (ok, out, err) = run(beffroi().args(["recover-admin", "--config"]).arg(&config));
    assert!(ok, "{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("One-time password:"))
        .expect(&out);
    let password = line.trim_start_matches("One-time password:").trim();
    assert_eq!(password.replace('-', "").len(), 24);
    // The password is shown on the console only, never logged.
    assert!(!err.contains(password), "{err}");
    let (ok, _, err) = run(beffroi()
        .args(["recover-admin", "--username", "bad name!", "--config"])
        .arg(&config));
    assert!(!ok && err.contains("username"), "{err}");
    let db = dir.path().join("data").join("beffroi.db");
    assert_eq!(
        std::fs::metadata(db).unwrap().permissions().mode() & 0o077,
        0
    );
}
