//! Draws: what used the water. Every stretch of water use in the stored events
//! becomes a draw (start, end, liters, mean and peak flow), named by a classifier
//! that learns the home (`classify`), with leaks shown as one draw over their whole
//! span (`leak`).
//!
//! Draws come from the stored events, whatever wrote them (live pulses, HTTP,
//! imports); events the reading engine spread over a long gap (interpolated) form
//! none. A day's draws are computed once and kept while the day's liters do not
//! change, and a home model once per week, so a page view reads no history twice.

pub mod classify;
pub mod detect;
pub mod leak;

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::SecondsFormat;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::buckets::{self, Step};
use crate::meter::MeterIdx;
use crate::store::{Store, StoreError};
use detect::Segment;

/// What used the water.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Shower,
    Bath,
    Toilet,
    WashingMachine,
    Dishwasher,
    Tap,
    Garden,
    Leak,
    Other,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Shower,
        Kind::Bath,
        Kind::Toilet,
        Kind::WashingMachine,
        Kind::Dishwasher,
        Kind::Tap,
        Kind::Garden,
        Kind::Leak,
        Kind::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Shower => "shower",
            Kind::Bath => "bath",
            Kind::Toilet => "toilet",
            Kind::WashingMachine => "washing_machine",
            Kind::Dishwasher => "dishwasher",
            Kind::Tap => "tap",
            Kind::Garden => "garden",
            Kind::Leak => "leak",
            Kind::Other => "other",
        }
    }

    /// As the pages say it.
    pub fn words(self) -> &'static str {
        match self {
            Kind::Shower => "Shower",
            Kind::Bath => "Bath",
            Kind::Toilet => "Toilet",
            Kind::WashingMachine => "Washing machine",
            Kind::Dishwasher => "Dishwasher",
            Kind::Tap => "Tap",
            Kind::Garden => "Garden",
            Kind::Leak => "Leak",
            Kind::Other => "Other",
        }
    }

    pub fn parse(s: &str) -> Result<Kind, String> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "{s:?} is not a kind of draw; use one of {}",
                    names.join(", ")
                )
            })
    }
}

/// One draw as the API gives it.
#[derive(Debug, Clone, Serialize)]
pub struct Draw {
    pub id: String,
    pub start: String,
    pub end: String,
    pub liters: f64,
    pub mean_l_per_min: f64,
    pub peak_l_per_min: f64,
    pub kind: Kind,
    pub confidence: f64,
    /// The owner set the kind.
    pub labelled: bool,
    #[serde(skip)]
    pub start_ms: i64,
    #[serde(skip)]
    pub end_ms: i64,
}

/// At most this many days of draws per request: a year is paged, not loaded.
pub const MAX_DAYS: i64 = 31;

/// Learned rules (burst, baseline) stay quiet until this much history exists.
pub const LEARNING_MS: i64 = 14 * 86_400_000;

/// A draw's id: stable while its events do not change (its first and last event
/// and their count), FNV-1a so it is the same on every build.
pub fn draw_id(s: &Segment) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s
        .first_event_ms
        .to_be_bytes()
        .iter()
        .chain(&s.last_event_ms.to_be_bytes())
        .chain(&s.events.to_be_bytes())
        .chain(&s.start_ms.to_be_bytes())
    {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    format!("{:x}-{:08x}", s.first_event_ms, h & 0xffff_ffff)
}

/// The key a label is stored under.
fn label_key(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// A stored label: the kind and the draw's features, so the model can learn from
/// it without finding the draw again.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Label {
    kind: Kind,
    liters: f64,
    mean: f64,
    minutes: f64,
}

#[derive(Debug, Default)]
struct Cache {
    /// (meter, local day) → (the day's milliliters when computed, its segments).
    days: HashMap<(MeterIdx, i64), (u64, Vec<Segment>)>,
    /// (meter, week) → the model for that week.
    models: HashMap<(MeterIdx, i64), classify::HomeModel>,
    /// (meter, local day) of days found too dense to split into draws.
    dense: std::collections::HashSet<(MeterIdx, i64)>,
}

/// Draws of the meters, computed on demand and kept.
#[derive(Debug, Default)]
pub struct DrawBook {
    cache: Mutex<Cache>,
}

/// Days of segments kept at most (about a year per meter for four meters; a
/// household day's segments take 1–3 KB).
const MAX_CACHED_DAYS: usize = 1500;
/// Home models kept at most (ten years of weeks; a model takes about 100 bytes
/// plus the owner's labels).
const MAX_CACHED_MODELS: usize = 520;

/// A day with more events than this (with its 3-hour margins) is not split into
/// draws: 20,000 L at 0.1 L per pulse, ten times a large household's day. Such a
/// day (a load test, a sensor gone wild) would otherwise hold megabytes in memory
/// and seconds of work for every page that shows draws.
pub const MAX_EVENTS_PER_DAY: usize = 200_000;

impl DrawBook {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        match self.cache.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The segments of local day `day` (those whose first event is on it), kept
    /// while the day's liters stay the same.
    fn segments(
        &self,
        store: &Store,
        tz: Tz,
        idx: MeterIdx,
        day: i64,
        now_ms: i64,
    ) -> Result<Vec<Segment>, StoreError> {
        let (Some(d0), Some(d1)) = (
            buckets::date_of_day_number(day),
            buckets::date_of_day_number(day + 1),
        ) else {
            return Ok(Vec::new());
        };
        let (from, to) = (buckets::day_start(tz, d0), buckets::day_start(tz, d1));
        if from > now_ms {
            return Ok(Vec::new());
        }
        let ml = store
            .usage(idx, Step::Day, from, from)
            .map_err(|e| StoreError::Io(e.to_string()))?
            .ml
            .first()
            .copied()
            .unwrap_or(0);
        let closed = to + 3 * 3_600_000 <= now_ms;
        if closed {
            if let Some((kept, segs)) = self.lock().days.get(&(idx, day)) {
                if *kept == ml {
                    return Ok(segs.clone());
                }
            }
        }
        let pad = 3 * 3_600_000;
        let interpolated = store.interpolated(idx, from - pad, to + pad)?;
        let mut events = Vec::new();
        let mut dense = false;
        store.for_each_event_while(idx, from - pad, to + pad, |ts, ml| {
            if events.len() >= MAX_EVENTS_PER_DAY {
                dense = true;
                return false;
            }
            if !interpolated.iter().any(|&(a, b)| ts > a && ts <= b) {
                events.push((ts, ml as f64 / 1000.0));
            }
            true
        })?;
        {
            let mut cache = self.lock();
            if dense {
                if cache.dense.len() >= MAX_CACHED_DAYS {
                    cache.dense.clear();
                }
                cache.dense.insert((idx, day));
            } else {
                cache.dense.remove(&(idx, day));
            }
        }
        if dense {
            return Ok(Vec::new());
        }
        let segs: Vec<Segment> = detect::segments(&events)
            .into_iter()
            .filter(|s| s.first_event_ms >= from && s.first_event_ms < to)
            .collect();
        if closed {
            let mut cache = self.lock();
            if cache.days.len() >= MAX_CACHED_DAYS {
                cache.days.clear();
            }
            cache.days.insert((idx, day), (ml, segs.clone()));
        }
        Ok(segs)
    }

    /// The home model for the week of `day`: learned from the four weeks before
    /// that week's end and the owner's labels.
    fn model(
        &self,
        store: &Store,
        tz: Tz,
        idx: MeterIdx,
        day: i64,
        now_ms: i64,
    ) -> Result<classify::HomeModel, StoreError> {
        let week = day.div_euclid(7);
        if let Some(m) = self.lock().models.get(&(idx, week)) {
            return Ok(m.clone());
        }
        let end_day = (week + 1) * 7;
        let mut history = Vec::new();
        for d in end_day - 28..end_day {
            history.extend(self.segments(store, tz, idx, d, now_ms)?);
        }
        let labelled: Vec<(Segment, Kind)> = labels(store, idx)?
            .into_values()
            .map(|l| {
                let span = (l.minutes * 60_000.0) as i64;
                let s = Segment {
                    start_ms: 0,
                    end_ms: span,
                    liters: l.liters,
                    mean_l_per_min: l.mean,
                    peak_l_per_min: l.mean,
                    first_event_ms: 0,
                    last_event_ms: span,
                    events: 0,
                };
                (s, l.kind)
            })
            .collect();
        let mut model = classify::learn(&history, &labelled);
        let first = store.first_event_ms(idx)?;
        let learned = first.is_some_and(|f| now_ms - f >= LEARNING_MS);
        if learned {
            model.burst_l_per_min = Some(leak::burst_limit(&history));
        }
        let mut cache = self.lock();
        if end_day <= buckets::local_day_number(tz, now_ms) {
            if cache.models.len() >= MAX_CACHED_MODELS {
                cache.models.clear();
            }
            cache.models.insert((idx, week), model.clone());
        }
        Ok(model)
    }

    /// Local days in `from_day..=to_day` that were found too dense to split into
    /// draws ([`MAX_EVENTS_PER_DAY`]); [`DrawBook::days`] gives none for them.
    pub fn too_dense(&self, idx: MeterIdx, from_day: i64, to_day: i64) -> Vec<i64> {
        let cache = self.lock();
        (from_day..=to_day)
            .filter(|d| cache.dense.contains(&(idx, *d)))
            .collect()
    }

    /// The draws of local days `from_day..=to_day`, oldest first.
    pub fn days(
        &self,
        store: &Store,
        tz: Tz,
        idx: MeterIdx,
        from_day: i64,
        to_day: i64,
        now_ms: i64,
    ) -> Result<Vec<Draw>, StoreError> {
        let labels = labels(store, idx)?;
        let mut out = Vec::new();
        for day in from_day..=to_day {
            let segs = self.segments(store, tz, idx, day, now_ms)?;
            if segs.is_empty() {
                continue;
            }
            let model = self.model(store, tz, idx, day, now_ms)?;
            out.extend(name_day(&model, &segs, &labels, tz));
        }
        Ok(out)
    }

    /// The draws that start within `[from_ms, to_ms)`; at most [`MAX_DAYS`] days.
    pub fn range(
        &self,
        store: &Store,
        tz: Tz,
        idx: MeterIdx,
        from_ms: i64,
        to_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<Draw>, StoreError> {
        let (d0, d1) = (
            buckets::local_day_number(tz, from_ms),
            buckets::local_day_number(tz, to_ms - 1),
        );
        Ok(self
            .days(store, tz, idx, d0, d1.min(d0 + MAX_DAYS - 1), now_ms)?
            .into_iter()
            .filter(|d| d.start_ms >= from_ms && d.start_ms < to_ms)
            .collect())
    }

    /// The owner says draw `id` was `kind`. The draw must exist; similar draws
    /// follow from now on.
    pub fn relabel(
        &self,
        store: &Store,
        tz: Tz,
        idx: MeterIdx,
        id: &str,
        kind: Kind,
        now_ms: i64,
    ) -> Result<Result<Draw, String>, StoreError> {
        let unknown = || {
            Ok(Err(format!(
                "no draw {id:?} on this meter; take ids from the draws list"
            )))
        };
        let Some(first_ms) = id
            .split_once('-')
            .and_then(|(t, _)| i64::from_str_radix(t, 16).ok())
        else {
            return unknown();
        };
        let day = buckets::local_day_number(tz, first_ms);
        let Some(mut draw) = self
            .days(store, tz, idx, day, day, now_ms)?
            .into_iter()
            .find(|d| d.id == id)
        else {
            return unknown();
        };
        let label = Label {
            kind,
            liters: draw.liters,
            mean: draw.mean_l_per_min,
            minutes: (draw.end_ms - draw.start_ms) as f64 / 60_000.0,
        };
        let value = serde_json::to_string(&label).map_err(|e| StoreError::Io(e.to_string()))?;
        store.set_draw_label(idx, label_key(id), &value)?;
        self.lock().models.clear();
        draw.kind = kind;
        draw.confidence = 1.0;
        draw.labelled = true;
        Ok(Ok(draw))
    }
}

/// Liters by kind of `draws`, biggest first.
pub fn by_kind<'a>(draws: impl IntoIterator<Item = &'a Draw>) -> Vec<(Kind, f64)> {
    let mut sums: HashMap<Kind, f64> = HashMap::new();
    for d in draws {
        *sums.entry(d.kind).or_default() += d.liters;
    }
    let mut v: Vec<(Kind, f64)> = sums.into_iter().filter(|(_, l)| *l > 0.0).collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v
}

fn labels(store: &Store, idx: MeterIdx) -> Result<HashMap<u64, Label>, StoreError> {
    Ok(store
        .draw_labels(idx)?
        .into_iter()
        .filter_map(|(k, v)| Some((k, serde_json::from_str::<Label>(&v).ok()?)))
        .collect())
}

/// A day's segments named: leaks merged into one draw over their span, the rest
/// classified, the owner's labels on top.
fn name_day(
    model: &classify::HomeModel,
    segs: &[Segment],
    labels: &HashMap<u64, Label>,
    tz: Tz,
) -> Vec<Draw> {
    let kinds = classify::classify(model, segs);
    let mut out = Vec::new();
    // A trickle series is one leak draw over its span, with the liters the leak
    // itself ran; the ordinary draws on top of it stay draws of their own.
    let mut in_series = vec![false; segs.len()];
    for members in leak::trickle_series(segs) {
        let Some(e) = leak::Episode::of_series(segs, &members) else {
            continue;
        };
        let (first, last) = (&segs[members[0]], &segs[members[members.len() - 1]]);
        let merged = Segment {
            start_ms: e.start_ms,
            end_ms: e.end_ms,
            liters: e.liters,
            mean_l_per_min: e.l_per_h / 60.0,
            peak_l_per_min: members
                .iter()
                .map(|&m| segs[m].peak_l_per_min)
                .fold(0.0, f64::max),
            first_event_ms: first.first_event_ms,
            last_event_ms: last.last_event_ms,
            events: members.iter().map(|&m| segs[m].events).sum(),
        };
        for &m in &members {
            in_series[m] = true;
        }
        out.push(labelled(&merged, Kind::Leak, 0.7, labels, tz));
    }
    for (i, s) in segs.iter().enumerate().filter(|(i, _)| !in_series[*i]) {
        let (kind, conf) = match leak::leak_draw(s, model.burst_l_per_min) {
            Some(_) => (Kind::Leak, 0.7),
            None => kinds[i],
        };
        out.push(labelled(s, kind, conf, labels, tz));
    }
    out.sort_by_key(|d| d.start_ms);
    out
}

fn labelled(s: &Segment, kind: Kind, conf: f64, labels: &HashMap<u64, Label>, tz: Tz) -> Draw {
    let id = draw_id(s);
    match labels.get(&label_key(&id)) {
        Some(l) => to_draw(s, l.kind, 1.0, true, tz),
        None => to_draw(s, kind, conf, false, tz),
    }
}

fn to_draw(s: &Segment, kind: Kind, confidence: f64, labelled: bool, tz: Tz) -> Draw {
    let time = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .with_timezone(&tz)
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    };
    let round = |x: f64| (x * 100.0).round() / 100.0;
    Draw {
        id: draw_id(s),
        start: time(s.start_ms),
        end: time(s.end_ms),
        liters: round(s.liters),
        mean_l_per_min: round(s.mean_l_per_min),
        peak_l_per_min: round(s.peak_l_per_min),
        kind,
        confidence: round(confidence),
        labelled,
        start_ms: s.start_ms,
        end_ms: s.end_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MeterConfig;
    use crate::meter::{Sample, SampleValue};

    fn pulses(from: i64, n: i64, every_ms: i64, liters: f64) -> Vec<Sample> {
        (0..n)
            .map(|i| Sample {
                meter: 0,
                ts_ms: from + i * every_ms,
                value: SampleValue::Liters(liters),
            })
            .collect()
    }

    #[test]
    fn a_day_too_dense_to_split_gives_no_draws_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let tz = chrono_tz::UTC;
        let store = Store::open(dir.path(), 1 << 20, tz, &[MeterConfig::with_id("main")]).unwrap();
        let day0 = 20_000 * 86_400_000i64;
        // A normal day: a shower in the morning.
        store
            .apply(&pulses(day0 + 7 * 3_600_000, 60, 6_000, 1.0))
            .unwrap();
        // The next day: a sensor gone wild, 0.1 L every 400 ms all day.
        let day1 = day0 + 86_400_000;
        store
            .apply(&pulses(day1, MAX_EVENTS_PER_DAY as i64 + 10_000, 400, 0.1))
            .unwrap();
        let book = DrawBook::new();
        let now = day1 + 3 * 86_400_000;
        let (d0, d1) = (day0 / 86_400_000, day1 / 86_400_000);
        let draws = book.days(&store, tz, 0, d0, d1, now).unwrap();
        assert!(!draws.is_empty(), "the normal day keeps its draws");
        assert!(
            draws.iter().all(|d| d.start_ms < day1),
            "the dense day has none"
        );
        assert_eq!(book.too_dense(0, d0, d1), vec![d1]);
    }
}
