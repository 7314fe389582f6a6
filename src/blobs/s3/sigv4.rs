//! AWS Signature Version 4 for the few S3 requests the blob store makes (HEAD, GET, PUT, list):
//! the canonical request, the string to sign and the signing key of the AWS specification
//! ("Signature Version 4 signing process", S3 flavour: paths are encoded once, not twice).
//!
//! The signature covers the payload's SHA-256 (`x-amz-content-sha256`), so the server refuses a
//! body altered on the way, and the date, so a captured request expires. The secret key is only
//! ever fed to HMAC; nothing here formats it.

use ring::hmac;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// SHA-256 of the empty payload, for requests without a body.
pub const EMPTY_PAYLOAD_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The credentials and the scope they sign for.
pub struct Signer {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub region: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[REDACTED]")
            .field("region", &self.region)
            .finish()
    }
}

/// What is signed about one request. `headers` are the `x-amz-*` and other headers sent besides
/// `host`, `x-amz-date` and `x-amz-content-sha256`, with lowercase names.
pub struct Request<'a> {
    pub method: &'a str,
    /// The `Host` header as sent: the host, and the port when it is not the scheme's default.
    pub host: &'a str,
    /// The path, already in its encoded form (`/bucket/prefix/ab/cdef…`).
    pub path: &'a str,
    /// Query parameters, not encoded.
    pub query: &'a [(&'a str, &'a str)],
    pub headers: &'a [(&'a str, &'a str)],
    pub payload_sha256: &'a str,
}

/// The characters S3 leaves as they are in a path or query component (RFC 3986 unreserved).
fn encode_component(value: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A path for the URL and the canonical request alike.
pub fn encode_path(path: &str) -> String {
    encode_component(path, true)
}

/// The query string, sorted as the canonical request wants it (the URL may use it as is).
pub fn canonical_query(query: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (encode_component(k, false), encode_component(v, false)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

impl Signer {
    /// The headers to send with the request: `x-amz-date`, `x-amz-content-sha256` and
    /// `authorization`. `amz_date` is `YYYYMMDDTHHMMSSZ`, in UTC.
    pub fn sign(&self, request: &Request<'_>, amz_date: &str) -> Vec<(&'static str, String)> {
        let date = amz_date.get(..8).unwrap_or(amz_date);
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), request.host.to_owned()),
            ("x-amz-content-sha256".into(), request.payload_sha256.into()),
            ("x-amz-date".into(), amz_date.to_owned()),
        ];
        headers.extend(
            request
                .headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned())),
        );
        headers.sort();
        let signed_headers = headers
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(";");
        let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let canonical_request = format!(
            "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
            request.method,
            request.path,
            canonical_query(request.query),
            request.payload_sha256
        );
        let scope = format!("{date}/{}/s3/aws4_request", self.region);
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical_request.as_bytes()))
        );
        let secret = format!("AWS4{}", self.secret_access_key.expose_secret());
        let mut key = hmac_sha256(secret.as_bytes(), date.as_bytes());
        for part in [self.region.as_str(), "s3", "aws4_request"] {
            key = hmac_sha256(&key, part.as_bytes());
        }
        let signature = hex::encode(hmac_sha256(&key, string_to_sign.as_bytes()));
        vec![
            ("x-amz-date", amz_date.to_owned()),
            ("x-amz-content-sha256", request.payload_sha256.to_owned()),
            (
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, \
                     Signature={signature}",
                    self.access_key_id
                ),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The GET Object example of the S3 SigV4 documentation ("Example: GET Object", the
    /// documentation's published credentials and signature).
    #[test]
    fn signs_the_documented_example() {
        let signer = Signer {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: SecretString::from("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            region: "us-east-1".into(),
        };
        let headers = signer.sign(
            &Request {
                method: "GET",
                host: "examplebucket.s3.amazonaws.com",
                path: "/test.txt",
                query: &[],
                headers: &[("range", "bytes=0-9")],
                payload_sha256: EMPTY_PAYLOAD_SHA256,
            },
            "20130524T000000Z",
        );
        let authorization = &headers[2].1;
        assert!(
            authorization.ends_with(
                "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
            ),
            "{authorization}"
        );
        assert!(authorization.contains("SignedHeaders=host;range;x-amz-content-sha256;x-amz-date"));
        assert!(!format!("{signer:?}").contains("wJalr"));
    }

    #[test]
    fn query_is_sorted_and_encoded() {
        assert_eq!(
            canonical_query(&[("prefix", "a b/"), ("list-type", "2")]),
            "list-type=2&prefix=a%20b%2F"
        );
        assert_eq!(encode_path("/bucket/ab/c d"), "/bucket/ab/c%20d");
    }
}
