//! HTTP for the protocol: one [`Transport`] (one HTTP client, one connection
//! pool) per sync or enrollment. It adds the protocol and credential
//! headers, gzips large request bodies, inflates gzip answers itself (so the
//! byte counts are what crossed the wire), turns error answers into
//! [`SyncError`]s, and retries transient failures with backoff while
//! watching the cancel token.
//!
//! TLS ([`Trust`]): an `https://` server is trusted by its pinned certificate
//! fingerprint alone (`shouhu_tls`), never by the system's root
//! certificates; a certificate that does not match is
//! [`SyncError::CertificateMismatch`] at once, never retried. Plain
//! `http://` is only for a server on this computer (loopback: tests).

use std::io::{Read, Write};
use std::time::Duration;

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use reqwest::header::{
    HeaderMap, ACCEPT, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER,
};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use shouhu_protocol::{PROTOCOL_HEADER, PROTOCOL_VERSION};
use shouhu_store::StoreError;
use shouhu_tls::{is_pin_mismatch, pin_client_config, Fingerprint, Pin, Presented};

use crate::backoff;
use crate::error::{SyncError, WireError};
use crate::options::{CancelToken, SyncOptions};
use crate::progress::RetryNotice;

/// Largest answer accepted after decompression (a full pull page is a few
/// megabytes; this guards against a decompression bomb).
const MAX_BODY: u64 = 256 * 1024 * 1024;

/// Parse and normalise a server address: `http`/`https` with a host, no
/// query or fragment. Returns the base URL (path ending in `/`, so that
/// `v1/push` joins below a reverse proxy's prefix) and the form to store.
pub(crate) fn parse_base(input: &str) -> Result<(Url, String), SyncError> {
    let raw = input.trim();
    let bad = |reason: &str| SyncError::InvalidUrl {
        url: raw.to_string(),
        reason: reason.to_string(),
    };
    let mut url = Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the address must start with http:// or https://"));
    }
    if !matches!(url.host_str(), Some(h) if !h.is_empty()) {
        return Err(bad("the address has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("the address must not have a query or fragment"));
    }
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    let stored = url.as_str().trim_end_matches('/').to_string();
    Ok((url, stored))
}

/// Whether `url` names this computer (`localhost`, `127.0.0.0/8`, `::1`):
/// the only place plain `http://` is accepted.
pub(crate) fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// How a transport trusts the server.
#[derive(Debug, Clone)]
pub(crate) enum Trust {
    /// Plain `http://` (loopback only; the caller checked).
    Plain,
    /// `https://`, accepting only a certificate that matches `pin`.
    Pinned {
        pin: Pin,
        /// For the error message: enrolling (the admin's fingerprint) or
        /// syncing (the one stored at enrollment).
        enrolling: bool,
    },
}

/// A pinned transport's state: what it expects and what it was shown.
#[derive(Debug, Clone)]
struct PinState {
    expected: String,
    presented: Presented,
    enrolling: bool,
}

/// Which transient failures a request may be retried after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Idempotent requests (health, push, pull, rotate): any transient
    /// failure.
    Always,
    /// Requests that must not run twice (enrollment spends a one-time code):
    /// only failures where the server surely did not act (connection never
    /// made, 429, 503).
    UnsentOnly,
}

/// A request body, encoded once and resent as is on retries.
#[derive(Debug, Clone)]
pub(crate) struct Payload {
    bytes: Vec<u8>,
    gzip: bool,
}

impl Payload {
    pub(crate) fn json<T: Serialize>(value: &T, gzip_above: usize) -> Result<Payload, SyncError> {
        let bytes = serde_json::to_vec(value).map_err(|e| SyncError::Store(StoreError::Json(e)))?;
        if bytes.len() > gzip_above {
            let mut enc = GzEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::fast());
            // Writing into a Vec cannot fail; if it somehow did, send plain.
            if let Ok(gz) = enc.write_all(&bytes).and_then(|_| enc.finish()) {
                return Ok(Payload {
                    bytes: gz,
                    gzip: true,
                });
            }
        }
        Ok(Payload { bytes, gzip: false })
    }
}

/// One API call.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    method: Method,
    path: std::borrow::Cow<'static, str>,
    query: Vec<(&'static str, String)>,
    body: Option<Payload>,
    retry: Retry,
}

impl Call {
    pub(crate) fn get(
        path: impl Into<std::borrow::Cow<'static, str>>,
        query: Vec<(&'static str, String)>,
    ) -> Call {
        Call {
            method: Method::GET,
            path: path.into(),
            query,
            body: None,
            retry: Retry::Always,
        }
    }

    pub(crate) fn post(
        path: impl Into<std::borrow::Cow<'static, str>>,
        body: Payload,
        retry: Retry,
    ) -> Call {
        Call {
            method: Method::POST,
            path: path.into(),
            query: Vec::new(),
            body: Some(body),
            retry,
        }
    }
}

/// What one attempt's failure allows.
enum Failure {
    Transient {
        error: SyncError,
        /// The server surely did not act on the request.
        unsent: bool,
        retry_after: Option<Duration>,
    },
    Fatal(SyncError),
}

/// Byte and retry counts so far.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counters {
    pub up: u64,
    pub down: u64,
    pub retries: u32,
}

impl Counters {
    pub(crate) fn add(&mut self, o: Counters) {
        self.up += o.up;
        self.down += o.down;
        self.retries += o.retries;
    }
}

/// Called before each retry wait.
pub(crate) type OnRetry<'a> = dyn FnMut(RetryNotice, Counters) + Send + 'a;

pub(crate) struct Transport {
    client: reqwest::Client,
    base: Url,
    credential: Option<String>,
    pin: Option<PinState>,
    pub(crate) counters: Counters,
    max_retries: u32,
    backoff_base: Duration,
    backoff_max: Duration,
}

impl Transport {
    pub(crate) fn new(
        base: Url,
        credential: Option<String>,
        trust: Trust,
        opts: &SyncOptions,
    ) -> Result<Transport, SyncError> {
        let builder = reqwest::Client::builder()
            .connect_timeout(opts.connect_timeout)
            .timeout(opts.request_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            // The protocol has no redirects; following one could leave the
            // pinned server (or TLS) with the credential.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("shouhu-sync/", env!("CARGO_PKG_VERSION")));
        let (builder, pin) = match trust {
            Trust::Plain => (builder, None),
            Trust::Pinned { pin, enrolling } => {
                let presented = Presented::default();
                let expected = pin.to_string();
                let config =
                    pin_client_config(pin, presented.clone()).map_err(|e| SyncError::Network {
                        detail: e.to_string(),
                    })?;
                (
                    builder.use_preconfigured_tls(config).https_only(true),
                    Some(PinState {
                        expected,
                        presented,
                        enrolling,
                    }),
                )
            }
        };
        let client = builder.build().map_err(|e| SyncError::Network {
            detail: error_chain(&e),
        })?;
        Ok(Transport {
            client,
            base,
            credential,
            pin,
            counters: Counters::default(),
            max_retries: opts.max_retries,
            backoff_base: opts.backoff_base,
            backoff_max: opts.backoff_max,
        })
    }

    /// A second transport to the same server with the same connection pool
    /// and credential, counting from zero (for a request run beside this
    /// one's; add its counters back when it ends).
    pub(crate) fn fork(&self) -> Transport {
        Transport {
            client: self.client.clone(),
            base: self.base.clone(),
            credential: self.credential.clone(),
            pin: self.pin.clone(),
            counters: Counters::default(),
            max_retries: self.max_retries,
            backoff_base: self.backoff_base,
            backoff_max: self.backoff_max,
        }
    }

    /// The certificate the server last showed (pinned transports).
    pub(crate) fn presented(&self) -> Option<Fingerprint> {
        self.pin.as_ref().and_then(|p| p.presented.last())
    }

    /// Run `call`, retrying transient failures; the answer's body (inflated).
    pub(crate) async fn call(
        &mut self,
        call: &Call,
        cancel: &CancelToken,
        on_retry: &mut OnRetry<'_>,
    ) -> Result<Vec<u8>, SyncError> {
        let mut attempt: u32 = 0;
        loop {
            cancel.check()?;
            let outcome = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(SyncError::Cancelled),
                r = self.send_once(call) => r,
            };
            let (error, retry_after) = match outcome {
                Ok(body) => return Ok(body),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Transient {
                    error,
                    unsent,
                    retry_after,
                }) => {
                    if call.retry == Retry::UnsentOnly && !unsent {
                        return Err(error);
                    }
                    (error, retry_after)
                }
            };
            if attempt >= self.max_retries {
                return Err(error);
            }
            attempt += 1;
            let delay = backoff::delay(
                attempt,
                self.backoff_base,
                self.backoff_max,
                retry_after,
                &mut rand::thread_rng(),
            );
            self.counters.retries += 1;
            on_retry(
                RetryNotice {
                    attempt,
                    max_retries: self.max_retries,
                    delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    code: error.server_code().unwrap_or(error.code()).to_string(),
                },
                self.counters,
            );
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(SyncError::Cancelled),
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    async fn send_once(&mut self, call: &Call) -> Result<Vec<u8>, Failure> {
        let mut url = self.base.join(&call.path).map_err(|e| {
            Failure::Fatal(SyncError::InvalidUrl {
                url: self.base.to_string(),
                reason: e.to_string(),
            })
        })?;
        if !call.query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(call.query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let mut rb = self
            .client
            .request(call.method.clone(), url)
            .header(PROTOCOL_HEADER, PROTOCOL_VERSION.to_string())
            .header(ACCEPT, "application/json")
            .header(ACCEPT_ENCODING, "gzip");
        if let Some(c) = &self.credential {
            rb = rb.bearer_auth(c);
        }
        let sent = call.body.as_ref().map_or(0, |p| p.bytes.len() as u64);
        if let Some(p) = &call.body {
            rb = rb.header(CONTENT_TYPE, "application/json");
            if p.gzip {
                rb = rb.header(CONTENT_ENCODING, "gzip");
            }
            rb = rb.body(p.bytes.clone());
        }
        let resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => {
                if let Some(pin) = &self.pin {
                    if is_pin_mismatch(&e) {
                        // Not a network blip: never retried, nothing sent.
                        return Err(Failure::Fatal(SyncError::CertificateMismatch {
                            expected: pin.expected.clone(),
                            found: pin.presented.last().map(|f| f.to_string()),
                            at_enrollment: pin.enrolling,
                        }));
                    }
                }
                let unsent = e.is_connect();
                if !unsent {
                    self.counters.up += sent;
                }
                return Err(Failure::Transient {
                    error: SyncError::Network {
                        detail: error_chain(&e),
                    },
                    unsent,
                    retry_after: None,
                });
            }
        };
        self.counters.up += sent;
        let status = resp.status();
        let gzip = is_gzip(resp.headers());
        let retry_after = retry_after(resp.headers());
        let raw = resp.bytes().await.map_err(|e| Failure::Transient {
            error: SyncError::Network {
                detail: error_chain(&e),
            },
            unsent: false,
            retry_after: None,
        })?;
        self.counters.down += raw.len() as u64;
        let body = if gzip {
            inflate(&raw).map_err(|detail| {
                // A cut gzip stream is a dropped connection; retry it.
                Failure::Transient {
                    error: SyncError::BadResponse { detail },
                    unsent: false,
                    retry_after: None,
                }
            })?
        } else {
            raw.to_vec()
        };
        if status.is_success() {
            return Ok(body);
        }
        let error = error_from_answer(status, &body);
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            Err(Failure::Transient {
                error,
                unsent: matches!(
                    status,
                    StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                ),
                retry_after,
            })
        } else {
            Err(Failure::Fatal(error))
        }
    }
}

/// Decode a 2xx answer.
pub(crate) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, SyncError> {
    serde_json::from_slice(body).map_err(|e| SyncError::BadResponse {
        detail: format!("{e}; answer begins {:?}", snippet(body)),
    })
}

fn error_from_answer(status: StatusCode, body: &[u8]) -> SyncError {
    match serde_json::from_slice::<WireError>(body) {
        Ok(w) => SyncError::from_server(status.as_u16(), w),
        Err(_) => SyncError::Server {
            status: status.as_u16(),
            code: format!("http.{}", status.as_u16()),
            message: snippet(body),
            details: Value::Null,
        },
    }
}

fn is_gzip(h: &HeaderMap) -> bool {
    h.get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"))
}

/// `Retry-After` in seconds (the HTTP-date form is not used by our server).
fn retry_after(h: &HeaderMap) -> Option<Duration> {
    h.get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

fn inflate(raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(raw.len() * 4);
    GzDecoder::new(raw)
        .take(MAX_BODY + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("cannot decompress the answer: {e}"))?;
    if out.len() as u64 > MAX_BODY {
        return Err(format!("the answer is larger than {MAX_BODY} bytes"));
    }
    Ok(out)
}

fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(200).collect()
}

/// An error with its causes (reqwest's own message omits the interesting
/// part: "connection refused", "timed out"...).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised() -> Result<(), SyncError> {
        let (u, s) = parse_base(" https://county.example.cn ")?;
        assert_eq!(u.as_str(), "https://county.example.cn/");
        assert_eq!(s, "https://county.example.cn");
        let (u, s) = parse_base("http://10.0.0.5:8080/shouhu/")?;
        assert_eq!(
            u.join("v1/push").map(String::from).ok().as_deref(),
            Some("http://10.0.0.5:8080/shouhu/v1/push")
        );
        assert_eq!(s, "http://10.0.0.5:8080/shouhu");
        for bad in [
            "county.example.cn",
            "ftp://x",
            "https://x/?a=1",
            "",
            "http://",
        ] {
            let e = parse_base(bad).err();
            assert_eq!(e.map(|e| e.code()), Some("sync.invalid_url"), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn only_this_computer_is_loopback() -> Result<(), SyncError> {
        for (url, local) in [
            ("http://127.0.0.1:8470", true),
            ("http://127.8.0.1", true),
            ("http://LOCALHOST:1", true),
            ("http://[::1]:8470", true),
            ("http://10.0.0.5:8470", false),
            ("http://localhost.example.cn", false),
            ("https://shouhu.example.cn", false),
        ] {
            assert_eq!(is_loopback(&parse_base(url)?.0), local, "{url}");
        }
        Ok(())
    }

    #[test]
    fn large_bodies_are_gzipped_and_inflate_back() -> Result<(), SyncError> {
        let small = Payload::json(&serde_json::json!({"a": 1}), 1024)?;
        assert!(!small.gzip);
        let big: Vec<String> = (0..500).map(|i| format!("变更{i}")).collect();
        let p = Payload::json(&big, 1024)?;
        assert!(p.gzip);
        let plain = serde_json::to_vec(&big).map_err(|e| SyncError::Store(e.into()))?;
        assert!(p.bytes.len() < plain.len() / 2);
        assert_eq!(inflate(&p.bytes).ok(), Some(plain));
        assert!(inflate(b"not gzip").is_err());
        Ok(())
    }

    #[test]
    fn non_json_error_answers_keep_the_status() {
        let e = error_from_answer(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>");
        assert_eq!(e.code(), "sync.server");
        assert_eq!(e.server_code(), Some("http.502"));
        let e = error_from_answer(
            StatusCode::UNAUTHORIZED,
            br#"{"code":"auth.invalid","message":"x","details":null}"#,
        );
        assert_eq!(e.code(), "auth.invalid");
    }
}
