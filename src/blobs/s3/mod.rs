//! The S3 backend of the [`BlobStore`](super::BlobStore): blobs as objects
//! `<prefix>ab/cdef…` in one bucket of an S3-compatible server (Garage, MinIO, Ceph RGW, AWS),
//! shared by every node behind the load balancer.
//!
//! A small client of our own over the reqwest and rustls the project already has, signing with
//! SigV4 (`sigv4`): the store needs five requests (HEAD and GET of an object, PUT, a listing for
//! backups, HEAD of the bucket for readiness), which did not justify an SDK's dependency tree
//! (`object_store` or `rust-s3` bring their own XML, retry and credential stacks). The same
//! guarantees as on disk: a PUT carries the payload's SHA-256 twice (signed
//! `x-amz-content-sha256` and `x-amz-checksum-sha256`), which the server checks before keeping
//! the object; a GET is read whole, bounded, and re-hashed, so an object altered on the server is
//! refused and a cut transfer is never served.
//!
//! This module must never log or format the secret access key, nor follow a redirect (a
//! redirect would send the signed request elsewhere).

mod config;
pub mod sigv4;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sha2::{Digest, Sha256};

pub use config::S3Config;

use super::BlobError;
use crate::config::ConfigError;
use sigv4::{EMPTY_PAYLOAD_SHA256, Request, Signer};

/// The largest object the store reads back: the largest upload the configuration allows
/// (`server.max_upload_bytes` is at most 1 GiB). A bigger object is not one Beffroi wrote.
const MAX_OBJECT_BYTES: usize = 1024 * 1024 * 1024;

/// A listing page's body is a few hundred bytes per key; 1000 keys fit well within this.
const MAX_LISTING_BYTES: usize = 8 * 1024 * 1024;

pub struct S3Store {
    http: reqwest::Client,
    signer: Signer,
    /// `https://host:port`, without a trailing slash.
    origin: String,
    /// The `Host` header, signed: `host[:port]`, with the bucket in front when virtual-hosted.
    host: String,
    /// `/bucket` (path style) or empty (virtual-hosted).
    bucket_path: String,
    pub bucket: String,
    pub prefix: String,
    endpoint: String,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

/// An object found by [`S3Store::list`]: its key under the prefix and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
}

fn s3_invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: format!("storage.s3.{key}"),
        reason: reason.into(),
    }
}

fn unavailable(what: impl std::fmt::Display) -> BlobError {
    BlobError::Unavailable(what.to_string())
}

impl S3Store {
    /// Builds the client from a validated `[storage.s3]`, reading the secret and the CA file.
    pub fn new(config: &S3Config) -> Result<Self, ConfigError> {
        let secret = crate::config::read_secret_file(
            "storage.s3.secret_access_key_file",
            &config.secret_access_key_file,
        )?;
        let url = url::Url::parse(&config.endpoint)
            .map_err(|e| s3_invalid("endpoint", format!("not a URL: {e}")))?;
        let host_name = url
            .host_str()
            .ok_or_else(|| s3_invalid("endpoint", "has no host"))?;
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        let (host, bucket_path) = if config.path_style {
            (format!("{host_name}{port}"), format!("/{}", config.bucket))
        } else {
            (
                format!("{}.{host_name}{port}", config.bucket),
                String::new(),
            )
        };
        let origin = format!("{}://{host}", url.scheme());
        Ok(Self {
            http: http_client(config)?,
            signer: Signer {
                access_key_id: config.access_key_id.clone(),
                secret_access_key: secret,
                region: config.region.clone(),
            },
            origin,
            host,
            bucket_path,
            bucket: config.bucket.clone(),
            prefix: config.prefix.clone(),
            endpoint: config.endpoint.clone(),
        })
    }

    /// `endpoint bucket/prefix`, for messages.
    pub fn describe(&self) -> String {
        format!("{} bucket {}/{}", self.endpoint, self.bucket, self.prefix)
    }

    fn object_path(&self, key: &str) -> String {
        sigv4::encode_path(&format!("{}/{}{key}", self.bucket_path, self.prefix))
    }

    /// Sends a signed request; `path` is the already-encoded path after the origin.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        extra: &[(&str, &str)],
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<reqwest::Response, BlobError> {
        let payload_sha256 = body.as_ref().map_or(EMPTY_PAYLOAD_SHA256, |(_, h)| h);
        let amz_date = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        let path = if path.is_empty() { "/" } else { path };
        let signed = self.signer.sign(
            &Request {
                method: method.as_str(),
                host: &self.host,
                path,
                query,
                headers: extra,
                payload_sha256,
            },
            &amz_date,
        );
        let query_string = sigv4::canonical_query(query);
        let url = if query_string.is_empty() {
            format!("{}{path}", self.origin)
        } else {
            format!("{}{path}?{query_string}", self.origin)
        };
        let mut request = self.http.request(method, url);
        for (name, value) in extra
            .iter()
            .copied()
            .chain(signed.iter().map(|(name, value)| (*name, value.as_str())))
        {
            request = request.header(name, value);
        }
        if let Some((bytes, _)) = body {
            request = request.body(bytes);
        }
        request.send().await.map_err(|e| {
            unavailable(format!(
                "{}: {}",
                self.describe(),
                describe_reqwest_error(&e)
            ))
        })
    }

    /// Whether the object exists (HEAD).
    async fn exists(&self, key: &str) -> Result<bool, BlobError> {
        let response = self
            .send(
                reqwest::Method::HEAD,
                &self.object_path(key),
                &[],
                &[],
                None,
            )
            .await?;
        match response.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.refusal("HEAD", key, response).await),
        }
    }

    /// Stores `bytes` under `key` unless an object is already there: keys are content hashes,
    /// so an existing object holds these bytes (a GET checks it).
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        if self.exists(key).await? {
            return Ok(());
        }
        let digest = Sha256::digest(&bytes);
        let hex_digest = hex::encode(digest);
        let checksum = base64::engine::general_purpose::STANDARD.encode(digest);
        let response = self
            .send(
                reqwest::Method::PUT,
                &self.object_path(key),
                &[],
                &[
                    ("x-amz-checksum-sha256", &checksum),
                    ("content-type", "application/octet-stream"),
                ],
                Some((bytes, &hex_digest)),
            )
            .await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(self.refusal("PUT", key, response).await)
        }
    }

    /// The object's whole content, or `None` when there is no such object.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        let response = self
            .send(reqwest::Method::GET, &self.object_path(key), &[], &[], None)
            .await?;
        match response.status().as_u16() {
            200 => {}
            404 => return Ok(None),
            _ => return Err(self.refusal("GET", key, response).await),
        }
        let expected = response.content_length();
        let bytes = self.read_body(response, MAX_OBJECT_BYTES, key).await?;
        if expected.is_some_and(|n| n != bytes.len() as u64) {
            return Err(unavailable(format!(
                "{}: {key} ended after {} of {} bytes",
                self.describe(),
                bytes.len(),
                expected.unwrap_or(0)
            )));
        }
        Ok(Some(bytes))
    }

    /// Reads a body whole, refusing one larger than `limit`; a transfer cut short is an error
    /// (hyper reports a body shorter than its Content-Length), never a partial result.
    async fn read_body(
        &self,
        mut response: reqwest::Response,
        limit: usize,
        what: &str,
    ) -> Result<Vec<u8>, BlobError> {
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > limit {
                        return Err(BlobError::Io(format!(
                            "{}: {what} is larger than {limit} bytes",
                            self.describe()
                        )));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(bytes),
                Err(e) => {
                    return Err(unavailable(format!(
                        "{}: reading {what}: {}",
                        self.describe(),
                        describe_reqwest_error(&e)
                    )));
                }
            }
        }
    }

    /// Every object under the prefix, in key order (ListObjectsV2, page by page).
    pub async fn list(&self) -> Result<Vec<ListedObject>, BlobError> {
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("list-type", "2"), ("prefix", self.prefix.as_str())];
            if let Some(t) = &token {
                query.push(("continuation-token", t.as_str()));
            }
            let response = self
                .send(
                    reqwest::Method::GET,
                    &sigv4::encode_path(&self.bucket_path),
                    &query,
                    &[],
                    None,
                )
                .await?;
            if !response.status().is_success() {
                return Err(self.refusal("list", "the bucket", response).await);
            }
            let body = self
                .read_body(response, MAX_LISTING_BYTES, "a listing")
                .await?;
            let text = String::from_utf8_lossy(&body);
            for contents in elements(&text, "Contents") {
                let key = first_element(contents, "Key").map(xml_unescape);
                let size = first_element(contents, "Size").and_then(|s| s.trim().parse().ok());
                let (Some(key), Some(size)) = (key, size) else {
                    return Err(unavailable(format!(
                        "{}: a listing entry without key or size",
                        self.describe()
                    )));
                };
                let Some(relative) = key.strip_prefix(&self.prefix) else {
                    continue;
                };
                objects.push(ListedObject {
                    key: relative.to_owned(),
                    size,
                });
            }
            let truncated = first_element(&text, "IsTruncated").is_some_and(|t| t.trim() == "true");
            token = first_element(&text, "NextContinuationToken").map(xml_unescape);
            if !truncated {
                break;
            }
            if token.is_none() {
                return Err(unavailable(format!(
                    "{}: a truncated listing without a continuation token",
                    self.describe()
                )));
            }
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// Whether the bucket answers with these credentials (HEAD of the bucket).
    pub async fn ping(&self) -> Result<(), BlobError> {
        let response = self
            .send(
                reqwest::Method::HEAD,
                &sigv4::encode_path(&self.bucket_path),
                &[],
                &[],
                None,
            )
            .await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(self.refusal("HEAD", "the bucket", response).await)
        }
    }

    /// A refusal by the server, with its S3 error code when it sent one. A server error or a
    /// refusal of our credentials means the store cannot be used: unavailable (503).
    async fn refusal(&self, method: &str, what: &str, response: reqwest::Response) -> BlobError {
        let status = response.status();
        let body = self
            .read_body(response, 64 * 1024, "an error")
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        let code = first_element(&text, "Code").map(xml_unescape);
        let detail = format!(
            "{}: {method} {what} answered {status}{}",
            self.describe(),
            code.map(|c| format!(" ({c})")).unwrap_or_default()
        );
        BlobError::Unavailable(detail)
    }
}

/// reqwest's message with its causes (the connect error under "error sending request").
fn describe_reqwest_error(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// rustls with the process's provider; the system's authorities plus `ca_file`; no proxy
/// from the environment; bounded time; no redirects.
fn http_client(config: &S3Config) -> Result<reqwest::Client, ConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A system bundle can hold a certificate rustls cannot use; skip it rather than fail.
        let _ = roots.add(cert);
    }
    if let Some(path) = &config.ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| s3_invalid("ca_file", format!("{}: {e}", path.display())))?
            .collect::<Result<_, _>>()
            .map_err(|e| s3_invalid("ca_file", format!("{}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(s3_invalid(
                "ca_file",
                format!("{}: no PEM certificate found", path.display()),
            ));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| s3_invalid("ca_file", format!("{}: {e}", path.display())))?;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(crate::tls::crypto_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| s3_invalid("endpoint", e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let timeout = Duration::from_secs(config.timeout_seconds);
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .timeout(timeout)
        .user_agent(concat!("beffroi/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| s3_invalid("endpoint", e.to_string()))
}

/// The contents of each `<name>…</name>` element, in order (S3's listing is flat and
/// attribute-free, which is all this reads).
fn elements<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else {
            break;
        };
        out.push(&after[..end]);
        rest = &after[end + close.len()..];
    }
    out
}

fn first_element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    elements(xml, name).into_iter().next()
}

/// The five predefined entities and numeric references.
fn xml_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp..];
        let Some(semi) = after.find(';') else {
            out.push_str(after);
            return out;
        };
        let entity = &after[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_listing() {
        let xml = "<?xml version=\"1.0\"?><ListBucketResult><IsTruncated>true</IsTruncated>\
                   <Contents><Key>p/ab/cd</Key><Size>5</Size></Contents>\
                   <Contents><Key>p/a&amp;b</Key><Size>7</Size></Contents>\
                   <NextContinuationToken>x&#43;y</NextContinuationToken></ListBucketResult>";
        let keys: Vec<String> = elements(xml, "Contents")
            .into_iter()
            .filter_map(|c| first_element(c, "Key").map(xml_unescape))
            .collect();
        assert_eq!(keys, ["p/ab/cd", "p/a&b"]);
        assert_eq!(
            first_element(xml, "NextContinuationToken").map(xml_unescape),
            Some("x+y".into())
        );
        assert_eq!(xml_unescape("a &bogus; b"), "a &bogus; b");
    }
}
