//! A password changed on a laptop, carried to the county server and from
//! there to the user's other laptops.
//!
//! A server user's **log-in key** (an X25519 pair the server makes at `user
//! add` and `reset-password`, its secret sealed with the password) does not
//! change when the user changes their password: the laptop re-seals the same
//! secret with the new password and sends the new Argon2id hash and the
//! re-sealed secret to the server. The server must not let any device of the
//! scope set anyone's password, so the request carries a **proof**: an
//! HMAC-SHA256, keyed by a key derived from the log-in secret
//! ([`change_key`]), over the user id, the credential the change replaces
//! (the server's `password_changed_at` the laptop last saw) and the new hash
//! and sealed secret. Only someone who opened the log-in secret (who knew the
//! old password) can make it; the server keeps the derived key (made with
//! the pair, at `user add` / `reset-password`) to check it, which opens
//! nothing. Bound to the replaced credential, an old request cannot be
//! replayed after a later change or reset.

use base64::Engine;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::error::AuthError;
use crate::note::ReaderKeyPair;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The key that proves a password change: derived from the log-in secret
/// (HKDF-SHA256, the public key as salt).
pub fn change_key(login: &ReaderKeyPair) -> Zeroizing<[u8; 32]> {
    let secret = login.secret_bytes();
    let hk = Hkdf::<Sha256>::new(Some(&login.public().0), secret.as_ref());
    let mut out = Zeroizing::new([0u8; 32]);
    // 32 bytes is always a valid HKDF-SHA256 output length.
    if hk
        .expand(b"shouhu password change key v1", out.as_mut())
        .is_err()
    {
        out.fill(0);
    }
    out
}

/// [`change_key`] as the server stores it (base64).
pub fn change_key_text(login: &ReaderKeyPair) -> String {
    B64.encode(change_key(login).as_ref())
}

/// What a proof covers, each part length-prefixed.
fn message(
    user_id: Uuid,
    based_on: &str,
    password_hash: &str,
    login_secret_sealed: &str,
) -> Vec<u8> {
    let mut m = b"shouhu password change v1".to_vec();
    m.extend_from_slice(user_id.as_bytes());
    for part in [based_on, password_hash, login_secret_sealed] {
        m.extend_from_slice(&(part.len() as u64).to_be_bytes());
        m.extend_from_slice(part.as_bytes());
    }
    m
}

fn mac(key: &[u8]) -> Result<Hmac<Sha256>, AuthError> {
    <Hmac<Sha256> as Mac>::new_from_slice(key)
        .map_err(|_| AuthError::Malformed { what: "change_key" })
}

/// The proof (base64) of a change of `user_id`'s credential `based_on` to
/// the new hash and sealed log-in secret.
pub fn proof(
    key: &[u8; 32],
    user_id: Uuid,
    based_on: &str,
    password_hash: &str,
    login_secret_sealed: &str,
) -> Result<String, AuthError> {
    let mut m = mac(key)?;
    m.update(&message(
        user_id,
        based_on,
        password_hash,
        login_secret_sealed,
    ));
    Ok(B64.encode(m.finalize().into_bytes()))
}

/// Checks a proof with the stored key text (constant time); `false` for
/// anything that does not match or does not parse.
pub fn verify(
    key_text: &str,
    user_id: Uuid,
    based_on: &str,
    password_hash: &str,
    login_secret_sealed: &str,
    proof: &str,
) -> bool {
    let (Ok(key), Ok(tag)) = (B64.decode(key_text.trim()), B64.decode(proof.trim())) else {
        return false;
    };
    let Ok(mut m) = mac(&key) else {
        return false;
    };
    m.update(&message(
        user_id,
        based_on,
        password_hash,
        login_secret_sealed,
    ));
    m.verify_slice(&tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_log_in_secret_makes_a_proof_and_it_binds_everything() -> Result<(), AuthError> {
        let login = ReaderKeyPair::generate()?;
        let stored = change_key_text(&login);
        let user = Uuid::now_v7();
        let key = change_key(&login);
        let p = proof(
            &key,
            user,
            "2026-11-01T00:00:00.000Z",
            "$argon2id$x",
            "c2VhbGVk",
        )?;
        assert!(verify(
            &stored,
            user,
            "2026-11-01T00:00:00.000Z",
            "$argon2id$x",
            "c2VhbGVk",
            &p
        ));
        // Any other part, user or key: refused.
        assert!(!verify(
            &stored,
            Uuid::now_v7(),
            "2026-11-01T00:00:00.000Z",
            "$argon2id$x",
            "c2VhbGVk",
            &p
        ));
        assert!(!verify(
            &stored,
            user,
            "2026-11-02T00:00:00.000Z",
            "$argon2id$x",
            "c2VhbGVk",
            &p
        ));
        assert!(!verify(
            &stored,
            user,
            "2026-11-01T00:00:00.000Z",
            "$argon2id$y",
            "c2VhbGVk",
            &p
        ));
        assert!(!verify(
            &stored,
            user,
            "2026-11-01T00:00:00.000Z",
            "$argon2id$x",
            "c2VhbGVl",
            &p
        ));
        let other = ReaderKeyPair::generate()?;
        let forged = proof(
            &change_key(&other),
            user,
            "2026-11-01T00:00:00.000Z",
            "$argon2id$x",
            "c2VhbGVk",
        )?;
        assert!(!verify(
            &stored,
            user,
            "2026-11-01T00:00:00.000Z",
            "$argon2id$x",
            "c2VhbGVk",
            &forged
        ));
        assert!(!verify(
            &stored,
            user,
            "2026-11-01T00:00:00.000Z",
            "$argon2id$x",
            "c2VhbGVk",
            "not base64!"
        ));
        // Length prefixes: moving text between parts changes the proof.
        assert!(!verify(
            &stored,
            user,
            "2026-11-01T00:00:00.000Z$argon2id$x",
            "",
            "c2VhbGVk",
            &p
        ));
        // The stored key is not the log-in secret, nor its public half.
        assert_ne!(stored, B64.encode(login.secret_bytes().as_ref()));
        assert_ne!(stored, B64.encode(login.public().0));
        Ok(())
    }
}
