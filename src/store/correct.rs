//! Corrections: the owner removes the events of a range, or replaces them with a
//! number of liters spread evenly over it ("the meter misread that night; it was
//! 12 L"). A correction is one journal record ([`Op::Correct`]), so it survives a
//! power cut and a rebuild like any event; applying it rewrites the event blocks,
//! the local-day rollup, the total, the last event time and the reading anchor of
//! the range together, and keeps an audit line (`C | meter | record seq`).
//!
//! Corrections are local: events already forwarded to `[forward]` or mentioned in a
//! mail are not recalled.

use serde::{Deserialize, Serialize};

use super::apply::LocalDays;
use super::codec::{self, meter_field, meter_key, prefix, series_key, slot_of_key, Entry, DAY_MS};
use super::reading::{decode_anchor, encode_anchor};
use super::record::Op;
use super::{read_i64, Store, StoreError};
use crate::meter::MeterIdx;

/// One line of the audit list, as `GET …/corrections` and `/settings` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Correction {
    /// When the owner made it (Unix ms).
    pub at_ms: i64,
    /// The range `[from_ms, to_ms)`.
    pub from_ms: i64,
    pub to_ms: i64,
    /// `"delete"` or `"set_liters"`.
    pub action: String,
    /// Liters the range held before, and holds now.
    pub removed_liters: f64,
    pub set_liters: f64,
    pub reason: String,
}

/// The keys to write for a correction, computed from what sled holds now.
pub(super) type Puts = Vec<(Vec<u8>, Option<Vec<u8>>)>;

fn audit_key(meter: u16, seq: u64) -> Vec<u8> {
    let mut k = vec![prefix::CORRECTIONS];
    k.extend_from_slice(&meter.to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

impl Store {
    /// Removes the events of meter `meter` in `[from_ms, to_ms)` and, with
    /// `set_liters`, puts that many liters there instead, spread evenly in events of
    /// at most 1 L. Durable when it returns.
    pub fn correct(
        &self,
        meter: MeterIdx,
        from_ms: i64,
        to_ms: i64,
        set_liters: Option<f64>,
        reason: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let key = self.slot(meter)?.key;
        let op = Op::Correct {
            meter: key,
            from_ms,
            to_ms,
            set_ml: set_liters.map(crate::meter::liters_to_ml),
            at_ms,
            reason: reason.to_string(),
        };
        self.write_ops(|_| vec![op], true)?;
        Ok(())
    }

    /// Every correction of the meter, oldest first.
    pub fn corrections(&self, meter: MeterIdx) -> Result<Vec<Correction>, StoreError> {
        let key = self.slot(meter)?.key;
        let mut p = vec![prefix::CORRECTIONS];
        p.extend_from_slice(&key.to_be_bytes());
        Ok(self
            .scan_raw(&p)?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
            .collect())
    }

    /// What applying [`Op::Correct`] writes (record `seq`); reads sled as it is now.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn correction_puts(
        &self,
        seq: u64,
        meter: u16,
        from_ms: i64,
        to_ms: i64,
        set_ml: Option<u64>,
        at_ms: i64,
        reason: &str,
    ) -> Result<Puts, StoreError> {
        let data = self.data()?;
        let mut puts: Puts = Vec::new();
        let new_events: Vec<(i64, u64)> = match set_ml {
            Some(ml) if ml > 0 && to_ms > from_ms => {
                super::readings::spread(ml as f64 / 1000.0, from_ms - 1, to_ms - 1).events
            }
            _ => Vec::new(),
        };
        let mut days = LocalDays::new(self.tz);
        // Per local day: (removed, added) milliliters.
        let mut day_delta: std::collections::BTreeMap<i64, (u64, u64)> = Default::default();
        let (mut removed, mut added) = (0u64, 0u64);
        let anchor = data
            .get(meter_key(meter, meter_field::ANCHOR))?
            .and_then(|v| decode_anchor(&v));
        let (mut removed_before_anchor, mut added_before_anchor) = (0u64, 0u64);
        let first = from_ms.div_euclid(DAY_MS);
        let last = (to_ms - 1).div_euclid(DAY_MS);
        for block in first..=last {
            let Some(slot) = u32::try_from(block).ok() else {
                continue;
            };
            let key = series_key(prefix::EVENTS, meter, slot);
            let old = data.get(key)?;
            let base = block * DAY_MS;
            let mut kept: Vec<Entry> = Vec::new();
            let mut changed = false;
            for e in old.as_deref().map(codec::decode_block).unwrap_or_default() {
                let ts = base + i64::from(e.offset_ms);
                if (from_ms..to_ms).contains(&ts) {
                    changed = true;
                    removed += e.ml;
                    day_delta.entry(days.day_of(ts)).or_default().0 += e.ml;
                    if anchor.is_some_and(|(a, _)| ts < a) {
                        removed_before_anchor += e.ml;
                    }
                } else {
                    kept.push(e);
                }
            }
            for &(ts, ml) in new_events
                .iter()
                .filter(|(ts, _)| ts.div_euclid(DAY_MS) == block)
            {
                changed = true;
                added += ml;
                day_delta.entry(days.day_of(ts)).or_default().1 += ml;
                if anchor.is_some_and(|(a, _)| ts < a) {
                    added_before_anchor += ml;
                }
                kept.push(Entry {
                    offset_ms: (ts - base) as u32,
                    ml,
                });
            }
            if changed {
                let value = (!kept.is_empty()).then(|| codec::encode_block(&kept));
                puts.push((key.to_vec(), value));
            }
        }
        for (day, (minus, plus)) in day_delta {
            let Some(slot) = codec::day_slot(day) else {
                continue;
            };
            let key = series_key(prefix::DAYS, meter, slot);
            let old = data.get(key)?.map_or(0, |v| codec::read_varint_value(&v));
            let new = (old + plus).saturating_sub(minus);
            puts.push((key.to_vec(), Some(codec::varint_value(new))));
        }
        let total_key = meter_key(meter, meter_field::TOTAL_ML);
        let total = data
            .get(total_key)?
            .map_or(0, |v| codec::read_varint_value(&v));
        puts.push((
            total_key.to_vec(),
            Some(codec::varint_value((total + added).saturating_sub(removed))),
        ));
        if let Some((a, before)) = anchor {
            if removed_before_anchor > 0 || added_before_anchor > 0 {
                let before = (before + added_before_anchor).saturating_sub(removed_before_anchor);
                puts.push((
                    meter_key(meter, meter_field::ANCHOR).to_vec(),
                    Some(encode_anchor(a, before).to_vec()),
                ));
            }
        }
        // The newest event may have been removed: find the newest one left.
        let last_key = meter_key(meter, meter_field::LAST_EVENT_MS);
        let last_event = data.get(last_key)?.map(|v| read_i64(&v));
        if last_event.is_some_and(|t| (from_ms..to_ms).contains(&t)) || !new_events.is_empty() {
            let newest = newest_event(self, meter, &puts)?;
            puts.push((last_key.to_vec(), newest.map(|t| t.to_be_bytes().to_vec())));
        }
        let audit = Correction {
            at_ms,
            from_ms,
            to_ms,
            action: if set_ml.is_some() {
                "set_liters"
            } else {
                "delete"
            }
            .into(),
            removed_liters: removed as f64 / 1000.0,
            set_liters: added as f64 / 1000.0,
            reason: reason.to_string(),
        };
        let value = serde_json::to_vec(&audit).map_err(|e| StoreError::Io(e.to_string()))?;
        puts.push((audit_key(meter, seq), Some(value)));
        Ok(puts)
    }
}

/// The time of the newest event of `meter` once `puts` are written.
fn newest_event(store: &Store, meter: u16, puts: &Puts) -> Result<Option<i64>, StoreError> {
    let data = store.data()?;
    let newest_in = |key: &[u8], block: &[u8]| -> Option<i64> {
        let slot = slot_of_key(key)?;
        let e = codec::decode_block(block)
            .into_iter()
            .max_by_key(|e| e.offset_ms)?;
        Some(i64::from(slot) * DAY_MS + i64::from(e.offset_ms))
    };
    let is_block =
        |k: &[u8]| k.len() == 7 && k[0] == prefix::EVENTS && k[1..3] == meter.to_be_bytes();
    // The blocks the correction rewrites...
    let mut best = puts
        .iter()
        .filter(|(k, _)| is_block(k))
        .filter_map(|(k, v)| newest_in(k, v.as_deref()?))
        .max();
    // ...and the newest block it leaves alone.
    let lo = series_key(prefix::EVENTS, meter, 0);
    let hi = series_key(prefix::EVENTS, meter.saturating_add(1), 0);
    for kv in data.range(lo..hi).rev() {
        let (k, v) = kv?;
        if puts.iter().any(|(p, _)| p.as_slice() == k.as_ref()) {
            continue;
        }
        best = best.max(newest_in(&k, &v));
        break;
    }
    Ok(best)
}

#[cfg(test)]
#[path = "correct_tests.rs"]
mod tests;
