//! The tokio server and the blocking client over real loopback sockets: every request, the
//! loopback-only rule, error replies, caps, not-running detection and shutdown.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use cig_mgmt::proto::{MAX_REQUEST_LINE, Reply, Request};
use cig_mgmt::*;

const T: Duration = Duration::from_secs(5);

struct Fixed;

impl Provider for Fixed {
    fn calls(&self) -> Vec<CallRow> {
        CallState::ALL
            .iter()
            .enumerate()
            .map(|(i, &state)| CallRow {
                in_from: format!("tel:+4670000000{i}"),
                in_to: "tel:+8888;101".into(),
                out_from: format!("sip:+4670000000{i}@pbx.com"),
                out_to: "sip:101@pbx.com".into(),
                state,
            })
            .collect()
    }
    fn umsg(&self) -> Vec<UmsgRow> {
        vec![UmsgRow {
            from: "tel:+46701234567".into(),
            to: "tel:+8888;101".into(),
            state: "TALK".into(),
            time_secs: 429,
            id: "SxU+cQAE66+12m5j".into(),
        }]
    }
    fn status(&self) -> Status {
        Status {
            version: "0.1.0".into(),
            relay: RelayStatus {
                connected: false,
                engines_available: 0,
                engines_total: 2,
                relays: Vec::new(),
            },
            umsg: UmsgStatus {
                identity: "tel:+8888".into(),
                domain: "secure.example".into(),
                switch_address: "127.0.0.1:5223".into(),
                connection: LinkState::Connecting,
                crypto_state: "OK".into(),
                period: "2026-11".into(),
            },
            sip: SipStatus {
                bind: "127.0.0.1".into(),
            },
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn every_request_is_answered_from_the_provider() {
    let rt = runtime();
    let server = rt.block_on(serve(0, Arc::new(Fixed))).unwrap();
    assert_eq!(server.local_addr().ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_ne!(server.local_addr().port(), 0);
    let mut c = Client::connect(server.local_addr().port(), T).unwrap();
    // Several requests on one connection.
    assert_eq!(c.calls().unwrap(), Fixed.calls());
    assert_eq!(c.umsg().unwrap(), Fixed.umsg());
    assert_eq!(c.status().unwrap(), Fixed.status());
    assert_eq!(c.echo("hello  there").unwrap(), "hello  there");
    assert_eq!(c.calls().unwrap().len(), 6);
    rt.block_on(server.shutdown());
}

#[test]
fn only_loopback_addresses_are_served() {
    let rt = runtime();
    for ip in [
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1)),
        IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    ] {
        let err = rt
            .block_on(serve_at(SocketAddr::new(ip, 0), Arc::new(Fixed)))
            .unwrap_err();
        assert!(matches!(err, Error::NotLoopback(a) if a == ip), "{err}");
        assert!(err.to_string().contains("loopback only"), "{err}");
    }
    let s = rt
        .block_on(serve_at(
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 0),
            Arc::new(Fixed),
        ))
        .unwrap();
    assert!(s.local_addr().ip().is_loopback());
}

#[test]
fn a_closed_port_is_reported_as_not_running() {
    let port = cig_testkit::free_tcp_port();
    let err = Client::connect(port, T).unwrap_err();
    assert!(matches!(err, Error::NotRunning { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!("cig-server is not running (no answer on 127.0.0.1:{port})")
    );
}

/// Raw lines on a socket: what a foreign client gets for bad input.
fn raw(port: u16) -> (BufReader<TcpStream>, TcpStream) {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    (BufReader::new(s.try_clone().unwrap()), s)
}

fn reply(r: &mut BufReader<TcpStream>) -> Reply {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    Reply::decode(line.trim_end().as_bytes()).unwrap()
}

#[test]
fn bad_requests_get_error_replies_and_the_connection_stays_usable() {
    let rt = runtime();
    let server = rt.block_on(serve(0, Arc::new(Fixed))).unwrap();
    let (mut r, mut w) = raw(server.local_addr().port());
    w.write_all(b"not json\n{\"v\":7,\"op\":\"calls\"}\n{\"v\":1,\"op\":\"shutdown\"}\n")
        .unwrap();
    let Reply::Error { message } = reply(&mut r) else {
        panic!("no error")
    };
    assert!(message.starts_with("malformed message"), "{message}");
    let Reply::Error { message } = reply(&mut r) else {
        panic!("no error")
    };
    assert_eq!(
        message,
        "unsupported protocol version 7 (this side speaks 1)"
    );
    assert!(matches!(reply(&mut r), Reply::Error { .. }));
    // CRLF line ends are accepted.
    w.write_all(b"{\"v\":1,\"op\":\"echo\",\"text\":\"ok\"}\r\n")
        .unwrap();
    assert_eq!(reply(&mut r), Reply::Echo { text: "ok".into() });
    rt.block_on(server.shutdown());
}

#[test]
fn an_overlong_line_is_refused_and_the_connection_closed() {
    let rt = runtime();
    let server = rt.block_on(serve(0, Arc::new(Fixed))).unwrap();
    let (mut r, mut w) = raw(server.local_addr().port());
    let long = vec![b'x'; MAX_REQUEST_LINE + 10];
    w.write_all(&long).unwrap();
    let Reply::Error { message } = reply(&mut r) else {
        panic!("no error")
    };
    assert_eq!(
        message,
        format!("line longer than {MAX_REQUEST_LINE} bytes")
    );
    let mut rest = String::new();
    assert_eq!(r.read_line(&mut rest).unwrap(), 0, "closed after the error");
    rt.block_on(server.shutdown());
}

#[test]
fn shutdown_closes_the_port_and_open_connections() {
    let rt = runtime();
    let server = rt.block_on(serve(0, Arc::new(Fixed))).unwrap();
    let port = server.local_addr().port();
    let (mut r, mut w) = raw(port);
    w.write_all(&Request::Calls.encode()).unwrap();
    assert!(matches!(reply(&mut r), Reply::Calls { .. }));
    rt.block_on(server.shutdown());
    let mut rest = String::new();
    assert_eq!(r.read_line(&mut rest).unwrap(), 0, "connection closed");
    assert!(matches!(
        Client::connect(port, T),
        Err(Error::NotRunning { .. })
    ));
}

#[test]
fn connections_beyond_the_cap_are_told_busy() {
    let rt = runtime();
    let server = rt.block_on(serve(0, Arc::new(Fixed))).unwrap();
    let port = server.local_addr().port();
    let mut held = Vec::new();
    for _ in 0..cig_mgmt::server::MAX_CONNECTIONS {
        let mut c = Client::connect(port, T).unwrap();
        // A reply proves the server has taken the connection into a slot.
        c.echo("x").unwrap();
        held.push(c);
    }
    let (mut r, _w) = raw(port);
    let Reply::Error { message } = reply(&mut r) else {
        panic!("no busy reply")
    };
    assert!(message.starts_with("busy"), "{message}");
    held.pop();
    // A slot is freed once the server sees the close.
    assert!(cig_testkit::wait_until(T, || {
        Client::connect(port, T).is_ok_and(|mut c| c.echo("y").is_ok())
    }));
    rt.block_on(server.shutdown());
}
