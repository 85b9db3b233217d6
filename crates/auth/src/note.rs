//! Counselor-only psychological notes, encrypted end to end.
//!
//! Every reader (a counselor of the school, a county psychology supervisor) has
//! an X25519 [`ReaderKeyPair`]; its public half is published through the server,
//! its secret half stays on the reader's devices, sealed by the reader's
//! password like the data key. Writing a note:
//!
//! 1. a fresh random 256-bit note key encrypts the text (XChaCha20-Poly1305,
//!    the note's id as associated data, so a ciphertext cannot be moved to
//!    another note);
//! 2. for each allowed reader, an ephemeral X25519 key agrees a secret with the
//!    reader's public key; HKDF-SHA256 turns it into a key-encryption key that
//!    seals the note key (the note id and reader id as associated data).
//!
//! The server stores and syncs [`EncryptedNote`] as it is and never holds a key
//! that opens it. **A new counselor** gets access when any existing reader, on
//! their own device, runs [`EncryptedNote::add_reader`] for each note of the
//! school (unwrap with their secret key, wrap for the newcomer's public key) and
//! syncs the result. Removing a reader drops their wrapped key from later
//! versions, but a copy they already synced stays readable to them: rotate by
//! re-encrypting under a new note key ([`EncryptedNote::reencrypt`]).

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::error::AuthError;

const NOTE_KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;

/// A reader's public key, as published (base64 in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReaderPublicKey(pub [u8; 32]);

impl Serialize for ReaderPublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::b64::serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for ReaderPublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes = crate::b64::deserialize(d)?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("a reader public key has 32 bytes"))?;
        Ok(ReaderPublicKey(arr))
    }
}

/// A reader's key pair. The secret is zeroised on drop.
pub struct ReaderKeyPair {
    secret: StaticSecret,
    public: ReaderPublicKey,
}

impl ReaderKeyPair {
    pub fn generate() -> Result<ReaderKeyPair, AuthError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        OsRng
            .try_fill_bytes(bytes.as_mut())
            .map_err(|_| AuthError::Random)?;
        Ok(ReaderKeyPair::from_secret_bytes(*bytes))
    }

    pub fn from_secret_bytes(bytes: [u8; 32]) -> ReaderKeyPair {
        let secret = StaticSecret::from(bytes);
        let public = ReaderPublicKey(PublicKey::from(&secret).to_bytes());
        ReaderKeyPair { secret, public }
    }

    /// The secret, for sealing with the reader's password (see
    /// [`crate::keys::seal_with_password`]).
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret.to_bytes())
    }

    pub fn public(&self) -> ReaderPublicKey {
        self.public
    }
}

impl std::fmt::Debug for ReaderKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReaderKeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// A reader's key pair as a laptop keeps it: the public half as published,
/// the secret sealed with the reader's password
/// ([`crate::keys::seal_with_password`]), so it opens only at that reader's
/// log-in. A password change re-seals it; an administrator's reset cannot
/// (the old password is not known) and gives the reader a new pair, for which
/// an existing reader must re-wrap the notes ([`EncryptedNote::add_reader`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedReaderKey {
    pub public: ReaderPublicKey,
    #[serde(with = "crate::b64")]
    pub sealed_secret: Vec<u8>,
}

impl SealedReaderKey {
    pub fn seal(
        pair: &ReaderKeyPair,
        password: &str,
        kdf: crate::password::KdfParams,
    ) -> Result<SealedReaderKey, AuthError> {
        Ok(SealedReaderKey {
            public: pair.public(),
            sealed_secret: crate::keys::seal_with_password(
                pair.secret_bytes().as_ref(),
                password,
                kdf,
            )?,
        })
    }

    /// A new key pair sealed with `password`: a server user's log-in key (see
    /// [`SealedDataKey`]), made by the county server at `user add` and
    /// `reset-password`.
    pub fn generate_sealed(
        password: &str,
        kdf: crate::password::KdfParams,
    ) -> Result<SealedReaderKey, AuthError> {
        SealedReaderKey::seal(&ReaderKeyPair::generate()?, password, kdf)
    }

    /// The two halves as base64 text (public key, sealed secret), as the
    /// protocol's `UserRecord` carries a log-in key.
    pub fn to_base64(&self) -> (String, String) {
        use base64::Engine;
        let e = base64::engine::general_purpose::STANDARD;
        (e.encode(self.public.0), e.encode(&self.sealed_secret))
    }

    /// [`SealedReaderKey::to_base64`] read back (`crypto.malformed` for text
    /// that is not base64, or a public key that is not 32 bytes).
    pub fn from_base64(public: &str, sealed_secret: &str) -> Result<SealedReaderKey, AuthError> {
        use base64::Engine;
        let e = base64::engine::general_purpose::STANDARD;
        let bad = || AuthError::Malformed { what: "login_key" };
        let public: [u8; 32] = e
            .decode(public.trim())
            .map_err(|_| bad())?
            .try_into()
            .map_err(|_| bad())?;
        let sealed_secret = e.decode(sealed_secret.trim()).map_err(|_| bad())?;
        if !crate::keys::is_sealed(&sealed_secret) {
            return Err(bad());
        }
        Ok(SealedReaderKey {
            public: ReaderPublicKey(public),
            sealed_secret,
        })
    }

    /// The key pair, with the reader's password; `auth.wrong_password` for
    /// another password, `crypto.malformed` when the secret does not match
    /// the public half.
    pub fn open(&self, password: &str) -> Result<ReaderKeyPair, AuthError> {
        let plain = crate::keys::open_with_password(&self.sealed_secret, password)?;
        let bytes: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| AuthError::Malformed {
                what: "reader_secret",
            })?;
        let pair = ReaderKeyPair::from_secret_bytes(bytes);
        if pair.public() != self.public {
            return Err(AuthError::Malformed {
                what: "reader_secret",
            });
        }
        Ok(pair)
    }
}

/// The note key sealed for one reader's key. A reader with several devices
/// has several keys (one per device that registered one), and a note carries
/// one wrap per key, each naming the key it was sealed to (`reader_public`;
/// absent in wraps made before readers had several keys, which are tried in
/// turn).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedNoteKey {
    pub reader_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reader_public: Option<ReaderPublicKey>,
    pub ephemeral_public: ReaderPublicKey,
    #[serde(with = "crate::b64")]
    pub nonce: Vec<u8>,
    #[serde(with = "crate::b64")]
    pub wrapped: Vec<u8>,
}

/// What the server stores and syncs for a note's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedNote {
    pub version: u32,
    pub note_id: Uuid,
    #[serde(with = "crate::b64")]
    pub nonce: Vec<u8>,
    #[serde(with = "crate::b64")]
    pub ciphertext: Vec<u8>,
    pub readers: Vec<WrappedNoteKey>,
}

fn text_aad(note_id: Uuid) -> Vec<u8> {
    let mut aad = b"shouhu note v1 ".to_vec();
    aad.extend_from_slice(note_id.as_bytes());
    aad
}

fn key_aad(note_id: Uuid, reader_id: Uuid) -> Vec<u8> {
    let mut aad = b"shouhu note key v1 ".to_vec();
    aad.extend_from_slice(note_id.as_bytes());
    aad.extend_from_slice(reader_id.as_bytes());
    aad
}

fn kek(
    shared: &[u8; 32],
    eph: &[u8; 32],
    reader: &[u8; 32],
) -> Result<Zeroizing<[u8; 32]>, AuthError> {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(eph);
    salt[32..].copy_from_slice(reader);
    let hk = Hkdf::<Sha256>::new(Some(&salt), shared);
    let mut out = Zeroizing::new([0u8; 32]);
    hk.expand(b"shouhu note kek v1", out.as_mut())
        .map_err(|_| AuthError::Malformed { what: "hkdf" })?;
    Ok(out)
}

/// A 32-byte secret sealed to an X25519 public key: an ephemeral key agrees a
/// secret with `to`, HKDF-SHA256 turns it into a key-encryption key, and
/// XChaCha20-Poly1305 seals `secret` with `aad` as associated data. Returns
/// the ephemeral public key, the nonce and the ciphertext.
fn seal_to(
    secret: &[u8; 32],
    aad: &[u8],
    to: ReaderPublicKey,
) -> Result<(ReaderPublicKey, Vec<u8>, Vec<u8>), AuthError> {
    let eph = ReaderKeyPair::generate()?;
    let shared = Zeroizing::new(eph.secret.diffie_hellman(&PublicKey::from(to.0)).to_bytes());
    // A low-order public key gives an all-zero secret: refuse it.
    if shared.iter().all(|b| *b == 0) {
        return Err(AuthError::Malformed {
            what: "reader_public_key",
        });
    }
    let k = kek(&shared, &eph.public.0, &to.0)?;
    let cipher = XChaCha20Poly1305::new(k.as_ref().into());
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let wrapped = cipher
        .encrypt(&nonce, Payload { msg: secret, aad })
        .map_err(|_| AuthError::Malformed { what: "wrap" })?;
    Ok((eph.public, nonce.to_vec(), wrapped))
}

/// Opens what [`seal_to`] sealed, with the recipient's key pair
/// (`crypto.decrypt_failed` for other keys or altered bytes).
fn open_from(
    keys: &ReaderKeyPair,
    ephemeral: ReaderPublicKey,
    nonce: &[u8],
    wrapped: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<[u8; 32]>, AuthError> {
    if nonce.len() != NONCE_LEN {
        return Err(AuthError::Malformed { what: "sealed_key" });
    }
    let shared = Zeroizing::new(
        keys.secret
            .diffie_hellman(&PublicKey::from(ephemeral.0))
            .to_bytes(),
    );
    let k = kek(&shared, &ephemeral.0, &keys.public.0)?;
    let cipher = XChaCha20Poly1305::new(k.as_ref().into());
    let plain = Zeroizing::new(
        cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: wrapped, aad })
            .map_err(|_| AuthError::DecryptFailed)?,
    );
    if plain.len() != 32 {
        return Err(AuthError::Malformed { what: "sealed_key" });
    }
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&plain);
    Ok(out)
}

fn wrap_for(
    note_id: Uuid,
    note_key: &[u8; NOTE_KEY_LEN],
    reader_id: Uuid,
    reader: ReaderPublicKey,
) -> Result<WrappedNoteKey, AuthError> {
    let (ephemeral_public, nonce, wrapped) =
        seal_to(note_key, &key_aad(note_id, reader_id), reader)?;
    Ok(WrappedNoteKey {
        reader_id,
        reader_public: Some(reader),
        ephemeral_public,
        nonce,
        wrapped,
    })
}

fn data_key_aad(user_id: Uuid) -> Vec<u8> {
    let mut aad = b"shouhu data key to log-in key v1 ".to_vec();
    aad.extend_from_slice(user_id.as_bytes());
    aad
}

/// A laptop's [`DataKey`] sealed to a server user's **log-in key**: the
/// X25519 pair the county server makes at `user add` / `reset-password`,
/// whose secret travels only sealed with the user's initial password (a
/// [`SealedReaderKey`]). A laptop that synced seals its data key this way for
/// each server user of its scope (it does not know their password); the
/// user's first log-in there opens the log-in secret with the password, then
/// this, and wraps the data key by the password like any other user's
/// ([`crate::WrappedKey`]). Bound to the user id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedDataKey {
    pub version: u32,
    pub user_id: Uuid,
    /// The log-in public key it was sealed to.
    pub login_public: ReaderPublicKey,
    pub ephemeral_public: ReaderPublicKey,
    #[serde(with = "crate::b64")]
    pub nonce: Vec<u8>,
    #[serde(with = "crate::b64")]
    pub wrapped: Vec<u8>,
}

impl SealedDataKey {
    pub fn seal(
        key: &crate::DataKey,
        user_id: Uuid,
        login_public: ReaderPublicKey,
    ) -> Result<SealedDataKey, AuthError> {
        let (ephemeral_public, nonce, wrapped) =
            seal_to(key.as_bytes(), &data_key_aad(user_id), login_public)?;
        Ok(SealedDataKey {
            version: 1,
            user_id,
            login_public,
            ephemeral_public,
            nonce,
            wrapped,
        })
    }

    /// The data key, with the opened log-in key pair.
    pub fn open(&self, login: &ReaderKeyPair) -> Result<crate::DataKey, AuthError> {
        if self.version != 1 {
            return Err(AuthError::Malformed {
                what: "sealed_data_key_version",
            });
        }
        let bytes = open_from(
            login,
            self.ephemeral_public,
            &self.nonce,
            &self.wrapped,
            &data_key_aad(self.user_id),
        )?;
        Ok(crate::DataKey::from_bytes(*bytes))
    }
}

fn reader_to_login_aad(user_id: Uuid, reader: ReaderPublicKey) -> Vec<u8> {
    let mut aad = b"shouhu reader key to log-in key v1 ".to_vec();
    aad.extend_from_slice(user_id.as_bytes());
    aad.extend_from_slice(&reader.0);
    aad
}

/// A reader's key pair on one laptop, sealed to the user's **log-in public
/// key** (the same ephemeral ECDH → HKDF → XChaCha20-Poly1305 as
/// [`SealedDataKey`], bound to the user id and the reader public key). When
/// the user's password changes on another laptop, this laptop cannot
/// re-seal the reader secret (it does not know the new password); kept
/// beside the entry, it opens with the log-in key at the next log-in, so the
/// laptop's reader key, and the notes sealed for it, survive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedReaderToLogin {
    pub version: u32,
    pub user_id: Uuid,
    pub login_public: ReaderPublicKey,
    pub reader_public: ReaderPublicKey,
    pub ephemeral_public: ReaderPublicKey,
    #[serde(with = "crate::b64")]
    pub nonce: Vec<u8>,
    #[serde(with = "crate::b64")]
    pub wrapped: Vec<u8>,
}

impl SealedReaderToLogin {
    pub fn seal(
        reader: &ReaderKeyPair,
        user_id: Uuid,
        login_public: ReaderPublicKey,
    ) -> Result<SealedReaderToLogin, AuthError> {
        let (ephemeral_public, nonce, wrapped) = seal_to(
            &reader.secret_bytes(),
            &reader_to_login_aad(user_id, reader.public()),
            login_public,
        )?;
        Ok(SealedReaderToLogin {
            version: 1,
            user_id,
            login_public,
            reader_public: reader.public(),
            ephemeral_public,
            nonce,
            wrapped,
        })
    }

    /// The reader pair, with the opened log-in key pair
    /// (`crypto.decrypt_failed` for another key or altered bytes).
    pub fn open(&self, login: &ReaderKeyPair) -> Result<ReaderKeyPair, AuthError> {
        if self.version != 1 {
            return Err(AuthError::Malformed {
                what: "sealed_reader_version",
            });
        }
        let bytes = open_from(
            login,
            self.ephemeral_public,
            &self.nonce,
            &self.wrapped,
            &reader_to_login_aad(self.user_id, self.reader_public),
        )?;
        let pair = ReaderKeyPair::from_secret_bytes(*bytes);
        if pair.public() != self.reader_public {
            return Err(AuthError::Malformed {
                what: "reader_secret",
            });
        }
        Ok(pair)
    }
}

impl EncryptedNote {
    /// Encrypts `text` for `readers` (reader id and public key each; a
    /// reader may come with several keys, each gets the note key).
    pub fn encrypt(
        note_id: Uuid,
        text: &str,
        readers: &[(Uuid, ReaderPublicKey)],
    ) -> Result<EncryptedNote, AuthError> {
        let mut note_key = Zeroizing::new([0u8; NOTE_KEY_LEN]);
        OsRng
            .try_fill_bytes(note_key.as_mut())
            .map_err(|_| AuthError::Random)?;
        Self::encrypt_with_key(note_id, text, &note_key, readers)
    }

    fn encrypt_with_key(
        note_id: Uuid,
        text: &str,
        note_key: &[u8; NOTE_KEY_LEN],
        readers: &[(Uuid, ReaderPublicKey)],
    ) -> Result<EncryptedNote, AuthError> {
        let cipher = XChaCha20Poly1305::new(note_key.into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: text.as_bytes(),
                    aad: &text_aad(note_id),
                },
            )
            .map_err(|_| AuthError::Malformed { what: "encrypt" })?;
        let mut wrapped = Vec::with_capacity(readers.len());
        for (reader_id, public) in readers {
            if wrapped.iter().any(|w: &WrappedNoteKey| {
                w.reader_id == *reader_id && w.reader_public == Some(*public)
            }) {
                continue;
            }
            wrapped.push(wrap_for(note_id, note_key, *reader_id, *public)?);
        }
        Ok(EncryptedNote {
            version: 1,
            note_id,
            nonce: nonce.to_vec(),
            ciphertext,
            readers: wrapped,
        })
    }

    /// Each reader once (a reader with several keys has several wraps).
    pub fn reader_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.readers
            .iter()
            .enumerate()
            .filter(|(i, w)| {
                !self.readers[..*i]
                    .iter()
                    .any(|v| v.reader_id == w.reader_id)
            })
            .map(|(_, w)| w.reader_id)
    }

    /// Whether the note key is wrapped for this key of `reader_id`.
    pub fn has_reader_key(&self, reader_id: Uuid, public: ReaderPublicKey) -> bool {
        self.readers
            .iter()
            .any(|w| w.reader_id == reader_id && w.reader_public == Some(public))
    }

    fn note_key(
        &self,
        reader_id: Uuid,
        keys: &ReaderKeyPair,
    ) -> Result<Zeroizing<[u8; NOTE_KEY_LEN]>, AuthError> {
        if self.version != 1 {
            return Err(AuthError::Malformed {
                what: "note_version",
            });
        }
        let aad = key_aad(self.note_id, reader_id);
        let open =
            |w: &WrappedNoteKey| open_from(keys, w.ephemeral_public, &w.nonce, &w.wrapped, &aad);
        let mine = self.readers.iter().filter(|w| w.reader_id == reader_id);
        // The wrap named for this key; an altered one is an error.
        if let Some(w) = mine.clone().find(|w| w.reader_public == Some(keys.public)) {
            return open(w);
        }
        // Wraps from before keys were named: whichever opens.
        for w in mine.filter(|w| w.reader_public.is_none()) {
            match open(w) {
                Ok(k) => return Ok(k),
                Err(AuthError::DecryptFailed) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(AuthError::NotAReader)
    }

    /// Decrypts the text as `reader_id` holding `keys`.
    pub fn decrypt(&self, reader_id: Uuid, keys: &ReaderKeyPair) -> Result<String, AuthError> {
        let note_key = self.note_key(reader_id, keys)?;
        if self.nonce.len() != NONCE_LEN {
            return Err(AuthError::Malformed { what: "note" });
        }
        let cipher = XChaCha20Poly1305::new(note_key.as_ref().into());
        let plain = cipher
            .decrypt(
                XNonce::from_slice(&self.nonce),
                Payload {
                    msg: &self.ciphertext,
                    aad: &text_aad(self.note_id),
                },
            )
            .map_err(|_| AuthError::DecryptFailed)?;
        String::from_utf8(plain).map_err(|_| AuthError::DecryptFailed)
    }

    /// An existing reader grants `new_reader`'s key `new_public` access
    /// (idempotent; the reader's other keys keep theirs).
    pub fn add_reader(
        &mut self,
        my_id: Uuid,
        my_keys: &ReaderKeyPair,
        new_reader: Uuid,
        new_public: ReaderPublicKey,
    ) -> Result<(), AuthError> {
        let note_key = self.note_key(my_id, my_keys)?;
        self.readers
            .retain(|w| !(w.reader_id == new_reader && w.reader_public == Some(new_public)));
        self.readers
            .push(wrap_for(self.note_id, &note_key, new_reader, new_public)?);
        Ok(())
    }

    /// Re-encrypts under a fresh note key for exactly `readers` (to remove a
    /// reader for the future).
    pub fn reencrypt(
        &self,
        my_id: Uuid,
        my_keys: &ReaderKeyPair,
        readers: &[(Uuid, ReaderPublicKey)],
    ) -> Result<EncryptedNote, AuthError> {
        let text = Zeroizing::new(self.decrypt(my_id, my_keys)?);
        Self::encrypt(self.note_id, &text, readers)
    }
}

/// Seals `content` (any serde value: a note's confidential part) for
/// `readers` as the JSON a record carries (`PsychNote::sealed`).
pub fn seal_value<T: Serialize>(
    note_id: Uuid,
    content: &T,
    readers: &[(Uuid, ReaderPublicKey)],
) -> Result<serde_json::Value, AuthError> {
    if readers.is_empty() {
        // A note nobody can open would be lost the moment it is saved.
        return Err(AuthError::NotAReader);
    }
    let text = Zeroizing::new(
        serde_json::to_string(content).map_err(|_| AuthError::Malformed { what: "note" })?,
    );
    let note = EncryptedNote::encrypt(note_id, &text, readers)?;
    serde_json::to_value(&note).map_err(|_| AuthError::Malformed { what: "note" })
}

/// The sealed JSON of the record `note_id`, parsed. A blob that names another
/// note is refused: moved to another record, it would show one child's note
/// under another child.
pub fn parse_sealed(note_id: Uuid, sealed: &serde_json::Value) -> Result<EncryptedNote, AuthError> {
    let note: EncryptedNote = serde_json::from_value(sealed.clone())
        .map_err(|_| AuthError::Malformed { what: "note" })?;
    if note.note_id != note_id || note.version != 1 {
        return Err(AuthError::Malformed { what: "note" });
    }
    Ok(note)
}

/// Opens what [`seal_value`] sealed, as `reader_id` holding `keys`
/// (`crypto.not_a_reader` when the note was not sealed for this reader).
pub fn open_value<T: serde::de::DeserializeOwned>(
    note_id: Uuid,
    sealed: &serde_json::Value,
    reader_id: Uuid,
    keys: &ReaderKeyPair,
) -> Result<T, AuthError> {
    let text = Zeroizing::new(parse_sealed(note_id, sealed)?.decrypt(reader_id, keys)?);
    serde_json::from_str(&text).map_err(|_| AuthError::Malformed { what: "note" })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Reader {
        id: Uuid,
        keys: ReaderKeyPair,
    }

    fn reader() -> Result<Reader, AuthError> {
        Ok(Reader {
            id: Uuid::now_v7(),
            keys: ReaderKeyPair::generate()?,
        })
    }

    #[test]
    fn sealed_values_open_for_their_readers_and_their_record_only() -> Result<(), AuthError> {
        let (counselor, supervisor, outsider) = (reader()?, reader()?, reader()?);
        let id = Uuid::now_v7();
        let content = serde_json::json!({"presenting_issue": "想妈妈", "risk_level": "high"});
        let sealed = seal_value(
            id,
            &content,
            &[
                (counselor.id, counselor.keys.public()),
                (supervisor.id, supervisor.keys.public()),
            ],
        )?;
        assert!(!sealed.to_string().contains("想妈妈"));
        let back: serde_json::Value = open_value(id, &sealed, supervisor.id, &supervisor.keys)?;
        assert_eq!(back, content);
        let refused: Result<serde_json::Value, _> =
            open_value(id, &sealed, outsider.id, &outsider.keys);
        assert_eq!(refused, Err(AuthError::NotAReader));
        // Moved under another record: refused.
        let moved: Result<serde_json::Value, _> =
            open_value(Uuid::now_v7(), &sealed, counselor.id, &counselor.keys);
        assert!(matches!(moved, Err(AuthError::Malformed { .. })));
        // Sealing for nobody is refused rather than losing the note.
        assert_eq!(seal_value(id, &content, &[]), Err(AuthError::NotAReader));
        Ok(())
    }

    #[test]
    fn a_sealed_reader_key_opens_with_its_password_only() -> Result<(), AuthError> {
        let pair = ReaderKeyPair::generate()?;
        let kdf = crate::password::TEST_PARAMS;
        let sealed = SealedReaderKey::seal(&pair, "xinli-2026", kdf)?;
        let text = serde_json::to_string(&sealed).map_err(|_| AuthError::Random)?;
        let back: SealedReaderKey = serde_json::from_str(&text).map_err(|_| AuthError::Random)?;
        assert_eq!(back.open("xinli-2026")?.public(), pair.public());
        assert_eq!(
            back.open("wrong").map(|p| p.public()),
            Err(AuthError::WrongPassword)
        );
        // A secret swapped under another public half is refused.
        let other = ReaderKeyPair::generate()?;
        let mixed = SealedReaderKey {
            public: other.public(),
            sealed_secret: back.sealed_secret.clone(),
        };
        assert!(matches!(
            mixed.open("xinli-2026").map(|p| p.public()),
            Err(AuthError::Malformed { .. })
        ));
        Ok(())
    }

    #[test]
    fn a_data_key_sealed_to_a_log_in_key_opens_with_that_key_and_user_only() -> Result<(), AuthError>
    {
        let kdf = crate::password::TEST_PARAMS;
        let login = ReaderKeyPair::generate()?;
        let sealed_login = SealedReaderKey::seal(&login, "chushi-2026", kdf)?;
        let key = crate::DataKey::generate()?;
        let user = Uuid::now_v7();
        let sealed = SealedDataKey::seal(&key, user, login.public())?;
        let text = serde_json::to_string(&sealed).map_err(|_| AuthError::Random)?;
        {
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD.encode(key.as_bytes());
            assert!(!text.contains(&b64));
        }
        let back: SealedDataKey = serde_json::from_str(&text).map_err(|_| AuthError::Random)?;
        // The initial password opens the log-in key, which opens the data key.
        let opened = sealed_login.open("chushi-2026")?;
        // As the protocol carries it.
        let (public, secret) = sealed_login.to_base64();
        assert_eq!(
            SealedReaderKey::from_base64(&public, &secret)?,
            sealed_login
        );
        assert!(SealedReaderKey::from_base64("QUJD", &secret).is_err());
        assert!(SealedReaderKey::from_base64(&public, "QUJD").is_err());
        assert_eq!(back.open(&opened)?, key);
        assert_eq!(
            sealed_login.open("chushi-2027").map(|p| p.public()),
            Err(AuthError::WrongPassword)
        );
        // Another key pair, another user, or altered bytes: refused.
        let other = ReaderKeyPair::generate()?;
        assert_eq!(back.open(&other), Err(AuthError::DecryptFailed));
        let mut moved = back.clone();
        moved.user_id = Uuid::now_v7();
        assert_eq!(moved.open(&opened), Err(AuthError::DecryptFailed));
        let mut bad = back.clone();
        bad.wrapped[0] ^= 1;
        assert_eq!(bad.open(&opened), Err(AuthError::DecryptFailed));
        Ok(())
    }

    const TEXT: &str = "第3次辅导：孩子说夜里常梦见妈妈，情绪低落，约定下周二再谈。";

    #[test]
    fn readers_decrypt_others_cannot() -> Result<(), AuthError> {
        let (counselor, supervisor, teacher) = (reader()?, reader()?, reader()?);
        let note_id = Uuid::now_v7();
        let note = EncryptedNote::encrypt(
            note_id,
            TEXT,
            &[
                (counselor.id, counselor.keys.public()),
                (supervisor.id, supervisor.keys.public()),
            ],
        )?;
        assert_eq!(note.decrypt(counselor.id, &counselor.keys)?, TEXT);
        assert_eq!(note.decrypt(supervisor.id, &supervisor.keys)?, TEXT);
        assert_eq!(
            note.decrypt(teacher.id, &teacher.keys),
            Err(AuthError::NotAReader)
        );
        // The counselor's id with a key the note was not sealed to (another
        // device's, or anyone's) is no reader.
        assert_eq!(
            note.decrypt(counselor.id, &teacher.keys),
            Err(AuthError::NotAReader)
        );
        // No plaintext in what the server stores.
        let stored = serde_json::to_string(&note).map_err(|_| AuthError::Random)?;
        assert!(!stored.contains("辅导") && !stored.contains("妈妈"));
        let back: EncryptedNote = serde_json::from_str(&stored).map_err(|_| AuthError::Random)?;
        assert_eq!(back.decrypt(supervisor.id, &supervisor.keys)?, TEXT);
        Ok(())
    }

    #[test]
    fn tampering_or_moving_a_note_fails() -> Result<(), AuthError> {
        let c = reader()?;
        let note = EncryptedNote::encrypt(Uuid::now_v7(), TEXT, &[(c.id, c.keys.public())])?;
        let mut bad = note.clone();
        bad.ciphertext[5] ^= 1;
        assert_eq!(bad.decrypt(c.id, &c.keys), Err(AuthError::DecryptFailed));
        let mut moved = note.clone();
        moved.note_id = Uuid::now_v7();
        assert_eq!(moved.decrypt(c.id, &c.keys), Err(AuthError::DecryptFailed));
        let mut bad_key = note.clone();
        bad_key.readers[0].wrapped[0] ^= 1;
        assert_eq!(
            bad_key.decrypt(c.id, &c.keys),
            Err(AuthError::DecryptFailed)
        );
        Ok(())
    }

    #[test]
    fn a_new_counselor_is_granted_by_an_existing_reader() -> Result<(), AuthError> {
        let (old, newcomer, outsider) = (reader()?, reader()?, reader()?);
        let mut note =
            EncryptedNote::encrypt(Uuid::now_v7(), TEXT, &[(old.id, old.keys.public())])?;
        assert_eq!(
            note.decrypt(newcomer.id, &newcomer.keys),
            Err(AuthError::NotAReader)
        );
        // The newcomer cannot grant themself.
        assert_eq!(
            note.add_reader(
                newcomer.id,
                &newcomer.keys,
                newcomer.id,
                newcomer.keys.public()
            ),
            Err(AuthError::NotAReader)
        );
        note.add_reader(old.id, &old.keys, newcomer.id, newcomer.keys.public())?;
        note.add_reader(old.id, &old.keys, newcomer.id, newcomer.keys.public())?;
        assert_eq!(note.readers.len(), 2);
        assert_eq!(note.decrypt(newcomer.id, &newcomer.keys)?, TEXT);
        // Re-encrypting for the newcomer alone removes the old reader.
        let rotated = note.reencrypt(
            newcomer.id,
            &newcomer.keys,
            &[(newcomer.id, newcomer.keys.public())],
        )?;
        assert_eq!(
            rotated.decrypt(old.id, &old.keys),
            Err(AuthError::NotAReader)
        );
        assert_eq!(rotated.decrypt(newcomer.id, &newcomer.keys)?, TEXT);
        assert_ne!(rotated.ciphertext, note.ciphertext);
        assert_eq!(
            rotated.decrypt(outsider.id, &outsider.keys),
            Err(AuthError::NotAReader)
        );
        Ok(())
    }

    #[test]
    fn secret_round_trip_and_low_order_keys() -> Result<(), AuthError> {
        let r = reader()?;
        let again = ReaderKeyPair::from_secret_bytes(*r.keys.secret_bytes());
        assert_eq!(again.public(), r.keys.public());
        assert!(!format!("{:?}", r.keys).contains("secret"));
        // The all-zero point is of low order: wrapping for it is refused.
        assert_eq!(
            EncryptedNote::encrypt(Uuid::now_v7(), TEXT, &[(r.id, ReaderPublicKey([0; 32]))])
                .map_err(|e| e.code()),
            Err("crypto.malformed")
        );
        Ok(())
    }

    /// A counselor with two laptops has two keys: a note sealed for both
    /// opens with either; granting a key leaves the other's wrap alone; a
    /// wrap from before keys were named still opens; a key the note was not
    /// sealed for is not a reader.
    #[test]
    fn a_reader_with_two_keys_opens_with_either() -> Result<(), AuthError> {
        let laptop_a = reader()?;
        let laptop_b = Reader {
            id: laptop_a.id,
            keys: ReaderKeyPair::generate()?,
        };
        let laptop_c = ReaderKeyPair::generate()?;
        let id = Uuid::now_v7();
        let mut note = EncryptedNote::encrypt(
            id,
            TEXT,
            &[
                (laptop_a.id, laptop_a.keys.public()),
                (laptop_b.id, laptop_b.keys.public()),
                (laptop_a.id, laptop_a.keys.public()),
            ],
        )?;
        assert_eq!(note.readers.len(), 2);
        assert_eq!(note.reader_ids().collect::<Vec<_>>(), [laptop_a.id]);
        assert_eq!(note.decrypt(laptop_a.id, &laptop_a.keys)?, TEXT);
        assert_eq!(note.decrypt(laptop_b.id, &laptop_b.keys)?, TEXT);
        assert_eq!(
            note.decrypt(laptop_a.id, &laptop_c),
            Err(AuthError::NotAReader)
        );
        // Laptop A grants its third laptop; B's wrap stays.
        assert!(!note.has_reader_key(laptop_a.id, laptop_c.public()));
        note.add_reader(laptop_a.id, &laptop_a.keys, laptop_a.id, laptop_c.public())?;
        note.add_reader(laptop_a.id, &laptop_a.keys, laptop_a.id, laptop_c.public())?;
        assert_eq!(note.readers.len(), 3);
        assert!(note.has_reader_key(laptop_a.id, laptop_c.public()));
        assert_eq!(note.decrypt(laptop_a.id, &laptop_c)?, TEXT);
        assert_eq!(note.decrypt(laptop_b.id, &laptop_b.keys)?, TEXT);
        // An altered wrap of this key is an error, not "not a reader".
        let mut bad = note.clone();
        if let Some(w) = bad
            .readers
            .iter_mut()
            .find(|w| w.reader_public == Some(laptop_b.keys.public()))
        {
            w.wrapped[0] ^= 1;
        }
        assert_eq!(
            bad.decrypt(laptop_b.id, &laptop_b.keys),
            Err(AuthError::DecryptFailed)
        );
        // Wraps of older notes name no key: each is tried.
        let mut old = EncryptedNote::encrypt(
            id,
            TEXT,
            &[
                (laptop_a.id, laptop_a.keys.public()),
                (laptop_b.id, laptop_b.keys.public()),
            ],
        )?;
        for w in &mut old.readers {
            w.reader_public = None;
        }
        let text = serde_json::to_string(&old).map_err(|_| AuthError::Random)?;
        assert!(!text.contains("reader_public"));
        let old: EncryptedNote = serde_json::from_str(&text).map_err(|_| AuthError::Random)?;
        assert_eq!(old.decrypt(laptop_b.id, &laptop_b.keys)?, TEXT);
        assert_eq!(
            old.decrypt(laptop_a.id, &laptop_c),
            Err(AuthError::NotAReader)
        );
        Ok(())
    }

    #[test]
    fn a_reader_pair_sealed_to_a_log_in_key_opens_with_it_only() -> Result<(), AuthError> {
        let (login, other, reader) = (
            ReaderKeyPair::generate()?,
            ReaderKeyPair::generate()?,
            ReaderKeyPair::generate()?,
        );
        let user = Uuid::now_v7();
        let sealed = SealedReaderToLogin::seal(&reader, user, login.public())?;
        let text = serde_json::to_string(&sealed).map_err(|_| AuthError::Random)?;
        let back: SealedReaderToLogin =
            serde_json::from_str(&text).map_err(|_| AuthError::Random)?;
        assert_eq!(back.open(&login)?.public(), reader.public());
        assert_eq!(
            back.open(&other).map(|p| p.public()),
            Err(AuthError::DecryptFailed)
        );
        let mut moved = back.clone();
        moved.user_id = Uuid::now_v7();
        assert_eq!(
            moved.open(&login).map(|p| p.public()),
            Err(AuthError::DecryptFailed)
        );
        Ok(())
    }
}
