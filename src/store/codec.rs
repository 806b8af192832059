//! Byte layouts of the store: keys, varints and the event block.
//!
//! Pure functions only; `store` decides what goes where (`chunks` places events).
//! The event block is the heart of the compact layout: a run of events as
//! delta-encoded millisecond offsets inside one UTC day, so an ordinary 1-liter
//! pulse costs two or three bytes on disk. A day's events are several blocks of
//! bounded size (chunks, see `chunks`), never one value that grows with the day.
//!
//! Block layout: `[last offset ms: u32 LE]` then one entry per event in time order:
//! `varint(delta_ms << 1 | explicit)` followed, when `explicit` is 1, by
//! `varint(milliliters)`. Entries without the flag are exactly [`DEFAULT_ML`].
//! The first entry's delta counts from the start of the day.

/// The amount of an entry without an explicit volume: one liter.
pub const DEFAULT_ML: u64 = 1000;
/// One UTC day: the span of one event block.
pub const DAY_MS: i64 = 86_400_000;
/// The index layout this code writes (`G layout`). An index of an older layout is
/// rebuilt from the journal at start; one of a newer layout is refused. (Layout 1,
/// hour blocks with a quarter-hour rollup, never shipped; layout 2 kept one block
/// per meter and UTC day, rewritten whole by every batch.)
pub const LAYOUT: u8 = 3;

/// Key prefixes in the single `data` tree. One tree keeps every write of a batch
/// atomic (sled batches are per tree).
pub mod prefix {
    /// Event chunk: `E | meter u16 | UTC day u32 | first offset u32` → block
    /// (layout 2 and the 0.1 store: `E | meter u16 | UTC day u32` → the whole day).
    pub const EVENTS: u8 = b'E';
    /// Local-day sum in the configured zone: `D | meter u16 | day i32 (biased)` → varint ml.
    pub const DAYS: u8 = b'D';
    /// Per-meter state: `M | meter u16 | field u8` → value.
    pub const METER: u8 = b'M';
    /// Global metadata: `G | name` → value.
    pub const GLOBAL: u8 = b'G';
    /// Alert state, history and outbox (owned by the alert persistence).
    pub const ALERT: u8 = b'A';
    pub const HISTORY: u8 = b'H';
    pub const OUTBOX: u8 = b'O';
    /// Forward queue (see `store::forward`): `F | seq u64` → meter u16, ts i64, ml u64.
    pub const FORWARD: u8 = b'F';
    /// Samples waiting for the clock to be synchronised (`store::unplaced`): `U | seq u64`.
    pub const UNPLACED: u8 = b'U';
    /// Files imported (owned by `transfer`): `I | fingerprint` → JSON summary.
    pub const IMPORTED: u8 = b'I';
    /// Interpolated ranges (a rise spread over more than an hour):
    /// `P | meter u16 | from i64 BE` → to i64 BE.
    pub const INTERPOLATED: u8 = b'P';
    /// The corrections' audit list (`store::correct`): `C | meter u16 | seq u64` → JSON.
    pub const CORRECTIONS: u8 = b'C';
    /// The owner's draw labels (`draws`): `L | meter u16 | draw id u64 BE` → kind name.
    pub const DRAW_LABELS: u8 = b'L';
    /// Alerts made on the alerts page (`alert::saved`): `B | name` → JSON.
    pub const SAVED_ALERTS: u8 = b'B';
}

/// Fields of the per-meter state under `prefix::METER`.
pub mod meter_field {
    /// Layout 2's total; layout 3 keeps it in [`LIVE`].
    pub const TOTAL_ML: u8 = 1;
    /// The last time any sample arrived later than every event (a 0-liter
    /// reading); the last-seen time is this or the last event, whichever is later.
    pub const LAST_SEEN_MS: u8 = 3;
    pub const COUNTER: u8 = 4;
    pub const ANCHOR: u8 = 5;
    pub const READING_OVERRIDE: u8 = 6;
    /// The reading engine's position for an absolute source (`readings::encode`).
    pub const READING: u8 = 7;
    /// The alarm flags the meter itself reports now, one per line.
    pub const ALARMS: u8 = 8;
    /// Meter exchanges recorded on the dashboard: (at_ms i64, m3 f64) pairs, BE.
    pub const EXCHANGES: u8 = 9;
    /// What every batch of events changes: total, last event and the tail of the
    /// newest events (`chunks::Live`), one value so a pulse writes one key here.
    pub const LIVE: u8 = 10;
}

pub fn series_key(prefix: u8, meter: u16, slot: u32) -> [u8; 7] {
    let mut k = [0u8; 7];
    k[0] = prefix;
    k[1..3].copy_from_slice(&meter.to_be_bytes());
    k[3..7].copy_from_slice(&slot.to_be_bytes());
    k
}

pub fn slot_of_key(key: &[u8]) -> Option<u32> {
    let b: [u8; 4] = key.get(3..7)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

pub fn meter_key(meter: u16, field: u8) -> [u8; 4] {
    let m = meter.to_be_bytes();
    [prefix::METER, m[0], m[1], field]
}

/// Days are stored as `days since 1970-01-01 + DAY_BIAS` so that the big-endian
/// key order is the date order even for dates before 1970.
pub const DAY_BIAS: i64 = 1 << 30;

pub fn day_slot(days_since_epoch: i64) -> Option<u32> {
    u32::try_from(days_since_epoch + DAY_BIAS).ok()
}

pub fn day_of_slot(slot: u32) -> i64 {
    i64::from(slot) - DAY_BIAS
}

/// The UTC day (since the epoch) whose event block holds an instant, if storable.
pub fn block_slot(ts_ms: i64) -> Option<u32> {
    u32::try_from(ts_ms.div_euclid(DAY_MS)).ok()
}

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint at `*pos`, advancing it. `None` on truncated or oversized input.
pub fn get_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

pub fn varint_value(v: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(4);
    put_varint(&mut out, v);
    out
}

pub fn read_varint_value(buf: &[u8]) -> u64 {
    get_varint(buf, &mut 0).unwrap_or(0)
}

/// One event inside a day block: offset from the block's start and its volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub offset_ms: u32,
    pub ml: u64,
}

/// Appends `entries` to an encoded block (which may be empty), keeping time order.
///
/// The common case (new entries not earlier than the block's last one) appends in
/// place; an out-of-order entry (an import of older data, two senders) re-encodes
/// the block sorted.
pub fn append_block(block: &[u8], entries: &mut [Entry]) -> Vec<u8> {
    entries.sort_unstable();
    let last = block_last_offset(block);
    match (last, entries.first()) {
        (Some(last), Some(first)) if first.offset_ms < last => {
            let mut all = decode_block(block);
            all.extend_from_slice(entries);
            all.sort_unstable();
            encode_block(&all)
        }
        _ => {
            let mut out = Vec::with_capacity(block.len().max(4) + entries.len() * 3);
            let mut prev = last.unwrap_or(0);
            if block.len() >= 4 {
                out.extend_from_slice(block);
            } else {
                out.extend_from_slice(&[0; 4]);
            }
            for e in entries.iter() {
                put_entry(&mut out, e, prev);
                prev = e.offset_ms;
            }
            out[0..4].copy_from_slice(&prev.to_le_bytes());
            out
        }
    }
}

pub fn encode_block(entries: &[Entry]) -> Vec<u8> {
    append_block(&[], &mut entries.to_vec())
}

/// Appends one entry, `prev` being the offset of the entry before it (0: none).
pub fn put_entry(out: &mut Vec<u8>, e: &Entry, prev: u32) {
    let delta = u64::from(e.offset_ms - prev);
    if e.ml == DEFAULT_ML {
        put_varint(out, delta << 1);
    } else {
        put_varint(out, (delta << 1) | 1);
        put_varint(out, e.ml);
    }
}

/// The offset of a block's last entry (its header), without decoding it.
pub fn block_last_offset(block: &[u8]) -> Option<u32> {
    let b: [u8; 4] = block.get(0..4)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

/// Iterates the entries of a block. A damaged tail ends the iteration early
/// rather than inventing events.
pub fn block_entries(block: &[u8]) -> impl Iterator<Item = Entry> + '_ {
    let mut pos = 4.min(block.len());
    let mut prev: u64 = 0;
    std::iter::from_fn(move || {
        if pos >= block.len() {
            return None;
        }
        let tag = get_varint(block, &mut pos)?;
        let offset = prev.checked_add(tag >> 1)?;
        let ml = if tag & 1 == 1 {
            get_varint(block, &mut pos)?
        } else {
            DEFAULT_ML
        };
        prev = offset;
        Some(Entry {
            offset_ms: u32::try_from(offset).ok()?,
            ml,
        })
    })
}

pub fn decode_block(block: &[u8]) -> Vec<Entry> {
    block_entries(block).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(offset_ms: u32, ml: u64) -> Entry {
        Entry { offset_ms, ml }
    }

    #[test]
    fn varints_round_trip_at_every_width() {
        for v in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let buf = varint_value(v);
            assert_eq!(get_varint(&buf, &mut 0), Some(v), "{v}");
        }
    }

    #[test]
    fn truncated_varint_is_none_not_a_panic() {
        assert_eq!(get_varint(&[0x80, 0x80], &mut 0), None);
        assert_eq!(get_varint(&[0xff; 11], &mut 0), None);
    }

    #[test]
    fn shower_pulses_cost_two_bytes_each() {
        let entries: Vec<Entry> = (0..10).map(|i| e(1000 + i * 6000, 1000)).collect();
        let block = encode_block(&entries);
        // 4 header bytes, the first entry (2 bytes for 1000 ms) and 9 deltas of 6 s.
        assert_eq!(block.len(), 4 + 2 + 9 * 2);
        assert_eq!(decode_block(&block), entries);
    }

    #[test]
    fn appending_in_order_keeps_every_entry() {
        let first = encode_block(&[e(5, 1000), e(10, 500)]);
        let block = append_block(&first, &mut [e(10, 1000), e(3_599_999, 2500)]);
        assert_eq!(
            decode_block(&block),
            vec![e(5, 1000), e(10, 500), e(10, 1000), e(3_599_999, 2500)]
        );
    }

    #[test]
    fn appending_out_of_order_re_sorts_the_block() {
        let first = encode_block(&[e(500, 1000), e(900, 1000)]);
        let block = append_block(&first, &mut [e(100, 250), e(950, 1000)]);
        assert_eq!(
            decode_block(&block),
            vec![e(100, 250), e(500, 1000), e(900, 1000), e(950, 1000)]
        );
        let more = append_block(&block, &mut [e(960, 1000)]);
        assert_eq!(decode_block(&more).len(), 5);
    }

    #[test]
    fn damaged_block_yields_its_intact_prefix() {
        let block = encode_block(&[e(1, 1000), e(2, 1000), e(3, 7)]);
        let cut = &block[..block.len() - 1];
        assert_eq!(decode_block(cut), vec![e(1, 1000), e(2, 1000)]);
        assert!(decode_block(&[1, 2]).is_empty());
    }

    #[test]
    fn keys_sort_by_meter_then_time() {
        let a = series_key(prefix::EVENTS, 1, 500);
        let b = series_key(prefix::EVENTS, 1, 501);
        let c = series_key(prefix::EVENTS, 2, 0);
        assert!(a < b && b < c);
        assert_eq!(slot_of_key(&b), Some(501));
        assert!(day_slot(-1).unwrap() < day_slot(0).unwrap());
        assert_eq!(day_of_slot(day_slot(-700).unwrap()), -700);
    }
}
