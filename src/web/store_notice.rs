//! What the pages and `/api/v1/alerts` say about a store restored from a backup.
//!
//! `store::recovery` keeps the [`RecoveryNotice`]; for `alert::recovery_mail::NOTICE_DAYS` after the
//! restore the dashboard shows it as a banner ([`banner`]); the API always reports
//! the last one ([`api_body`]). Reads only: the mail is `alert::recovery_mail`'s.

use chrono::TimeZone;
use chrono_tz::Tz;
use serde::Serialize;

use super::api::rfc3339;
use super::AppState;
use crate::alert::recovery_mail::is_recent;
use crate::store::recovery::RecoveryNotice;

/// The dashboard's banner about a recent restore.
#[derive(Debug, Clone, PartialEq)]
pub struct Banner {
    /// "The store was restored from a backup on … — events after … may be missing."
    pub headline: String,
    /// The whole story in one sentence (`RecoveryNotice::message`).
    pub detail: String,
    pub known_missing: Option<String>,
}

/// The banner while the last restore is less than `alert::recovery_mail::NOTICE_DAYS` old at `now_ms`.
pub fn banner(state: &AppState, now_ms: i64) -> Option<Banner> {
    let n = state.store.recovery_notice()?;
    is_recent(&n, now_ms).then(|| banner_for(&n, state.config.timezone))
}

fn banner_for(n: &RecoveryNotice, tz: Tz) -> Banner {
    Banner {
        headline: format!(
            "The store was damaged and restored from a backup on {}: events after {} may be missing.",
            local(n.recovered_at_ms, tz),
            local(n.backup_taken_at_ms, tz)
        ),
        detail: n.message(),
        known_missing: (n.known_missing_liters > 0.0)
            .then(|| crate::alert::message::liters(n.known_missing_liters)),
    }
}

/// `store` in `/api/v1/alerts`.
#[derive(Debug, Serialize)]
pub struct StoreBody {
    /// The last restore from a backup (`null`: never restored).
    recovery: Option<RecoveryBody>,
}

#[derive(Debug, Serialize)]
struct RecoveryBody {
    recovered: String,
    reason: String,
    backup: String,
    /// Events after this time may be missing.
    backup_taken: String,
    damaged_store: String,
    restored_events: u64,
    known_missing_liters: f64,
    message: String,
    /// Shown on the dashboard (for `NOTICE_DAYS` days after the restore).
    recent: bool,
}

pub fn api_body(state: &AppState, now_ms: i64) -> StoreBody {
    let recovery = state.store.recovery_notice().map(|n| RecoveryBody {
        recovered: rfc3339(state, n.recovered_at_ms),
        backup_taken: rfc3339(state, n.backup_taken_at_ms),
        message: n.message(),
        recent: is_recent(&n, now_ms),
        reason: n.reason,
        backup: n.backup,
        damaged_store: n.damaged_store,
        restored_events: n.restored_events,
        known_missing_liters: n.known_missing_liters,
    });
    StoreBody { recovery }
}

fn local(ms: i64, tz: Tz) -> String {
    match tz.timestamp_millis_opt(ms).single() {
        Some(t) => t.format("%Y-%m-%d %H:%M").to_string(),
        None => ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_names_the_restore_the_gap_and_the_known_loss() {
        let n = RecoveryNotice {
            recovered_at_ms: 1_774_792_800_000,
            reason: "sled found corrupted data".into(),
            backup: "b.lp".into(),
            backup_taken_at_ms: 1_774_749_600_000,
            damaged_store: "store.damaged-x".into(),
            restored_events: 3,
            known_missing_liters: 20.0,
        };
        let b = banner_for(&n, chrono_tz::Europe::Vienna);
        assert_eq!(
            b.headline,
            "The store was damaged and restored from a backup on 2026-03-29 16:00: \
             events after 2026-03-29 04:00 may be missing."
        );
        assert_eq!(b.known_missing.as_deref(), Some("20 L"));
        assert!(b.detail.contains("store.damaged-x"));
    }
}
