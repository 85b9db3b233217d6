//! Password-sealed files of any size (exports), written and read as streams.
//!
//! [`crate::keys::seal_with_password`] seals a byte slice in one piece; an
//! export of a township can be hundreds of megabytes, which an old laptop
//! should not hold twice in memory. [`SealWriter`] cuts the plain bytes into
//! chunks of [`CHUNK`] bytes, each sealed with XChaCha20-Poly1305 under a key
//! Argon2id derives from the password:
//!
//! ```text
//! header  = "SHOUHUS1" | salt (16) | Argon2id m_kib, t, p (u32 LE each) | nonce prefix (16)
//!           | password check (16) = HKDF-SHA256(key, "shouhu stream check v1")
//! chunk i = seal(key, nonce = prefix | i (u64 BE), aad = header | last?1:0, plain_i)
//! ```
//!
//! Every chunk is authenticated with the header (a changed parameter fails
//! like a changed byte) and its position; only the final chunk is marked
//! last, so a file cut short, chunks reordered or dropped, all fail
//! ([`AuthError::DecryptFailed`]). The password check tells a wrong password
//! ([`AuthError::WrongPassword`], before any byte is read) from a damaged
//! file.
//!
//! Errors reach `Read`/`Write` callers as `std::io::Error`s of kind
//! `InvalidData` whose inner error is the [`AuthError`] ([`auth_error`] gets
//! it back).

use std::io::{self, BufRead, BufReader, Read, Write};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::error::AuthError;
use crate::keys::{derive, read_kdf};
use crate::password::KdfParams;

pub const STREAM_MAGIC: &[u8; 8] = b"SHOUHUS1";
/// Plain bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
const SALT_LEN: usize = 16;
const PREFIX_LEN: usize = 16;
const CHECK_LEN: usize = 16;
const PREFIX_AT: usize = 8 + SALT_LEN + 12;
const HEADER_LEN: usize = PREFIX_AT + PREFIX_LEN + CHECK_LEN;

/// Whether `bytes` (the first bytes of a file) start a sealed stream.
pub fn is_sealed_stream(bytes: &[u8]) -> bool {
    bytes.starts_with(STREAM_MAGIC)
}

/// The [`AuthError`] inside an I/O error from [`SealWriter`] or
/// [`OpenReader`], if that is what it was.
pub fn auth_error(e: &io::Error) -> Option<AuthError> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<AuthError>())
        .cloned()
}

fn io_err(e: AuthError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

fn password_check(key: &[u8; 32]) -> Result<[u8; CHECK_LEN], AuthError> {
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(None, key);
    let mut out = [0u8; CHECK_LEN];
    hk.expand(b"shouhu stream check v1", &mut out)
        .map_err(|_| AuthError::Malformed { what: "hkdf" })?;
    Ok(out)
}

fn nonce(prefix: &[u8], index: u64) -> XNonce {
    let mut n = [0u8; 24];
    n[..PREFIX_LEN].copy_from_slice(prefix);
    n[PREFIX_LEN..].copy_from_slice(&index.to_be_bytes());
    XNonce::from(n)
}

fn aad(header: &[u8], last: bool) -> Vec<u8> {
    let mut a = Vec::with_capacity(header.len() + 1);
    a.extend_from_slice(header);
    a.push(u8::from(last));
    a
}

/// Seals what is written to it; [`SealWriter::finish`] writes the last chunk
/// and must be called (a writer dropped without it leaves a file that reads
/// as cut short).
pub struct SealWriter<W: Write> {
    inner: W,
    cipher: XChaCha20Poly1305,
    header: Vec<u8>,
    buf: Zeroizing<Vec<u8>>,
    index: u64,
}

impl<W: Write> SealWriter<W> {
    pub fn new(mut inner: W, password: &str, kdf: KdfParams) -> io::Result<SealWriter<W>> {
        let mut salt = [0u8; SALT_LEN];
        let mut prefix = [0u8; PREFIX_LEN];
        OsRng
            .try_fill_bytes(&mut salt)
            .and_then(|_| OsRng.try_fill_bytes(&mut prefix))
            .map_err(|_| io_err(AuthError::Random))?;
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(STREAM_MAGIC);
        header.extend_from_slice(&salt);
        for v in [kdf.m_kib, kdf.t, kdf.p] {
            header.extend_from_slice(&v.to_le_bytes());
        }
        header.extend_from_slice(&prefix);
        let key = derive(password, &salt, kdf).map_err(io_err)?;
        header.extend_from_slice(&password_check(&key).map_err(io_err)?);
        inner.write_all(&header)?;
        Ok(SealWriter {
            inner,
            cipher: XChaCha20Poly1305::new(key.as_ref().into()),
            header,
            buf: Zeroizing::new(Vec::with_capacity(CHUNK)),
            index: 0,
        })
    }

    fn emit(&mut self, last: bool) -> io::Result<()> {
        let sealed = self
            .cipher
            .encrypt(
                &nonce(&self.header[PREFIX_AT..PREFIX_AT + PREFIX_LEN], self.index),
                Payload {
                    msg: &self.buf,
                    aad: &aad(&self.header, last),
                },
            )
            .map_err(|_| io_err(AuthError::Malformed { what: "seal" }))?;
        self.inner.write_all(&sealed)?;
        self.buf.clear();
        self.index += 1;
        Ok(())
    }

    /// Seals the rest as the last chunk, flushes, and gives the writer back.
    pub fn finish(mut self) -> io::Result<W> {
        self.emit(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for SealWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        // A full chunk is sealed only once more bytes come: the last chunk
        // may be full, and only `finish` knows it is the last.
        if self.buf.len() == CHUNK && !data.is_empty() {
            self.emit(false)?;
        }
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads the plain bytes of a sealed stream, checking each chunk.
pub struct OpenReader<R: Read> {
    inner: BufReader<R>,
    cipher: XChaCha20Poly1305,
    header: Vec<u8>,
    plain: Zeroizing<Vec<u8>>,
    at: usize,
    index: u64,
    done: bool,
}

impl<R: Read> OpenReader<R> {
    /// Reads the header and derives the key (no chunk is read yet: a wrong
    /// password shows at the first read).
    pub fn new(inner: R, password: &str) -> io::Result<OpenReader<R>> {
        let mut inner = BufReader::with_capacity(CHUNK + TAG + 1, inner);
        let mut header = vec![0u8; HEADER_LEN];
        inner.read_exact(&mut header).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io_err(AuthError::Malformed {
                    what: "sealed_file",
                })
            } else {
                e
            }
        })?;
        if !is_sealed_stream(&header) {
            return Err(io_err(AuthError::Malformed {
                what: "sealed_file",
            }));
        }
        let kdf = read_kdf(&header[8 + SALT_LEN..PREFIX_AT]).map_err(io_err)?;
        let key = derive(password, &header[8..8 + SALT_LEN], kdf).map_err(io_err)?;
        if header[PREFIX_AT + PREFIX_LEN..] != password_check(&key).map_err(io_err)? {
            return Err(io_err(AuthError::WrongPassword));
        }
        Ok(OpenReader {
            inner,
            cipher: XChaCha20Poly1305::new(key.as_ref().into()),
            header,
            plain: Zeroizing::new(Vec::new()),
            at: 0,
            index: 0,
            done: false,
        })
    }

    fn next_chunk(&mut self) -> io::Result<()> {
        let mut sealed = Vec::with_capacity(CHUNK + TAG);
        (&mut self.inner)
            .take((CHUNK + TAG) as u64)
            .read_to_end(&mut sealed)?;
        // Last when nothing follows (a last chunk may be full).
        let last = sealed.len() < CHUNK + TAG || self.inner.fill_buf()?.is_empty();
        let opened = if sealed.len() < TAG {
            None
        } else {
            self.cipher
                .decrypt(
                    &nonce(&self.header[PREFIX_AT..PREFIX_AT + PREFIX_LEN], self.index),
                    Payload {
                        msg: &sealed,
                        aad: &aad(&self.header, last),
                    },
                )
                .ok()
        };
        match opened {
            Some(p) => {
                self.plain = Zeroizing::new(p);
                self.at = 0;
                self.index += 1;
                self.done = last;
                Ok(())
            }
            None => Err(io_err(AuthError::DecryptFailed)),
        }
    }
}

impl<R: Read> Read for OpenReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.plain.len() {
            if self.done || out.is_empty() {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let n = out.len().min(self.plain.len() - self.at);
        out[..n].copy_from_slice(&self.plain[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::password::TEST_PARAMS;

    fn seal(plain: &[u8], password: &str) -> io::Result<Vec<u8>> {
        let mut w = SealWriter::new(Vec::new(), password, TEST_PARAMS)?;
        // Odd-sized writes, to cross chunk boundaries mid-write.
        for part in plain.chunks(7_777) {
            w.write_all(part)?;
        }
        w.finish()
    }

    fn open(sealed: &[u8], password: &str) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        OpenReader::new(sealed, password)?.read_to_end(&mut out)?;
        Ok(out)
    }

    fn code(r: io::Result<Vec<u8>>) -> Option<&'static str> {
        r.err().and_then(|e| auth_error(&e)).map(|e| e.code())
    }

    fn sample(len: usize) -> Vec<u8> {
        "张三,留守儿童,外出务工\n"
            .bytes()
            .cycle()
            .take(len)
            .collect()
    }

    #[test]
    fn round_trips_every_size_around_the_chunk_edges() -> io::Result<()> {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 17] {
            let plain = sample(len);
            let sealed = seal(&plain, "export-2026")?;
            assert!(is_sealed_stream(&sealed));
            assert_eq!(open(&sealed, "export-2026")?, plain, "length {len}");
        }
        Ok(())
    }

    #[test]
    fn the_sealed_bytes_hide_the_text() -> io::Result<()> {
        let plain = sample(3 * CHUNK);
        let sealed = seal(&plain, "export-2026")?;
        let needle = "张三".as_bytes();
        assert!(!sealed.windows(needle.len()).any(|w| w == needle));
        Ok(())
    }

    #[test]
    fn a_wrong_password_is_named() -> io::Result<()> {
        let sealed = seal(&sample(100), "export-2026")?;
        assert_eq!(code(open(&sealed, "guess")), Some("auth.wrong_password"));
        Ok(())
    }

    #[test]
    fn cut_reordered_or_changed_files_fail() -> io::Result<()> {
        let plain = sample(2 * CHUNK + 10);
        let sealed = seal(&plain, "pw")?;
        let chunk = CHUNK + TAG;
        // Cut at a chunk boundary: the remaining last chunk is not marked last.
        let cut = &sealed[..HEADER_LEN + chunk];
        assert_eq!(code(open(cut, "pw")), Some("crypto.decrypt_failed"));
        let cut2 = &sealed[..HEADER_LEN + 2 * chunk];
        assert_eq!(code(open(cut2, "pw")), Some("crypto.decrypt_failed"));
        // Cut mid-chunk.
        let cut3 = &sealed[..sealed.len() - 5];
        assert_eq!(code(open(cut3, "pw")), Some("crypto.decrypt_failed"));
        // Two chunks swapped.
        let mut swapped = sealed[..HEADER_LEN].to_vec();
        swapped.extend_from_slice(&sealed[HEADER_LEN + chunk..HEADER_LEN + 2 * chunk]);
        swapped.extend_from_slice(&sealed[HEADER_LEN..HEADER_LEN + chunk]);
        swapped.extend_from_slice(&sealed[HEADER_LEN + 2 * chunk..]);
        assert!(code(open(&swapped, "pw")).is_some());
        // One byte changed in the body, then in the header's parameters.
        let mut flipped = sealed.clone();
        flipped[HEADER_LEN + chunk + 3] ^= 1;
        assert_eq!(code(open(&flipped, "pw")), Some("crypto.decrypt_failed"));
        let mut params = sealed.clone();
        params[8 + SALT_LEN + 4] ^= 1;
        assert!(code(open(&params, "pw")).is_some());
        let mut prefix = sealed.clone();
        prefix[PREFIX_AT] ^= 1;
        assert_eq!(code(open(&prefix, "pw")), Some("crypto.decrypt_failed"));
        // A one-chunk file cut short is damage, not a wrong password.
        let small = seal(&sample(100), "pw")?;
        assert_eq!(
            code(open(&small[..small.len() - 3], "pw")),
            Some("crypto.decrypt_failed")
        );
        // Not a sealed file at all.
        assert_eq!(
            code(open(b"{\"type\":\"child\"}\n", "pw")),
            Some("crypto.malformed")
        );
        Ok(())
    }
}
