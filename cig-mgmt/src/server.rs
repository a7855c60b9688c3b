//! The tokio server: binds a loopback address only, answers each request line with one reply
//! line from the [`Provider`], with caps on connections, line length and idle time.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use crate::Error;
use crate::proto::{LineReader, MAX_REQUEST_LINE, Reply, Request};
use crate::types::Provider;

/// The manual's management port.
pub const DEFAULT_PORT: u16 = 8083;

/// Connections served at once; more are told the server is busy and closed.
pub const MAX_CONNECTIONS: usize = 32;

/// A connection with no complete request for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// `127.0.0.1:port`, the only kind of address the management port uses.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
}

/// A running management server. Dropping it stops accepting and closes the connections, as
/// [`MgmtServer::shutdown`] does without waiting.
#[derive(Debug)]
pub struct MgmtServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl MgmtServer {
    /// The bound address (`127.0.0.1` and the real port, also when `0` was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, closes every connection and waits until the server task has ended.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MgmtServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Starts the management server on `127.0.0.1:port` (`0` picks a free port). The address is
/// always loopback: there is no way to ask for another.
pub async fn serve(port: u16, provider: Arc<dyn Provider>) -> std::io::Result<MgmtServer> {
    let addr = loopback(port);
    serve_at(addr, provider).await.map_err(|e| match e {
        Error::Io(e) => e,
        other => std::io::Error::other(other),
    })
}

/// Starts the management server on `addr`, which must be a loopback address
/// (`127.0.0.0/8` or `::1`); anything else is refused with [`Error::NotLoopback`] before a
/// socket is opened.
pub async fn serve_at(addr: SocketAddr, provider: Arc<dyn Provider>) -> Result<MgmtServer, Error> {
    if !addr.ip().is_loopback() {
        return Err(Error::NotLoopback(addr.ip()));
    }
    let listener = TcpListener::bind(addr).await?;
    let local_addr = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, provider, stopped));
    Ok(MgmtServer {
        local_addr,
        stop,
        task: Some(task),
    })
}

async fn accept_loop(
    listener: TcpListener,
    provider: Arc<dyn Provider>,
    mut stopped: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stopped.changed() => break,
        };
        // Reap finished connection tasks so the set stays small.
        while conns.try_join_next().is_some() {}
        let Ok((mut stream, _peer)) = accepted else {
            // Accept errors (e.g. out of file descriptors) are transient; keep serving.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            let busy = Reply::Error {
                message: format!("busy: {MAX_CONNECTIONS} management connections open"),
            };
            conns.spawn(async move {
                let _ = stream.write_all(&busy.encode()).await;
            });
            continue;
        };
        let provider = provider.clone();
        let stopped = stopped.clone();
        conns.spawn(async move {
            let _permit = permit;
            connection(stream, &*provider, stopped).await;
        });
    }
    conns.shutdown().await;
}

/// Serves one connection until the peer closes it, it idles, breaks framing, or the server
/// stops.
async fn connection(
    stream: TcpStream,
    provider: &dyn Provider,
    mut stopped: watch::Receiver<bool>,
) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut lines = LineReader::new(MAX_REQUEST_LINE);
    loop {
        let next = tokio::select! {
            r = tokio::time::timeout(IDLE_TIMEOUT, next_line(&mut read, &mut lines)) => r,
            _ = stopped.changed() => return,
        };
        let reply = match next {
            Err(_) | Ok(Ok(None)) => return,
            Ok(Ok(Some(line))) => answer(provider, &line),
            Ok(Err(Error::Io(_))) => return,
            Ok(Err(e)) => {
                // The line was too long: say so, then close (the framing is lost).
                let reply = Reply::Error {
                    message: e.to_string(),
                };
                let _ = write.write_all(&reply.encode()).await;
                return;
            }
        };
        if write.write_all(&reply.encode()).await.is_err() {
            return;
        }
    }
}

/// The next complete line, `None` at end of stream.
async fn next_line(
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    lines: &mut LineReader,
) -> Result<Option<Vec<u8>>, Error> {
    loop {
        let data = read.fill_buf().await?;
        if data.is_empty() {
            return Ok(None);
        }
        let (used, line) = lines.feed(data)?;
        read.consume(used);
        if line.is_some() {
            return Ok(line);
        }
    }
}

/// The reply to one request line.
pub fn answer(provider: &dyn Provider, line: &[u8]) -> Reply {
    match Request::decode(line) {
        Ok(Request::Calls) => Reply::Calls {
            calls: provider.calls(),
        },
        Ok(Request::Umsg) => Reply::Umsg {
            umsg: provider.umsg(),
        },
        Ok(Request::Status) => Reply::Status {
            status: provider.status(),
        },
        Ok(Request::Echo { text }) => Reply::Echo { text },
        Err(e) => Reply::Error {
            message: e.to_string(),
        },
    }
}
