//! A thin tokio driver for [`UserAgent`]: one UDP socket and one TCP listener on the same
//! address, outgoing TCP connections opened on demand and reused in both directions (keyed by
//! the peer address), host names resolved with the system resolver. One task owns the user
//! agent; [`SipHandle`] sends it commands and [`Events`] receives what it reports.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::Decoder;

use crate::message::{Message, StreamCodec, StreamItem, Uri};
use crate::transaction::{Transmit, Transport};
use crate::ua::{
    CallHandle, Event, MessageHandle, OutgoingCall, OutgoingMessage, Target, UaConfig, UserAgent,
    next_hop,
};
use crate::{Error, Result};

/// Largest UDP datagram read.
const MAX_DATAGRAM: usize = 65_535;

enum Command {
    Place(Box<OutgoingCall>, oneshot::Sender<(CallHandle, String)>),
    Ringing(CallHandle, oneshot::Sender<Result<()>>),
    Answer(CallHandle, Bytes, oneshot::Sender<Result<()>>),
    Ack(CallHandle, Bytes, oneshot::Sender<Result<()>>),
    Reject(CallHandle, u16, oneshot::Sender<Result<()>>),
    Hangup(CallHandle, oneshot::Sender<Result<()>>),
    Reinvite(CallHandle, Bytes, oneshot::Sender<Result<()>>),
    Message(Box<OutgoingMessage>, oneshot::Sender<MessageHandle>),
    RespondMessage(MessageHandle, u16, oneshot::Sender<Result<()>>),
}

enum Inbound {
    Message(Box<Message>, SocketAddr),
    KeepAlive(SocketAddr),
    Closed(SocketAddr),
    Unreachable(SocketAddr),
}

/// Commands to the running user agent. Cheap to clone; the agent stops when every handle is
/// dropped.
///
/// Each command method queues its command the moment it is called and returns the future of
/// the outcome: commands reach the agent in the order of the calls, whether their futures are
/// awaited in turn, later or not at all.
#[derive(Clone, Debug)]
pub struct SipHandle {
    tx: mpsc::UnboundedSender<Command>,
    local_addr: SocketAddr,
}

/// The events of the running user agent.
pub type Events = mpsc::UnboundedReceiver<Event>;

fn stopped() -> Error {
    Error::CallState("user agent stopped")
}

impl SipHandle {
    /// The address the agent listens on (UDP and TCP).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Queues the command `make` builds now; the future gives the agent's reply.
    fn ask<T: Send + 'static, F: FnOnce(oneshot::Sender<T>) -> Command>(
        &self,
        make: F,
    ) -> impl Future<Output = Result<T>> + Send + use<T, F> {
        let (tx, rx) = oneshot::channel();
        let queued = self.tx.send(make(tx)).map_err(|_| stopped());
        async move {
            queued?;
            rx.await.map_err(|_| stopped())
        }
    }

    /// [`Self::ask`] for a command whose reply is itself a result.
    fn command<F: FnOnce(oneshot::Sender<Result<()>>) -> Command>(
        &self,
        make: F,
    ) -> impl Future<Output = Result<()>> + Send + use<F> {
        let reply = self.ask(make);
        async move { reply.await? }
    }

    /// See [`UserAgent::place_call`].
    pub fn place_call(
        &self,
        call: OutgoingCall,
    ) -> impl Future<Output = Result<CallHandle>> + Send + use<> {
        let placed = self.place_call_with_id(call);
        async move { Ok(placed.await?.0) }
    }

    /// [`SipHandle::place_call`], also returning the INVITE's Call-ID (see
    /// [`UserAgent::call_id`]).
    pub fn place_call_with_id(
        &self,
        call: OutgoingCall,
    ) -> impl Future<Output = Result<(CallHandle, String)>> + Send + use<> {
        self.ask(move |r| Command::Place(Box::new(call), r))
    }

    /// See [`UserAgent::ringing`].
    pub fn ringing(&self, call: CallHandle) -> impl Future<Output = Result<()>> + Send + use<> {
        self.command(move |r| Command::Ringing(call, r))
    }

    /// See [`UserAgent::answer`].
    pub fn answer(
        &self,
        call: CallHandle,
        sdp: Bytes,
    ) -> impl Future<Output = Result<()>> + Send + use<> {
        self.command(move |r| Command::Answer(call, sdp, r))
    }

    /// See [`UserAgent::ack`].
    pub fn ack(
        &self,
        call: CallHandle,
        sdp: Bytes,
    ) -> impl Future<Output = Result<()>> + Send + use<> {
        self.command(move |r| Command::Ack(call, sdp, r))
    }

    /// See [`UserAgent::reject`].
    pub fn reject(
        &self,
        call: CallHandle,
        status: u16,
    ) -> impl Future<Output = Result<()>> + Send + use<> {
        self.command(move |r| Command::Reject(call, status, r))
    }

    /// See [`UserAgent::hangup`].
    pub fn hangup(&self, call: CallHandle) -> impl Future<Output = Result<()>> + Send + use<> {
        self.command(move |r| Command::Hangup(call, r))
    }

    /// See [`UserAgent::reinvite`].
    pub fn reinvite(
        &self,
        call: CallHandle,
        sdp: Bytes,
    ) -> impl Future<Output = Result<()>> + Send + use<> {
        self.command(move |r| Command::Reinvite(call, sdp, r))
    }

    /// See [`UserAgent::send_message`].
    pub fn send_message(
        &self,
        msg: OutgoingMessage,
    ) -> impl Future<Output = Result<MessageHandle>> + Send + use<> {
        self.ask(move |r| Command::Message(Box::new(msg), r))
    }

    /// See [`UserAgent::respond_message`].
    pub fn respond_message(
        &self,
        message: MessageHandle,
        status: u16,
    ) -> impl Future<Output = Result<()>> + Send + use<> {
        self.command(move |r| Command::RespondMessage(message, status, r))
    }
}

/// Resolves a SIP URI to a [`Target`]: transport and port from the URI (defaults UDP, 5060),
/// host through the system resolver.
pub async fn resolve(uri: &Uri) -> Result<Target> {
    let (host, port, transport) = next_hop(uri)?;
    let destination = tokio::net::lookup_host((host.as_str(), port))
        .await?
        .next()
        .ok_or(Error::CallState("host name did not resolve"))?;
    Ok(Target {
        uri: uri.clone(),
        destination,
        transport,
    })
}

/// Binds UDP and TCP on `config.local_addr` (port 0 picks a free port, the same for both) and
/// runs the user agent on the current tokio runtime.
pub async fn start(mut config: UaConfig, seed: u64) -> io::Result<(SipHandle, Events)> {
    let (udp, listener) = bind_pair(config.local_addr).await?;
    config.local_addr = udp.local_addr()?;
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let local_addr = config.local_addr;
    let ua = UserAgent::new(config, seed);
    tokio::spawn(run(ua, udp, listener, cmd_rx, ev_tx));
    Ok((
        SipHandle {
            tx: cmd_tx,
            local_addr,
        },
        ev_rx,
    ))
}

/// UDP and TCP on the same port; with port 0, retries until a port free for both is found.
async fn bind_pair(addr: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    let mut last = None;
    for _ in 0..16 {
        let udp = UdpSocket::bind(addr).await?;
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(l) => return Ok((udp, l)),
            Err(e) if addr.port() == 0 => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free port")))
}

struct Conns {
    writers: HashMap<SocketAddr, mpsc::UnboundedSender<Bytes>>,
    inbound: mpsc::UnboundedSender<Inbound>,
}

impl Conns {
    fn send(&mut self, dest: SocketAddr, payload: Bytes) {
        if let Some(w) = self.writers.get(&dest)
            && w.send(payload.clone()).is_ok()
        {
            return;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(payload);
        self.writers.insert(dest, tx);
        let inbound = self.inbound.clone();
        tokio::spawn(async move {
            match TcpStream::connect(dest).await {
                Ok(s) => serve_conn(s, dest, rx, inbound).await,
                Err(_) => {
                    let _ = inbound.send(Inbound::Unreachable(dest));
                }
            }
        });
    }

    fn accept(&mut self, stream: TcpStream, peer: SocketAddr) {
        let (tx, rx) = mpsc::unbounded_channel();
        self.writers.insert(peer, tx);
        tokio::spawn(serve_conn(stream, peer, rx, self.inbound.clone()));
    }
}

/// Reads framed messages from one connection and writes what the agent sends to it.
async fn serve_conn(
    stream: TcpStream,
    peer: SocketAddr,
    mut out: mpsc::UnboundedReceiver<Bytes>,
    inbound: mpsc::UnboundedSender<Inbound>,
) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        while let Some(b) = out.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
    });
    let mut codec = StreamCodec::default();
    let mut buf = BytesMut::with_capacity(8192);
    'read: loop {
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(StreamItem::Message(m))) => {
                    if inbound.send(Inbound::Message(Box::new(m), peer)).is_err() {
                        break 'read;
                    }
                }
                Ok(Some(StreamItem::KeepAlive)) => {
                    let _ = inbound.send(Inbound::KeepAlive(peer));
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => break 'read,
            }
        }
    }
    writer.abort();
    let _ = inbound.send(Inbound::Closed(peer));
}

async fn run(
    mut ua: UserAgent,
    udp: UdpSocket,
    listener: TcpListener,
    mut cmds: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<Event>,
) {
    let (in_tx, mut in_rx) = mpsc::unbounded_channel();
    let mut conns = Conns {
        writers: HashMap::new(),
        inbound: in_tx,
    };
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        while let Some(Transmit {
            transport,
            destination,
            payload,
        }) = ua.poll_transmit()
        {
            match transport {
                Transport::Udp => {
                    let _ = udp.send_to(&payload, destination).await;
                }
                Transport::Tcp => conns.send(destination, payload),
            }
        }
        while let Some(e) = ua.poll_event() {
            let _ = events.send(e);
        }
        let timeout = ua.poll_timeout();
        let sleep = async {
            match timeout {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = udp.recv_from(&mut buf) => {
                if let Ok((n, src)) = r {
                    let data = Bytes::copy_from_slice(&buf[..n]);
                    ua.handle_datagram(data, src, Transport::Udp, Instant::now());
                }
            }
            Some(i) = in_rx.recv() => match i {
                Inbound::Message(m, src) => ua.handle_message(*m, src, Transport::Tcp, Instant::now()),
                Inbound::KeepAlive(src) => conns.send(src, Bytes::from_static(b"\r\n")),
                Inbound::Closed(src) => {
                    conns.writers.remove(&src);
                }
                Inbound::Unreachable(dest) => {
                    conns.writers.remove(&dest);
                    ua.handle_transport_error(dest, Transport::Tcp);
                }
            },
            r = listener.accept() => {
                if let Ok((s, peer)) = r {
                    conns.accept(s, peer);
                }
            }
            c = cmds.recv() => {
                let Some(c) = c else { break };
                let now = Instant::now();
                match c {
                    Command::Place(call, r) => {
                        let h = ua.place_call(*call, now);
                        let _ = r.send((h, ua.call_id(h).unwrap_or_default().to_owned()));
                    }
                    Command::Ringing(c, r) => { let _ = r.send(ua.ringing(c, now)); }
                    Command::Answer(c, sdp, r) => { let _ = r.send(ua.answer(c, sdp, now)); }
                    Command::Ack(c, sdp, r) => { let _ = r.send(ua.ack(c, sdp)); }
                    Command::Reject(c, s, r) => { let _ = r.send(ua.reject(c, s, now)); }
                    Command::Hangup(c, r) => { let _ = r.send(ua.hangup(c, now)); }
                    Command::Reinvite(c, sdp, r) => { let _ = r.send(ua.reinvite(c, sdp, now)); }
                    Command::Message(m, r) => { let _ = r.send(ua.send_message(*m, now)); }
                    Command::RespondMessage(m, s, r) => { let _ = r.send(ua.respond_message(m, s, now)); }
                }
            }
            () = sleep => ua.handle_timeout(Instant::now()),
        }
    }
}

/// What [`answer_all`] counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AnswerStats {
    /// Incoming calls seen.
    pub incoming: u64,
    /// Calls answered 200.
    pub answered: u64,
    /// Calls rejected 488 (no shared codec).
    pub rejected: u64,
    /// Calls ended by the caller's BYE.
    pub remote_hangups: u64,
    /// Calls cancelled before the answer.
    pub cancelled: u64,
}

/// An auto-answering UAS: every incoming call gets 180 and then 200 with an SDP answer from
/// `caps` (488 without a shared codec), or only 180 when `answer` is false (the caller must
/// CANCEL). Runs until the events end or `stop` returns true for the counts so far.
pub async fn answer_all(
    handle: &SipHandle,
    events: &mut Events,
    caps: &crate::sdp::AudioCapabilities,
    answer: bool,
    mut stop: impl FnMut(&AnswerStats) -> bool,
) -> AnswerStats {
    use crate::sdp::{self, SessionDescription};
    use crate::ua::EndReason;
    let mut stats = AnswerStats::default();
    while !stop(&stats) {
        let Some(event) = events.recv().await else {
            break;
        };
        match event {
            Event::IncomingCall {
                call, sdp: offer, ..
            } => {
                stats.incoming += 1;
                let _ = handle.ringing(call).await;
                if !answer {
                    continue;
                }
                let reply = SessionDescription::parse(&offer)
                    .and_then(|o| sdp::answer(&o, caps, stats.incoming, 1));
                match reply {
                    Ok((a, _)) => {
                        if handle.answer(call, Bytes::from(a.to_bytes())).await.is_ok() {
                            stats.answered += 1;
                        }
                    }
                    Err(_) => {
                        let _ = handle.reject(call, 488).await;
                        stats.rejected += 1;
                    }
                }
            }
            Event::Ended {
                reason: EndReason::RemoteHangup,
                ..
            } => stats.remote_hangups += 1,
            Event::Ended {
                reason: EndReason::Cancelled,
                ..
            } => stats.cancelled += 1,
            _ => {}
        }
    }
    stats
}
