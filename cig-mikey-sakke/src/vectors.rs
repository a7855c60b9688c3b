//! Test-only reader for the RFC appendix vector files under `tests/vectors/`.

/// Looks up `name = HEX` in a vector file (first occurrence) and decodes it.
pub(crate) fn hex_value(file: &str, name: &str) -> Vec<u8> {
    let text = text_value(file, name);
    // The appendices print small integers such as KSAK = 0x12345 with an odd digit count.
    let text = if text.len() % 2 == 1 {
        format!("0{text}")
    } else {
        text.to_owned()
    };
    hex::decode(text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub(crate) fn text_value<'a>(file: &'a str, name: &str) -> &'a str {
    file.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim())
        .unwrap_or_else(|| panic!("vector {name} missing"))
}

pub(crate) const RFC6507: &str = include_str!("../tests/vectors/rfc6507.txt");
pub(crate) const RFC6508: &str = include_str!("../tests/vectors/rfc6508.txt");
