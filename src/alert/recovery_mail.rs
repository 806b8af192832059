//! The one mail that says "part of the store's journal could not be read".
//!
//! `store::recovery` keeps a [`RecoveryNotice`] when records of the journal had bad
//! checksums (a failing SD card); this file words the owner's mail about it ([`compose`], pure) and queues it
//! exactly once ([`queue_once`]): the mail goes into the outbox in the same
//! [`AlertStore::commit`] that stores a marker state under the reserved alert name
//! [`marker`], so a restart (or a crash after queueing) never sends it again. It does
//! not send anything itself: the outbox task does, with its retries.

use chrono_tz::Tz;

use super::message::{html_body, message_id, text_body, MailContext};
use super::notification::Notification;
use super::outbox::{AlertStore, StoreError};
use super::state::AlertState;
use crate::store::recovery::{span_words, RecoveryNotice};

/// How long after a recovery its mail is still worth sending and the dashboard
/// shows its banner.
pub const NOTICE_DAYS: i64 = 7;

/// True while the recovery of `notice` is recent enough to tell the owner about.
pub fn is_recent(notice: &RecoveryNotice, now_ms: i64) -> bool {
    now_ms - notice.recovered_at_ms < NOTICE_DAYS * 86_400_000
}

/// The reserved alert-state name that records "this recovery was mailed". A `:`
/// keeps it apart from configured alert names, which are shown, not parsed.
pub fn marker(notice: &RecoveryNotice) -> String {
    format!("store-recovered:{}", notice.recovered_at_ms)
}

/// Queues the mail about `notice` unless it was queued before (or is no longer
/// recent at `now_ms`). Returns whether a mail was queued now.
pub fn queue_once(
    store: &dyn AlertStore,
    notice: &RecoveryNotice,
    ctx: &MailContext,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let name = marker(notice);
    if !is_recent(notice, now_ms) || store.load_state(&name)?.is_some() {
        return Ok(false);
    }
    let state = AlertState {
        last_notified_ms: Some(now_ms),
        evaluated_ms: Some(now_ms),
        ..AlertState::default()
    };
    store.commit(&name, &state, None, &[compose(notice, ctx)])?;
    Ok(true)
}

/// The mail about `notice`. Pure.
pub fn compose(notice: &RecoveryNotice, ctx: &MailContext) -> Notification {
    let span = span_words(notice.missing_from_ms, notice.missing_to_ms, |ms| {
        local(ms, ctx.tz)
    });
    let paragraphs = body(notice, ctx.tz);
    let link = ctx.dashboard_url.as_deref();
    Notification {
        alert: marker(notice),
        created_ms: notice.recovered_at_ms,
        message_id: message_id(
            "store-recovered",
            "recovered",
            notice.recovered_at_ms,
            &ctx.domain,
        ),
        subject: format!(
            "[watermeter] part of the stored history could not be read — events {span} may be missing"
        ),
        text: text_body(&paragraphs, link),
        html: Some(html_body(&paragraphs, link)),
        link: link.map(str::to_owned),
        channels: Vec::new(),
        facts: super::notification::Facts {
            kind: "store".into(),
            state: "notice".into(),
            value: notice.unreadable_bytes as f64,
            unit: "bytes".into(),
            ..Default::default()
        },
    }
}

fn body(n: &RecoveryNotice, tz: Tz) -> Vec<String> {
    vec![
        format!(
            "At {} watermeter found {} bytes of its journal (where every liter is kept) unreadable: {}. It is running again.",
            local(n.recovered_at_ms, tz),
            n.unreadable_bytes,
            n.reason
        ),
        format!(
            "Every readable record was kept: {} events. Events {} may be missing.",
            n.restored_events,
            span_words(n.missing_from_ms, n.missing_to_ms, |ms| local(ms, tz))
        ),
        format!(
            "The damaged journal was kept as {}; nothing was deleted.",
            n.damaged_copy
        ),
        "What to check: compare each meter's reading on the dashboard with the meter itself \
         and set it under Settings if they differ; look for the cause (a failing SD card or \
         power supply) and copy `watermeter export` somewhere safe; once all is well, the \
         damaged copy may be deleted."
            .to_string(),
    ]
}

fn local(ms: i64, tz: Tz) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::MemoryStore;

    fn notice() -> RecoveryNotice {
        RecoveryNotice {
            recovered_at_ms: 1_774_792_800_000, // 2026-03-29 14:00 UTC
            reason: "1 stretch with bad checksums".into(),
            unreadable_bytes: 4096,
            missing_from_ms: 1_774_749_600_000, // 02:00 UTC
            missing_to_ms: 1_774_753_200_000,   // 03:00 UTC
            damaged_copy: "/var/lib/watermeter/journal.damaged-20260329T140000Z".into(),
            restored_events: 1234,
        }
    }

    fn ctx() -> MailContext {
        MailContext {
            tz: chrono_tz::Europe::Vienna,
            dashboard_url: Some("http://pi:8080".into()),
            domain: "example.org".into(),
        }
    }

    #[test]
    fn the_mail_says_what_happened_and_what_may_be_missing() {
        let m = compose(&notice(), &ctx());
        assert_eq!(
            m.subject,
            "[watermeter] part of the stored history could not be read — events between 2026-03-29 04:00 CEST and 2026-03-29 05:00 CEST may be missing"
        );
        for words in [
            "found 4096 bytes of its journal (where every liter is kept) unreadable: 1 stretch with bad checksums.",
            "Every readable record was kept: 1234 events.",
            "kept as /var/lib/watermeter/journal.damaged-20260329T140000Z",
            "What to check:",
            "Dashboard: http://pi:8080",
        ] {
            assert!(m.text.contains(words), "{words:?} missing in {}", m.text);
        }
        assert!(m.message_id.ends_with("@example.org>"));
    }

    #[test]
    fn a_recovery_is_queued_once_however_often_it_is_asked() {
        let store = MemoryStore::new();
        let now = notice().recovered_at_ms + 1000;
        assert_eq!(queue_once(&store, &notice(), &ctx(), now).ok(), Some(true));
        assert_eq!(queue_once(&store, &notice(), &ctx(), now).ok(), Some(false));
        assert_eq!(store.outbox_pending().map(|p| p.len()).ok(), Some(1));
        // The mail went out (removed from the outbox): still not queued again.
        store.outbox_remove(1).ok();
        assert_eq!(queue_once(&store, &notice(), &ctx(), now).ok(), Some(false));
    }

    #[test]
    fn an_old_recovery_is_not_mailed() {
        let store = MemoryStore::new();
        let later = notice().recovered_at_ms + NOTICE_DAYS * 86_400_000;
        assert_eq!(
            queue_once(&store, &notice(), &ctx(), later).ok(),
            Some(false)
        );
        assert_eq!(store.outbox_pending().map(|p| p.len()).ok(), Some(0));
    }
}
