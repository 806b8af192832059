//! Alert persistence: the store side of [`AlertStore`] and [`UsageView`].
//!
//! Three key families in the `data` tree (prefixes reserved in `codec`):
//! - `A | alert name` → the alert's state (JSON);
//! - `H | name length u16 | name | id u64` → one history line (JSON), the newest
//!   [`HISTORY_KEEP`] per alert;
//! - `O | id u64` → a waiting mail and its last failed attempt (JSON).
//!
//! Ids come from sled's `generate_id`, which grows across restarts, so id order is
//! commit order. [`AlertStore::commit`] writes state, history line, trimming and mails
//! in one `apply_batch`: a transition is never stored without its mail. This module
//! does not decide anything about alerts; that is `crate::alert`.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::codec::prefix;
use super::Store;
use crate::alert::{
    AlertState, AlertStore, Attempt, HistoryEntry, OutboxMail, PendingMail, StoreError, UsageView,
};
use crate::config::MeterConfig;
use crate::ingest::MeterIdx;

/// History lines kept per alert (older ones are dropped in the commit that adds one).
pub const HISTORY_KEEP: usize = 100;

/// An outbox value: the mail and, once it failed, its last attempt.
#[derive(Serialize, Deserialize)]
struct StoredMail {
    mail: OutboxMail,
    attempt: Option<Attempt>,
}

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(db_err)
}

fn from_json<T: serde::de::DeserializeOwned>(what: &str, b: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(b).map_err(|e| StoreError(format!("a stored {what} is damaged: {e}")))
}

fn state_key(alert: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(alert.len() + 1);
    k.push(prefix::ALERT);
    k.extend_from_slice(alert.as_bytes());
    k
}

/// `H | len | name`: the prefix of one alert's history (the length keeps "a" apart from "ab").
fn history_prefix(alert: &str) -> Vec<u8> {
    let name = alert.as_bytes();
    let len = u16::try_from(name.len()).unwrap_or(u16::MAX);
    let mut k = Vec::with_capacity(name.len() + 11);
    k.push(prefix::HISTORY);
    k.extend_from_slice(&len.to_be_bytes());
    k.extend_from_slice(&name[..usize::from(len)]);
    k
}

fn outbox_key(id: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = prefix::OUTBOX;
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

fn outbox_id(key: &[u8]) -> Option<u64> {
    let b: [u8; 8] = key.get(1..9)?.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

impl AlertStore for Store {
    fn load_state(&self, alert: &str) -> Result<Option<AlertState>, StoreError> {
        self.data()
            .map_err(db_err)?
            .get(state_key(alert))
            .map_err(db_err)?
            .map(|v| from_json("alert state", &v))
            .transpose()
    }

    fn commit(
        &self,
        alert: &str,
        state: &AlertState,
        history: Option<&HistoryEntry>,
        mails: &[OutboxMail],
    ) -> Result<Vec<u64>, StoreError> {
        let mut batch = sled::Batch::default();
        batch.insert(state_key(alert), to_json(state)?);
        if let Some(h) = history {
            let hp = history_prefix(alert);
            let mut key = hp.clone();
            key.extend_from_slice(
                &self
                    .db()
                    .map_err(db_err)?
                    .generate_id()
                    .map_err(db_err)?
                    .to_be_bytes(),
            );
            batch.insert(key, to_json(h)?);
            // Keep HISTORY_KEEP lines including the new one: drop the oldest beyond that.
            let keys: Vec<_> = self
                .data()
                .map_err(db_err)?
                .scan_prefix(&hp)
                .keys()
                .collect::<Result<_, _>>()
                .map_err(db_err)?;
            let excess = (keys.len() + 1).saturating_sub(HISTORY_KEEP);
            for k in keys.into_iter().take(excess) {
                batch.remove(k);
            }
        }
        let mut ids = Vec::with_capacity(mails.len());
        for mail in mails {
            let id = self.db().map_err(db_err)?.generate_id().map_err(db_err)?;
            let stored = StoredMail {
                mail: mail.clone(),
                attempt: None,
            };
            batch.insert(&outbox_key(id)[..], to_json(&stored)?);
            ids.push(id);
        }
        self.commit_batch(&self.data().map_err(db_err)?, batch)
            .map_err(db_err)?;
        Ok(ids)
    }

    fn history(&self, alert: &str, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        self.data()
            .map_err(db_err)?
            .scan_prefix(history_prefix(alert))
            .values()
            .rev()
            .take(limit)
            .map(|v| from_json("alert history line", &v.map_err(db_err)?))
            .collect()
    }

    fn outbox_pending(&self) -> Result<Vec<PendingMail>, StoreError> {
        let mut out = Vec::new();
        for kv in self.data().map_err(db_err)?.scan_prefix([prefix::OUTBOX]) {
            let (k, v) = kv.map_err(db_err)?;
            let Some(id) = outbox_id(&k) else { continue };
            // A damaged mail is logged and skipped: it must not block the ones behind it.
            match from_json::<StoredMail>("outbox mail", &v) {
                Ok(s) => out.push(PendingMail {
                    id,
                    mail: s.mail,
                    attempt: s.attempt,
                }),
                Err(e) => tracing::error!(id, "{e}; skipping it"),
            }
        }
        Ok(out)
    }

    fn outbox_record_failure(&self, id: u64, attempt: &Attempt) -> Result<(), StoreError> {
        let key = outbox_key(id);
        let Some(v) = self.data().map_err(db_err)?.get(key).map_err(db_err)? else {
            return Ok(());
        };
        let mut stored: StoredMail = from_json("outbox mail", &v)?;
        stored.attempt = Some(attempt.clone());
        self.data()
            .map_err(db_err)?
            .insert(key, to_json(&stored)?)
            .map_err(db_err)?;
        Ok(())
    }

    fn outbox_remove(&self, id: u64) -> Result<(), StoreError> {
        self.data()
            .map_err(db_err)?
            .remove(outbox_key(id))
            .map_err(db_err)?;
        // The removal must survive a crash, or the mail goes out twice.
        self.flush().map_err(db_err)?;
        Ok(())
    }
}

/// The rules' view of the store, addressing meters by id.
///
/// [`UsageView`] has no error channel: a failed read is logged and reads as no
/// usage (a rule then sees "nothing flowed" for that evaluation only).
pub struct StoreUsage {
    store: Arc<Store>,
    meters: HashMap<String, MeterIdx>,
}

impl StoreUsage {
    pub fn new(store: Arc<Store>, meters: &[MeterConfig]) -> Self {
        let meters = meters
            .iter()
            .enumerate()
            .map(|(i, m)| (m.id.clone(), i as MeterIdx))
            .collect();
        StoreUsage { store, meters }
    }

    fn idx(&self, meter: &str) -> Option<MeterIdx> {
        let idx = self.meters.get(meter).copied();
        if idx.is_none() {
            tracing::warn!(meter, "an alert names a meter that is not configured");
        }
        idx
    }
}

fn logged<T: Default>(what: &str, r: Result<T, super::StoreError>) -> T {
    r.unwrap_or_else(|e| {
        tracing::warn!("alert evaluation: reading {what} failed: {e}");
        T::default()
    })
}

impl UsageView for StoreUsage {
    fn liters_between(&self, meter: &str, from_ms: i64, to_ms: i64) -> f64 {
        let Some(idx) = self.idx(meter) else {
            return 0.0;
        };
        // The view's (from, to] is the store's [from + 1, to + 1) in milliseconds.
        let ml = self
            .store
            .ml_between(idx, from_ms.saturating_add(1), to_ms.saturating_add(1));
        logged("liters", ml) as f64 / 1000.0
    }

    fn last_event_ms(&self, meter: &str) -> Option<i64> {
        logged("the last event", self.store.last_event_ms(self.idx(meter)?))
    }

    fn last_seen_ms(&self, meter: &str) -> Option<i64> {
        logged("the last sample", self.store.last_seen_ms(self.idx(meter)?))
    }

    fn event_times(&self, meter: &str, from_ms: i64, to_ms: i64) -> Vec<i64> {
        let Some(idx) = self.idx(meter) else {
            return Vec::new();
        };
        let mut times = Vec::new();
        let r = self.store.for_each_event(
            idx,
            from_ms.saturating_add(1),
            to_ms.saturating_add(1),
            |ts, _| times.push(ts),
        );
        logged("events", r.map(|()| times))
    }
}

#[cfg(test)]
#[path = "alerts_tests.rs"]
mod tests;
