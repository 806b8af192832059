//! Where events live in the index: chunks of bounded size and one small tail per
//! meter, so that storing a batch writes bytes in proportion to the batch, never
//! to the events the day already holds.
//!
//! - A meter's UTC day is a run of **chunks**, keyed `E | meter | day | start`,
//!   each an event block (`codec`) of at most [`CHUNK_BYTES`]. Chunk `k` holds
//!   events in `[start_k, start_k+1)`, in time order, so reading the keys in order
//!   reads the day in order. An event for a past moment goes into the chunk whose
//!   range holds it (splitting it when full): one chunk rewritten, not the day.
//! - The newest events of a meter are its **tail**, inside the meter's [`Live`]
//!   value (`M | meter | LIVE`) with its total and last event time. A pulse
//!   rewrites that one small value; every [`TAIL_BYTES`] the tail is sealed into
//!   the day's last chunk. The tail's events are at or after every chunk event of
//!   its day (its `floor`), so readers read a day's chunks, then the tail.
//!
//! Sizes: sled splits a tree node at 17 entries and stores a node of more than a
//! quarter segment (16 KiB at our 64 KiB segments) as a separate blob file that is
//! rewritten whole. Chunks of 768 bytes keep every node inline; a 128-byte tail
//! keeps the value a pulse rewrites small (docs/performance.md, "Wear").
//!
//! [`Chunks`] is the write side: a view of the tree plus the chunk writes of one
//! sled batch (an overlay), with the three moves (append to a tail, insert into
//! chunks, remove a range). Reads of whole ranges are in `query`.

use std::collections::BTreeMap;

use super::codec::{self, meter_field, meter_key, prefix, Entry};
use super::StoreError;

/// A chunk holds at most this many bytes (except a run of events at one
/// millisecond, which is never split).
pub const CHUNK_BYTES: usize = 768;
/// The tail is sealed into chunks once it holds more than this.
pub const TAIL_BYTES: usize = 128;

pub type ChunkKey = [u8; 11];

pub fn chunk_key(meter: u16, day: u32, start: u32) -> ChunkKey {
    let mut k = [0u8; 11];
    k[0] = prefix::EVENTS;
    k[1..3].copy_from_slice(&meter.to_be_bytes());
    k[3..7].copy_from_slice(&day.to_be_bytes());
    k[7..11].copy_from_slice(&start.to_be_bytes());
    k
}

/// `(meter, day, start)` of a chunk key; `None` for any other key.
pub fn parse_chunk_key(k: &[u8]) -> Option<(u16, u32, u32)> {
    if k.len() != 11 || k[0] != prefix::EVENTS {
        return None;
    }
    let meter = u16::from_be_bytes([k[1], k[2]]);
    let day = u32::from_be_bytes([k[3], k[4], k[5], k[6]]);
    let start = u32::from_be_bytes([k[7], k[8], k[9], k[10]]);
    Some((meter, day, start))
}

/// A meter's newest events: a block inside UTC day `day`, every event at or
/// after `floor` (the last chunk event of that day).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tail {
    pub day: u32,
    pub floor: u32,
    pub block: Vec<u8>,
}

impl Tail {
    pub fn is_empty(&self) -> bool {
        codec::block_entries(&self.block).next().is_none()
    }
}

/// What each batch of a meter's events changes, in one value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Live {
    pub total_ml: u64,
    pub last_event_ms: Option<i64>,
    pub tail: Tail,
}

const LIVE_VERSION: u8 = 1;

impl Live {
    pub fn key(meter: u16) -> [u8; 4] {
        meter_key(meter, meter_field::LIVE)
    }

    pub fn is_key(k: &[u8]) -> bool {
        k.len() == 4 && k[0] == prefix::METER && k[3] == meter_field::LIVE
    }

    /// `version u8 | total u64 | last event i64 (MIN: none) | tail day u32 | floor u32 | block`, BE.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(25 + self.tail.block.len());
        out.push(LIVE_VERSION);
        out.extend_from_slice(&self.total_ml.to_be_bytes());
        out.extend_from_slice(&self.last_event_ms.unwrap_or(i64::MIN).to_be_bytes());
        out.extend_from_slice(&self.tail.day.to_be_bytes());
        out.extend_from_slice(&self.tail.floor.to_be_bytes());
        out.extend_from_slice(&self.tail.block);
        out
    }

    /// A damaged or unknown value reads as `None`: the caller treats it as damage.
    pub fn decode(v: &[u8]) -> Option<Live> {
        if v.len() < 25 || v[0] != LIVE_VERSION {
            return None;
        }
        let u64_at = |i: usize| -> Option<u64> {
            Some(u64::from_be_bytes(v.get(i..i + 8)?.try_into().ok()?))
        };
        let u32_at = |i: usize| -> Option<u32> {
            Some(u32::from_be_bytes(v.get(i..i + 4)?.try_into().ok()?))
        };
        let last = u64_at(9)? as i64;
        Some(Live {
            total_ml: u64_at(1)?,
            last_event_ms: (last != i64::MIN).then_some(last),
            tail: Tail {
                day: u32_at(17)?,
                floor: u32_at(21)?,
                block: v[25..].to_vec(),
            },
        })
    }
}

/// Keys and values from [`Source::scan`].
pub type Scan<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>> + 'a>;

/// Reads sorted key ranges of the index (sled, or a map in the tests).
pub trait Source {
    /// Keys and values in `[lo, hi]`, ascending, or descending with `rev`.
    fn scan<'a>(&'a self, lo: &[u8], hi: &[u8], rev: bool) -> Scan<'a>;
}

impl Source for sled::Tree {
    fn scan<'a>(&'a self, lo: &[u8], hi: &[u8], rev: bool) -> Scan<'a> {
        let it = self.range(lo.to_vec()..=hi.to_vec()).map(|kv| {
            kv.map(|(k, v)| (k.to_vec(), v.to_vec()))
                .map_err(StoreError::from)
        });
        if rev {
            Box::new(it.rev())
        } else {
            Box::new(it)
        }
    }
}

/// One chunk as the writer sees it.
type Chunk = (u32, Vec<u8>);

/// The chunk writes of one sled batch over what the index holds.
pub struct Chunks<'s, S: Source + ?Sized> {
    source: &'s S,
    overlay: BTreeMap<ChunkKey, Option<Vec<u8>>>,
}

impl<'s, S: Source + ?Sized> Chunks<'s, S> {
    pub fn new(source: &'s S) -> Self {
        Chunks {
            source,
            overlay: BTreeMap::new(),
        }
    }

    /// The chunk writes, for the sled batch (`None`: delete).
    pub fn into_writes(self) -> BTreeMap<ChunkKey, Option<Vec<u8>>> {
        self.overlay
    }

    /// Adds sorted `entries` of UTC day `day`: onto the tail when they are its
    /// newest, otherwise into the day's chunks. A newer day seals the tail first.
    pub fn add(
        &mut self,
        meter: u16,
        live: &mut Live,
        day: u32,
        entries: &[Entry],
    ) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        if day > live.tail.day {
            self.seal(meter, &mut live.tail)?;
            let floor = self
                .last_of_day(meter, day)?
                .map_or(0, |(_, b)| codec::block_last_offset(&b).unwrap_or(0));
            live.tail = Tail {
                day,
                floor,
                block: Vec::new(),
            };
        }
        if day < live.tail.day {
            return self.insert(meter, day, entries);
        }
        let split = entries.partition_point(|e| e.offset_ms < live.tail.floor);
        if split > 0 {
            self.insert(meter, day, &entries[..split])?;
        }
        let mut newest = entries[split..].to_vec();
        if !newest.is_empty() {
            live.tail.block = codec::append_block(&live.tail.block, &mut newest);
        }
        Ok(())
    }

    /// Seals the tail when it outgrew [`TAIL_BYTES`].
    pub fn seal_if_full(&mut self, meter: u16, live: &mut Live) -> Result<(), StoreError> {
        if live.tail.block.len() > TAIL_BYTES {
            self.seal(meter, &mut live.tail)?;
        }
        Ok(())
    }

    /// Moves the tail's events into the day's chunks: into the last chunk while
    /// both fit in one, else as new chunks after it (a large tail, as an HTTP batch
    /// leaves, does not rewrite the chunk before it).
    pub fn seal(&mut self, meter: u16, tail: &mut Tail) -> Result<(), StoreError> {
        let entries = codec::decode_block(&tail.block);
        let tail_bytes = tail.block.len();
        tail.block.clear();
        let (Some(oldest), Some(newest)) = (
            entries.first().map(|e| e.offset_ms),
            entries.last().map(|e| e.offset_ms),
        ) else {
            return Ok(());
        };
        match self.last_of_day(meter, tail.day)? {
            // Events at the last chunk's final millisecond stay in that chunk: a
            // new chunk's key must lie above every event before it.
            Some((start, block))
                if block.len() + tail_bytes <= CHUNK_BYTES
                    || codec::block_last_offset(&block).is_none_or(|last| oldest <= last) =>
            {
                let mut all = codec::decode_block(&block);
                all.extend_from_slice(&entries);
                self.write_pieces(meter, tail.day, Some(start), &all);
            }
            _ => self.write_pieces(meter, tail.day, None, &entries),
        }
        tail.floor = tail.floor.max(newest);
        Ok(())
    }

    /// Inserts sorted `entries` into the chunks of `day` whose ranges hold them:
    /// each touched chunk is rewritten (split when full), the others stay.
    pub fn insert(&mut self, meter: u16, day: u32, entries: &[Entry]) -> Result<(), StoreError> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(());
        };
        let mut targets: Vec<Chunk> = Vec::new();
        targets.extend(self.at_or_before(meter, day, first.offset_ms)?);
        if let Some(after_first) = first.offset_ms.checked_add(1) {
            if after_first <= last.offset_ms {
                targets.extend(self.range(meter, day, after_first, last.offset_ms)?);
            }
        }
        if targets.is_empty() {
            // Everything lies before the day's first chunk (or the day has none):
            // join that chunk when it has room, so a day filled backwards does not
            // become one chunk per event.
            let room = |b: &Vec<u8>| b.len() + 3 * entries.len() <= CHUNK_BYTES;
            match self.first_after(meter, day, last.offset_ms)? {
                Some(next) if room(&next.1) => targets.push(next),
                _ => {
                    self.write_pieces(meter, day, None, entries);
                    return Ok(());
                }
            }
        }
        let mut routed: Vec<Vec<Entry>> = vec![Vec::new(); targets.len()];
        let mut j = 0;
        for e in entries {
            while j + 1 < targets.len() && targets[j + 1].0 <= e.offset_ms {
                j += 1;
            }
            routed[j].push(*e);
        }
        for ((start, block), mut add) in targets.into_iter().zip(routed) {
            let Some(first_added) = add.first().map(|e| e.offset_ms) else {
                continue;
            };
            let merged = codec::append_block(&block, &mut add);
            if merged.len() <= CHUNK_BYTES && first_added >= start {
                self.put(meter, day, start, merged);
            } else {
                // Full, or events before its start: rewritten as pieces; the
                // first keeps the key unless events now begin earlier.
                self.delete(meter, day, start);
                let all = codec::decode_block(&merged);
                let key = start.min(first_added);
                self.write_pieces(meter, day, Some(key), &all);
            }
        }
        Ok(())
    }

    /// Removes the events of `meter` in `[from_ms, to_ms)` from its chunks and its
    /// tail, calling `removed(ts_ms, ml)` for each. Reads only the chunks that
    /// exist in the range: the cost follows the data, not the calendar.
    pub fn remove(
        &mut self,
        meter: u16,
        live: &mut Live,
        from_ms: i64,
        to_ms: i64,
        mut removed: impl FnMut(i64, u64),
    ) -> Result<(), StoreError> {
        if to_ms <= from_ms {
            return Ok(());
        }
        let day_ms = codec::DAY_MS;
        let clamp = |t: i64| t.clamp(0, i64::from(u32::MAX) * day_ms + day_ms - 1);
        let (from, last) = (clamp(from_ms), clamp(to_ms - 1));
        let (d0, o0) = (
            (from.div_euclid(day_ms)) as u32,
            from.rem_euclid(day_ms) as u32,
        );
        let (d1, o1) = (
            (last.div_euclid(day_ms)) as u32,
            last.rem_euclid(day_ms) as u32,
        );
        let lo = match self.at_or_before(meter, d0, o0)? {
            Some((start, _)) => chunk_key(meter, d0, start),
            None => chunk_key(meter, d0, 0),
        };
        let hi = chunk_key(meter, d1, o1);
        // Streamed: a range over years of history is read chunk by chunk, and only
        // the chunks that change are kept for the batch.
        let mut changes: Vec<(u32, u32, Option<Vec<u8>>)> = Vec::new();
        self.for_each_merged(&lo, &hi, |key, block| {
            let Some((_, day, start)) = parse_chunk_key(key) else {
                return;
            };
            let base = i64::from(day) * day_ms;
            let (kept, gone) = split_out(block, base, from_ms, to_ms);
            if gone.is_empty() {
                return;
            }
            for e in &gone {
                removed(base + i64::from(e.offset_ms), e.ml);
            }
            let value = (!kept.is_empty()).then(|| codec::encode_block(&kept));
            changes.push((day, start, value));
        })?;
        for (day, start, value) in changes {
            match value {
                Some(block) => self.put(meter, day, start, block),
                None => self.delete(meter, day, start),
            }
        }
        let base = i64::from(live.tail.day) * day_ms;
        let (kept, gone) = split_out(&live.tail.block, base, from_ms, to_ms);
        if !gone.is_empty() {
            for e in &gone {
                removed(base + i64::from(e.offset_ms), e.ml);
            }
            live.tail.block = if kept.is_empty() {
                Vec::new()
            } else {
                codec::encode_block(&kept)
            };
        }
        Ok(())
    }

    /// The newest event of `meter` as this batch leaves it: the tail's, or the
    /// newest chunk's.
    pub fn newest(&self, meter: u16, live: &Live) -> Result<Option<i64>, StoreError> {
        let at = |day: u32, offset: u32| i64::from(day) * codec::DAY_MS + i64::from(offset);
        let in_tail = (!live.tail.is_empty())
            .then(|| codec::block_last_offset(&live.tail.block))
            .flatten()
            .map(|last| at(live.tail.day, last));
        let lo = chunk_key(meter, 0, 0);
        let hi = chunk_key(meter, u32::MAX, u32::MAX);
        let in_chunks = self.edge(&lo, &hi, true)?.and_then(|(k, block)| {
            let (_, day, _) = parse_chunk_key(&k)?;
            Some(at(day, codec::block_last_offset(&block)?))
        });
        Ok(in_tail.max(in_chunks))
    }

    fn put(&mut self, meter: u16, day: u32, start: u32, block: Vec<u8>) {
        self.overlay
            .insert(chunk_key(meter, day, start), Some(block));
    }

    fn delete(&mut self, meter: u16, day: u32, start: u32) {
        self.overlay.insert(chunk_key(meter, day, start), None);
    }

    /// Writes sorted `entries` as chunks of at most [`CHUNK_BYTES`]: the first
    /// under `first_key` (at or before its first event) or its first event, each
    /// further one under its own first event. Pieces are cut only where the time
    /// moves on, so every key is unique and every event lies below the next key.
    fn write_pieces(&mut self, meter: u16, day: u32, first_key: Option<u32>, entries: &[Entry]) {
        let Some(first) = entries.first() else {
            return;
        };
        let mut key = first_key.unwrap_or(first.offset_ms).min(first.offset_ms);
        let mut piece: Vec<u8> = vec![0; 4];
        let mut prev = 0u32;
        let mut scratch = Vec::with_capacity(16);
        for e in entries {
            scratch.clear();
            codec::put_entry(&mut scratch, e, prev);
            let full = piece.len() + scratch.len() > CHUNK_BYTES;
            if full && piece.len() > 4 && e.offset_ms > prev && e.offset_ms > key {
                piece[0..4].copy_from_slice(&prev.to_le_bytes());
                self.put(meter, day, key, std::mem::replace(&mut piece, vec![0; 4]));
                key = e.offset_ms;
                scratch.clear();
                codec::put_entry(&mut scratch, e, 0);
            }
            piece.extend_from_slice(&scratch);
            prev = e.offset_ms;
        }
        piece[0..4].copy_from_slice(&prev.to_le_bytes());
        self.put(meter, day, key, piece);
    }

    /// The chunk of `day` with the greatest start at or before `offset`.
    fn at_or_before(&self, meter: u16, day: u32, offset: u32) -> Result<Option<Chunk>, StoreError> {
        let found = self.edge(
            &chunk_key(meter, day, 0),
            &chunk_key(meter, day, offset),
            true,
        )?;
        Ok(found.map(|(k, v)| (start_of(&k), v)))
    }

    /// The chunk of `day` with the smallest start after `offset`.
    fn first_after(&self, meter: u16, day: u32, offset: u32) -> Result<Option<Chunk>, StoreError> {
        let Some(next) = offset.checked_add(1) else {
            return Ok(None);
        };
        let found = self.edge(
            &chunk_key(meter, day, next),
            &chunk_key(meter, day, u32::MAX),
            false,
        )?;
        Ok(found.map(|(k, v)| (start_of(&k), v)))
    }

    /// The last chunk of `day`.
    fn last_of_day(&self, meter: u16, day: u32) -> Result<Option<Chunk>, StoreError> {
        self.at_or_before(meter, day, u32::MAX)
    }

    /// Chunks of `day` starting in `[lo, hi]`.
    fn range(&self, meter: u16, day: u32, lo: u32, hi: u32) -> Result<Vec<Chunk>, StoreError> {
        let kvs = self.merged(&chunk_key(meter, day, lo), &chunk_key(meter, day, hi))?;
        Ok(kvs.into_iter().map(|(k, v)| (start_of(&k), v)).collect())
    }

    /// The first (or, with `last`, the last) chunk in `[lo, hi]` as this batch
    /// leaves it.
    fn edge(
        &self,
        lo: &ChunkKey,
        hi: &ChunkKey,
        last: bool,
    ) -> Result<Option<(ChunkKey, Vec<u8>)>, StoreError> {
        let mut from_source = None;
        for kv in self.source.scan(lo, hi, last) {
            let (k, v) = kv?;
            let Ok(key) = ChunkKey::try_from(k.as_slice()) else {
                continue;
            };
            if !self.overlay.contains_key(&key) {
                from_source = Some((key, v));
                break;
            }
        }
        let mut written = self.overlay.range(*lo..=*hi).filter(|(_, v)| v.is_some());
        let from_overlay = if last {
            written.next_back()
        } else {
            written.next()
        };
        let from_overlay = from_overlay.and_then(|(k, v)| Some((*k, v.clone()?)));
        Ok(match (from_source, from_overlay) {
            (Some(a), Some(b)) => Some(if (a.0 > b.0) == last { a } else { b }),
            (a, b) => a.or(b),
        })
    }

    /// Calls `f` with every chunk in `[lo, hi]` as this batch leaves it, in key
    /// order, reading the index as it goes.
    fn for_each_merged(
        &self,
        lo: &ChunkKey,
        hi: &ChunkKey,
        mut f: impl FnMut(&ChunkKey, &[u8]),
    ) -> Result<(), StoreError> {
        let mut written = self.overlay.range(*lo..=*hi).peekable();
        for kv in self.source.scan(lo, hi, false) {
            let (k, v) = kv?;
            let Ok(key) = ChunkKey::try_from(k.as_slice()) else {
                continue;
            };
            while let Some((wk, wv)) = written.next_if(|(wk, _)| **wk < key) {
                if let Some(wv) = wv {
                    f(wk, wv);
                }
            }
            match written.next_if(|(wk, _)| **wk == key) {
                Some((_, Some(wv))) => f(&key, wv),
                Some((_, None)) => {}
                None => f(&key, &v),
            }
        }
        for (wk, wv) in written {
            if let Some(wv) = wv {
                f(wk, wv);
            }
        }
        Ok(())
    }

    /// Every chunk in `[lo, hi]` as this batch leaves it, in key order.
    fn merged(&self, lo: &ChunkKey, hi: &ChunkKey) -> Result<Vec<(ChunkKey, Vec<u8>)>, StoreError> {
        let mut all: BTreeMap<ChunkKey, Vec<u8>> = BTreeMap::new();
        for kv in self.source.scan(lo, hi, false) {
            let (k, v) = kv?;
            if let Ok(key) = ChunkKey::try_from(k.as_slice()) {
                all.insert(key, v);
            }
        }
        for (k, v) in self.overlay.range(*lo..=*hi) {
            match v {
                Some(v) => all.insert(*k, v.clone()),
                None => all.remove(k),
            };
        }
        Ok(all.into_iter().collect())
    }
}

fn start_of(key: &ChunkKey) -> u32 {
    u32::from_be_bytes([key[7], key[8], key[9], key[10]])
}

/// A block's entries outside and inside `[from_ms, to_ms)` (`base`: the day's start).
fn split_out(block: &[u8], base: i64, from_ms: i64, to_ms: i64) -> (Vec<Entry>, Vec<Entry>) {
    codec::block_entries(block).partition(|e| {
        let ts = base + i64::from(e.offset_ms);
        ts < from_ms || ts >= to_ms
    })
}

#[cfg(test)]
#[path = "chunks_tests.rs"]
mod tests;
