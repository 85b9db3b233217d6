//! Passwords: the rules a new password must meet, Argon2id hashes as PHC strings
//! (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), and verification.
//!
//! The PHC string carries its own parameters, so raising [`KdfParams::INTERACTIVE`]
//! later keeps every old hash verifiable.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand_core::OsRng;
use serde::{Deserialize, Serialize};

use crate::error::AuthError;

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 128;

/// Argon2id cost parameters (memory in KiB, passes, lanes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

impl KdfParams {
    /// OWASP's Argon2id minimum (19 MiB, 2 passes, 1 lane): about 0.1 s on an
    /// old 2-core laptop, affordable on 4 GB of RAM.
    pub const INTERACTIVE: KdfParams = KdfParams {
        m_kib: 19 * 1024,
        t: 2,
        p: 1,
    };

    pub(crate) fn argon2(self) -> Result<Argon2<'static>, AuthError> {
        let params = Params::new(self.m_kib, self.t, self.p, Some(32))
            .map_err(|_| AuthError::Malformed { what: "kdf_params" })?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// Checks a new password against the rules; `user_name` may not be reused.
pub fn check_new_password(password: &str, user_name: &str) -> Result<(), AuthError> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err(AuthError::PasswordTooShort { min: MIN_LEN });
    }
    if len > MAX_LEN {
        return Err(AuthError::PasswordTooLong { max: MAX_LEN });
    }
    let has_digit = password.chars().any(|c| c.is_ascii_digit());
    let has_letter = password.chars().any(|c| c.is_alphabetic());
    if !(has_digit && has_letter) {
        return Err(AuthError::PasswordTooSimple);
    }
    if !user_name.is_empty() && password.trim().eq_ignore_ascii_case(user_name.trim()) {
        return Err(AuthError::PasswordIsUserName);
    }
    Ok(())
}

/// Hashes a password with a fresh random salt.
pub fn hash_password(password: &str, params: KdfParams) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    params
        .argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|_| AuthError::Random)
}

/// Verifies `password` against a stored PHC string. A wrong password is
/// [`AuthError::WrongPassword`]; an unreadable stored hash is
/// [`AuthError::HashCorrupt`] (never treated as a match).
pub fn verify_password(password: &str, stored: &str) -> Result<(), AuthError> {
    let parsed = PasswordHash::new(stored).map_err(|_| AuthError::HashCorrupt)?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(AuthError::HashCorrupt);
    }
    match Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(()),
        Err(argon2::password_hash::Error::Password) => Err(AuthError::WrongPassword),
        Err(_) => Err(AuthError::HashCorrupt),
    }
}

/// Whether `stored` is an Argon2id PHC string (what the county server
/// accepts as a user's new hash from a laptop).
pub fn is_argon2id_hash(stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|p| p.algorithm.as_str() == "argon2id" && p.hash.is_some())
}

#[cfg(test)]
pub(crate) const TEST_PARAMS: KdfParams = KdfParams {
    m_kib: 64,
    t: 1,
    p: 1,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_for_a_new_password() {
        let code = |pw: &str| check_new_password(pw, "zhangsan").map_err(|e| e.code());
        assert_eq!(code("abc123"), Err("auth.password_too_short"));
        assert_eq!(code("abcdefghij"), Err("auth.password_too_simple"));
        assert_eq!(code("1234567890"), Err("auth.password_too_simple"));
        assert_eq!(code(&"a1".repeat(65)), Err("auth.password_too_long"));
        assert_eq!(
            check_new_password("Zhang1234", "zhang1234").map_err(|e| e.code()),
            Err("auth.password_is_user_name")
        );
        assert_eq!(code("守护儿童2026"), Ok(()));
        assert_eq!(code("shouhu2026"), Ok(()));
    }

    #[test]
    fn hash_and_verify() -> Result<(), AuthError> {
        let hash = hash_password("shouhu2026", TEST_PARAMS)?;
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
        verify_password("shouhu2026", &hash)?;
        assert_eq!(
            verify_password("shouhu2027", &hash),
            Err(AuthError::WrongPassword)
        );
        // Two hashes of one password differ (fresh salt).
        assert_ne!(hash, hash_password("shouhu2026", TEST_PARAMS)?);
        Ok(())
    }

    #[test]
    fn a_damaged_hash_never_matches() -> Result<(), AuthError> {
        assert_eq!(
            verify_password("x", "not a hash"),
            Err(AuthError::HashCorrupt)
        );
        let hash = hash_password("shouhu2026", TEST_PARAMS)?;
        let bcrypt_like = hash.replacen("argon2id", "argon2i", 1);
        assert_eq!(
            verify_password("shouhu2026", &bcrypt_like),
            Err(AuthError::HashCorrupt)
        );
        let mut chars: Vec<char> = hash.chars().collect();
        let last = chars.len() - 2;
        chars[last] = if chars[last] == 'A' { 'B' } else { 'A' };
        let flipped: String = chars.into_iter().collect();
        assert!(verify_password("shouhu2026", &flipped).is_err());
        Ok(())
    }
}
