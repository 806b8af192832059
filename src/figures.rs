//! A meter's figures at a glance, computed in one place for the dashboard, the
//! JSON API, MQTT and `/metrics`: reading, total, today, this hour, and the one
//! definition of "flow now". Reads the store; knows no page, topic or format.

use chrono::{SecondsFormat, TimeZone};
use serde::Serialize;

use crate::buckets::Step;
use crate::config::Config;
use crate::meter::MeterIdx;
use crate::store::query::QueryError;
use crate::store::Store;

/// A meter's state at a glance.
#[derive(Debug, Clone, Serialize)]
pub struct MeterSnapshot {
    pub id: String,
    pub name: String,
    pub reading_m3: f64,
    pub total_liters: f64,
    pub today_liters: f64,
    pub this_hour_liters: f64,
    pub flow_l_per_min: f64,
    pub last_event: Option<String>,
}

pub fn snapshot(
    store: &Store,
    config: &Config,
    idx: MeterIdx,
    now_ms: i64,
) -> Result<MeterSnapshot, QueryError> {
    let m = &config.meters[usize::from(idx)];
    let today = store.usage(idx, Step::Day, now_ms, now_ms)?;
    let hour = store.usage(idx, Step::Hour, now_ms, now_ms)?;
    Ok(MeterSnapshot {
        id: m.id.clone(),
        name: m.name.clone(),
        reading_m3: round(store.reading_m3(idx)?, 6),
        total_liters: store.total_ml(idx)? as f64 / 1000.0,
        today_liters: today.total_ml() as f64 / 1000.0,
        this_hour_liters: hour.total_ml() as f64 / 1000.0,
        flow_l_per_min: round(flow_l_per_min(store, idx, now_ms)?, 2),
        last_event: store
            .last_event_ms(idx)?
            .map(|t| rfc3339(config.timezone, t)),
    })
}

/// Flow now: the last pulse's volume over the time since the pulse before it, or
/// over the time since the last pulse when that is longer (so the figure decays
/// when water stops), and 0 once nothing came for a minute and two intervals. A
/// lone pulse (none before it in the last hour) counts over at least a minute:
/// its own interval is unknown, and it must not read as a torrent.
pub fn flow_l_per_min(store: &Store, idx: MeterIdx, now_ms: i64) -> Result<f64, QueryError> {
    let mut flow = Flow::default();
    store.for_each_event(idx, now_ms - 3_600_000, now_ms + 1, |ts, ml| {
        flow.event(ts, ml)
    })?;
    Ok(flow.at(now_ms))
}

/// The last two events of the hour before now, and what [`flow_l_per_min`] makes
/// of them; the test doubles of the store feed it too. Pure.
#[derive(Debug, Default, Clone, Copy)]
pub struct Flow {
    last: [(i64, u64); 2],
    n: usize,
}

impl Flow {
    /// The next event, in time order.
    pub fn event(&mut self, ts_ms: i64, ml: u64) {
        self.last = [self.last[1], (ts_ms, ml)];
        self.n += 1;
    }

    /// Flow at `now_ms` in L/min.
    pub fn at(&self, now_ms: i64) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        let (t1, ml) = self.last[1];
        let since = (now_ms - t1).max(0);
        let interval = if self.n >= 2 {
            (t1 - self.last[0].0).max(1000)
        } else {
            since.max(60_000)
        };
        if since > (2 * interval).max(60_000) {
            return 0.0;
        }
        ml as f64 / 1000.0 / (interval.max(since) as f64 / 60_000.0)
    }
}

/// What the water of today, this month and this year costs, in `[tariff]`'s
/// currency. Month and year include the fixed charge of their months so far.
#[derive(Debug, Clone, PartialEq)]
pub struct Costs {
    pub currency: String,
    pub today: f64,
    pub month: f64,
    pub year: f64,
}

/// [`Costs`] of meter `idx` at `now_ms`, or `None` without a `[tariff]`.
pub fn costs(
    store: &Store,
    config: &crate::config::Config,
    idx: MeterIdx,
    now_ms: i64,
) -> Result<Option<Costs>, QueryError> {
    use chrono::Datelike;
    let Some(t) = &config.tariff else {
        return Ok(None);
    };
    let tz = config.timezone;
    let local = tz
        .timestamp_millis_opt(now_ms)
        .single()
        .map(|d| d.date_naive())
        .unwrap_or_default();
    let day = crate::buckets::day_start(tz, local);
    let month = crate::buckets::day_start(tz, crate::buckets::first_of_month(local));
    let year = crate::buckets::day_start(
        tz,
        local
            .with_day(1)
            .and_then(|d| d.with_month(1))
            .unwrap_or(local),
    );
    // The cost of [from, now), each liter priced after what its tier period held before.
    let cost_since = |from: i64| -> Result<f64, QueryError> {
        crate::tariff::cost_between(t, tz, from, now_ms + 1, |a, b| {
            Ok(store.ml_between(idx, a, b)? as f64 / 1000.0)
        })
    };
    let months = f64::from(local.month());
    Ok(Some(Costs {
        currency: t.currency.clone(),
        today: cost_since(day)?,
        month: cost_since(month)? + crate::tariff::fixed_for_months(t, 1.0),
        year: cost_since(year)? + crate::tariff::fixed_for_months(t, months),
    }))
}

/// An instant in the configured zone, as the API writes it.
pub fn rfc3339(tz: chrono_tz::Tz, ts_ms: i64) -> String {
    match tz.timestamp_millis_opt(ts_ms).single() {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::AutoSi, false),
        None => ts_ms.to_string(),
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}
