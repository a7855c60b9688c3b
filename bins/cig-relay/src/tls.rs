//! The control port over TCP with mutual TLS (docs/relay-control.md "Transports"): the rustls
//! server configuration (TLS 1.3, a client certificate chaining to `--tls-client-ca` required)
//! and [`TlsStream`], a non-blocking rustls server connection over a mio TCP stream that reads
//! and writes plaintext like the Unix socket does.

use std::io::{self, ErrorKind, Read, Write};
use std::path::Path;
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};

/// Largest PEM file read.
const MAX_PEM: u64 = 1 << 20;

fn pem(path: &Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    file.take(MAX_PEM)
        .read_to_end(&mut out)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(out)
}

/// The server side of the control port: `cert`/`key` are the relay's certificate chain and
/// key, `client_ca` the CA(s) a controller's client certificate must chain to.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: &Path,
) -> Result<Arc<ServerConfig>, String> {
    let chain = CertificateDer::pem_slice_iter(&pem(cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate", cert.display()));
    }
    let key =
        PrivateKeyDer::from_pem_slice(&pem(key)?).map_err(|e| format!("{}: {e}", key.display()))?;
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&pem(client_ca)?) {
        let c = c.map_err(|e| format!("{}: {e}", client_ca.display()))?;
        roots
            .add(c)
            .map_err(|e| format!("{}: {e}", client_ca.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{}: no CA certificate", client_ca.display()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("client CA: {e}"))?;
    ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map(Arc::new)
        .map_err(|e| format!("certificate and key: {e}"))
}

/// A controller's TLS connection: plaintext in and out, ciphertext on the non-blocking socket.
#[derive(Debug)]
pub struct TlsStream {
    /// The TCP connection (registered with the control loop's poll).
    pub tcp: TcpStream,
    tls: ServerConnection,
}

impl TlsStream {
    /// A server connection over an accepted `tcp`.
    pub fn new(tcp: TcpStream, config: Arc<ServerConfig>) -> io::Result<TlsStream> {
        let tls = ServerConnection::new(config).map_err(io::Error::other)?;
        Ok(TlsStream { tcp, tls })
    }

    /// Writes what rustls has queued (handshake, records, alerts) until the socket is full.
    pub fn flush_tls(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.tcp) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Ciphertext is waiting for the socket to take it.
    pub fn pending(&self) -> bool {
        self.tls.wants_write()
    }

    /// Queues a close_notify alert (sent by the next [`TlsStream::flush_tls`]).
    pub fn close(&mut self) {
        self.tls.send_close_notify();
    }
}

impl Read for TlsStream {
    /// Plaintext, `Ok(0)` when the peer closed, `WouldBlock` when nothing is there yet; a
    /// failed handshake (e.g. an untrusted client certificate) is `InvalidData`, after the
    /// alert was sent.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.tls.read_tls(&mut self.tcp)? == 0 {
                return Ok(0);
            }
            let processed = self.tls.process_new_packets();
            // Handshake messages or an alert to send, whatever the outcome.
            let flushed = self.flush_tls();
            processed.map_err(|e| io::Error::new(ErrorKind::InvalidData, e))?;
            flushed?;
        }
    }
}

impl Write for TlsStream {
    /// Takes plaintext (buffered by rustls until the handshake is done) and sends what the
    /// socket accepts; `WouldBlock` when rustls's buffer is full.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.tls.writer().write(buf)?;
        self.flush_tls()?;
        if n == 0 && !buf.is_empty() {
            return Err(ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_tls()
    }
}
