//! URI template syntax: literal text with `{name}` parameters.
//!
//! This module owns only the *syntax* (parsing, validation, printing). What a template matches
//! and how it expands is routing semantics and lives in `cig-route`.
//!
//! ```
//! use cig_core::template::{Segment, Template};
//!
//! let t = Template::parse("sip:{series}@{discard}").unwrap();
//! assert_eq!(t.params().collect::<Vec<_>>(), ["series", "discard"]);
//! assert_eq!(t.segments()[2], Segment::Literal("@".into()));
//! assert_eq!(t.to_string(), "sip:{series}@{discard}");
//! assert!(Template::parse("sip:{series@pbx.com").is_err());
//! ```

use std::fmt;
use std::str::FromStr;

/// Longest template accepted, in bytes. Longer input is rejected rather than stored.
pub const MAX_TEMPLATE_LEN: usize = 4096;

/// One piece of a template: literal text or a named parameter.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Text that must appear verbatim.
    Literal(String),
    /// `{name}`: zero or more characters captured under `name`.
    Param(String),
}

/// A parsed URI template such as `tel:+8888;{extension}`.
///
/// Equality and hashing use the source text (the segments are derived from it).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Template {
    source: String,
    segments: Vec<Segment>,
}

/// Why a template is malformed; `offset` is the byte offset in the template text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    /// Byte offset into the template text where the problem was found.
    pub offset: usize,
    /// What is wrong, in words (no trailing period).
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at offset {})", self.message, self.offset)
    }
}

impl std::error::Error for TemplateError {}

/// Is `name` a valid parameter name (`[A-Za-z_][A-Za-z0-9_]*`)?
pub fn is_param_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Template {
    /// Parses `s`. Errors on unbalanced braces, empty or invalid parameter names
    /// (a name is `[A-Za-z_][A-Za-z0-9_]*`) and on text longer than [`MAX_TEMPLATE_LEN`].
    /// Two adjacent parameters (`{a}{b}`) are allowed.
    pub fn parse(s: &str) -> Result<Template, TemplateError> {
        if s.len() > MAX_TEMPLATE_LEN {
            return Err(TemplateError {
                offset: MAX_TEMPLATE_LEN,
                message: format!("template longer than {MAX_TEMPLATE_LEN} bytes"),
            });
        }
        let mut segments = Vec::new();
        // Start of the literal being scanned (byte offset).
        let mut lit_start = 0;
        let mut chars = s.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' => {
                    let start = i + 1;
                    let mut end = None;
                    for (j, d) in chars.by_ref() {
                        match d {
                            '}' => {
                                end = Some(j);
                                break;
                            }
                            '{' => {
                                return Err(TemplateError {
                                    offset: j,
                                    message: "`{` inside a parameter; parameters cannot nest"
                                        .into(),
                                });
                            }
                            _ => {}
                        }
                    }
                    let Some(end) = end else {
                        return Err(TemplateError {
                            offset: i,
                            message: "unclosed `{`: expected `}` after the parameter name".into(),
                        });
                    };
                    let name = &s[start..end];
                    if name.is_empty() {
                        return Err(TemplateError {
                            offset: i,
                            message: "empty parameter name `{}`".into(),
                        });
                    }
                    if !is_param_name(name) {
                        return Err(TemplateError {
                            offset: start,
                            message: format!(
                                "invalid parameter name `{name}`: expected a letter or `_` followed by letters, digits or `_`"
                            ),
                        });
                    }
                    if lit_start < i {
                        segments.push(Segment::Literal(s[lit_start..i].to_owned()));
                    }
                    segments.push(Segment::Param(name.to_owned()));
                    lit_start = end + 1;
                }
                '}' => {
                    return Err(TemplateError {
                        offset: i,
                        message: "unbalanced `}` without a matching `{`".into(),
                    });
                }
                _ => {}
            }
        }
        if lit_start < s.len() {
            segments.push(Segment::Literal(s[lit_start..].to_owned()));
        }
        Ok(Template {
            source: s.to_owned(),
            segments,
        })
    }

    /// The segments in order; adjacent literals are merged, so literals never neighbour.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The template's source text.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Parameter names in order of appearance (a repeated name appears each time).
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Param(p) => Some(p.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// Does the template capture or use parameter `name`?
    pub fn has_param(&self, name: &str) -> bool {
        self.params().any(|p| p == name)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Template({:?})", self.source)
    }
}

impl FromStr for Template {
    type Err = TemplateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Template::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> TemplateError {
        Template::parse(s).unwrap_err()
    }

    #[test]
    fn segments_of_manual_templates() {
        let t = Template::parse("sip:{foobar}@pbx.com{discard}").unwrap();
        assert_eq!(
            t.segments(),
            [
                Segment::Literal("sip:".into()),
                Segment::Param("foobar".into()),
                Segment::Literal("@pbx.com".into()),
                Segment::Param("discard".into()),
            ]
        );
        assert_eq!(t.as_str(), "sip:{foobar}@pbx.com{discard}");
    }

    #[test]
    fn adjacent_params_and_empty_template() {
        let t = Template::parse("{a}{b_2}").unwrap();
        assert_eq!(t.params().collect::<Vec<_>>(), ["a", "b_2"]);
        assert!(Template::parse("").unwrap().segments().is_empty());
    }

    #[test]
    fn errors_carry_offsets() {
        assert_eq!(err("tel:{x").offset, 4);
        assert_eq!(err("tel:x}").offset, 5);
        assert_eq!(err("a{}").offset, 1);
        assert_eq!(err("a{9x}").offset, 2);
        assert_eq!(err("a{b-c}").offset, 2);
        assert_eq!(err("a{b{c}}").offset, 3);
        assert!(
            err(&"x".repeat(MAX_TEMPLATE_LEN + 1))
                .message
                .contains("longer")
        );
    }

    #[test]
    fn non_ascii_literals_survive() {
        let t = Template::parse("sip:å{x}ö").unwrap();
        assert_eq!(t.to_string(), "sip:å{x}ö");
        assert_eq!(t.segments().len(), 3);
    }
}
