//! The device side: trust exactly the pinned certificate.

use std::fmt;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::cert::{bad_fingerprint, hex_digits, Fingerprint};
use crate::TlsError;

/// The fewest hex digits of a fingerprint a person may type at enrollment
/// instead of all 64 (64 bits: a forged certificate with the same first 16
/// digits takes about 2^64 signatures to find, far beyond anyone who could
/// sit between a school and its county server).
pub const MIN_PREFIX_DIGITS: usize = 16;

/// What a device checks the server's certificate against.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Pin {
    /// The whole SHA-256 fingerprint: the only form a device stores.
    Exact(Fingerprint),
    /// The first 16 to 63 hex digits (lower case), as typed at enrollment.
    /// The device then stores the whole fingerprint of the certificate it
    /// was shown, and later syncs compare all of it.
    Prefix(String),
}

impl Pin {
    /// Parses what a person typed or pasted: the whole fingerprint, or at
    /// least [`MIN_PREFIX_DIGITS`] hex digits of its beginning; separators
    /// (`:`, `-`, spaces), case and full-width forms do not matter.
    pub fn parse(text: &str) -> Result<Pin, TlsError> {
        let hex = hex_digits(text)?;
        match hex.len() {
            64 => Fingerprint::parse(&hex).map(Pin::Exact),
            n if (MIN_PREFIX_DIGITS..64).contains(&n) => Ok(Pin::Prefix(hex)),
            _ => Err(bad_fingerprint(text)),
        }
    }

    pub fn matches(&self, fingerprint: &Fingerprint) -> bool {
        match self {
            Pin::Exact(f) => f == fingerprint,
            Pin::Prefix(p) => fingerprint.to_hex().starts_with(p.as_str()),
        }
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pin::Exact(fp) => write!(f, "{fp}"),
            Pin::Prefix(p) => {
                let upper = p.to_ascii_uppercase();
                for (i, pair) in upper.as_bytes().chunks(2).enumerate() {
                    if i > 0 {
                        f.write_str(":")?;
                    }
                    f.write_str(std::str::from_utf8(pair).unwrap_or_default())?;
                }
                f.write_str("…")
            }
        }
    }
}

/// The certificate a client configuration was last shown, whether it
/// matched or not: after an enrollment with a [`Pin::Prefix`] it is the
/// whole fingerprint to store, after a mismatch the one to report.
#[derive(Clone, Default, Debug)]
pub struct Presented(Arc<Mutex<Option<Fingerprint>>>);

impl Presented {
    pub fn last(&self) -> Option<Fingerprint> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, fingerprint: Fingerprint) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(fingerprint);
    }
}

#[derive(Debug)]
struct Pinned {
    pin: Pin,
    presented: Presented,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The pin is the whole identity: the exact certificate, whatever name
        // or address the server is reached by.
        let shown = Fingerprint::of(end_entity.as_ref());
        self.presented.record(shown);
        if self.pin.matches(&shown) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client configuration that accepts only the certificate with
/// `fingerprint` (for `reqwest::ClientBuilder::use_preconfigured_tls`).
pub fn pinned_client_config(fingerprint: Fingerprint) -> Result<ClientConfig, TlsError> {
    pin_client_config(Pin::Exact(fingerprint), Presented::default())
}

/// A client configuration that accepts only a certificate matching `pin`,
/// and records every certificate it is shown in `presented`. No root
/// certificates are involved: the system's trust store neither helps nor
/// hinders.
pub fn pin_client_config(pin: Pin, presented: Presented) -> Result<ClientConfig, TlsError> {
    let provider = crate::provider();
    let verifier = Arc::new(Pinned {
        pin,
        presented,
        provider: provider.clone(),
    });
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// Whether an error chain (for example a `reqwest::Error`) says the server's
/// certificate did not match the pin, so the caller can report
/// "certificate mismatch" rather than "server unreachable".
pub fn is_pin_mismatch(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(rustls::Error::InvalidCertificate(
            CertificateError::ApplicationVerificationFailure,
        )) = e.downcast_ref::<rustls::Error>()
        {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if is_pin_mismatch(inner) {
                    return true;
                }
            }
        }
        cur = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_is_the_whole_fingerprint_or_at_least_sixteen_digits() -> Result<(), TlsError> {
        let fp = Fingerprint::of(b"certificate");
        let hex = fp.to_hex();
        assert_eq!(Pin::parse(&fp.to_string())?, Pin::Exact(fp));
        let typed = format!("{} {}", &hex[..8].to_uppercase(), &hex[8..16]);
        let prefix = Pin::parse(&typed)?;
        assert_eq!(prefix, Pin::Prefix(hex[..16].to_string()));
        assert!(prefix.matches(&fp));
        assert!(!prefix.matches(&Fingerprint::of(b"another certificate")));
        assert!(Pin::Exact(fp).matches(&fp));
        assert!(!Pin::Exact(fp).matches(&Fingerprint::of(b"x")));
        assert_eq!(
            Pin::parse(&hex[..16])?.to_string(),
            format!("{}…", &fp.to_string()[..23])
        );
        for bad in ["", &hex[..15], "zz", &format!("{hex}00")] {
            assert_eq!(
                Pin::parse(bad).err().map(|e| e.code()),
                Some("tls.bad_fingerprint"),
                "{bad}"
            );
        }
        Ok(())
    }
}
