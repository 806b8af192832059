//! Tests for the forwarder's pure parts; the loop itself is tested end to end
//! against a real InfluxDB (tests/e2e/forward.rs).

use std::time::Duration;

use super::*;

#[test]
fn statuses_decide_between_accept_retry_and_refuse() {
    let check = |status, expected: &str| {
        let got = match outcome_of(status, "x") {
            Outcome::Accepted => "accepted",
            Outcome::Retry(_) => "retry",
            Outcome::Refused(_) => "refused",
        };
        assert_eq!(got, expected, "HTTP {status}");
    };
    check(204, "accepted");
    check(200, "accepted");
    check(429, "retry");
    check(500, "retry");
    check(503, "retry");
    check(400, "refused");
    check(401, "refused");
    check(404, "refused");
    check(301, "refused");
}

#[test]
fn backoff_doubles_from_one_second_up_to_five_minutes() {
    let got: Vec<u64> = [1, 2, 3, 4, 8, 9, 10, 40, u32::MAX]
        .iter()
        .map(|&f| backoff(f).as_secs())
        .collect();
    assert_eq!(got, [1, 2, 4, 8, 128, 256, 300, 300, 300]);
    assert_eq!(backoff(0), Duration::from_secs(1));
}

#[test]
fn request_path_sets_nanosecond_precision_once() {
    let check = |given: &str, expected: &str| assert_eq!(request_path(given), expected);
    check("/write?db=water", "/write?db=water&precision=ns");
    check(
        "/write?db=water&precision=s",
        "/write?db=water&precision=ns",
    );
    check("/write", "/write?precision=ns");
    check(
        "/api/v2/write?org=o&bucket=b",
        "/api/v2/write?org=o&bucket=b&precision=ns",
    );
}

#[test]
fn body_uses_the_meter_tags_field_liters_and_unique_nanoseconds() {
    let config = crate::config::builtin_defaults();
    let e = |seq, ts_ms, ml| {
        (
            seq,
            QueuedEvent {
                meter: 0,
                ts_ms,
                ml,
            },
        )
    };
    let text = body(
        &config,
        &[
            e(7, 1_700_000_000_123, 1000),
            e(8, 1_700_000_000_123, 2500),
            e(1_000_009, 5, 1),
        ],
    );
    assert_eq!(
        text,
        "water,meter=main liters=1.0 1700000000123000007\n\
         water,meter=main liters=2.5 1700000000123000008\n\
         water,meter=main liters=0.001 5000009\n"
    );
}
