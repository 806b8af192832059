//! Tests for the document, `[store]`, `[http]`, `[udp]`, `[[meter]]` and the
//! value parsers. Alerts, SMTP and the example file are in `tests_alert.rs`.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use super::values::{parse_duration, parse_ipnet};
use super::*;

pub(super) const PATH: &str = "/etc/watermeter/config.toml";
pub(super) const METER: &str = "[[meter]]\nid = \"main\"\n";

/// Parses `text` and asserts exactly these problems, in order, as (line, key,
/// part of the message); line 0 stands for a problem without a line.
pub(super) fn check(text: &str, expected: &[(usize, &str, &str)]) {
    let problems = match parse(text, Path::new(PATH)) {
        Ok(_) => Vec::new(),
        Err(err) => err.problems,
    };
    let shown: Vec<String> = problems
        .iter()
        .map(|p| format!("{:?} {} {}", p.line, p.key, p.message))
        .collect();
    assert_eq!(problems.len(), expected.len(), "problems: {shown:#?}");
    for (problem, (line, key, message)) in problems.iter().zip(expected) {
        let line = Some(*line).filter(|l| *l > 0);
        assert_eq!(problem.line, line, "problems: {shown:#?}");
        assert_eq!(problem.key, *key, "problems: {shown:#?}");
        assert!(
            problem.message.contains(message),
            "expected {message:?} in {shown:#?}"
        );
    }
}

/// Parses `text`, which must be valid.
pub(super) fn ok(text: &str) -> Config {
    match parse(text, Path::new(PATH)) {
        Ok(config) => config,
        Err(err) => panic!("expected a valid config, got:\n{err}"),
    }
}

#[test]
fn minimal_config_fills_every_default() {
    let config = ok(METER);
    assert_eq!(config.data_dir, Path::new("./watermeter-data"));
    assert_eq!(config.store.cache_bytes, 4 * 1024 * 1024);
    assert_eq!(config.store.flush_interval, Duration::from_millis(500));
    assert_eq!(config.http.listen.to_string(), "127.0.0.1:8080");
    assert!(config.http.auth.is_none());
    assert!(!config.http.allow_unauthenticated_lan);
    assert!(config.udp.is_none(), "no [udp] table means UDP input off");
    assert!(config.alerts.is_empty() && config.smtp.is_none());
    let meter = &config.meters[0];
    assert_eq!((meter.id.as_str(), meter.name.as_str()), ("main", "main"));
    assert_eq!(
        (meter.liters_per_pulse, meter.initial_reading_m3),
        (1.0, 0.0)
    );
    assert_eq!(meter.reading_set_at_ms, None);
    assert_eq!(meter.gpio, None);
    assert_eq!(meter.line_protocol, LineProtocolMatch::default_for("main"));
}

#[test]
fn builtin_defaults_serve_one_meter_on_localhost() {
    let config = builtin_defaults();
    assert_eq!(config.data_dir, Path::new("./watermeter-data"));
    assert_eq!(config.http.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(
        config.udp.map(|u| u.listen.to_string()).as_deref(),
        Some("127.0.0.1:8089")
    );
    assert_eq!(config.meters.len(), 1);
    assert_eq!(
        (config.meters[0].id.as_str(), config.meters[0].name.as_str()),
        ("main", "House")
    );
    let lp = &config.meters[0].line_protocol;
    assert_eq!(lp.measurement, "water");
    assert_eq!(lp.tags, vec![("meter".to_string(), "main".to_string())]);
    // Not `value`: camera readers send the meter's absolute reading in it (issue 14).
    assert_eq!(lp.field, FieldSelector::Liters(vec!["liters".into()]));
    assert!(config.alerts.is_empty() && config.smtp.is_none());
}

#[test]
fn unknown_top_level_key_names_line_and_suggests_the_known_one() {
    check(
        &format!("data_dri = \"/x\"\n{METER}"),
        &[(1, "data_dri", "did you mean `data_dir`?")],
    );
}

#[test]
fn unknown_key_far_from_any_known_key_lists_the_known_keys() {
    check(
        &format!("{METER}[store]\ncolour = 1\n"),
        &[(4, "store.colour", "known keys here: cache_mb, flush_ms")],
    );
}

#[test]
fn unknown_key_in_meter_names_the_meter_index() {
    let text = format!("{METER}[[meter]]\nid = \"garden\"\nliters_per_pules = 1\n");
    check(
        &text,
        &[(
            5,
            "meter[1].liters_per_pules",
            "did you mean `liters_per_pulse`?",
        )],
    );
}

#[test]
fn every_problem_in_the_file_is_reported_at_once_in_line_order() {
    let text = "timezone = \"Vienna\"\n[store]\ncache_mb = \"4\"\nflush_ms = 5000\n[http]\nlisten = \"everywhere\"\nport = 80\n";
    check(
        text,
        &[
            (1, "timezone", "use a name such as \"Europe/Vienna\""),
            (
                3,
                "store.cache_mb",
                "must be a whole number, not a string; remove the quotes",
            ),
            (4, "store.flush_ms", "use 1 to 1000 milliseconds"),
            (
                6,
                "http.listen",
                "\"everywhere\" is not an IP address with a port",
            ),
            (7, "http.port", "unknown key"),
            (0, "meter", "no meter is configured; add a [[meter]] table"),
        ],
    );
}

#[test]
fn toml_syntax_error_names_its_line() {
    check(
        &format!("{METER}name = \"House\n"),
        &[(3, "", "this is not valid TOML")],
    );
}

#[test]
fn problem_display_reads_path_line_key_message() {
    let text = format!("{METER}[[meter]]\nid = \"b\"\n[meter.gpio]\npin = 40\n");
    let err = parse(&text, Path::new(PATH)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/etc/watermeter/config.toml:6: meter[1].gpio.pin: 40 is not a GPIO pin; use a BCM number from 0 to 27"
    );
}

#[test]
fn config_error_display_puts_one_problem_per_line() {
    let err = parse("a = 1\nb = 2\n", Path::new(PATH)).unwrap_err();
    let text = err.to_string();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text
        .lines()
        .last()
        .unwrap_or("")
        .starts_with("/etc/watermeter/config.toml: meter: no meter"));
}

#[test]
fn unreadable_file_names_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.toml");
    let err = load(&path).unwrap_err();
    assert_eq!(err.path, path);
    assert!(
        err.to_string()
            .contains("missing.toml: cannot read the config file"),
        "{err}"
    );
}

#[test]
fn load_reads_a_valid_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, METER).unwrap();
    assert_eq!(load(&path).unwrap().meters[0].id, "main");
}

#[test]
fn timezone_accepts_iana_names_and_suggests_for_a_city() {
    assert_eq!(
        ok(&format!("timezone = \"Europe/Vienna\"\n{METER}")).timezone,
        chrono_tz::Europe::Vienna
    );
    check(
        &format!("timezone = \"berlin\"\n{METER}"),
        &[(1, "timezone", "such as \"Europe/Berlin\"")],
    );
    check(
        &format!("timezone = \"Mars/Base\"\n{METER}"),
        &[(1, "timezone", "such as \"Europe/Vienna\"")],
    );
}

#[test]
fn store_values_are_read_and_bounded() {
    let config = ok(&format!("[store]\ncache_mb = 16\nflush_ms = 1000\n{METER}"));
    assert_eq!(config.store.cache_bytes, 16 * 1024 * 1024);
    assert_eq!(config.store.flush_interval, Duration::from_secs(1));
    check(
        &format!("[store]\nflush_ms = 0\ncache_mb = 0\n{METER}"),
        &[
            (2, "store.flush_ms", "out of range"),
            (3, "store.cache_mb", "out of range"),
        ],
    );
}

#[test]
fn http_on_the_lan_needs_auth_or_an_explicit_opt_out() {
    let text = format!("[http]\nlisten = \"0.0.0.0:8080\"\n{METER}");
    check(
        &text,
        &[(2, "http.listen", "set allow_unauthenticated_lan = true")],
    );
    let config = ok(&format!(
        "[http]\nlisten = \"0.0.0.0:8080\"\nallow_unauthenticated_lan = true\n{METER}"
    ));
    assert!(config.http.allow_unauthenticated_lan);
    ok(&format!("[http]\nlisten = \"[::1]:9000\"\n{METER}"));
}

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

#[test]
fn http_auth_is_read_and_its_hash_never_shows_in_debug() {
    let text = format!("[http]\nlisten = \"0.0.0.0:8080\"\n[http.auth]\nusername = \"me\"\npassword_hash = \"{HASH}\"\n{METER}");
    let config = ok(&text);
    let auth = config.http.auth.as_ref().unwrap();
    assert_eq!(
        (auth.username.as_str(), auth.password_hash.as_str()),
        ("me", HASH)
    );
    let debug = format!("{config:?}");
    assert!(
        !debug.contains("c2FsdHNhbHQ") && !debug.contains("argon2id"),
        "{debug}"
    );
}

#[test]
fn http_auth_rejects_a_plain_password_without_quoting_it() {
    let text = format!("[http.auth]\nusername = \"me\"\npassword_hash = \"hunter2\"\n{METER}");
    check(
        &text,
        &[(
            3,
            "http.auth.password_hash",
            "run `watermeter hash-password`",
        )],
    );
    let err = parse(&text, Path::new(PATH)).unwrap_err();
    assert!(!err.to_string().contains("hunter2"));
    check(
        &format!("[http.auth]\nusername = \"me\"\n{METER}"),
        &[(1, "http.auth.password_hash", "`password_hash` is missing")],
    );
}

#[test]
fn udp_table_turns_udp_on_with_defaults() {
    let udp = ok(&format!("[udp]\n{METER}")).udp.unwrap();
    assert_eq!(udp.listen.to_string(), "127.0.0.1:8089");
    assert!(udp.allow.is_empty());
    assert_eq!(udp.precision, Precision::Nanoseconds);
    let udp = ok(&format!(
        "[udp]\nlisten = \"0.0.0.0:9999\"\nprecision = \"s\"\n{METER}"
    ))
    .udp
    .unwrap();
    assert_eq!(
        (udp.listen.port(), udp.precision),
        (9999, Precision::Seconds)
    );
    check(
        &format!("[udp]\nprecision = \"sec\"\n{METER}"),
        &[(2, "udp.precision", "use \"ns\", \"us\", \"ms\" or \"s\"")],
    );
}

#[test]
fn udp_allow_parses_cidrs_and_bare_addresses() {
    let text = format!(
        "[udp]\nallow = [\"192.168.1.0/24\", \"10.0.0.5\", \"fd00::/8\", \"::1\"]\n{METER}"
    );
    let allow = ok(&text).udp.unwrap().allow;
    let net = |a: &str, prefix| IpNet {
        addr: a.parse::<IpAddr>().unwrap(),
        prefix,
    };
    assert_eq!(
        allow,
        vec![
            net("192.168.1.0", 24),
            net("10.0.0.5", 32),
            net("fd00::", 8),
            net("::1", 128)
        ]
    );
    check(
        &format!("[udp]\nallow = [\"10.0.0.0/33\",\n \"lan\", 5]\n{METER}"),
        &[
            (2, "udp.allow[0]", "use a number from 0 to 32"),
            (3, "udp.allow[1]", "\"lan\" is not an IP network"),
            (
                3,
                "udp.allow[2]",
                "must be a string in quotes, not a whole number",
            ),
        ],
    );
    assert_eq!(
        parse_ipnet("::/129"),
        Err("\"::/129\" has a bad prefix length; use a number from 0 to 128 after the `/`".into())
    );
}

#[test]
fn durations_accept_units_and_combinations() {
    let cases = [
        ("90s", 90),
        ("15m", 900),
        ("1h", 3600),
        ("4h", 14_400),
        ("7d", 604_800),
        ("1h30m", 5400),
        ("0s", 0),
    ];
    for (text, secs) in cases {
        assert_eq!(
            parse_duration(text),
            Ok(Duration::from_secs(secs)),
            "{text}"
        );
    }
    for bad in [
        "",
        "15",
        "h",
        "1.5h",
        "1w",
        "-1h",
        "1h 30m",
        "99999999999999999999d",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad:?} must be rejected");
    }
}

#[test]
fn several_syntax_errors_are_reported_in_line_order() {
    check(
        "a = \nb = [1,\n",
        &[
            (1, "", "string values must be quoted"),
            (2, "", "unclosed array"),
        ],
    );
}

#[test]
fn public_url_is_the_link_of_every_channel_and_dashboard_url_its_alias() {
    let config = ok(&format!(
        "[http]\npublic_url = \"http://water.local:8080/\"\n{METER}"
    ));
    assert_eq!(config.public_url(), Some("http://water.local:8080"));
    assert_eq!(ok(METER).public_url(), None);
    check(
        &format!("[http]\npublic_url = \"water.local\"\n{METER}"),
        &[(2, "http.public_url", "is not a web address")],
    );
}
