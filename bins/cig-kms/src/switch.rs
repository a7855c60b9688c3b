//! The switch's TLS certificates (docs/keys.md, docs/umsg.md §1): a CA made once per KMS
//! directory (`switch/ca.pem`, key `switch/ca.key` 0600) and server certificates it issues
//! for switch host names (`switch/NAME.pem`, key `switch/NAME.key` 0600). The CA PEM is what
//! `export` puts into a key bundle's `switch_ca_cert`. The relays' control connections
//! (docs/relay-control.md "Transports") use a second CA made the same way in `relay/`, which
//! issues server certificates for remote relays and client certificates for cig-server.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use cig_mikey_sakke::Error;
use cig_mikey_sakke::keystore::{read_capped, write_atomic};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// Paths of what `issue` wrote.
#[derive(Debug)]
pub struct Issued {
    /// The CA certificate (PEM).
    pub ca: PathBuf,
    /// The server certificate (PEM).
    pub cert: PathBuf,
    /// The server key (PEM, 0600).
    pub key: PathBuf,
}

fn tls(what: &str) -> impl Fn(rcgen::Error) -> Error + '_ {
    move |e| Error::Keystore(format!("{what}: {e}"))
}

/// Which CA of a KMS directory issues a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pki {
    /// The switch CA (`switch/`): server certificates of switches.
    Switch,
    /// The relay CA (`relay/`): certificates of remote relays and of cig-server towards them.
    Relay,
}

impl Pki {
    fn dir(self) -> &'static str {
        match self {
            Pki::Switch => "switch",
            Pki::Relay => "relay",
        }
    }
}

/// The CA certificate and key paths of a KMS directory.
pub fn ca_paths(dir: &Path) -> (PathBuf, PathBuf) {
    ca_paths_of(dir, Pki::Switch)
}

/// The CA certificate and key paths of `pki` in a KMS directory.
fn ca_paths_of(dir: &Path, pki: Pki) -> (PathBuf, PathBuf) {
    let d = dir.join(pki.dir());
    (d.join("ca.pem"), d.join("ca.key"))
}

fn text(path: &Path) -> Result<String, Error> {
    String::from_utf8(read_capped(path)?.to_vec())
        .map_err(|_| Error::Keystore(format!("{}: not text", path.display())))
}

/// A host name usable as a file name and a SAN: letters, digits, `-`, `.`, `:` (IPv6).
fn check_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(Error::Keystore(format!(
            "switch name {name:?} is not a host name"
        )))
    }
}

/// The CA `pki` of `dir`, made on first use.
fn ca(dir: &Path, pki: Pki, domain: &str) -> Result<(String, KeyPair), Error> {
    let (cert_path, key_path) = ca_paths_of(dir, pki);
    if cert_path.exists() {
        let key = KeyPair::from_pem(&text(&key_path)?).map_err(tls("CA key"))?;
        return Ok((text(&cert_path)?, key));
    }
    let d = dir.join(pki.dir());
    std::fs::create_dir_all(&d).map_err(|e| Error::Keystore(format!("{}: {e}", d.display())))?;
    let key = KeyPair::generate().map_err(tls("CA key"))?;
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(tls("CA"))?;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("CIG {} CA {domain}", pki.dir()));
    p.distinguished_name = dn;
    p.not_before = rcgen::date_time_ymd(2024, 1, 1);
    p.not_after = rcgen::date_time_ymd(2049, 12, 31);
    let cert = p.self_signed(&key).map_err(tls("CA"))?;
    let pem = cert.pem();
    write_atomic(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_atomic(&cert_path, pem.as_bytes(), 0o644)?;
    Ok((pem, key))
}

/// Issues a server certificate for the switch `name` (and the extra `ips`), signed by the CA
/// of `dir` (made first when missing).
pub fn issue(dir: &Path, name: &str, ips: &[IpAddr]) -> Result<Issued, Error> {
    issue_by(dir, Pki::Switch, name, ips, false)
}

/// Issues a certificate for `name` (and the extra `ips`) signed by the CA `pki` of `dir` (made
/// first when missing): a TLS client certificate when `client`, else a server certificate.
pub fn issue_by(
    dir: &Path,
    pki: Pki,
    name: &str,
    ips: &[IpAddr],
    client: bool,
) -> Result<Issued, Error> {
    check_name(name)?;
    let domain = cig_mikey_sakke::kms::Community::load(dir)?.domain;
    let (ca_pem, ca_key) = ca(dir, pki, &domain)?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, &ca_key).map_err(tls("CA"))?;
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(tls("certificate"))?;
    let first = match name.parse::<IpAddr>() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => SanType::DnsName(name.try_into().map_err(tls("switch name"))?),
    };
    p.subject_alt_names = std::iter::once(first)
        .chain(ips.iter().map(|ip| SanType::IpAddress(*ip)))
        .collect();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    p.distinguished_name = dn;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    p.not_before = rcgen::date_time_ymd(2024, 1, 1);
    p.not_after = rcgen::date_time_ymd(2049, 12, 31);
    let key = KeyPair::generate().map_err(tls("server key"))?;
    let cert = p.signed_by(&key, &issuer).map_err(tls("certificate"))?;
    let d = dir.join(pki.dir());
    let out = Issued {
        ca: ca_paths_of(dir, pki).0,
        cert: d.join(format!("{name}.pem")),
        key: d.join(format!("{name}.key")),
    };
    write_atomic(&out.key, key.serialize_pem().as_bytes(), 0o600)?;
    write_atomic(&out.cert, cert.pem().as_bytes(), 0o644)?;
    Ok(out)
}
