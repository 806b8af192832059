//! Tests for `[[alert]]`'s common keys, `[smtp]` and `config.example.toml`. The
//! kinds' own keys are tested with the kinds (`alert/kinds/tests.rs`).

use super::tests::{check, ok, METER};
use super::*;

const SMTP: &str =
    "[smtp]\nhost = \"smtp.example.org\"\nfrom = \"pi@example.org\"\nto = \"owner@example.org\"\n";

/// A config with one meter, one alert whose own keys start on line 6, and SMTP.
fn alert(body: &str) -> String {
    format!("{METER}[[alert]]\nname = \"a\"\nmeter = \"main\"\n{body}{SMTP}")
}

#[test]
fn repeat_must_be_at_least_five_minutes() {
    check(
        &alert("kind = \"no_data\"\nafter = \"1h\"\nrepeat = \"1m\"\n"),
        &[(8, "alert[0].repeat", "at least 5m")],
    );
    let off = ok(&alert(
        "kind = \"no_data\"\nafter = \"1h\"\nrepeat = \"0s\"\n",
    ));
    assert_eq!(off.alerts[0].repeat, std::time::Duration::ZERO);
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
fn alerts_without_any_channel_are_an_error() {
    let text = format!(
        "{METER}[[alert]]\nname = \"a\"\nmeter = \"main\"\nkind = \"no_data\"\nafter = \"1h\"\n"
    );
    check(&text, &[(3, "smtp", "alerts are configured but no channel reaches you: add an [smtp] table or a [[notify]] channel")]);
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
fn notify_channels_are_read_checked_and_named_by_alerts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ntfy-token"), "tk_secret\n").unwrap();
    let text = format!(
        "{METER}[[alert]]\nname = \"a\"\nmeter = \"main\"\nkind = \"no_data\"\nafter = \"1h\"\nnotify = [\"phone\"]\n\
         [[notify]]\nname = \"phone\"\nkind = \"ntfy\"\nurl = \"https://ntfy.example.org/water\"\ntoken_file = \"ntfy-token\"\npriority = \"high\"\n\
         [[notify]]\nname = \"ha\"\nkind = \"webhook\"\nurl = \"http://homeassistant:8123/api/webhook/water\"\n"
    );
    let c = parse(&text, &dir.path().join("config.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.alerts[0].notify, vec!["phone".to_string()]);
    assert_eq!(c.notify.len(), 2);
    assert!(
        matches!(&c.notify[0].kind, NotifyKind::Ntfy { priority: 4, token: Some(t), .. } if t == "tk_secret")
    );
    assert!(!format!("{:?}", c.notify).contains("tk_secret"));
    check(
        &format!("{METER}[[alert]]\nname = \"a\"\nmeter = \"main\"\nkind = \"no_data\"\nafter = \"1h\"\nnotify = [\"pager\"]\n[[notify]]\nname = \"email\"\nkind = \"ntfy\"\nurl = \"ntfy.sh/x\"\npriority = \"loud\"\n"),
        &[
            (8, "alert[0].notify[0]", "there is no channel \"pager\""),
            (10, "notify[0].name", "already a channel's name"),
            (12, "notify[0].url", "not an http:// or https:// address"),
            (13, "notify[0].priority", "not an ntfy priority"),
        ],
    );
}

#[test]
fn a_tariff_is_read_and_its_mistakes_named() {
    let c = ok(&format!(
        "{METER}[tariff]\ncurrency = \"EUR\"\nprice_per_m3 = 2.1\nsewage_per_m3 = 2.8\nfixed_per_month = 5\ntiers = [{{ up_to_m3 = 100, price_per_m3 = 2.1 }}, {{ price_per_m3 = 2.6 }}]\ntiers_period = \"month\"\n"
    ));
    let t = c.tariff.expect("tariff");
    assert_eq!((t.tiers.len(), t.tiers_period), (2, TiersPeriod::Month));
    check(
        &format!("{METER}[tariff]\ncurrency = \"euro\"\nprice_per_m3 = -1\ntiers = [{{ up_to_m3 = 100, price_per_m3 = 2 }}, {{ up_to_m3 = 50, price_per_m3 = 3 }}]\n"),
        &[
            (4, "tariff.currency", "not a currency code"),
            (5, "tariff.price_per_m3", "negative"),
            (6, "tariff.tiers[1].up_to_m3", "overlaps the tier before it"),
        ],
    );
}
