//! `cargo run --example sipcheck -- FILE…`: parses each file as one SIP datagram and prints one
//! JSON line per file (validity, error, start line, Call-ID, CSeq, every Via, From/To, lengths).
//! For an invalid message the fields that could still be read are filled in, `null` otherwise.

use bytes::Bytes;
use cig_sip::message::{Message, Via};
use serde_json::{Value, json};

/// The per-message keys, `null` when the message could not be split into headers at all.
const FIELDS: [&str; 11] = [
    "kind",
    "method",
    "request_uri",
    "status",
    "call_id",
    "cseq",
    "via",
    "from",
    "to",
    "content_length",
    "body_len",
];

fn via_json(v: &Via) -> Value {
    json!({
        "transport": v.transport.to_string(),
        "host": v.host.to_string(),
        "port": v.port,
        "branch": v.branch(),
    })
}

fn check(file: &str) -> Value {
    let data = match std::fs::read(file) {
        Ok(d) => Bytes::from(d),
        Err(e) => return json!({ "file": file, "valid": false, "error": format!("read: {e}") }),
    };
    let error = Message::parse(data.clone()).err().map(|e| e.to_string());
    let mut out = json!({ "file": file, "valid": error.is_none(), "error": error });
    let Ok(msg) = Message::parse_unvalidated(data) else {
        if let Value::Object(o) = &mut out {
            for key in FIELDS {
                o.insert(key.to_owned(), Value::Null);
            }
        }
        return out;
    };
    let h = msg.headers();
    let name_addr = |n: Option<cig_sip::message::NameAddr>| {
        n.map(|n| json!({ "uri": n.uri.to_string(), "tag": n.tag() }))
    };
    let fields = json!({
        "kind": match &msg { Message::Request(_) => "request", Message::Response(_) => "response" },
        "method": match &msg { Message::Request(r) => Some(r.method.to_string()), _ => None },
        "request_uri": match &msg { Message::Request(r) => Some(r.uri.to_string()), _ => None },
        "status": match &msg { Message::Response(r) => Some(r.status), _ => None },
        "call_id": h.call_id().ok().map(|c| c.to_string()),
        "cseq": h.cseq().ok().map(|c| json!([c.seq, c.method.to_string()])),
        "via": h.via().ok().map(|v| v.iter().map(via_json).collect::<Vec<_>>()),
        "from": name_addr(h.from().ok()),
        "to": name_addr(h.to().ok()),
        "content_length": h.content_length().ok().flatten(),
        "body_len": msg.body().len(),
    });
    if let (Value::Object(o), Value::Object(f)) = (&mut out, fields) {
        o.extend(f);
    }
    out
}

fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: sipcheck FILE...");
        std::process::exit(2);
    }
    for f in &files {
        println!("{}", check(f));
    }
}
