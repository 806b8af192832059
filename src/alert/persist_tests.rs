//! Alert persistence through the `AlertStore` and `UsageView` traits on a temp directory.

use std::sync::Arc;

use super::*;
use crate::alert::{TransitionKind, UsageView};
use crate::config::MeterConfig;
use crate::meter::{Sample, SampleValue};
use crate::store::Store;

fn meter(id: &str) -> MeterConfig {
    MeterConfig::with_id(id)
}

fn open(dir: &std::path::Path) -> Store {
    Store::open(
        dir,
        1 << 20,
        chrono_tz::UTC,
        &[meter("main"), meter("garden")],
    )
    .unwrap()
}

fn mail(alert: &str, subject: &str) -> Notification {
    Notification {
        alert: alert.into(),
        created_ms: 1,
        message_id: format!("<{subject}@x>"),
        subject: subject.into(),
        text: "body".into(),
        html: None,
        link: None,
        channels: Vec::new(),
        facts: Default::default(),
    }
}

fn line(at_ms: i64, kind: TransitionKind) -> HistoryEntry {
    HistoryEntry {
        at_ms,
        kind,
        value: 120.0,
        summary: format!("line {at_ms}"),
    }
}

fn firing(since: i64) -> AlertState {
    AlertState {
        firing_since: Some(since),
        last_notified_ms: Some(since),
        ..AlertState::default()
    }
}

#[test]
fn state_history_and_mail_survive_a_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let ids = {
        let s = open(tmp.path());
        assert_eq!(s.load_state("a").unwrap(), None);
        s.commit(
            "a",
            &firing(5),
            Some(&line(5, TransitionKind::Firing)),
            &[mail("a", "fired")],
        )
        .unwrap()
    };
    let s = open(tmp.path());
    assert_eq!(s.load_state("a").unwrap(), Some(firing(5)));
    assert_eq!(
        s.history("a", 10).unwrap(),
        vec![line(5, TransitionKind::Firing)]
    );
    let pending = s.outbox_pending().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, ids[0]);
    assert_eq!(pending[0].notification, mail("a", "fired"));
    assert_eq!(pending[0].attempt, None);
}

#[test]
fn outbox_ids_keep_growing_across_restarts_so_order_is_commit_order() {
    let tmp = tempfile::tempdir().unwrap();
    let first = open(tmp.path())
        .commit("a", &firing(1), None, &[mail("a", "1"), mail("a", "2")])
        .unwrap();
    let second = open(tmp.path())
        .commit("b", &firing(2), None, &[mail("b", "3")])
        .unwrap();
    assert!(first[0] < first[1] && first[1] < second[0]);
    let s = open(tmp.path());
    let subjects: Vec<_> = s
        .outbox_pending()
        .unwrap()
        .into_iter()
        .map(|p| p.notification.subject)
        .collect();
    assert_eq!(subjects, ["1", "2", "3"]);
}

#[test]
fn a_failure_is_recorded_on_the_mail_and_removal_forgets_it() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(tmp.path());
    let ids = s
        .commit("a", &firing(1), None, &[mail("a", "1"), mail("a", "2")])
        .unwrap();
    let attempt = Attempt {
        count: 2,
        last_error: "mail through h:25: refused".into(),
        last_try_ms: 10,
        next_try_ms: 70,
        delivered: vec!["ntfy".into()],
        failed: vec!["email".into()],
    };
    s.outbox_record_failure(ids[0], &attempt).unwrap();
    assert_eq!(
        crate::alert::outbox_status(&s).unwrap(),
        crate::alert::OutboxStatus {
            pending: 2,
            failing: Some(attempt)
        }
    );
    s.outbox_remove(ids[0]).unwrap();
    let left = open_again(s, tmp.path()).outbox_pending().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, ids[1]);
}

fn open_again(s: Store, dir: &std::path::Path) -> Store {
    drop(s);
    open(dir)
}

#[test]
fn history_is_newest_first_per_alert_and_keeps_the_last_hundred() {
    let tmp = tempfile::tempdir().unwrap();
    let s = open(tmp.path());
    for i in 0..(HISTORY_KEEP as i64 + 5) {
        s.commit(
            "ab",
            &firing(i),
            Some(&line(i, TransitionKind::Reminder)),
            &[],
        )
        .unwrap();
    }
    s.commit(
        "a",
        &firing(0),
        Some(&line(999, TransitionKind::Firing)),
        &[],
    )
    .unwrap();
    let all = s.history("ab", 1000).unwrap();
    assert_eq!(all.len(), HISTORY_KEEP);
    assert_eq!(all[0].at_ms, HISTORY_KEEP as i64 + 4);
    assert_eq!(all[HISTORY_KEEP - 1].at_ms, 5);
    assert_eq!(s.history("ab", 2).unwrap().len(), 2);
    assert_eq!(
        s.history("a", 10).unwrap(),
        vec![line(999, TransitionKind::Firing)]
    );
}

#[test]
fn usage_view_counts_from_exclusive_to_inclusive_by_meter_id() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(open(tmp.path()));
    let ev = |meter, ts_ms| Sample {
        meter,
        ts_ms,
        value: SampleValue::Liters(1.0),
    };
    // Events on both sides of a quarter-hour boundary and on another meter.
    store
        .apply(&[ev(0, 1_000), ev(0, 900_000), ev(0, 900_001), ev(1, 5_000)])
        .unwrap();
    let u = StoreUsage::new(store, &[meter("main"), meter("garden")]);
    let check = |from, to, liters: f64| assert_eq!(u.liters_between("main", from, to), liters);
    check(1_000, 900_000, 1.0);
    check(999, 900_000, 2.0);
    check(0, 2_000_000, 3.0);
    check(900_000, 900_001, 1.0);
    assert_eq!(u.liters_between("garden", 0, 10_000), 1.0);
    assert_eq!(u.liters_between("nope", 0, 10_000), 0.0);
    assert_eq!(
        u.event_times("main", 1_000, 900_001),
        vec![900_000, 900_001]
    );
    assert_eq!(u.last_event_ms("main"), Some(900_001));
    assert_eq!(u.last_seen_ms("garden"), Some(5_000));
    assert_eq!(u.last_event_ms("nope"), None);
}

/// An outbox entry written by 0.2 (no `link`, no `delivered`) still reads: a mail
/// waiting across the upgrade is not lost.
#[test]
fn an_outbox_entry_from_before_the_channels_still_reads() {
    let old = br#"{"mail":{"alert":"a","created_ms":5,"message_id":"<x@y>","subject":"s","text":"t","html":null},"attempt":{"count":1,"last_error":"e","last_try_ms":1,"next_try_ms":2}}"#;
    let stored: super::StoredMail = serde_json::from_slice(old).unwrap();
    assert_eq!(stored.notification.subject, "s");
    assert_eq!(stored.notification.link, None);
    assert!(stored.attempt.unwrap().delivered.is_empty());
}

#[test]
fn browser_made_alerts_keep_their_state_apart_from_a_config_alert_of_the_same_name() {
    use crate::alert::persist::{delete_alert, save_alert, saved_alerts};
    use crate::alert::SavedAlert;
    let tmp = tempfile::tempdir().unwrap();
    let s = open(tmp.path());
    let saved = |name: &str| SavedAlert {
        name: name.into(),
        toml: format!("[[alert]]\nname = \"{name}\"\n"),
        paused: false,
        changed_ms: 1,
    };
    // A config alert "Night" runs (with state and history); a stored browser
    // alert of the same name, no longer running, is deleted: only it goes.
    s.commit(
        "Night",
        &firing(10),
        Some(&line(10, TransitionKind::Firing)),
        &[],
    )
    .unwrap();
    save_alert(&s, None, &saved("Night"), &[]).unwrap();
    s.commit(
        "Night",
        &firing(10),
        Some(&line(10, TransitionKind::Firing)),
        &[],
    )
    .unwrap();
    delete_alert(&s, "Night", &["Night".to_string()]).unwrap();
    assert!(saved_alerts(&s).unwrap().is_empty());
    assert_eq!(s.load_state("Night").unwrap(), Some(firing(10)));
    assert_eq!(s.history("Night", 10).unwrap().len(), 1);
    // A browser alert's own state goes with it, and a new alert of a reused
    // name starts clean.
    save_alert(&s, None, &saved("Hose"), &[]).unwrap();
    s.commit(
        "Hose",
        &firing(20),
        Some(&line(20, TransitionKind::Firing)),
        &[],
    )
    .unwrap();
    delete_alert(&s, "Hose", &[]).unwrap();
    s.commit("Hose", &firing(30), None, &[]).unwrap();
    save_alert(&s, None, &saved("Hose"), &[]).unwrap();
    assert_eq!(s.load_state("Hose").unwrap(), None);
    assert!(s.history("Hose", 10).unwrap().is_empty());
    // A rename takes the state along only by dropping the old one.
    s.commit("Hose", &firing(40), None, &[]).unwrap();
    save_alert(&s, Some("Hose"), &saved("Garden"), &[]).unwrap();
    assert_eq!(s.load_state("Hose").unwrap(), None);
    let names: Vec<String> = saved_alerts(&s)
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, vec!["Garden"]);
}
