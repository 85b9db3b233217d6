//! The store's data key and everything sealed with a password.
//!
//! A device's database is encrypted with one random 256-bit [`DataKey`]. It is
//! never stored in the clear: each user who may open the store has a
//! [`WrappedKey`] — the data key sealed with XChaCha20-Poly1305 under a key that
//! Argon2id derives from that user's password and a random salt, bound to the
//! user's id. Changing a password re-wraps; an admin's reset wraps anew from a
//! session that has the key open. Forgetting every password loses the data by
//! design (the county server holds everything that was synced).
//!
//! [`seal_with_password`] / [`open_with_password`] use the same construction for
//! whole files (backups, exports), with a small self-describing header.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::AuthError;
use crate::password::KdfParams;

pub const KEY_LEN: usize = 32;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;

/// The random key that encrypts a device's database (SQLCipher raw key).
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct DataKey([u8; KEY_LEN]);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    pub fn generate() -> Result<DataKey, AuthError> {
        let mut bytes = [0u8; KEY_LEN];
        OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(|_| AuthError::Random)?;
        Ok(DataKey(bytes))
    }

    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> DataKey {
        DataKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The value for SQLCipher's `PRAGMA key`: a raw key literal `x'…'` (64 hex
    /// digits), which skips SQLCipher's own password KDF.
    pub fn sqlcipher_pragma_value(&self) -> Zeroizing<String> {
        let mut out = String::with_capacity(3 + 2 * KEY_LEN);
        out.push_str("x'");
        for b in self.0 {
            out.push_str(&format!("{b:02x}"));
        }
        out.push('\'');
        Zeroizing::new(out)
    }
}

/// A [`DataKey`] sealed for one user. Stored in the clear next to the database
/// (it must be readable before the database is open).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    pub version: u32,
    pub user_id: Uuid,
    pub kdf: KdfParams,
    #[serde(with = "crate::b64")]
    pub salt: Vec<u8>,
    #[serde(with = "crate::b64")]
    pub nonce: Vec<u8>,
    #[serde(with = "crate::b64")]
    pub ciphertext: Vec<u8>,
}

pub(crate) fn derive(
    password: &str,
    salt: &[u8],
    kdf: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, AuthError> {
    let mut out = Zeroizing::new([0u8; 32]);
    kdf.argon2()?
        .hash_password_into(password.as_bytes(), salt, out.as_mut())
        .map_err(|_| AuthError::Malformed { what: "kdf" })?;
    Ok(out)
}

fn random<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut bytes = [0u8; N];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|_| AuthError::Random)?;
    Ok(bytes)
}

fn aad_for(user_id: Uuid) -> Vec<u8> {
    let mut aad = b"shouhu data key v1 ".to_vec();
    aad.extend_from_slice(user_id.as_bytes());
    aad
}

impl WrappedKey {
    pub fn wrap(
        key: &DataKey,
        user_id: Uuid,
        password: &str,
        kdf: KdfParams,
    ) -> Result<WrappedKey, AuthError> {
        let salt: [u8; SALT_LEN] = random()?;
        let kek = derive(password, &salt, kdf)?;
        let cipher = XChaCha20Poly1305::new(kek.as_ref().into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: key.as_bytes(),
                    aad: &aad_for(user_id),
                },
            )
            .map_err(|_| AuthError::Malformed { what: "wrap" })?;
        Ok(WrappedKey {
            version: 1,
            user_id,
            kdf,
            salt: salt.to_vec(),
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// A wrong password is [`AuthError::WrongPassword`]; so is a wrapped key
    /// that was altered (the two cannot be told apart, by design).
    pub fn unwrap(&self, password: &str) -> Result<DataKey, AuthError> {
        if self.version != 1 {
            return Err(AuthError::Malformed {
                what: "wrapped_key_version",
            });
        }
        if self.nonce.len() != NONCE_LEN || self.salt.len() < 8 {
            return Err(AuthError::Malformed {
                what: "wrapped_key",
            });
        }
        let kek = derive(password, &self.salt, self.kdf)?;
        let cipher = XChaCha20Poly1305::new(kek.as_ref().into());
        let plain = Zeroizing::new(
            cipher
                .decrypt(
                    XNonce::from_slice(&self.nonce),
                    Payload {
                        msg: &self.ciphertext,
                        aad: &aad_for(self.user_id),
                    },
                )
                .map_err(|_| AuthError::WrongPassword)?,
        );
        let bytes: [u8; KEY_LEN] = plain
            .as_slice()
            .try_into()
            .map_err(|_| AuthError::Malformed { what: "data_key" })?;
        Ok(DataKey(bytes))
    }
}

const FILE_MAGIC: &[u8; 8] = b"SHOUHUE1";
const HEADER_LEN: usize = 8 + SALT_LEN + 12 + NONCE_LEN;

/// Seals `plain` (a backup, an export) with a password. Layout: magic
/// `SHOUHUE1`, salt (16), Argon2id m_kib/t/p (u32 LE each), nonce (24), then the
/// XChaCha20-Poly1305 ciphertext; the header is the associated data, so a
/// changed parameter fails like a changed byte.
pub fn seal_with_password(
    plain: &[u8],
    password: &str,
    kdf: KdfParams,
) -> Result<Vec<u8>, AuthError> {
    let salt: [u8; SALT_LEN] = random()?;
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let mut out = Vec::with_capacity(HEADER_LEN + plain.len() + 16);
    out.extend_from_slice(FILE_MAGIC);
    out.extend_from_slice(&salt);
    for v in [kdf.m_kib, kdf.t, kdf.p] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&nonce);
    let kek = derive(password, &salt, kdf)?;
    let cipher = XChaCha20Poly1305::new(kek.as_ref().into());
    let ciphertext = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plain,
                aad: &out[..HEADER_LEN],
            },
        )
        .map_err(|_| AuthError::Malformed { what: "seal" })?;
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// The Argon2id parameters a sealed file's header carries (m_kib, t, p as
/// u32 LE), refusing absurd costs from a hostile file before anything is
/// allocated for them.
pub(crate) fn read_kdf(words: &[u8]) -> Result<KdfParams, AuthError> {
    let word = |i: usize| -> Result<u32, AuthError> {
        let b: [u8; 4] = words
            .get(4 * i..4 * i + 4)
            .and_then(|b| b.try_into().ok())
            .ok_or(AuthError::Malformed { what: "kdf_params" })?;
        Ok(u32::from_le_bytes(b))
    };
    let kdf = KdfParams {
        m_kib: word(0)?,
        t: word(1)?,
        p: word(2)?,
    };
    if kdf.m_kib > 4 * 1024 * 1024 || kdf.t > 64 || kdf.p > 16 {
        return Err(AuthError::Malformed { what: "kdf_params" });
    }
    Ok(kdf)
}

/// Whether `bytes` start like a file made by [`seal_with_password`].
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(FILE_MAGIC)
}

pub fn open_with_password(sealed: &[u8], password: &str) -> Result<Zeroizing<Vec<u8>>, AuthError> {
    if sealed.len() < HEADER_LEN + 16 || !is_sealed(sealed) {
        return Err(AuthError::Malformed {
            what: "sealed_file",
        });
    }
    let salt = &sealed[8..8 + SALT_LEN];
    let kdf = read_kdf(&sealed[8 + SALT_LEN..8 + SALT_LEN + 12])?;
    let nonce = XNonce::from_slice(&sealed[8 + SALT_LEN + 12..HEADER_LEN]);
    let kek = derive(password, salt, kdf)?;
    let cipher = XChaCha20Poly1305::new(kek.as_ref().into());
    cipher
        .decrypt(
            nonce,
            Payload {
                msg: &sealed[HEADER_LEN..],
                aad: &sealed[..HEADER_LEN],
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| AuthError::WrongPassword)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::password::TEST_PARAMS;

    #[test]
    fn each_user_unwraps_the_same_data_key() -> Result<(), AuthError> {
        let key = DataKey::generate()?;
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let wa = WrappedKey::wrap(&key, a, "teacher2026", TEST_PARAMS)?;
        let wb = WrappedKey::wrap(&key, b, "counsel2026", TEST_PARAMS)?;
        assert_eq!(wa.unwrap("teacher2026")?, key);
        assert_eq!(wb.unwrap("counsel2026")?, key);
        assert_eq!(wa.unwrap("counsel2026"), Err(AuthError::WrongPassword));
        // A wrapped key moved to another user does not open.
        let mut moved = wa.clone();
        moved.user_id = b;
        assert_eq!(moved.unwrap("teacher2026"), Err(AuthError::WrongPassword));
        // Round trip through JSON (how it is stored).
        let json = serde_json::to_string(&wa).map_err(|_| AuthError::Random)?;
        assert!(!json.contains(&format!("{:?}", key.as_bytes())));
        let back: WrappedKey = serde_json::from_str(&json).map_err(|_| AuthError::Random)?;
        assert_eq!(back.unwrap("teacher2026")?, key);
        Ok(())
    }

    #[test]
    fn a_tampered_wrapped_key_is_refused() -> Result<(), AuthError> {
        let key = DataKey::generate()?;
        let mut w = WrappedKey::wrap(&key, Uuid::now_v7(), "teacher2026", TEST_PARAMS)?;
        w.ciphertext[0] ^= 1;
        assert_eq!(w.unwrap("teacher2026"), Err(AuthError::WrongPassword));
        w.nonce.pop();
        assert_eq!(
            w.unwrap("teacher2026").map_err(|e| e.code()),
            Err("crypto.malformed")
        );
        Ok(())
    }

    #[test]
    fn sqlcipher_key_literal() {
        let key = DataKey::from_bytes([0xab; KEY_LEN]);
        let v = key.sqlcipher_pragma_value();
        assert_eq!(v.len(), 67);
        assert!(v.starts_with("x'abab") && v.ends_with("ab'"));
        assert_eq!(format!("{key:?}"), "DataKey(..)");
    }

    #[test]
    fn sealed_files() -> Result<(), AuthError> {
        let plain = "{\"name\":\"张三\"}\n".repeat(100);
        let sealed = seal_with_password(plain.as_bytes(), "export2026", TEST_PARAMS)?;
        assert!(is_sealed(&sealed));
        assert!(!sealed.windows(6).any(|w| w == "张三".as_bytes()));
        assert_eq!(
            open_with_password(&sealed, "export2026")?.as_slice(),
            plain.as_bytes()
        );
        assert_eq!(
            open_with_password(&sealed, "export2027").map(|_| ()),
            Err(AuthError::WrongPassword)
        );
        for at in [3, 10, 30, 50, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[at] ^= 0x40;
            assert!(open_with_password(&bad, "export2026").is_err(), "byte {at}");
        }
        assert_eq!(
            open_with_password(b"SHOUHUE1short", "x").map(|_| ()),
            Err(AuthError::Malformed {
                what: "sealed_file"
            })
        );
        Ok(())
    }
}
