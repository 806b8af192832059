//! Reads: totals, exact sums over any span, bucketed usage and raw events.
//!
//! Long spans are built from the day rollup plus at most two partial days of raw
//! events; hours and minutes from the event chunks (`chunks`), read from the chunk
//! that holds the range's start to the one that holds its end. A dashboard's read
//! touches a few thousand small values at most, however long the history is.

use chrono::Datelike;

use super::apply::read_live;
use super::chunks::{chunk_key, parse_chunk_key};
use super::codec::{self, meter_field, meter_key, prefix, series_key, DAY_MS};
use super::{read_i64, Store, StoreError};
use crate::buckets::{self, BucketError, Step};
use crate::meter::MeterIdx;

/// Bucketed usage: `buckets[i]` covers `[bounds[i], bounds[i + 1])`.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    pub bounds: Vec<i64>,
    pub ml: Vec<u64>,
}

impl Usage {
    pub fn total_ml(&self) -> u64 {
        self.ml.iter().sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Range(#[from] BucketError),
}

impl From<sled::Error> for QueryError {
    fn from(e: sled::Error) -> Self {
        QueryError::Store(StoreError::Db(e))
    }
}

impl Store {
    /// Every configured meter's total, by meter index.
    pub fn totals_ml(&self) -> Result<Vec<u64>, StoreError> {
        (0..self.meters.len())
            .map(|i| self.total_ml(i as MeterIdx))
            .collect()
    }

    pub fn total_ml(&self, meter: MeterIdx) -> Result<u64, StoreError> {
        Ok(read_live(self, self.slot(meter)?.key)?.total_ml)
    }

    /// What the physical meter shows now, in m³.
    /// What the physical meter shows. For a meter with an absolute source (a camera
    /// reader, a radio meter) that is the sensor's last accepted reading; for the
    /// others the configured or dashboard-set reading plus the liters since.
    pub fn reading_m3(&self, meter: MeterIdx) -> Result<f64, StoreError> {
        let slot = self.slot(meter)?;
        let sensor = self
            .data()?
            .get(meter_key(slot.key, meter_field::READING))?
            .and_then(|v| super::readings::decode(&v))
            .and_then(|p| p.last);
        if let Some((liters, at)) = sensor {
            // An exchange since the last reading: the new meter shows its start.
            return Ok(match slot.exchange_before(i64::MAX) {
                Some(x) if x.at_ms > at => x.m3,
                _ => liters / 1000.0,
            });
        }
        let base = slot.reading();
        Ok(base.m3 + self.reading_ml(meter)? as f64 / 1e6)
    }

    /// Milliliters that move the meter reading: everything since `reading_set_at`
    /// (or all of history when it is not set).
    pub fn reading_ml(&self, meter: MeterIdx) -> Result<u64, StoreError> {
        let slot = self.slot(meter)?;
        // The total and the liters before the anchor move together.
        let _gate = self.read_gate();
        let total = self.total_ml(meter)?;
        let before = match slot.anchor_ms() {
            Some(_) => self
                .data()?
                .get(meter_key(slot.key, meter_field::ANCHOR))?
                .and_then(|v| super::decode_anchor(&v))
                .map_or(0, |(_, b)| b),
            None => 0,
        };
        Ok(total.saturating_sub(before))
    }

    pub fn last_event_ms(&self, meter: MeterIdx) -> Result<Option<i64>, StoreError> {
        Ok(read_live(self, self.slot(meter)?.key)?.last_event_ms)
    }

    /// The time of the meter's oldest stored event.
    pub fn first_event_ms(&self, meter: MeterIdx) -> Result<Option<i64>, StoreError> {
        let key = self.slot(meter)?.key;
        let mut first = None;
        self.for_each_block(key, i64::MIN, i64::MAX, |day, block| {
            first = codec::block_entries(block)
                .next()
                .map(|e| i64::from(day) * DAY_MS + i64::from(e.offset_ms));
            first.is_none()
        })?;
        Ok(first)
    }

    /// The last time any sample arrived for the meter, even one worth 0 liters.
    pub fn last_seen_ms(&self, meter: MeterIdx) -> Result<Option<i64>, StoreError> {
        let seen = self.get_i64_field(meter, meter_field::LAST_SEEN_MS)?;
        Ok(seen.max(self.last_event_ms(meter)?))
    }

    fn get_i64_field(&self, meter: MeterIdx, field: u8) -> Result<Option<i64>, StoreError> {
        let v = self.data()?.get(meter_key(self.slot(meter)?.key, field))?;
        Ok(v.map(|v| read_i64(&v)).filter(|&t| t != i64::MIN))
    }

    /// Exact milliliters in `[from_ms, to_ms)`: whole local days from the day
    /// rollup, the ragged ends from the events.
    pub fn ml_between(&self, meter: MeterIdx, from_ms: i64, to_ms: i64) -> Result<u64, StoreError> {
        self.ml_between_key(self.slot(meter)?.key, from_ms, to_ms)
    }

    /// [`Store::ml_between`] by the meter's stable key (replay knows no config order).
    pub(super) fn ml_between_key(
        &self,
        meter: u16,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<u64, StoreError> {
        if to_ms <= from_ms {
            return Ok(0);
        }
        let start_of =
            |n: i64| buckets::date_of_day_number(n).map(|d| buckets::day_start(self.tz, d));
        let mut first = buckets::local_day_number(self.tz, from_ms);
        if start_of(first).is_some_and(|s| s < from_ms) {
            first += 1;
        }
        let last = buckets::local_day_number(self.tz, to_ms);
        let (Some(body_from), Some(body_to)) = (start_of(first), start_of(last)) else {
            return self.events_ml(meter, from_ms, to_ms);
        };
        if first >= last || body_from < from_ms || body_to > to_ms {
            return self.events_ml(meter, from_ms, to_ms);
        }
        let head = self.events_ml(meter, from_ms, body_from)?;
        let tail = self.events_ml(meter, body_to, to_ms)?;
        let mut body = 0;
        let bias = codec::DAY_BIAS;
        self.scan_series(prefix::DAYS, meter, first + bias, last + bias, |_, ml| {
            body += ml
        })?;
        Ok(head + body + tail)
    }

    fn events_ml(&self, meter: u16, from_ms: i64, to_ms: i64) -> Result<u64, StoreError> {
        let mut sum = 0;
        self.for_each_event_key(meter, from_ms, to_ms, |_, ml| sum += ml)?;
        Ok(sum)
    }

    /// Calls `f(ts_ms, ml)` for every event in `[from_ms, to_ms)`, in time order.
    pub fn for_each_event(
        &self,
        meter: MeterIdx,
        from_ms: i64,
        to_ms: i64,
        f: impl FnMut(i64, u64),
    ) -> Result<(), StoreError> {
        self.for_each_event_key(self.slot(meter)?.key, from_ms, to_ms, f)
    }

    /// The same until `f` says stop (returns false).
    pub fn for_each_event_while(
        &self,
        meter: MeterIdx,
        from_ms: i64,
        to_ms: i64,
        f: impl FnMut(i64, u64) -> bool,
    ) -> Result<(), StoreError> {
        self.events_while(self.slot(meter)?.key, from_ms, to_ms, f)
    }

    fn for_each_event_key(
        &self,
        key: u16,
        from_ms: i64,
        to_ms: i64,
        mut f: impl FnMut(i64, u64),
    ) -> Result<(), StoreError> {
        self.events_while(key, from_ms, to_ms, |ts, ml| {
            f(ts, ml);
            true
        })
    }

    fn events_while(
        &self,
        key: u16,
        from_ms: i64,
        to_ms: i64,
        mut f: impl FnMut(i64, u64) -> bool,
    ) -> Result<(), StoreError> {
        let mut stopped = None;
        self.for_each_block(key, from_ms, to_ms, |day, block| {
            let base = i64::from(day) * DAY_MS;
            let mut n = 0;
            for e in codec::block_entries(block) {
                let ts = base + i64::from(e.offset_ms);
                if ts >= to_ms {
                    return false;
                }
                n += 1;
                if ts >= from_ms && !f(ts, e.ml) {
                    return false;
                }
            }
            if let Err(e) = super::budget::charge(n) {
                stopped = Some(e);
                return false;
            }
            true
        })?;
        stopped.map_or(Ok(()), Err)
    }

    /// Calls `f(day, block)` in time order for each chunk of meter `key` that may
    /// hold events in `[from_ms, to_ms)`, and for its tail, until `f` says stop.
    /// Starts at the chunk that holds `from_ms`: an hour of a dense day reads that
    /// hour's chunks, not the day's.
    ///
    /// Read one UTC day at a time under the read gate (a day's chunks and the tail
    /// agree: a sealed tail is never seen twice or missed), and `f` runs outside
    /// it, so a long read (an export of years) never holds up a write for longer
    /// than reading one day.
    fn for_each_block(
        &self,
        key: u16,
        from_ms: i64,
        to_ms: i64,
        mut f: impl FnMut(u32, &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        let last_ms = i64::from(u32::MAX) * DAY_MS + DAY_MS - 1;
        if to_ms <= from_ms || to_ms <= 0 || from_ms > last_ms {
            return Ok(());
        }
        let split = |t: i64| {
            let t = t.clamp(0, last_ms);
            (t.div_euclid(DAY_MS) as u32, t.rem_euclid(DAY_MS) as u32)
        };
        let ((d0, o0), (d1, o1)) = (split(from_ms), split(to_ms - 1));
        let events = self.events()?;
        let mut day = Some(d0);
        while let Some(d) = day.filter(|d| *d <= d1) {
            super::budget::check()?;
            let (blocks, next) = {
                let _gate = self.read_gate();
                let live = read_live(self, key)?;
                let tail = &live.tail;
                let tail_day = (!tail.is_empty()).then_some(tail.day);
                // The day to read: the next with chunks, or the tail's if earlier.
                let first_chunk = match events
                    .range(chunk_key(key, d, 0)..=chunk_key(key, d1, o1))
                    .next()
                {
                    Some(kv) => parse_chunk_key(&kv?.0).map(|(_, day, _)| day),
                    None => None,
                };
                let Some(d) = [first_chunk, tail_day.filter(|t| (d..=d1).contains(t))]
                    .into_iter()
                    .flatten()
                    .min()
                else {
                    break;
                };
                let lo_offset = if d == d0 {
                    match events
                        .range(chunk_key(key, d, 0)..=chunk_key(key, d, o0))
                        .next_back()
                    {
                        Some(kv) => parse_chunk_key(&kv?.0).map_or(0, |(_, _, start)| start),
                        None => 0,
                    }
                } else {
                    0
                };
                let hi_offset = if d == d1 { o1 } else { u32::MAX };
                let mut blocks: Vec<sled::IVec> = Vec::new();
                for kv in events.range(chunk_key(key, d, lo_offset)..=chunk_key(key, d, hi_offset))
                {
                    blocks.push(kv?.1);
                }
                if tail_day == Some(d) {
                    blocks.push(sled::IVec::from(tail.block.as_slice()));
                }
                ((d, blocks), d.checked_add(1))
            };
            let (d, blocks) = blocks;
            for block in &blocks {
                if !f(d, block) {
                    return Ok(());
                }
            }
            day = next;
        }
        Ok(())
    }

    /// Calls `f(day_start_ms, sums)` with the milliliters of each UTC hour of every
    /// UTC day in `[from_day, to_day)` that has events. A day's sums are kept and
    /// used again while its chunks are the same byte for byte (a 64-bit hash of
    /// them): a panel over a month decodes only the days that changed.
    pub fn hour_sums(
        &self,
        meter: MeterIdx,
        from_day: i64,
        to_day: i64,
        mut f: impl FnMut(i64, &[u64; 24]),
    ) -> Result<(), StoreError> {
        const HOUR: u32 = 3_600_000;
        let key = self.slot(meter)?.key;
        // One day's blocks at a time: hashed as they come, decoded only if the
        // day's sums are not kept.
        let mut day_blocks: Option<(u32, u64, Vec<Vec<u8>>)> = None;
        let mut finish = |day: u32, hash: u64, blocks: &[Vec<u8>]| {
            let kept = {
                let hours = self.hours.lock().unwrap_or_else(|e| e.into_inner());
                hours
                    .get(&(key, day))
                    .filter(|(h, _)| *h == hash)
                    .map(|(_, s)| *s)
            };
            let sums = match kept {
                Some(sums) => sums,
                None => {
                    let mut sums = [0u64; 24];
                    for block in blocks {
                        for e in codec::block_entries(block) {
                            sums[(e.offset_ms / HOUR).min(23) as usize] += e.ml;
                        }
                    }
                    let mut hours = self.hours.lock().unwrap_or_else(|e| e.into_inner());
                    if hours.len() >= HOUR_SUM_DAYS {
                        hours.clear();
                    }
                    hours.insert((key, day), (hash, sums));
                    sums
                }
            };
            f(i64::from(day) * DAY_MS, &sums);
        };
        self.for_each_block(
            key,
            from_day.saturating_mul(DAY_MS),
            to_day.saturating_mul(DAY_MS),
            |day, block| {
                match &mut day_blocks {
                    Some((d, hash, blocks)) if *d == day => {
                        *hash = hash.rotate_left(7) ^ block_hash(block);
                        blocks.push(block.to_vec());
                    }
                    _ => {
                        if let Some((d, hash, blocks)) = day_blocks.take() {
                            finish(d, hash, &blocks);
                        }
                        day_blocks = Some((day, block_hash(block), vec![block.to_vec()]));
                    }
                }
                true
            },
        )?;
        if let Some((d, hash, blocks)) = day_blocks {
            finish(d, hash, &blocks);
        }
        Ok(())
    }

    /// Calls `f(slot, ml)` for the rollup values of `meter` with slots in `[from, to)`.
    fn scan_series(
        &self,
        prefix: u8,
        key: u16,
        from: i64,
        to: i64,
        mut f: impl FnMut(u32, u64),
    ) -> Result<(), StoreError> {
        let (lo, hi) = range_keys(prefix, key, from, to);
        for kv in self.data()?.range(lo..hi) {
            let (k, v) = kv?;
            if let Some(slot) = codec::slot_of_key(&k) {
                f(slot, codec::read_varint_value(&v));
            }
        }
        Ok(())
    }

    /// Usage in local buckets of `step` covering `[from_ms, to_ms)` (see
    /// `buckets::boundaries`: the ends are widened to whole buckets).
    pub fn usage(
        &self,
        meter: MeterIdx,
        step: Step,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Usage, QueryError> {
        let bounds = buckets::boundaries(self.tz, step, from_ms, to_ms)?;
        let n = bounds.len() - 1;
        let mut ml = vec![0u64; n];
        let (first, last) = (bounds[0], bounds[n]);
        match step {
            Step::Minute => self.for_each_event(meter, first, last, |ts, v| {
                if let Some(b) = ml.get_mut(((ts - first) / 60_000) as usize) {
                    *b += v;
                }
            })?,
            Step::Hour => {
                let mut i = 0;
                self.for_each_event(meter, first, last, |ts, v| {
                    while i + 1 < n && ts >= bounds[i + 1] {
                        i += 1;
                    }
                    ml[i] += v;
                })?
            }
            Step::Day | Step::Month => {
                let first_day = buckets::local_day_number(self.tz, first);
                let last_day = buckets::local_day_number(self.tz, last);
                let first_month = month_index(first_day);
                let (lo, hi) = (first_day + codec::DAY_BIAS, last_day + codec::DAY_BIAS);
                self.scan_series(prefix::DAYS, self.slot(meter)?.key, lo, hi, |slot, v| {
                    let day = codec::day_of_slot(slot);
                    let i = match step {
                        Step::Day => day - first_day,
                        _ => month_index(day) - first_month,
                    };
                    if let Some(b) = usize::try_from(i).ok().and_then(|i| ml.get_mut(i)) {
                        *b += v;
                    }
                })?
            }
        }
        Ok(Usage { bounds, ml })
    }
}

fn month_index(day_number: i64) -> i64 {
    match buckets::date_of_day_number(day_number) {
        Some(d) => i64::from(d.year()) * 12 + i64::from(d.month0()),
        None => 0,
    }
}

/// Days whose hour sums are kept (24 sums and a hash each: about 220 bytes).
const HOUR_SUM_DAYS: usize = 1_024;

/// FNV-1a over a block's bytes, eight at a time.
fn block_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w))
            .wrapping_mul(0x100_0000_01b3)
            .rotate_left(29);
    }
    for &b in chunks.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// Key range `[lo, hi)` for slots `[from, to)` of one meter's series, clamped to u32.
fn range_keys(prefix: u8, meter: u16, from: i64, to: i64) -> ([u8; 7], [u8; 7]) {
    let clamp = |v: i64| v.clamp(0, i64::from(u32::MAX)) as u32;
    let lo = series_key(prefix, meter, clamp(from));
    let hi = if to > i64::from(u32::MAX) {
        series_key(prefix, meter.saturating_add(1), 0)
    } else {
        series_key(prefix, meter, clamp(to))
    };
    (lo, hi)
}
