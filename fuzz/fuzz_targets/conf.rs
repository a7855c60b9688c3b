//! cig.conf: the parser never panics on any input, every diagnostic renders, and a config it
//! accepts prints to text that parses back to the same model.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match cig_core::conf::parse(text, "fuzz.conf") {
        Ok(loaded) => {
            for w in &loaded.warnings {
                let _ = w.to_string();
            }
            let printed = loaded.config.to_string();
            let again = cig_core::conf::parse(&printed, "printed.conf")
                .unwrap_or_else(|d| panic!("printed config does not parse:\n{printed}\n{d}"));
            assert_eq!(again.config, loaded.config, "{printed}");
        }
        Err(d) => {
            let _ = d.to_string();
        }
    }
});
