//! Tests for `[[alert]]`, `[smtp]` and `config.example.toml`.

use std::path::Path;
use std::time::Duration;

use chrono::NaiveTime;

use super::tests::{check, ok, METER, PATH};
use super::*;

const SMTP: &str =
    "[smtp]\nhost = \"smtp.example.org\"\nfrom = \"pi@example.org\"\nto = \"owner@example.org\"\n";
const MIN: u64 = 60;

/// A config with one meter, one alert whose own keys start on line 6, and SMTP.
fn alert(body: &str) -> String {
    format!("{METER}[[alert]]\nname = \"a\"\nmeter = \"main\"\n{body}{SMTP}")
}

fn kind_of(body: &str) -> (AlertKind, Duration) {
    let rule = ok(&alert(body)).alerts.remove(0);
    (rule.kind, rule.repeat)
}

#[test]
fn volume_alert_is_read_with_default_repeat() {
    let (kind, repeat) = kind_of("kind = \"volume\"\nwindow = \"1h\"\nthreshold_liters = 100\n");
    let window = Duration::from_secs(3600);
    assert_eq!(
        kind,
        AlertKind::Volume {
            window,
            threshold_liters: 100.0
        }
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
    let expected = AlertKind::ContinuousFlow {
        duration: Duration::from_secs(7200),
        quiet: Duration::from_secs(15 * MIN),
    };
    assert_eq!(kind, expected);
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
    assert_eq!(
        kind,
        AlertKind::NightUse {
            from: at(23, 30),
            to: at(5, 0),
            threshold_liters: 5.5
        }
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
    assert_eq!(
        kind,
        AlertKind::NoData {
            after: Duration::from_secs(30 * MIN)
        }
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
fn repeat_must_be_at_least_five_minutes() {
    check(
        &alert("kind = \"no_data\"\nafter = \"1h\"\nrepeat = \"1m\"\n"),
        &[(8, "alert[0].repeat", "at least 5m")],
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
        &alert("kind = \"leak\"\n"),
        &[(
            6,
            "alert[0].kind",
            "use \"volume\", \"continuous_flow\", \"night_use\" or \"no_data\"",
        )],
    );
    check(&alert(""), &[(3, "alert[0].kind", "`kind` is missing")]);
}

#[test]
fn alert_must_name_an_existing_meter() {
    let text = format!("{METER}[[alert]]\nname = \"a\"\nmeter = \"mian\"\nkind = \"no_data\"\nafter = \"1h\"\n{SMTP}");
    check(
        &text,
        &[(
            5,
            "alert[0].meter",
            "there is no meter with id \"mian\"; did you mean \"main\"?",
        )],
    );
}

#[test]
fn alert_names_are_required_and_unique() {
    let rule = "meter = \"main\"\nkind = \"no_data\"\nafter = \"1h\"\n";
    let text = format!("{METER}[[alert]]\nname = \"x\"\n{rule}[[alert]]\nname = \"x\"\n{rule}[[alert]]\n{rule}{SMTP}");
    check(
        &text,
        &[
            (9, "alert[1].name", "another alert is already named \"x\""),
            (13, "alert[2].name", "`name` is missing"),
        ],
    );
}

#[test]
fn alerts_without_smtp_are_an_error() {
    let text = format!(
        "{METER}[[alert]]\nname = \"a\"\nmeter = \"main\"\nkind = \"no_data\"\nafter = \"1h\"\n"
    );
    check(&text, &[(3, "smtp", "alerts are configured but [smtp] is missing; add an [smtp] table or remove the [[alert]] entries")]);
}

#[test]
fn smtp_port_follows_the_security_mode() {
    let port = |security: &str| {
        let text = format!("{METER}{SMTP}security = \"{security}\"\n");
        ok(&text).smtp.map(|s| (s.security, s.port))
    };
    assert_eq!(port("starttls"), Some((SmtpSecurity::StartTls, 587)));
    assert_eq!(port("tls"), Some((SmtpSecurity::Tls, 465)));
    assert_eq!(port("none"), Some((SmtpSecurity::None, 25)));
    assert_eq!(
        ok(&format!("{METER}{SMTP}port = 2525\n"))
            .smtp
            .map(|s| s.port),
        Some(2525)
    );
    check(
        &format!("{METER}{SMTP}port = 70000\n"),
        &[(7, "smtp.port", "not a port number")],
    );
}

#[test]
fn smtp_checks_its_required_keys_and_addresses() {
    check(
        &format!("{METER}[smtp]\nfrom = \"nobody\"\nto = []\ndashboard_url = \"pi:8080\"\n"),
        &[
            (3, "smtp.host", "`host` is missing"),
            (4, "smtp.from", "\"nobody\" is not a mail address"),
            (5, "smtp.to", "write at least one address"),
            (6, "smtp.dashboard_url", "write it like \"http://pi:8080\""),
        ],
    );
    check(
        &format!("{METER}{SMTP}to = [\"a@b.org\", \"c d@e\"]\n"),
        &[(7, "", "duplicate key")],
    );
    let text = format!(
        "{METER}[smtp]\nhost = \"h\"\nfrom = \"Pi <pi@x.org>\"\nto = [\"a@b.org\", \"c d@e\"]\n"
    );
    check(
        &text,
        &[(6, "smtp.to[1]", "\"c d@e\" is not a mail address")],
    );
}

#[test]
fn smtp_reads_the_password_file_next_to_the_config_and_never_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("smtp-password"), "s3cret-pw\n").unwrap();
    let text = format!("{METER}{SMTP}username = \"pi\"\npassword_file = \"smtp-password\"\ndashboard_url = \"https://pi:8080/\"\n");
    let config = parse(&text, &dir.path().join("config.toml")).unwrap();
    let smtp = config.smtp.as_ref().unwrap();
    assert_eq!(smtp.username.as_deref(), Some("pi"));
    assert_eq!(smtp.password.as_deref(), Some("s3cret-pw"));
    assert_eq!(smtp.dashboard_url.as_deref(), Some("https://pi:8080"));
    assert!(!format!("{config:?}").contains("s3cret-pw"));
}

#[test]
fn smtp_username_and_password_file_come_together() {
    check(
        &format!("{METER}{SMTP}username = \"pi\"\n"),
        &[(7, "smtp.username", "add password_file")],
    );
    check(
        &format!("{METER}{SMTP}password_file = \"/nonexistent/pw\"\n"),
        &[
            (7, "smtp.password_file", "set but `username` is not"),
            (7, "smtp.password_file", "cannot read /nonexistent/pw"),
        ],
    );
}

#[test]
fn smtp_ca_file_must_be_a_pem_certificate() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ca.pem"),
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("junk.txt"), "hello").unwrap();
    let config_path = dir.path().join("config.toml");
    let with_ca = |file: &str| {
        parse(
            &format!("{METER}{SMTP}ca_file = \"{file}\"\n"),
            &config_path,
        )
    };
    let smtp = with_ca("ca.pem").unwrap().smtp.unwrap();
    assert_eq!(smtp.ca_file, Some(dir.path().join("ca.pem")));
    let problems = |file| with_ca(file).unwrap_err().problems.remove(0).message;
    assert!(problems("junk.txt").contains("holds no PEM certificate"));
    assert!(problems("missing.pem").contains("cannot read"));
}

const EXAMPLE: &str = include_str!("../../config.example.toml");

#[test]
fn example_config_loads_without_problems() {
    let config = ok(EXAMPLE);
    assert_eq!(config.timezone, chrono_tz::Europe::Vienna);
    assert_eq!(config.http.listen.to_string(), "0.0.0.0:8080");
    assert!(config.udp.is_some());
    assert!(config.alerts.is_empty() && config.smtp.is_none());
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
    let config = parse(&enabled, Path::new(PATH)).unwrap_or_else(|err| panic!("{err}\n{enabled}"));
    assert_eq!(config.alerts.len(), 1);
    let volume = AlertKind::Volume {
        window: Duration::from_secs(3600),
        threshold_liters: 100.0,
    };
    assert_eq!(config.alerts[0].kind, volume);
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
