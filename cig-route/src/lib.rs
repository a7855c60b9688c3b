//! URI routing for CIG, the interconnect gateway between a MIKEY-SAKKE secure domain (TEL URIs)
//! and SIP PBXs: the cig.conf `{param}` URI templates, the manual's extension/source map call
//! routing, translate maps for messaging, and a prefix-indexed first-match router that stays
//! fast on dial plans of 100 000 entries.
//!
//! Build a [`Router`] once from a parsed [`Config`] and ask it about each call. A gateway
//! keeps one [`RouteBuf`] and routes with [`Router::route_into`]: the new URIs are written
//! into the buffer's strings (reused from call to call) and the rest of the answer borrows the
//! router, so routing a call allocates nothing. [`Router::route`] answers the same with owned
//! results.
//!
//! ```
//! use cig_core::conf::{Config, Interface, InterfaceKind, Map, MapEntry};
//! use cig_core::Template;
//! use cig_route::{Rejected, RouteBuf, Router};
//!
//! let t = |s: &str| Some(Template::parse(s).unwrap());
//! let entry = |name: &str, sip, tel| MapEntry { name: name.into(), sip, tel, auth: None };
//! let mut config = Config::default();
//! config.maps = vec![
//!     Map { name: "maptel2sip".into(),
//!           entries: vec![entry("telext2sip", t("sip:{TELEXT}@pbx.com"), t("tel:+8888;{TELEXT}"))] },
//!     Map { name: "mapsip2tel".into(),
//!           entries: vec![entry("sipext2tel", t("sip:9{SIPEXT}@secure.com"), t("tel:+{SIPEXT}"))] },
//! ];
//! config.interfaces.tel = Some(Interface { extension_maps: vec!["maptel2sip".into()], ..Default::default() });
//! config.interfaces.sip = Some(Interface { extension_maps: vec!["mapsip2tel".into()], ..Default::default() });
//!
//! let router = Router::from_config(&config).unwrap();
//! let mut uris = RouteBuf::default(); // reused for every call
//! let route = router
//!     .route_into(InterfaceKind::Sip, "sip:101@pbx.com", "sip:94670123456@secure.com", &mut uris)
//!     .unwrap();
//! assert_eq!(route.out_interface, InterfaceKind::Tel);
//! assert_eq!(uris.to, "tel:+4670123456");
//! assert_eq!(uris.from, "tel:+8888;101"); // tel has no source maps: its extension maps serve
//! assert_eq!(route.to_match.entry(), "sipext2tel");
//! assert_eq!(route.auth, None);
//!
//! // "w" and ";" are the same wait-for-connect mark.
//! router.route_into(InterfaceKind::Tel, "tel:+4670123456", "tel:+8888w101", &mut uris).unwrap();
//! assert_eq!(uris.to, "sip:101@pbx.com");
//!
//! assert_eq!(
//!     router
//!         .route_into(InterfaceKind::Sip, "sip:101@pbx.com", "sip:555@elsewhere.com", &mut uris)
//!         .unwrap_err(),
//!     Rejected::NoExtensionMatch { interface: InterfaceKind::Sip },
//! );
//!
//! // The same lookup with owned results, for a caller that keeps them.
//! let routed = router.route(InterfaceKind::Sip, "sip:101@pbx.com", "sip:94670123456@secure.com");
//! assert_eq!(routed.unwrap().to, "tel:+4670123456");
//! ```
//!
//! Modules: [`pattern`] owns template matching and expansion; the crate root owns the routing
//! rules and the [`Router`]; private modules own the packed routing tables (`table`), the
//! prefix index (`index`) and the huge-page memory of their large arrays (`pages`);
//! [`reference`](mod@reference) is a deliberately naive router used to check the fast one.
#![forbid(unsafe_code)]

mod index;
mod pages;
pub mod pattern;
pub mod reference;
mod table;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use cig_core::Config;
use cig_core::conf::InterfaceKind;

use crate::pattern::Rule;
use crate::table::{RuleSpec, Table};

/// Why a [`Router`] cannot be built from a configuration. A configuration that `cig_core`
/// validated without errors always builds, except for templates
/// over [`pattern::MAX_PARAMS`] parameters and tables beyond the size limits below.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// An interface lists a map that the configuration does not define.
    #[error("interface {interface} uses map `{map}`, which is not defined")]
    UnknownMap {
        /// The interface listing the map.
        interface: InterfaceKind,
        /// The undefined map name.
        map: String,
    },
    /// A map entry used for routing lacks the template of one side.
    #[error(
        "entry `{entry}` of map `{map}` has no {side} template but interface {interface} uses it"
    )]
    MissingTemplate {
        /// The map.
        map: String,
        /// The entry.
        entry: String,
        /// The side whose template is missing.
        side: InterfaceKind,
        /// The interface whose routing needs it.
        interface: InterfaceKind,
    },
    /// A template has more than [`pattern::MAX_PARAMS`] parameters or 65535 bytes of text, or
    /// an output template more than [`pattern::MAX_PIECES`] pieces.
    #[error(
        "template `{template}` is too large: more than {max_params} parameters, 65535 bytes or 255 output pieces"
    )]
    TemplateTooLarge {
        /// The template text.
        template: String,
        /// The parameter limit, [`pattern::MAX_PARAMS`].
        max_params: usize,
    },
    /// A dial plan has more rules than the index can number.
    #[error("more than {max} routing rules in one table")]
    TooManyRules {
        /// The limit.
        max: usize,
    },
    /// A routing table's output templates hold more distinct literal text (beyond what repeats
    /// the match side) than it can address.
    #[error("more than {max} bytes of distinct output text in one routing table")]
    TooMuchText {
        /// The limit.
        max: usize,
    },
}

/// Which maps supplied the from-URI of a call leaving on an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FromMaps {
    /// The outgoing interface's `source map`s.
    Source,
    /// The outgoing interface's `extension map`s (it has no source maps).
    Extension,
}

impl FromMaps {
    /// `"source"` or `"extension"`, the keyword in cig.conf.
    pub fn as_str(self) -> &'static str {
        match self {
            FromMaps::Source => "source",
            FromMaps::Extension => "extension",
        }
    }
}

/// Why a call was not routed: the manual's "new to-URI or new from-URI missing".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rejected {
    /// The interface is not configured (no `tel { … }` / `sip { … }` section).
    InterfaceNotConfigured {
        /// The missing interface.
        interface: InterfaceKind,
    },
    /// No new to-URI: no extension map entry of the incoming interface matches the to-URI.
    NoExtensionMatch {
        /// The incoming interface.
        interface: InterfaceKind,
    },
    /// No new from-URI: no entry of the outgoing interface's source maps (or of its extension
    /// maps, when it has no source maps) matches the from-URI.
    NoSourceMatch {
        /// The outgoing interface.
        interface: InterfaceKind,
        /// Which of its maps were searched.
        maps: FromMaps,
    },
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejected::InterfaceNotConfigured { interface } => {
                write!(f, "the {interface} interface is not configured")
            }
            Rejected::NoExtensionMatch { interface } => write!(
                f,
                "no new to-URI: no extension map entry of the {interface} interface matches the to-URI"
            ),
            Rejected::NoSourceMatch {
                interface,
                maps: FromMaps::Source,
            } => write!(
                f,
                "no new from-URI: no source map entry of the {interface} interface matches the from-URI"
            ),
            Rejected::NoSourceMatch {
                interface,
                maps: FromMaps::Extension,
            } => write!(
                f,
                "no new from-URI: the {interface} interface has no source maps and none of its extension map entries matches the from-URI"
            ),
        }
    }
}

/// Why a translate map gave no translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Untranslated {
    /// The configuration defines no translate map of that name.
    UnknownMap,
    /// No rule of the map matches the URI.
    NoMatch,
}

impl fmt::Display for Untranslated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Untranslated::UnknownMap => "no translate map of that name",
            Untranslated::NoMatch => "no rule of the translate map matches the URI",
        })
    }
}

/// The map entry a routing step used, borrowed from the [`Router`]: its map and entry names
/// are sliced out of the routing table's names string only when asked for.
#[derive(Clone, Copy)]
pub struct Entry<'r> {
    /// Holds `map` + `entry`, concatenated, at `start..end`.
    names: &'r Arc<str>,
    start: u32,
    /// Where the map name ends and the entry name starts.
    split: u32,
    end: u32,
}

impl<'r> Entry<'r> {
    /// The names at `names[start..split]` (map) and `names[split..end]` (entry).
    pub(crate) fn in_table(names: &'r Arc<str>, start: u32, split: u32, end: u32) -> Entry<'r> {
        Entry {
            names,
            start,
            split,
            end,
        }
    }

    /// The map's name.
    pub fn map(&self) -> &'r str {
        let names: &'r str = self.names;
        names
            .get(self.start as usize..self.split as usize)
            .unwrap_or_default()
    }

    /// The entry's name.
    pub fn entry(&self) -> &'r str {
        let names: &'r str = self.names;
        names
            .get(self.split as usize..self.end as usize)
            .unwrap_or_default()
    }
}

impl PartialEq for Entry<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.map() == other.map() && self.entry() == other.entry()
    }
}

impl Eq for Entry<'_> {}

impl fmt::Display for Entry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.map(), self.entry())
    }
}

impl fmt::Debug for Entry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("map", &self.map())
            .field("entry", &self.entry())
            .finish()
    }
}

/// The map entry a routing step used, owned: the names stay in their routing table's names
/// string, shared with the router by one reference count.
#[derive(Clone)]
pub struct EntryRef {
    /// Holds `map` + `entry`, concatenated, at `start..end`.
    names: Arc<str>,
    start: u32,
    /// Where the map name ends and the entry name starts.
    split: u32,
    end: u32,
}

impl EntryRef {
    /// Names entry `entry` of map `map`.
    pub fn new(map: &str, entry: &str) -> EntryRef {
        let len = |s: &str| u32::try_from(s.len()).unwrap_or(u32::MAX);
        let split = len(map);
        EntryRef {
            names: Arc::from(format!("{map}{entry}")),
            start: 0,
            split,
            end: split.saturating_add(len(entry)),
        }
    }

    /// The borrowed form.
    fn borrowed(&self) -> Entry<'_> {
        Entry::in_table(&self.names, self.start, self.split, self.end)
    }

    /// The map's name.
    pub fn map(&self) -> &str {
        self.borrowed().map()
    }

    /// The entry's name.
    pub fn entry(&self) -> &str {
        self.borrowed().entry()
    }
}

impl From<Entry<'_>> for EntryRef {
    fn from(entry: Entry<'_>) -> EntryRef {
        EntryRef {
            names: Arc::clone(entry.names),
            start: entry.start,
            split: entry.split,
            end: entry.end,
        }
    }
}

impl PartialEq for EntryRef {
    fn eq(&self, other: &Self) -> bool {
        self.borrowed() == other.borrowed()
    }
}

impl Eq for EntryRef {}

impl std::hash::Hash for EntryRef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.map(), self.entry()).hash(state);
    }
}

impl fmt::Display for EntryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.borrowed().fmt(f)
    }
}

impl fmt::Debug for EntryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntryRef")
            .field("map", &self.map())
            .field("entry", &self.entry())
            .finish()
    }
}

/// The new URIs of a routed call, written by [`Router::route_into`]. Keep one per thread (or
/// per task) and pass it to every lookup: each lookup replaces both strings in place, so once
/// they have grown to the longest URIs seen, routing allocates nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteBuf {
    /// The new from-URI (empty after a rejection).
    pub from: String,
    /// The new to-URI (empty after a rejection).
    pub to: String,
}

/// A routed call as [`Router::route_into`] answers it: where it leaves and which entries
/// decided, borrowed from the router (no allocation, no reference counting); the new URIs are
/// in the caller's [`RouteBuf`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Route<'r> {
    /// The outgoing interface (always the other one than the incoming).
    pub out_interface: InterfaceKind,
    /// The `auth` of the extension entry that gave the to-URI, if it names one.
    pub auth: Option<&'r str>,
    /// The extension map entry that gave the to-URI.
    pub to_match: Entry<'r>,
    /// The map entry that gave the from-URI.
    pub from_match: Entry<'r>,
    /// Which maps the from-URI entry came from.
    pub from_maps: FromMaps,
}

impl Route<'_> {
    /// The owned [`Routed`] of this route and the URIs it wrote to `uris`.
    pub fn into_routed(self, uris: RouteBuf) -> Routed {
        Routed {
            out_interface: self.out_interface,
            from: uris.from,
            to: uris.to,
            auth: self.auth.map(Arc::from),
            to_match: self.to_match.into(),
            from_match: self.from_match.into(),
            from_maps: self.from_maps,
        }
    }
}

/// A routed call, owned: where it leaves and with which URIs ([`Router::route`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Routed {
    /// The outgoing interface (always the other one than the incoming).
    pub out_interface: InterfaceKind,
    /// The new from-URI.
    pub from: String,
    /// The new to-URI.
    pub to: String,
    /// The `auth` of the extension entry that gave the to-URI, if it names one.
    pub auth: Option<Arc<str>>,
    /// The extension map entry that gave the to-URI.
    pub to_match: EntryRef,
    /// The map entry that gave the from-URI.
    pub from_match: EntryRef,
    /// Which maps the from-URI entry came from.
    pub from_maps: FromMaps,
}

/// A translated URI.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Translated {
    /// The translation.
    pub uri: String,
    /// Zero-based index of the rule that matched, in file order.
    pub rule: usize,
}

/// Routing state of one interface.
#[derive(Clone, Debug)]
struct Side {
    /// Calls arriving here: its extension maps, matching this side, expanding the other.
    to: Table,
    /// Calls leaving here: its source maps (or extension maps), matching the other side,
    /// expanding this side.
    from: Table,
    from_maps: FromMaps,
}

/// The routing tables of one configuration: call routing and translate maps.
///
/// Built once per configuration (and rebuilt on reload); [`Router::route_into`],
/// [`Router::route`] and [`Router::translate`] take `&self`, allocate at most their output
/// strings ([`Router::route_into`] not even those once its buffer has grown), and give the same
/// answers as walking the maps entry by entry ([`reference`](mod@reference) does exactly that).
#[derive(Clone, Debug)]
pub struct Router {
    /// Indexed by `InterfaceKind` (`tel`, `sip`); `None` when not configured.
    sides: [Option<Side>; 2],
    translate: HashMap<String, Table>,
}

fn slot(kind: InterfaceKind) -> usize {
    match kind {
        InterfaceKind::Tel => 0,
        InterfaceKind::Sip => 1,
    }
}

/// The rules of `maps` (in order, entries in order) matching side `from` and expanding
/// side `from.other()`, for routing on interface `interface`.
fn steps<'c>(
    config: &'c Config,
    interface: InterfaceKind,
    maps: &[String],
    from: InterfaceKind,
) -> Result<Vec<RuleSpec<'c>>, RouteError> {
    let mut out = Vec::new();
    for map_name in maps {
        let map = config.map(map_name).ok_or_else(|| RouteError::UnknownMap {
            interface,
            map: map_name.clone(),
        })?;
        for entry in &map.entries {
            let side_template = |side: InterfaceKind| {
                entry.side(side).ok_or_else(|| RouteError::MissingTemplate {
                    map: map.name.clone(),
                    entry: entry.name.clone(),
                    side,
                    interface,
                })
            };
            out.push(RuleSpec {
                rule: Rule::new(side_template(from)?, side_template(from.other())?)?,
                entry: (&map.name, &entry.name),
                auth: entry.auth.as_deref(),
            });
        }
    }
    Ok(out)
}

impl Router {
    /// Compiles the maps of every configured interface and every translate map.
    pub fn from_config(config: &Config) -> Result<Router, RouteError> {
        let mut auths = Vec::new();
        let mut sides = [None, None];
        for kind in InterfaceKind::ALL {
            let Some(iface) = config.interface(kind) else {
                continue;
            };
            let to = Table::new(
                steps(config, kind, &iface.extension_maps, kind)?,
                &mut auths,
            )?;
            let (from_maps, list) = if iface.source_maps.is_empty() {
                (FromMaps::Extension, &iface.extension_maps)
            } else {
                (FromMaps::Source, &iface.source_maps)
            };
            let from = Table::new(steps(config, kind, list, kind.other())?, &mut auths)?;
            sides[slot(kind)] = Some(Side {
                to,
                from,
                from_maps,
            });
        }
        let translate = config
            .translate_maps
            .iter()
            .map(|map| {
                let rules = map
                    .rules
                    .iter()
                    .map(|r| {
                        Ok(RuleSpec {
                            rule: Rule::new(&r.match_, &r.translation)?,
                            entry: ("", ""),
                            auth: None,
                        })
                    })
                    .collect::<Result<Vec<_>, RouteError>>()?;
                Ok((map.name.clone(), Table::new(rules, &mut auths)?))
            })
            .collect::<Result<_, RouteError>>()?;
        Ok(Router { sides, translate })
    }

    /// Routes a call arriving on interface `on` from `from` to `to`, following the manual:
    /// the first entry of `on`'s extension maps whose `on`-side template matches `to` gives the
    /// new to-URI (its other side) and the outgoing interface; the first entry of the outgoing
    /// interface's source maps (its extension maps when it has none) whose `on`-side template
    /// matches `from` gives the new from-URI.
    ///
    /// The new URIs replace what `uris` held (both are left empty on a rejection); the rest of
    /// the answer borrows the router. With a `uris` reused from call to call a lookup
    /// allocates nothing; [`Self::route`] is the same lookup with owned results.
    pub fn route_into<'r>(
        &'r self,
        on: InterfaceKind,
        from: &str,
        to: &str,
        uris: &mut RouteBuf,
    ) -> Result<Route<'r>, Rejected> {
        let route = self.lookup(on, from, to, uris);
        if route.is_err() {
            uris.from.clear();
            uris.to.clear();
        }
        route
    }

    /// [`Self::route_into`] without clearing `uris` on a rejection.
    fn lookup<'r>(
        &'r self,
        on: InterfaceKind,
        from: &str,
        to: &str,
        uris: &mut RouteBuf,
    ) -> Result<Route<'r>, Rejected> {
        let out = on.other();
        let side = |k: InterfaceKind| {
            self.sides[slot(k)]
                .as_ref()
                .ok_or(Rejected::InterfaceNotConfigured { interface: k })
        };
        let (incoming, outgoing) = (side(on)?, side(out)?);
        // Both lookups are started before either is finished, so their memory reads overlap:
        // first the slots of both, then the likely rule records of both.
        let (to_lookup, from_lookup) = (incoming.to.prepare(to), outgoing.from.prepare(from));
        incoming.to.touch(&to_lookup);
        outgoing.from.touch(&from_lookup);
        // One capture buffer for both (each lookup expands its output before the next).
        let mut caps = pattern::capture_buf();
        let to_hit = incoming
            .to
            .apply_prepared(&to_lookup, &mut caps, &mut uris.to)
            .ok_or(Rejected::NoExtensionMatch { interface: on })?;
        let from_hit = outgoing
            .from
            .apply_prepared(&from_lookup, &mut caps, &mut uris.from)
            .ok_or(Rejected::NoSourceMatch {
                interface: out,
                maps: outgoing.from_maps,
            })?;
        Ok(Route {
            out_interface: out,
            auth: to_hit.auth(),
            to_match: to_hit.entry(),
            from_match: from_hit.entry(),
            from_maps: outgoing.from_maps,
        })
    }

    /// [`Self::route_into`] with owned results: two new strings per call (and the map and
    /// entry names shared by reference count). For a program that keeps the result; a gateway
    /// routing many calls reuses a [`RouteBuf`] instead.
    pub fn route(&self, on: InterfaceKind, from: &str, to: &str) -> Result<Routed, Rejected> {
        let mut uris = RouteBuf::default();
        let route = self.lookup(on, from, to, &mut uris)?;
        Ok(route.into_routed(uris))
    }

    /// Translates `uri` with translate map `map`: the first rule whose `match` template matches
    /// gives the expanded `translation`.
    pub fn translate(&self, map: &str, uri: &str) -> Result<Translated, Untranslated> {
        let table = self.translate.get(map).ok_or(Untranslated::UnknownMap)?;
        let mut out = String::new();
        let hit = table.apply(uri, &mut out).ok_or(Untranslated::NoMatch)?;
        Ok(Translated {
            rule: hit.rule(),
            uri: out,
        })
    }
}
