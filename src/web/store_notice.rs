//! What the pages and `/api/v1/alerts` say about journal records that could not be read.
//!
//! `store::recovery` keeps the [`RecoveryNotice`]; for `alert::recovery_mail::NOTICE_DAYS` after the
//! restore the dashboard shows it as a banner ([`banner`]); the API always reports
//! the last one ([`api_body`]). Reads only: the mail is `alert::recovery_mail`'s.

use chrono::TimeZone;
use chrono_tz::Tz;
use serde::Serialize;

use super::AppState;
use crate::alert::recovery_mail::is_recent;
use crate::store::recovery::{span_words, RecoveryNotice};

/// The dashboard's banner about a recent restore.
#[derive(Debug, Clone, PartialEq)]
pub struct Banner {
    /// "Found on …: events between … and … may be missing."
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
            "Found on {}: events {} may be missing.",
            local(n.recovered_at_ms, tz),
            span_words(n.missing_from_ms, n.missing_to_ms, |ms| local(ms, tz))
        ),
        detail: n.message(),
        known_missing: None,
    }
}

/// The banner about future-dated data set aside, for a week after it was done.
pub fn future_banner(state: &AppState, now_ms: i64) -> Option<String> {
    let n = state.store.future_notice()?;
    let week = 7 * 86_400_000;
    (now_ms - n.healed_at_ms < week).then(|| future_words(state, &n))
}

fn future_words(state: &AppState, n: &crate::store::heal::FutureNotice) -> String {
    let tz = state.config.timezone;
    let meters: Vec<String> = n
        .meters
        .iter()
        .map(|(idx, liters, latest)| {
            let id = state
                .config
                .meters
                .get(usize::from(*idx))
                .map_or("?", |m| m.id.as_str());
            format!(
                "{} L of meter '{id}' dated as late as {}",
                crate::words::trim(*liters, 3),
                local(*latest, tz)
            )
        })
        .collect();
    let what = if meters.is_empty() {
        "Readings dated in the future had stopped a meter".to_string()
    } else {
        format!("{} were dated in the future", meters.join(" and "))
    };
    format!(
        "{what}; on {} they were set aside as the correction \"{}\" (see Settings), and later \
         readings count again. A sender whose clock is wrong causes this: check its time.",
        local(n.healed_at_ms, tz),
        crate::store::heal::REASON
    )
}

/// `store` in `/api/v1/alerts`.
#[derive(Debug, Serialize)]
pub struct StoreBody {
    /// The last finding of unreadable journal records (`null`: never).
    recovery: Option<RecoveryBody>,
}

#[derive(Debug, Serialize)]
struct RecoveryBody {
    recovered: String,
    reason: String,
    unreadable_bytes: u64,
    /// Events between these two times may be missing.
    missing_from: String,
    missing_to: String,
    damaged_copy: String,
    restored_events: u64,
    message: String,
    /// Shown on the dashboard (for `NOTICE_DAYS` days after it was found).
    recent: bool,
}

pub fn api_body(state: &AppState, now_ms: i64) -> StoreBody {
    let recovery = state.store.recovery_notice().map(|n| RecoveryBody {
        recovered: crate::figures::rfc3339(state.config.timezone, n.recovered_at_ms),
        missing_from: crate::figures::rfc3339(state.config.timezone, n.missing_from_ms),
        missing_to: crate::figures::rfc3339(state.config.timezone, n.missing_to_ms),
        message: n.message(),
        recent: is_recent(&n, now_ms),
        reason: n.reason,
        unreadable_bytes: n.unreadable_bytes,
        damaged_copy: n.damaged_copy,
        restored_events: n.restored_events,
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
    fn the_banner_names_the_finding_and_the_gap() {
        let n = RecoveryNotice {
            recovered_at_ms: 1_774_792_800_000,
            reason: "1 stretch with bad checksums".into(),
            unreadable_bytes: 300,
            missing_from_ms: 1_774_749_600_000,
            missing_to_ms: 1_774_753_200_000,
            damaged_copy: "journal.damaged-x".into(),
            restored_events: 3,
        };
        let b = banner_for(&n, chrono_tz::Europe::Vienna);
        assert_eq!(
            b.headline,
            "Found on 2026-03-29 16:00: \
             events between 2026-03-29 04:00 and 2026-03-29 05:00 may be missing."
        );
        assert!(b.detail.contains("journal.damaged-x"));
    }
}
