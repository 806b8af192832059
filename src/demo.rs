//! `watermeter demo`: the real appliance with a simulated household meter.
//!
//! Back-fills 90 days of realistic per-liter history, then replays live pulses as
//! contact edges through the same GPIO path (edge source → pulse filter → writer)
//! that a real S0 meter on a Raspberry Pi uses.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;

use tokio::sync::watch;

use crate::app::Extra;
use crate::config::{self, Config, GpioConfig};
use crate::ingest::gpio::{self, sim::Pace, sim::SimSource};
use crate::ingest::{household, Sample, SampleValue};
use crate::web::AppState;

const DAY_MS: i64 = 86_400_000;
const BACKFILL_DAYS: i64 = 90;
/// How far ahead the live meter's timeline is generated (restart the demo after).
const LIVE_DAYS: i64 = 30;
const SEED: u64 = 2026;

/// The demo's default addresses: those of a real install, so a real one on the
/// same machine is likely; [`config`] moves to free ports when they are taken.
pub const LISTEN: &str = "127.0.0.1:8080";
pub const UDP: &str = "127.0.0.1:8089";

/// Built-in defaults, a meter named for the demo, and the given addresses and
/// directory. A default address already in use becomes a free port on the same
/// interface (printed at start as always); an address given on purpose is kept.
pub fn config(listen: SocketAddr, udp: SocketAddr, data_dir: PathBuf) -> Config {
    let mut c = config::builtin_defaults();
    c.http.listen = free_if_default(listen, LISTEN, |a| std::net::TcpListener::bind(a).is_ok());
    let udp = free_if_default(udp, UDP, |a| std::net::UdpSocket::bind(a).is_ok());
    if let Some(u) = c.udp.as_mut() {
        u.listen = udp;
    }
    c.data_dir = data_dir;
    if let Some(m) = c.meters.first_mut() {
        m.name = "House (simulated)".into();
        m.initial_reading_m3 = 1234.0;
        m.persons = Some(3);
    }
    c.alerts = demo_alerts();
    c
}

/// The alerts a new owner would set up: too much in an hour, water that never
/// stops, leaks, and a weekly budget (a bar on the dashboard). The demo has no mail server: the alerts part of the page shows
/// what each notification says.
fn demo_alerts() -> Vec<config::AlertConfig> {
    use config::settings::{RawValue, Settings};
    let text = |s: &str| RawValue::Text(s.to_string());
    let alerts = [
        (
            "More than 100 L in one hour",
            vec![
                ("kind", text("volume")),
                ("window", text("1h")),
                ("threshold_liters", RawValue::Integer(100)),
            ],
        ),
        (
            "Water running for 2 hours",
            vec![("kind", text("continuous_flow")), ("duration", text("2h"))],
        ),
        ("Leak", vec![("kind", text("leak"))]),
        (
            "Weekly water budget",
            vec![
                ("kind", text("budget")),
                ("period", text("week")),
                ("limit_liters", RawValue::Integer(3000)),
            ],
        ),
    ];
    alerts
        .into_iter()
        .enumerate()
        .map(|(i, (name, pairs))| config::AlertConfig {
            name: name.to_string(),
            meter: "main".to_string(),
            repeat: std::time::Duration::from_secs(4 * 3600),
            notify: Vec::new(),
            settings: Settings::from_pairs(&format!("alert[{i}]"), pairs),
        })
        .collect()
}

/// The demo's leak: a toilet that keeps running at 1.6 L/min (96 L an hour, under the volume alert) for 71 minutes, one
/// that began 68 minutes before the start (so the alert, the banner and the
/// notification show at once) and again every six hours. The family does not use
/// water meanwhile, so the pattern reads plainly.
const LEAK_EVERY_MS: i64 = 6 * 3_600_000;
const LEAK_BEFORE_MS: i64 = 68 * 60_000;
const LEAK_LEN_MS: i64 = 71 * 60_000;

fn leak_windows(start_ms: i64, until_ms: i64) -> Vec<(i64, i64)> {
    (0..)
        .map(|k| start_ms - LEAK_BEFORE_MS + k * LEAK_EVERY_MS)
        .take_while(|&a| a < until_ms)
        .map(|a| (a, a + LEAK_LEN_MS))
        .collect()
}

/// A drip in the history: 2 L/h (a liter every 30 minutes) from 01:00 to 11:00
/// two days before the start, through a quiet night and then under the family's
/// own use: the draw log shows
/// it as one leak episode with its start, rate and liters.
const DRIP_LEN_MS: i64 = 10 * 3_600_000;

/// When the history's drip begins: 01:00 local, two days before `now_ms`.
pub fn drip_start(tz: chrono_tz::Tz, now_ms: i64) -> i64 {
    let day = crate::buckets::local_day_number(tz, now_ms) - 2;
    crate::buckets::date_of_day_number(day)
        .map_or(now_ms - 2 * DAY_MS, |d| crate::buckets::day_start(tz, d))
        + 3_600_000
}

fn drip(first: i64, from: i64, to: i64) -> impl Iterator<Item = i64> {
    (first..first + DRIP_LEN_MS)
        .step_by(30 * 60_000)
        .filter(move |t| *t >= from && *t < to)
}

/// The household's pulses with the leak windows cleared and the leak's pulses
/// (one every 37.5 s) in them, within `[from, to)`; a shower at `shower_at` if given.
fn with_leaks(
    mut pulses: Vec<i64>,
    windows: &[(i64, i64)],
    from: i64,
    to: i64,
    shower_at: Option<i64>,
) -> Vec<i64> {
    pulses.retain(|t| !windows.iter().any(|&(a, b)| *t >= a && *t < b));
    for &(a, b) in windows {
        pulses.extend((a..b).step_by(37_500).filter(|t| *t >= from && *t < to));
    }
    if let Some(at) = shower_at {
        // 45 L at 9 L/min, right after the start: flow on the page within a minute.
        pulses.retain(|t| *t < at || *t > at + 6 * 60_000);
        pulses.extend((1..=45).map(|k| at + k * 60_000 / 9).filter(|t| *t < to));
    }
    pulses.sort_unstable();
    pulses
}

/// `addr`, or port 0 (any free one) when `addr` is the default and cannot be bound.
fn free_if_default(
    addr: SocketAddr,
    default: &str,
    can_bind: impl Fn(SocketAddr) -> bool,
) -> SocketAddr {
    let is_default = default.parse::<SocketAddr>().is_ok_and(|d| d == addr);
    if is_default && !can_bind(addr) {
        SocketAddr::new(addr.ip(), 0)
    } else {
        addr
    }
}

/// The simulated contact is wired like a real S0 meter with the default settings.
fn simulated_pin() -> GpioConfig {
    GpioConfig {
        pin: 17,
        pull: config::Pull::Up,
        edge: config::Edge::Falling,
        debounce_ms: 30,
        min_pulse_ms: 20,
        min_gap_ms: 20,
    }
}

pub fn extra() -> Extra {
    Box::new(|state, shutdown| Box::pin(start(state, shutdown)))
}

async fn start(
    state: AppState,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let tz = state.config.timezone;
    let now = chrono::Utc::now().timestamp_millis();
    let from = match state.store.last_event_ms(0)? {
        Some(last) => (last + 1).max(now - BACKFILL_DAYS * DAY_MS),
        None => now - BACKFILL_DAYS * DAY_MS,
    };
    let windows = leak_windows(now, now + LIVE_DAYS * DAY_MS);
    let mut past = with_leaks(
        household::pulses(SEED, from, now, tz),
        &windows,
        from,
        now,
        None,
    );
    // The family sleeps through the drip's first five hours: the quiet stretch
    // in which a drip shows itself.
    let first = drip_start(tz, now);
    past.retain(|t| !(first..first + 5 * 3_600_000).contains(t));
    past.extend(drip(first, from, now));
    past.sort_unstable();
    let n = past.len();
    for chunk in past.chunks(20_000) {
        let samples = chunk
            .iter()
            .map(|&t| Sample {
                meter: 0,
                ts_ms: t,
                value: SampleValue::Liters(1.0),
            })
            .collect();
        state.writer.submit_durable(samples).await?;
    }
    println!("watermeter: demo back-filled {n} liters of simulated history");

    let until = now + LIVE_DAYS * DAY_MS;
    let future = with_leaks(
        household::pulses(SEED, now, until, tz),
        &windows,
        now,
        until,
        Some(now + LEAK_LEN_MS - LEAK_BEFORE_MS + 30_000),
    );
    let timeline = household::edge_timeline(&future, SEED);
    let source = SimSource::from_unix_ms(&timeline, now, Pace::RealTime);
    let cfg = simulated_pin();
    let (writer, stats) = (state.writer.clone(), state.stats.clone());
    let on_pulse = Box::new(move |ts_ms: i64| {
        stats.accepted_gpio.fetch_add(1, Relaxed);
        let _ = writer.submit_blocking(vec![Sample {
            meter: 0,
            ts_ms,
            value: SampleValue::Liters(1.0),
        }]);
    });
    let handle = gpio::spawn("main", &cfg, Box::new(source), on_pulse)?;
    Ok(vec![tokio::spawn(async move {
        let _ = shutdown.changed().await;
        let _ = tokio::task::spawn_blocking(move || handle.stop()).await;
    })])
}
