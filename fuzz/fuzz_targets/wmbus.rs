//! Fuzzes the wmbusmeters hook's JSON reader: no telegram may panic, and an
//! accepted one is a sample at a plausible time (2000 up to 5 minutes ahead).
#![no_main]

use libfuzzer_sys::fuzz_target;
use watermeter::clock::{AHEAD_MS, EARLIEST_MS};
use watermeter::config::builtin_defaults;
use watermeter::web::wmbus::read;

fuzz_target!(|data: &[u8]| {
    let mut meters = builtin_defaults().meters;
    if let Some(m) = meters.first_mut() {
        m.wmbus_id = Some("33225544".into());
    }
    let now = 1_700_000_000_000;
    if let Ok((sample, _alarms)) = read(&meters, data, now) {
        assert!(sample.ts_ms >= EARLIEST_MS && sample.ts_ms <= now + AHEAD_MS);
    }
});
