//! `kind = "volume"`: more than `threshold_liters` within the last `window`.
//! Catches a burst pipe or a forgotten garden hose; resolves once the window's
//! sum is back under the limit for one window.

use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;

use super::{need, threshold, AlertKind, KindDef, MINUTE};
use crate::alert::rules::{Measurement, UsageView};
use crate::config::{Problem, Settings};
use crate::words::{duration, liters};

pub const DEF: KindDef = KindDef {
    name: "volume",
    title: "Too much water within a time window",
    keys: &["window", "threshold_liters"],
    example: r#"window = "1h"
threshold_liters = 100"#,
    read,
};

#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    pub window: Duration,
    pub threshold_liters: f64,
}

fn read(s: &Settings, problems: &mut Vec<Problem>) -> Option<Arc<dyn AlertKind>> {
    need(s, problems, DEF.name, "window", "\"1h\"");
    need(s, problems, DEF.name, "threshold_liters", "100");
    let window = s.duration(problems, "window", 15 * MINUTE, Some(7 * 24 * 60 * MINUTE));
    let threshold_liters = threshold(s, problems);
    Some(Arc::new(Volume {
        window: window?,
        threshold_liters: threshold_liters?,
    }))
}

impl AlertKind for Volume {
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
        _tz: Tz,
        _firing_since_ms: Option<i64>,
    ) -> Measurement {
        let liters = usage.liters_between(meter, now_ms - super::ms(self.window), now_ms);
        Measurement {
            value: liters,
            breached: liters > self.threshold_liters,
        }
    }

    fn resolve_hold(&self) -> Duration {
        self.window
    }

    fn summary(&self, meter: &str, value: f64, _resolved: bool, _detail: Option<&str>) -> String {
        format!(
            "{meter}: {} in {} (limit {})",
            liters(value),
            duration(self.window.as_secs_f64()),
            liters(self.threshold_liters)
        )
    }

    fn began_before_firing(&self) -> Duration {
        self.window
    }

    fn describe(&self) -> String {
        format!(
            "more than {} L within {}",
            self.threshold_liters,
            duration(self.window.as_secs_f64())
        )
    }
}
