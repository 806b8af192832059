//! Fuzzes the config loader: any text gives a `Config` or a list of problems, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let path = std::path::Path::new("/nonexistent/fuzz/config.toml");
        if let Err(e) = watermeter::config::parse(text, path) {
            let _ = e.to_string();
        }
    }
});
