//! `kind = "continuous_flow"`: water flowing without a pause of `quiet` for at
//! least `duration`. Catches a running toilet or a dripping tap that never stops;
//! resolves once the water stopped for `quiet`.

use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;

use super::{ms, need, AlertKind, KindDef, MINUTE};
use crate::alert::rules::{Measurement, UsageView};
use crate::config::{Problem, Settings};
use crate::words::duration;

pub const DEF: KindDef = KindDef {
    name: "continuous_flow",
    title: "Water running without a pause",
    keys: &["duration", "quiet"],
    example: r#"duration = "2h"
quiet = "15m""#,
    read,
};

#[derive(Debug, Clone, PartialEq)]
pub struct ContinuousFlow {
    pub duration: Duration,
    /// No pulse for this long means water stopped (default 15 min).
    pub quiet: Duration,
}

fn read(s: &Settings, problems: &mut Vec<Problem>) -> Option<Arc<dyn AlertKind>> {
    need(s, problems, DEF.name, "duration", "\"2h\"");
    let duration = s.duration(problems, "duration", 15 * MINUTE, None);
    let quiet = s
        .duration(problems, "quiet", MINUTE, None)
        .unwrap_or(15 * MINUTE);
    Some(Arc::new(ContinuousFlow {
        duration: duration?,
        quiet,
    }))
}

impl AlertKind for ContinuousFlow {
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
        firing_since_ms: Option<i64>,
    ) -> Measurement {
        let (duration, quiet) = (ms(self.duration), ms(self.quiet));
        // A firing flow began `duration` before it fired: look back that far.
        let look_from = firing_since_ms.map_or(now_ms, |s| s.min(now_ms)) - duration;
        let since = flowing_since(usage, meter, look_from - quiet, now_ms, quiet);
        let flowing_ms = since.map_or(0, |s| now_ms - s);
        Measurement {
            value: flowing_ms as f64 / 1000.0,
            breached: since.is_some() && flowing_ms >= duration,
        }
    }

    fn resolve_hold(&self) -> Duration {
        self.quiet
    }

    fn summary(&self, meter: &str, value: f64, resolved: bool, _detail: Option<&str>) -> String {
        let limit = duration(self.duration.as_secs_f64());
        if resolved {
            format!("{meter}: the water stopped (limit {limit} of continuous flow)")
        } else {
            format!(
                "{meter}: water flowing for {} without a break (limit {limit})",
                duration(value)
            )
        }
    }

    fn began_before_firing(&self) -> Duration {
        self.duration
    }

    fn describe(&self) -> String {
        format!(
            "water flowing without a pause for {}",
            duration(self.duration.as_secs_f64())
        )
    }
}

/// Start of the flow that is still running at `now_ms`, or `None` when the water
/// has stopped (no event for at least `quiet_ms`). Events are read from
/// `(look_from_ms, now_ms]`; a run reaching back to `look_from_ms` starts at the
/// first event read, which is then a lower bound on its length.
pub fn flowing_since(
    usage: &dyn UsageView,
    meter: &str,
    look_from_ms: i64,
    now_ms: i64,
    quiet_ms: i64,
) -> Option<i64> {
    let times = usage.event_times(meter, look_from_ms, now_ms);
    let last = *times.last()?;
    if now_ms - last >= quiet_ms {
        return None;
    }
    let mut start = last;
    for &t in times.iter().rev().skip(1) {
        if start - t >= quiet_ms {
            break;
        }
        start = t;
    }
    Some(start)
}
