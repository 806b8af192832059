//! The forward queue: every stored event, in order, waiting to be sent to an
//! external InfluxDB or VictoriaMetrics by the `forward` task.
//!
//! Entries live in the same `data` tree as the events (`F | id u64 BE` → meter key,
//! time, milliliters; the id comes from the journal record, `apply::record_id`) and
//! are written in the same `sled::Batch` as the events they copy, so a crash can never store an event without queueing it, or queue one that
//! was not stored. Entries are removed only when the target acknowledged them
//! (at-least-once). This file does no networking and knows no line protocol.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use super::codec::prefix;
use super::record::Op;
use super::{Store, StoreError};
use crate::meter::MeterIdx;

/// Queue bookkeeping kept in memory; the entries themselves are in the tree.
#[derive(Debug, Default)]
pub(super) struct Queue {
    enabled: AtomicBool,
    backlog: AtomicU64,
}

/// One queued event, resolved to a configured meter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueuedEvent {
    pub meter: MeterIdx,
    pub ts_ms: i64,
    pub ml: u64,
}

/// Up to `max` queued events, oldest first, and the sequence number to acknowledge.
#[derive(Debug, Default)]
pub struct Peeked {
    /// Each event with its queue number.
    pub events: Vec<(u64, QueuedEvent)>,
    /// Entries of meters that are no longer configured (skipped, but acknowledged too).
    pub unknown_meter: u64,
    /// The last sequence number covered; `None` when the queue is empty.
    pub through: Option<u64>,
}

impl Queue {
    /// Reads where the queue stands after a restart (or a rebuild).
    pub(super) fn count(&self, tree: &sled::Tree) -> Result<(), StoreError> {
        let n = tree.scan_prefix([prefix::FORWARD]).keys().count();
        self.backlog.store(n as u64, Relaxed);
        Ok(())
    }

    pub(super) fn is_enabled(&self) -> bool {
        self.enabled.load(Relaxed)
    }

    pub(super) fn committed(&self, n: u64) {
        self.backlog.fetch_add(n, Relaxed);
    }
}

impl Store {
    /// From now on every applied event is also queued for forwarding (off by default,
    /// so `import` and stores without `[forward]` queue nothing).
    pub fn enable_forwarding(&self) {
        self.forward.enabled.store(true, Relaxed);
    }

    /// Events stored but not yet acknowledged by the forward target.
    pub fn forward_backlog(&self) -> u64 {
        self.forward.backlog.load(Relaxed)
    }

    /// The oldest `max` queued events; nothing is removed.
    pub fn forward_peek(&self, max: usize) -> Result<Peeked, StoreError> {
        let mut out = Peeked::default();
        for kv in self.data()?.scan_prefix([prefix::FORWARD]).take(max) {
            let (k, v) = kv?;
            let seq = seq_of(&k);
            out.through = seq.or(out.through);
            let Some((meter_key, ts_ms, ml)) = decode(&v) else {
                out.unknown_meter += 1;
                continue;
            };
            match self.meters.iter().position(|m| m.key == meter_key) {
                Some(i) => out.events.push((
                    seq.unwrap_or(0),
                    QueuedEvent {
                        meter: i as MeterIdx,
                        ts_ms,
                        ml,
                    },
                )),
                None => out.unknown_meter += 1,
            }
        }
        Ok(out)
    }

    /// Removes every queued entry up to and including `through` (the target took them).
    /// Journaled without waiting for a sync: a lost acknowledgement only sends
    /// those events again (at least once), and the next sync covers it anyway.
    pub fn forward_ack(&self, through: u64) -> Result<(), StoreError> {
        let (from, to) = (entry_key(0), entry_key(through));
        let n = self.data()?.range(from..=to).keys().count() as u64;
        let op = Op::DelRange {
            from: from.to_vec(),
            to: to.to_vec(),
        };
        self.write_ops(|_| vec![op], false)?;
        let _ = self
            .forward
            .backlog
            .fetch_update(Relaxed, Relaxed, |b| Some(b.saturating_sub(n)));
        Ok(())
    }
}

pub(super) fn entry_key(seq: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = prefix::FORWARD;
    k[1..9].copy_from_slice(&seq.to_be_bytes());
    k
}

fn seq_of(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.get(1..9)?.try_into().ok()?))
}

pub(super) fn encode(meter: u16, ts_ms: i64, ml: u64) -> [u8; 18] {
    let mut v = [0u8; 18];
    v[0..2].copy_from_slice(&meter.to_be_bytes());
    v[2..10].copy_from_slice(&ts_ms.to_be_bytes());
    v[10..18].copy_from_slice(&ml.to_be_bytes());
    v
}

fn decode(v: &[u8]) -> Option<(u16, i64, u64)> {
    let b: &[u8; 18] = v.try_into().ok()?;
    Some((
        u16::from_be_bytes([b[0], b[1]]),
        i64::from_be_bytes(b[2..10].try_into().ok()?),
        u64::from_be_bytes(b[10..18].try_into().ok()?),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meter::{Sample, SampleValue};

    fn store(dir: &std::path::Path) -> Store {
        let meters = vec![crate::config::builtin_defaults().meters[0].clone()];
        Store::open(dir, 1 << 20, chrono_tz::UTC, &meters).unwrap()
    }

    fn liters(ts_ms: i64, l: f64) -> Sample {
        Sample {
            meter: 0,
            ts_ms,
            value: SampleValue::Liters(l),
        }
    }

    #[test]
    fn nothing_is_queued_while_forwarding_is_off() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        s.apply(&[liters(1_000, 1.0)]).unwrap();
        assert_eq!(s.forward_backlog(), 0);
        assert!(s.forward_peek(10).unwrap().through.is_none());
    }

    #[test]
    fn queued_events_come_out_in_order_and_leave_only_when_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        s.enable_forwarding();
        s.apply(&[liters(1_000, 1.0), liters(2_000, 2.5)]).unwrap();
        s.apply(&[liters(3_000, 1.0)]).unwrap();
        assert_eq!(s.forward_backlog(), 3);
        let p = s.forward_peek(2).unwrap();
        let got: Vec<(i64, u64)> = p.events.iter().map(|(_, e)| (e.ts_ms, e.ml)).collect();
        assert_eq!(got, [(1_000, 1_000), (2_000, 2_500)]);
        assert_eq!(
            s.forward_peek(2).unwrap().events.len(),
            2,
            "peek removes nothing"
        );
        s.forward_ack(p.through.unwrap()).unwrap();
        assert_eq!(s.forward_backlog(), 1);
        let rest = s.forward_peek(10).unwrap();
        assert_eq!(rest.events[0].1.ts_ms, 3_000);
    }

    #[test]
    fn the_queue_survives_a_restart_and_keeps_numbering_after_it() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = store(dir.path());
            s.enable_forwarding();
            s.apply(&[liters(1_000, 1.0), liters(2_000, 1.0)]).unwrap();
            s.sync().unwrap();
        }
        let s = store(dir.path());
        s.enable_forwarding();
        assert_eq!(s.forward_backlog(), 2);
        s.apply(&[liters(3_000, 1.0)]).unwrap();
        let all: Vec<i64> = s
            .forward_peek(10)
            .unwrap()
            .events
            .iter()
            .map(|(_, e)| e.ts_ms)
            .collect();
        assert_eq!(all, [1_000, 2_000, 3_000]);
    }

    #[test]
    fn counter_baselines_and_zero_steps_are_not_queued() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        s.enable_forwarding();
        let c = |ts, v| Sample {
            meter: 0,
            ts_ms: ts,
            value: SampleValue::Counter(v),
        };
        s.apply(&[c(1_000, 100.0), c(2_000, 100.0), c(3_000, 104.0)])
            .unwrap();
        // The 4 L rise is spread over its second as four 1 L events.
        let p = s.forward_peek(10).unwrap();
        assert_eq!(p.events.len(), 4);
        assert_eq!(p.events.iter().map(|e| e.1.ml).sum::<u64>(), 4_000);
        assert!(p
            .events
            .iter()
            .all(|e| e.1.ts_ms > 2_000 && e.1.ts_ms <= 3_000));
    }
}
