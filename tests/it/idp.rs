//! The test identity provider (tests/idp, npm `oidc-provider`) driven from Rust: starting it,
//! registering a Beffroi instance as a client, making it misbehave, and walking its login pages
//! as a browser would.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, Options, TestApp, spawn_app_with};

pub struct Idp {
    pub issuer: String,
    /// Set for a private provider; the shared one lives as long as the test binary.
    child: Option<Child>,
    http: reqwest::Client,
}

impl Drop for Idp {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn idp_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("idp")
}

/// Starts the provider, trying again if it does not report ready in time (on a loaded 2-core
/// machine a start can stall; its stderr is kept for the error message).
fn start_process() -> (String, Child) {
    let mut failures = Vec::new();
    for _ in 0..3 {
        match try_start_process() {
            Ok(started) => return started,
            Err(why) => failures.push(why),
        }
    }
    panic!("the test IdP did not start, three times: {failures:#?}");
}

fn try_start_process() -> Result<(String, Child), String> {
    let dir = idp_dir();
    assert!(
        dir.join("node_modules").exists(),
        "run `npm ci` in tests/idp (./scripts/test does)"
    );
    let stderr_file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    let mut child = Command::new("node")
        .arg("server.mjs")
        .current_dir(&dir)
        .env("IDP_PORT", "0")
        .env("IDP_EXIT_ON_STDIN_EOF", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr_file.reopen().map_err(|e| e.to_string())?)
        .spawn()
        .expect("node must be installed");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        // Keep draining: a provider writing to a closed pipe would die of EPIPE mid-test.
        let mut sink = String::new();
        while reader.read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
    });
    let ready = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .ok()
        .and_then(|line| line.strip_prefix("IDP_READY ").map(str::to_owned));
    let Some(json) = ready else {
        let _ = child.kill();
        let _ = child.wait();
        let log = std::fs::read_to_string(stderr_file.path()).unwrap_or_default();
        let tail: String = log.lines().rev().take(15).collect::<Vec<_>>().join(" | ");
        return Err(format!(
            "no IDP_READY within 30 s; stderr (last lines, newest first): {tail}"
        ));
    };
    let issuer = serde_json::from_str::<Value>(json.trim()).unwrap()["issuer"]
        .as_str()
        .unwrap()
        .to_owned();
    Ok((issuer, child))
}

static SHARED: OnceLock<Mutex<(String, Child)>> = OnceLock::new();

impl Idp {
    fn with(issuer: String, child: Option<Child>) -> Self {
        beffroi::tls::install_crypto_provider();
        Idp {
            issuer,
            child,
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(60))
                .build()
                .unwrap(),
        }
    }

    /// The provider shared by every test of the binary (each test uses its own client id).
    pub fn shared() -> Self {
        let cell = SHARED.get_or_init(|| Mutex::new(start_process()));
        let issuer = cell.lock().unwrap().0.clone();
        Self::with(issuer, None)
    }

    /// A provider of its own, for tests that change global behaviour (keys, JWKS, speed).
    pub fn private() -> Self {
        let (issuer, child) = start_process();
        Self::with(issuer, Some(child))
    }

    pub fn kill(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub async fn control(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}/__test/{path}", self.issuer))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let value: Value = r.json().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {value}");
        value
    }

    pub async fn misbehave(&self, client_id: &str, mode: &str) {
        self.control("misbehave", json!({"mode": mode, "client_id": client_id}))
            .await;
    }
}

/// A Beffroi instance configured for single sign-on against `idp`, registered there under a
/// client id of its own.
pub struct SsoApp {
    pub app: TestApp,
    pub idp: Idp,
    pub client_id: String,
}

pub struct SsoOptions {
    pub oidc_extra: String,
    pub extra: String,
    /// More client metadata registered at the provider.
    pub client_extra: Value,
}

impl Default for SsoOptions {
    fn default() -> Self {
        Self {
            oidc_extra: "admin_groups = [\"admins\"]\nauditor_groups = [\"auditors\"]\n".into(),
            extra: String::new(),
            client_extra: json!({}),
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub async fn spawn_sso_app(backend: Backend, idp: Idp, options: SsoOptions) -> SsoApp {
    let client_id = format!(
        "beffroi-{}",
        &beffroi::auth::session::random_token().unwrap()[..12]
    );
    let secret_dir = tempfile::tempdir().unwrap().keep();
    let secret_file = secret_dir.join("client-secret");
    std::fs::write(&secret_file, "test-secret\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    // The provider needs the exact redirect URI, so the port is chosen before starting.
    let port = free_port();
    let base = format!("https://127.0.0.1:{port}");
    let app = spawn_app_with(
        backend,
        Options {
            server_extra: format!("listen = \"127.0.0.1:{port}\"\npublic_url = \"{base}\"\n"),
            extra: format!(
                "{}\n[oidc]\nissuer = \"{}\"\nclient_id = \"{client_id}\"\nclient_secret_file = \"{}\"\n\
                 provider_name = \"Test IdP\"\nscopes = [\"openid\", \"profile\", \"email\", \"groups\"]\n\
                 http_timeout_secs = 2\n{}",
                options.extra,
                idp.issuer,
                secret_file.display(),
                options.oidc_extra
            ),
            ..Options::default()
        },
    )
    .await;
    let mut client = json!({
        "client_id": client_id,
        "client_secret": "test-secret",
        "redirect_uris": [format!("{base}/auth/oidc/callback")],
        "post_logout_redirect_uris": [format!("{base}/login")],
        "backchannel_logout_uri": format!("{base}/auth/oidc/backchannel-logout"),
    });
    if let (Some(c), Some(extra)) = (client.as_object_mut(), options.client_extra.as_object()) {
        c.extend(extra.clone());
    }
    idp.control("clients", client).await;
    SsoApp {
        app,
        idp,
        client_id,
    }
}

fn location(r: &reqwest::Response, base: &str) -> String {
    let loc = r
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("no redirect: {}", r.status()))
        .to_str()
        .unwrap();
    if loc.starts_with('/') {
        format!("{base}{loc}")
    } else {
        loc.to_owned()
    }
}

/// The provider side of a browser: its own cookie jar.
pub fn idp_browser() -> reqwest::Client {
    beffroi::tls::install_crypto_provider();
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap()
}

impl SsoApp {
    /// Starts a sign-in at Beffroi and walks the provider's pages as `login`; returns the
    /// callback URL the provider sends the browser back to (not yet followed).
    pub async fn authorize(
        &self,
        browser: &reqwest::Client,
        idp_browser: &reqwest::Client,
        login: &str,
        next: &str,
    ) -> String {
        let r = browser
            .get(self.app.url(&format!(
                "/auth/oidc/start?next={}",
                url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "start: {:?}",
            r.text().await
        );
        let mut url = location(&r, &self.app.base);
        assert!(
            url.starts_with(&format!("{}/auth?", self.idp.issuer)),
            "{url}"
        );
        assert!(url.contains("code_challenge_method=S256"), "{url}");
        for _ in 0..20 {
            if url.starts_with(&self.app.base) {
                return url;
            }
            let r = if url.contains("/interaction/") {
                let page = idp_browser
                    .get(&url)
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                let form: Vec<(&str, &str)> = if page.contains("name=\"login\"") {
                    vec![
                        ("prompt", "login"),
                        ("login", login),
                        ("password", "ignored"),
                    ]
                } else {
                    vec![("prompt", "consent")]
                };
                idp_browser.post(&url).form(&form).send().await.unwrap()
            } else {
                idp_browser.get(&url).send().await.unwrap()
            };
            url = location(&r, &self.idp.issuer);
        }
        panic!("too many redirects at the provider");
    }

    /// A full sign-in; returns Beffroi's answer to the callback.
    pub async fn sign_in(&self, browser: &reqwest::Client, login: &str) -> reqwest::Response {
        let callback = self.authorize(browser, &idp_browser(), login, "/").await;
        browser.get(callback).send().await.unwrap()
    }

    pub fn failures(&self, reason: &str) -> u64 {
        let text = self.app.server.state.metrics.render((0, 0));
        let needle = format!("beffroi_sign_in_failures_total{{reason=\"{reason}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&needle))
            .map(|n| n.trim().parse().unwrap())
            .unwrap_or(0)
    }
}
