//! The document as a whole: TOML syntax, top-level keys, `[store]`, `[http]`,
//! `[udp]`, and the rules that span tables. Meters and alerts/SMTP have their
//! own files. Collects every problem; returns a `Config` only when there are none.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use toml::de::DeTable;

use super::reader::{Problems, Table};
use super::{
    validate_alert, validate_auth, validate_forward, validate_meter, validate_notify,
    validate_smtp, validate_tariff, values,
};
use super::{Config, ConfigError, HttpConfig, StoreConfig, UdpConfig};
use super::{
    DEFAULT_BACKUPS, DEFAULT_CACHE_MB, DEFAULT_DATA_DIR, DEFAULT_FLUSH_MS, DEFAULT_MAX_BODY_MB,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_REQUEST_TIMEOUT_S,
};

const TOP_KEYS: &[&str] = &[
    "data_dir", "timezone", "store", "http", "udp", "meter", "alert", "smtp", "forward", "mqtt",
    "notify", "tariff", "report",
];

pub(super) fn document(
    text: &str,
    path: &Path,
    check_alert_kind: &dyn Fn(&super::Settings) -> Vec<super::Problem>,
) -> Result<Config, ConfigError> {
    let mut problems = Problems::new(text);
    let (doc, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        // A broken document would only produce confusing follow-up problems.
        for err in &syntax_errors {
            problems.add(err.span().as_ref(), "", syntax_message(err));
        }
        return Err(ConfigError {
            path: path.to_path_buf(),
            problems: problems.into_sorted(),
        });
    }
    let root = Table::root(doc.get_ref());
    root.check_keys(&mut problems, TOP_KEYS);
    let base_dir = path.parent().unwrap_or(Path::new("."));

    let data_dir = match root.string(&mut problems, "data_dir") {
        Some(f) if f.value.trim().is_empty() => {
            problems.bad(&f, "must not be empty; name the directory for the history, such as \"/var/lib/watermeter\"");
            PathBuf::from(DEFAULT_DATA_DIR)
        }
        Some(f) => PathBuf::from(f.value),
        None => PathBuf::from(DEFAULT_DATA_DIR),
    };
    let timezone = parsed(&root, &mut problems, "timezone", values::parse_timezone)
        .unwrap_or_else(values::system_timezone);
    let store = store(&root, &mut problems);
    let http = http(&root, base_dir, &mut problems);
    let udp = udp(&root, &mut problems);
    let meters = validate_meter::meters(&root, &mut problems);
    let smtp = validate_smtp::smtp(&root, base_dir, &mut problems);
    let notify = validate_notify::notify(&root, base_dir, smtp.is_some(), &mut problems);
    let tariff = validate_tariff::tariff(&root, &mut problems);
    let mut channels: Vec<&str> = notify.iter().map(|n| n.name.as_str()).collect();
    if smtp.is_some() {
        channels.push("email");
    }
    let alerts = validate_alert::alerts(
        &root,
        &meters,
        &channels,
        tariff.is_some(),
        check_alert_kind,
        &mut problems,
    );
    let report = report(&root, &notify, smtp.is_some(), &mut problems);
    let forward = validate_forward::forward(&root, base_dir, &mut problems);
    let mqtt = validate_forward::mqtt(&root, base_dir, &mut problems);
    if mqtt.is_none() && !root.has("mqtt") {
        if let Some(m) = meters.iter().find(|m| m.mqtt_in.is_some()) {
            problems.add(
                None,
                "mqtt",
                format!("meter \"{}\" takes an MQTT topic ([meter.mqtt]) but [mqtt] is missing; add an [mqtt] table naming the broker", m.id),
            );
        }
    }

    if problems.is_empty() {
        Ok(Config {
            data_dir,
            timezone,
            store,
            http,
            udp,
            meters,
            alerts,
            smtp,
            forward,
            mqtt,
            notify,
            tariff,
            report,
        })
    } else {
        Err(ConfigError {
            path: path.to_path_buf(),
            problems: problems.into_sorted(),
        })
    }
}

/// One `[[alert]]` table in `text` (as the alerts page writes it), checked as
/// `check-config` checks the file's alerts, against `config`'s meters, channels
/// and tariff. `taken` are the names other alerts already use.
pub(super) fn alert_table(
    text: &str,
    config: &Config,
    taken: &[&str],
    check_alert_kind: &dyn Fn(&super::Settings) -> Vec<super::Problem>,
) -> Result<super::AlertConfig, Vec<super::Problem>> {
    let mut problems = Problems::new(text);
    let (doc, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        for err in &syntax_errors {
            problems.add(err.span().as_ref(), "", syntax_message(err));
        }
        return Err(problems.into_sorted());
    }
    let root = Table::root(doc.get_ref());
    root.check_keys(&mut problems, &["alert"]);
    let mut channels: Vec<&str> = config.notify.iter().map(|n| n.name.as_str()).collect();
    if config.smtp.is_some() {
        channels.push("email");
    }
    if channels.is_empty() {
        problems.add(
            None,
            "smtp",
            "alerts are configured but no channel reaches you: add an [smtp] table or a [[notify]] channel (ntfy, webhook) to the config file",
        );
    }
    let mut alerts = validate_alert::alerts(
        &root,
        &config.meters,
        &channels,
        config.tariff.is_some(),
        check_alert_kind,
        &mut problems,
    );
    if let Some(a) = alerts.first().filter(|a| taken.contains(&a.name.as_str())) {
        let message = format!(
            "another alert is already named \"{}\"; give every alert its own name (names are unique across the config file and the alerts page)",
            a.name
        );
        problems.add(None, "alert[0].name", message);
    }
    if alerts.len() > 1 {
        problems.add(
            None,
            "alert",
            "one alert at a time: remove the second [[alert]] line and what follows it",
        );
    }
    match alerts.pop() {
        Some(alert) if problems.is_empty() => Ok(alert),
        Some(_) => Err(problems.into_sorted()),
        None if problems.is_empty() => Err(vec![super::Problem {
            line: None,
            key: "alert".into(),
            message: "there is no alert to save; fill in the form".into(),
        }]),
        None => Err(problems.into_sorted()),
    }
}

/// `[report]`: `weekly` and `monthly`, true or false; either needs an email channel.
fn report(
    root: &Table<'_, '_>,
    notify: &[super::NotifyConfig],
    smtp: bool,
    problems: &mut Problems,
) -> super::ReportConfig {
    let Some(t) = root.table(problems, "report") else {
        return super::ReportConfig::default();
    };
    t.check_keys(problems, &["weekly", "monthly"]);
    let flag = |problems: &mut Problems, key| t.boolean(problems, key).is_some_and(|f| f.value);
    let config = super::ReportConfig {
        weekly: flag(problems, "weekly"),
        monthly: flag(problems, "monthly"),
    };
    let email = smtp || notify.iter().any(|n| n.kind == super::NotifyKind::Email);
    if (config.weekly || config.monthly) && !email {
        problems.add(
            t.span.as_ref(),
            "report",
            "report mails go out by email, and no email channel is configured: add an [smtp] table",
        );
    }
    config
}

fn syntax_message(err: &toml::de::Error) -> String {
    let message = err
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    format!("this is not valid TOML ({message}); fix the syntax on this line")
}

fn store(root: &Table<'_, '_>, problems: &mut Problems) -> StoreConfig {
    let mut cache_mb = DEFAULT_CACHE_MB as i64;
    let mut flush_ms = DEFAULT_FLUSH_MS as i64;
    let mut backups = i64::from(DEFAULT_BACKUPS);
    if let Some(t) = root.table(problems, "store") {
        t.check_keys(problems, &["cache_mb", "flush_ms", "backups"]);
        backups = int_in(&t, problems, "backups", 0..=365, backups, |n| {
            format!("{n} is out of range; keep 0 to 365 daily backups (7 is the default; 0 turns recovery off)")
        });
        cache_mb = int_in(&t, problems, "cache_mb", 1..=1024, cache_mb, |n| {
            format!("{n} is out of range; use a cache size from 1 to 1024 megabytes (4 is plenty on a Pi)")
        });
        flush_ms = int_in(&t, problems, "flush_ms", 1..=1000, flush_ms, |n| {
            format!("{n} is out of range; use 1 to 1000 milliseconds, the longest an event may wait before it is on disk")
        });
    }
    StoreConfig {
        cache_bytes: cache_mb as u64 * 1024 * 1024,
        flush_interval: Duration::from_millis(flush_ms as u64),
        backups: backups as u32,
    }
}

fn http(root: &Table<'_, '_>, base_dir: &Path, problems: &mut Problems) -> HttpConfig {
    let mut config = HttpConfig::default();
    let Some(t) = root.table(problems, "http") else {
        return config;
    };
    t.check_keys(
        problems,
        &[
            "listen",
            "allow_unauthenticated_lan",
            "auth",
            "max_body_mb",
            "max_connections",
            "request_timeout_s",
            "tls",
            "public_url",
        ],
    );
    config.public_url = t.string(problems, "public_url").and_then(|f| {
        if values::is_http_url(f.value) {
            Some(f.value.trim_end_matches('/').to_string())
        } else {
            let message = format!(
                "\"{}\" is not a web address; write the dashboard's address as the phone \
                 reaches it, like \"http://watermeter.local:8080\"",
                f.value
            );
            problems.bad(&f, message);
            None
        }
    });
    let max_mb = int_in(
        &t,
        problems,
        "max_body_mb",
        1..=1024,
        DEFAULT_MAX_BODY_MB as i64,
        |n| {
            format!("{n} is out of range; use 1 to 1024 megabytes (the default 32 takes any InfluxDB client's batches)")
        },
    );
    config.max_body_bytes = max_mb as usize * 1024 * 1024;
    let max_conn = DEFAULT_MAX_CONNECTIONS as i64;
    let max_conn = int_in(&t, problems, "max_connections", 1..=65_536, max_conn, |n| {
        format!("{n} is out of range; use 1 to 65536 connections (the default 128 is plenty for a house)")
    });
    config.max_connections = max_conn as usize;
    let timeout = DEFAULT_REQUEST_TIMEOUT_S as i64;
    let timeout = int_in(&t, problems, "request_timeout_s", 1..=3600, timeout, |n| {
        format!("{n} is out of range; use 1 to 3600 seconds (default 60)")
    });
    config.request_timeout = Duration::from_secs(timeout as u64);
    let listen = t.string(problems, "listen");
    if let Some(f) = &listen {
        match parse_listen(f.value, "8080") {
            Ok(addr) => config.listen = addr,
            Err(message) => problems.bad(f, message),
        }
    }
    if let Some(f) = t.boolean(problems, "allow_unauthenticated_lan") {
        config.allow_unauthenticated_lan = f.value;
    }
    config.auth = t
        .table(problems, "auth")
        .and_then(|a| validate_auth::auth(&a, base_dir, problems));
    config.tls = t
        .table(problems, "tls")
        .and_then(|a| validate_auth::tls(&a, base_dir, problems));
    let open_to_lan = !config.listen.ip().is_loopback() && !t.has("auth");
    if let (Some(f), true, false) = (&listen, open_to_lan, config.allow_unauthenticated_lan) {
        problems.bad(
            f,
            format!(
                "{} is reachable from the network but there is no [http.auth]; add [http.auth] with a \
                 password hash from `watermeter hash-password`, or set allow_unauthenticated_lan = true \
                 to serve the dashboard without a login",
                config.listen
            ),
        );
    }
    config
}

fn udp(root: &Table<'_, '_>, problems: &mut Problems) -> Option<UdpConfig> {
    let t = root.table(problems, "udp")?;
    t.check_keys(problems, &["listen", "allow", "precision"]);
    let mut config = UdpConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 8089)),
        allow: Vec::new(),
        precision: Default::default(),
    };
    if let Some(f) = t.string(problems, "listen") {
        match parse_listen(f.value, "8089") {
            Ok(addr) => config.listen = addr,
            Err(message) => problems.bad(&f, message),
        }
    }
    if let Some(list) = t.strings(problems, "allow") {
        for item in &list.value {
            match values::parse_ipnet(item.value) {
                Ok(net) => config.allow.push(net),
                Err(message) => problems.bad(item, message),
            }
        }
    }
    if let Some(precision) = parsed(&t, problems, "precision", values::parse_precision) {
        config.precision = precision;
    }
    Some(config)
}

fn parse_listen(text: &str, port: &str) -> Result<SocketAddr, String> {
    SocketAddr::from_str(text.trim()).map_err(|_| {
        format!(
            "\"{text}\" is not an IP address with a port; write it like \"0.0.0.0:{port}\" (all \
             interfaces) or \"127.0.0.1:{port}\" (this machine only); host names are not accepted"
        )
    })
}

/// An optional integer within `range`; `default` when absent or bad.
pub(super) fn int_in(
    t: &Table<'_, '_>,
    problems: &mut Problems,
    key: &str,
    range: RangeInclusive<i64>,
    default: i64,
    message: impl Fn(i64) -> String,
) -> i64 {
    match t.integer(problems, key) {
        Some(f) if range.contains(&f.value) => f.value,
        Some(f) => {
            problems.bad(&f, message(f.value));
            default
        }
        None => default,
    }
}

/// An optional string parsed by `parse`, whose error becomes the problem.
pub(super) fn parsed<T>(
    t: &Table<'_, '_>,
    problems: &mut Problems,
    key: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Option<T> {
    let f = t.string(problems, key)?;
    match parse(f.value) {
        Ok(value) => Some(value),
        Err(message) => {
            problems.bad(&f, message);
            None
        }
    }
}
