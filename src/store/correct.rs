//! Corrections: the owner removes the events of a range, or replaces them with a
//! number of liters spread evenly over it ("the meter misread that night; it was
//! 12 L"). A correction is one journal record ([`Op::Correct`]), so it survives a
//! power cut and a rebuild like any event; applying it rewrites the event chunks
//! that hold the range, the local-day rollup, the total, the last event time and
//! the reading anchor together, and keeps an audit line (`C | meter | record seq`).
//! It reads only the chunks that exist in the range: its cost follows the data,
//! not the calendar span.
//!
//! Corrections are local: events already forwarded to `[forward]` or mentioned in a
//! mail are not recalled.

use serde::{Deserialize, Serialize};

use super::apply::{read_live, LocalDays};
use super::chunks::{Chunks, Live};
use super::codec::{self, meter_field, meter_key, prefix, series_key, Entry, DAY_MS};
use super::reading::{decode_anchor, encode_anchor};
use super::record::Op;
use super::{Store, StoreError};
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
        let mut live: Live = read_live(self, meter)?;
        let last_event = live.last_event_ms;
        let events = self.events()?;
        let mut chunks = Chunks::new(&events);
        chunks.remove(meter, &mut live, from_ms, to_ms, |ts, ml| {
            removed += ml;
            day_delta.entry(days.day_of(ts)).or_default().0 += ml;
            if anchor.is_some_and(|(a, _)| ts < a) {
                removed_before_anchor += ml;
            }
        })?;
        let mut by_day: std::collections::BTreeMap<u32, Vec<Entry>> = Default::default();
        for &(ts, ml) in &new_events {
            let Some(block) = codec::block_slot(ts) else {
                continue;
            };
            added += ml;
            day_delta.entry(days.day_of(ts)).or_default().1 += ml;
            if anchor.is_some_and(|(a, _)| ts < a) {
                added_before_anchor += ml;
            }
            by_day.entry(block).or_default().push(Entry {
                offset_ms: (ts - i64::from(block) * DAY_MS) as u32,
                ml,
            });
        }
        for (day, entries) in by_day {
            chunks.add(meter, &mut live, day, &entries)?;
        }
        chunks.seal_if_full(meter, &mut live)?;
        live.total_ml = (live.total_ml + added).saturating_sub(removed);
        // The newest event may have been removed: find the newest one left.
        if last_event.is_some_and(|t| (from_ms..to_ms).contains(&t)) || added > 0 {
            live.last_event_ms = chunks.newest(meter, &live)?;
        }
        for (key, value) in chunks.into_writes() {
            puts.push((key.to_vec(), value));
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
        puts.push((Live::key(meter).to_vec(), Some(live.encode())));
        if let Some((a, before)) = anchor {
            if removed_before_anchor > 0 || added_before_anchor > 0 {
                let before = (before + added_before_anchor).saturating_sub(removed_before_anchor);
                puts.push((
                    meter_key(meter, meter_field::ANCHOR).to_vec(),
                    Some(encode_anchor(a, before).to_vec()),
                ));
            }
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

#[cfg(test)]
#[path = "correct_tests.rs"]
mod tests;
