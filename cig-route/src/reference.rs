//! A deliberately naive router, kept as the executable statement of the routing rules.
//!
//! It walks the [`Config`] itself — maps in the order the interface lists them, entries in
//! file order — and matches each template by backtracking, trying the shortest capture first
//! for each parameter in turn. Nothing is precompiled or indexed, so its cost grows with the
//! dial plan. The property tests check [`Router`](crate::Router) against it, and the benches
//! use it as the anchor that the indexed router is measured against.

use std::sync::Arc;

use cig_core::Config;
use cig_core::conf::InterfaceKind;
use cig_core::template::{Segment, Template};

use crate::{EntryRef, FromMaps, Rejected, Routed, Translated, Untranslated};

/// `uri` with a TEL URI's wait mark (the first `w`/`W` of the dial string, which runs from
/// after `tel:` to the first `;`) written as `;`.
fn normalise_uri(uri: &str) -> String {
    if !uri.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("tel:")) {
        return uri.to_owned();
    }
    let dial_end = uri[4..].find(';').map_or(uri.len(), |i| i + 4);
    match uri[4..dial_end].find(['w', 'W']) {
        Some(i) => format!("{};{}", &uri[..4 + i], &uri[4 + i + 1..]),
        None => uri.to_owned(),
    }
}

/// Is `template` a TEL template (its first segment a literal starting with `tel:`)? Only TEL
/// templates treat the wait marks as equal.
fn is_tel(template: &Template) -> bool {
    matches!(template.segments().first(),
        Some(Segment::Literal(l)) if l.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("tel:")))
}

/// A TEL template's segments with the same wait-mark rule applied to its literals, read
/// across parameters.
fn normalise_template(template: &Template) -> Vec<Segment> {
    let mut segments = template.segments().to_vec();
    let mut skip = 4;
    for segment in &mut segments {
        let Segment::Literal(lit) = segment else {
            continue;
        };
        if let Some(i) = lit[skip..].find(['w', 'W', ';']) {
            lit.replace_range(skip + i..skip + i + 1, ";");
            break;
        }
        skip = 0;
    }
    segments
}

/// Backtracking match of `segments` against all of `s`; pushes `(name, byte range)` per
/// parameter, shortest capture first for each parameter in turn.
fn match_at(
    segments: &[Segment],
    s: &str,
    at: usize,
    caps: &mut Vec<(String, std::ops::Range<usize>)>,
) -> bool {
    match segments.split_first() {
        None => at == s.len(),
        Some((Segment::Literal(lit), rest)) => {
            s[at..].starts_with(lit.as_str()) && match_at(rest, s, at + lit.len(), caps)
        }
        Some((Segment::Param(name), rest)) => {
            for end in (at..=s.len()).filter(|&e| s.is_char_boundary(e)) {
                caps.push((name.clone(), at..end));
                if match_at(rest, s, end, caps) {
                    return true;
                }
                caps.pop();
            }
            false
        }
    }
}

/// What each parameter of `template` captures from `uri` (`(name, text)` in template order),
/// or `None` when it does not match.
pub fn captures(template: &Template, uri: &str) -> Option<Vec<(String, String)>> {
    let mut caps = Vec::new();
    let matched = if is_tel(template) {
        match_at(
            &normalise_template(template),
            &normalise_uri(uri),
            0,
            &mut caps,
        )
    } else {
        match_at(template.segments(), uri, 0, &mut caps)
    };
    matched.then(|| {
        caps.into_iter()
            .map(|(name, r)| (name, uri[r].to_owned()))
            .collect()
    })
}

/// `output` with each parameter replaced by its first capture in `caps` (empty if none).
pub fn expand(output: &Template, caps: &[(String, String)]) -> String {
    output
        .segments()
        .iter()
        .map(|segment| match segment {
            Segment::Literal(lit) => lit.as_str(),
            Segment::Param(name) => caps
                .iter()
                .find(|(n, _)| n == name)
                .map_or("", |(_, text)| text.as_str()),
        })
        .collect()
}

/// The first entry of `maps` (in order, entries in order) whose `side` template matches
/// `uri`, with the expansion of its other side. Undefined maps and entries lacking a
/// template are skipped.
fn first_entry(
    config: &Config,
    maps: &[String],
    side: InterfaceKind,
    uri: &str,
) -> Option<(EntryRef, Option<Arc<str>>, String)> {
    maps.iter()
        .filter_map(|name| config.map(name))
        .flat_map(|map| map.entries.iter().map(move |entry| (map, entry)))
        .find_map(|(map, entry)| {
            let (matching, output) = (entry.side(side)?, entry.side(side.other())?);
            let caps = captures(matching, uri)?;
            Some((
                EntryRef::new(&map.name, &entry.name),
                entry.auth.as_deref().map(Arc::from),
                expand(output, &caps),
            ))
        })
}

/// Routes a call arriving on `on` by the manual's rules, walking `config` directly.
pub fn route(config: &Config, on: InterfaceKind, from: &str, to: &str) -> Result<Routed, Rejected> {
    let out = on.other();
    let incoming = config
        .interface(on)
        .ok_or(Rejected::InterfaceNotConfigured { interface: on })?;
    let outgoing = config
        .interface(out)
        .ok_or(Rejected::InterfaceNotConfigured { interface: out })?;
    let (to_match, auth, new_to) = first_entry(config, &incoming.extension_maps, on, to)
        .ok_or(Rejected::NoExtensionMatch { interface: on })?;
    let (from_maps, maps) = if outgoing.source_maps.is_empty() {
        (FromMaps::Extension, &outgoing.extension_maps)
    } else {
        (FromMaps::Source, &outgoing.source_maps)
    };
    let (from_match, _, new_from) =
        first_entry(config, maps, on, from).ok_or(Rejected::NoSourceMatch {
            interface: out,
            maps: from_maps,
        })?;
    Ok(Routed {
        out_interface: out,
        from: new_from,
        to: new_to,
        auth,
        to_match,
        from_match,
        from_maps,
    })
}

/// Translates `uri` with translate map `map` by walking its rules in order.
pub fn translate(config: &Config, map: &str, uri: &str) -> Result<Translated, Untranslated> {
    let map = config.translate_map(map).ok_or(Untranslated::UnknownMap)?;
    map.rules
        .iter()
        .enumerate()
        .find_map(|(rule, r)| {
            let caps = captures(&r.match_, uri)?;
            Some(Translated {
                uri: expand(&r.translation, &caps),
                rule,
            })
        })
        .ok_or(Untranslated::NoMatch)
}
