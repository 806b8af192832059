//! The integration tables: `[forward]` (events to an external InfluxDB or
//! VictoriaMetrics) and `[mqtt]` (states and Home Assistant discovery to a broker).
//!
//! Reads `password_file` now, so a bad setup shows at `check-config`, and never
//! quotes a secret. Starts nothing; `forward` and `mqtt` run what is validated here.

use std::path::Path;
use std::time::Duration;

use super::reader::{Field, Problems, Table};
use super::validate::int_in;
use super::values;
use super::{ForwardAuth, ForwardConfig, MqttConfig};

const FORWARD_KEYS: &[&str] = &[
    "url",
    "token",
    "username",
    "password_file",
    "batch_size",
    "interval",
    "ca_file",
];

const MQTT_KEYS: &[&str] = &[
    "host",
    "port",
    "username",
    "password_file",
    "topic_prefix",
    "discovery_prefix",
    "interval",
    "tls",
    "ca_file",
];

pub(super) fn forward(
    root: &Table<'_, '_>,
    base_dir: &Path,
    problems: &mut Problems,
) -> Option<ForwardConfig> {
    let t = root.table(problems, "forward")?;
    t.check_keys(problems, FORWARD_KEYS);
    let url = match t.string(problems, "url") {
        Some(f) => match parse_http_url(f.value) {
            Ok(parts) => Some((f.value.to_string(), parts)),
            Err(message) => {
                problems.bad(&f, message);
                None
            }
        },
        None => {
            if !t.has("url") {
                t.missing(
                    problems,
                    "url",
                    "write where events go, such as url = \"http://influx:8086/write?db=water\"",
                );
            }
            None
        }
    };
    let token = t.string(problems, "token");
    let (username, password) = credentials(&t, base_dir, problems, "the InfluxDB 1.x user");
    let auth = match (token, username, password) {
        (Some(f), Some(_), _) => {
            problems.bad(&f, "and `username` are both set; use `token` for InfluxDB 2.x or VictoriaMetrics, or `username`/`password_file` for InfluxDB 1.x, not both");
            ForwardAuth::None
        }
        (Some(f), None, _) if f.value.trim().is_empty() || f.value.contains(char::is_control) => {
            problems.bad(&f, "is empty or holds a line break; paste the API token on one line, or remove the key");
            ForwardAuth::None
        }
        (Some(f), None, _) => ForwardAuth::Token(f.value.trim().to_string()),
        (None, Some(username), Some(password)) => ForwardAuth::Basic { username, password },
        _ => ForwardAuth::None,
    };
    let batch_size = int_in(&t, problems, "batch_size", 1..=100_000, 5000, |n| {
        format!("{n} is out of range; use 1 to 100000 events per request (5000 suits InfluxDB)")
    }) as usize;
    let interval = duration_in(&t, problems, "interval", 1, 3600, Duration::from_secs(5));
    let ca_file = super::validate_smtp::ca_file(&t, base_dir, problems);
    let (url, (tls, host, port, path_and_query)) = url?;
    Some(ForwardConfig {
        url,
        tls,
        host,
        port,
        ca_file,
        path_and_query,
        auth,
        batch_size,
        interval,
    })
}

pub(super) fn mqtt(
    root: &Table<'_, '_>,
    base_dir: &Path,
    problems: &mut Problems,
) -> Option<MqttConfig> {
    let t = root.table(problems, "mqtt")?;
    t.check_keys(problems, MQTT_KEYS);
    let host = match t.string(problems, "host") {
        Some(f) if f.value.trim().is_empty() || f.value.contains("://") => {
            problems.bad(&f, format!("\"{}\" is not a host name; write only the broker's name or address, such as host = \"192.168.1.10\"", f.value));
            None
        }
        Some(f) => Some(f.value.trim().to_string()),
        None => {
            if !t.has("host") {
                t.missing(
                    problems,
                    "host",
                    "name the MQTT broker, such as host = \"192.168.1.10\"",
                );
            }
            None
        }
    };
    let tls = t.boolean(problems, "tls").is_some_and(|f| f.value);
    let (default_port, usual) = if tls {
        (8883, "8883 for MQTT over TLS")
    } else {
        (1883, "1883 for MQTT")
    };
    let port = int_in(&t, problems, "port", 1..=65535, default_port, |n| {
        format!("{n} is not a port number; use 1 to 65535, usually {usual}")
    }) as u16;
    let ca_file = super::validate_smtp::ca_file(&t, base_dir, problems);
    let (username, password) = credentials(&t, base_dir, problems, "the MQTT user");
    let topic_prefix = topic(&t, problems, "topic_prefix", "watermeter");
    let discovery_prefix = topic(&t, problems, "discovery_prefix", "homeassistant");
    let interval = duration_in(&t, problems, "interval", 1, 3600, Duration::from_secs(10));
    Some(MqttConfig {
        host: host?,
        port,
        username,
        password,
        topic_prefix,
        discovery_prefix,
        interval,
        tls,
        ca_file,
    })
}

/// `http(s)://host[:port]/path?query` → (https?, host, port, path and query). Pure.
pub(super) fn parse_http_url(text: &str) -> Result<(bool, String, u16, String), String> {
    let example = "write it like \"http://influx:8086/write?db=water\" or \"https://influx.example.net/write?db=water\"";
    let (tls, rest) = if let Some(rest) = text.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = text.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(format!(
            "\"{text}\" is not an http:// or https:// address; {example}"
        ));
    };
    if text.contains(char::is_whitespace) || text.contains('#') {
        return Err(format!("\"{text}\" contains spaces or a `#`; {example}"));
    }
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.contains('@') {
        return Err(format!(
            "\"{text}\" has credentials in it; put them in username/password_file or token instead"
        ));
    }
    let default_port = if tls { 443 } else { 80 };
    let (host, port) = split_host_port(authority, default_port)
        .ok_or_else(|| format!("\"{text}\" has no valid host and port; {example}"))?;
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    Ok((tls, host, port, path))
}

fn split_host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|&p| p > 0)?,
        None => default_port,
    };
    (!host.is_empty()).then(|| (host.to_string(), port))
}

/// An MQTT topic prefix: no wildcards, no leading or trailing `/`.
fn topic(t: &Table<'_, '_>, problems: &mut Problems, key: &str, default: &str) -> String {
    let Some(f) = t.string(problems, key) else {
        return default.to_string();
    };
    let v = f.value;
    if v.is_empty() || v.contains(['+', '#', ' ']) || v.starts_with('/') || v.ends_with('/') {
        problems.bad(&f, format!("\"{v}\" is not a usable topic prefix; use letters, digits, `_`, `-` and inner `/` only, such as \"{default}\""));
        return default.to_string();
    }
    v.to_string()
}

fn duration_in(
    t: &Table<'_, '_>,
    problems: &mut Problems,
    key: &str,
    min_s: u64,
    max_s: u64,
    default: Duration,
) -> Duration {
    let Some(f) = t.string(problems, key) else {
        return default;
    };
    match values::parse_duration(f.value) {
        Ok(d) if (min_s..=max_s).contains(&d.as_secs()) => d,
        Ok(_) => {
            problems.bad(
                &f,
                format!(
                    "\"{}\" is out of range; use {} to {}, such as \"{}\"",
                    f.value,
                    values::format_duration(Duration::from_secs(min_s)),
                    values::format_duration(Duration::from_secs(max_s)),
                    values::format_duration(default)
                ),
            );
            default
        }
        Err(message) => {
            problems.bad(&f, message);
            default
        }
    }
}

/// `username` and `password_file` come together; the password is read now.
fn credentials(
    t: &Table<'_, '_>,
    base_dir: &Path,
    problems: &mut Problems,
    who: &str,
) -> (Option<String>, Option<String>) {
    let username = t.string(problems, "username");
    let password_file = t.string(problems, "password_file");
    match (&username, &password_file) {
        (Some(f), None) if !t.has("password_file") => problems.bad(
            f,
            format!("is set but `password_file` is not; add password_file = \"/etc/watermeter/{}-password\" naming a file that holds the password of {who}", table_name(t)),
        ),
        (None, Some(f)) if !t.has("username") => problems.bad(
            f,
            format!("is set but `username` is not; add the login name of {who} as username, or remove password_file"),
        ),
        _ => {}
    }
    let password = password_file.and_then(|f| read_secret(&f, base_dir, problems));
    let username = username.map(|f| f.value.to_string());
    match (username, password) {
        (Some(u), Some(p)) => (Some(u), Some(p)),
        _ => (None, None),
    }
}

fn table_name(t: &Table<'_, '_>) -> String {
    t.path.trim_matches(['[', ']']).to_string()
}

fn read_secret(f: &Field<&str>, base_dir: &Path, problems: &mut Problems) -> Option<String> {
    let path = base_dir.join(f.value);
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim_end_matches(['\r', '\n']).is_empty() => {
            problems.bad(
                f,
                format!("{} is empty; write the password into it", path.display()),
            );
            None
        }
        Ok(text) => Some(text.trim_end_matches(['\r', '\n']).to_string()),
        Err(err) => {
            problems.bad(f, format!("cannot read {} ({err}); create it holding only the password (readable by the watermeter user) or fix the path", path.display()));
            None
        }
    }
}
