//! The printer: `Display` for [`Config`] writes a valid `cig.conf` in canonical layout, which
//! parses back to the same model. Passwords are written out (it is a config file), so never
//! log a printed config.

use std::fmt::{self, Display, Formatter, Write};

use super::model::*;
use crate::Template;

/// A string literal with `\\`, `\"`, `\n`, `\t`, `\r` and other control characters escaped.
pub(crate) struct Quoted<'a>(pub &'a str);

impl Display for Quoted<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                '\t' => f.write_str("\\t")?,
                '\r' => f.write_str("\\r")?,
                c if c.is_control() => write!(f, "\\u{{{:x}}}", u32::from(c))?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

fn tpl(t: &Template) -> Quoted<'_> {
    Quoted(t.as_str())
}

fn pair(f: &mut Formatter<'_>, indent: &str, p: &TranslatePair) -> fmt::Result {
    writeln!(f, "{indent}map_from translate_map {};", p.map_from)?;
    writeln!(f, "{indent}map_to translate_map {};", p.map_to)
}

fn interface(f: &mut Formatter<'_>, kind: InterfaceKind, i: &Interface) -> fmt::Result {
    writeln!(f, "    {kind} {{")?;
    for m in &i.extension_maps {
        writeln!(f, "        extension map {m};")?;
    }
    for m in &i.source_maps {
        writeln!(f, "        source map {m};")?;
    }
    if let Some(ip) = i.bind {
        writeln!(f, "        bind {ip};")?;
    }
    if let Some(port) = i.port {
        writeln!(f, "        port {port};")?;
    }
    if !i.transports.is_empty() {
        f.write_str("        transport")?;
        for t in &i.transports {
            write!(f, " {}", t.as_str())?;
        }
        f.write_str(";\n")?;
    }
    if i.messaging {
        writeln!(f, "        messaging true;")?;
    }
    if let Some((low, high)) = i.rtp_port_range {
        writeln!(f, "        rtp_port_range {low} {high};")?;
    }
    for (old, new) in &i.rtp_remote_addr_override {
        writeln!(f, "        rtp_remote_addr_override {old} {new};")?;
    }
    if !i.allow.is_empty() {
        f.write_str("        allow")?;
        for n in &i.allow {
            write!(f, " {n}")?;
        }
        f.write_str(";\n")?;
    }
    writeln!(f, "    }}")
}

impl Display for Config {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for a in &self.auths {
            writeln!(f, "auth {} {{", a.name)?;
            writeln!(f, "    user {};", Quoted(&a.user))?;
            writeln!(f, "    password {};", Quoted(a.password.expose()))?;
            writeln!(f, "}}")?;
        }
        for m in &self.maps {
            writeln!(f, "map {} {{", m.name)?;
            for e in &m.entries {
                write!(f, "    entry {}", e.name)?;
                if let Some(t) = &e.sip {
                    write!(f, " sip {}", tpl(t))?;
                }
                if let Some(t) = &e.tel {
                    write!(f, " tel {}", tpl(t))?;
                }
                if let Some(a) = &e.auth {
                    write!(f, " auth {a}")?;
                }
                f.write_str(";\n")?;
            }
            writeln!(f, "}}")?;
        }
        if self.interfaces.tel.is_some() || self.interfaces.sip.is_some() {
            writeln!(f, "interfaces {{")?;
            for kind in InterfaceKind::ALL {
                if let Some(i) = self.interface(kind) {
                    interface(f, kind, i)?;
                }
            }
            writeln!(f, "}}")?;
        }
        for m in &self.translate_maps {
            writeln!(f, "translate_map {} {{", m.name)?;
            for r in &m.rules {
                writeln!(
                    f,
                    "    rule match {} translation {};",
                    tpl(&r.match_),
                    tpl(&r.translation)
                )?;
            }
            writeln!(f, "}}")?;
        }
        if !self.mailboxes.read.is_empty() || !self.mailboxes.write.is_empty() {
            writeln!(f, "mailboxes {{")?;
            for (dir, list) in [
                ("read", &self.mailboxes.read),
                ("write", &self.mailboxes.write),
            ] {
                for m in list {
                    writeln!(f, "    {dir} {{")?;
                    let path = m.path.to_string_lossy();
                    writeln!(f, "        path {};", Quoted(&path))?;
                    pair(f, "        ", &m.maps)?;
                    writeln!(f, "    }}")?;
                }
            }
            writeln!(f, "}}")?;
        }
        if !self.message_centers.is_empty() {
            writeln!(f, "message_centers {{")?;
            for c in &self.message_centers {
                writeln!(f, "    smpp {{")?;
                writeln!(f, "        hostname {};", Quoted(&c.hostname))?;
                writeln!(f, "        port {};", c.port)?;
                writeln!(f, "        user {};", Quoted(&c.user))?;
                writeln!(f, "        password {};", Quoted(c.password.expose()))?;
                for (dir, p) in [("read", &c.read), ("write", &c.write)] {
                    if let Some(p) = p {
                        writeln!(f, "        {dir} {{")?;
                        pair(f, "            ", p)?;
                        writeln!(f, "        }}")?;
                    }
                }
                writeln!(f, "    }}")?;
            }
            writeln!(f, "}}")?;
        }
        for r in &self.relays {
            writeln!(f, "relay {} {{", r.name)?;
            match &r.endpoint {
                RelayEndpoint::Unix(path) => {
                    writeln!(f, "    socket {};", Quoted(&path.to_string_lossy()))?;
                }
                RelayEndpoint::Tls {
                    address,
                    ca,
                    cert,
                    key,
                } => {
                    writeln!(f, "    address {};", address.ip())?;
                    writeln!(f, "    port {};", address.port())?;
                    for (kw, p) in [("ca", ca), ("cert", cert), ("key", key)] {
                        writeln!(f, "    {kw} {};", Quoted(&p.to_string_lossy()))?;
                    }
                }
            }
            writeln!(f, "}}")?;
        }
        if let Some(dir) = &self.log_dir {
            writeln!(f, "log_dir {};", Quoted(&dir.to_string_lossy()))?;
        }
        Ok(())
    }
}
