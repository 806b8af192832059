//! The meter reading: "the physical meter showed m³ at a time", from the config or
//! from the dashboard's form, and the liters before that time, which do not move it.

use super::codec::{meter_field, meter_key};
use super::record::Op;
use super::{MeterSlot, Store, StoreError};
use crate::meter::MeterIdx;

/// "The meter showed `m3` at `anchor_ms`" (`None`: at the start of the history).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReadingBase {
    pub m3: f64,
    pub anchor_ms: Option<i64>,
}

impl MeterSlot {
    pub(super) fn reading(&self) -> ReadingBase {
        match self.reading.read() {
            Ok(r) => *r,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    pub(super) fn anchor_ms(&self) -> Option<i64> {
        self.reading().anchor_ms
    }

    /// Counts what the reading engine did with one value, and logs what the owner
    /// should know (a re-anchored baseline, a reboot), once each.
    pub(super) fn count(&self, step: &super::readings::Step, meter: MeterIdx, ts_ms: i64) {
        use super::readings::Outcome;
        use std::sync::atomic::Ordering::Relaxed;
        let slot = match step.outcome {
            Outcome::Decrease => 0,
            Outcome::Jump => 1,
            Outcome::Stale => 2,
            Outcome::Reanchored => {
                self.reanchored.fetch_add(1, Relaxed);
                tracing::warn!(meter, ts_ms, "several readings in a row agree on a value below the meter's baseline: the baseline was a misread and moves down to them (no water is taken back)");
                return;
            }
            Outcome::Reboot => {
                tracing::info!(meter, ts_ms, "the meter's counter restarted from 0 (its sender rebooted); counting on from its new value");
                return;
            }
            Outcome::Baseline | Outcome::Water => return,
        };
        self.ignored[slot].fetch_add(1, Relaxed);
    }
}

impl MeterSlot {
    /// The newest exchange at or before `ts_ms`.
    pub(super) fn exchange_before(&self, ts_ms: i64) -> Option<crate::config::Exchange> {
        let list = match self.exchanges.read() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        list.iter().rev().find(|x| x.at_ms <= ts_ms).copied()
    }
}

impl Store {
    /// Exchanges recorded on the dashboard for the meter with key `key`.
    pub(super) fn stored_exchanges(
        &self,
        key: u16,
    ) -> Result<Vec<crate::config::Exchange>, StoreError> {
        let Some(v) = self.data()?.get(meter_key(key, meter_field::EXCHANGES))? else {
            return Ok(Vec::new());
        };
        Ok(v.chunks_exact(16)
            .map(|c| crate::config::Exchange {
                at_ms: i64::from_be_bytes(c[0..8].try_into().unwrap_or_default()),
                m3: f64::from_be_bytes(c[8..16].try_into().unwrap_or_default()),
            })
            .collect())
    }

    /// "The meter was exchanged at `at_ms`; the new one showed `m3`", for a meter
    /// whose sensor reads the register: its readings count from `m3` from then on.
    /// (A pulse meter's exchange is a reading set at that time: `set_reading`.)
    pub fn record_exchange(&self, meter: MeterIdx, at_ms: i64, m3: f64) -> Result<(), StoreError> {
        let slot = self.slot(meter)?;
        let mut list = self.stored_exchanges(slot.key)?;
        list.push(crate::config::Exchange { at_ms, m3 });
        let mut value = Vec::with_capacity(16 * list.len());
        for x in &list {
            value.extend_from_slice(&x.at_ms.to_be_bytes());
            value.extend_from_slice(&x.m3.to_be_bytes());
        }
        let key = meter_key(slot.key, meter_field::EXCHANGES).to_vec();
        self.write_ops(|_| vec![Op::Put { key, value }], true)?;
        if let Ok(mut all) = slot.exchanges.write() {
            all.push(crate::config::Exchange { at_ms, m3 });
            all.sort_by_key(|x| x.at_ms);
        }
        Ok(())
    }

    /// The ranges `(from, to]` of the meter whose events were interpolated (a rise
    /// spread over more than an hour) and that overlap `[from_ms, to_ms)`.
    pub fn interpolated(
        &self,
        meter: MeterIdx,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        let key = self.slot(meter)?.key;
        let mut p = vec![super::codec::prefix::INTERPOLATED];
        p.extend_from_slice(&key.to_be_bytes());
        Ok(self
            .scan_raw(&p)?
            .into_iter()
            .filter_map(|(k, v)| {
                let from = i64::from_be_bytes(k.get(3..11)?.try_into().ok()?);
                let to = i64::from_be_bytes(v.get(0..8)?.try_into().ok()?);
                Some((from, to))
            })
            .filter(|&(from, to)| from < to_ms && to >= from_ms)
            .collect())
    }

    /// The alarm flags the meter itself reports now (a radio meter's telegram).
    pub fn meter_alarms(&self, meter: MeterIdx) -> Result<Vec<String>, StoreError> {
        let key = meter_key(self.slot(meter)?.key, meter_field::ALARMS);
        Ok(self
            .data()?
            .get(key)?
            .map(|v| {
                String::from_utf8_lossy(&v)
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The meter reports these alarm flags from now on (empty: none), through the
    /// journal; nothing is written when they did not change.
    pub fn set_meter_alarms(&self, meter: MeterIdx, flags: &[String]) -> Result<(), StoreError> {
        if self.meter_alarms(meter)? == flags {
            return Ok(());
        }
        let key = meter_key(self.slot(meter)?.key, meter_field::ALARMS).to_vec();
        let value = flags.join("\n").into_bytes();
        self.write_ops(|_| vec![Op::Put { key, value }], true)?;
        Ok(())
    }

    /// Values the reading engine ignored since the start, by reason (`decrease`,
    /// `jump`, `stale`), and how often the baseline moved down to agreeing readings.
    pub fn readings_ignored(&self, meter: MeterIdx) -> ([(&'static str, u64); 3], u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let Ok(slot) = self.slot(meter) else {
            return ([("decrease", 0), ("jump", 0), ("stale", 0)], 0);
        };
        (
            [
                ("decrease", slot.ignored[0].load(Relaxed)),
                ("jump", slot.ignored[1].load(Relaxed)),
                ("stale", slot.ignored[2].load(Relaxed)),
            ],
            slot.reanchored.load(Relaxed),
        )
    }
}

impl Store {
    /// A reading set on the dashboard, if the config has not changed since (an
    /// edited config wins: the owner changed it on purpose).
    pub(super) fn reading_override(
        &self,
        key: u16,
        configured: ReadingBase,
    ) -> Result<Option<ReadingBase>, StoreError> {
        let k = meter_key(key, meter_field::READING_OVERRIDE);
        let Some(v) = self.data()?.get(k)? else {
            return Ok(None);
        };
        let decoded = <[u8; 32]>::try_from(v.as_ref()).ok().map(|b| {
            let f = |i: usize| <[u8; 8]>::try_from(&b[i..i + 8]).unwrap_or_default();
            let set = ReadingBase {
                m3: f64::from_be_bytes(f(0)),
                anchor_ms: Some(i64::from_be_bytes(f(8))),
            };
            let cfg_anchor = i64::from_be_bytes(f(24));
            let was = ReadingBase {
                m3: f64::from_be_bytes(f(16)),
                anchor_ms: (cfg_anchor != i64::MIN).then_some(cfg_anchor),
            };
            (set, was)
        });
        match decoded {
            Some((set, was)) if was == configured => Ok(Some(set)),
            _ => {
                self.data()?.remove(k)?;
                Ok(None)
            }
        }
    }

    /// "The meter shows `m3` now (at `at_ms`)": from then on the reading follows the
    /// liters counted after `at_ms`. Called only by the writer task.
    pub fn set_reading(&self, meter: MeterIdx, m3: f64, at_ms: i64) -> Result<(), StoreError> {
        let slot = self.slot(meter)?;
        let op = Op::SetReading {
            meter: slot.key,
            m3,
            at_ms,
            was_m3: slot.configured.m3,
            was_anchor_ms: slot.configured.anchor_ms.unwrap_or(i64::MIN),
        };
        self.write_ops(|_| vec![op], false)?;
        if let Ok(mut r) = slot.reading.write() {
            *r = ReadingBase {
                m3,
                anchor_ms: Some(at_ms),
            };
        }
        Ok(())
    }

    /// Computes "liters before reading_set_at" for meters whose anchor is new or moved.
    pub(super) fn ensure_anchors(&self) -> Result<(), StoreError> {
        for (idx, slot) in self.meters.iter().enumerate() {
            let key = meter_key(slot.key, meter_field::ANCHOR);
            let Some(anchor) = slot.anchor_ms() else {
                self.data()?.remove(key)?;
                continue;
            };
            let stored = self.data()?.get(key)?.and_then(|v| decode_anchor(&v));
            if stored.is_some_and(|(a, _)| a == anchor) {
                continue;
            }
            let before = self.ml_between(idx as MeterIdx, 0, anchor)?;
            self.data()?
                .insert(key, &encode_anchor(anchor, before)[..])?;
        }
        Ok(())
    }
}

pub(super) fn encode_anchor(anchor_ms: i64, before_ml: u64) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[0..8].copy_from_slice(&anchor_ms.to_be_bytes());
    v[8..16].copy_from_slice(&before_ml.to_be_bytes());
    v
}

pub(super) fn decode_anchor(v: &[u8]) -> Option<(i64, u64)> {
    let b: [u8; 16] = v.try_into().ok()?;
    Some((
        i64::from_be_bytes(b[0..8].try_into().ok()?),
        u64::from_be_bytes(b[8..16].try_into().ok()?),
    ))
}
