//! The control connection to cig-relay (docs/relay-control.md): one task that connects to the
//! Unix socket (retrying), says hello, writes the frames it is given and reports replies,
//! events and losses. Sessions are not re-created after a loss (the engine ends those calls).

use std::path::PathBuf;
use std::time::Duration;

use cig_media::control::{Command, FrameDecoder, PROTOCOL_VERSION, Reply, Request, encode_frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::mpsc;

/// How long between connection attempts while the relay is away.
const RETRY: Duration = Duration::from_millis(250);

/// What the relay task reports.
#[derive(Debug)]
pub enum RelayIn {
    /// Connected and hello answered.
    Up {
        /// Engines running.
        engines_available: usize,
        /// Engines configured.
        engines_total: usize,
    },
    /// A reply or an event.
    Msg(Reply),
    /// The connection is gone (or could not be made): why.
    Down(String),
}

/// Encodes request `id` for the relay task's queue.
pub fn frame(id: u64, command: Command) -> Option<Vec<u8>> {
    encode_frame(&Request { id, command }).ok()
}

/// Runs the connection forever: `out` carries encoded request frames, `events` gets reports.
/// Frames queued while disconnected are dropped (their calls end on `Down`).
pub async fn run(
    path: PathBuf,
    mut out: mpsc::UnboundedReceiver<Vec<u8>>,
    events: mpsc::UnboundedSender<RelayIn>,
) {
    let mut reported_down = false;
    loop {
        let mut stream = match connect(&path).await {
            Ok((s, up)) => {
                // Anything queued for the previous connection is stale.
                while out.try_recv().is_ok() {}
                if events.send(up).is_err() {
                    return;
                }
                s
            }
            Err(e) => {
                if !reported_down {
                    reported_down = true;
                    if events.send(RelayIn::Down(e)).is_err() {
                        return;
                    }
                }
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let mut dec = FrameDecoder::new();
        let mut buf = vec![0u8; 16 * 1024];
        let why = loop {
            tokio::select! {
                r = stream.read(&mut buf) => match r {
                    Ok(0) => break "the relay closed the control connection".to_owned(),
                    Err(e) => break format!("control connection: {e}"),
                    Ok(n) => {
                        dec.push(&buf[..n]);
                        loop {
                            match dec.next_message::<Reply>() {
                                Ok(Some(m)) => {
                                    if events.send(RelayIn::Msg(m)).is_err() {
                                        return;
                                    }
                                }
                                Ok(None) => break,
                                // One unreadable reply: skip it (its request stays unanswered).
                                Err(cig_media::control::ControlError::Json(_)) => continue,
                                Err(e) => {
                                    let _ = events.send(RelayIn::Down(format!("control framing: {e}")));
                                    return;
                                }
                            }
                        }
                    }
                },
                f = out.recv() => match f {
                    Some(f) => {
                        if let Err(e) = stream.write_all(&f).await {
                            break format!("control connection: {e}");
                        }
                    }
                    None => return,
                },
            }
        };
        reported_down = true;
        if events.send(RelayIn::Down(why)).is_err() {
            return;
        }
        tokio::time::sleep(RETRY).await;
    }
}

async fn connect(path: &std::path::Path) -> Result<(UnixStream, RelayIn), String> {
    let mut s = UnixStream::connect(path)
        .await
        .map_err(|e| format!("cannot connect to the relay at {}: {e}", path.display()))?;
    let hello = frame(
        0,
        Command::Hello {
            protocol: PROTOCOL_VERSION,
            client: format!("cig-server {}", env!("CARGO_PKG_VERSION")),
        },
    )
    .ok_or("cannot encode hello")?;
    s.write_all(&hello).await.map_err(|e| e.to_string())?;
    let mut dec = FrameDecoder::new();
    let mut buf = vec![0u8; 4096];
    let reply = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(m) = dec.next_message::<Reply>().map_err(|e| e.to_string())? {
                return Ok::<Reply, String>(m);
            }
            let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("relay closed during hello".to_owned());
            }
            dec.push(&buf[..n]);
        }
    })
    .await
    .map_err(|_| "relay did not answer hello".to_owned())??;
    match reply {
        Reply::Hello {
            engines_available,
            engines_total,
            ..
        } => Ok((
            s,
            RelayIn::Up {
                engines_available,
                engines_total,
            },
        )),
        Reply::Error { message, .. } => Err(format!("relay refused hello: {message}")),
        other => Err(format!("unexpected reply to hello: {other:?}")),
    }
}
