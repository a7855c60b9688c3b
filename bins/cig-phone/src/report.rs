//! Output lines: one per event, as `event key=value …` text or as one JSON object
//! (docs/phone.md).

use std::io::Write;
use std::time::Instant;

use serde_json::Value;

/// One output line: an event name and its fields in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The event name.
    pub event: &'static str,
    /// Its fields, in order.
    pub fields: Vec<(&'static str, Value)>,
}

impl Line {
    /// A line without fields.
    pub fn new(event: &'static str) -> Line {
        Line {
            event,
            fields: Vec::new(),
        }
    }

    /// Adds a field.
    pub fn with(mut self, key: &'static str, value: impl Into<Value>) -> Line {
        self.fields.push((key, value.into()));
        self
    }

    /// The field `key`, if present.
    #[cfg(test)]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The text form: `event k=v k2="v 2"`; strings with spaces, quotes or `=` are quoted as
    /// JSON strings, other values (numbers, booleans, arrays) are written as JSON.
    pub fn text(&self) -> String {
        let mut out = self.event.to_owned();
        for (k, v) in &self.fields {
            out.push(' ');
            out.push_str(k);
            out.push('=');
            match v {
                Value::String(s)
                    if !s.is_empty()
                        && !s.contains(|c: char| c.is_whitespace() || c == '"' || c == '=') =>
                {
                    out.push_str(s)
                }
                Value::Null => out.push('-'),
                other => out.push_str(&other.to_string()),
            }
        }
        out
    }

    /// The JSON form: `event`, `t` (seconds since start, to the millisecond), then the
    /// fields in order.
    pub fn json(&self, t: f64) -> String {
        let t = Value::from((t * 1000.0).round() / 1000.0);
        let mut out = format!("{{\"event\":{},\"t\":{t}", Value::from(self.event));
        for (k, v) in &self.fields {
            out.push_str(&format!(",{}:{v}", Value::from(*k)));
        }
        out.push('}');
        out
    }
}

/// Writes lines to stdout, flushed one by one so that a reader sees each at once.
#[derive(Debug)]
pub struct Reporter {
    json: bool,
    start: Instant,
}

impl Reporter {
    /// A reporter writing text or JSON.
    pub fn new(json: bool) -> Reporter {
        Reporter {
            json,
            start: Instant::now(),
        }
    }

    /// Prints `line`.
    pub fn print(&self, line: &Line) {
        let text = if self.json {
            line.json(self.start.elapsed().as_secs_f64())
        } else {
            line.text()
        };
        let mut out = std::io::stdout().lock();
        // A closed stdout (reader gone) is not a reason to stop the phone.
        let _ = writeln!(out, "{text}").and_then(|()| out.flush());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json_forms() {
        let l = Line::new("call")
            .with("id", "SxU+cQAE66+12m5j")
            .with("state", "TALK")
            .with("text", "hello there")
            .with("n", 3)
            .with("tone_hz", Value::Null);
        assert_eq!(
            l.text(),
            r#"call id=SxU+cQAE66+12m5j state=TALK text="hello there" n=3 tone_hz=-"#
        );
        let v: Value = serde_json::from_str(&l.json(1.23456)).unwrap();
        assert_eq!(v["event"], "call");
        assert_eq!(v["t"], 1.235);
        assert_eq!(v["text"], "hello there");
        assert_eq!(v["n"], 3);
        assert_eq!(Line::new("x").with("s", "").text(), r#"x s="""#);
        assert_eq!(Line::new("x").with("s", "a=b").text(), r#"x s="a=b""#);
    }
}
