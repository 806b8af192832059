//! Alert persistence: [`AlertStore`] and [`UsageView`] over the store, through its
//! small-table API (`get_raw`, `scan_raw`, `write_ops`); the store knows no alert type.
//!
//! Three key families in the `data` tree (prefixes reserved in `codec`):
//! - `A | alert name` → the alert's state (JSON);
//! - `H | name length u16 | name | id u64` → one history line (JSON), the newest
//!   [`HISTORY_KEEP`] per alert;
//! - `O | id u64` → a waiting mail and its last failed attempt (JSON).
//!
//! Ids come from the journal record that stores them (`record_id`): they grow across
//! restarts and survive a rebuild of the index, so id order is commit order. [`AlertStore::commit`] writes state, history line, trimming and mails
//! in one journal record: a transition is never stored without its mail. This module
//! does not decide anything about alerts; that is `crate::alert`.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::alert::saved::SavedAlert;
use crate::alert::{
    AlertState, AlertStore, Attempt, HistoryEntry, Notification, Pending, StoreError, UsageView,
};
use crate::config::MeterConfig;
use crate::meter::MeterIdx;
use crate::store::codec::prefix;
use crate::store::record::Op;
use crate::store::{record_id, Store};

/// History lines kept per alert (older ones are dropped in the commit that adds one).
pub const HISTORY_KEEP: usize = 100;

/// An outbox value: the notification and, once it failed, its last attempt. The
/// field keeps its 0.1 name `mail`, so waiting notifications survive an upgrade.
#[derive(Serialize, Deserialize)]
struct StoredMail {
    #[serde(rename = "mail")]
    notification: Notification,
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
        self.get_raw(&state_key(alert))
            .map_err(db_err)?
            .map(|v| from_json("alert state", &v))
            .transpose()
    }

    fn commit(
        &self,
        alert: &str,
        state: &AlertState,
        history: Option<&HistoryEntry>,
        mails: &[Notification],
    ) -> Result<Vec<u64>, StoreError> {
        let state_json = to_json(state)?;
        let history_json = history.map(to_json).transpose()?;
        let mail_json: Vec<Vec<u8>> = mails
            .iter()
            .map(|mail| {
                to_json(&StoredMail {
                    notification: mail.clone(),
                    attempt: None,
                })
            })
            .collect::<Result<_, _>>()?;
        // Keep HISTORY_KEEP lines including the new one: drop the oldest beyond that.
        let hp = history_prefix(alert);
        let old_history: Vec<Vec<u8>> = match history_json {
            Some(_) => self
                .scan_raw(&hp)
                .map_err(db_err)?
                .into_iter()
                .map(|(k, _)| k)
                .collect(),
            None => Vec::new(),
        };
        let mut ids = Vec::with_capacity(mails.len());
        // One record, synced: a transition is never stored without its mail, and a
        // queued mail survives a power cut. Ids come from the record's number, so
        // they grow across restarts and stay the same when the index is rebuilt.
        self.write_ops(
            |seq| {
                let mut ops = vec![Op::Put {
                    key: state_key(alert),
                    value: state_json,
                }];
                if let Some(h) = history_json {
                    let mut key = hp.clone();
                    key.extend_from_slice(&record_id(seq, 0).to_be_bytes());
                    ops.push(Op::Put { key, value: h });
                    let excess = (old_history.len() + 1).saturating_sub(HISTORY_KEEP);
                    for k in old_history.into_iter().take(excess) {
                        ops.push(Op::Del { key: k });
                    }
                }
                for (i, value) in mail_json.into_iter().enumerate() {
                    let id = record_id(seq, i + 1);
                    ops.push(Op::Put {
                        key: outbox_key(id).to_vec(),
                        value,
                    });
                    ids.push(id);
                }
                ops
            },
            true,
        )
        .map_err(db_err)?;
        Ok(ids)
    }

    fn history(&self, alert: &str, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        self.scan_raw(&history_prefix(alert))
            .map_err(db_err)?
            .iter()
            .rev()
            .take(limit)
            .map(|(_, v)| from_json("alert history line", v))
            .collect()
    }

    fn outbox_pending(&self) -> Result<Vec<Pending>, StoreError> {
        let mut out = Vec::new();
        for (k, v) in self.scan_raw(&[prefix::OUTBOX]).map_err(db_err)? {
            let Some(id) = outbox_id(&k) else { continue };
            // A damaged mail is logged and skipped: it must not block the ones behind it.
            match from_json::<StoredMail>("outbox mail", &v) {
                Ok(s) => out.push(Pending {
                    id,
                    notification: s.notification,
                    attempt: s.attempt,
                }),
                Err(e) => tracing::error!(id, "{e}; skipping it"),
            }
        }
        Ok(out)
    }

    fn outbox_record_failure(&self, id: u64, attempt: &Attempt) -> Result<(), StoreError> {
        let key = outbox_key(id);
        let Some(v) = self.get_raw(&key).map_err(db_err)? else {
            return Ok(());
        };
        let mut stored: StoredMail = from_json("outbox mail", &v)?;
        stored.attempt = Some(attempt.clone());
        let op = Op::Put {
            key: key.to_vec(),
            value: to_json(&stored)?,
        };
        // Not synced: a lost attempt only means the next one waits less.
        self.write_ops(|_| vec![op], false).map_err(db_err)?;
        Ok(())
    }

    fn outbox_remove(&self, id: u64) -> Result<(), StoreError> {
        let op = Op::Del {
            key: outbox_key(id).to_vec(),
        };
        // Synced: the removal must survive a power cut, or the mail goes out twice.
        self.write_ops(|_| vec![op], true).map_err(db_err)?;
        Ok(())
    }
}

fn saved_key(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 1);
    k.push(prefix::SAVED_ALERTS);
    k.extend_from_slice(name.as_bytes());
    k
}

/// The alerts made on the alerts page, in name order; a damaged one is logged and left out.
pub fn saved_alerts(store: &Store) -> Result<Vec<SavedAlert>, StoreError> {
    let rows = store.scan_raw(&[prefix::SAVED_ALERTS]).map_err(db_err)?;
    Ok(rows
        .iter()
        .filter_map(|(_, v)| {
            from_json::<SavedAlert>("browser-made alert", v)
                .map_err(|e| tracing::error!("{e}; leaving it out"))
                .ok()
        })
        .collect())
}

/// Stores `alert` (synced), in place of the one named `replaces` if it had
/// another name: the old name's state and history go with it, unless a config
/// alert runs under that name (`config_names`). A new name starts without the
/// state or history a deleted alert may have left under it.
pub fn save_alert(
    store: &Store,
    replaces: Option<&str>,
    alert: &SavedAlert,
    config_names: &[String],
) -> Result<(), StoreError> {
    let value = to_json(alert)?;
    let mut ops = Vec::new();
    if let Some(old) = replaces.filter(|old| *old != alert.name) {
        ops.push(Op::Del {
            key: saved_key(old),
        });
        if !config_names.iter().any(|n| n == old) {
            ops.extend(state_ops(store, old)?);
        }
    }
    if replaces != Some(alert.name.as_str()) {
        ops.extend(state_ops(store, &alert.name)?);
    }
    ops.push(Op::Put {
        key: saved_key(&alert.name),
        value,
    });
    store.write_ops(|_| ops, true).map_err(db_err)?;
    Ok(())
}

/// Deletes a browser-made alert with its state and history (synced), unless a
/// config alert runs under the same name (`config_names`): then only the
/// browser-made one goes. Its notifications already waiting still go out.
pub fn delete_alert(store: &Store, name: &str, config_names: &[String]) -> Result<(), StoreError> {
    let mut ops = vec![Op::Del {
        key: saved_key(name),
    }];
    if !config_names.iter().any(|n| n == name) {
        ops.extend(state_ops(store, name)?);
    }
    store.write_ops(|_| ops, true).map_err(db_err)?;
    Ok(())
}

/// Deletes an alert's state and history.
fn state_ops(store: &Store, name: &str) -> Result<Vec<Op>, StoreError> {
    let mut ops = vec![Op::Del {
        key: state_key(name),
    }];
    for (key, _) in store.scan_raw(&history_prefix(name)).map_err(db_err)? {
        ops.push(Op::Del { key });
    }
    Ok(ops)
}

/// The rules' view of the store, addressing meters by id.
///
/// [`UsageView`] has no error channel: a failed read is logged and reads as no
/// usage (a rule then sees "nothing flowed" for that evaluation only).
pub struct StoreUsage {
    store: Arc<Store>,
    meters: HashMap<String, MeterIdx>,
    tariff: Option<crate::config::TariffConfig>,
}

impl StoreUsage {
    pub fn new(store: Arc<Store>, meters: &[MeterConfig]) -> Self {
        let meters = meters
            .iter()
            .enumerate()
            .map(|(i, m)| (m.id.clone(), i as MeterIdx))
            .collect();
        StoreUsage {
            store,
            meters,
            tariff: None,
        }
    }

    /// With the configured prices, for budgets in money.
    pub fn with_tariff(mut self, tariff: Option<crate::config::TariffConfig>) -> Self {
        self.tariff = tariff;
        self
    }

    fn idx(&self, meter: &str) -> Option<MeterIdx> {
        let idx = self.meters.get(meter).copied();
        if idx.is_none() {
            tracing::warn!(meter, "an alert names a meter that is not configured");
        }
        idx
    }
}

fn logged<T: Default, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> T {
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

    fn events(&self, meter: &str, from_ms: i64, to_ms: i64) -> Vec<(i64, f64)> {
        let Some(idx) = self.idx(meter) else {
            return Vec::new();
        };
        let mut events = Vec::new();
        let r = self.store.for_each_event(
            idx,
            from_ms.saturating_add(1),
            to_ms.saturating_add(1),
            |ts, ml| events.push((ts, ml as f64 / 1000.0)),
        );
        logged("events", r.map(|()| events))
    }

    fn away_since_ms(&self) -> Option<i64> {
        logged("away mode", self.store.away_since())
    }

    fn tariff(&self) -> Option<&crate::config::TariffConfig> {
        self.tariff.as_ref()
    }

    fn meter_alarms(&self, meter: &str) -> Vec<String> {
        let Some(idx) = self.idx(meter) else {
            return Vec::new();
        };
        logged("the meter's alarms", self.store.meter_alarms(idx))
    }

    fn flow_l_per_min(&self, meter: &str, now_ms: i64) -> f64 {
        let Some(idx) = self.idx(meter) else {
            return 0.0;
        };
        logged(
            "the flow",
            crate::figures::flow_l_per_min(&self.store, idx, now_ms),
        )
    }
}

#[cfg(test)]
#[path = "persist_tests.rs"]
mod tests;
