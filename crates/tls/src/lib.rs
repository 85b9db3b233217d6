//! HTTPS for the county server and certificate pinning for its devices.
//!
//! A county runs `shouhu-server` on its own machine, usually at an IP address,
//! with no public certificate authority involved. So the server makes a
//! self-signed certificate on first start ([`load_or_create`]), prints its
//! SHA-256 fingerprint, and a device records that fingerprint at enrollment
//! (it comes with the enrollment code). From then on the device accepts exactly
//! that certificate ([`pinned_client_config`]) and nothing else, whatever
//! the operating system's trust store says. At enrollment a person may type
//! only the first [`MIN_PREFIX_DIGITS`] hex digits ([`Pin::Prefix`]); the
//! device then keeps the whole fingerprint of the certificate it was shown
//! ([`Presented`]).
//!
//! # Layout
//!
//! - [`cert`]: making, saving and loading the certificate and key (or a
//!   county's own, [`load`]); fingerprints.
//! - [`listener`]: [`listener::TlsListener`], an `axum::serve::Listener` that
//!   does each TLS handshake in its own task (a slow or silent client cannot
//!   hold up the others) with a timeout.
//! - [`pin`]: the client side — a rustls verifier that compares the server's
//!   certificate with the pin ([`Pin`]: the whole fingerprint, or a typed
//!   prefix at enrollment) and records what it was shown.
//!
//! Every configuration names the `ring` provider explicitly, so the process
//! needs no global default provider.

pub mod cert;
pub mod listener;
pub mod pin;

pub use cert::{fingerprint_of_file, load, load_or_create, Fingerprint, ServerIdentity};
pub use listener::TlsListener;
pub use pin::{
    is_pin_mismatch, pin_client_config, pinned_client_config, Pin, Presented, MIN_PREFIX_DIGITS,
};
/// The rustls these configurations are made with (servers and clients must
/// name the same version's types).
pub use rustls;

use std::sync::Arc;

/// The crypto provider every configuration here uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("certificate file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("certificate or key in {path} is not valid PEM")]
    BadPem { path: String },
    #[error("could not make a certificate: {0}")]
    Generate(String),
    #[error("TLS configuration refused the certificate: {0}")]
    Config(String),
    #[error("not a SHA-256 fingerprint: {0}")]
    BadFingerprint(String),
}

impl TlsError {
    pub fn code(&self) -> &'static str {
        match self {
            TlsError::Io { .. } => "tls.io",
            TlsError::BadPem { .. } => "tls.bad_pem",
            TlsError::Generate(_) => "tls.generate_failed",
            TlsError::Config(_) => "tls.config",
            TlsError::BadFingerprint(_) => "tls.bad_fingerprint",
        }
    }
}
