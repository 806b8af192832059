//! `kind = "meter_alarm"`: the meter itself reports an alarm. Radio meters flag a
//! leak, a burst, backflow or a dry pipe in their telegrams (wmbusmeters'
//! `current_alarms` / `status`); this fires while the meter reports one of
//! `flags` (default: any) and resolves when the flag clears.

use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;

use super::{AlertKind, KindDef};
use crate::alert::rules::{Measurement, UsageView};
use crate::config::{Problem, RawValue, Settings};

pub const DEF: KindDef = KindDef {
    name: "meter_alarm",
    title: "The meter itself reports an alarm",
    keys: &["flags"],
    example: r#"flags = "leak""#,
    read,
};

#[derive(Debug, Clone, PartialEq)]
pub struct MeterAlarm {
    /// The flags that count (lower case); empty: any flag.
    pub flags: Vec<String>,
}

fn read(s: &Settings, problems: &mut Vec<Problem>) -> Option<Arc<dyn AlertKind>> {
    let flags = match s.get("flags").map(|f| &f.value) {
        None => Vec::new(),
        Some(RawValue::Text(one)) => vec![one.trim().to_lowercase()],
        Some(_) => {
            // A list arrives as "a list": name the words to write instead.
            s.bad(problems, "flags", "must be one flag in quotes, such as flags = \"leak\"; leave it out to fire on any flag the meter reports");
            return None;
        }
    };
    if flags.iter().any(String::is_empty) {
        s.bad(
            problems,
            "flags",
            "must not be empty; write a flag such as \"leak\", or leave the key out for any flag",
        );
        return None;
    }
    Some(Arc::new(MeterAlarm { flags }))
}

impl MeterAlarm {
    fn active(&self, meter: &str, usage: &dyn UsageView) -> Vec<String> {
        usage
            .meter_alarms(meter)
            .into_iter()
            .filter(|f| self.flags.is_empty() || self.flags.iter().any(|w| f.contains(w.as_str())))
            .collect()
    }
}

impl AlertKind for MeterAlarm {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn unit(&self) -> &'static str {
        "flags"
    }

    fn measure(
        &self,
        meter: &str,
        usage: &dyn UsageView,
        _now_ms: i64,
        _tz: Tz,
        _firing_since_ms: Option<i64>,
    ) -> Measurement {
        let n = self.active(meter, usage).len();
        Measurement {
            value: n as f64,
            breached: n > 0,
        }
    }

    fn resolve_hold(&self) -> Duration {
        // The meter's own word: it cleared when it says so.
        Duration::ZERO
    }

    fn summary(&self, meter: &str, _value: f64, resolved: bool, detail: Option<&str>) -> String {
        match (resolved, detail) {
            (true, _) => format!("{meter}: the meter no longer reports an alarm"),
            (false, Some(flags)) => format!("{meter}: the meter itself reports an alarm: {flags}"),
            (false, None) => format!("{meter}: the meter itself reports an alarm"),
        }
    }

    fn detail(&self, meter: &str, usage: &dyn UsageView, _now_ms: i64, _tz: Tz) -> Option<String> {
        let active = self.active(meter, usage);
        (!active.is_empty()).then(|| active.join(", "))
    }

    fn tells_run(&self) -> bool {
        false
    }

    fn describe(&self) -> String {
        if self.flags.is_empty() {
            "the meter reports any alarm (leak, burst, backflow, dry, …)".into()
        } else {
            format!("the meter reports {}", self.flags.join(" or "))
        }
    }
}
