//! The switch's SRTP media relay (docs/umsg.md §5.1): per call session two UDP ports, one per
//! leg, each announced as that leg's MEDIA_ADDR. The first datagram arriving on a leg's port
//! latches that leg's remote address; datagrams of 12 bytes or more are then forwarded, as they
//! are (never decrypted), out of the other leg's port to the other leg's latched address.
//! Datagrams from any other source are dropped. The forwarding loop is allocation-free.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// Shortest datagram that is forwarded (an RTP header); shorter ones only latch.
pub const MIN_FORWARD: usize = 12;
/// Largest datagram relayed; longer ones are truncated by the socket and dropped.
const MAX_DATAGRAM: usize = 2048;

/// Where relay ports are bound and what is announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// Address the relay sockets bind to.
    pub bind: IpAddr,
    /// Host (name or IP) announced in MEDIA_ADDR; the bind address when `None`.
    pub public_host: Option<String>,
    /// Port range `low..=high` for relay sockets; ephemeral ports when `None`.
    pub ports: Option<(u16, u16)>,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            public_host: None,
            ports: None,
        }
    }
}

/// Allocates relay sockets from the configured range (ports in use, e.g. by another switch on
/// the same host, are skipped).
#[derive(Debug)]
pub struct RelayPool {
    cfg: MediaConfig,
    public: String,
    cursor: u32,
}

impl RelayPool {
    /// A pool for `cfg`.
    pub fn new(cfg: MediaConfig) -> Self {
        let public = match &cfg.public_host {
            Some(h) => h.clone(),
            None => cfg.bind.to_string(),
        };
        // An IPv6 literal is bracketed in host:port.
        let public = match public.parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => format!("[{public}]"),
            _ => public,
        };
        Self {
            cfg,
            public,
            cursor: 0,
        }
    }

    fn bind_one(&mut self) -> io::Result<std::net::UdpSocket> {
        let Some((lo, hi)) = self.cfg.ports else {
            return std::net::UdpSocket::bind(SocketAddr::new(self.cfg.bind, 0));
        };
        let span = u32::from(hi.saturating_sub(lo)) + 1;
        for _ in 0..span {
            let port = u32::from(lo) + self.cursor % span;
            self.cursor = (self.cursor + 1) % span;
            let port = u16::try_from(port).unwrap_or(hi);
            if let Ok(s) = std::net::UdpSocket::bind(SocketAddr::new(self.cfg.bind, port)) {
                return Ok(s);
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "no free port in the RTP port range",
        ))
    }

    /// Two fresh sockets for one call session (caller leg, callee leg).
    pub fn allocate(&mut self) -> io::Result<Relay> {
        let a = self.bind_one()?;
        let b = self.bind_one()?;
        let addr = |s: &std::net::UdpSocket| -> io::Result<String> {
            Ok(format!("{}:{}", self.public, s.local_addr()?.port()))
        };
        let announced = (addr(&a)?, addr(&b)?);
        a.set_nonblocking(true)?;
        b.set_nonblocking(true)?;
        Ok(Relay {
            a: UdpSocket::from_std(a)?,
            b: UdpSocket::from_std(b)?,
            announced,
        })
    }
}

/// The two bound sockets of a session, not yet relaying.
#[derive(Debug)]
pub struct Relay {
    a: UdpSocket,
    b: UdpSocket,
    announced: (String, String),
}

impl Relay {
    /// The announced `host:port` of the caller leg (ROUTED) and of the callee leg (BANG).
    pub fn announced(&self) -> (&str, &str) {
        (&self.announced.0, &self.announced.1)
    }

    /// The local addresses of the caller-leg and callee-leg sockets.
    pub fn local_addrs(&self) -> io::Result<(SocketAddr, SocketAddr)> {
        Ok((self.a.local_addr()?, self.b.local_addr()?))
    }

    /// Starts relaying; stops (and frees both ports) when the returned task is dropped.
    pub fn spawn(self) -> RelayTask {
        RelayTask(tokio::spawn(relay(self.a, self.b)))
    }
}

/// A running relay; dropping it stops the relay and closes its sockets.
#[derive(Debug)]
pub struct RelayTask(JoinHandle<()>);

impl Drop for RelayTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The latching rule: the first source seen on a leg's port is that leg; later datagrams
/// count only from it.
fn latch(peer: &mut Option<SocketAddr>, src: SocketAddr) -> bool {
    match peer {
        Some(p) => *p == src,
        None => {
            *peer = Some(src);
            true
        }
    }
}

async fn relay(a: UdpSocket, b: UdpSocket) {
    let mut buf_a = [0u8; MAX_DATAGRAM];
    let mut buf_b = [0u8; MAX_DATAGRAM];
    let mut peer_a = None;
    let mut peer_b = None;
    loop {
        // Which leg a datagram came in on; the other leg is where it goes.
        let (n, src, from_a) = tokio::select! {
            r = a.recv_from(&mut buf_a) => match r {
                Ok((n, src)) => (n, src, true),
                Err(_) => continue,
            },
            r = b.recv_from(&mut buf_b) => match r {
                Ok((n, src)) => (n, src, false),
                Err(_) => continue,
            },
        };
        let (me, other, out, data) = if from_a {
            (&mut peer_a, peer_b, &b, &buf_a[..n])
        } else {
            (&mut peer_b, peer_a, &a, &buf_b[..n])
        };
        if !latch(me, src) || !(MIN_FORWARD..MAX_DATAGRAM).contains(&n) {
            continue;
        }
        if let Some(dst) = other {
            // A lost datagram is what UDP does; the next one goes out again.
            let _ = out.send_to(data, dst).await;
        }
    }
}
