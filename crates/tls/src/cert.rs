//! The server's certificate: made once, kept in the data directory.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::TlsError;

pub const CERT_FILE: &str = "tls-cert.pem";
pub const KEY_FILE: &str = "tls-key.pem";

/// A certificate's SHA-256 digest; shown as `AB:CD:…` (32 pairs).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of(cert_der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(cert_der).into())
    }

    /// Parses 64 hex digits, with or without `:`, `-` or space separators,
    /// any case, full-width characters (typed with a Chinese input method)
    /// included, optionally after `SHA256:` or `SHA-256`.
    pub fn parse(text: &str) -> Result<Fingerprint, TlsError> {
        let hex = hex_digits(text)?;
        if hex.len() != 64 {
            return Err(bad_fingerprint(text));
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                .map_err(|_| bad_fingerprint(text))?;
        }
        Ok(Fingerprint(out))
    }

    /// The 64 hex digits in lower case, without separators.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

pub(crate) fn bad_fingerprint(text: &str) -> TlsError {
    TlsError::BadFingerprint(text.chars().take(120).collect())
}

/// The hex digits of a typed fingerprint (lower case), or an error if
/// anything but hex digits and separators is there.
pub(crate) fn hex_digits(text: &str) -> Result<String, TlsError> {
    // Full-width forms (U+FF01..U+FF5E, e.g. `：` and `Ａ`) to ASCII.
    let ascii: String = text
        .chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            c => c,
        })
        .collect();
    let mut rest = ascii.trim();
    for label in ["sha256:", "sha-256:", "sha256", "sha-256"] {
        if rest.len() >= label.len()
            && rest.is_char_boundary(label.len())
            && rest[..label.len()].eq_ignore_ascii_case(label)
        {
            rest = &rest[label.len()..];
            break;
        }
    }
    let mut hex = String::with_capacity(64);
    for c in rest.chars() {
        if c == ':' || c == '-' || c.is_whitespace() {
            continue;
        }
        if !c.is_ascii_hexdigit() {
            return Err(bad_fingerprint(text));
        }
        hex.push(c.to_ascii_lowercase());
    }
    Ok(hex)
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// What the server needs to speak TLS.
pub struct ServerIdentity {
    pub config: Arc<ServerConfig>,
    pub fingerprint: Fingerprint,
    /// True when this call made the certificate (first start).
    pub created: bool,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Loads `tls-cert.pem` and `tls-key.pem` from `dir`, or makes a self-signed
/// certificate for `names` (host names or IP addresses; `localhost` and
/// `127.0.0.1` are always added) and saves it there (the key readable by the
/// owner only). The certificate made here is valid until the year 4096: a
/// device pins it, so it must never need renewing.
pub fn load_or_create(dir: &Path, names: &[String]) -> Result<ServerIdentity, TlsError> {
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    let mut created = false;
    if !cert_path.exists() || !key_path.exists() {
        let mut all: Vec<String> = vec!["localhost".into(), "127.0.0.1".into()];
        for n in names {
            if !all.contains(n) {
                all.push(n.clone());
            }
        }
        let made = rcgen::generate_simple_self_signed(all)
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        write_private(&key_path, made.key_pair.serialize_pem().as_bytes())?;
        std::fs::write(&cert_path, made.cert.pem()).map_err(io_err(&cert_path))?;
        created = true;
    }
    let mut identity = load(&cert_path, &key_path)?;
    identity.created = created;
    Ok(identity)
}

/// Loads a certificate chain (PEM, the server's own certificate first) and
/// its private key (PEM): a county's own certificate instead of the one
/// [`load_or_create`] makes. The fingerprint is that of the first
/// certificate, the one a device pins.
pub fn load(cert_path: &Path, key_path: &Path) -> Result<ServerIdentity, TlsError> {
    let cert_pem = std::fs::read(cert_path).map_err(io_err(cert_path))?;
    let key_pem = std::fs::read(key_path).map_err(io_err(key_path))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::BadPem {
            path: cert_path.display().to_string(),
        })?;
    let Some(leaf) = certs.first() else {
        return Err(TlsError::BadPem {
            path: cert_path.display().to_string(),
        });
    };
    let fingerprint = Fingerprint::of(leaf.as_ref());
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::BadPem {
        path: key_path.display().to_string(),
    })?;
    let config = ServerConfig::builder_with_provider(crate::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(ServerIdentity {
        config: Arc::new(config),
        fingerprint,
        created: false,
    })
}

/// The fingerprint of a certificate file (PEM; the first certificate), for
/// printing without the key.
pub fn fingerprint_of_file(cert_path: &Path) -> Result<Fingerprint, TlsError> {
    let cert_pem = std::fs::read(cert_path).map_err(io_err(cert_path))?;
    let bad = || TlsError::BadPem {
        path: cert_path.display().to_string(),
    };
    let leaf = CertificateDer::pem_slice_iter(&cert_pem)
        .next()
        .ok_or_else(bad)?
        .map_err(|_| bad())?;
    Ok(Fingerprint::of(leaf.as_ref()))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io_err(path))?;
    file.write_all(bytes).map_err(io_err(path))?;
    file.sync_all().map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_print_and_parse() -> Result<(), TlsError> {
        let fp = Fingerprint::of(b"certificate");
        let shown = fp.to_string();
        assert_eq!(shown.len(), 95);
        assert_eq!(Fingerprint::parse(&shown)?, fp);
        assert_eq!(
            Fingerprint::parse(&shown.replace(':', "").to_lowercase())?,
            fp
        );
        assert_eq!(Fingerprint::parse(&format!("SHA256:{shown}"))?, fp);
        assert_eq!(Fingerprint::parse(&format!("sha-256 {}", fp.to_hex()))?, fp);
        // As typed with a Chinese input method: full-width colons and letters.
        let full_width: String = shown
            .chars()
            .map(|c| match c {
                ':' => '：',
                'A'..='F' => char::from_u32(c as u32 + 0xFEE0).unwrap_or(c),
                c => c,
            })
            .collect();
        assert_eq!(Fingerprint::parse(&full_width)?, fp);
        assert_eq!(fp.to_hex(), shown.replace(':', "").to_lowercase());
        let with_g = format!("G{}", &shown[1..]);
        for bad in ["", "AB:CD", &shown[..94], &with_g] {
            assert_eq!(
                Fingerprint::parse(bad).err().map(|e| e.code()),
                Some("tls.bad_fingerprint"),
                "{bad}"
            );
        }
        Ok(())
    }

    #[test]
    fn made_once_then_loaded() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let first = load_or_create(dir.path(), &["10.1.2.3".into()])?;
        assert!(first.created);
        let again = load_or_create(dir.path(), &[])?;
        assert!(!again.created);
        assert_eq!(first.fingerprint, again.fingerprint);
        let cert = dir.path().join(CERT_FILE);
        assert_eq!(fingerprint_of_file(&cert)?, first.fingerprint);
        let own = load(&cert, &dir.path().join(KEY_FILE))?;
        assert_eq!(own.fingerprint, first.fingerprint);
        assert!(!own.created);
        let missing = load(&dir.path().join("none.pem"), &dir.path().join(KEY_FILE));
        assert_eq!(missing.err().map(|e| e.code()), Some("tls.io"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))?
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "key readable by others: {mode:o}");
        }
        std::fs::write(dir.path().join(CERT_FILE), "not pem")?;
        let err = load_or_create(dir.path(), &[]).err().map(|e| e.code());
        assert_eq!(err, Some("tls.bad_pem"));
        Ok(())
    }
}
