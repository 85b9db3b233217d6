//! Excel's own password protection ("Encrypt with Password" / 用密码进行加密)
//! for .xlsx files: ECMA-376 agile encryption as MS-OFFCRYPTO specifies it,
//! with AES-256-CBC, SHA-512 and 100,000 hash rounds (what Excel 2013 and
//! later write). Excel and WPS ask for the password when they open the file;
//! without it the file is an opaque compound file.
//!
//! The encrypted file is an OLE compound file holding `EncryptionInfo` (the
//! salts, the verifier and the intermediate key wrapped by the
//! password-derived key, as XML), `EncryptedPackage` (the .xlsx, encrypted
//! in 4096-byte segments with the intermediate key) and the `\u{6}DataSpaces`
//! storage that names the transform. An HMAC-SHA512 over the package
//! (`dataIntegrity`) tells a changed file from a wrong password.

use std::io::{Cursor, Read, Write};

use aes::cipher::{block_padding::NoPadding, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha512};

type Enc = cbc::Encryptor<aes::Aes256>;
type Dec = cbc::Decryptor<aes::Aes256>;

const SPIN_COUNT: u32 = 100_000;
const SEGMENT: usize = 4096;
const BLOCK_VERIFIER_INPUT: [u8; 8] = [0xfe, 0xa7, 0xd2, 0x76, 0x3b, 0x4b, 0x9e, 0x79];
const BLOCK_VERIFIER_VALUE: [u8; 8] = [0xd7, 0xaa, 0x0f, 0x6d, 0x30, 0x61, 0x34, 0x4e];
const BLOCK_KEY_VALUE: [u8; 8] = [0x14, 0x6e, 0x0b, 0xe7, 0xab, 0xac, 0xd0, 0xd6];
const BLOCK_HMAC_KEY: [u8; 8] = [0x5f, 0xb2, 0xad, 0x01, 0x0c, 0xb9, 0xe1, 0xf6];
const BLOCK_HMAC_VALUE: [u8; 8] = [0xa0, 0x67, 0x7f, 0x02, 0xb2, 0x2c, 0x84, 0x33];

/// The first bytes of an OLE compound file (what an encrypted .xlsx is).
pub const CFB_MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// Why a protected file does not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptError {
    #[error("wrong password")]
    WrongPassword,
    /// Not an agile-encrypted package, or damaged (the HMAC differs).
    #[error("not a readable password-protected workbook: {0}")]
    Damaged(String),
}

fn sha512(parts: &[&[u8]]) -> [u8; 64] {
    let mut h = Sha512::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// The password's key for one block key (MS-OFFCRYPTO 2.3.4.11).
fn password_key(password: &str, salt: &[u8], spin: u32, block: &[u8]) -> [u8; 32] {
    let mut h = sha512(&[salt, &utf16le(password)]);
    for i in 0..spin {
        h = sha512(&[&i.to_le_bytes(), &h]);
    }
    let f = sha512(&[&h, block]);
    let mut key = [0u8; 32];
    key.copy_from_slice(&f[..32]);
    key
}

fn iv(salt: &[u8], block: &[u8]) -> [u8; 16] {
    let h = sha512(&[salt, block]);
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&h[..16]);
    iv
}

fn salt_iv(salt: &[u8]) -> [u8; 16] {
    let mut iv = [0u8; 16];
    let n = salt.len().min(16);
    iv[..n].copy_from_slice(&salt[..n]);
    iv
}

/// AES-256-CBC of `data` padded with zeros to whole blocks.
fn encrypt(key: &[u8; 32], iv: &[u8; 16], data: &[u8]) -> Vec<u8> {
    let mut buf = data.to_vec();
    buf.resize(data.len().div_ceil(16) * 16, 0);
    let n = buf.len();
    Enc::new(key.into(), iv.into())
        .encrypt_padded_mut::<NoPadding>(&mut buf, n)
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

fn decrypt(key: &[u8; 32], iv: &[u8; 16], data: &[u8]) -> Result<Vec<u8>, CryptError> {
    let mut buf = data.to_vec();
    Dec::new(key.into(), iv.into())
        .decrypt_padded_mut::<NoPadding>(&mut buf)
        .map(<[u8]>::to_vec)
        .map_err(|_| CryptError::Damaged("cipher text is not whole blocks".into()))
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    OsRng.fill_bytes(&mut b);
    b
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    match <Hmac<Sha512> as Mac>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        // HMAC takes keys of any length: not reached.
        Err(_) => Vec::new(),
    }
}

/// The package stream: its plain size, then the segments.
fn encrypt_package(key: &[u8; 32], key_salt: &[u8], plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(plain.len() + 8 + 16);
    out.extend_from_slice(&(plain.len() as u64).to_le_bytes());
    for (i, seg) in plain.chunks(SEGMENT).enumerate() {
        let iv = iv(key_salt, &(i as u32).to_le_bytes());
        out.extend_from_slice(&encrypt(key, &iv, seg));
    }
    out
}

fn decrypt_package(key: &[u8; 32], key_salt: &[u8], package: &[u8]) -> Result<Vec<u8>, CryptError> {
    let size = package
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes)
        .ok_or_else(|| CryptError::Damaged("package too short".into()))?;
    let body = &package[8..];
    let mut out = Vec::with_capacity(body.len());
    for (i, seg) in body.chunks(SEGMENT).enumerate() {
        let iv = iv(key_salt, &(i as u32).to_le_bytes());
        out.extend_from_slice(&decrypt(key, &iv, seg)?);
    }
    let size = usize::try_from(size).map_err(|e| CryptError::Damaged(e.to_string()))?;
    if size > out.len() {
        return Err(CryptError::Damaged("package shorter than its size".into()));
    }
    out.truncate(size);
    Ok(out)
}

/// `UNICODE-LP-P4`: byte length, UTF-16LE, padded to 4 bytes.
fn lp_p4(s: &str) -> Vec<u8> {
    let u = utf16le(s);
    let mut out = (u.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&u);
    out.resize(out.len().div_ceil(4) * 4, 0);
    out
}

fn u32s(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The `\u{6}DataSpaces` storage's streams (MS-OFFCRYPTO 2.1.5–2.1.8, as
/// Office writes them for an encrypted package).
fn data_spaces() -> Vec<(&'static str, Vec<u8>)> {
    let mut version = lp_p4("Microsoft.Container.DataSpaces");
    // Reader, updater and writer versions: 1.0 each (u16 major, u16 minor).
    version.extend([1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]);
    let mut entry = u32s(&[1, 0]);
    entry.extend(lp_p4("EncryptedPackage"));
    entry.extend(lp_p4("StrongEncryptionDataSpace"));
    let mut map = u32s(&[8, 1, entry.len() as u32 + 4]);
    map.extend(entry);
    let mut definition = u32s(&[8, 1]);
    definition.extend(lp_p4("StrongEncryptionTransform"));
    let id = lp_p4("{FF9A3F03-56EF-4613-BDD5-5A41C1D07246}");
    let mut primary = u32s(&[8 + id.len() as u32, 1]);
    primary.extend(id);
    primary.extend(lp_p4("Microsoft.Container.EncryptionTransform"));
    primary.extend([1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]);
    // EncryptionTransformInfo: no name, block size 0, cipher mode 0, reserved 4.
    primary.extend(u32s(&[0, 0, 0, 4]));
    vec![
        ("/\u{6}DataSpaces/Version", version),
        ("/\u{6}DataSpaces/DataSpaceMap", map),
        (
            "/\u{6}DataSpaces/DataSpaceInfo/StrongEncryptionDataSpace",
            definition,
        ),
        (
            "/\u{6}DataSpaces/TransformInfo/StrongEncryptionTransform/\u{6}Primary",
            primary,
        ),
    ]
}

/// Protects `plain` (an .xlsx file's bytes) with `password`, as Excel's
/// "Encrypt with Password" does.
pub fn encrypt_xlsx(plain: &[u8], password: &str) -> Result<Vec<u8>, CryptError> {
    let damaged = |e: std::io::Error| CryptError::Damaged(e.to_string());
    let secret: [u8; 32] = random();
    let key_salt: [u8; 16] = random();
    let pw_salt: [u8; 16] = random();
    let verifier: [u8; 16] = random();
    let hmac_key: [u8; 64] = random();

    let package = encrypt_package(&secret, &key_salt, plain);
    let hmac_value = hmac(&hmac_key, &package);
    let enc_hmac_key = encrypt(&secret, &iv(&key_salt, &BLOCK_HMAC_KEY), &hmac_key);
    let enc_hmac_value = encrypt(&secret, &iv(&key_salt, &BLOCK_HMAC_VALUE), &hmac_value);

    let piv = salt_iv(&pw_salt);
    let k1 = password_key(password, &pw_salt, SPIN_COUNT, &BLOCK_VERIFIER_INPUT);
    let k2 = password_key(password, &pw_salt, SPIN_COUNT, &BLOCK_VERIFIER_VALUE);
    let k3 = password_key(password, &pw_salt, SPIN_COUNT, &BLOCK_KEY_VALUE);
    let enc_verifier = encrypt(&k1, &piv, &verifier);
    let enc_verifier_hash = encrypt(&k2, &piv, &sha512(&[&verifier]));
    let enc_key = encrypt(&k3, &piv, &secret);

    let params = r#"saltSize="16" blockSize="16" keyBits="256" hashSize="64" cipherAlgorithm="AES" cipherChaining="ChainingModeCBC" hashAlgorithm="SHA512""#;
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\r\n\
<encryption xmlns=\"http://schemas.microsoft.com/office/2006/encryption\" \
xmlns:p=\"http://schemas.microsoft.com/office/2006/keyEncryptor/password\" \
xmlns:c=\"http://schemas.microsoft.com/office/2006/keyEncryptor/certificate\">\
<keyData {params} saltValue=\"{}\"/>\
<dataIntegrity encryptedHmacKey=\"{}\" encryptedHmacValue=\"{}\"/>\
<keyEncryptors><keyEncryptor uri=\"http://schemas.microsoft.com/office/2006/keyEncryptor/password\">\
<p:encryptedKey spinCount=\"{SPIN_COUNT}\" {params} saltValue=\"{}\" \
encryptedVerifierHashInput=\"{}\" encryptedVerifierHashValue=\"{}\" encryptedKeyValue=\"{}\"/>\
</keyEncryptor></keyEncryptors></encryption>",
        B64.encode(key_salt),
        B64.encode(&enc_hmac_key),
        B64.encode(&enc_hmac_value),
        B64.encode(pw_salt),
        B64.encode(&enc_verifier),
        B64.encode(&enc_verifier_hash),
        B64.encode(&enc_key),
    );
    let mut info = vec![4, 0, 4, 0, 0x40, 0, 0, 0];
    info.extend_from_slice(xml.as_bytes());

    let mut cf = cfb::CompoundFile::create_with_version(cfb::Version::V3, Cursor::new(Vec::new()))
        .map_err(damaged)?;
    for dir in [
        "/\u{6}DataSpaces",
        "/\u{6}DataSpaces/DataSpaceInfo",
        "/\u{6}DataSpaces/TransformInfo",
        "/\u{6}DataSpaces/TransformInfo/StrongEncryptionTransform",
    ] {
        cf.create_storage(dir).map_err(damaged)?;
    }
    let mut streams = data_spaces();
    streams.push(("/EncryptionInfo", info));
    streams.push(("/EncryptedPackage", package));
    for (path, data) in streams {
        let mut s = cf.create_stream(path).map_err(damaged)?;
        s.write_all(&data).map_err(damaged)?;
    }
    cf.flush().map_err(damaged)?;
    Ok(cf.into_inner().into_inner())
}

/// Whether `data` is an OLE compound file (a password-protected workbook,
/// or an old .xls).
pub fn is_compound_file(data: &[u8]) -> bool {
    data.starts_with(&CFB_MAGIC)
}

/// One attribute of the first element named `tag` in the XML.
fn attr<'a>(xml: &'a str, tag: &str, name: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{tag} "))?;
    let rest = &xml[start..];
    let end = rest.find('>')?;
    let el = &rest[..end];
    let key = format!(" {name}=\"");
    let a = el.find(&key)? + key.len();
    let len = el[a..].find('"')?;
    Some(&el[a..a + len])
}

/// Opens a workbook protected with Excel's agile encryption.
pub fn decrypt_xlsx(data: &[u8], password: &str) -> Result<Vec<u8>, CryptError> {
    let damaged = |e: String| CryptError::Damaged(e);
    let mut cf = cfb::CompoundFile::open(Cursor::new(data)).map_err(|e| damaged(e.to_string()))?;
    let mut read = |path: &str| -> Result<Vec<u8>, CryptError> {
        let mut s = cf
            .open_stream(path)
            .map_err(|e| damaged(format!("{path}: {e}")))?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf)
            .map_err(|e| damaged(e.to_string()))?;
        Ok(buf)
    };
    let info = read("/EncryptionInfo")?;
    let package = read("/EncryptedPackage")?;
    if info.get(..4) != Some(&[4, 0, 4, 0]) {
        return Err(damaged(
            "only agile encryption (Excel 2010 and later) is supported".into(),
        ));
    }
    let xml = String::from_utf8_lossy(&info[8..]).into_owned();
    let b64 = |tag: &str, name: &str| -> Result<Vec<u8>, CryptError> {
        attr(&xml, tag, name)
            .and_then(|v| B64.decode(v).ok())
            .ok_or_else(|| damaged(format!("{tag}/@{name} missing")))
    };
    for (tag, name, want) in [
        ("keyData", "cipherAlgorithm", "AES"),
        ("keyData", "hashAlgorithm", "SHA512"),
        ("keyData", "keyBits", "256"),
        ("p:encryptedKey", "hashAlgorithm", "SHA512"),
        ("p:encryptedKey", "keyBits", "256"),
    ] {
        if attr(&xml, tag, name) != Some(want) {
            return Err(damaged(format!("unsupported {tag}/@{name}")));
        }
    }
    let spin: u32 = attr(&xml, "p:encryptedKey", "spinCount")
        .and_then(|s| s.parse().ok())
        .filter(|n| *n <= 10_000_000)
        .ok_or_else(|| damaged("spinCount".into()))?;
    let key_salt = b64("keyData", "saltValue")?;
    let pw_salt = b64("p:encryptedKey", "saltValue")?;
    let piv = salt_iv(&pw_salt);
    let k1 = password_key(password, &pw_salt, spin, &BLOCK_VERIFIER_INPUT);
    let k2 = password_key(password, &pw_salt, spin, &BLOCK_VERIFIER_VALUE);
    let verifier = decrypt(
        &k1,
        &piv,
        &b64("p:encryptedKey", "encryptedVerifierHashInput")?,
    )?;
    let verifier_hash = decrypt(
        &k2,
        &piv,
        &b64("p:encryptedKey", "encryptedVerifierHashValue")?,
    )?;
    let salt_size = pw_salt.len().min(verifier.len());
    if verifier_hash.get(..64) != Some(&sha512(&[&verifier[..salt_size]])[..]) {
        return Err(CryptError::WrongPassword);
    }
    let k3 = password_key(password, &pw_salt, spin, &BLOCK_KEY_VALUE);
    let secret = decrypt(&k3, &piv, &b64("p:encryptedKey", "encryptedKeyValue")?)?;
    let secret: [u8; 32] = secret
        .get(..32)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| damaged("key".into()))?;
    // The package is the one this file was made with.
    if let (Ok(hk), Ok(hv)) = (
        b64("dataIntegrity", "encryptedHmacKey"),
        b64("dataIntegrity", "encryptedHmacValue"),
    ) {
        let hk = decrypt(&secret, &iv(&key_salt, &BLOCK_HMAC_KEY), &hk)?;
        let hv = decrypt(&secret, &iv(&key_salt, &BLOCK_HMAC_VALUE), &hv)?;
        if hk.len() < 64 || hv.len() < 64 || hmac(&hk[..64], &package) != hv[..64] {
            return Err(damaged("the package was changed (HMAC)".into()));
        }
    }
    decrypt_package(&secret, &key_salt, &package)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn protects_and_opens_with_the_password_only() {
        let plain: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let sealed = encrypt_xlsx(&plain, "县教育局2026").unwrap();
        assert!(is_compound_file(&sealed));
        assert!(!sealed.windows(64).any(|w| w == &plain[..64]));
        assert_eq!(decrypt_xlsx(&sealed, "县教育局2026").unwrap(), plain);
        assert_eq!(
            decrypt_xlsx(&sealed, "wrong").unwrap_err(),
            CryptError::WrongPassword
        );
    }

    #[test]
    fn the_data_space_streams_have_office_s_lengths() {
        let streams = data_spaces();
        let map = &streams[1].1;
        // One map entry of 0x68 bytes, as Office writes it.
        assert_eq!(&map[8..12], &[0x68, 0, 0, 0]);
        let primary = &streams[3].1;
        assert_eq!(&primary[..4], &[0x58, 0, 0, 0]);
    }
}
