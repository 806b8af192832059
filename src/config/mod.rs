//! Configuration: TOML file → validated [`Config`].
//!
//! Loading happens in two steps (the ripgrep way): the file is parsed into a
//! spanned TOML document, then every table is read and validated into the types
//! below, collecting *every* problem (unknown keys, wrong types, bad values) with
//! its line number and key path instead of stopping at the first.
//! This module does no IO beyond reading the config file and the files it names
//! (`password_file`, `ca_file`, and the system time zone for defaults), starts
//! nothing, and never prints a secret: `Debug` hides them.

mod error;
mod reader;
pub mod settings;
mod validate;
mod validate_alert;
mod validate_auth;
mod validate_forward;
mod validate_meter;
mod validate_notify;
mod validate_smtp;
mod validate_tariff;
mod values;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_alert;
#[cfg(test)]
mod tests_auth;
#[cfg(test)]
mod tests_forward;
#[cfg(test)]
mod tests_meter;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;

use crate::line_protocol::Precision;

pub use error::{ConfigError, Problem};
pub use settings::{RawValue, Settings};
pub use validate_alert::COMMON_KEYS as ALERT_COMMON_KEYS;

/// Reads and validates the config file at `path` (and the files it names).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path),
        Err(err) => Err(ConfigError::single(
            path,
            format!("cannot read the config file ({err}); check the path and its permissions"),
        )),
    }
}

/// Validates config `text`; `path` names the file in messages, and relative
/// `password_file`/`ca_file` paths are resolved against its directory.
///
/// An alert's `kind` and its own keys are kept unchecked in [`AlertConfig::settings`]:
/// use [`parse_with`] with the kinds' check (`alert::kinds::check`) to check them too.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    validate::document(text, path, &|_| Vec::new())
}

/// [`parse`], with `check_alert_kind` run on every `[[alert]]`'s kept settings; its
/// problems are reported with all others, in line order.
pub fn parse_with(
    text: &str,
    path: &Path,
    check_alert_kind: &dyn Fn(&Settings) -> Vec<Problem>,
) -> Result<Config, ConfigError> {
    validate::document(text, path, check_alert_kind)
}

/// One `[[alert]]` table (the alerts page's form as TOML) checked against
/// `config` as [`parse_with`] checks the file's alerts; `taken` are the names in
/// use. Problems name the keys as `alert[0].window`.
pub fn parse_alert(
    text: &str,
    config: &Config,
    taken: &[&str],
    check_alert_kind: &dyn Fn(&Settings) -> Vec<Problem>,
) -> Result<AlertConfig, Vec<Problem>> {
    validate::alert_table(text, config, taken, check_alert_kind)
}

/// [`load`] with [`parse_with`].
pub fn load_with(
    path: &Path,
    check_alert_kind: &dyn Fn(&Settings) -> Vec<Problem>,
) -> Result<Config, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_with(&text, path, check_alert_kind),
        Err(err) => Err(ConfigError::single(
            path,
            format!("cannot read the config file ({err}); check the path and its permissions"),
        )),
    }
}

/// `[http]` when the table or a key is absent: this machine only, no login,
/// the default limits.
impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            auth: None,
            allow_unauthenticated_lan: false,
            max_body_bytes: DEFAULT_MAX_BODY_MB * 1024 * 1024,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            request_timeout: Duration::from_secs(DEFAULT_REQUEST_TIMEOUT_S),
            tls: None,
            public_url: None,
        }
    }
}

/// The configuration of `watermeter serve` without `--config`: everything on
/// 127.0.0.1, data in `./watermeter-data`, one meter `main` fed by
/// `water,meter=main` points, the system time zone, no alerts, no mail.
pub fn builtin_defaults() -> Config {
    Config {
        data_dir: PathBuf::from(DEFAULT_DATA_DIR),
        timezone: values::system_timezone(),
        store: StoreConfig {
            cache_bytes: DEFAULT_CACHE_MB * 1024 * 1024,
            flush_interval: Duration::from_millis(DEFAULT_FLUSH_MS),
            backups: DEFAULT_BACKUPS,
        },
        http: HttpConfig::default(),
        udp: Some(UdpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8089)),
            allow: Vec::new(),
            precision: Precision::Nanoseconds,
        }),
        meters: vec![MeterConfig {
            name: "House".into(),
            ..MeterConfig::with_id("main")
        }],
        alerts: Vec::new(),
        smtp: None,
        forward: None,
        mqtt: None,
        notify: Vec::new(),
        tariff: None,
        report: ReportConfig::default(),
    }
}

const DEFAULT_DATA_DIR: &str = "./watermeter-data";
const DEFAULT_CACHE_MB: u64 = 4;
const DEFAULT_FLUSH_MS: u64 = 500;
const DEFAULT_BACKUPS: u32 = 7;
/// InfluxDB's 5,000-line batches are ~300 KB; Telegraf may send far more per flush.
const DEFAULT_MAX_BODY_MB: usize = 32;
const DEFAULT_MAX_CONNECTIONS: usize = 128;
const DEFAULT_REQUEST_TIMEOUT_S: u64 = 60;

/// The validated configuration the rest of the program runs on.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub timezone: Tz,
    pub store: StoreConfig,
    pub http: HttpConfig,
    /// `None` when the `[udp]` table is absent from a config file.
    pub udp: Option<UdpConfig>,
    pub meters: Vec<MeterConfig>,
    pub alerts: Vec<AlertConfig>,
    pub smtp: Option<SmtpConfig>,
    /// `[forward]`: every stored event also goes to an external InfluxDB/VictoriaMetrics.
    pub forward: Option<ForwardConfig>,
    /// `[mqtt]`: meter states and Home Assistant discovery to a broker.
    pub mqtt: Option<MqttConfig>,
    /// `[[notify]]`: alert channels besides `[smtp]` (which is the channel `email`).
    pub notify: Vec<NotifyConfig>,
    /// `[tariff]`: prices, for the cost beside liters.
    pub tariff: Option<TariffConfig>,
    /// `[report]`: the weekly and monthly report mails.
    pub report: ReportConfig,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// sled page cache in bytes (`[store] cache_mb`, default 4).
    pub cache_bytes: u64,
    /// Upper bound on how long a UDP/GPIO event may wait before it is on disk
    /// (`[store] flush_ms`, default 500, at most 1000).
    pub flush_interval: Duration,
    /// `[store] backups`: accepted so that 0.1 configs still load, and without
    /// effect since the journal keeps every event (see docs/reliability.md).
    pub backups: u32,
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    pub auth: Option<AuthConfig>,
    /// `allow_unauthenticated_lan = true`: serve without auth on a non-loopback address.
    pub allow_unauthenticated_lan: bool,
    /// Largest request body (`[http] max_body_mb`, default 32): larger ones get 413.
    pub max_body_bytes: usize,
    /// Open connections served at once (`max_connections`, default 128); one more gets 503.
    pub max_connections: usize,
    /// Longest a request may take (`request_timeout_s`, default 60); then 408.
    /// Server-sent event streams are exempt.
    pub request_timeout: Duration,
    /// `[http.tls]`: serve the dashboard over HTTPS with the owner's certificate.
    pub tls: Option<TlsConfig>,
    /// `public_url`: the dashboard's address for the links in every channel's
    /// messages (mail, ntfy, webhook), without a trailing slash.
    pub public_url: Option<String>,
}

impl Config {
    /// The dashboard's address for links: `[http] public_url`, else its alias
    /// `[smtp] dashboard_url`.
    pub fn public_url(&self) -> Option<&str> {
        self.http
            .public_url
            .as_deref()
            .or_else(|| self.smtp.as_ref().and_then(|s| s.dashboard_url.as_deref()))
    }
}

#[derive(Clone)]
pub struct AuthConfig {
    pub username: String,
    /// argon2id PHC string from `watermeter hash-password`.
    pub password_hash: String,
    /// A login lasts this many days after the last request (`session_days`, default 30).
    pub session_days: u32,
    /// The token machines send instead of a login (`api_token_file`): writers on
    /// `/write` and `/api/v2/write`, scrapers on `/metrics` and `/api/v1`.
    pub api_token: Option<String>,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("username", &self.username)
            .field("password_hash", &"<hidden>")
            .field("session_days", &self.session_days)
            .field("api_token", &self.api_token.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

/// `[http.tls]`: PEM files from the owner's PKI, checked when the config loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// The server certificate, then any intermediates.
    pub cert_file: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

#[derive(Debug, Clone)]
pub struct UdpConfig {
    pub listen: SocketAddr,
    /// Source allowlist (CIDRs); empty = everyone.
    pub allow: Vec<IpNet>,
    /// Precision of timestamps in datagrams (`precision`, default ns).
    pub precision: Precision,
}

/// An IPv4/IPv6 network in CIDR form, e.g. `192.168.1.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: std::net::IpAddr,
    pub prefix: u8,
}

#[derive(Debug, Clone)]
pub struct MeterConfig {
    /// `[a-z0-9_-]+`, unique; used in URLs and tags.
    pub id: String,
    pub name: String,
    pub liters_per_pulse: f64,
    pub initial_reading_m3: f64,
    /// Unix milliseconds of `reading_set_at`; `None` = the reading is at the start of history.
    pub reading_set_at_ms: Option<i64>,
    pub gpio: Option<GpioConfig>,
    pub line_protocol: LineProtocolMatch,
    /// Physical plausibility (default 100 L/min, far above a household pipe's
    /// maximum): more water than this in the time between two values is a misread.
    pub max_flow_l_per_min: f64,
    /// `[meter.wmbus] id`: the wireless M-Bus meter id wmbusmeters reports (`"id"`).
    pub wmbus_id: Option<String>,
    /// `[meter.mqtt]`: a topic on the `[mqtt]` broker that carries this meter's water.
    pub mqtt_in: Option<MqttIn>,
    /// `[[meter.exchange]]`: "a new meter showing `m3` from `at_ms` on", oldest first.
    pub exchanges: Vec<Exchange>,
    /// `persons`: who lives on this meter, for liters per person per day.
    pub persons: Option<u32>,
}

impl MeterConfig {
    /// A meter with id `id` and every default: named after its id, 1 L per pulse,
    /// `water,meter=<id>` points, no GPIO, no other source.
    pub fn with_id(id: &str) -> MeterConfig {
        MeterConfig {
            id: id.into(),
            name: id.into(),
            liters_per_pulse: 1.0,
            initial_reading_m3: 0.0,
            reading_set_at_ms: None,
            gpio: None,
            line_protocol: LineProtocolMatch::default_for(id),
            max_flow_l_per_min: validate_meter::DEFAULT_MAX_FLOW_L_PER_MIN,
            wmbus_id: None,
            mqtt_in: None,
            exchanges: Vec::new(),
            persons: None,
        }
    }

    /// Whether its reading comes from the meter's own register (a camera reader, a
    /// radio meter, an MQTT reading), which the owner does not set by hand.
    pub fn reads_its_register(&self) -> bool {
        matches!(self.line_protocol.field, FieldSelector::Reading { .. })
            || self.wmbus_id.is_some()
            || self
                .mqtt_in
                .as_ref()
                .is_some_and(|i| i.form == MqttForm::Reading)
    }
}

/// A meter exchange: the new meter showed `m3` at `at_ms`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exchange {
    pub at_ms: i64,
    pub m3: f64,
}

/// `[meter.mqtt]`: which topic, where in the payload, and what the number means.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttIn {
    /// An exact topic (no wildcards), such as `wmbusmeters/MyTapWater`.
    pub topic: String,
    /// The JSON field holding the number; `None`: the payload is the number.
    pub json_field: Option<String>,
    pub form: MqttForm,
    /// Liters per unit of the number: 1000 for `unit = "m3"` (default), 1 for `"l"`.
    pub liters_per_unit: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttForm {
    /// The meter's own absolute register.
    Reading,
    /// A total that restarts from 0 when its sender reboots.
    Counter,
    /// Liters since the last message.
    Liters,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pull {
    Up,
    Down,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    Falling,
    Rising,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GpioConfig {
    /// BCM pin number.
    pub pin: u8,
    pub pull: Pull,
    /// The edge that starts a pulse (contact closes). Default falling (pull-up wiring).
    pub edge: Edge,
    /// Kernel debounce period (default 30 ms).
    pub debounce_ms: u32,
    /// Pure filter: the contact must stay closed at least this long (default 20 ms).
    pub min_pulse_ms: u32,
    /// Pure filter: and then open at least this long (default 20 ms).
    pub min_gap_ms: u32,
}

/// Which line-protocol points belong to a meter and which field carries the water.
#[derive(Debug, Clone, PartialEq)]
pub struct LineProtocolMatch {
    pub measurement: String,
    /// Every one of these tags must be present with this value.
    pub tags: Vec<(String, String)>,
    pub field: FieldSelector,
}

impl LineProtocolMatch {
    /// What a meter without a `[meter.line_protocol]` block takes:
    /// `water,meter=<id>` points, liters in the field `liters`. Not `value`: camera
    /// readers send the meter's absolute register in it, which read as liters per
    /// point would count the whole register again with every point.
    pub fn default_for(meter_id: &str) -> Self {
        LineProtocolMatch {
            measurement: "water".into(),
            tags: vec![("meter".into(), meter_id.into())],
            field: FieldSelector::Liters(vec!["liters".into()]),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum FieldSelector {
    /// Each point carries liters in the first of these fields that is present
    /// (default `["liters", "value"]`).
    Liters(Vec<String>),
    /// The meter's own absolute register (`reading_field`), as liters per unit
    /// written (1000 for `reading_unit = "m3"`, 1 for `"l"`).
    Reading { field: String, liters_per_unit: f64 },
    /// A cumulative counter in liters; its differences are the liters.
    Counter(String),
}

/// One `[[alert]]` as config knows it: the keys every alert has, and the rest
/// (`kind` and the kind's own keys) as written, for `alert::kinds` to read.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertConfig {
    /// Unique; the mail subject and the key of the alert's state.
    pub name: String,
    pub meter: String,
    /// Reminder interval while firing (default 4 h).
    pub repeat: Duration,
    /// The channels it notifies (`notify = ["phone"]`); empty: all of them.
    pub notify: Vec<String>,
    pub settings: Settings,
}

/// `[report]`: which report mails go out (07:00 local, Monday / the 1st).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportConfig {
    pub weekly: bool,
    pub monthly: bool,
}

/// `[tariff]`: what a cubic meter costs (`tariff.rs` applies it).
#[derive(Debug, Clone, PartialEq)]
pub struct TariffConfig {
    /// ISO 4217 code, for display only.
    pub currency: String,
    pub price_per_m3: f64,
    pub sewage_per_m3: f64,
    pub fixed_per_month: f64,
    /// Marginal tiers of the water price; they replace `price_per_m3`.
    pub tiers: Vec<Tier>,
    pub tiers_period: TiersPeriod,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tier {
    /// Up to this volume in the period (`None`: the rest).
    pub up_to_m3: Option<f64>,
    pub price_per_m3: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TiersPeriod {
    Year,
    Month,
}

/// One `[[notify]]` channel.
#[derive(Clone, PartialEq)]
pub struct NotifyConfig {
    pub name: String,
    pub kind: NotifyKind,
}

#[derive(Clone, PartialEq)]
pub enum NotifyKind {
    /// Through `[smtp]`.
    Email,
    /// POST to an ntfy topic URL; `token` from `token_file`, priority 1 to 5.
    Ntfy {
        url: String,
        token: Option<String>,
        priority: u8,
    },
    /// POST of the JSON body in CONTRACT.md; `token` as a Bearer token.
    Webhook { url: String, token: Option<String> },
}

impl std::fmt::Debug for NotifyConfig {
    // By hand: the tokens stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            NotifyKind::Email => "email".to_string(),
            NotifyKind::Ntfy { url, priority, .. } => format!("ntfy {url} priority {priority}"),
            NotifyKind::Webhook { url, .. } => format!("webhook {url}"),
        };
        write!(f, "NotifyConfig({} = {kind})", self.name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    StartTls,
    Tls,
    None,
}

#[derive(Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    /// Read from `password_file` at load time.
    pub password: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    /// Extra CA certificate(s) (PEM) to trust, for an internal PKI (`ca_file`).
    pub ca_file: Option<PathBuf>,
    /// Base URL used in mail links (`dashboard_url`), e.g. `http://pi:8080`.
    pub dashboard_url: Option<String>,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("from", &self.from)
            .field("to", &self.to)
            .field("ca_file", &self.ca_file)
            .field("dashboard_url", &self.dashboard_url)
            .finish()
    }
}

/// `[forward]`: where events go as line protocol, over plain HTTP.
#[derive(Clone)]
pub struct ForwardConfig {
    /// The URL as written, for messages (never holds a secret: credentials are separate).
    pub url: String,
    /// `https://`: TLS to the target, trusting the system's CAs and `ca_file`.
    pub tls: bool,
    /// Host name or address of the target, and its port (default 80, or 443 for https).
    pub host: String,
    pub port: u16,
    /// Extra CA certificate(s) (PEM) to trust for an https target (`ca_file`).
    pub ca_file: Option<PathBuf>,
    /// Path and query to POST to, e.g. `/write?db=water`; the sender adds `precision=ms`.
    pub path_and_query: String,
    pub auth: ForwardAuth,
    /// Events per request (`batch_size`, default 5000).
    pub batch_size: usize,
    /// How often the queue is drained when the target is up (`interval`, default 5 s).
    pub interval: Duration,
}

#[derive(Clone, PartialEq)]
pub enum ForwardAuth {
    None,
    /// InfluxDB 2.x / VictoriaMetrics: `Authorization: Token …`.
    Token(String),
    /// InfluxDB 1.x user and password, sent as HTTP Basic auth.
    Basic {
        username: String,
        password: String,
    },
}

impl std::fmt::Debug for ForwardAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ForwardAuth::None => f.write_str("None"),
            ForwardAuth::Token(_) => f.write_str("Token(<hidden>)"),
            ForwardAuth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<hidden>")
                .finish(),
        }
    }
}

impl std::fmt::Debug for ForwardConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardConfig")
            .field("url", &self.url)
            .field("ca_file", &self.ca_file)
            .field("auth", &self.auth)
            .field("batch_size", &self.batch_size)
            .field("interval", &self.interval)
            .finish()
    }
}

/// `[mqtt]`: the broker and the topics.
#[derive(Clone)]
pub struct MqttConfig {
    pub host: String,
    /// Default 1883.
    pub port: u16,
    pub username: Option<String>,
    /// Read from `password_file` at load time.
    pub password: Option<String>,
    /// State topics live under `<topic_prefix>/<meter>/…` (default `watermeter`).
    pub topic_prefix: String,
    /// Home Assistant discovery prefix (default `homeassistant`).
    pub discovery_prefix: String,
    /// How often states are published (default 10 s).
    pub interval: Duration,
    /// `tls = true`: MQTT over TLS (port default 8883), trusting the system's CAs and `ca_file`.
    pub tls: bool,
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("topic_prefix", &self.topic_prefix)
            .field("discovery_prefix", &self.discovery_prefix)
            .field("interval", &self.interval)
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl IpNet {
    /// Whether `ip` lies in this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr::{V4, V6};
        let ip = match ip {
            V6(v6) => v6.to_ipv4_mapped().map_or(V6(v6), V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (V4(net), V4(ip)) => prefix_match(&net.octets(), &ip.octets(), self.prefix),
            (V6(net), V6(ip)) => prefix_match(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }
}

fn prefix_match(net: &[u8], ip: &[u8], prefix: u8) -> bool {
    let mut bits = usize::from(prefix);
    for (a, b) in net.iter().zip(ip) {
        if bits == 0 {
            return true;
        }
        let take = bits.min(8);
        let mask = 0xffu8 << (8 - take);
        if a & mask != b & mask {
            return false;
        }
        bits -= take;
    }
    true
}
