//! A real S3 server for the tests: `s3s-fs` (the s3s project's file-system backed S3 server),
//! started on a free loopback port over a temporary directory, with an access key. Objects are
//! plain files under `<root>/<bucket>/<key>`, so a test can alter one behind Beffroi's back.
//!
//! The binary is installed by scripts/test when missing; a test run without it fails with the
//! command that installs it, never skips.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const INSTALL: &str = "cargo install --locked s3s-fs --version 0.14.1 --features binary";
pub const BUCKET: &str = "beffroi-test";
pub const PREFIX: &str = "site-a/";
const ACCESS_KEY: &str = "beffroi-test-access";

pub struct S3Server {
    child: Option<Child>,
    pub endpoint: String,
    /// The directory the server keeps buckets in.
    pub root: PathBuf,
    /// The secret access key, in a mode-600 file, as the config wants it.
    pub secret_file: PathBuf,
    pub secret: String,
    _dir: tempfile::TempDir,
}

/// `S3S_FS_BIN`, else `s3s-fs` on the PATH, else `~/.cargo/bin/s3s-fs`.
fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("S3S_FS_BIN") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("s3s-fs"))
            .find(|p| p.is_file())
    });
    let in_cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|home| home.join("bin").join("s3s-fs"));
    let found = on_path.or(in_cargo_home.filter(|p| p.is_file()));
    found.unwrap_or_else(|| {
        panic!(
            "the S3 tests need the s3s-fs server, which is not installed: run `{INSTALL}` \
             (scripts/test does it when missing), or set S3S_FS_BIN to its path"
        )
    })
}

impl S3Server {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s3");
        // s3s-fs serves each directory under its root as a bucket.
        std::fs::create_dir_all(root.join(BUCKET)).unwrap();
        let secret = format!("secret-{:016x}", rand_u64());
        let secret_file = dir.path().join("s3-secret");
        std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
        std::fs::set_permissions(
            &secret_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let mut server = Self {
            child: None,
            endpoint: String::new(),
            root,
            secret_file,
            secret,
            _dir: dir,
        };
        server.spawn(0).await;
        server
    }

    /// Starts the process on `port` (0: any free one) and waits for the address it announces.
    async fn spawn(&mut self, port: u16) {
        let mut child = Command::new(binary())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", &self.secret])
            .arg(&self.root)
            .env("RUST_LOG", "s3s_fs=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start s3s-fs ({e}); install it with `{INSTALL}`"));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // A bound on a hang, so a broken server fails the test instead of stalling CI.
        let announced = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(at) = line.find("server is running at http://") {
                    let url = &line[at + "server is running at ".len()..];
                    return url.split_whitespace().next().map(str::to_owned);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("s3s-fs did not announce its address"));
        // Keep reading its log so that a full pipe never blocks it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.endpoint = announced;
        self.child = Some(child);
    }

    /// Stops the server (its data stays), as an outage would.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    /// The `[storage]` lines that point an instance at this server.
    pub fn storage_config(&self) -> String {
        format!(
            "blob_store = \"s3\"\n[storage.s3]\nendpoint = \"{}\"\nbucket = \"{BUCKET}\"\n\
             region = \"us-east-1\"\naccess_key_id = \"{ACCESS_KEY}\"\n\
             secret_access_key_file = \"{}\"\nprefix = \"{PREFIX}\"\ntimeout_seconds = 10\n",
            self.endpoint,
            self.secret_file.display()
        )
    }

    /// Where the server keeps the object of blob `sha256`.
    pub fn object_path(&self, sha256: &str) -> PathBuf {
        self.root
            .join(BUCKET)
            .join(PREFIX.trim_end_matches('/'))
            .join(&sha256[..2])
            .join(&sha256[2..])
    }

    /// Every object file under the prefix, by key (`ab/cdef…`), with its bytes.
    pub fn objects(&self) -> std::collections::BTreeMap<String, Vec<u8>> {
        let base = self.root.join(BUCKET).join(PREFIX.trim_end_matches('/'));
        let mut out = std::collections::BTreeMap::new();
        collect(&base, &base, &mut out);
        out
    }
}

fn collect(base: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(base, &path, out);
        } else {
            let key = path
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.insert(key, std::fs::read(&path).unwrap());
        }
    }
}

fn rand_u64() -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    u64::from_le_bytes(bytes)
}
