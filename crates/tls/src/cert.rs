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

    /// Parses 64 hex digits, with or without `:` separators, any case.
    pub fn parse(text: &str) -> Result<Fingerprint, TlsError> {
        let hex: String = text
            .trim()
            .trim_start_matches("SHA256:")
            .chars()
            .filter(|c| *c != ':' && !c.is_whitespace())
            .collect();
        let bad = || TlsError::BadFingerprint(text.chars().take(120).collect());
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(Fingerprint(out))
    }
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
/// owner only).
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
    let cert_pem = std::fs::read(&cert_path).map_err(io_err(&cert_path))?;
    let key_pem = std::fs::read(&key_path).map_err(io_err(&key_path))?;
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
        created,
    })
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
