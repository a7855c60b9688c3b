//! The typed configuration model: what a valid `cig.conf` means, without source positions.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use crate::{IpNet, Secret, Template};

/// Default SMPP port (IANA `smpp`), used when a message centre gives no `port`.
pub const DEFAULT_SMPP_PORT: u16 = 2775;

/// A whole, validated `cig.conf`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// `map NAME { entry … }` in file order.
    pub maps: Vec<Map>,
    /// `auth NAME { user …; password …; }` in file order.
    pub auths: Vec<Auth>,
    /// The `interfaces { tel { … } sip { … } }` section.
    pub interfaces: Interfaces,
    /// `translate_map NAME { rule … }` in file order.
    pub translate_maps: Vec<TranslateMap>,
    /// The `mailboxes { … }` section (empty if absent).
    pub mailboxes: Mailboxes,
    /// `message_centers { smpp { … } … }` in file order.
    pub message_centers: Vec<SmppCenter>,
    /// `log_dir "…";` (addition): where cig.log, relay.log and session.log go.
    pub log_dir: Option<PathBuf>,
    /// `relay NAME { … }` (addition) in file order: the cig-relay instances cig-server drives
    /// (empty: the one local relay of `cig-server --relay-socket`).
    pub relays: Vec<Relay>,
}

/// `relay NAME { … }` (addition): one cig-relay instance cig-server drives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relay {
    /// The relay's name (unique), shown by `cig-cli status` and in cig.log.
    pub name: String,
    /// How cig-server reaches its control port.
    pub endpoint: RelayEndpoint,
}

/// Where a relay's control protocol (docs/relay-control.md) is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayEndpoint {
    /// `socket "PATH";`: a local relay's Unix control socket.
    Unix(PathBuf),
    /// `address IP; port N; ca "…"; cert "…"; key "…";`: a remote relay over TCP with mutual
    /// TLS. The relay's certificate must be issued by `ca` for `address` (an IP SAN); `cert`
    /// and `key` are cig-server's client certificate and key (PEM files).
    Tls {
        /// The relay's control address.
        address: SocketAddr,
        /// The CA certificate(s) the relay's certificate must chain to.
        ca: PathBuf,
        /// cig-server's client certificate chain.
        cert: PathBuf,
        /// cig-server's client private key.
        key: PathBuf,
    },
}

/// A named list of entries; the first entry that matches wins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Map {
    /// The map's name.
    pub name: String,
    /// Entries in file order.
    pub entries: Vec<MapEntry>,
}

/// `entry NAME sip "…" tel "…" [auth NAME];` — one template per domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapEntry {
    /// The entry's name (unique within its map).
    pub name: String,
    /// The SIP-side template.
    pub sip: Option<Template>,
    /// The TEL-side template.
    pub tel: Option<Template>,
    /// Name of the [`Auth`] used when a call routed by this entry leaves on SIP.
    pub auth: Option<String>,
}

impl MapEntry {
    /// The template for side `kind`.
    pub fn side(&self, kind: InterfaceKind) -> Option<&Template> {
        match kind {
            InterfaceKind::Tel => self.tel.as_ref(),
            InterfaceKind::Sip => self.sip.as_ref(),
        }
    }
}

/// `auth NAME { user "…"; password "…"; }`: SIP digest credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Auth {
    /// The credential set's name.
    pub name: String,
    /// Digest user name.
    pub user: String,
    /// Digest password.
    pub password: Secret,
}

/// The two domains the gateway joins.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum InterfaceKind {
    /// The secure (MIKEY-SAKKE) domain: TEL URIs.
    Tel,
    /// The SIP domain (PBX): SIP URIs.
    Sip,
}

impl InterfaceKind {
    /// Both kinds, tel first.
    pub const ALL: [InterfaceKind; 2] = [InterfaceKind::Tel, InterfaceKind::Sip];

    /// `"tel"` or `"sip"`, the keyword in cig.conf.
    pub fn as_str(self) -> &'static str {
        match self {
            InterfaceKind::Tel => "tel",
            InterfaceKind::Sip => "sip",
        }
    }

    /// The other domain.
    pub fn other(self) -> InterfaceKind {
        match self {
            InterfaceKind::Tel => InterfaceKind::Sip,
            InterfaceKind::Sip => InterfaceKind::Tel,
        }
    }
}

impl std::fmt::Display for InterfaceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `interfaces` section; an absent interface is `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Interfaces {
    /// `tel { … }`.
    pub tel: Option<Interface>,
    /// `sip { … }`.
    pub sip: Option<Interface>,
}

/// SIP transport protocols (addition: `transport udp tcp;`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Transport {
    /// SIP over UDP.
    Udp,
    /// SIP over TCP.
    Tcp,
}

impl Transport {
    /// `"udp"` or `"tcp"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// Settings of one interface.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Interface {
    /// `extension map NAME;` in order: numbers callable from this interface.
    pub extension_maps: Vec<String>,
    /// `source map NAME;` in order: from-URIs for calls leaving on this interface.
    pub source_maps: Vec<String>,
    /// `bind IP;`: local address.
    pub bind: Option<IpAddr>,
    /// `port N;` (addition, sip only): local SIP port; 5060 when absent.
    pub port: Option<u16>,
    /// `transport udp|tcp …;` (addition, sip only): empty means both UDP and TCP.
    pub transports: Vec<Transport>,
    /// `messaging true|false;`: accept and send text messages on this interface.
    pub messaging: bool,
    /// `rtp_port_range LOW HIGH;`: inclusive local RTP port range, `1024 <= LOW < HIGH`.
    pub rtp_port_range: Option<(u16, u16)>,
    /// `rtp_remote_addr_override OLD NEW;` in order: replace remote RTP address OLD by NEW.
    pub rtp_remote_addr_override: Vec<(IpAddr, IpAddr)>,
    /// `allow NET …;` (addition, sip only): trusted peer networks; empty means any peer.
    pub allow: Vec<IpNet>,
}

impl Interface {
    /// Does this interface listen on `t` (every transport when none is configured)?
    pub fn uses_transport(&self, t: Transport) -> bool {
        self.transports.is_empty() || self.transports.contains(&t)
    }

    /// Is a peer at `ip` allowed (every peer when no `allow` is configured)?
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allow.is_empty() || self.allow.iter().any(|n| n.contains(ip))
    }

    /// The remote RTP address to use instead of `addr` (first matching override), if any.
    pub fn rtp_remote_override(&self, addr: IpAddr) -> Option<IpAddr> {
        self.rtp_remote_addr_override
            .iter()
            .find(|(old, _)| *old == addr)
            .map(|(_, new)| *new)
    }
}

/// `translate_map NAME { rule match "…" translation "…"; … }` for messaging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TranslateMap {
    /// The map's name.
    pub name: String,
    /// Rules in file order; the first match wins.
    pub rules: Vec<TranslateRule>,
}

/// `rule match "…" translation "…";`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TranslateRule {
    /// The pattern the input must match.
    pub match_: Template,
    /// The output, expanded with the captured parameters.
    pub translation: Template,
}

/// The `mailboxes` section.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mailboxes {
    /// `read { … }`: Maildirs CIG watches for messages to secure users.
    pub read: Vec<Mailbox>,
    /// `write { … }`: Maildirs CIG writes messages from secure users into.
    pub write: Vec<Mailbox>,
}

/// One `read { … }` or `write { … }` mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailbox {
    /// `path "…";` the Maildir.
    pub path: PathBuf,
    /// `map_from translate_map X;` and `map_to translate_map Y;`.
    pub maps: TranslatePair,
}

/// A `map_from` / `map_to` pair of translate map names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TranslatePair {
    /// Translate map for the source / sender / "From".
    pub map_from: String,
    /// Translate map for the target / receiver / "To".
    pub map_to: String,
}

/// `smpp { hostname …; port …; user …; password …; read { … } write { … } }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmppCenter {
    /// DNS name or IP address of the message centre.
    pub hostname: String,
    /// TCP port, [`DEFAULT_SMPP_PORT`] when not given.
    pub port: u16,
    /// SMPP `system_id`.
    pub user: String,
    /// SMPP password.
    pub password: Secret,
    /// Maps for messages received from the centre (`None`: the centre is not read from).
    pub read: Option<TranslatePair>,
    /// Maps for messages sent to the centre (`None`: nothing is sent to it).
    pub write: Option<TranslatePair>,
}

impl Config {
    /// The map called `name`.
    pub fn map(&self, name: &str) -> Option<&Map> {
        self.maps.iter().find(|m| m.name == name)
    }

    /// The auth called `name`.
    pub fn auth(&self, name: &str) -> Option<&Auth> {
        self.auths.iter().find(|a| a.name == name)
    }

    /// Interface `k`, if configured.
    pub fn interface(&self, k: InterfaceKind) -> Option<&Interface> {
        match k {
            InterfaceKind::Tel => self.interfaces.tel.as_ref(),
            InterfaceKind::Sip => self.interfaces.sip.as_ref(),
        }
    }

    /// The translate map called `name`.
    pub fn translate_map(&self, name: &str) -> Option<&TranslateMap> {
        self.translate_maps.iter().find(|m| m.name == name)
    }
}
