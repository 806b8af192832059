//! Samples that arrived before the system clock was synchronised (see `clock`).
//!
//! They are kept aside, durably, until the clock can place them: in memory for
//! this boot, and in the index under `U | seq` (a journal put, like any state), so
//! a restart finds them again. Once the clock is synchronised the next batch
//! places them (monotonic time plus the clock's offset) and deletes the entries in
//! the same record. Entries left by an earlier boot can no longer be placed by the
//! monotonic clock (it restarted with the machine): they are placed by the wall
//! clock as it read when they arrived, the behaviour of a clock-less system, and
//! that is logged.

use super::codec::{get_varint, prefix, put_varint};
use super::record::Op;
use super::{Sample, Store, StoreError};
use crate::clock;
use crate::meter::{MeterIdx, SampleValue};

/// What one `U` entry holds.
struct Entry {
    boot: String,
    /// Wall minus monotonic time when they arrived (unsynchronised): the fallback.
    offset_ms: i64,
    samples: Vec<(u16, i64, SampleValue)>,
}

pub(super) fn key(seq: u64) -> Vec<u8> {
    let mut k = vec![prefix::UNPLACED];
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Deletes every entry: all of them are placed together.
pub(super) fn delete_all() -> Op {
    Op::DelRange {
        from: key(0),
        to: key(u64::MAX),
    }
}

impl Store {
    /// Splits a batch: placed samples come back (with held ones placed first once
    /// the clock allows); unplaced ones become an op that keeps them.
    pub(super) fn place_or_hold(
        &self,
        samples: &[Sample],
        seq: u64,
    ) -> Result<(Vec<Sample>, Vec<Op>), StoreError> {
        let synced = clock::synchronized();
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let mut placed = Vec::with_capacity(samples.len() + held.len());
        let mut ops = Vec::new();
        if synced && !held.is_empty() {
            tracing::info!(
                "the clock is synchronised: placed {} samples that arrived before",
                held.len()
            );
            placed.extend(held.drain(..).map(|s| placed_now(&s)));
            ops.push(delete_all());
        }
        let mut hold = Vec::new();
        for s in samples {
            match (clock::is_unplaced(s.ts_ms), synced) {
                (false, _) => placed.push(*s),
                (true, true) => placed.push(placed_now(s)),
                (true, false) => hold.push(*s),
            }
        }
        if !hold.is_empty() {
            let entry = Entry {
                boot: clock::boot_id().unwrap_or_default(),
                offset_ms: clock::offset_ms(),
                samples: hold
                    .iter()
                    .map(|s| Ok((self.slot(s.meter)?.key, clock::mono_of(s.ts_ms), s.value)))
                    .collect::<Result<_, StoreError>>()?,
            };
            ops.push(Op::Put {
                key: key(seq),
                value: encode(&entry),
            });
            held.extend(hold);
        }
        Ok((placed, ops))
    }

    /// Whether samples wait for the clock.
    pub fn has_unplaced(&self) -> bool {
        !self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// At open: this boot's entries wait again; an earlier boot's are placed now.
    pub(super) fn load_unplaced(&self) -> Result<(), StoreError> {
        let boot = clock::boot_id().unwrap_or_default();
        let mut earlier = Vec::new();
        let mut earlier_keys = Vec::new();
        let mut held = Vec::new();
        for kv in self.data()?.scan_prefix([prefix::UNPLACED]) {
            let (k, v) = kv?;
            let Some(entry) = decode(&v) else {
                tracing::error!("an entry of samples waiting for the clock is damaged; skipped");
                continue;
            };
            let this_boot = entry.boot == boot && !boot.is_empty();
            if !this_boot {
                earlier_keys.push(k.to_vec());
            }
            for (key, mono, value) in entry.samples {
                let Some(meter) = self.meters.iter().position(|m| m.key == key) else {
                    continue;
                };
                let (meter, ts_ms) = match this_boot {
                    true => (meter as MeterIdx, clock::UNPLACED_BASE + mono),
                    false => (meter as MeterIdx, mono + entry.offset_ms),
                };
                let sample = Sample {
                    meter,
                    ts_ms,
                    value,
                };
                if this_boot {
                    held.push(sample);
                } else {
                    earlier.push(sample);
                }
            }
        }
        if !earlier_keys.is_empty() {
            tracing::warn!(
                "{} samples arrived before the clock was synchronised in an earlier boot, and \
                 the power went before it was: they are placed by the clock as it read then",
                earlier.len()
            );
            let mut journal = self.journal_lock();
            let (mut ops, positions) = self.resolve(&earlier)?;
            ops.extend(earlier_keys.into_iter().map(|key| Op::Del { key }));
            self.append_and_apply(&mut journal, &ops)?;
            self.remember(positions);
        }
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(held);
        Ok(())
    }
}

fn placed_now(s: &Sample) -> Sample {
    Sample {
        ts_ms: clock::place(s.ts_ms),
        ..*s
    }
}

fn encode(e: &Entry) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, e.boot.len() as u64);
    out.extend_from_slice(e.boot.as_bytes());
    out.extend_from_slice(&e.offset_ms.to_be_bytes());
    put_varint(&mut out, e.samples.len() as u64);
    for (meter, mono, value) in &e.samples {
        out.extend_from_slice(&meter.to_be_bytes());
        out.extend_from_slice(&mono.to_be_bytes());
        let (tag, v) = match value {
            SampleValue::Liters(l) => (0u8, *l),
            SampleValue::Counter(c) => (1u8, *c),
            SampleValue::Reading(r) => (2u8, *r),
        };
        out.push(tag);
        out.extend_from_slice(&v.to_be_bytes());
    }
    out
}

fn decode(b: &[u8]) -> Option<Entry> {
    let mut pos = 0;
    let n = usize::try_from(get_varint(b, &mut pos)?).ok()?;
    let boot = String::from_utf8(b.get(pos..pos.checked_add(n)?)?.to_vec()).ok()?;
    pos += n;
    let word = |pos: &mut usize| -> Option<[u8; 8]> {
        let w = b.get(*pos..*pos + 8)?.try_into().ok()?;
        *pos += 8;
        Some(w)
    };
    let offset_ms = i64::from_be_bytes(word(&mut pos)?);
    let count = get_varint(b, &mut pos)?;
    let mut samples = Vec::new();
    for _ in 0..count {
        let meter = u16::from_be_bytes(b.get(pos..pos + 2)?.try_into().ok()?);
        pos += 2;
        let mono = i64::from_be_bytes(word(&mut pos)?);
        let tag = *b.get(pos)?;
        pos += 1;
        let v = f64::from_be_bytes(word(&mut pos)?);
        let value = match tag {
            0 => SampleValue::Liters(v),
            1 => SampleValue::Counter(v),
            _ => SampleValue::Reading(v),
        };
        samples.push((meter, mono, value));
    }
    Some(Entry {
        boot,
        offset_ms,
        samples,
    })
}
