//! ezk-sip-types as an independent oracle: it has no whole-message parser, so this assembles
//! one from its public pieces the way ezk-sip-core's transport does (pull lines, parse the
//! start line and each `name: value`, body after the head).

use bytes::Bytes;
use ezk_sip_types::Headers;
use ezk_sip_types::msg::{Line, MessageLine, PullParser};
use ezk_sip_types::parse::Parse;

/// A message as ezk-sip-types sees it.
#[allow(dead_code)] // Not every user reads every part.
pub struct EzkMessage {
    pub line: MessageLine,
    pub headers: Headers,
    pub body: Bytes,
}

/// Parses `src` with ezk-sip-types; `None` where it refuses.
pub fn parse(src: &Bytes) -> Option<EzkMessage> {
    let mut lines = PullParser::new(src, 0);
    let first = std::str::from_utf8(lines.next()?.ok()?).ok()?;
    let (_, line) = MessageLine::parse(src)(first).ok()?;
    let mut headers = Headers::with_capacity(16);
    for l in &mut lines {
        let l = std::str::from_utf8(l.ok()?).ok()?;
        let (_, l) = Line::parse(src, l).ok()?;
        headers.insert(l.name, l.value);
    }
    let body = src.slice(lines.head_end()..);
    Some(EzkMessage {
        line,
        headers,
        body,
    })
}
