//! Moves a store written by the first layout (one event block per UTC hour plus a
//! quarter-hour rollup) to the current one (one block per UTC day, no quarter
//! rollup) in one atomic batch, the first time the store is opened.
//!
//! It does not touch the day rollup, totals or meter state: they mean the same in
//! both layouts.

use std::collections::BTreeMap;

use super::codec::{self, prefix, series_key, Entry, DAY_MS, HOUR_MS, LAYOUT};
use super::{global_key, Store, StoreError};

impl Store {
    /// Writes the layout marker of a new store, or migrates an old one.
    pub(super) fn ensure_layout(&self) -> Result<(), StoreError> {
        let key = global_key("layout");
        if self.data.get(&key)?.is_some() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        let old_layout = self.data.scan_prefix([prefix::QUARTERS]).next().is_some();
        if old_layout {
            tracing::info!("moving the store to one event block per day (layout {LAYOUT})");
            for kv in self.data.scan_prefix([prefix::QUARTERS]) {
                batch.remove(kv?.0);
            }
            let mut days: BTreeMap<(u16, u32), Vec<Entry>> = BTreeMap::new();
            for kv in self.data.scan_prefix([prefix::EVENTS]) {
                let (k, block) = kv?;
                let (Some(meter), Some(hour)) = (k.get(1..3), codec::slot_of_key(&k)) else {
                    continue;
                };
                batch.remove(k.clone());
                let meter = u16::from_be_bytes([meter[0], meter[1]]);
                let start = i64::from(hour) * HOUR_MS;
                let day = start.div_euclid(DAY_MS);
                let Ok(slot) = u32::try_from(day) else {
                    continue;
                };
                let shift = (start - day * DAY_MS) as u32;
                days.entry((meter, slot))
                    .or_default()
                    .extend(codec::block_entries(&block).map(|e| Entry {
                        offset_ms: e.offset_ms + shift,
                        ml: e.ml,
                    }));
            }
            for ((meter, slot), entries) in days {
                let k = series_key(prefix::EVENTS, meter, slot);
                batch.insert(&k[..], codec::encode_block(&entries));
            }
        }
        batch.insert(key, &[LAYOUT]);
        self.data.apply_batch(batch)?;
        Ok(())
    }
}
