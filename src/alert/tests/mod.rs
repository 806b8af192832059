//! Tests of the alert module, one file per part; shared helpers here.

mod message;
mod outbox;
mod rules;
mod state;

use std::time::Duration;

use chrono::{NaiveDateTime, NaiveTime};
use chrono_tz::Tz;

use crate::alert::kinds::volume::Volume;
use crate::alert::{AlertKind, Rule};

pub const VIENNA: Tz = chrono_tz::Europe::Vienna;
pub const MIN: i64 = 60_000;
pub const HOUR: i64 = 60 * MIN;

/// Unix ms of a Vienna wall-clock time "YYYY-MM-DD HH:MM" (earliest if ambiguous).
pub fn vienna(s: &str) -> i64 {
    let t = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("test time");
    super::rules::local_ms(t, VIENNA)
}

pub fn hm(s: &str) -> NaiveTime {
    NaiveTime::parse_from_str(s, "%H:%M").expect("test time")
}

pub fn mins(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

pub fn rule(kind: impl AlertKind + 'static) -> Rule {
    Rule {
        name: "More than 100 L in one hour".into(),
        meter: "main".into(),
        kind: std::sync::Arc::new(kind),
        repeat: mins(240),
        notify: Vec::new(),
    }
}

pub fn volume(window_min: u64, threshold: f64) -> Rule {
    rule(Volume {
        window: mins(window_min),
        threshold_liters: threshold,
    })
}
