//! Small owner-set state beside the water: the kind the owner gave a draw
//! ("that was the dishwasher") and the away switch. Written through the journal
//! like everything else, so a rebuilt index keeps them.

use super::codec::prefix;
use super::record::Op;
use super::{global_key, Store, StoreError};
use crate::meter::MeterIdx;

fn label_key(meter: u16, draw: u64) -> Vec<u8> {
    let mut k = vec![prefix::DRAW_LABELS];
    k.extend_from_slice(&meter.to_be_bytes());
    k.extend_from_slice(&draw.to_be_bytes());
    k
}

impl Store {
    /// The owner's labels of `meter`'s draws: (draw id, kind name).
    pub fn draw_labels(&self, meter: MeterIdx) -> Result<Vec<(u64, String)>, StoreError> {
        let key = self.slot(meter)?.key;
        let mut p = vec![prefix::DRAW_LABELS];
        p.extend_from_slice(&key.to_be_bytes());
        Ok(self
            .scan_raw(&p)?
            .into_iter()
            .filter_map(|(k, v)| {
                let id = u64::from_be_bytes(k.get(3..11)?.try_into().ok()?);
                Some((id, String::from_utf8(v).ok()?))
            })
            .collect())
    }

    /// Labels draw `draw` of `meter` as `kind`; durable when it returns.
    pub fn set_draw_label(&self, meter: MeterIdx, draw: u64, kind: &str) -> Result<(), StoreError> {
        let key = label_key(self.slot(meter)?.key, draw);
        let value = kind.as_bytes().to_vec();
        self.write_ops(|_| vec![Op::Put { key, value }], true)?;
        Ok(())
    }

    /// Away mode: since when it is on (`None`: off).
    pub fn away_since(&self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .data()?
            .get(global_key("away"))?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(i64::from_be_bytes))
    }

    /// Turns away mode on (at `now_ms`) or off; durable when it returns.
    pub fn set_away(&self, on: bool, now_ms: i64) -> Result<(), StoreError> {
        if on == self.away_since()?.is_some() {
            return Ok(());
        }
        let key = global_key("away");
        let op = if on {
            Op::Put {
                key,
                value: now_ms.to_be_bytes().to_vec(),
            }
        } else {
            Op::Del { key }
        };
        self.write_ops(|_| vec![op], true)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_away_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let meters = vec![crate::config::MeterConfig::with_id("main")];
        let open = || Store::open(dir.path(), 1 << 20, chrono_tz::UTC, &meters).unwrap();
        {
            let store = open();
            store.set_draw_label(0, 42, "dishwasher").unwrap();
            store.set_draw_label(0, 42, "washing_machine").unwrap();
            store.set_away(true, 1_000).unwrap();
        }
        let store = open();
        assert_eq!(
            store.draw_labels(0).unwrap(),
            vec![(42, "washing_machine".into())]
        );
        assert_eq!(store.away_since().unwrap(), Some(1_000));
        store.set_away(false, 2_000).unwrap();
        assert_eq!(store.away_since().unwrap(), None);
    }
}
