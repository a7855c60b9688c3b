//! The messaging test bed that messaging.rs and messaging_crash.rs share: a KMS community,
//! the switch cig-crs, cig-relay and cig-server with a read and a write mailbox, an SMPP centre
//! and SIP messaging ([`Bed`]), and a secure user that is a cig-umsg client over the real
//! driver ([`SecureUser`]). Included with `#[path = "common/msg.rs"] mod msg;` next to
//! `mod common;`.

#![allow(dead_code)] // Each test file uses its own part.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use cig_testkit::{Proc, free_tcp_port, free_udp_port, wait_until};
use cig_umsg::message::{AckStatus, Body, MessageId, Received};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::common::{Domain, GW, T, run, server_command, spawn_relay};

pub const USER: &str = "tel:+4670123456";

/// cig-msg's Python Maildir peer (`put MAILBOX SPEC.json` / `take MAILBOX`).
pub fn python_peer(args: &[&str]) -> String {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../cig-msg/tests/peers/maildir_peer.py");
    run(Command::new("python3").arg(script).args(args))
}

/// The gateway's messaging: messages from `sip:{u}@pbx.com` in the read mailbox go to
/// `tel:+{n}` for `To: sip:9{n}@secure.com` with From `tel:+8888;{u}`; messages from secure
/// users to `tel:+8888;1{e}` are written with `From: sip:{n}@secure.com`,
/// `To: sip:1{e}@pbx.com`; to `tel:+8888;2{x}` they go as a SIP MESSAGE to the PBX on
/// `pbx_port` (digest account `gateway`/`s3cret`); to `tel:+8888;46{n}` as SMS `+46{n}` to
/// the SMSC on `smsc_port`, whose texts from `+{m}` reach `tel:+{n}` from `tel:+8888;{m}`.
/// A SIP MESSAGE to `sip:9{n}@…` from `sip:{u}@…` goes to `tel:+{n}` from `tel:+8888;{u}`.
pub fn conf(read: &Path, write: &Path, pbx_port: u16, smsc_port: u16) -> String {
    format!(
        r#"
map maptel2sip {{ entry pbx tel "tel:+8888;2{{x}}" sip "sip:2{{x}}@127.0.0.1:{pbx_port}" auth pbxaccount; }}
map srcsip2tel {{ entry any sip "sip:{{u}}@{{h}}" tel "tel:+8888;{{u}}"; }}
map mapsip2tel {{ entry sipext2tel sip "sip:9{{n}}@{{d}}" tel "tel:+{{n}}"; }}
map srctel2sip {{ entry tel2sipsrc tel "tel:+{{n}}" sip "sip:{{n}}@secure.com"; }}
auth pbxaccount {{ user "gateway"; password "s3cret"; }}
interfaces {{
    tel {{ extension map maptel2sip; source map srcsip2tel; }}
    sip {{ extension map mapsip2tel; source map srctel2sip; bind 127.0.0.1; messaging true; }}
}}
translate_map ext2gw {{ rule match "sip:{{u}}@pbx.com" translation "tel:+8888;{{u}}"; }}
translate_map secure2tel {{ rule match "sip:9{{n}}@secure.com" translation "tel:+{{n}}"; }}
translate_map tel2secure {{ rule match "tel:+{{n}}" translation "sip:{{n}}@secure.com"; }}
translate_map gw2ext {{ rule match "tel:+8888;1{{e}}" translation "sip:1{{e}}@pbx.com"; }}
translate_map sms_out_from {{ rule match "tel:+{{n}}" translation "+{{n}}"; }}
translate_map sms_out_to {{ rule match "tel:+8888;46{{n}}" translation "+46{{n}}"; }}
translate_map sms_in_from {{ rule match "+{{n}}" translation "tel:+8888;{{n}}"; }}
translate_map sms_in_to {{ rule match "+{{n}}" translation "tel:+{{n}}"; }}
mailboxes {{
    read {{ path "{}"; map_from translate_map ext2gw; map_to translate_map secure2tel; }}
    write {{ path "{}"; map_from translate_map tel2secure; map_to translate_map gw2ext; }}
}}
message_centers {{
    smpp {{ hostname "127.0.0.1"; port {smsc_port}; user "cig"; password "secret";
        read {{ map_from translate_map sms_in_from; map_to translate_map sms_in_to; }}
        write {{ map_from translate_map sms_out_from; map_to translate_map sms_out_to; }} }}
}}
"#,
        read.display(),
        write.display()
    )
}

pub struct Bed {
    pub dir: TempDir,
    pub domain: Domain,
    pub sip_port: u16,
    pub mgmt_port: u16,
    pub pbx_port: u16,
    pub smsc_port: u16,
    pub crs: Proc,
    _relay: Proc,
    pub server: Proc,
}

impl Bed {
    pub fn start() -> Bed {
        Bed::start_with(&[])
    }

    /// With extra cig-server flags.
    pub fn start_with(server_args: &[&str]) -> Bed {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let domain = Domain::create(d, &[GW, USER]);
        let userdata = d.join("userdata");
        fs::create_dir_all(&userdata).unwrap();
        domain.export(
            GW,
            &userdata.join("cig.raw"),
            &userdata.join("cig.raw.code"),
        );
        domain.export(USER, &d.join("user.bundle"), &d.join("user.code"));
        let (read, write) = (d.join("mail/read"), d.join("mail/write"));
        for mb in [&read, &write] {
            run(Command::new(cig_testkit::bin("cig-cli"))
                .arg("create-maildir")
                .arg(mb));
        }
        let (pbx_port, smsc_port) = (free_udp_port(), free_tcp_port());
        fs::write(d.join("cig.conf"), conf(&read, &write, pbx_port, smsc_port)).unwrap();
        let crs = domain.spawn_crs();
        let relay = spawn_relay(d);
        let mut bed = Bed {
            domain,
            sip_port: free_udp_port(),
            mgmt_port: free_tcp_port(),
            pbx_port,
            smsc_port,
            crs,
            _relay: relay,
            server: Proc::spawn(&mut Command::new("true")),
            dir,
        };
        bed.server = bed.spawn_server(server_args);
        bed
    }

    /// cig-server, ready.
    pub fn spawn_server(&self, args: &[&str]) -> Proc {
        let d = self.dir.path();
        let mut server = Proc::spawn(
            server_command(d, self.sip_port, self.mgmt_port, &d.join("no-hook")).args(args),
        );
        server
            .wait_line(|l| l == "cig-server ready", T)
            .unwrap_or_else(|| panic!("cig-server: {}", server.stderr()));
        server
    }

    /// Kills cig-server with SIGKILL (a crash: nothing flushed, no goodbye to the switch);
    /// [`Bed::spawn_server`] starts it again.
    pub fn kill_server(&mut self) {
        drop(std::mem::replace(
            &mut self.server,
            Proc::spawn(&mut Command::new("true")),
        ));
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn cig_log(&self) -> String {
        fs::read_to_string(self.path("log/cig.log")).unwrap_or_default()
    }

    pub fn files(&self, dir: &str) -> Vec<PathBuf> {
        fs::read_dir(self.path(&format!("mail/{dir}")))
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    }

    /// Puts the messages of `spec` (cig-msg's maildir_peer.py format) into the read mailbox
    /// with Python; the files in its `new/`.
    pub fn put(&self, spec: Value) -> Vec<PathBuf> {
        let file = self.path("spec.json");
        fs::write(&file, spec.to_string()).unwrap();
        let read = self.path("mail/read");
        python_peer(&["put", read.to_str().unwrap(), file.to_str().unwrap()]);
        self.files("read/new")
    }

    /// Puts one text from `sip:{from_ext}@pbx.com` to the secure user; its file.
    pub fn put_for_user(&self, from_ext: &str, text: &str) -> PathBuf {
        let files = self.put(json!([{"to": "sip:94670123456@secure.com",
            "from": format!("sip:{from_ext}@pbx.com"), "date": 1448558144, "text": text,
            "headers": [], "attachments": []}]));
        assert_eq!(files.len(), 1);
        files[0].clone()
    }
}

/// What the secure user's client saw.
#[derive(Debug)]
pub enum Seen {
    Message(Received),
    Acked(MessageId, AckStatus),
}

/// A secure user: a cig-umsg client over the real driver, registered at the switch. Messages
/// it receives are reported; the client core acknowledges them (MSG_ACK delivered), or, with
/// deferred acknowledgements, the test does ([`SecureUser::ack`]).
pub struct SecureUser {
    pub rt: tokio::runtime::Runtime,
    pub handle: cig_umsg::driver::client::ClientHandle,
    pub seen: std_mpsc::Receiver<Seen>,
}

impl SecureUser {
    pub fn start(bed: &Bed) -> SecureUser {
        SecureUser::start_with(bed, false)
    }

    pub fn start_with(bed: &Bed, deferred_acks: bool) -> SecureUser {
        use cig_umsg::client::Event;
        use cig_umsg::driver::client::{ClientConfig, ClientEvent, start};
        let sealed = fs::read(bed.path("user.bundle")).unwrap();
        let code = fs::read_to_string(bed.path("user.code")).unwrap();
        let code = cig_mikey_sakke::bundle::TransferCode::parse(code.trim()).unwrap();
        let keys = cig_mikey_sakke::bundle::open(&sealed, &code).unwrap();
        let mut cfg = ClientConfig::new(keys);
        cfg.switches = vec![bed.domain.switch.clone()];
        cfg.defer_message_acks = deferred_acks;
        let rt = tokio::runtime::Runtime::new().unwrap();
        let (tx, seen) = std_mpsc::channel();
        let (handle, mut events) = rt.block_on(async { start(cfg) });
        rt.spawn(async move {
            while let Some(e) = events.recv().await {
                let s = match e {
                    ClientEvent::Registered { .. } => None,
                    ClientEvent::Core(Event::Message(m)) => Some(Seen::Message(m)),
                    ClientEvent::Core(Event::Acked(id, st)) => Some(Seen::Acked(id, st)),
                    _ => None,
                };
                if let Some(s) = s {
                    let _ = tx.send(s);
                }
            }
        });
        assert!(
            wait_until(T, || handle.with(|_, _| ()).is_some()),
            "the secure user did not register"
        );
        SecureUser { rt, handle, seen }
    }

    pub fn send(&self, to: &str, body: &Body) -> MessageId {
        let _guard = self.rt.enter();
        self.handle
            .with(|s, now| {
                let (id, frame) = s
                    .messenger
                    .send(to, body, now, &mut rand_core::OsRng)
                    .unwrap();
                s.send(frame);
                id
            })
            .expect("registered")
    }

    /// The application's answer to a message (deferred acknowledgements).
    pub fn ack(&self, id: MessageId, status: AckStatus) {
        let _guard = self.rt.enter();
        self.handle.ack_message(id, status);
    }

    pub fn next(&self, timeout: Duration) -> Option<Seen> {
        self.seen.recv_timeout(timeout).ok()
    }

    /// The next message (acknowledgements in between skipped); panics with cig.log after
    /// `timeout`.
    pub fn message(&self, bed: &Bed, timeout: Duration) -> Received {
        loop {
            match self.next(timeout) {
                Some(Seen::Message(m)) => return m,
                Some(_) => continue,
                None => panic!("no message; cig.log:\n{}", bed.cig_log()),
            }
        }
    }

    /// The MSG_ACK for `id`; panics with cig.log after `timeout`.
    pub fn acked(&self, bed: &Bed, id: MessageId, timeout: Duration) -> AckStatus {
        loop {
            match self.next(timeout) {
                Some(Seen::Acked(got, st)) if got == id => return st,
                Some(_) => continue,
                None => panic!("no MSG_ACK; cig.log:\n{}", bed.cig_log()),
            }
        }
    }
}

pub fn text(t: &str) -> Body {
    Body {
        text: t.into(),
        attachments: vec![],
    }
}
