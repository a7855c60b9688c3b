//! `cig-kms`: the KMS for a CIG MIKEY-SAKKE community (init, issue, export of encrypted key
//! bundles) and an operator's I_MESSAGE interop tool (inspect, verify, create). Output formats
//! are documented in docs/keys.md and kept stable.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cig_mikey_sakke::Error;
use cig_mikey_sakke::bundle::{self, TransferCode};
use cig_mikey_sakke::eccsi::{Kpak, Pvt, SigningKey, Ssk};
use cig_mikey_sakke::keystore::{self, KeyMaterial};
use cig_mikey_sakke::kms::Community;
use cig_mikey_sakke::mikey::payload::{SIGN_TYPE_ECCSI, role};
use cig_mikey_sakke::mikey::{self, CsIdMap, ErrorCode, IMessage, KeyPeriod, Profile, Request};
use cig_mikey_sakke::sakke::{KmsPublicKey, Rsk};
use clap::{Parser, Subcommand};
use rand_core::OsRng;
use zeroize::Zeroizing;

mod switch;

#[derive(Parser)]
#[command(
    name = "cig-kms",
    version,
    about = "CIG MIKEY-SAKKE key management and I_MESSAGE tool"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a community: writes community.json (public) and master.json (0600) into DIR.
    Init {
        /// KMS directory.
        #[arg(long)]
        dir: PathBuf,
        /// Security domain name.
        #[arg(long)]
        domain: String,
    },
    /// Issue keys for IDENTITY (tel:+NNN) for the current and the next month.
    Issue {
        /// KMS directory.
        #[arg(long)]
        dir: PathBuf,
        /// The identity, a tel URI such as tel:+8888.
        #[arg(long)]
        identity: String,
        /// Issue for the month of this Unix time instead of now.
        #[arg(long)]
        at_unix: Option<u64>,
    },
    /// Export an encrypted key bundle for IDENTITY; prints the one-time transfer code.
    Export {
        /// KMS directory.
        #[arg(long)]
        dir: PathBuf,
        /// The identity.
        #[arg(long)]
        identity: String,
        /// Bundle file to write.
        #[arg(long)]
        out: PathBuf,
        /// A switch address (host:port); repeat for several.
        #[arg(long = "switch")]
        switches: Vec<String>,
        /// PEM file of the switch's CA certificate (default: DIR/switch/ca.pem when
        /// `switch-cert` made one).
        #[arg(long)]
        switch_ca: Option<PathBuf>,
        /// Write the transfer code to this file (0600) instead of printing it.
        #[arg(long)]
        code_file: Option<PathBuf>,
    },
    /// Create (once) the switch CA in DIR/switch/ and issue a TLS server certificate for a
    /// switch named NAME; prints the file paths.
    SwitchCert {
        /// KMS directory.
        #[arg(long)]
        dir: PathBuf,
        /// The switch's host name (a DNS name or an IP address), the certificate's first SAN.
        #[arg(long)]
        name: String,
        /// An IP address the switch is also dialled by (an IP SAN); repeat for several.
        #[arg(long = "ip")]
        ips: Vec<std::net::IpAddr>,
    },
    /// Create (once) the relay CA in DIR/relay/ and issue a TLS certificate for a remote
    /// cig-relay's control port named NAME, or (`--client`) for cig-server connecting to
    /// relays; prints the file paths (docs/operations.md "Several relays").
    RelayCert {
        /// KMS directory.
        #[arg(long)]
        dir: PathBuf,
        /// The relay's host name or IP address (the first SAN), or cig-server's name.
        #[arg(long)]
        name: String,
        /// An IP address the relay is dialled by (an IP SAN); repeat for several.
        #[arg(long = "ip")]
        ips: Vec<std::net::IpAddr>,
        /// Issue a client certificate (for cig-server) instead of a server certificate.
        #[arg(long)]
        client: bool,
    },
    /// I_MESSAGE interop tool.
    Imessage {
        #[command(subcommand)]
        cmd: ImCmd,
    },
}

#[derive(Subcommand)]
enum ImCmd {
    /// Print every payload of a base64 I_MESSAGE.
    Inspect {
        /// The message, base64 (an optional leading "mikey " is ignored).
        b64: String,
    },
    /// Verify the signature and decapsulate; prints ssv= and the SRTP keys of the first CS.
    Verify {
        /// KPAK, 04||x||y hex.
        #[arg(long)]
        kpak: String,
        /// SAKKE Z, 04||x||y hex.
        #[arg(long)]
        z: String,
        /// The receiver's RSK, 04||x||y hex.
        #[arg(long)]
        rsk: String,
        /// The sender's identifier, hex.
        #[arg(long)]
        sender_id: String,
        /// The receiver's identifier, hex.
        #[arg(long)]
        receiver_id: String,
        /// The message, base64.
        b64: String,
    },
    /// Create a signed I_MESSAGE with a fresh SSV; prints base64.
    Create {
        /// The sender's SSK, hex.
        #[arg(long)]
        ssk: String,
        /// The sender's PVT, 04||x||y hex.
        #[arg(long)]
        pvt: String,
        /// KPAK, 04||x||y hex.
        #[arg(long)]
        kpak: String,
        /// SAKKE Z, 04||x||y hex.
        #[arg(long)]
        z: String,
        /// The sender's identifier, hex.
        #[arg(long)]
        sender_id: String,
        /// The receiver's identifier, hex.
        #[arg(long)]
        receiver_id: String,
        /// rfc6509 or mcx.
        #[arg(long, default_value = "rfc6509")]
        profile: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cig-kms: {e}");
            ExitCode::from(2)
        }
    }
}

fn unhex(s: &str, what: &'static str) -> Result<Zeroizing<Vec<u8>>, Error> {
    hex::decode(s.trim())
        .map(Zeroizing::new)
        .map_err(|_| Error::Encoding(what))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn users_dir(dir: &Path) -> PathBuf {
    dir.join("users")
}

fn run(cmd: Cmd) -> Result<ExitCode, Error> {
    match cmd {
        Cmd::Init { dir, domain } => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::Keystore(format!("{}: {e}", dir.display())))?;
            let c = Community::generate(&domain, &mut OsRng)?;
            c.save(&dir)?;
            println!("domain={}", c.domain);
            println!("kpak={}", hex::encode(c.kpak.to_bytes()));
            println!("z={}", hex::encode(c.zpub.as_bytes()));
        }
        Cmd::Issue {
            dir,
            identity,
            at_unix,
        } => {
            let c = Community::load(&dir)?;
            let now = KeyPeriod::from_unix(at_unix.unwrap_or_else(unix_now))?;
            let periods = vec![
                c.issue(&identity, now, &mut OsRng)?,
                c.issue(&identity, now.next()?, &mut OsRng)?,
            ];
            let mut m = c.key_material(&identity, periods, Vec::new(), None);
            let users = users_dir(&dir);
            std::fs::create_dir_all(&users)
                .map_err(|e| Error::Keystore(format!("{}: {e}", users.display())))?;
            let path = keystore::keystore_path(&users, &identity)?;
            if path.exists() {
                m.keep_valid_periods(&keystore::load(&path)?);
            }
            keystore::save(&users, &m)?;
            print_material(&m);
        }
        Cmd::Export {
            dir,
            identity,
            out,
            switches,
            switch_ca,
            code_file,
        } => {
            Community::load(&dir)?;
            let mut m = keystore::load(&keystore::keystore_path(&users_dir(&dir), &identity)?)?;
            m.switch_addresses = switches;
            let switch_ca = switch_ca.or_else(|| {
                let p = switch::ca_paths(&dir).0;
                p.exists().then_some(p)
            });
            m.switch_ca_cert = match switch_ca {
                Some(p) => Some(
                    String::from_utf8(keystore::read_capped(&p)?.to_vec())
                        .map_err(|_| Error::Keystore(format!("{}: not text", p.display())))?,
                ),
                None => None,
            };
            let code = TransferCode::generate(&mut OsRng);
            let sealed = bundle::seal(&m, &code, &mut OsRng)?;
            keystore::write_atomic(&out, &sealed, 0o600)?;
            print_material(&m);
            println!("bundle={}", out.display());
            match code_file {
                Some(p) => {
                    let mut line = Zeroizing::new(code.as_str().to_owned());
                    line.push('\n');
                    keystore::write_atomic(&p, line.as_bytes(), 0o600)?;
                }
                None => println!("transfer-code={}", code.as_str()),
            }
        }
        Cmd::SwitchCert { dir, name, ips } => {
            let made = switch::issue(&dir, &name, &ips)?;
            println!("ca={}", made.ca.display());
            println!("cert={}", made.cert.display());
            println!("key={}", made.key.display());
        }
        Cmd::RelayCert {
            dir,
            name,
            ips,
            client,
        } => {
            let made = switch::issue_by(&dir, switch::Pki::Relay, &name, &ips, client)?;
            println!("ca={}", made.ca.display());
            println!("cert={}", made.cert.display());
            println!("key={}", made.key.display());
        }
        Cmd::Imessage { cmd } => return imessage(cmd),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_material(m: &KeyMaterial) {
    println!("identity={}", m.identity);
    println!("domain={}", m.domain);
    for p in &m.periods {
        println!("period={}", p.period);
    }
}

fn decode_message(b64: &str) -> Result<Vec<u8>, Error> {
    let s = b64.trim();
    let s = s.strip_prefix("mikey ").unwrap_or(s);
    B64.decode(s.trim())
        .map_err(|_| Error::Encoding("base64 I_MESSAGE"))
}

fn imessage(cmd: ImCmd) -> Result<ExitCode, Error> {
    match cmd {
        ImCmd::Inspect { b64 } => {
            let msg = IMessage::parse(&decode_message(&b64)?)?;
            inspect(&msg);
        }
        ImCmd::Verify {
            kpak,
            z,
            rsk,
            sender_id,
            receiver_id,
            b64,
        } => {
            let kpak = Kpak::from_bytes(&unhex(&kpak, "KPAK")?)?;
            let zpub = KmsPublicKey::from_bytes(&unhex(&z, "Z")?)?;
            let rsk = Rsk::from_bytes(&unhex(&rsk, "RSK")?)?;
            let sender_id = unhex(&sender_id, "sender identifier")?;
            let receiver_id = unhex(&receiver_id, "receiver identifier")?;
            let result = IMessage::parse(&decode_message(&b64)?).and_then(|msg| {
                let verified = mikey::verify(msg, &kpak, &sender_id)?;
                let ssv = verified.decapsulate(&zpub, &receiver_id, &rsk)?;
                let cs_id = verified.message().header.cs_map.cs_ids()[0];
                let keys = verified.srtp_keys(&ssv, cs_id)?;
                Ok((ssv, cs_id, keys))
            });
            match result {
                Ok((ssv, cs_id, keys)) => {
                    println!("verified=yes");
                    println!("ssv={}", hex::encode(ssv.as_bytes()));
                    println!("cs_id={cs_id}");
                    println!("srtp_master_key={}", hex::encode(keys.master_key));
                    println!("srtp_master_salt={}", hex::encode(keys.master_salt));
                }
                Err(e) => {
                    println!("verified=no");
                    println!("reason={e}");
                    println!("mikey_error={}", ErrorCode::for_error(&e).code());
                    return Ok(ExitCode::from(1));
                }
            }
        }
        ImCmd::Create {
            ssk,
            pvt,
            kpak,
            z,
            sender_id,
            receiver_id,
            profile,
        } => {
            let kpak = Kpak::from_bytes(&unhex(&kpak, "KPAK")?)?;
            let zpub = KmsPublicKey::from_bytes(&unhex(&z, "Z")?)?;
            let ssk = Ssk::from_bytes(&unhex(&ssk, "SSK")?)?;
            let pvt = Pvt::from_bytes(&unhex(&pvt, "PVT")?)?;
            let sender_id = unhex(&sender_id, "sender identifier")?;
            let receiver_id = unhex(&receiver_id, "receiver identifier")?;
            let signer = SigningKey::new(&kpak, &sender_id, ssk, pvt)?;
            let req = Request {
                profile: Profile::from_name(&profile)?,
                sender_id: &sender_id,
                receiver_id: &receiver_id,
                now: SystemTime::now(),
            };
            let created = mikey::create(&req, &signer, &zpub, &mut OsRng)?;
            println!("{}", B64.encode(created.message.as_bytes()));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Identity bytes as hex, plus the text when it is printable (NULs shown as `\0`).
fn show_bytes(b: &[u8]) -> String {
    let printable = b
        .iter()
        .all(|c| c.is_ascii_graphic() || *c == b' ' || *c == 0);
    if printable && !b.is_empty() {
        format!(
            "{} text=\"{}\"",
            hex::encode(b),
            String::from_utf8_lossy(b).replace('\0', "\\0")
        )
    } else {
        hex::encode(b)
    }
}

fn inspect(msg: &IMessage) {
    let h = &msg.header;
    let map = match &h.cs_map {
        CsIdMap::Srtp(_) => "srtp-id",
        CsIdMap::Empty(_) => "empty",
        CsIdMap::Generic(_) => "generic-id",
    };
    println!(
        "HDR version=1 data_type={} v={} prf={} csb_id={:08x} cs_map={map}",
        h.data_type,
        u8::from(h.v_flag),
        h.prf.code(),
        h.csb_id
    );
    match &h.cs_map {
        CsIdMap::Srtp(v) => {
            for (i, cs) in v.iter().enumerate() {
                println!(
                    "  CS cs_id={} policy={} ssrc={:08x} roc={:08x}",
                    i + 1,
                    cs.policy_no,
                    cs.ssrc,
                    cs.roc
                );
            }
        }
        CsIdMap::Empty(n) => println!("  CS count={n}"),
        CsIdMap::Generic(v) => {
            for cs in v {
                println!(
                    "  CS cs_id={} prot={} s={} policies={} session_data={} spi={}",
                    cs.cs_id,
                    cs.prot_type,
                    u8::from(cs.s_flag),
                    hex::encode(&cs.policies),
                    hex::encode(&cs.session_data),
                    hex::encode(&cs.spi)
                );
            }
        }
    }
    let secs = msg.ntp_seconds();
    let period = KeyPeriod::from_ntp_seconds(secs).map_or_else(|_| "-".into(), |p| p.to_string());
    println!(
        "T type=0 ntp={:016x} unix={} month={period}",
        msg.timestamp,
        secs.saturating_sub(mikey::profile::NTP_UNIX_OFFSET)
    );
    println!(
        "RAND len={} value={}",
        msg.rand.len(),
        hex::encode(&msg.rand)
    );
    for idr in &msg.idrs {
        println!(
            "IDR role={}({}) type={} len={} value={}",
            idr.role,
            role::name(idr.role),
            idr.id_type,
            idr.data.len(),
            show_bytes(&idr.data)
        );
    }
    for sp in &msg.policies {
        let params: Vec<String> = sp
            .params
            .iter()
            .map(|(t, v)| format!("{t}:{}", hex::encode(v)))
            .collect();
        println!(
            "SP policy={} prot={} params={}",
            sp.policy_no,
            sp.prot_type,
            params.join(",")
        );
    }
    println!(
        "SAKKE params={} id_scheme={} len={} sed={}",
        msg.sakke.params,
        msg.sakke.id_scheme,
        msg.sakke.sed.len(),
        hex::encode(&msg.sakke.sed)
    );
    for e in &msg.extensions {
        println!(
            "EXT type={} len={} data={}",
            e.ext_type,
            e.data.len(),
            hex::encode(&e.data)
        );
    }
    let sig = msg.signature.as_bytes();
    println!(
        "SIGN type={} len={} r={} s={} pvt={}",
        SIGN_TYPE_ECCSI,
        sig.len(),
        hex::encode(&sig[..32]),
        hex::encode(&sig[32..64]),
        hex::encode(&sig[64..])
    );
    println!("signed_len={}", msg.signed_bytes().len());
}
