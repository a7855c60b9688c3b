//! The thin tokio + rustls driver (docs/umsg.md §1): TLS 1.3 with ALPN `umsg/1`, frames read
//! through [`FrameDecoder`] and written as encoded, timeouts on every step that waits on the
//! peer. All protocol decisions stay in the sans-IO cores; the driver only carries bytes, runs
//! timers, reconnects ([`client`]) and relays media ([`switch`], [`media`]).

pub mod client;
pub mod media;
pub mod switch;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::Error;
use crate::frame::{Frame, FrameDecoder};

/// The ALPN protocol id of UMSG/1.
pub const ALPN: &[u8] = b"umsg/1";
/// Default TCP port of a switch.
pub const DEFAULT_PORT: u16 = 5223;
/// Longest wait for the TCP connection and the TLS handshake together.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait from HELLO to REGISTERED (or REFUSED).
pub const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);
/// The switch closes a connection that sent nothing for this long (docs/umsg.md §3.1).
pub const SWITCH_IDLE: Duration = Duration::from_secs(90);
/// Bytes read from the stream at once.
const READ_CHUNK: usize = 16 * 1024;

fn transport(what: &str, e: impl core::fmt::Display) -> Error {
    Error::Transport(format!("{what}: {e}"))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls client configuration for UMSG: TLS 1.3 only, ALPN `umsg/1`, trusting only the
/// CA certificate(s) in `ca_pem` (the key bundle's `switch_ca_cert`).
pub fn client_tls(ca_pem: &str) -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| transport("switch CA PEM", e))?;
        roots
            .add(cert)
            .map_err(|e| transport("switch CA certificate", e))?;
    }
    if roots.is_empty() {
        return Err(Error::Transport(
            "switch CA PEM holds no certificate".into(),
        ));
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| transport("TLS versions", e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    Ok(Arc::new(cfg))
}

/// A rustls server configuration for a switch: TLS 1.3 only, ALPN `umsg/1` required, the
/// certificate chain and private key from PEM.
pub fn server_tls(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<rustls::ServerConfig>, Error> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| transport("certificate PEM", e))?;
    if chain.is_empty() {
        return Err(Error::Transport(
            "certificate PEM holds no certificate".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| transport("key PEM", e))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| transport("TLS versions", e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| transport("certificate and key", e))?;
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    Ok(Arc::new(cfg))
}

/// Reads frames from a byte stream with a fixed read buffer and the one-frame
/// [`FrameDecoder`] (a length over the cap fails before anything is allocated for it).
/// [`FrameReader::next`] is cancel-safe: no bytes are lost when its future is dropped.
#[derive(Debug)]
pub struct FrameReader<R> {
    io: R,
    dec: FrameDecoder,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader at the start of `io`.
    pub fn new(io: R) -> Self {
        Self {
            io,
            dec: FrameDecoder::new(),
            buf: vec![0; READ_CHUNK].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// The next frame; `Ok(None)` on a clean end of stream between frames. An error (I/O,
    /// malformed frame, stream cut inside a frame) means: close the connection.
    pub async fn next(&mut self) -> Result<Option<Frame>, Error> {
        loop {
            if self.start < self.end {
                let mut input = &self.buf[self.start..self.end];
                let got = self.dec.feed(&mut input);
                self.start = self.end - input.len();
                if let Some(f) = got? {
                    return Ok(Some(f));
                }
            }
            self.start = 0;
            self.end = 0;
            let n = self
                .io
                .read(&mut self.buf)
                .await
                .map_err(|e| transport("read", e))?;
            if n == 0 {
                return match self.dec.buffered() {
                    0 => Ok(None),
                    _ => Err(Error::Transport("stream ended inside a frame".into())),
                };
            }
            self.end = n;
        }
    }
}

/// Encodes `frames` and writes them in one go (then flushes).
pub async fn write_frames<W: AsyncWrite + Unpin>(
    io: &mut W,
    frames: impl IntoIterator<Item = Frame>,
) -> Result<(), Error> {
    let mut out = Vec::new();
    for f in frames {
        f.encode(&mut out)?;
    }
    if out.is_empty() {
        return Ok(());
    }
    io.write_all(&out)
        .await
        .map_err(|e| transport("write", e))?;
    io.flush().await.map_err(|e| transport("write", e))
}

/// Whole seconds since the Unix epoch of `t` (0 before it).
pub(crate) fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The tokio instant of a core's `SystemTime` deadline.
pub(crate) fn deadline(at: SystemTime) -> tokio::time::Instant {
    let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
    tokio::time::Instant::now() + wait
}

/// Resolves once `stop` is true (or its sender is gone).
pub(crate) async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    // The guard is dropped here, so the future stays `Send`.
    let _ = stop.wait_for(|s| *s).await;
}
