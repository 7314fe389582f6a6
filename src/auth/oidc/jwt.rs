//! Verification of compact JWS tokens (OpenID Connect ID tokens and
//! back-channel logout tokens) against the identity provider's JWKS.
//!
//! This module only establishes that a token was signed by one of the
//! provider's published keys with an algorithm the caller allows. It does
//! not look at any claim (`iss`, `aud`, `exp`, `nonce`, …): the caller must.
//!
//! Defences, in the order they are applied:
//!
//! * the token is at most [`MAX_TOKEN_LEN`] bytes and has exactly three
//!   segments, each strict base64url without padding (RFC 7515 §2); the
//!   signature segment is not empty;
//! * the header is a JSON object without duplicate members;
//! * `alg` must name one of the asymmetric [`Algorithm`]s *and* be in the
//!   caller's allow-list. `none` (in any case) and the `HS*` family are never
//!   accepted: no code path turns a public key into an HMAC secret;
//! * a `crit` header is always refused (we implement no extension);
//! * keys embedded in or referenced by the token (`jwk`, `jku`, `x5u`, `x5c`)
//!   are ignored: only the JWKS handed to [`verify`] is used;
//! * a key is a candidate only if its type and curve fit the algorithm, its
//!   `use` / `key_ops` allow signature verification, its `alg` (if any)
//!   equals the header's, and its `kid` equals the header's `kid` (when the
//!   header has one);
//! * the claims are parsed only after the signature has been verified, and
//!   must be a JSON object without duplicate members.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Longest token accepted, in bytes. ID tokens are typically well under
/// 2 KiB; this leaves room for generous claims while bounding the work done
/// on hostile input.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Longest rendering of attacker-controlled text (an `alg` or `kid`) kept in
/// an error, so an audit record stays short.
const MAX_ECHO_LEN: usize = 64;

/// RSA moduli ring accepts for the `*_2048_8192_*` parameters.
const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 8192;

/// The JWS signature algorithms we accept (RFC 7518 §3, RFC 8037 §3.1).
/// Symmetric (`HS*`) algorithms and `none` are deliberately absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    EdDsa,
}

impl Algorithm {
    /// Every supported algorithm, e.g. as a default allow-list.
    pub const ALL: [Algorithm; 9] = [
        Algorithm::Rs256,
        Algorithm::Rs384,
        Algorithm::Rs512,
        Algorithm::Ps256,
        Algorithm::Ps384,
        Algorithm::Ps512,
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::EdDsa,
    ];

    /// Parses a JOSE `alg` name. The comparison is exact (case-sensitive), as
    /// JOSE names are; anything unsupported — `none`, `HS256`, … — is `None`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.name() == name)
    }

    /// The JOSE `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Rs384 => "RS384",
            Algorithm::Rs512 => "RS512",
            Algorithm::Ps256 => "PS256",
            Algorithm::Ps384 => "PS384",
            Algorithm::Ps512 => "PS512",
            Algorithm::Es256 => "ES256",
            Algorithm::Es384 => "ES384",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    /// The key shape this algorithm needs.
    fn key_kind(self) -> KeyKind {
        match self {
            Algorithm::Rs256
            | Algorithm::Rs384
            | Algorithm::Rs512
            | Algorithm::Ps256
            | Algorithm::Ps384
            | Algorithm::Ps512 => KeyKind::Rsa,
            Algorithm::Es256 => KeyKind::Ec {
                crv: "P-256",
                coord_len: 32,
            },
            Algorithm::Es384 => KeyKind::Ec {
                crv: "P-384",
                coord_len: 48,
            },
            Algorithm::EdDsa => KeyKind::Okp {
                crv: "Ed25519",
                len: 32,
            },
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Copy)]
enum KeyKind {
    Rsa,
    Ec { crv: &'static str, coord_len: usize },
    Okp { crv: &'static str, len: usize },
}

/// One public key of a JWKS (RFC 7517 §4). Members we do not use — including
/// any private-key member a misconfigured provider might publish — are
/// dropped on deserialisation.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Jwk {
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ops: Option<Vec<String>>,
    /// RSA modulus, base64url big-endian.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent, base64url big-endian.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// Curve name for `EC` and `OKP` keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// EC x coordinate, or the OKP public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// EC y coordinate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

/// A JWK Set (RFC 7517 §5). Unknown members are ignored, and so is every
/// entry of `keys` that is not a well-formed [`Jwk`] (RFC 7517 §5 asks
/// implementations to skip keys they do not understand), so one odd key
/// cannot lock every user out.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct JwkSet {
    #[serde(deserialize_with = "deserialize_keys_leniently")]
    pub keys: Vec<Jwk>,
}

impl JwkSet {
    /// Whether some key carries exactly this `kid` — useful to decide whether
    /// to refetch the JWKS after [`peek_header`] (key rotation).
    pub fn contains_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

fn deserialize_keys_leniently<'de, D>(deserializer: D) -> Result<Vec<Jwk>, D::Error>
where
    D: Deserializer<'de>,
{
    let raw = Vec::<Value>::deserialize(deserializer)?;
    Ok(raw
        .into_iter()
        .filter_map(|v| serde_json::from_value::<Jwk>(v).ok())
        .collect())
}

/// The JOSE header members we look at. Other members are ignored; in
/// particular no key is ever taken from `jwk`, `jku`, `x5u` or `x5c`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Header {
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub typ: Option<String>,
    #[serde(default)]
    pub crit: Option<Vec<String>>,
}

/// A token whose signature has been verified. Its claims have *not* been
/// validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub header: Header,
    pub algorithm: Algorithm,
    pub claims: Map<String, Value>,
}

/// Why a token was refused. Messages are short, lowercase, never contain
/// the token, and echo at most 64 printable ASCII characters of
/// attacker-controlled header values.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// Holds the (sanitised, truncated) `alg` of the token.
    #[error("algorithm not allowed: {0}")]
    AlgorithmNotAllowed(String),
    #[error("critical header not supported")]
    CriticalHeader,
    /// Holds the header's `kid`, unaltered; the message shows it sanitised.
    #[error("no usable key for kid {}", echo_kid(.0))]
    UnknownKey(Option<String>),
    #[error("bad signature")]
    BadSignature,
}

/// Renders untrusted token text (an `alg`, a `kid`) for an audit record:
/// printable ASCII only (anything else becomes `?`), at most 64 characters
/// followed by `...` when cut.
pub fn sanitize_for_audit(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_ECHO_LEN)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect();
    if text.chars().nth(MAX_ECHO_LEN).is_some() {
        out.push_str("...");
    }
    out
}

fn echo_kid(kid: &Option<String>) -> String {
    match kid {
        Some(kid) => format!("\"{}\"", sanitize_for_audit(kid)),
        None => "(none)".to_owned(),
    }
}

/// The three segments of a compact JWS, still encoded.
struct Segments<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
}

fn split(token: &str) -> Result<Segments<'_>, JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::Malformed("token too long"));
    }
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(header), Some(payload), Some(signature), None) => Ok(Segments {
            header,
            payload,
            signature,
        }),
        _ => Err(JwtError::Malformed("token must have three segments")),
    }
}

/// Strict base64url: URL-safe alphabet only, no padding, no whitespace, no
/// non-zero trailing bits.
fn decode_segment(segment: &str) -> Result<Vec<u8>, JwtError> {
    if !segment
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(JwtError::Malformed("invalid base64url"));
    }
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| JwtError::Malformed("invalid base64url"))
}

/// A JSON object whose top-level member names are unique. serde_json keeps
/// the last of duplicate members silently; a duplicate in a security token is
/// an ambiguity an attacker may exploit against another parser, so refuse.
struct StrictObject(Map<String, Value>);

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = StrictObject;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a json object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<StrictObject, A::Error> {
                let mut map = Map::new();
                while let Some((key, value)) = access.next_entry::<String, Value>()? {
                    if map.contains_key(&key) {
                        return Err(de::Error::custom("duplicate member"));
                    }
                    map.insert(key, value);
                }
                Ok(StrictObject(map))
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

fn parse_object(json: &[u8], what: &'static str) -> Result<Map<String, Value>, JwtError> {
    serde_json::from_slice::<StrictObject>(json)
        .map(|o| o.0)
        .map_err(|_| JwtError::Malformed(what))
}

/// Decodes the header segment into a JSON object with unique members.
fn parse_raw_header(segment: &str) -> Result<Map<String, Value>, JwtError> {
    parse_object(&decode_segment(segment)?, "header is not a json object")
}

fn typed_header(raw: Map<String, Value>) -> Result<Header, JwtError> {
    Header::deserialize(Value::Object(raw)).map_err(|_| JwtError::Malformed("invalid header"))
}

/// Reads the header without verifying anything but the token's shape, to
/// learn the `kid` before choosing to refetch the JWKS. Nothing it returns
/// may be trusted.
///
/// # Errors
///
/// [`JwtError::Malformed`] if the token is too long, does not have three
/// segments, or its header is not a base64url JSON object with a string
/// `alg`.
pub fn peek_header(token: &str) -> Result<Header, JwtError> {
    let segments = split(token)?;
    typed_header(parse_raw_header(segments.header)?)
}

/// Verifies `token` against `keys`, accepting only `allowed` algorithms, and
/// returns its header and (unvalidated) claims.
///
/// # Errors
///
/// See [`JwtError`]; checks run in the order listed in the module
/// documentation, so a token with several defects reports the first.
pub fn verify(token: &str, keys: &JwkSet, allowed: &[Algorithm]) -> Result<Verified, JwtError> {
    let segments = split(token)?;
    // Check the whole token's alphabet up front, so a token with a bad
    // signature or payload encoding is reported as malformed whatever else
    // is wrong with it.
    let payload = decode_segment(segments.payload)?;
    let signature = decode_segment(segments.signature)?;
    let raw_header = parse_raw_header(segments.header)?;

    // `alg` and `crit` are judged on the raw object, so that e.g. a `crit`
    // of an unexpected type is still reported as a critical header.
    let algorithm = match raw_header.get("alg") {
        Some(Value::String(name)) => match Algorithm::parse(name) {
            Some(alg) if allowed.contains(&alg) => alg,
            _ => return Err(JwtError::AlgorithmNotAllowed(sanitize_for_audit(name))),
        },
        _ => return Err(JwtError::Malformed("invalid header")),
    };
    // Presence alone is refused, whatever its value (even `null` or `[]`).
    if raw_header.contains_key("crit") {
        return Err(JwtError::CriticalHeader);
    }
    let header = typed_header(raw_header)?;
    if signature.is_empty() {
        return Err(JwtError::Malformed("empty signature"));
    }

    let candidates: Vec<PublicKey> = keys
        .keys
        .iter()
        .filter(|jwk| match &header.kid {
            Some(kid) => jwk.kid.as_deref() == Some(kid.as_str()),
            None => true,
        })
        .filter_map(|jwk| PublicKey::from_jwk(jwk, algorithm))
        .collect();
    if candidates.is_empty() {
        return Err(JwtError::UnknownKey(header.kid));
    }

    // The signing input is the encoded header and payload exactly as
    // received (RFC 7515 §5.2 step 8), never a re-encoding.
    let signing_input_len = segments.header.len() + 1 + segments.payload.len();
    let signing_input = &token.as_bytes()[..signing_input_len];
    if !candidates
        .iter()
        .any(|key| key.verify(algorithm, signing_input, &signature))
    {
        return Err(JwtError::BadSignature);
    }

    let claims = parse_object(&payload, "claims are not a json object")?;
    Ok(Verified {
        header,
        algorithm,
        claims,
    })
}

/// Key material ready for ring, already checked to fit one algorithm.
enum PublicKey {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// `0x04 ‖ x ‖ y` for EC keys, the raw key for Ed25519.
    Bytes(Vec<u8>),
}

impl PublicKey {
    /// The key, if `jwk` may be used to verify an `alg` signature.
    fn from_jwk(jwk: &Jwk, alg: Algorithm) -> Option<Self> {
        if !matches!(jwk.use_.as_deref(), None | Some("sig")) {
            return None;
        }
        if let Some(ops) = &jwk.key_ops {
            if !ops.iter().any(|op| op == "verify") {
                return None;
            }
        }
        if let Some(key_alg) = &jwk.alg {
            if key_alg != alg.name() {
                return None;
            }
        }
        match alg.key_kind() {
            KeyKind::Rsa => {
                if jwk.kty != "RSA" {
                    return None;
                }
                let n = strip_leading_zeros(decode_key_member(jwk.n.as_deref()?)?);
                let e = strip_leading_zeros(decode_key_member(jwk.e.as_deref()?)?);
                let bits = bit_len(&n);
                if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) || e.is_empty() {
                    return None;
                }
                Some(PublicKey::Rsa { n, e })
            }
            KeyKind::Ec { crv, coord_len } => {
                if jwk.kty != "EC" || jwk.crv.as_deref() != Some(crv) {
                    return None;
                }
                let x = decode_key_member(jwk.x.as_deref()?)?;
                let y = decode_key_member(jwk.y.as_deref()?)?;
                if x.len() != coord_len || y.len() != coord_len {
                    return None;
                }
                let mut point = Vec::with_capacity(1 + 2 * coord_len);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Some(PublicKey::Bytes(point))
            }
            KeyKind::Okp { crv, len } => {
                if jwk.kty != "OKP" || jwk.crv.as_deref() != Some(crv) {
                    return None;
                }
                let x = decode_key_member(jwk.x.as_deref()?)?;
                if x.len() != len {
                    return None;
                }
                Some(PublicKey::Bytes(x))
            }
        }
    }

    fn verify(&self, alg: Algorithm, message: &[u8], sig: &[u8]) -> bool {
        match self {
            PublicKey::Rsa { n, e } => {
                let params: &'static signature::RsaParameters = match alg {
                    Algorithm::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    Algorithm::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    Algorithm::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    Algorithm::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
                    Algorithm::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
                    Algorithm::Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
                    Algorithm::Es256 | Algorithm::Es384 | Algorithm::EdDsa => return false,
                };
                signature::RsaPublicKeyComponents { n, e }
                    .verify(params, message, sig)
                    .is_ok()
            }
            PublicKey::Bytes(bytes) => {
                let verifier: &'static dyn signature::VerificationAlgorithm = match alg {
                    Algorithm::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
                    Algorithm::Es384 => &signature::ECDSA_P384_SHA384_FIXED,
                    Algorithm::EdDsa => &signature::ED25519,
                    Algorithm::Rs256
                    | Algorithm::Rs384
                    | Algorithm::Rs512
                    | Algorithm::Ps256
                    | Algorithm::Ps384
                    | Algorithm::Ps512 => return false,
                };
                signature::UnparsedPublicKey::new(verifier, bytes)
                    .verify(message, sig)
                    .is_ok()
            }
        }
    }
}

/// JWK members are base64url without padding (RFC 7518 §2); an undecodable
/// member makes the key unusable, not the whole set.
fn decode_key_member(value: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(value).ok()
}

/// RFC 7518 forbids leading zero octets in `n`/`e`, but some providers emit
/// one; ring refuses them. The integer is the same, so drop them.
fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    bytes.drain(..zeros);
    bytes
}

/// Bit length of a big-endian unsigned integer without leading zero octets.
fn bit_len(bytes: &[u8]) -> usize {
    match bytes.first() {
        Some(&first) => (bytes.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
        EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents,
    };
    use serde_json::json;

    const RSA_A: &[u8] = include_bytes!("testdata/rsa2048-a.pk8.der");
    const RSA_B: &[u8] = include_bytes!("testdata/rsa2048-b.pk8.der");

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    enum Signer {
        Rsa(RsaKeyPair),
        Ec(EcdsaKeyPair),
        Ed(Ed25519KeyPair),
    }

    /// A private key and its public JWK.
    struct TestKey {
        alg: Algorithm,
        signer: Signer,
        jwk: Jwk,
    }

    fn empty_jwk(kty: &str, kid: Option<&str>) -> Jwk {
        Jwk {
            kty: kty.to_owned(),
            kid: kid.map(str::to_owned),
            alg: None,
            use_: None,
            key_ops: None,
            n: None,
            e: None,
            crv: None,
            x: None,
            y: None,
        }
    }

    fn rsa_key(alg: Algorithm, pkcs8: &[u8], kid: Option<&str>) -> TestKey {
        let pair = RsaKeyPair::from_pkcs8(pkcs8).unwrap();
        let components: RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
        let jwk = Jwk {
            n: Some(b64(&components.n)),
            e: Some(b64(&components.e)),
            ..empty_jwk("RSA", kid)
        };
        TestKey {
            alg,
            signer: Signer::Rsa(pair),
            jwk,
        }
    }

    fn ec_key(alg: Algorithm, kid: Option<&str>) -> TestKey {
        let (signing, crv, coord): (&'static EcdsaSigningAlgorithm, _, _) = match alg {
            Algorithm::Es256 => (&ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32),
            Algorithm::Es384 => (&ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48),
            other => panic!("not an ec algorithm: {other}"),
        };
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(signing, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(signing, pkcs8.as_ref(), &rng).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        assert_eq!(point.len(), 1 + 2 * coord);
        assert_eq!(point[0], 0x04);
        let jwk = Jwk {
            crv: Some(crv.to_owned()),
            x: Some(b64(&point[1..1 + coord])),
            y: Some(b64(&point[1 + coord..])),
            ..empty_jwk("EC", kid)
        };
        TestKey {
            alg,
            signer: Signer::Ec(pair),
            jwk,
        }
    }

    fn ed_key(kid: Option<&str>) -> TestKey {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let jwk = Jwk {
            crv: Some("Ed25519".to_owned()),
            x: Some(b64(pair.public_key().as_ref())),
            ..empty_jwk("OKP", kid)
        };
        TestKey {
            alg: Algorithm::EdDsa,
            signer: Signer::Ed(pair),
            jwk,
        }
    }

    /// A key for `alg` (RSA keys use fixture A).
    fn key(alg: Algorithm, kid: Option<&str>) -> TestKey {
        match alg.key_kind() {
            KeyKind::Rsa => rsa_key(alg, RSA_A, kid),
            KeyKind::Ec { .. } => ec_key(alg, kid),
            KeyKind::Okp { .. } => ed_key(kid),
        }
    }

    impl TestKey {
        fn sign(&self, message: &[u8]) -> Vec<u8> {
            let rng = SystemRandom::new();
            match &self.signer {
                Signer::Rsa(pair) => {
                    let encoding: &'static dyn signature::RsaEncoding = match self.alg {
                        Algorithm::Rs256 => &signature::RSA_PKCS1_SHA256,
                        Algorithm::Rs384 => &signature::RSA_PKCS1_SHA384,
                        Algorithm::Rs512 => &signature::RSA_PKCS1_SHA512,
                        Algorithm::Ps256 => &signature::RSA_PSS_SHA256,
                        Algorithm::Ps384 => &signature::RSA_PSS_SHA384,
                        Algorithm::Ps512 => &signature::RSA_PSS_SHA512,
                        other => panic!("not an rsa algorithm: {other}"),
                    };
                    let mut sig = vec![0; pair.public().modulus_len()];
                    pair.sign(encoding, &rng, message, &mut sig).unwrap();
                    sig
                }
                Signer::Ec(pair) => pair.sign(&rng, message).unwrap().as_ref().to_vec(),
                Signer::Ed(pair) => pair.sign(message).as_ref().to_vec(),
            }
        }

        /// The header this key would normally produce.
        fn header(&self) -> Value {
            let mut header = json!({ "alg": self.alg.name(), "typ": "JWT" });
            if let Some(kid) = &self.jwk.kid {
                header["kid"] = json!(kid);
            }
            header
        }

        /// A token with raw header and payload JSON text.
        fn token_raw(&self, header: &str, payload: &str) -> String {
            let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
            let sig = self.sign(input.as_bytes());
            format!("{input}.{}", b64(&sig))
        }

        fn token_with_header(&self, header: &Value) -> String {
            self.token_raw(&header.to_string(), &claims().to_string())
        }

        fn token(&self) -> String {
            self.token_with_header(&self.header())
        }

        fn set(&self) -> JwkSet {
            JwkSet {
                keys: vec![self.jwk.clone()],
            }
        }
    }

    fn claims() -> Value {
        json!({
            "iss": "https://idp.example",
            "sub": "agent-42",
            "aud": "beffroi",
            "exp": 2_000_000_000u64,
            "nonce": "n-0S6_WzA2Mj",
        })
    }

    fn set_of(jwks: &[&Jwk]) -> JwkSet {
        JwkSet {
            keys: jwks.iter().map(|&j| j.clone()).collect(),
        }
    }

    fn segments(token: &str) -> Vec<String> {
        token.split('.').map(str::to_owned).collect()
    }

    fn all() -> &'static [Algorithm] {
        &Algorithm::ALL
    }

    // ---- Algorithm -----------------------------------------------------

    #[test]
    fn algorithm_names_round_trip() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::parse(alg.name()), Some(alg));
            assert_eq!(alg.to_string(), alg.name());
        }
    }

    #[test]
    fn algorithm_parse_refuses_none_hmac_and_unknown() {
        for name in [
            "none", "None", "NONE", "nOnE", "HS256", "HS384", "HS512", "rs256", "Rs256", "ES512",
            "ES256K", "Ed25519", "EDDSA", "RSA-OAEP", "", " RS256", "RS256 ",
        ] {
            assert_eq!(Algorithm::parse(name), None, "{name:?}");
        }
    }

    // ---- valid tokens --------------------------------------------------

    #[test]
    fn valid_token_for_each_algorithm() {
        for alg in Algorithm::ALL {
            let key = key(alg, Some("k1"));
            let verified =
                verify(&key.token(), &key.set(), &[alg]).unwrap_or_else(|e| panic!("{alg}: {e}"));
            assert_eq!(verified.algorithm, alg);
            assert_eq!(verified.header.alg, alg.name());
            assert_eq!(verified.header.kid.as_deref(), Some("k1"));
            assert_eq!(verified.header.typ.as_deref(), Some("JWT"));
            assert_eq!(Value::Object(verified.claims), claims());
        }
    }

    #[test]
    fn valid_token_without_kid_against_single_key() {
        for alg in [Algorithm::Rs256, Algorithm::Es256, Algorithm::EdDsa] {
            let key = key(alg, None);
            assert!(verify(&key.token(), &key.set(), all()).is_ok(), "{alg}");
        }
    }

    #[test]
    fn header_without_kid_may_use_a_key_that_has_one() {
        let key = key(Algorithm::Es256, Some("k1"));
        let mut header = key.header();
        header.as_object_mut().unwrap().remove("kid");
        assert!(verify(&key.token_with_header(&header), &key.set(), all()).is_ok());
    }

    #[test]
    fn signature_is_checked_over_segments_as_received() {
        // Header with unusual but valid JSON spacing and member order: a
        // verifier that re-serialised the header would compute a different
        // signing input and fail.
        let key = key(Algorithm::Es256, Some("k1"));
        let token = key.token_raw(r#"{ "kid" : "k1",  "alg":"ES256" }"#, r#"{ "sub" : "x" }"#);
        let verified = verify(&token, &key.set(), all()).unwrap();
        assert_eq!(verified.claims["sub"], "x");
    }

    #[test]
    fn rsa_modulus_with_leading_zero_octet_is_accepted() {
        let key = key(Algorithm::Rs256, Some("k1"));
        let mut jwk = key.jwk.clone();
        let mut n = URL_SAFE_NO_PAD.decode(jwk.n.as_deref().unwrap()).unwrap();
        n.insert(0, 0);
        jwk.n = Some(b64(&n));
        assert!(verify(&key.token(), &set_of(&[&jwk]), all()).is_ok());
    }

    // ---- tampering -----------------------------------------------------

    #[test]
    fn tampered_payload_is_refused() {
        for alg in Algorithm::ALL {
            let key = key(alg, Some("k1"));
            let parts = segments(&key.token());
            let mut forged = claims();
            forged["sub"] = json!("admin");
            let token = format!(
                "{}.{}.{}",
                parts[0],
                b64(forged.to_string().as_bytes()),
                parts[2]
            );
            assert_eq!(
                verify(&token, &key.set(), all()),
                Err(JwtError::BadSignature),
                "{alg}"
            );
        }
    }

    #[test]
    fn tampered_header_is_refused() {
        let key = key(Algorithm::Es256, Some("k1"));
        let parts = segments(&key.token());
        let header = json!({ "alg": "ES256", "kid": "k1", "typ": "logout+jwt" });
        let token = format!(
            "{}.{}.{}",
            b64(header.to_string().as_bytes()),
            parts[1],
            parts[2]
        );
        assert_eq!(
            verify(&token, &key.set(), all()),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn tampered_signature_byte_is_refused() {
        for alg in Algorithm::ALL {
            let key = key(alg, Some("k1"));
            let parts = segments(&key.token());
            let mut sig = URL_SAFE_NO_PAD.decode(&parts[2]).unwrap();
            for index in [0, sig.len() / 2, sig.len() - 1] {
                let mut bad = sig.clone();
                bad[index] ^= 0x01;
                let token = format!("{}.{}.{}", parts[0], parts[1], b64(&bad));
                assert_eq!(
                    verify(&token, &key.set(), all()),
                    Err(JwtError::BadSignature),
                    "{alg} byte {index}"
                );
            }
            // Truncated and extended signatures too.
            sig.pop();
            let token = format!("{}.{}.{}", parts[0], parts[1], b64(&sig));
            assert_eq!(
                verify(&token, &key.set(), all()),
                Err(JwtError::BadSignature)
            );
            sig.extend_from_slice(&[0, 0]);
            let token = format!("{}.{}.{}", parts[0], parts[1], b64(&sig));
            assert_eq!(
                verify(&token, &key.set(), all()),
                Err(JwtError::BadSignature)
            );
        }
    }

    #[test]
    fn signature_from_another_key_of_the_same_kid_is_refused() {
        let genuine = key(Algorithm::Es256, Some("k1"));
        let attacker = key(Algorithm::Es256, Some("k1"));
        assert_eq!(
            verify(&attacker.token(), &genuine.set(), all()),
            Err(JwtError::BadSignature)
        );
        let genuine = rsa_key(Algorithm::Rs256, RSA_A, Some("k1"));
        let attacker = rsa_key(Algorithm::Rs256, RSA_B, Some("k1"));
        assert_eq!(
            verify(&attacker.token(), &genuine.set(), all()),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn key_embedded_in_header_is_never_used() {
        let genuine = key(Algorithm::Es256, Some("k1"));
        let attacker = key(Algorithm::Es256, Some("k1"));
        let mut header = attacker.header();
        header["jwk"] = serde_json::to_value(&attacker.jwk).unwrap();
        header["jku"] = json!("https://attacker.example/jwks.json");
        let token = attacker.token_with_header(&header);
        assert_eq!(
            verify(&token, &genuine.set(), all()),
            Err(JwtError::BadSignature)
        );
    }

    // ---- algorithm attacks ---------------------------------------------

    #[test]
    fn alg_none_is_refused_with_and_without_signature() {
        let key = key(Algorithm::Rs256, Some("k1"));
        let payload = b64(claims().to_string().as_bytes());
        let genuine_sig = segments(&key.token())[2].clone();
        for name in ["none", "None", "NONE", "nOnE"] {
            let header = b64(json!({ "alg": name, "kid": "k1" }).to_string().as_bytes());
            for sig in ["", genuine_sig.as_str(), "AAAA"] {
                let token = format!("{header}.{payload}.{sig}");
                assert_eq!(
                    verify(&token, &key.set(), all()),
                    Err(JwtError::AlgorithmNotAllowed(name.to_owned())),
                    "{name} with signature {sig:?}"
                );
            }
        }
    }

    #[test]
    fn hs256_signed_with_the_public_key_is_refused() {
        // The classic key-confusion attack: the attacker HMACs the token with
        // the RSA public key (in whatever serialisation a naive verifier
        // would use as a secret).
        let key = key(Algorithm::Rs256, Some("k1"));
        let jwk_json = serde_json::to_string(&key.jwk).unwrap();
        let n = URL_SAFE_NO_PAD
            .decode(key.jwk.n.as_deref().unwrap())
            .unwrap();
        let pem_like = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(&n)
        );
        for (alg, hmac_alg) in [
            ("HS256", ring::hmac::HMAC_SHA256),
            ("HS384", ring::hmac::HMAC_SHA384),
            ("HS512", ring::hmac::HMAC_SHA512),
        ] {
            for secret in [jwk_json.as_bytes(), pem_like.as_bytes(), n.as_slice()] {
                let header = json!({ "alg": alg, "kid": "k1", "typ": "JWT" });
                let input = format!(
                    "{}.{}",
                    b64(header.to_string().as_bytes()),
                    b64(claims().to_string().as_bytes())
                );
                let tag =
                    ring::hmac::sign(&ring::hmac::Key::new(hmac_alg, secret), input.as_bytes());
                let token = format!("{input}.{}", b64(tag.as_ref()));
                assert_eq!(
                    verify(&token, &key.set(), all()),
                    Err(JwtError::AlgorithmNotAllowed(alg.to_owned()))
                );
            }
        }
    }

    #[test]
    fn alg_outside_allow_list_is_refused() {
        let key = key(Algorithm::Rs256, Some("k1"));
        let token = key.token();
        assert!(verify(&token, &key.set(), &[Algorithm::Rs256]).is_ok());
        for allowed in [
            &[][..],
            &[Algorithm::Es256][..],
            &[Algorithm::Ps256, Algorithm::Rs384, Algorithm::Rs512][..],
        ] {
            assert_eq!(
                verify(&token, &key.set(), allowed),
                Err(JwtError::AlgorithmNotAllowed("RS256".to_owned()))
            );
        }
    }

    #[test]
    fn unknown_or_badly_typed_alg_is_refused() {
        let key = key(Algorithm::Es256, Some("k1"));
        for alg in ["ES512", "es256", "RSA1_5", ""] {
            let token = key.token_with_header(&json!({ "alg": alg, "kid": "k1" }));
            assert_eq!(
                verify(&token, &key.set(), all()),
                Err(JwtError::AlgorithmNotAllowed(alg.to_owned()))
            );
        }
        for alg in [json!(null), json!(256), json!(["ES256"])] {
            let token = key.token_with_header(&json!({ "alg": alg, "kid": "k1" }));
            assert_eq!(
                verify(&token, &key.set(), all()),
                Err(JwtError::Malformed("invalid header"))
            );
        }
        let token = key.token_with_header(&json!({ "kid": "k1" }));
        assert_eq!(
            verify(&token, &key.set(), all()),
            Err(JwtError::Malformed("invalid header"))
        );
    }

    #[test]
    fn rsa_key_cannot_verify_pss_when_pinned_to_pkcs1_and_vice_versa() {
        // Key `alg` mismatch: the same RSA key pinned to RS256 must not be
        // used for a PS256 token, even though it would verify.
        let key = key(Algorithm::Ps256, Some("k1"));
        assert!(verify(&key.token(), &key.set(), all()).is_ok());
        let mut pinned = key.jwk.clone();
        pinned.alg = Some("RS256".to_owned());
        assert_eq!(
            verify(&key.token(), &set_of(&[&pinned]), all()),
            Err(JwtError::UnknownKey(Some("k1".to_owned())))
        );
        pinned.alg = Some("PS256".to_owned());
        assert!(verify(&key.token(), &set_of(&[&pinned]), all()).is_ok());
    }

    #[test]
    fn key_alg_mismatch_is_ignored() {
        let key = key(Algorithm::Es256, Some("k1"));
        for key_alg in ["ES384", "RS256", "HS256", "none", "es256"] {
            let mut jwk = key.jwk.clone();
            jwk.alg = Some(key_alg.to_owned());
            assert_eq!(
                verify(&key.token(), &set_of(&[&jwk]), all()),
                Err(JwtError::UnknownKey(Some("k1".to_owned()))),
                "{key_alg}"
            );
        }
        let mut jwk = key.jwk.clone();
        jwk.alg = Some("ES256".to_owned());
        assert!(verify(&key.token(), &set_of(&[&jwk]), all()).is_ok());
    }

    // ---- crit ----------------------------------------------------------

    #[test]
    fn crit_header_is_refused() {
        let key = key(Algorithm::Es256, Some("k1"));
        for crit in [
            json!(["exp"]),
            json!(["b64"]),
            json!([]),
            json!(null),
            json!(5),
        ] {
            let mut header = key.header();
            header["crit"] = crit.clone();
            header["exp"] = json!(1);
            header["b64"] = json!(false);
            assert_eq!(
                verify(&key.token_with_header(&header), &key.set(), all()),
                Err(JwtError::CriticalHeader),
                "{crit}"
            );
        }
    }

    // ---- key selection -------------------------------------------------

    #[test]
    fn kid_pointing_at_no_key_is_unknown() {
        let key = key(Algorithm::Rs256, Some("k1"));
        let token = key.token_with_header(&json!({ "alg": "RS256", "kid": "rotated" }));
        assert_eq!(
            verify(&token, &key.set(), all()),
            Err(JwtError::UnknownKey(Some("rotated".to_owned())))
        );
        assert_eq!(
            verify(&key.token(), &JwkSet::default(), all()),
            Err(JwtError::UnknownKey(Some("k1".to_owned())))
        );
        let unkeyed = self::key(Algorithm::Rs256, None);
        assert_eq!(
            verify(&unkeyed.token(), &JwkSet::default(), all()),
            Err(JwtError::UnknownKey(None))
        );
    }

    #[test]
    fn kid_matching_a_key_of_the_wrong_kty_is_unknown() {
        let ec = key(Algorithm::Es256, Some("k1"));
        let rsa = key(Algorithm::Rs256, Some("k1"));
        let ed = key(Algorithm::EdDsa, Some("k1"));
        assert_eq!(
            verify(&ec.token(), &set_of(&[&rsa.jwk, &ed.jwk]), all()),
            Err(JwtError::UnknownKey(Some("k1".to_owned())))
        );
        assert_eq!(
            verify(&rsa.token(), &set_of(&[&ec.jwk, &ed.jwk]), all()),
            Err(JwtError::UnknownKey(Some("k1".to_owned())))
        );
        assert_eq!(
            verify(&ed.token(), &set_of(&[&rsa.jwk, &ec.jwk]), all()),
            Err(JwtError::UnknownKey(Some("k1".to_owned())))
        );
        // The genuine key material under a wrong `kty` is not used either.
        for kty in ["RSA", "OKP", "oct", "ec"] {
            let mut jwk = ec.jwk.clone();
            jwk.kty = kty.to_owned();
            assert_eq!(
                verify(&ec.token(), &set_of(&[&jwk]), all()),
                Err(JwtError::UnknownKey(Some("k1".to_owned()))),
                "{kty}"
            );
        }
        let mut jwk = ed.jwk.clone();
        jwk.kty = "EC".to_owned();
        assert_eq!(
            verify(&ed.token(), &set_of(&[&jwk]), all()),
            Err(JwtError::UnknownKey(Some("k1".to_owned())))
        );
        let mut jwk = rsa.jwk.clone();
        jwk.kty = "rsa".to_owned();
        assert_eq!(
            verify(&rsa.token(), &set_of(&[&jwk]), all()),
            Err(JwtError::UnknownKey(Some("k1".to_owned())))
        );
    }

    #[test]
    fn ec_key_on_the_wrong_curve_is_unknown() {
        let p256 = key(Algorithm::Es256, Some("k1"));
        for crv in [Some("P-384"), Some("P-521"), Some("secp256k1"), None] {
            let mut jwk = p256.jwk.clone();
            jwk.crv = crv.map(str::to_owned);
            assert_eq!(
                verify(&p256.token(), &set_of(&[&jwk]), all()),
                Err(JwtError::UnknownKey(Some("k1".to_owned()))),
                "{crv:?}"
            );
        }
        let p384 = key(Algorithm::Es384, Some("k1"));
        let mut jwk = p384.jwk.clone();
        jwk.crv = Some("P-256".to_owned());
        assert_eq!(
            verify(&p384.token(), &set_of(&[&jwk]), all()),
            Err(JwtError::UnknownKey(Some("k1".to_owned())))
        );
        let ed = key(Algorithm::EdDsa, Some("k1"));
        let mut jwk = ed.jwk.clone();
        jwk.crv = Some("Ed448".to_owned());
        assert_eq!(
            verify(&ed.token(), &set_of(&[&jwk]), all()),
            Err(JwtError::UnknownKey(Some("k1".to_owned())))
        );
    }

    #[test]
    fn es256_token_against_key_with_wrong_kid() {
        let key = key(Algorithm::Es256, Some("k1"));
        let mut jwk = key.jwk.clone();
        jwk.kid = Some("k2".to_owned());
        assert_eq!(
            verify(&key.token(), &set_of(&[&jwk]), all()),
            Err(JwtError::UnknownKey(Some("k1".to_owned())))
        );
        // A key without a kid does not match a header kid either.
        jwk.kid = None;
        assert_eq!(
            verify(&key.token(), &set_of(&[&jwk]), all()),
            Err(JwtError::UnknownKey(Some("k1".to_owned())))
        );
        // kid comparison is exact.
        jwk.kid = Some("K1".to_owned());
        assert_eq!(
            verify(&key.token(), &set_of(&[&jwk]), all()),
            Err(JwtError::UnknownKey(Some("k1".to_owned())))
        );
    }

    #[test]
    fn kid_restricts_candidates_even_when_another_key_would_verify() {
        let signer = key(Algorithm::Es256, Some("k1"));
        let other = key(Algorithm::Es256, Some("k1"));
        let mut genuine_under_other_kid = signer.jwk.clone();
        genuine_under_other_kid.kid = Some("k2".to_owned());
        assert_eq!(
            verify(
                &signer.token(),
                &set_of(&[&other.jwk, &genuine_under_other_kid]),
                all()
            ),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn no_kid_tries_every_candidate() {
        let first = key(Algorithm::Es256, Some("old"));
        let second = key(Algorithm::Es256, Some("new"));
        let unrelated = key(Algorithm::Rs256, Some("rsa"));
        let mut header = second.header();
        header.as_object_mut().unwrap().remove("kid");
        let token = second.token_with_header(&header);
        let set = set_of(&[&unrelated.jwk, &first.jwk, &second.jwk]);
        let verified = verify(&token, &set, all()).unwrap();
        assert_eq!(verified.header.kid, None);

        let first = rsa_key(Algorithm::Rs256, RSA_B, None);
        let second = rsa_key(Algorithm::Rs256, RSA_A, None);
        assert!(verify(&second.token(), &set_of(&[&first.jwk, &second.jwk]), all()).is_ok());
        assert_eq!(
            verify(&second.token(), &set_of(&[&first.jwk]), all()),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn encryption_key_is_ignored() {
        let key = key(Algorithm::Es256, Some("k1"));
        for use_ in ["enc", "SIG", ""] {
            let mut jwk = key.jwk.clone();
            jwk.use_ = Some(use_.to_owned());
            assert_eq!(
                verify(&key.token(), &set_of(&[&jwk]), all()),
                Err(JwtError::UnknownKey(Some("k1".to_owned()))),
                "{use_:?}"
            );
        }
        let mut jwk = key.jwk.clone();
        jwk.use_ = Some("sig".to_owned());
        assert!(verify(&key.token(), &set_of(&[&jwk]), all()).is_ok());
    }

    #[test]
    fn key_ops_without_verify_is_ignored() {
        let key = key(Algorithm::EdDsa, Some("k1"));
        for ops in [vec![], vec!["encrypt"], vec!["sign"], vec!["Verify"]] {
            let mut jwk = key.jwk.clone();
            jwk.key_ops = Some(ops.iter().map(|s| s.to_string()).collect());
            assert_eq!(
                verify(&key.token(), &set_of(&[&jwk]), all()),
                Err(JwtError::UnknownKey(Some("k1".to_owned()))),
                "{ops:?}"
            );
        }
        let mut jwk = key.jwk.clone();
        jwk.key_ops = Some(vec!["sign".to_owned(), "verify".to_owned()]);
        assert!(verify(&key.token(), &set_of(&[&jwk]), all()).is_ok());
    }

    #[test]
    fn ec_coordinates_of_wrong_length_make_key_unusable() {
        let key = key(Algorithm::Es256, Some("k1"));
        let x = URL_SAFE_NO_PAD
            .decode(key.jwk.x.as_deref().unwrap())
            .unwrap();
        let mut padded = vec![0];
        padded.extend_from_slice(&x);
        for bad_x in [b64(&padded), b64(&x[1..]), "not base64!".to_owned()] {
            let mut jwk = key.jwk.clone();
            jwk.x = Some(bad_x);
            assert_eq!(
                verify(&key.token(), &set_of(&[&jwk]), all()),
                Err(JwtError::UnknownKey(Some("k1".to_owned())))
            );
        }
        let mut jwk = key.jwk.clone();
        jwk.y = None;
        assert_eq!(
            verify(&key.token(), &set_of(&[&jwk]), all()),
            Err(JwtError::UnknownKey(Some("k1".to_owned())))
        );
    }

    #[test]
    fn ed25519_key_of_wrong_length_is_unusable() {
        let key = key(Algorithm::EdDsa, Some("k1"));
        let x = URL_SAFE_NO_PAD
            .decode(key.jwk.x.as_deref().unwrap())
            .unwrap();
        let mut long = x.clone();
        long.push(0);
        let mut jwk = key.jwk.clone();
        jwk.x = Some(b64(&long));
        assert_eq!(
            verify(&key.token(), &set_of(&[&jwk]), all()),
            Err(JwtError::UnknownKey(Some("k1".to_owned())))
        );
    }

    #[test]
    fn short_rsa_modulus_makes_key_unusable() {
        let key = key(Algorithm::Rs256, Some("k1"));
        let n = URL_SAFE_NO_PAD
            .decode(key.jwk.n.as_deref().unwrap())
            .unwrap();
        let mut jwk = key.jwk.clone();
        jwk.n = Some(b64(&n[..128]));
        assert_eq!(
            verify(&key.token(), &set_of(&[&jwk]), all()),
            Err(JwtError::UnknownKey(Some("k1".to_owned())))
        );
        let mut jwk = key.jwk.clone();
        jwk.e = None;
        assert_eq!(
            verify(&key.token(), &set_of(&[&jwk]), all()),
            Err(JwtError::UnknownKey(Some("k1".to_owned())))
        );
    }

    #[test]
    fn bit_len_counts_significant_bits() {
        assert_eq!(bit_len(&[]), 0);
        assert_eq!(bit_len(&[1]), 1);
        assert_eq!(bit_len(&[0x80]), 8);
        assert_eq!(bit_len(&[0x7f, 0]), 15);
        let mut n = vec![0x80];
        n.extend_from_slice(&[0; 255]);
        assert_eq!(bit_len(&n), 2048);
    }

    // ---- structure -----------------------------------------------------

    #[test]
    fn padding_and_non_url_safe_characters_are_refused() {
        let key = key(Algorithm::Es256, Some("k1"));
        let token = key.token();
        assert!(verify(&token, &key.set(), all()).is_ok());
        let parts = segments(&token);
        for index in 0..3 {
            for bad in ["=", "==", "+", "/", " ", "\n", "%", "é", "\0"] {
                for at_end in [false, true] {
                    let mut forged = parts.clone();
                    if at_end {
                        forged[index].push_str(bad);
                    } else {
                        forged[index].insert_str(4, bad);
                    }
                    let token = forged.join(".");
                    assert_eq!(
                        verify(&token, &key.set(), all()),
                        Err(JwtError::Malformed("invalid base64url")),
                        "segment {index} with {bad:?}"
                    );
                    if index == 0 {
                        assert_eq!(
                            peek_header(&token),
                            Err(JwtError::Malformed("invalid base64url"))
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn standard_alphabet_encoding_is_refused() {
        // Same bytes encoded with `+` and `/` instead of `-` and `_`.
        let key = key(Algorithm::Es256, Some("k1"));
        let header = json!({ "alg": "ES256", "kid": "k1", "x": "\u{fb}\u{ff}" }).to_string();
        let payload = "{\"sub\":\"\u{3ff}\u{fbf}?>\"}";
        let std = base64::engine::general_purpose::STANDARD_NO_PAD;
        let input = format!("{}.{}", std.encode(&header), std.encode(payload));
        assert!(input.contains('+') || input.contains('/'), "{input}");
        let sig = key.sign(input.as_bytes());
        let token = format!("{input}.{}", std.encode(&sig));
        assert_eq!(
            verify(&token, &key.set(), all()),
            Err(JwtError::Malformed("invalid base64url"))
        );
    }

    #[test]
    fn non_canonical_trailing_bits_are_refused() {
        // "eyI" is the canonical encoding of `{"`; "eyJ" decodes to the same
        // two bytes with non-zero unused trailing bits.
        assert_eq!(decode_segment("eyI"), Ok(b"{\"".to_vec()));
        assert_eq!(
            decode_segment("eyJ"),
            Err(JwtError::Malformed("invalid base64url"))
        );
    }

    #[test]
    fn wrong_segment_count_is_refused() {
        let key = key(Algorithm::Es256, Some("k1"));
        let parts = segments(&key.token());
        let err = JwtError::Malformed("token must have three segments");
        for token in [
            String::new(),
            parts[0].clone(),
            format!("{}.{}", parts[0], parts[1]),
            format!("{}.{}.{}.{}", parts[0], parts[1], parts[2], parts[2]),
            format!("{}.{}.{}.", parts[0], parts[1], parts[2]),
            format!(
                "{}.{}.{}.{}.{}",
                parts[0], parts[1], parts[2], parts[2], parts[2]
            ),
        ] {
            assert_eq!(
                verify(&token, &key.set(), all()).unwrap_err(),
                err,
                "{token}"
            );
            assert_eq!(peek_header(&token).unwrap_err(), err);
        }
    }

    #[test]
    fn empty_signature_segment_is_refused() {
        let key = key(Algorithm::Rs256, Some("k1"));
        let parts = segments(&key.token());
        let token = format!("{}.{}.", parts[0], parts[1]);
        assert_eq!(
            verify(&token, &key.set(), all()),
            Err(JwtError::Malformed("empty signature"))
        );
    }

    #[test]
    fn header_that_is_not_a_json_object_is_refused() {
        let key = key(Algorithm::Es256, Some("k1"));
        let payload = b64(claims().to_string().as_bytes());
        for header in [
            r#"[{"alg":"ES256","kid":"k1"}]"#,
            r#"["ES256"]"#,
            "null",
            r#""ES256""#,
            "42",
            "",
            r#"{"alg":"ES256""#,
            "{\"alg\":\"ES256\"}garbage",
        ] {
            let header = b64(header.as_bytes());
            let input = format!("{header}.{payload}");
            let token = format!("{input}.{}", b64(&key.sign(input.as_bytes())));
            assert_eq!(
                verify(&token, &key.set(), all()),
                Err(JwtError::Malformed("header is not a json object")),
                "{header}"
            );
            assert_eq!(
                peek_header(&token),
                Err(JwtError::Malformed("header is not a json object"))
            );
        }
        // Not UTF-8.
        let input = format!("{}.{payload}", b64(b"{\"alg\":\"\xff\"}"));
        let token = format!("{input}.{}", b64(&key.sign(input.as_bytes())));
        assert_eq!(
            verify(&token, &key.set(), all()),
            Err(JwtError::Malformed("header is not a json object"))
        );
    }

    #[test]
    fn claims_that_are_not_a_json_object_are_refused() {
        let key = key(Algorithm::Es256, Some("k1"));
        let header = key.header().to_string();
        for payload in [
            "[]",
            r#"[{"sub":"x"}]"#,
            "null",
            r#""sub""#,
            "",
            "{",
            "{} {}",
        ] {
            let token = key.token_raw(&header, payload);
            assert_eq!(
                verify(&token, &key.set(), all()),
                Err(JwtError::Malformed("claims are not a json object")),
                "{payload}"
            );
        }
    }

    #[test]
    fn duplicate_members_are_refused() {
        let key = key(Algorithm::Es256, Some("k1"));
        let token = key.token_raw(
            r#"{"alg":"ES256","kid":"k1"}"#,
            r#"{"sub":"agent-42","sub":"admin"}"#,
        );
        assert_eq!(
            verify(&token, &key.set(), all()),
            Err(JwtError::Malformed("claims are not a json object"))
        );
        for header in [
            r#"{"alg":"none","alg":"ES256","kid":"k1"}"#,
            r#"{"alg":"ES256","kid":"k2","kid":"k1"}"#,
            r#"{"alg":"ES256","kid":"k1","jku":"a","jku":"b"}"#,
        ] {
            let token = key.token_raw(header, r#"{"sub":"agent-42"}"#);
            assert_eq!(
                verify(&token, &key.set(), all()),
                Err(JwtError::Malformed("header is not a json object")),
                "{header}"
            );
        }
        // Nested duplicates are not our concern, but top-level uniqueness
        // does not reject legitimate nesting.
        let token = key.token_raw(
            r#"{"alg":"ES256","kid":"k1"}"#,
            r#"{"a":{"sub":1},"sub":2}"#,
        );
        assert!(verify(&token, &key.set(), all()).is_ok());
    }

    #[test]
    fn oversize_token_is_refused() {
        let key = key(Algorithm::Es256, Some("k1"));
        let header = key.header().to_string();
        let small = key.token_raw(&header, &json!({ "pad": "x".repeat(1000) }).to_string());
        assert!(verify(&small, &key.set(), all()).is_ok());
        let big = key.token_raw(&header, &json!({ "pad": "x".repeat(13_000) }).to_string());
        assert!(big.len() > MAX_TOKEN_LEN);
        assert_eq!(
            verify(&big, &key.set(), all()),
            Err(JwtError::Malformed("token too long"))
        );
        assert_eq!(
            peek_header(&big),
            Err(JwtError::Malformed("token too long"))
        );
    }

    // ---- peek_header ---------------------------------------------------

    #[test]
    fn peek_header_reads_without_verifying() {
        let key = key(Algorithm::Es256, Some("k1"));
        let parts = segments(&key.token());
        // Garbage signature: peek still works, verify does not.
        let token = format!("{}.{}.AAAA", parts[0], parts[1]);
        let header = peek_header(&token).unwrap();
        assert_eq!(header.alg, "ES256");
        assert_eq!(header.kid.as_deref(), Some("k1"));
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!(header.crit, None);
        assert_eq!(
            verify(&token, &key.set(), all()),
            Err(JwtError::BadSignature)
        );
        // Unknown members are ignored.
        let token = key.token_with_header(&json!({
            "alg": "ES256", "kid": "k1", "x5t": "abc", "cty": "JWT", "extra": { "a": [1] }
        }));
        assert_eq!(peek_header(&token).unwrap().kid.as_deref(), Some("k1"));
        assert!(verify(&token, &key.set(), all()).is_ok());
    }

    // ---- JwkSet --------------------------------------------------------

    #[test]
    fn jwk_set_skips_garbage_keys() {
        let key = key(Algorithm::Es256, Some("good"));
        let good = serde_json::to_value(&key.jwk).unwrap();
        let json = json!({
            "keys": [
                { "kty": 5, "kid": "garbage" },
                "not a key",
                { "kid": "no-kty" },
                { "kty": "RSA", "kid": "bad-ops", "key_ops": "verify" },
                null,
                good,
            ],
            "unknown_member": true,
        })
        .to_string();
        let set: JwkSet = serde_json::from_str(&json).unwrap();
        assert_eq!(set.keys, vec![key.jwk.clone()]);
        assert!(set.contains_kid("good"));
        assert!(!set.contains_kid("garbage"));
        assert!(verify(&key.token(), &set, all()).is_ok());
    }

    #[test]
    fn jwk_set_parses_a_provider_document() {
        // Shape of a typical provider JWKS, including members we ignore and
        // a private member that must be dropped.
        let key = key(Algorithm::Rs256, Some("rsa-1"));
        let json = format!(
            r#"{{"keys":[{{"kty":"RSA","kid":"rsa-1","use":"sig","alg":"RS256","n":"{}","e":"{}",
                "x5c":["MIIC"],"x5t":"abc","x5t#S256":"def","d":"secret"}},
                {{"kty":"RSA","kid":"enc-1","use":"enc","alg":"RSA-OAEP","n":"{}","e":"AQAB"}}]}}"#,
            key.jwk.n.as_deref().unwrap(),
            key.jwk.e.as_deref().unwrap(),
            key.jwk.n.as_deref().unwrap(),
        );
        let set: JwkSet = serde_json::from_str(&json).unwrap();
        assert_eq!(set.keys.len(), 2);
        assert_eq!(set.keys[0].use_.as_deref(), Some("sig"));
        let round_trip = serde_json::to_string(&set).unwrap();
        assert!(!round_trip.contains("secret"));
        assert!(round_trip.contains(r#""use":"sig""#));
        assert!(verify(&key.token(), &set, all()).is_ok());
    }

    #[test]
    fn jwk_set_requires_a_keys_array() {
        assert!(serde_json::from_str::<JwkSet>("{}").is_err());
        assert!(serde_json::from_str::<JwkSet>(r#"{"keys":{}}"#).is_err());
        assert!(serde_json::from_str::<JwkSet>("[]").is_err());
        let set: JwkSet = serde_json::from_str(r#"{"keys":[]}"#).unwrap();
        assert!(set.keys.is_empty());
    }

    // ---- error messages ------------------------------------------------

    #[test]
    fn error_messages_are_short_and_sanitised() {
        assert_eq!(
            JwtError::Malformed("token too long").to_string(),
            "malformed token: token too long"
        );
        assert_eq!(
            JwtError::UnknownKey(Some("k1".to_owned())).to_string(),
            "no usable key for kid \"k1\""
        );
        assert_eq!(
            JwtError::UnknownKey(None).to_string(),
            "no usable key for kid (none)"
        );
        assert_eq!(JwtError::BadSignature.to_string(), "bad signature");
        assert_eq!(
            JwtError::CriticalHeader.to_string(),
            "critical header not supported"
        );

        let key = key(Algorithm::Es256, Some("k1"));
        let hostile = format!("none\n\u{1b}[31m{}", "A".repeat(5000));
        let token = key.token_with_header(&json!({ "alg": hostile, "kid": "k1" }));
        let err = verify(&token, &key.set(), all()).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("algorithm not allowed: none??[31m"),
            "{message}"
        );
        assert!(message.len() < 100, "{message}");
        assert!(!message.contains(&token));

        let kid = format!("k\n{}", "B".repeat(5000));
        let err = verify(
            &key.token_with_header(&json!({ "alg": "ES256", "kid": kid })),
            &key.set(),
            all(),
        )
        .unwrap_err();
        assert_eq!(err, JwtError::UnknownKey(Some(kid.clone())));
        let message = err.to_string();
        assert!(message.len() < 100 && !message.contains('\n'), "{message}");
        assert_eq!(sanitize_for_audit(&kid), format!("k?{}...", "B".repeat(62)));
        assert_eq!(sanitize_for_audit("kid-1"), "kid-1");
    }
}
