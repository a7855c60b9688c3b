//! The switch's SRTP media relay (docs/umsg.md §5.1): per call session two UDP ports, one per
//! leg, each announced as that leg's MEDIA_ADDR. The first datagram arriving on a leg's port
//! from the IP address of that leg's signalling connection latches that leg's remote address
//! (with [`Latch::Any`], the first datagram from anywhere); datagrams of 12 bytes or more are
//! then forwarded, as they are (never decrypted), out of the other leg's port to the other
//! leg's latched address. Datagrams from any other source are dropped. The forwarding loop is
//! allocation-free.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// Shortest datagram that is forwarded (an RTP header); shorter ones only latch.
pub const MIN_FORWARD: usize = 12;
/// Largest datagram relayed; longer ones are truncated by the socket and dropped.
const MAX_DATAGRAM: usize = 2048;

/// Which datagram may latch a leg's port (docs/umsg.md §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Latch {
    /// Only one from the IP address that the leg's signalling (TLS) connection comes from, so
    /// a stray or hostile sender elsewhere cannot take the leg over (the default).
    #[default]
    ConnectionIp,
    /// The first datagram from anywhere (for endpoints whose media leaves from another address
    /// than their signalling, e.g. a gateway with a separate media relay host).
    Any,
}

/// Where relay ports are bound and what is announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// Address the relay sockets bind to.
    pub bind: IpAddr,
    /// Host (name or IP) announced in MEDIA_ADDR; the bind address when `None`.
    pub public_host: Option<String>,
    /// Port range `low..=high` for relay sockets; ephemeral ports when `None`.
    pub ports: Option<(u16, u16)>,
    /// The latching rule.
    pub latch: Latch,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            public_host: None,
            ports: None,
            latch: Latch::default(),
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

    /// The latching rule of relays from this pool.
    pub fn latch(&self) -> Latch {
        self.cfg.latch
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
    /// `sources` are the addresses each leg's port may latch from (caller leg, callee leg):
    /// `Some(ip)` only that IP, `None` anyone.
    pub fn spawn(self, sources: (Option<IpAddr>, Option<IpAddr>)) -> RelayTask {
        RelayTask(tokio::spawn(relay(self.a, self.b, sources)))
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

/// The latching rule: the first source seen on a leg's port from the allowed IP (any IP when
/// `allowed` is `None`) is that leg; later datagrams count only from it.
fn latch(peer: &mut Option<SocketAddr>, src: SocketAddr, allowed: Option<IpAddr>) -> bool {
    match peer {
        Some(p) => *p == src,
        None if allowed.is_some_and(|ip| ip != src.ip().to_canonical()) => false,
        None => {
            *peer = Some(src);
            true
        }
    }
}

async fn relay(a: UdpSocket, b: UdpSocket, sources: (Option<IpAddr>, Option<IpAddr>)) {
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
        let (me, allowed, other, out, data) = if from_a {
            (&mut peer_a, sources.0, peer_b, &b, &buf_a[..n])
        } else {
            (&mut peer_b, sources.1, peer_a, &a, &buf_b[..n])
        };
        if !latch(me, src, allowed) || !(MIN_FORWARD..MAX_DATAGRAM).contains(&n) {
            continue;
        }
        if let Some(dst) = other {
            // A lost datagram is what UDP does; the next one goes out again.
            let _ = out.send_to(data, dst).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latch_only_from_the_allowed_ip_then_only_from_the_latched_source() {
        let legit: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        let stray: SocketAddr = "198.51.100.7:4000".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:192.0.2.1]:4002".parse().unwrap();
        let allowed = Some(legit.ip());
        let mut peer = None;
        assert!(!latch(&mut peer, stray, allowed), "stray source refused");
        assert_eq!(peer, None, "and did not latch");
        assert!(latch(&mut peer, legit, allowed));
        assert_eq!(peer, Some(legit));
        assert!(!latch(
            &mut peer,
            "192.0.2.1:4001".parse().unwrap(),
            allowed
        ));
        // An IPv4-mapped source matches its IPv4 address.
        let mut peer = None;
        assert!(latch(&mut peer, mapped, allowed));
        // Latch::Any: the first source wins.
        let mut peer = None;
        assert!(latch(&mut peer, stray, None));
        assert!(!latch(&mut peer, legit, None));
    }
}
