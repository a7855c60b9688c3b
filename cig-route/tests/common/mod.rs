//! Builders for configurations in tests (the same model `cig_core` parses cig.conf into).

#![allow(dead_code)] // each test crate uses a different subset

use cig_core::Template;
use cig_core::conf::{Config, Interface, Map, MapEntry, TranslateMap, TranslateRule};

pub fn t(s: &str) -> Template {
    Template::parse(s).unwrap()
}

/// `entry NAME sip "SIP" tel "TEL" [auth AUTH];`
pub fn entry(name: &str, sip: &str, tel: &str, auth: Option<&str>) -> MapEntry {
    MapEntry {
        name: name.into(),
        sip: Some(t(sip)),
        tel: Some(t(tel)),
        auth: auth.map(Into::into),
    }
}

pub fn map(name: &str, entries: Vec<MapEntry>) -> Map {
    Map {
        name: name.into(),
        entries,
    }
}

pub fn iface<S: AsRef<str>>(extension: &[S], source: &[S]) -> Option<Interface> {
    Some(Interface {
        extension_maps: extension.iter().map(|s| s.as_ref().to_owned()).collect(),
        source_maps: source.iter().map(|s| s.as_ref().to_owned()).collect(),
        ..Interface::default()
    })
}

pub fn translate_map(name: &str, rules: &[(&str, &str)]) -> TranslateMap {
    TranslateMap {
        name: name.into(),
        rules: rules
            .iter()
            .map(|(m, tr)| TranslateRule {
                match_: t(m),
                translation: t(tr),
            })
            .collect(),
    }
}

pub fn config(maps: Vec<Map>, tel: Option<Interface>, sip: Option<Interface>) -> Config {
    let mut config = Config {
        maps,
        ..Config::default()
    };
    config.interfaces.tel = tel;
    config.interfaces.sip = sip;
    config
}
