//! Tests for `[forward]` and `[mqtt]`.

use std::time::Duration;

use super::tests::{check, ok, METER};
use super::validate_forward::parse_http_url;
use super::*;

fn url(text: &str, expected: Result<(bool, &str, u16, &str), &str>) {
    match (parse_http_url(text), expected) {
        (Ok((t, h, p, q)), Ok(want)) => assert_eq!((t, h.as_str(), p, q.as_str()), want),
        (Err(m), Err(part)) => assert!(m.contains(part), "{m}"),
        (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
    }
}

#[test]
fn forward_urls_split_into_host_port_and_path() {
    url(
        "http://influx:8086/write?db=water",
        Ok((false, "influx", 8086, "/write?db=water")),
    );
    url("http://vm/write", Ok((false, "vm", 80, "/write")));
    url(
        "http://[::1]:8428/api/v2/write?bucket=b&org=o",
        Ok((false, "::1", 8428, "/api/v2/write?bucket=b&org=o")),
    );
    url("http://h:9?db=x", Ok((false, "h", 9, "/?db=x")));
    url("https://influx/write", Ok((true, "influx", 443, "/write")));
    url(
        "https://vm.example.net:8428/write",
        Ok((true, "vm.example.net", 8428, "/write")),
    );
    url(
        "influx:8086/write",
        Err("not an http:// or https:// address"),
    );
    url(
        "ftp://influx/write",
        Err("not an http:// or https:// address"),
    );
    url("http://u:p@influx/write", Err("credentials"));
    url("http://influx:99999/write", Err("no valid host"));
    url("http://:8086/write", Err("no valid host"));
}

#[test]
fn forward_table_fills_defaults() {
    let c = ok(&format!(
        "{METER}[forward]\nurl = \"http://influx:8086/write?db=water\"\n"
    ));
    let f = c.forward.expect("forward");
    assert_eq!(f.batch_size, 5000);
    assert_eq!(f.interval, Duration::from_secs(5));
    assert_eq!(f.auth, ForwardAuth::None);
    assert_eq!(f.path_and_query, "/write?db=water");
    assert!(c.mqtt.is_none());
}

#[test]
fn forward_token_is_hidden_from_debug() {
    let c = ok(&format!(
        "{METER}[forward]\nurl = \"http://i/api/v2/write?bucket=b&org=o\"\ntoken = \"s3cr3t\"\nbatch_size = 10\ninterval = \"2s\"\n"
    ));
    let f = c.forward.expect("forward");
    assert_eq!(f.auth, ForwardAuth::Token("s3cr3t".into()));
    assert_eq!((f.batch_size, f.interval), (10, Duration::from_secs(2)));
    assert!(!format!("{f:?}").contains("s3cr3t"));
}

#[test]
fn forward_problems_name_the_key_and_the_fix() {
    check(
        &format!("{METER}[forward]\nurl = \"htps://x/write\"\nbatch_size = 0\ninterval = \"0s\"\nbatch = 3\n"),
        &[
            (4, "forward.url", "not an http:// or https:// address"),
            (5, "forward.batch_size", "1 to 100000"),
            (6, "forward.interval", "out of range"),
            (7, "forward.batch", "did you mean `batch_size`"),
        ],
    );
    check(
        &format!("{METER}[forward]\ntoken = \"t\"\n"),
        &[(3, "forward.url", "`url` is missing")],
    );
    check(
        &format!("{METER}[forward]\nurl = \"http://i/write\"\nusername = \"u\"\n"),
        &[(5, "forward.username", "password_file")],
    );
}

#[test]
fn forward_password_file_is_read_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), "hunter2\n").unwrap();
    let text = format!(
        "{METER}[forward]\nurl = \"http://i:8086/write?db=w\"\nusername = \"u\"\npassword_file = \"pw\"\n"
    );
    let c = parse(&text, &dir.path().join("config.toml")).expect("valid");
    let f = c.forward.expect("forward");
    assert_eq!(
        f.auth,
        ForwardAuth::Basic {
            username: "u".into(),
            password: "hunter2".into()
        }
    );
    assert!(!format!("{f:?}").contains("hunter2"));
}

#[test]
fn mqtt_table_fills_defaults() {
    let c = ok(&format!("{METER}[mqtt]\nhost = \"broker\"\n"));
    let m = c.mqtt.expect("mqtt");
    assert_eq!((m.host.as_str(), m.port), ("broker", 1883));
    assert_eq!(m.topic_prefix, "watermeter");
    assert_eq!(m.discovery_prefix, "homeassistant");
    assert_eq!(m.interval, Duration::from_secs(10));
    assert!(m.username.is_none() && m.password.is_none());
}

#[test]
fn tls_keys_set_the_default_port_and_check_the_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let c = ok(&format!(
        "{METER}[mqtt]\nhost = \"broker\"\ntls = true\nca_file = \"{0}\"\n[forward]\nurl = \"https://vm/write\"\nca_file = \"{0}\"\n",
        ca.display()
    ));
    let m = c.mqtt.expect("mqtt");
    assert_eq!(
        (m.tls, m.port, m.ca_file.as_deref()),
        (true, 8883, Some(ca.as_path()))
    );
    let f = c.forward.expect("forward");
    assert_eq!(
        (f.tls, f.port, f.ca_file.as_deref()),
        (true, 443, Some(ca.as_path()))
    );
    check(
        &format!(
            "{METER}[forward]\nurl = \"https://vm/write\"\nca_file = \"/nonexistent/ca.pem\"\n"
        ),
        &[(5, "forward.ca_file", "cannot read /nonexistent/ca.pem")],
    );
    check(
        &format!("{METER}[mqtt]\nhost = \"b\"\ntls = \"yes\"\n"),
        &[(5, "mqtt.tls", "true or false")],
    );
}

#[test]
fn mqtt_problems_name_the_key_and_the_fix() {
    check(
        &format!("{METER}[mqtt]\nhost = \"mqtt://b\"\nport = 0\ntopic_prefix = \"a/#\"\ninterval = \"soon\"\n"),
        &[
            (4, "mqtt.host", "not a host name"),
            (5, "mqtt.port", "1883"),
            (6, "mqtt.topic_prefix", "not a usable topic prefix"),
            (7, "mqtt.interval", "not a duration"),
        ],
    );
    check(
        &format!("{METER}[mqtt]\nport = 1883\n"),
        &[(3, "mqtt.host", "`host` is missing")],
    );
}

#[test]
fn example_config_integration_tables_are_valid_when_uncommented() {
    let example = include_str!("../../config.example.toml");
    let mut enabled = String::new();
    let mut in_section = false;
    for line in example.lines() {
        in_section |= line.starts_with("# --- Integrations");
        let disabled = line.starts_with('#') && !line.starts_with("# ") && line.len() > 1;
        enabled.push_str(if in_section && disabled {
            &line[1..]
        } else {
            line
        });
        enabled.push('\n');
    }
    let c = ok(&enabled);
    let f = c.forward.expect("forward");
    assert_eq!((f.host.as_str(), f.port), ("influx", 8086));
    assert_eq!(c.mqtt.expect("mqtt").host, "192.168.1.10");
}
