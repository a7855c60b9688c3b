//! Test support (feature `test-support`, for the workspace's integration tests only): one
//! secure domain made the way an operator makes it — `cig-kms init` and `cig-kms switch-cert
//! --name 127.0.0.1` in a temporary directory — with user keys issued from it, a `cig-crs`
//! process or an in-process switch on it, and the client-side waits the tests share.
//!
//! Needs the `cig-kms` (and for [`TestDomain::crs`] the `cig-crs`) binaries built beside the
//! test executable (see `cig_testkit::bin`). Panics on any failure: it is for tests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use cig_mikey_sakke::keystore::{self, KeyMaterial};
use cig_mikey_sakke::kms::Community;
use cig_mikey_sakke::mikey::KeyPeriod;
use cig_testkit::{Proc, bin};
use rand_core::OsRng;

/// How long the helpers wait for a process line or a driver event.
pub const WAIT: Duration = Duration::from_secs(20);

/// A KMS directory (community, switch CA and a switch certificate for 127.0.0.1).
#[derive(Debug)]
pub struct TestDomain {
    dir: tempfile::TempDir,
    /// The community (with its master secrets: issues user keys).
    pub community: Community,
    /// The switch CA certificate (PEM), as a key bundle carries it.
    pub ca_pem: String,
}

impl Default for TestDomain {
    fn default() -> Self {
        Self::new()
    }
}

impl TestDomain {
    /// `cig-kms init --domain example.org` and `cig-kms switch-cert --name 127.0.0.1` in a new
    /// temporary directory.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        for args in [
            &["init", "--domain", "example.org"][..],
            &["switch-cert", "--name", "127.0.0.1"],
        ] {
            let out = Command::new(bin("cig-kms"))
                .args(args)
                .arg("--dir")
                .arg(dir.path())
                .output()
                .expect("cig-kms runs");
            assert!(out.status.success(), "cig-kms {args:?}: {out:?}");
        }
        let community = Community::load(dir.path()).expect("community.json");
        let ca_pem =
            std::fs::read_to_string(dir.path().join("switch/ca.pem")).expect("switch/ca.pem");
        Self {
            dir,
            community,
            ca_pem,
        }
    }

    /// A path inside the KMS directory (`community.json`, `switch/127.0.0.1.pem`, …).
    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// The KMS directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Keys of `identity` for the current month, with `switches` and the switch CA.
    pub fn keys(&self, identity: &str, switches: &[SocketAddr]) -> KeyMaterial {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        let period = KeyPeriod::from_unix(now).expect("key period");
        let k = self
            .community
            .issue(identity, period, &mut OsRng)
            .expect("issue user keys");
        self.community.key_material(
            identity,
            vec![k],
            switches.iter().map(ToString::to_string).collect(),
            Some(self.ca_pem.clone()),
        )
    }

    /// [`Self::keys`] saved as a keystore file under `userdata/` (as `cig-phone --keystore`
    /// reads it); its path.
    pub fn keystore(&self, identity: &str, switches: &[SocketAddr]) -> PathBuf {
        let userdata = self.path("userdata");
        std::fs::create_dir_all(&userdata).expect("userdata directory");
        keystore::save(&userdata, &self.keys(identity, switches)).expect("keystore written")
    }

    /// Starts `cig-crs` on 127.0.0.1:`port` (0: any free port) with this domain's certificate
    /// and KPAK, logging to `log`, plus `extra` arguments; waits for its ready line.
    pub fn crs(&self, port: u16, log: &Path, extra: &[&str]) -> (Proc, SocketAddr) {
        let mut cmd = Command::new(bin("cig-crs"));
        cmd.arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--cert")
            .arg(self.path("switch/127.0.0.1.pem"))
            .arg("--key")
            .arg(self.path("switch/127.0.0.1.key"))
            .arg("--kpak-from")
            .arg(self.path("community.json"))
            .arg("--log")
            .arg(log)
            .args(extra);
        let mut p = Proc::spawn(&mut cmd);
        let line = p
            .wait_line(|l| l.starts_with("cig-crs ready on "), WAIT)
            .unwrap_or_else(|| panic!("cig-crs not ready: {}", p.stderr()));
        let addr = line["cig-crs ready on ".len()..]
            .parse()
            .expect("address in the ready line");
        (p, addr)
    }
}

#[cfg(feature = "driver")]
mod driver {
    use std::net::SocketAddr;
    use std::time::Duration;

    use cig_mikey_sakke::keystore::KeyMaterial;
    use tokio::sync::mpsc::UnboundedReceiver;
    use tokio::time::timeout;

    use super::{TestDomain, WAIT};
    use crate::driver::client::{ClientConfig, ClientEvent};
    use crate::driver::media::MediaConfig;
    use crate::driver::server_tls;
    use crate::driver::switch::{self, SwitchConfig, SwitchHandle};
    use crate::switch::StoreLimits;

    impl TestDomain {
        /// The configuration of an in-process switch on `listen` with this domain's
        /// certificate and KPAK, media relay on 127.0.0.1.
        pub fn switch_config(&self, listen: SocketAddr) -> SwitchConfig {
            let cert = std::fs::read(self.path("switch/127.0.0.1.pem")).expect("certificate");
            let key = std::fs::read(self.path("switch/127.0.0.1.key")).expect("key");
            SwitchConfig {
                listen,
                tls: server_tls(&cert, &key).expect("TLS configuration"),
                kpak: self.community.kpak,
                media: MediaConfig::default(),
                store: StoreLimits::default(),
                out_queue_bytes: switch::OUT_QUEUE_BYTES,
            }
        }

        /// An in-process switch on `listen` ([`Self::switch_config`]) and its log lines.
        pub async fn switch_on(
            &self,
            listen: SocketAddr,
        ) -> (SwitchHandle, UnboundedReceiver<String>) {
            switch::start(self.switch_config(listen))
                .await
                .expect("switch started")
        }

        /// [`Self::switch_on`] any free port of 127.0.0.1.
        pub async fn switch(&self) -> (SwitchHandle, UnboundedReceiver<String>) {
            self.switch_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
        }
    }

    /// A client driver configuration for `keys` on `switches` with a short back-off
    /// (100 ms doubling to 500 ms).
    pub fn client_config(keys: KeyMaterial, switches: &[SocketAddr]) -> ClientConfig {
        let mut cfg = ClientConfig::new(keys);
        cfg.switches = switches.iter().map(ToString::to_string).collect();
        cfg.backoff_min = Duration::from_millis(100);
        cfg.backoff_max = Duration::from_millis(500);
        cfg
    }

    /// The next driver event that `pick` accepts (others are skipped), within [`WAIT`].
    pub async fn next_where<T>(
        rx: &mut UnboundedReceiver<ClientEvent>,
        mut pick: impl FnMut(&ClientEvent) -> Option<T>,
    ) -> T {
        timeout(WAIT, async {
            loop {
                let e = rx.recv().await.expect("driver running");
                if let Some(t) = pick(&e) {
                    return t;
                }
            }
        })
        .await
        .expect("event in time")
    }

    /// Waits for the next registration; the switch address.
    pub async fn registered(rx: &mut UnboundedReceiver<ClientEvent>) -> String {
        next_where(rx, |e| match e {
            ClientEvent::Registered { switch } => Some(switch.clone()),
            _ => None,
        })
        .await
    }
}

#[cfg(feature = "driver")]
pub use driver::{client_config, next_where, registered};
