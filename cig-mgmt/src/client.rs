//! The blocking client `cig-cli` uses: one TCP connection to `127.0.0.1:port`, one reply
//! line per request line, with timeouts and the reply line cap.

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::Error;
use crate::proto::{LineReader, MAX_REPLY_LINE, Reply, Request};
use crate::server::loopback;
use crate::types::{CallRow, Status, UmsgRow};

/// How long the client waits for a connection or a reply unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to a management server.
#[derive(Debug)]
pub struct Client {
    addr: SocketAddr,
    read: BufReader<TcpStream>,
    write: TcpStream,
}

impl Client {
    /// Connects to `127.0.0.1:port`. A refused connection is [`Error::NotRunning`].
    pub fn connect(port: u16, timeout: Duration) -> Result<Client, Error> {
        let addr = loopback(port);
        let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| {
            if e.kind() == ErrorKind::ConnectionRefused {
                Error::NotRunning { addr }
            } else {
                Error::Io(e)
            }
        })?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let write = stream.try_clone()?;
        Ok(Client {
            addr,
            read: BufReader::new(stream),
            write,
        })
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends one request and returns the server's reply as it came (an error reply is
    /// `Ok(Reply::Error { .. })`).
    pub fn request(&mut self, req: &Request) -> Result<Reply, Error> {
        self.write.write_all(&req.encode())?;
        let mut lines = LineReader::new(MAX_REPLY_LINE);
        loop {
            let data = self.read.fill_buf()?;
            if data.is_empty() {
                return Err(Error::Protocol(
                    "the server closed the connection without a reply".into(),
                ));
            }
            let (used, line) = lines.feed(data)?;
            self.read.consume(used);
            if let Some(line) = line {
                return Reply::decode(&line);
            }
        }
    }

    /// `show call`.
    pub fn calls(&mut self) -> Result<Vec<CallRow>, Error> {
        match self.request(&Request::Calls)? {
            Reply::Calls { calls } => Ok(calls),
            other => Err(unexpected(other)),
        }
    }

    /// `show umsg`.
    pub fn umsg(&mut self) -> Result<Vec<UmsgRow>, Error> {
        match self.request(&Request::Umsg)? {
            Reply::Umsg { umsg } => Ok(umsg),
            other => Err(unexpected(other)),
        }
    }

    /// `status`.
    pub fn status(&mut self) -> Result<Status, Error> {
        match self.request(&Request::Status)? {
            Reply::Status { status } => Ok(status),
            other => Err(unexpected(other)),
        }
    }

    /// `echo`: the server sends `text` back.
    pub fn echo(&mut self, text: &str) -> Result<String, Error> {
        match self.request(&Request::Echo { text: text.into() })? {
            Reply::Echo { text } => Ok(text),
            other => Err(unexpected(other)),
        }
    }
}

fn unexpected(reply: Reply) -> Error {
    match reply {
        Reply::Error { message } => Error::Server(message),
        Reply::Calls { .. } => Error::Protocol("unexpected reply `calls`".into()),
        Reply::Umsg { .. } => Error::Protocol("unexpected reply `umsg`".into()),
        Reply::Status { .. } => Error::Protocol("unexpected reply `status`".into()),
        Reply::Echo { .. } => Error::Protocol("unexpected reply `echo`".into()),
    }
}
