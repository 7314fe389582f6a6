//! `[storage.s3]`: where an S3-compatible server keeps the blobs (Garage, MinIO, Ceph RGW…),
//! checked when the config is read so that every bad value names its key and refuses to start.
//! The secret access key is only ever read from `secret_access_key_file`.

use std::path::PathBuf;

use serde::Deserialize;

use crate::config::{ConfigError, is_loopback_host};

/// The connection to the S3-compatible server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// `https://s3.agence.gouv.fr:3900`; `http://` only to a server on this machine.
    pub endpoint: String,
    pub bucket: String,
    /// The region the server signs for (`garage`, `us-east-1` for MinIO's default…).
    pub region: String,
    pub access_key_id: String,
    /// File holding the secret access key (never the key itself).
    pub secret_access_key_file: PathBuf,
    /// Put before every object key, e.g. `beffroi/`, to share a bucket; empty by default.
    #[serde(default)]
    pub prefix: String,
    /// `https://endpoint/bucket/key` (true: what self-hosted servers expect) or
    /// `https://bucket.endpoint/key` (false).
    #[serde(default = "default_path_style")]
    pub path_style: bool,
    /// PEM bundle of an agency authority to trust besides the system's.
    pub ca_file: Option<PathBuf>,
    /// Time allowed for each request to the server.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

fn default_path_style() -> bool {
    true
}
fn default_timeout() -> u64 {
    30
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: format!("storage.s3.{key}"),
        reason: reason.into(),
    }
}

impl S3Config {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = url::Url::parse(&self.endpoint)
            .map_err(|e| invalid("endpoint", format!("not a URL: {e}")))?;
        let host = url
            .host_str()
            .ok_or_else(|| invalid("endpoint", "has no host"))?;
        match url.scheme() {
            "https" => {}
            // Plain HTTP carries every file and a signature anyone on the path could replay:
            // only to a server on this machine.
            "http" if is_loopback_host(host) => {
                if self.ca_file.is_some() {
                    return Err(invalid("ca_file", "is only used with an https:// endpoint"));
                }
            }
            "http" => {
                return Err(invalid(
                    "endpoint",
                    "http:// sends the files in clear: only allowed to a server on this machine \
                     (localhost, 127.0.0.1, ::1); use https://",
                ));
            }
            other => {
                return Err(invalid(
                    "endpoint",
                    format!("must start with https:// (not {other}://)"),
                ));
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "endpoint",
                "must not hold credentials; set access_key_id and secret_access_key_file",
            ));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(invalid(
                "endpoint",
                "must be the server's origin only, such as https://s3.agence.gouv.fr:3900",
            ));
        }
        check_bucket(&self.bucket, self.path_style)?;
        if self.region.is_empty()
            || !self
                .region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid(
                "region",
                "must be the region the server expects (letters, digits, - and _), e.g. \
                 \"garage\" or \"us-east-1\"",
            ));
        }
        if self.access_key_id.is_empty()
            || !self.access_key_id.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(invalid(
                "access_key_id",
                "must not be empty or hold spaces or control characters",
            ));
        }
        for (key, path) in [
            ("secret_access_key_file", Some(&self.secret_access_key_file)),
            ("ca_file", self.ca_file.as_ref()),
        ] {
            if path.is_some_and(|p| !p.is_absolute()) {
                return Err(invalid(key, "expected an absolute path to a file"));
            }
        }
        check_prefix(&self.prefix)?;
        if !(1..=300).contains(&self.timeout_seconds) {
            return Err(invalid("timeout_seconds", "must be between 1 and 300"));
        }
        Ok(())
    }
}

/// The S3 bucket naming rules, which also keep the name safe in a URL and a host name.
fn check_bucket(bucket: &str, path_style: bool) -> Result<(), ConfigError> {
    let shaped = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !bucket.contains("..");
    if !shaped {
        return Err(invalid(
            "bucket",
            "must be 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending \
             with a letter or digit",
        ));
    }
    // `a.b.s3.example` is not covered by the certificate's `*.s3.example`.
    if !path_style && bucket.contains('.') {
        return Err(invalid(
            "bucket",
            "a name with dots needs path_style = true (the server's certificate cannot cover it)",
        ));
    }
    Ok(())
}

/// A prefix is a folder-like string (`beffroi/`, `site-a/files/`): characters that need no
/// escaping in a URL, ending with `/`, with no empty or dot segment.
fn check_prefix(prefix: &str) -> Result<(), ConfigError> {
    if prefix.is_empty() {
        return Ok(());
    }
    let chars_ok = prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
    let segments_ok = prefix.strip_suffix('/').is_some_and(|body| {
        body.split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
    });
    if !chars_ok || !segments_ok || prefix.len() > 256 {
        return Err(invalid(
            "prefix",
            "must be like \"beffroi/\": letters, digits, - _ . and /, ending with /, no empty, . \
             or .. part, at most 256 characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use crate::config::Config;

    fn parse(s3: &str) -> Result<Config, crate::config::ConfigError> {
        Config::from_toml(
            &format!("[storage]\nblob_store = \"s3\"\n[storage.s3]\n{s3}"),
            Path::new("test.toml"),
            Vec::new(),
        )
    }

    const GOOD: &str = "endpoint = \"https://s3.agence.gouv.fr:3900\"\nbucket = \"beffroi\"\n\
                        region = \"garage\"\naccess_key_id = \"GK31c2f218a2e44f485b94239e\"\n\
                        secret_access_key_file = \"/etc/beffroi/s3-secret\"\n";

    #[test]
    fn every_bad_value_names_its_key() {
        let ok = parse(GOOD).unwrap();
        let s3 = ok.storage.s3.unwrap();
        assert!(s3.path_style && s3.prefix.is_empty() && s3.timeout_seconds == 30);
        assert!(
            parse(&GOOD.replace("https://s3.agence.gouv.fr:3900", "http://[::1]:3900")).is_ok()
        );
        for (change, key) in [
            (
                ("https://s3.agence.gouv.fr:3900", "http://s3.agence.gouv.fr"),
                "storage.s3.endpoint",
            ),
            (
                ("https://s3.agence.gouv.fr:3900", "ftp://s3.agence.gouv.fr"),
                "storage.s3.endpoint",
            ),
            (
                (
                    "https://s3.agence.gouv.fr:3900",
                    "https://k:s@s3.agence.gouv.fr",
                ),
                "storage.s3.endpoint",
            ),
            (
                (
                    "https://s3.agence.gouv.fr:3900",
                    "https://s3.agence.gouv.fr/beffroi",
                ),
                "storage.s3.endpoint",
            ),
            (
                ("https://s3.agence.gouv.fr:3900", "s3.agence.gouv.fr"),
                "storage.s3.endpoint",
            ),
            (("\"beffroi\"", "\"Beffroi\""), "storage.s3.bucket"),
            (("\"beffroi\"", "\"ab\""), "storage.s3.bucket"),
            (("\"beffroi\"", "\"-beffroi\""), "storage.s3.bucket"),
            (("\"garage\"", "\"\""), "storage.s3.region"),
            (("\"garage\"", "\"eu west\""), "storage.s3.region"),
            (
                ("\"GK31c2f218a2e44f485b94239e\"", "\"GK 31\""),
                "storage.s3.access_key_id",
            ),
            (
                ("\"/etc/beffroi/s3-secret\"", "\"s3-secret\""),
                "storage.s3.secret_access_key_file",
            ),
        ] {
            let err = parse(&GOOD.replace(change.0, change.1))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(key), "{change:?}: {err}");
        }
        for (extra, key) in [
            ("prefix = \"beffroi\"\n", "storage.s3.prefix"),
            ("prefix = \"/beffroi/\"\n", "storage.s3.prefix"),
            ("prefix = \"a//b/\"\n", "storage.s3.prefix"),
            ("prefix = \"a/../b/\"\n", "storage.s3.prefix"),
            ("prefix = \"a b/\"\n", "storage.s3.prefix"),
            ("timeout_seconds = 0\n", "storage.s3.timeout_seconds"),
            ("ca_file = \"ca.pem\"\n", "storage.s3.ca_file"),
            ("path_style = \"yes\"\n", "storage.s3.path_style"),
            (
                "secret_access_key = \"x\"\n",
                "storage.s3.secret_access_key",
            ),
            ("sekret = 1\n", "storage.s3"),
        ] {
            let err = parse(&format!("{GOOD}{extra}")).unwrap_err().to_string();
            assert!(err.starts_with(key), "{extra}: {err}");
        }
        assert!(parse(&format!("{GOOD}prefix = \"site-a/files/\"\n")).is_ok());
        // Dots need path style: `*.endpoint` would not cover `a.b.endpoint`.
        let dotted = GOOD.replace("\"beffroi\"", "\"beffroi.fichiers\"");
        assert!(parse(&dotted).is_ok());
        let err = parse(&format!("{dotted}path_style = false\n")).unwrap_err();
        assert!(err.to_string().starts_with("storage.s3.bucket"), "{err}");
    }

    #[test]
    fn the_secret_key_never_shows_in_debug_output_or_errors() {
        let dir = tempfile::tempdir().unwrap();
        let secret = "wJalrXUtnFEMI-K7MDENG-do-not-print";
        let file = dir.path().join("s3-secret");
        std::fs::write(&file, format!("{secret}\n")).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        // Port 9 (discard) on loopback: nothing listens, so every request fails at once.
        let config = parse(
            &GOOD
                .replace("https://s3.agence.gouv.fr:3900", "http://127.0.0.1:9")
                .replace("/etc/beffroi/s3-secret", file.to_str().unwrap()),
        )
        .unwrap();
        let store = crate::blobs::BlobStore::from_config(&config).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let errors = runtime.block_on(async {
            vec![
                store.get(&"a".repeat(64)).await.unwrap_err(),
                store
                    .put(b"x".to_vec(), crate::blobs::MediaType::Text)
                    .await
                    .unwrap_err(),
                store.ping().await.unwrap_err(),
            ]
        });
        for error in &errors {
            assert!(
                matches!(error, crate::blobs::BlobError::Unavailable(_)),
                "{error:?}"
            );
        }
        let printed = format!("{store:?} {config:?} {errors:?} {}", errors[0]);
        assert!(printed.contains("127.0.0.1:9"), "{printed}");
        assert!(!printed.contains(secret), "{printed}");
    }
}
