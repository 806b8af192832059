//! Healing a store that holds times that cannot be true.
//!
//! Earlier versions took a radio meter's telegram dated 2099 (or a correction
//! reaching into 2400) as it came: its liters were spread into the future, and
//! the meter's reading engine then held a position in 2099, so every later real
//! reading was "stale" and counted nothing. Every input now refuses such times
//! (`clock::plausible`); a store that already holds them is healed once the clock
//! is synchronised: the events after now + 5 minutes are set aside by a
//! correction with the reason "future-dated" (one journal record per meter, in the
//! audit list like any correction), counter and reading positions dated in the
//! future keep their value but move to now, a future last-seen time goes, and one
//! notice says what was done (log and dashboard banner, [`FutureNotice`]).

use serde::{Deserialize, Serialize};

use super::codec::{meter_field, meter_key};
use super::record::Op;
use super::{global_key, Store, StoreError};
use crate::meter::MeterIdx;

const NOTICE_KEY: &str = "future_notice";
/// The reason on the correction's audit line.
pub const REASON: &str = "future-dated";

/// What the heal found and did, kept for the banner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FutureNotice {
    pub healed_at_ms: i64,
    /// Per meter index: liters set aside, and the latest time they carried.
    pub meters: Vec<(MeterIdx, f64, i64)>,
    /// Counter or reading positions moved back to now.
    pub positions: usize,
}

impl FutureNotice {
    pub fn liters(&self) -> f64 {
        self.meters.iter().map(|m| m.1).sum()
    }
}

impl Store {
    /// The last notice of future-dated data set aside, if there ever was one.
    pub fn future_notice(&self) -> Option<FutureNotice> {
        let v = self.get_raw(&global_key(NOTICE_KEY)).ok()??;
        serde_json::from_slice(&v).ok()
    }

    /// Sets aside everything dated after `now_ms` + 5 minutes (see the module).
    /// `now_ms` must be the synchronised wall clock. Returns the notice when it
    /// did something.
    pub fn heal_future(&self, now_ms: i64) -> Result<Option<FutureNotice>, StoreError> {
        let cutoff = now_ms.saturating_add(crate::clock::AHEAD_MS);
        let mut notice = FutureNotice {
            healed_at_ms: now_ms,
            meters: Vec::new(),
            positions: 0,
        };
        for idx in 0..self.meters.len() {
            let idx = idx as MeterIdx;
            let key = self.slot(idx)?.key;
            if let Some(last) = self.last_event_ms(idx)?.filter(|&t| t > cutoff) {
                let before = self.total_ml(idx)?;
                self.correct(idx, cutoff + 1, i64::MAX, None, REASON, now_ms)?;
                let removed = before.saturating_sub(self.total_ml(idx)?);
                notice.meters.push((idx, removed as f64 / 1000.0, last));
            }
            notice.positions += self.heal_positions(key, cutoff, now_ms)?;
        }
        if notice.meters.is_empty() && notice.positions == 0 {
            return Ok(None);
        }
        let value = serde_json::to_vec(&notice).map_err(|e| StoreError::Io(e.to_string()))?;
        let put = Op::Put {
            key: global_key(NOTICE_KEY),
            value,
        };
        self.write_ops(|_| vec![put], true)?;
        self.keep_positions()?;
        tracing::warn!(
            "{} L dated after {} were set aside as the correction \"{REASON}\" and {} counter or \
             reading positions dated in the future moved to now: later readings count again",
            notice.liters(),
            chrono::DateTime::from_timestamp_millis(cutoff)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default(),
            notice.positions
        );
        Ok(Some(notice))
    }

    /// Moves positions dated after `cutoff` to `now_ms` (keeping their values),
    /// drops a future last-seen time. Returns how many it changed.
    fn heal_positions(&self, key: u16, cutoff: i64, now_ms: i64) -> Result<usize, StoreError> {
        let mut ops = Vec::new();
        if let Some(v) = self.get_raw(&meter_key(key, meter_field::COUNTER))? {
            if let Ok(b) = <[u8; 16]>::try_from(v.as_slice()) {
                let ts = i64::from_be_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]);
                if ts > cutoff {
                    let mut fixed = b;
                    fixed[8..16].copy_from_slice(&now_ms.to_be_bytes());
                    ops.push(Op::Put {
                        key: meter_key(key, meter_field::COUNTER).to_vec(),
                        value: fixed.to_vec(),
                    });
                }
            }
        }
        if let Some(mut p) = self
            .get_raw(&meter_key(key, meter_field::READING))?
            .and_then(|v| super::readings::decode(&v))
        {
            let future =
                p.last.is_some_and(|(_, t)| t > cutoff) || p.lower.iter().any(|(_, t)| *t > cutoff);
            if future {
                if let Some((_, t)) = p.last.as_mut() {
                    *t = (*t).min(now_ms);
                }
                p.lower.retain(|(_, t)| *t <= cutoff);
                ops.push(Op::Put {
                    key: meter_key(key, meter_field::READING).to_vec(),
                    value: super::readings::encode(&p),
                });
            }
        }
        let seen = self
            .get_raw(&meter_key(key, meter_field::LAST_SEEN_MS))?
            .map(|v| super::read_i64(&v));
        if seen.is_some_and(|t| t > cutoff) {
            ops.push(Op::Del {
                key: meter_key(key, meter_field::LAST_SEEN_MS).to_vec(),
            });
        }
        let n = ops.iter().filter(|o| !matches!(o, Op::Del { .. })).count();
        if !ops.is_empty() {
            self.write_ops(|_| ops, true)?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MeterConfig;
    use crate::meter::{Sample, SampleValue};

    const NOW: i64 = 1_765_000_000_000; // 2025-12-06
    const Y2099: i64 = 4_070_908_800_000;

    fn sample(ts_ms: i64, value: SampleValue) -> Sample {
        Sample {
            meter: 0,
            ts_ms,
            value,
        }
    }

    #[test]
    fn a_telegram_dated_2099_is_set_aside_and_later_readings_count_again() {
        let dir = tempfile::tempdir().unwrap();
        let m = MeterConfig::with_id("radio");
        let store = Store::open(dir.path(), 1 << 20, chrono_tz::UTC, &[m]).unwrap();
        // As an earlier version took them: real readings, then one dated 2099.
        let reading = |ts, m3: f64| sample(ts, SampleValue::Reading(m3 * 1000.0));
        store.apply(&[reading(NOW - 7_200_000, 100.000)]).unwrap();
        store.apply(&[reading(NOW - 3_600_000, 100.010)]).unwrap();
        store.apply(&[reading(Y2099, 100.020)]).unwrap();
        assert!(store.last_event_ms(0).unwrap().unwrap() > NOW + 86_400_000);
        // Blocked: a real reading now counts nothing.
        store.apply(&[reading(NOW - 60_000, 100.030)]).unwrap();
        let blocked = store.total_ml(0).unwrap();
        assert_eq!(
            blocked, 20_000,
            "10 L real, 10 L spread into the future, 0 L after"
        );

        let notice = store.heal_future(NOW).unwrap().expect("healed");
        assert_eq!(notice.meters.len(), 1);
        assert!(notice.liters() > 0.0);
        assert!(store.last_event_ms(0).unwrap().unwrap() <= NOW);
        assert_eq!(store.future_notice(), Some(notice));
        let audit = store.corrections(0).unwrap();
        assert_eq!(audit.last().unwrap().reason, REASON);
        // The next real reading counts again.
        let before = store.total_ml(0).unwrap();
        store.apply(&[reading(NOW + 60_000, 100.040)]).unwrap();
        assert!(store.total_ml(0).unwrap() > before, "readings count again");
        // Once: a second heal finds nothing.
        assert_eq!(store.heal_future(NOW + 120_000).unwrap(), None);
        // And it survives a rebuild from the journal.
        let total = store.total_ml(0).unwrap();
        drop(store);
        let store = Store::open(
            dir.path(),
            1 << 20,
            chrono_tz::UTC,
            &[MeterConfig::with_id("radio")],
        )
        .unwrap();
        assert!(store.open_report().rebuilt.is_some());
        assert_eq!(store.total_ml(0).unwrap(), total);
    }

    #[test]
    fn a_store_without_future_times_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            dir.path(),
            1 << 20,
            chrono_tz::UTC,
            &[MeterConfig::with_id("m")],
        )
        .unwrap();
        store
            .apply(&[sample(NOW - 1000, SampleValue::Liters(1.0))])
            .unwrap();
        assert_eq!(store.heal_future(NOW).unwrap(), None);
        assert_eq!(store.future_notice(), None);
    }
}
