//! SCIM 2.0 provisioning (RFC 7643 core schema, RFC 7644 protocol) under `/scim/v2`: the
//! agency's directory creates, updates, deactivates and deletes agents (Users) and groups
//! (Groups), and discovers what this server supports.
//!
//! How SCIM maps onto Beffroi:
//! - a User is an SSO account (`accounts.kind = 'oidc'`) keyed by (`oidc.issuer`, subject), the
//!   subject being the User's `userName` or `externalId` (`scim.subject_attribute`), so the
//!   agent's later sign-in lands on the same row. A POST for a subject that already signed in
//!   adopts that account; a POST for a subject whose User was deleted revives its account
//!   under a new SCIM id.
//! - `active = false` and DELETE disable the account and end its sessions in the same
//!   transaction; DELETE also hides the User from SCIM, while the account row stays for history.
//! - a Group is a row of `groups` with source `scim`, its members rows of `account_groups`;
//!   `oidc.*_groups` grant roles from SCIM groups as they do from the groups claim.
//!
//! The module is split by concern: [`schema`] (what is published), [`filter`] and [`patch`]
//! (the two small languages clients send), [`resource`] (validation and rendering), [`store`]
//! (SQL), [`service`] (the operations, their transactions and their security events),
//! [`routes`] and [`discovery`] (HTTP), [`auth`] and [`error`].
//!
//! This module never builds SQL from client input (filters are evaluated in Rust over loaded
//! rows; every value is bound), never logs the bearer token, and never answers a SCIM client
//! with HTML.

pub mod auth;
pub mod discovery;
pub mod error;
pub mod filter;
pub mod list;
pub mod patch;
pub mod resource;
pub mod routes;
pub mod schema;
pub mod service;
pub mod store;

use secrecy::SecretString;

use crate::config::{Config, ConfigError, ScimSubjectAttribute};

/// Where the SCIM endpoints live.
pub const PREFIX: &str = "/scim/v2";

/// The media type of every SCIM response (RFC 7644 §8.1).
pub const MEDIA_TYPE: &str = "application/scim+json";

/// What the SCIM endpoints need from the configuration, read once at start.
pub struct ScimSettings {
    pub token: SecretString,
    pub subject_attribute: ScimSubjectAttribute,
    /// `oidc.issuer`: provisioned accounts share it with SSO accounts.
    pub issuer: String,
    /// `oidc.*_groups`, to derive roles from group membership.
    pub oidc: crate::config::OidcConfig,
}

impl std::fmt::Debug for ScimSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimSettings")
            .field("subject_attribute", &self.subject_attribute)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl ScimSettings {
    /// `None` when `[scim]` is absent. Reads the token file (owner-only, long enough).
    pub fn from_config(config: &Config) -> Result<Option<Self>, ConfigError> {
        let Some(scim) = &config.scim else {
            return Ok(None);
        };
        let Some(oidc) = &config.oidc else {
            return Err(ConfigError::Invalid {
                key: "scim".into(),
                reason: "needs the [oidc] section".into(),
            });
        };
        let Some(token) = config.scim_token()? else {
            return Ok(None);
        };
        Ok(Some(Self {
            token,
            subject_attribute: scim.subject_attribute,
            issuer: oidc.issuer.clone(),
            oidc: oidc.clone(),
        }))
    }
}

/// Whether a request path is a SCIM endpoint (exactly the prefix or below it, never
/// `/scim/v2evil`).
pub fn is_scim_path(path: &str) -> bool {
    path == PREFIX
        || path
            .strip_prefix(PREFIX)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// A new resource id: 122 random bits in UUID v4 form. Ids are never reused (RFC 7643 §3.1),
/// and being random they reveal neither how many accounts exist nor their order.
pub fn new_id() -> Result<String, getrandom::Error> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// Unix seconds as an RFC 3339 UTC timestamp, the SCIM `dateTime` form (RFC 7643 §2.3.5).
pub fn format_time(unix: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parses an RFC 3339 timestamp (`2024-05-13T04:42:34Z`, optional fraction, `Z` or `±hh:mm`)
/// into nanoseconds since the epoch, for dateTime comparisons in filters.
pub fn parse_time(text: &str) -> Option<i128> {
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let s = text.get(from..from + len)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = i32::try_from(num(0, 4)?).ok()?;
    let month = time::Month::try_from(u8::try_from(num(5, 2)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(year, month, u8::try_from(num(8, 2)?).ok()?).ok()?;
    let (h, m, s) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let mut rest = &text[19..];
    let mut nanos: u32 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let kept = &frac[..digits.min(9)];
        nanos = kept.parse::<u32>().ok()? * 10u32.pow(9 - u32::try_from(kept.len()).ok()?);
        rest = &frac[digits..];
    }
    let offset_secs: i32 = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let oh = i32::try_from(num(text.len() - 5, 2)?).ok()?;
            let om = i32::try_from(num(text.len() - 2, 2)?).ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    let time = time::Time::from_hms_nano(
        u8::try_from(h).ok()?,
        u8::try_from(m).ok()?,
        u8::try_from(s).ok()?,
        nanos,
    )
    .ok()?;
    let offset = time::UtcOffset::from_whole_seconds(offset_secs).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, time)
            .assume_offset(offset)
            .unix_timestamp_nanos(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_uuids_and_differ() {
        let a = new_id().unwrap();
        let b = new_id().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }

    #[test]
    fn times_round_trip() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
        let t = 1_715_575_354;
        let text = format_time(t);
        assert_eq!(parse_time(&text), Some(i128::from(t) * 1_000_000_000));
        assert_eq!(
            parse_time("2024-05-13T06:42:34.5+02:00"),
            Some(i128::from(t) * 1_000_000_000 + 500_000_000)
        );
        for bad in [
            "2024-05-13",
            "2024-13-01T00:00:00Z",
            "x",
            "2024-05-13T06:42:34+2",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn scim_paths_are_the_prefix_and_below_only() {
        assert!(is_scim_path("/scim/v2"));
        assert!(is_scim_path("/scim/v2/Users"));
        assert!(!is_scim_path("/scim/v2evil"));
        assert!(!is_scim_path("/scim"));
    }
}
