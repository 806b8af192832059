//! `kind = "no_data"`: nothing heard from the meter's sender for `after`. Catches
//! a dead sensor, a pulled plug or a broken Wi-Fi; resolves when data arrives
//! again. A sender never heard from cannot go silent (see docs/alerts.md).

use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;

use super::{ms, need, AlertKind, KindDef, MINUTE};
use crate::alert::rules::{Measurement, UsageView};
use crate::config::{Problem, Settings};
use crate::words::duration;

pub const DEF: KindDef = KindDef {
    name: "no_data",
    title: "The meter stopped sending",
    keys: &["after"],
    example: r#"after = "2h""#,
    read,
};

#[derive(Debug, Clone, PartialEq)]
pub struct NoData {
    pub after: Duration,
}

fn read(s: &Settings, problems: &mut Vec<Problem>) -> Option<Arc<dyn AlertKind>> {
    need(s, problems, DEF.name, "after", "\"30m\"");
    let after = s.duration(problems, "after", MINUTE, None);
    Some(Arc::new(NoData { after: after? }))
}

impl AlertKind for NoData {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn unit(&self) -> &'static str {
        "s"
    }

    fn measure(
        &self,
        meter: &str,
        usage: &dyn UsageView,
        now_ms: i64,
        _tz: Tz,
        _firing_since_ms: Option<i64>,
    ) -> Measurement {
        let last_seen = usage.last_seen_ms(meter);
        let silent_ms = last_seen.map_or(0, |t| (now_ms - t).max(0));
        Measurement {
            value: silent_ms as f64 / 1000.0,
            breached: last_seen.is_some() && silent_ms >= ms(self.after),
        }
    }

    fn resolve_hold(&self) -> Duration {
        self.after
    }

    fn summary(&self, meter: &str, value: f64, resolved: bool, _detail: Option<&str>) -> String {
        let limit = duration(self.after.as_secs_f64());
        if resolved {
            format!("{meter}: data is arriving again (limit {limit} of silence)")
        } else {
            format!("{meter}: no data for {} (limit {limit})", duration(value))
        }
    }

    fn tells_run(&self) -> bool {
        false
    }

    fn describe(&self) -> String {
        format!("no pulse for {}", duration(self.after.as_secs_f64()))
    }
}
