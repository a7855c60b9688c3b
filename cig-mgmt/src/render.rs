//! The text layouts `cig-cli` prints, following the manual's CLI chapter: the `show call`
//! and `show umsg` tables and the `status` overview. Pure functions from the data to a
//! `String` (every line ends in `\n`).

use std::fmt::Write as _;

use crate::types::{CallRow, Status, UmsgRow};

/// The product line `status` and `help` open with.
pub const PRODUCT: &str = "CIG Interconnect Gateway";

/// Columns separated by two spaces, each as wide as its widest cell (header included); the
/// last column is not padded, so no line has trailing spaces.
fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; N]| {
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == N {
                out.push_str(cell);
            } else {
                let _ = write!(out, "{cell:<w$}  ", w = widths[i]);
            }
        }
        out.push('\n');
    };
    line(header);
    for row in rows {
        line(row.each_ref().map(String::as_str));
    }
    out
}

/// `show call`: the header `IN-FROM IN-TO OUT-FROM OUT-TO STATE`, then one line per call.
pub fn calls(rows: &[CallRow]) -> String {
    let rows: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.in_from.clone(),
                r.in_to.clone(),
                r.out_from.clone(),
                r.out_to.clone(),
                r.state.name().to_owned(),
            ]
        })
        .collect();
    table(["IN-FROM", "IN-TO", "OUT-FROM", "OUT-TO", "STATE"], &rows)
}

/// `show umsg`: the header `FROM TO STATE TIME ID`, then one line per session.
pub fn umsg(rows: &[UmsgRow]) -> String {
    let rows: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.from.clone(),
                r.to.clone(),
                r.state.clone(),
                r.time_secs.to_string(),
                r.id.clone(),
            ]
        })
        .collect();
    table(["FROM", "TO", "STATE", "TIME", "ID"], &rows)
}

/// Width of the label column of `status`.
const LABEL: usize = 26;

/// `status`: version, relay, UMSG and SIP sections as the manual prints them.
pub fn status(s: &Status) -> String {
    let mut out = String::new();
    let field = |out: &mut String, label: &str, value: &dyn std::fmt::Display| {
        let _ = writeln!(out, "{label:<LABEL$}{value}");
    };
    let _ = writeln!(out, "{PRODUCT} v{}", s.version);
    out.push('\n');
    let relay = if s.relay.connected {
        "CONNECTED"
    } else {
        "DISCONNECTED"
    };
    field(&mut out, "Relay connection state", &relay);
    field(
        &mut out,
        "Crypto engines available",
        &format_args!("{}/{}", s.relay.engines_available, s.relay.engines_total),
    );
    if s.relay.relays.len() > 1 {
        out.push_str("\nRelays:\n-------\n");
        let rows: Vec<[String; 5]> = s
            .relay
            .relays
            .iter()
            .map(|r| {
                [
                    r.name.clone(),
                    r.address.clone(),
                    r.connection.name().to_owned(),
                    format!("{}/{}", r.engines_available, r.engines_total),
                    r.sessions.to_string(),
                ]
            })
            .collect();
        out.push_str(&table(
            ["NAME", "ADDRESS", "STATE", "ENGINES", "SESSIONS"],
            &rows,
        ));
    }
    out.push_str("\nUMSG status:\n------------\n");
    field(&mut out, "Public ID", &s.umsg.identity);
    field(&mut out, "Security Domain", &s.umsg.domain);
    field(&mut out, "CRS Address", &s.umsg.switch_address);
    field(&mut out, "Connection state", &s.umsg.connection);
    field(&mut out, "Crypto state", &s.umsg.crypto_state);
    field(&mut out, "Crypto period", &s.umsg.period);
    out.push_str("\nSIP status:\n-----------\n");
    field(&mut out, "SIP Bind address", &s.sip.bind);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{CallState, LinkState, RelayRow, RelayStatus, SipStatus, UmsgStatus};

    #[test]
    fn call_table_aligns_columns_without_trailing_spaces() {
        let rows = [
            CallRow {
                in_from: "tel:+46701234567".into(),
                in_to: "tel:+8888;101".into(),
                out_from: "sip:+46701234567@pbx.com".into(),
                out_to: "sip:101@pbx.com".into(),
                state: CallState::Answer,
            },
            CallRow {
                in_from: "sip:101@pbx.com".into(),
                in_to: "sip:94670123456@secure.com".into(),
                out_from: "tel:+8888;101".into(),
                out_to: "tel:+4670123456".into(),
                state: CallState::Ring,
            },
        ];
        assert_eq!(
            calls(&rows),
            "IN-FROM           IN-TO                       OUT-FROM                  OUT-TO           STATE\n\
             tel:+46701234567  tel:+8888;101               sip:+46701234567@pbx.com  sip:101@pbx.com  ANSWER\n\
             sip:101@pbx.com   sip:94670123456@secure.com  tel:+8888;101             tel:+4670123456  RING\n"
        );
        assert_eq!(calls(&[]), "IN-FROM  IN-TO  OUT-FROM  OUT-TO  STATE\n");
    }

    #[test]
    fn umsg_table_matches_the_manual_columns() {
        let rows = [UmsgRow {
            from: "tel:+46701234567".into(),
            to: "tel:+8888;101".into(),
            state: "TALK".into(),
            time_secs: 429,
            id: "SxU+cQAE66+12m5j".into(),
        }];
        assert_eq!(
            umsg(&rows),
            "FROM              TO             STATE  TIME  ID\n\
             tel:+46701234567  tel:+8888;101  TALK   429   SxU+cQAE66+12m5j\n"
        );
    }

    #[test]
    fn status_follows_the_manual_sections() {
        let s = Status {
            version: "0.1.0".into(),
            relay: RelayStatus {
                connected: true,
                engines_available: 3,
                engines_total: 3,
                relays: Vec::new(),
            },
            umsg: UmsgStatus {
                identity: "tel:+12345".into(),
                domain: "DOMAIN".into(),
                switch_address: "192.168.1.1".into(),
                connection: LinkState::Connected,
                crypto_state: "OK".into(),
                period: "2026-11".into(),
            },
            sip: SipStatus {
                bind: "192.168.1.2".into(),
            },
        };
        assert_eq!(
            status(&s),
            "CIG Interconnect Gateway v0.1.0\n\
             \n\
             Relay connection state    CONNECTED\n\
             Crypto engines available  3/3\n\
             \n\
             UMSG status:\n\
             ------------\n\
             Public ID                 tel:+12345\n\
             Security Domain           DOMAIN\n\
             CRS Address               192.168.1.1\n\
             Connection state          CONNECTED\n\
             Crypto state              OK\n\
             Crypto period             2026-11\n\
             \n\
             SIP status:\n\
             -----------\n\
             SIP Bind address          192.168.1.2\n"
        );
    }

    #[test]
    fn status_lists_each_relay_when_there_are_several() {
        let row = |name: &str, address: &str, connection, engines: u32, sessions| RelayRow {
            name: name.into(),
            address: address.into(),
            connection,
            engines_available: if connection == LinkState::Connected {
                engines
            } else {
                0
            },
            engines_total: engines,
            sessions,
        };
        let s = Status {
            version: "0.1.0".into(),
            relay: RelayStatus {
                connected: true,
                engines_available: 2,
                engines_total: 4,
                relays: vec![
                    row("local", "/run/cig/relay.sock", LinkState::Connected, 2, 3),
                    row("media2", "tls:10.0.0.2:7070", LinkState::Disconnected, 2, 0),
                ],
            },
            umsg: UmsgStatus {
                identity: "tel:+12345".into(),
                domain: "DOMAIN".into(),
                switch_address: String::new(),
                connection: LinkState::Connecting,
                crypto_state: "OK".into(),
                period: "2026-11".into(),
            },
            sip: SipStatus {
                bind: "0.0.0.0".into(),
            },
        };
        let text = status(&s);
        assert!(
            text.contains(
                "Crypto engines available  2/4\n\
                 \n\
                 Relays:\n\
                 -------\n\
                 NAME    ADDRESS              STATE         ENGINES  SESSIONS\n\
                 local   /run/cig/relay.sock  CONNECTED     2/2      3\n\
                 media2  tls:10.0.0.2:7070    DISCONNECTED  0/2      0\n\
                 \n\
                 UMSG status:\n"
            ),
            "{text}"
        );
    }
}
