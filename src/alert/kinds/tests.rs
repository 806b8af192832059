//! The kinds' own keys as `check-config` reports them (line, key path, words),
//! each kind read into its rule, and each kind's words.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveTime;

use super::continuous_flow::ContinuousFlow;
use super::night_use::NightUse;
use super::no_data::NoData;
use super::volume::Volume;
use super::*;

const PATH: &str = "/etc/watermeter/config.toml";
const METER: &str = "[[meter]]\nid = \"main\"\n";
const SMTP: &str =
    "[smtp]\nhost = \"smtp.example.org\"\nfrom = \"pi@example.org\"\nto = \"owner@example.org\"\n";
const MIN: u64 = 60;
const EXAMPLE: &str = include_str!("../../../config.example.toml");

/// A config with one meter, one alert whose own keys start on line 6, and SMTP.
fn alert(body: &str) -> String {
    format!("{METER}[[alert]]\nname = \"a\"\nmeter = \"main\"\n{body}{SMTP}")
}

/// Parses `text` with the kinds checked, and asserts exactly these problems, in
/// order, as (line, key, part of the message).
fn check(text: &str, expected: &[(usize, &str, &str)]) {
    let problems = match parse_config(text, Path::new(PATH)) {
        Ok(_) => Vec::new(),
        Err(err) => err.problems,
    };
    let shown: Vec<String> = problems
        .iter()
        .map(|p| format!("{:?} {} {}", p.line, p.key, p.message))
        .collect();
    assert_eq!(problems.len(), expected.len(), "problems: {shown:#?}");
    for (problem, (line, key, message)) in problems.iter().zip(expected) {
        assert_eq!(problem.line, Some(*line), "problems: {shown:#?}");
        assert_eq!(problem.key, *key, "problems: {shown:#?}");
        assert!(
            problem.message.contains(message),
            "expected {message:?} in {shown:#?}"
        );
    }
}

fn ok(text: &str) -> Config {
    parse_config(text, Path::new(PATH)).unwrap_or_else(|e| panic!("expected a valid config:\n{e}"))
}

fn kind_of(body: &str) -> (Arc<dyn AlertKind>, Duration) {
    let rule = rules(&ok(&alert(body))).remove(0);
    (rule.kind, rule.repeat)
}

/// The kind read is exactly `want` (same type, same fields).
fn assert_same(got: &Arc<dyn AlertKind>, want: &dyn AlertKind) {
    assert_eq!(format!("{got:?}"), format!("{want:?}"));
}

#[test]
fn volume_alert_is_read_with_default_repeat() {
    let (kind, repeat) = kind_of("kind = \"volume\"\nwindow = \"1h\"\nthreshold_liters = 100\n");
    let window = Duration::from_secs(3600);
    assert_same(
        &kind,
        &Volume {
            window,
            threshold_liters: 100.0,
        },
    );
    assert_eq!(repeat, Duration::from_secs(4 * 3600));
}

#[test]
fn volume_window_must_be_between_15_minutes_and_7_days() {
    let text = |w: &str| {
        alert(&format!(
            "kind = \"volume\"\nwindow = \"{w}\"\nthreshold_liters = 1\n"
        ))
    };
    check(
        &text("10m"),
        &[(7, "alert[0].window", "use a duration from 15m to 7d")],
    );
    check(
        &text("8d"),
        &[(7, "alert[0].window", "use a duration from 15m to 7d")],
    );
    check(
        &text("1 hour"),
        &[(7, "alert[0].window", "is not a duration")],
    );
    ok(&text("15m"));
    ok(&text("7d"));
}

#[test]
fn volume_needs_a_positive_threshold() {
    check(
        &alert("kind = \"volume\"\nwindow = \"1h\"\n"),
        &[(
            3,
            "alert[0].threshold_liters",
            "`threshold_liters` is missing",
        )],
    );
    check(
        &alert("kind = \"volume\"\nwindow = \"1h\"\nthreshold_liters = 0\n"),
        &[(8, "alert[0].threshold_liters", "must be more than 0")],
    );
}

#[test]
fn continuous_flow_alert_defaults_quiet_to_15_minutes() {
    let (kind, _) = kind_of("kind = \"continuous_flow\"\nduration = \"2h\"\nrepeat = \"1h\"\n");
    let expected = ContinuousFlow {
        duration: Duration::from_secs(7200),
        quiet: Duration::from_secs(15 * MIN),
    };
    assert_same(&kind, &expected);
    check(
        &alert("kind = \"continuous_flow\"\nduration = \"5m\"\n"),
        &[(7, "alert[0].duration", "at least 15m")],
    );
}

#[test]
fn night_use_alert_reads_times_of_day() {
    let (kind, _) =
        kind_of("kind = \"night_use\"\nfrom = \"23:30\"\nto = \"05:00\"\nthreshold_liters = 5.5\n");
    let at = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
    assert_same(
        &kind,
        &NightUse {
            from: at(23, 30),
            to: at(5, 0),
            threshold_liters: 5.5,
        },
    );
}

#[test]
fn night_use_rejects_bad_or_equal_times() {
    let text = alert("kind = \"night_use\"\nfrom = \"25:00\"\nto = \"5\"\nthreshold_liters = 1\n");
    check(
        &text,
        &[
            (7, "alert[0].from", "write it as \"HH:MM\""),
            (8, "alert[0].to", "write it as \"HH:MM\""),
        ],
    );
    let text =
        alert("kind = \"night_use\"\nfrom = \"01:00\"\nto = \"01:00\"\nthreshold_liters = 1\n");
    check(&text, &[(8, "alert[0].to", "is the same time as `from`")]);
}

#[test]
fn no_data_alert_needs_at_least_a_minute() {
    let (kind, _) = kind_of("kind = \"no_data\"\nafter = \"30m\"\n");
    assert_same(
        &kind,
        &NoData {
            after: Duration::from_secs(30 * MIN),
        },
    );
    check(
        &alert("kind = \"no_data\"\nafter = \"30s\"\n"),
        &[(7, "alert[0].after", "at least 1m")],
    );
    check(
        &alert("kind = \"no_data\"\nafter = 30\n"),
        &[(
            7,
            "alert[0].after",
            "must be a string in quotes, not a whole number",
        )],
    );
}

#[test]
fn key_of_another_kind_says_which_kind_it_belongs_to() {
    let text = alert("kind = \"no_data\"\nafter = \"1h\"\nwindow = \"1h\"\n");
    check(
        &text,
        &[(
            8,
            "alert[0].window",
            "does not apply to a no_data alert (it belongs to volume alerts)",
        )],
    );
}

#[test]
fn unknown_key_in_alert_suggests_the_known_one() {
    let text =
        alert("kind = \"volume\"\nwindow = \"1h\"\nthreshold_liters = 1\nthreshold_liter = 1\n");
    check(
        &text,
        &[(
            9,
            "alert[0].threshold_liter",
            "did you mean `threshold_liters`?",
        )],
    );
}

#[test]
fn alert_kind_must_be_known() {
    check(
        &alert("kind = \"leaks\"\n"),
        &[(
            6,
            "alert[0].kind",
            "use \"volume\", \"continuous_flow\", \"night_use\", \"no_data\", \"meter_alarm\", \"leak\" or \"budget\"",
        )],
    );
    check(&alert(""), &[(3, "alert[0].kind", "`kind` is missing")]);
}

#[test]
fn example_config_with_alert_and_smtp_enabled_loads() {
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("smtp-password");
    std::fs::write(&password_file, "pw\n").unwrap();
    let mut enabled = String::new();
    let mut in_alert_section = false;
    for line in EXAMPLE.lines() {
        in_alert_section |= line.starts_with("# --- Alerts");
        let disabled = line.starts_with('#') && !line.starts_with("# ") && line.len() > 1;
        enabled.push_str(if in_alert_section && disabled {
            &line[1..]
        } else {
            line
        });
        enabled.push('\n');
    }
    let enabled = enabled.replace(
        "/etc/watermeter/smtp-password",
        &password_file.to_string_lossy(),
    );
    let config =
        parse_config(&enabled, Path::new(PATH)).unwrap_or_else(|err| panic!("{err}\n{enabled}"));
    assert_eq!(config.alerts.len(), 1);
    let volume = Volume {
        window: Duration::from_secs(3600),
        threshold_liters: 100.0,
    };
    assert_same(&rules(&config)[0].kind, &volume);
    assert_eq!(config.smtp.and_then(|s| s.password), Some("pw".to_string()));
}

#[test]
fn shortened_key_suggests_the_full_one() {
    let text = alert("kind = \"volume\"\nwindow = \"1h\"\nthreshold = 1\n");
    check(
        &text,
        &[
            (
                3,
                "alert[0].threshold_liters",
                "`threshold_liters` is missing",
            ),
            (8, "alert[0].threshold", "did you mean `threshold_liters`?"),
        ],
    );
}

#[test]
fn every_kind_says_its_rule_and_its_transitions_in_words() {
    let volume = Volume {
        window: Duration::from_secs(3600),
        threshold_liters: 100.0,
    };
    assert_eq!(volume.describe(), "more than 100 L within 1 h");
    assert_eq!((volume.name(), volume.unit()), ("volume", "L"));
    let no_data = NoData {
        after: Duration::from_secs(2 * 86_400),
    };
    assert_eq!(no_data.describe(), "no pulse for 2 d");
    assert_eq!(
        no_data.summary("House", 0.0, true, None),
        "House: data is arriving again (limit 2 d of silence)"
    );
    let flow = ContinuousFlow {
        duration: Duration::from_secs(7200),
        quiet: Duration::from_secs(900),
    };
    assert_eq!(flow.describe(), "water flowing without a pause for 2 h");
    assert_eq!(flow.unit(), "s");
    let at = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
    let night = NightUse {
        from: at(22, 0),
        to: at(6, 0),
        threshold_liters: 20.0,
    };
    assert_eq!(night.describe(), "more than 20 L between 22:00 and 06:00");
}

#[test]
fn every_kind_has_its_own_name_and_keys() {
    let mut names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), KINDS.len());
    for k in KINDS {
        assert!(!k.keys.is_empty(), "{}", k.name);
        for key in k.keys {
            assert!(
                !ALERT_COMMON_KEYS.contains(key) && *key != "kind",
                "{}: {key}",
                k.name
            );
        }
    }
}

#[test]
fn a_meter_alarm_fires_while_the_meter_reports_its_flag_and_says_which() {
    use crate::alert::rules::MemoryUsage;
    let (kind, _) = kind_of("kind = \"meter_alarm\"\n");
    let (leak_only, _) = kind_of("kind = \"meter_alarm\"\nflags = \"leak\"\n");
    let mut usage = MemoryUsage::new();
    let tz = chrono_tz::UTC;
    assert!(!kind.measure("main", &usage, 0, tz, None).breached);
    usage.alarms("main", &["dry"]);
    assert!(kind.measure("main", &usage, 0, tz, None).breached);
    assert!(!leak_only.measure("main", &usage, 0, tz, None).breached);
    usage.alarms("main", &["leak", "burst"]);
    assert!(leak_only.measure("main", &usage, 0, tz, None).breached);
    let detail = kind.detail("main", &usage, 0, chrono_tz::UTC);
    assert_eq!(
        kind.summary("House", 2.0, false, detail.as_deref()),
        "House: the meter itself reports an alarm: leak, burst"
    );
    assert_eq!(leak_only.describe(), "the meter reports leak");
    check(
        &alert("kind = \"meter_alarm\"\nflags = [\"leak\"]\n"),
        &[(7, "alert[0].flags", "must be one flag in quotes")],
    );
}

#[path = "tests_budget.rs"]
mod budget_tests;
