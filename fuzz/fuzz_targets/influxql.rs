//! Fuzzes the InfluxQL parser: no query may panic or overflow the stack, and
//! every statement is either understood or refused with a message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use watermeter::influxql::{parse_at, MAX_STATEMENTS};

fuzz_target!(|data: &[u8]| {
    if let Ok(q) = std::str::from_utf8(data) {
        let statements = parse_at(q, 1_700_000_000_000);
        assert!(statements.len() <= MAX_STATEMENTS + 1);
        for s in statements {
            if let Err(e) = s {
                assert!(!e.0.is_empty());
            }
        }
    }
});
