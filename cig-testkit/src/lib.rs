//! Test support shared by the workspace's integration tests: where the built binaries are,
//! child processes that are always stopped when the test ends, and free loopback ports.
//!
//! `scripts/test.sh` builds every workspace binary (`cargo build --workspace --bins`) before
//! `cargo test`, so a test of one package can start another package's binary.
//!
//! ```no_run
//! use std::time::Duration;
//! use cig_testkit::{Proc, bin};
//!
//! let mut relay = Proc::spawn(std::process::Command::new(bin("cig-relay")).arg("--help"));
//! let line = relay.wait_line(|l| l.contains("Usage"), Duration::from_secs(5));
//! assert!(line.is_some());
//! ```
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The path of the workspace binary `name`, built beside the running test executable
/// (`target/<profile>/name`). Panics with the command to run when it was not built.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable inside target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` first (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A free UDP port on 127.0.0.1 (bound, then released: good enough for tests that bind it
/// again at once).
pub fn free_udp_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port");
    s.local_addr().expect("local address").port()
}

/// Waits until some process has a UDP socket bound to `port` (read from `/proc/net/udp` and
/// `/proc/net/udp6`, so the check never takes the port itself): for peers such as sipp that
/// print nothing when they are ready. Returns whether it was bound within `timeout`.
pub fn wait_udp_bound(port: u16, timeout: Duration) -> bool {
    let suffix = format!(":{port:04X}");
    wait_until(timeout, || {
        ["/proc/net/udp", "/proc/net/udp6"].iter().any(|table| {
            std::fs::read_to_string(table).is_ok_and(|text| {
                text.lines()
                    .skip(1)
                    .filter_map(|line| line.split_whitespace().nth(1))
                    .any(|local| local.ends_with(&suffix))
            })
        })
    })
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_tcp_port() -> u16 {
    let s = TcpListener::bind("127.0.0.1:0").expect("bind a TCP port");
    s.local_addr().expect("local address").port()
}

/// A child process whose stdout lines can be awaited; killed (and reaped) when dropped, so a
/// failing test never leaves it running. stderr is collected for failure messages.
#[derive(Debug)]
pub struct Proc {
    child: Option<Child>,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl Proc {
    /// Starts `cmd` with stdout and stderr piped.
    pub fn spawn(cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let (tx, lines) = channel();
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                sink.lock().expect("stderr buffer").push_str(&text);
            }
        });
        Proc {
            child: Some(child),
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    /// Waits up to `timeout` for a stdout line that satisfies `pred` and returns it; lines
    /// before it are kept in [`Proc::seen`]. `None` on timeout or when stdout closed.
    pub fn wait_line(
        &mut self,
        mut pred: impl FnMut(&str) -> bool,
        timeout: Duration,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return Some(line);
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Every stdout line read so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr buffer").clone()
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends `signal` (e.g. [`Signal::TERM`]) to the process.
    pub fn signal(&self, signal: Signal) {
        if let Some(child) = &self.child {
            let pid = rustix::process::Pid::from_child(child);
            // The process may have exited already; that is not a test failure here.
            let _ = rustix::process::kill_process(pid, signal);
        }
    }

    /// SIGTERM, then waits up to `timeout` for the exit; kills it if it does not exit.
    /// Returns the exit status, `None` if it had to be killed.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.signal(Signal::TERM);
        self.wait_exit(timeout)
    }

    /// Waits up to `timeout` for the process to exit by itself; kills it if it does not.
    /// Returns the exit status, `None` if it had to be killed.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub use rustix::process::Signal;

/// Polls `cond` until it holds or `timeout` passes (for state that has no event to await,
/// such as a file appearing). Returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_lines_are_awaited_and_the_child_is_stopped() {
        let mut p =
            Proc::spawn(Command::new("sh").args(["-c", "echo one; echo two; exec sleep 30"]));
        assert_eq!(
            p.wait_line(|l| l == "two", Duration::from_secs(10))
                .as_deref(),
            Some("two")
        );
        assert_eq!(p.seen(), ["one", "two"]);
        assert!(p.terminate(Duration::from_secs(10)).is_some());
    }

    #[test]
    fn free_ports_are_real_ports() {
        // Rebinding is not asserted: tests running in parallel may take the port meanwhile.
        assert_ne!(free_udp_port(), 0);
        assert_ne!(free_tcp_port(), 0);
    }
}
