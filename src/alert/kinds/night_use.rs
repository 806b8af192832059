//! `kind = "night_use"`: more than `threshold_liters` between `from` and `to`
//! local time (the night may cross midnight). Catches what runs while everyone
//! sleeps; stays firing until the next night starts clean.

use std::sync::Arc;
use std::time::Duration;

use chrono::{Duration as ChronoDuration, NaiveDate, NaiveTime, TimeZone};
use chrono_tz::Tz;

use super::{need, threshold, AlertKind, KindDef};
use crate::alert::rules::{local_ms, Measurement, UsageView};
use crate::config::{Problem, Settings};
use crate::words::liters;

pub const DEF: KindDef = KindDef {
    name: "night_use",
    title: "Water used at night",
    keys: &["from", "to", "threshold_liters"],
    example: r#"from = "00:00"
to = "05:00"
threshold_liters = 20"#,
    read,
};

#[derive(Debug, Clone, PartialEq)]
pub struct NightUse {
    pub from: NaiveTime,
    pub to: NaiveTime,
    pub threshold_liters: f64,
}

fn read(s: &Settings, problems: &mut Vec<Problem>) -> Option<Arc<dyn AlertKind>> {
    need(s, problems, DEF.name, "from", "\"00:00\"");
    need(s, problems, DEF.name, "to", "\"05:00\"");
    need(s, problems, DEF.name, "threshold_liters", "10");
    let from = s.time_of_day(problems, "from");
    let to = s.time_of_day(problems, "to");
    let threshold_liters = threshold(s, problems);
    if from.is_some() && from == to {
        s.bad(problems, "to", "is the same time as `from`; the night must have a length, such as from = \"00:00\", to = \"05:00\"");
        return None;
    }
    Some(Arc::new(NightUse {
        from: from?,
        to: to?,
        threshold_liters: threshold_liters?,
    }))
}

impl AlertKind for NightUse {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn unit(&self) -> &'static str {
        "L"
    }

    fn measure(
        &self,
        meter: &str,
        usage: &dyn UsageView,
        now_ms: i64,
        tz: Tz,
        _firing_since_ms: Option<i64>,
    ) -> Measurement {
        // The night is [start, end): shift the view's (from, to] range by 1 ms.
        let liters = night_window(self.from, self.to, now_ms, tz).map_or(0.0, |(start, end)| {
            usage.liters_between(meter, start - 1, (end - 1).min(now_ms))
        });
        Measurement {
            value: liters,
            breached: liters > self.threshold_liters,
        }
    }

    fn resolve_hold(&self) -> Duration {
        // As long as the state machine allows: the night's sum only drops when the
        // next night starts.
        Duration::MAX
    }

    fn summary(&self, meter: &str, value: f64, _resolved: bool, _detail: Option<&str>) -> String {
        format!(
            "{meter}: {} at night {}–{} (limit {})",
            liters(value),
            self.from.format("%H:%M"),
            self.to.format("%H:%M"),
            liters(self.threshold_liters)
        )
    }

    fn describe(&self) -> String {
        format!(
            "more than {} L between {} and {}",
            self.threshold_liters,
            self.from.format("%H:%M"),
            self.to.format("%H:%M")
        )
    }
}

/// The night `[start, end)` in Unix ms that contains `now_ms`, or else the last one
/// that ended before it. `from > to` crosses midnight (22:00 → 06:00). Local times
/// that do not exist (DST gap) move forward to the first instant that does; times
/// that exist twice (DST fold) take the earlier one. `None` when `from == to`.
pub fn night_window(from: NaiveTime, to: NaiveTime, now_ms: i64, tz: Tz) -> Option<(i64, i64)> {
    if from == to {
        return None;
    }
    let today = tz.timestamp_millis_opt(now_ms).single()?.date_naive();
    // The newest night that has started: it began today or on one of the days before.
    (0..3)
        .filter_map(|back| today.checked_sub_signed(ChronoDuration::days(back)))
        .map(|day| night_of(day, from, to, tz))
        .find(|(start, _)| *start <= now_ms)
}

fn night_of(day: NaiveDate, from: NaiveTime, to: NaiveTime, tz: Tz) -> (i64, i64) {
    let end_day = if to <= from {
        day.succ_opt().unwrap_or(day)
    } else {
        day
    };
    (
        local_ms(day.and_time(from), tz),
        local_ms(end_day.and_time(to), tz),
    )
}
