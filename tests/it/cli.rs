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
    // check-config changes nothing: the database is reported missing, not created.
    assert!(out.contains("does not exist yet"), "{out}");
    assert!(!dir.path().join("data").join("beffroi.db").exists());
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
fn an_unknown_time_zone_is_refused_naming_locale_timezone() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("beffroi.toml");
    let text = format!(
        "{}[locale]\ntimezone = \"Europe/Lutece\"\n",
        base_config(dir.path())
    );
    write(&config, &text, 0o600);
    let (ok, _, err) = run(beffroi().args(["check-config", "--config"]).arg(&config));
    assert!(!ok && err.contains("locale.timezone"), "{err}");
    assert!(err.contains("Europe/Lutece"), "{err}");
    let (ok, _, err) = run(beffroi().args(["serve", "--config"]).arg(&config));
    assert!(!ok && err.contains("locale.timezone"), "serve: {err}");
    // A real zone passes.
    let text = format!(
        "{}[locale]\ntimezone = \"America/Cayenne\"\n",
        base_config(dir.path())
    );
    write(&config, &text, 0o600);
    let (ok, out, err) = run(beffroi().args(["check-config", "--config"]).arg(&config));
    assert!(ok, "{out}{err}");
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
    // Versions from the file names: numbers need not be contiguous while branches land.
    let mut versions: Vec<u32> = std::fs::read_dir("migrations/sqlite")
        .unwrap()
        .filter_map(|f| {
            f.unwrap()
                .file_name()
                .to_str()?
                .split('_')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    versions.sort();
    let all: Vec<String> = versions.iter().map(|v| v.to_string()).collect();
    assert!(
        out.contains(&format!("Applied migrations: [{}]", all.join(", "))),
        "{out}"
    );
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
    assert!(out.contains("It expires in 24 hours, at "), "{out}");
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
    // The data directory is private whatever the umask.
    let data = std::fs::metadata(dir.path().join("data")).unwrap();
    assert_eq!(data.permissions().mode() & 0o777, 0o700);
}

/// `serve` end to end as systemd runs it: JSON logs on stderr, SIGHUP reloads the certificate
/// (the periodic check is set to an hour, so only the signal can have done it), and neither the
/// password typed nor the session token ever reaches the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reloads_on_sighup_and_never_logs_secrets() {
    use std::io::{BufRead, BufReader};
    use std::sync::Arc;

    beffroi::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("beffroi.toml");
    let text = format!(
        "{}[tls]\nreload_check_secs = 3600\n[log]\nformat = \"json\"\n",
        base_config(dir.path())
    );
    write(&config, &text, 0o600);
    let mut child = beffroi()
        .args(["serve", "--config"])
        .arg(&config)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    let addr = loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("serve did not start");
        let json: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        log.push(line);
        if json["message"] == "listening" {
            break json["addr"]
                .as_str()
                .unwrap()
                .parse::<std::net::SocketAddr>()
                .unwrap();
        }
    };
    let data = dir.path().join("data");
    let cert = data.join("tls").join("cert.pem");
    let tls = crate::helpers::client_tls(&cert);
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    let base = format!("https://127.0.0.1:{}", addr.port());
    let page = client
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = crate::helpers::extract_csrf(&page).unwrap();
    let secret_password = "Tr0ub4dor-secret-password";
    let r = client
        .post(format!("{base}/login"))
        .header("origin", &base)
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "admin"),
            ("password", secret_password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Renew the certificate on disk, then signal.
    let fingerprint_of = |path: &Path| {
        let der = <rustls::pki_types::CertificateDer as rustls::pki_types::pem::PemObject>::from_pem_file(path).unwrap();
        beffroi::tls::fingerprint(&der)
    };
    let old = fingerprint_of(&cert);
    let staging = dir.path().join("staging");
    beffroi::tls::generate_self_signed(
        &staging.join("cert.pem"),
        &staging.join("key.pem"),
        vec!["127.0.0.1".into()],
    )
    .unwrap();
    std::fs::rename(staging.join("key.pem"), data.join("tls").join("key.pem")).unwrap();
    std::fs::rename(staging.join("cert.pem"), &cert).unwrap();
    let new = fingerprint_of(&cert);
    assert_ne!(old, new);
    let status = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut served = String::new();
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let connector =
            tokio_rustls::TlsConnector::from(Arc::new(crate::helpers::client_tls(&cert)));
        if let Ok(stream) = connector
            .connect(
                rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap(),
                tcp,
            )
            .await
        {
            served = beffroi::tls::fingerprint(&stream.get_ref().1.peer_certificates().unwrap()[0]);
            if served == new {
                break;
            }
        }
    }
    assert_eq!(served, new, "SIGHUP did not reload the certificate");

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let exit = child.wait().unwrap();
    assert!(
        exit.success(),
        "serve did not stop cleanly on SIGTERM: {exit}"
    );
    while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(2)) {
        log.push(line);
    }
    let log = log.join("\n");
    assert!(log.contains("\"action\":\"auth.sign_in_failure\""), "{log}");
    assert!(log.contains("\"action\":\"server.start\""), "{log}");
    assert!(log.contains("TLS certificate reloaded"), "{log}");
    assert!(!log.contains(secret_password), "password in the log");
    assert!(!log.contains(&token), "CSRF token in the log");
}

/// `check-config` fetches the provider's discovery document and says what is wrong with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_reports_on_the_identity_provider() {
    let idp = crate::idp::Idp::shared();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    write(&secret, "s\n", 0o600);
    let config = dir.path().join("beffroi.toml");
    let with_issuer = |issuer: &str| {
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"https://intranet.example.test\"\n[storage]\ndata_dir = \"{}\"\n\
             [oidc]\nissuer = \"{issuer}\"\nclient_id = \"c\"\nclient_secret_file = \"{}\"\n",
            dir.path().join("data").display(),
            secret.display()
        )
    };
    write(&config, &with_issuer(&idp.issuer), 0o600);
    let (ok, out, err) = run(beffroi().args(["check-config", "--config"]).arg(&config));
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("ok   identity provider") && out.contains("PKCE S256"),
        "{out}"
    );
    assert!(
        out.contains("https://intranet.example.test/auth/oidc/callback"),
        "{out}"
    );

    // The issuer must be exactly the provider's own (a trailing slash is another issuer).
    write(&config, &with_issuer(&format!("{}/", idp.issuer)), 0o600);
    let (ok, _, err) = run(beffroi().args(["check-config", "--config"]).arg(&config));
    assert!(
        !ok && err.contains("oidc.issuer") && err.contains("issuer mismatch"),
        "{err}"
    );

    // Nobody listening.
    write(&config, &with_issuer("http://127.0.0.1:9"), 0o600);
    let (ok, _, err) = run(beffroi().args(["check-config", "--config"]).arg(&config));
    assert!(
        !ok && err.contains("oidc.issuer") && err.contains("unavailable"),
        "{err}"
    );

    // Configuration mistakes are named before anything is fetched.
    for (extra, expected) in [
        (
            "allowed_algorithms = [\"HS256\"]\n",
            "oidc.allowed_algorithms",
        ),
        (
            "allowed_algorithms = [\"none\"]\n",
            "oidc.allowed_algorithms",
        ),
        ("scopes = [\"email\"]\n", "oidc.scopes"),
        ("client_secret = \"inline\"\n", "oidc.client_secret:"),
    ] {
        write(
            &config,
            &format!("{}{extra}", with_issuer(&idp.issuer)),
            0o600,
        );
        let (ok, _, err) = run(beffroi().args(["check-config", "--config"]).arg(&config));
        assert!(!ok && err.contains(expected), "{extra}: {err}");
    }
    write(&config, &with_issuer("ftp://idp.example"), 0o600);
    let (ok, _, err) = run(beffroi().args(["check-config", "--config"]).arg(&config));
    assert!(
        !ok && err.contains("oidc.issuer: must be an https:// URL"),
        "{err}"
    );
}

#[test]
fn audit_commands_verify_and_sign() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("beffroi.toml");
    write(&config, &base_config(dir.path()), 0o600);
    let (ok, out, err) = run(beffroi().args(["audit", "verify", "--config"]).arg(&config));
    assert!(ok, "{err}");
    assert!(out.contains("ok   audit log verified: 0 entries"), "{out}");
    // The verification is itself audited: entry 1, which the checkpoint covers.
    let (ok, out, _) = run(beffroi()
        .args(["audit", "checkpoint", "--config"])
        .arg(&config));
    assert!(
        ok && out.contains("checkpoint signed: tree size 1,"),
        "{out}"
    );
    let (ok, out, err) = run(beffroi().args(["audit", "verify", "--config"]).arg(&config));
    assert!(ok, "{err}");
    assert!(
        out.contains("verified: 2 entries (0 purged), 1 checkpoints"),
        "{out}"
    );
    let key = dir.path().join("data").join("audit-checkpoint-key.pk8");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // A readable key is refused: whoever reads it can forge checkpoints.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, _, err) = run(beffroi().args(["audit", "verify", "--config"]).arg(&config));
    assert!(!ok && err.contains("audit-checkpoint-key.pk8"), "{err}");
}

/// `serve` under `Type=notify`: READY=1 once it listens, WATCHDOG=1 at half the watchdog
/// interval, STOPPING=1 on SIGTERM — read from a real datagram socket, as systemd does.
#[test]
fn serve_notifies_systemd_of_readiness_watchdog_and_stop() {
    use std::os::unix::net::UnixDatagram;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("beffroi.toml");
    write(&config, &base_config(dir.path()), 0o600);
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut child = beffroi()
        .args(["serve", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        // 0.4 s: pings every 0.2 s.
        .env("WATCHDOG_USEC", "400000")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let receive = || {
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).expect("no notification from serve");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let first = receive();
    assert!(
        first.starts_with("READY=1\nSTATUS=Serving on 127.0.0.1:"),
        "{first}"
    );
    let started = Instant::now();
    let mut pings = 0;
    while pings < 3 {
        assert_eq!(receive(), "WATCHDOG=1");
        pings += 1;
    }
    // Three pings at 0.2 s intervals: well under the 60 s read timeout, yet not instant.
    assert!(started.elapsed() >= Duration::from_millis(300));
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut last = receive();
    while last == "WATCHDOG=1" {
        last = receive();
    }
    assert_eq!(last, "STOPPING=1");
    assert!(child.wait().unwrap().success());
}

/// The shipped unit's sandboxing, as `systemd-analyze security` rates it: the deployment issue
/// asks for 1.5 or better.
#[test]
fn the_systemd_unit_scores_at_most_1_5() {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/beffroi.service");
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true"])
        .arg(&unit)
        .output()
        .expect("systemd-analyze (package systemd) must be installed; ./scripts/test installs it");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("Overall exposure level for beffroi.service"))
        .unwrap_or_else(|| panic!("no overall score in: {stdout}"));
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the score in {line:?}"));
    assert!(score <= 1.5, "{line}");
    // The unit is the notify kind the server implements.
    let text = std::fs::read_to_string(&unit).unwrap();
    assert!(text.contains("\nType=notify\n") && text.contains("\nWatchdogSec="));
}

/// A SCIM bearer token shorter than 32 characters is refused by `check-config` and by `serve`,
/// naming the key, before anything listens (ASVS 2.10.2); a long enough one passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_scim_token_is_refused_by_check_config_and_serve() {
    let idp = crate::idp::Idp::shared();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    write(&secret, "s\n", 0o600);
    let token = dir.path().join("scim-token");
    let config = dir.path().join("beffroi.toml");
    write(
        &config,
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"https://intranet.example.test\"\n\
             [storage]\ndata_dir = \"{}\"\n\
             [oidc]\nissuer = \"{}\"\nclient_id = \"c\"\nclient_secret_file = \"{}\"\n\
             [scim]\ntoken_file = \"{}\"\n",
            dir.path().join("data").display(),
            idp.issuer,
            secret.display(),
            token.display()
        ),
        0o600,
    );
    let short = "x".repeat(31);
    write(&token, &format!("{short}\n"), 0o600);
    let (ok, out, err) = run(beffroi().args(["check-config", "--config"]).arg(&config));
    assert!(!ok, "accepted a 31-character token: {out}");
    assert!(
        err.contains("scim.token_file") && err.contains("at least 32 characters"),
        "{err}"
    );
    assert!(
        !err.contains(&short) && !out.contains(&short),
        "token echoed"
    );
    let (ok, _, err) = run(beffroi().args(["serve", "--config"]).arg(&config));
    assert!(!ok, "serve started with a 31-character token");
    assert!(
        err.contains("scim.token_file") && err.contains("at least 32 characters"),
        "{err}"
    );

    write(&token, &"y".repeat(32), 0o600);
    let (ok, out, err) = run(beffroi().args(["check-config", "--config"]).arg(&config));
    assert!(ok, "{out}{err}");
    assert!(out.contains("ok   scim.token_file"), "{out}");
}

/// `beffroi man --dir DIR`, which packaging runs: one page per visible subcommand, generated
/// from the same definitions as `--help`, so a new option shows up in the manual by itself;
/// the command stays out of `--help` and out of the manual.
#[test]
fn man_writes_a_page_per_subcommand_and_stays_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("man");
    let (ok, out, err) = run(beffroi().arg("man").arg("--dir").arg(&out_dir));
    assert!(ok, "{err}");
    let mut pages: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for page in [
        "beffroi.1",
        "beffroi-serve.1",
        "beffroi-check-config.1",
        "beffroi-backup.1",
        "beffroi-backup-create.1",
        "beffroi-audit-export.1",
    ] {
        assert!(
            pages.contains(&page.to_string()),
            "{page} missing: {pages:?}"
        );
        assert!(out.contains(page), "{page} not reported: {out}");
    }
    assert!(
        !pages.iter().any(|p| p.contains("beffroi-man")),
        "{pages:?}"
    );
    assert!(!pages.iter().any(|p| p.contains("help")), "{pages:?}");

    let main = std::fs::read_to_string(out_dir.join("beffroi.1")).unwrap();
    assert!(main.contains("\n.TH beffroi 1 "), "{main}");
    assert!(main.contains("check\\-config") && main.contains("BEFFROI_CONFIG"));
    let export = std::fs::read_to_string(out_dir.join("beffroi-audit-export.1")).unwrap();
    assert!(
        export.contains("\\-\\-format") && export.contains("jsonl"),
        "{export}"
    );

    let (_, help, _) = run(beffroi().arg("--help"));
    assert!(
        help.contains("check-config") && !help.contains("\n  man "),
        "{help}"
    );
}
