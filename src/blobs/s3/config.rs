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
