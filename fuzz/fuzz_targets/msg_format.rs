//! cig-msg message format: parsing never panics on any bytes, and a parsed message that the
//! writer accepts comes back from write → parse with the same addresses, headers and
//! attachments, and the same text up to control characters and white space at line ends
//! (quoted-printable does not keep those; a known limit of the text body).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = cig_msg::format::parse(data) else {
        return;
    };
    let Ok(written) = cig_msg::format::write(&msg) else {
        return;
    };
    let mut back = cig_msg::format::parse(&written)
        .unwrap_or_else(|e| panic!("written message does not parse: {e}"));
    // The writer supplies a date and an id when the message has none.
    if msg.date.is_none() {
        back.date = None;
    }
    if msg.id.is_none() {
        back.id = None;
    }
    let plain = |t: &str| -> String {
        t.lines()
            .map(|l| {
                l.chars()
                    .filter(|c| !c.is_control())
                    .collect::<String>()
                    .trim_end()
                    .to_owned()
            })
            .collect::<Vec<_>>()
            .join("\n")
            .trim_end()
            .to_owned()
    };
    assert_eq!(plain(&back.text), plain(&msg.text));
    back.text = msg.text.clone();
    assert_eq!(back, msg);
});
