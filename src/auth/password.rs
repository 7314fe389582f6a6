//! Password hashing for local (break-glass) accounts: argon2id with RFC 9106's second
//! recommended parameter set (64 MiB, 3 passes, 4 lanes), computed off the async runtime in
//! `spawn_blocking` behind a semaphore so that a burst of sign-ins cannot exhaust memory.
//!
//! Passwords arrive as [`SecretString`] and are never logged or returned.

use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{OnceCell, Semaphore};

/// RFC 9106 §4, second recommended option: memory 64 MiB (in KiB), t = 3, p = 4.
pub const M_COST_KIB: u32 = 64 * 1024;
pub const T_COST: u32 = 3;
pub const P_COST: u32 = 4;

/// Length limits on a chosen password: long enough to resist guessing, short enough that hashing
/// cannot be used to burn CPU.
pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("password hashing task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("password hashing is shutting down")]
    Closed,
}

/// The outcome of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    pub matches: bool,
    /// The stored hash used weaker parameters than today's: store a fresh one.
    pub needs_rehash: bool,
}

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// Hash checked when the account does not exist, so that the answer takes as long as for a
    /// real account and response time does not reveal which logins exist.
    decoy: Arc<OnceCell<String>>,
}

impl PasswordHasher {
    pub fn new(max_concurrent: usize) -> Result<Self, PasswordError> {
        let params = Params::new(M_COST_KIB, T_COST, P_COST, None)
            .map_err(|e| PasswordError::Hash(e.to_string()))?;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            decoy: Arc::new(OnceCell::new()),
        })
    }

    fn argon2(params: Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    pub async fn hash(&self, password: &SecretString) -> Result<String, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PasswordError::Closed)?;
        let password = password.clone();
        let params = self.params.clone();
        tokio::task::spawn_blocking(move || {
            let mut salt = [0u8; 16];
            getrandom::fill(&mut salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
            Self::argon2(params)
                .hash_password_with_salt(password.expose_secret().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| PasswordError::Hash(e.to_string()))
        })
        .await?
    }

    /// Checks `password` against `stored`, or against a decoy hash when there is no account.
    pub async fn verify(
        &self,
        password: &SecretString,
        stored: Option<&str>,
    ) -> Result<Verification, PasswordError> {
        let (phc, real) = match stored {
            Some(h) => (h.to_owned(), true),
            None => {
                let decoy = self
                    .decoy
                    .get_or_try_init(|| async {
                        let decoy = SecretString::from("decoy-password".to_owned());
                        self.hash(&decoy).await
                    })
                    .await?;
                (decoy.clone(), false)
            }
        };
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PasswordError::Closed)?;
        let password = password.clone();
        let current = self.params.clone();
        tokio::task::spawn_blocking(move || {
            let Ok(parsed) = PasswordHash::new(&phc) else {
                // An unreadable stored hash never matches; it is reported, not trusted.
                tracing::error!("stored password hash is not a valid PHC string");
                return Ok(Verification {
                    matches: false,
                    needs_rehash: true,
                });
            };
            let matches = Argon2::default()
                .verify_password(password.expose_secret().as_bytes(), &parsed)
                .is_ok();
            let needs_rehash = match Params::try_from(&parsed) {
                Ok(p) => {
                    parsed.algorithm.as_str() != "argon2id"
                        || p.m_cost() < current.m_cost()
                        || p.t_cost() < current.t_cost()
                        || p.p_cost() < current.p_cost()
                }
                Err(_) => true,
            };
            Ok(Verification {
                matches: matches && real,
                needs_rehash,
            })
        })
        .await?
    }
}

/// How long a one-time password from `recover-admin` can be used (ASVS 2.3.1): it is meant for
/// an emergency at hand, not to lie in a ticket or a mailbox.
pub const ONE_TIME_PASSWORD_TTL_SECS: i64 = 24 * 3600;

/// A random password for `recover-admin`: 24 characters from an alphabet without look-alikes
/// (about 137 bits).
pub fn generate_one_time_password() -> Result<SecretString, getrandom::Error> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut out = String::with_capacity(29);
    let mut count = 0;
    while count < 24 {
        let mut byte = [0u8; 1];
        getrandom::fill(&mut byte)?;
        // Rejection sampling keeps every character equally likely.
        let limit = 256 - (256 % ALPHABET.len());
        if usize::from(byte[0]) >= limit {
            continue;
        }
        if count > 0 && count % 6 == 0 {
            out.push('-');
        }
        out.push(char::from(ALPHABET[usize::from(byte[0]) % ALPHABET.len()]));
        count += 1;
    }
    Ok(SecretString::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_with_rfc9106_parameters_and_verifies() {
        let hasher = PasswordHasher::new(2).unwrap();
        let pw = SecretString::from("correct horse battery".to_owned());
        let phc = hasher.hash(&pw).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=65536,t=3,p=4$"), "{phc}");
        let ok = hasher.verify(&pw, Some(&phc)).await.unwrap();
        assert_eq!(
            ok,
            Verification {
                matches: true,
                needs_rehash: false
            }
        );
        let wrong = SecretString::from("wrong".to_owned());
        assert!(!hasher.verify(&wrong, Some(&phc)).await.unwrap().matches);
        assert!(!hasher.verify(&pw, None).await.unwrap().matches);
    }

    #[tokio::test]
    async fn weaker_stored_parameters_ask_for_rehash() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(19 * 1024, 2, 1, None).unwrap(),
        )
        .hash_password_with_salt(b"pw-pw-pw-pw-pw", b"saltsaltsalt")
        .unwrap()
        .to_string();
        let hasher = PasswordHasher::new(1).unwrap();
        let pw = SecretString::from("pw-pw-pw-pw-pw".to_owned());
        let v = hasher.verify(&pw, Some(&weak)).await.unwrap();
        assert_eq!(
            v,
            Verification {
                matches: true,
                needs_rehash: true
            }
        );
    }

    #[test]
    fn one_time_passwords_are_long_and_distinct() {
        let a = generate_one_time_password().unwrap();
        let b = generate_one_time_password().unwrap();
        assert_eq!(a.expose_secret().replace('-', "").len(), 24);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }
}
