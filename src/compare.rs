//! How the water of now compares: today against a typical day of the same
//! weekday by the same time, this week against last week by the same time, this
//! month against the same month a year ago by the same day, and liters per
//! person per day beside a published average (docs/reports.md cites it).
//!
//! Every "by the same time" is wall-clock time in the configured zone, so a DST
//! day compares with the same local hour. A period before the first stored event
//! has no data and says so, rather than comparing with zero.

use chrono::{Days, Months, NaiveDate, NaiveDateTime};
use chrono_tz::Tz;

use crate::buckets::{day_start, first_of_month, local, local_ms, monday_of};
use crate::meter::MeterIdx;
use crate::store::{Store, StoreError};
use crate::words::liters;

/// Liters per person per day in German households: BDEW for 2018 (127 L, after
/// a decade at about 123 L) and the Federal Statistical Office for 2021 (127 L).
pub const REFERENCE_LITERS: f64 = 127.0;
/// The reference in words, for the pages.
pub const REFERENCE: &str = "the German household average (BDEW, Destatis)";
/// Where the reference comes from, for the report's "(…)".
pub const REFERENCE_SOURCE: &str = "German household average; BDEW 2018, Destatis 2021";
/// Days the per-person figure averages over.
pub const PER_PERSON_DAYS: u64 = 30;
/// Same weekdays a typical day is the median of.
const TYPICAL_WEEKS: u64 = 8;

/// One period against another.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// "Today", "This week", "This month".
    pub what: &'static str,
    pub liters: f64,
    /// "a typical Tuesday by this time", "last week by this time".
    pub against: String,
    /// `None`: no data for the other period (the history is younger).
    pub other: Option<f64>,
}

impl Comparison {
    /// The change in percent (`None` without data or when the other was 0 L).
    pub fn change_percent(&self) -> Option<f64> {
        let other = self.other.filter(|o| *o > 0.0)?;
        Some((self.liters - other) / other * 100.0)
    }

    /// "up", "down" or "same" (within 5 %), for the page's marker.
    pub fn direction(&self) -> &'static str {
        match (self.other, self.change_percent()) {
            (_, Some(p)) if p >= 5.0 => "up",
            (_, Some(p)) if p <= -5.0 => "down",
            // Any water against none is more.
            (Some(o), None) if o <= 0.0 && self.liters > 0.0 => "up",
            _ => "same",
        }
    }

    /// "8 % less than a typical Tuesday by this time (260 L)".
    pub fn words(&self) -> String {
        match (self.other, self.change_percent()) {
            (None, _) => format!("no data for {} yet", self.against),
            (Some(_), None) => format!("{} used nothing", self.against),
            (Some(o), Some(p)) if p.abs() < 5.0 => {
                format!("about the same as {} ({})", self.against, liters(o))
            }
            (Some(o), Some(p)) => format!(
                "{:.0} % {} than {} ({})",
                p.abs(),
                if p > 0.0 { "more" } else { "less" },
                self.against,
                liters(o)
            ),
        }
    }
}

/// Liters per person per day over the last days.
#[derive(Debug, Clone, PartialEq)]
pub struct PerPerson {
    pub persons: u32,
    pub liters: f64,
    /// The whole days it averages over.
    pub days: u64,
}

impl PerPerson {
    /// "118 L a day per person over the last 30 days (3 people); the German household average (BDEW, Destatis) is 127 L".
    pub fn words(&self) -> String {
        format!(
            "{} a day per person over the last {} days ({} {}); {REFERENCE} is {}",
            liters(self.liters),
            self.days,
            self.persons,
            if self.persons == 1 {
                "person"
            } else {
                "people"
            },
            liters(REFERENCE_LITERS)
        )
    }
}

fn liters_in(store: &Store, idx: MeterIdx, from: i64, to: i64) -> Result<f64, StoreError> {
    Ok(store.ml_between(idx, from, to)? as f64 / 1000.0)
}

/// The dashboard's comparisons for the meter at `now_ms`.
pub fn now(
    store: &Store,
    tz: Tz,
    idx: MeterIdx,
    now_ms: i64,
) -> Result<Vec<Comparison>, StoreError> {
    let first = store.first_event_ms(idx)?;
    let has_data_from = |from: i64| first.is_some_and(|f| f <= from);
    let t = local(tz, now_ms).naive_local();
    let today = t.date();
    let at = |d: NaiveDate| local_ms(tz, NaiveDateTime::new(d, t.time()));

    // Today against the median of the same weekday in the last eight weeks.
    let mut same_days = Vec::new();
    for k in 1..=TYPICAL_WEEKS {
        let Some(d) = today.checked_sub_days(Days::new(7 * k)) else {
            continue;
        };
        let start = day_start(tz, d);
        if has_data_from(start) {
            same_days.push(liters_in(store, idx, start, at(d))?);
        }
    }
    let typical = (same_days.len() >= 2).then(|| median(&mut same_days));
    let mut out = vec![Comparison {
        what: "Today",
        liters: liters_in(store, idx, day_start(tz, today), now_ms + 1)?,
        against: format!("a typical {} by this time", today.format("%A")),
        other: typical,
    }];

    // This week (from Monday) against last week by the same time.
    let monday = monday_of(today);
    let last_monday = monday - Days::new(7);
    let last_week_start = day_start(tz, last_monday);
    out.push(Comparison {
        what: "This week",
        liters: liters_in(store, idx, day_start(tz, monday), now_ms + 1)?,
        against: "last week by this time".into(),
        other: match has_data_from(last_week_start) {
            true => Some(liters_in(
                store,
                idx,
                last_week_start,
                at(today - Days::new(7)),
            )?),
            false => None,
        },
    });

    // This month against the same month a year ago, by the same day and time.
    let month_start = first_of_month(today);
    let year_ago = month_start.checked_sub_months(Months::new(12));
    let other = match year_ago {
        Some(m) if has_data_from(day_start(tz, m)) => {
            // The same day of the month a year ago (the 29th of February: the 28th).
            let same_day = today.checked_sub_months(Months::new(12)).unwrap_or(m);
            Some(liters_in(store, idx, day_start(tz, m), at(same_day))?)
        }
        _ => None,
    };
    out.push(Comparison {
        what: "This month",
        liters: liters_in(store, idx, day_start(tz, month_start), now_ms + 1)?,
        against: match year_ago {
            Some(m) => format!("{} by this day", m.format("%B %Y")),
            None => "a year ago".into(),
        },
        other,
    });
    Ok(out)
}

/// Liters per person per day over the last [`PER_PERSON_DAYS`] whole local days
/// (fewer when the history is younger: the day of the first event counts only
/// if it began with it; `None` before one whole day).
pub fn per_person(
    store: &Store,
    tz: Tz,
    idx: MeterIdx,
    persons: u32,
    now_ms: i64,
) -> Result<Option<PerPerson>, StoreError> {
    let Some(first) = store.first_event_ms(idx)? else {
        return Ok(None);
    };
    let today = local(tz, now_ms).date_naive();
    let end = day_start(tz, today);
    let mut days = 0;
    for k in 1..=PER_PERSON_DAYS {
        match today.checked_sub_days(Days::new(k)) {
            Some(d) if day_start(tz, d) >= first => {
                days = k;
            }
            _ => break,
        }
    }
    if days == 0 || persons == 0 {
        return Ok(None);
    }
    let start = day_start(tz, today - Days::new(days));
    let total = liters_in(store, idx, start, end)?;
    Ok(Some(PerPerson {
        persons,
        liters: total / days as f64 / f64::from(persons),
        days,
    }))
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => xs[n / 2],
        _ => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MeterConfig;
    use crate::meter::{Sample, SampleValue};

    const TZ: Tz = chrono_tz::Europe::Vienna;

    fn at(s: &str) -> i64 {
        let t = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("test time");
        local_ms(TZ, t)
    }

    fn store(dir: &std::path::Path, water: &[(&str, f64)]) -> Store {
        let store = Store::open(dir, 1 << 20, TZ, &[MeterConfig::with_id("main")]).expect("open");
        let samples: Vec<Sample> = water
            .iter()
            .map(|(t, l)| Sample {
                meter: 0,
                ts_ms: at(t),
                value: SampleValue::Liters(*l),
            })
            .collect();
        store.apply(&samples).expect("apply");
        store
    }

    #[test]
    fn today_and_this_week_compare_by_the_same_local_time() {
        let dir = tempfile::tempdir().expect("tmp");
        // Tuesdays: 100 L before 08:00 and 50 L later; this Tuesday 60 L by 08:00.
        let mut water = vec![("2026-11-02 08:00", 1.0)];
        let tuesdays = ["2026-11-03", "2026-11-10", "2026-11-17", "2026-11-24"];
        let times: Vec<(String, String)> = tuesdays
            .iter()
            .map(|d| (format!("{d} 07:00"), format!("{d} 20:00")))
            .collect();
        for (morning, evening) in &times {
            water.push((morning.as_str(), 100.0));
            water.push((evening.as_str(), 50.0));
        }
        water.push(("2026-12-01 07:30", 60.0));
        let s = store(dir.path(), &water);
        let c = now(&s, TZ, 0, at("2026-12-01 08:00")).expect("compare");
        assert_eq!(c[0].what, "Today");
        assert_eq!(c[0].liters, 60.0);
        assert_eq!(c[0].other, Some(100.0));
        assert_eq!(
            c[0].words(),
            "40 % less than a typical Tuesday by this time (100 L)"
        );
        assert_eq!(c[0].direction(), "down");
        // Last week by Tuesday 08:00: Monday nothing, Tuesday 100 L.
        assert_eq!(c[1].liters, 60.0);
        assert_eq!(c[1].other, Some(100.0));
        // A year ago there was no history yet: no comparison with zero.
        assert_eq!(c[2].other, None);
        assert_eq!(c[2].words(), "no data for December 2025 by this day yet");
        assert_eq!(c[2].direction(), "same");
        let after_none = Comparison {
            what: "Today",
            liters: 110.0,
            against: "a typical Tuesday by this time".into(),
            other: Some(0.0),
        };
        assert_eq!(after_none.direction(), "up");
        assert_eq!(
            after_none.words(),
            "a typical Tuesday by this time used nothing"
        );
    }

    #[test]
    fn liters_per_person_average_whole_days_and_a_young_history_counts_its_own_days() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = store(
            dir.path(),
            &[
                ("2026-11-28 09:00", 300.0),
                ("2026-11-29 09:00", 360.0),
                ("2026-11-30 09:00", 240.0),
                ("2026-12-01 09:00", 999.0),
            ],
        );
        let p = per_person(&s, TZ, 0, 3, at("2026-12-01 12:00"))
            .expect("read")
            .expect("two whole days");
        // The 28th began before the first event: the 29th and the 30th count.
        assert_eq!(p.days, 2);
        assert!((p.liters - 100.0).abs() < 1e-9, "{p:?}");
        assert!(p
            .words()
            .starts_with("100 L a day per person over the last 2 days (3 people)"));
        let none = per_person(&s, TZ, 0, 3, at("2026-11-28 12:00")).expect("read");
        assert_eq!(none, None);
    }
}
