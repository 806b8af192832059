use super::*;
use crate::alert::rules::{Measurement, MemoryUsage};
use crate::alert::state::{step, AlertState, TransitionKind::*};
use crate::alert::{check_rule, AlertStore, MailContext, MemoryStore, TransitionKind};

/// Feed `(minute, breached)` through the state machine (repeat 4 h, hold 15 min)
/// and compare the transitions with `expected` `(minute, kind)`.
fn check(steps: &[(i64, bool)], expected: &[(i64, TransitionKind)]) {
    check_with(steps, mins(240), expected)
}

fn check_with(steps: &[(i64, bool)], repeat: Duration, expected: &[(i64, TransitionKind)]) {
    let mut state = AlertState::default();
    let mut got = Vec::new();
    for &(minute, breached) in steps {
        let m = Measurement {
            value: 0.0,
            breached,
        };
        let (next, kind) = step(&state, m, minute * MIN, repeat, mins(15));
        got.extend(kind.map(|k| (minute, k)));
        state = next;
    }
    assert_eq!(got, expected, "steps {steps:?}");
}

/// A breach from `from` to `to` (exclusive), sampled every minute until `end`.
fn breach(from: i64, to: i64, end: i64) -> Vec<(i64, bool)> {
    (0..end).map(|m| (m, m >= from && m < to)).collect()
}

#[test]
fn fires_once_and_resolves_once_after_the_hold() {
    check(&breach(10, 30, 60), &[(10, Firing), (45, Resolved)]);
}

#[test]
fn reminds_every_repeat_while_firing() {
    check(
        &breach(0, 600, 601),
        &[(0, Firing), (240, Reminder), (480, Reminder)],
    );
}

#[test]
fn no_reminders_when_repeat_is_zero() {
    check_with(&breach(0, 600, 601), Duration::ZERO, &[(0, Firing)]);
}

#[test]
fn flapping_around_the_threshold_sends_one_firing_and_one_resolved() {
    // Over, under, over, under … every few minutes for two hours, then quiet.
    let mut steps: Vec<(i64, bool)> = (0..120).map(|m| (m, (m / 3) % 2 == 0)).collect();
    steps.extend((120..200).map(|m| (m, false)));
    check(&steps, &[(0, Firing), (132, Resolved)]);
}

#[test]
fn a_breach_during_the_hold_restarts_it() {
    let mut steps = breach(0, 10, 20);
    steps.push((20, true));
    steps.extend((21..50).map(|m| (m, false)));
    check(&steps, &[(0, Firing), (36, Resolved)]);
}

#[test]
fn fires_again_after_resolving() {
    let mut steps = breach(0, 5, 30);
    steps.extend(breach(40, 45, 80).into_iter().filter(|(m, _)| *m >= 30));
    check(
        &steps,
        &[(0, Firing), (20, Resolved), (40, Firing), (60, Resolved)],
    );
}

#[test]
fn a_clock_going_backwards_sends_nothing() {
    check(
        &[(100, true), (50, true), (60, false), (10, true)],
        &[(100, Firing)],
    );
}

#[test]
fn restart_in_the_middle_of_an_alert_neither_resends_nor_forgets() {
    let rule = volume(60, 100.0);
    let ctx = MailContext {
        tz: VIENNA,
        dashboard_url: None,
        domain: "example.org".into(),
    };
    let store = MemoryStore::new();
    let mut usage = MemoryUsage::new();
    let t0 = vienna("2026-11-26 10:00");
    usage.add("main", t0, 120.0);
    let run = |usage: &MemoryUsage, now| {
        check_rule(&rule, "House", usage, &store, &ctx, now).expect("memory store")
    };
    assert_eq!(run(&usage, t0).transition.map(|t| t.kind), Some(Firing));
    // "Restart": everything below starts from what the store holds (serde bytes).
    let stored = store.load_state(&rule.name).expect("load").expect("state");
    assert_eq!(stored.firing_since, Some(t0));
    for minute in [1, 30, 59] {
        usage.add("main", t0 + minute * MIN, 60.0);
        assert_eq!(
            run(&usage, t0 + minute * MIN).transition,
            None,
            "minute {minute}"
        );
    }
    let reminder = run(&usage, t0 + 4 * HOUR).transition.map(|t| t.kind);
    assert_eq!(
        reminder, None,
        "no water for 3 h: the hold runs instead of a reminder"
    );
    let resolved = run(&usage, t0 + 4 * HOUR + 15 * MIN)
        .transition
        .expect("resolved");
    assert_eq!((resolved.kind, resolved.firing_since_ms), (Resolved, t0));
    let kinds: Vec<_> = store
        .history(&rule.name, 10)
        .expect("history")
        .iter()
        .map(|h| h.kind)
        .collect();
    assert_eq!(kinds, [Resolved, Firing]);
    assert_eq!(store.outbox_pending().expect("pending").len(), 2);
}

#[test]
fn quiet_ticks_are_not_written_to_the_store() {
    let rule = volume(60, 100.0);
    let usage = MemoryUsage::new();
    let eval = crate::alert::evaluate(&rule, &usage, &AlertState::default(), HOUR, VIENNA);
    assert!(!eval.persist);
    assert_eq!(eval.state.evaluated_ms, Some(HOUR));
}

#[test]
fn state_survives_a_serde_round_trip() {
    let state = AlertState {
        firing_since: Some(1),
        last_notified_ms: Some(2),
        clear_since: Some(3),
        value: 123.5,
        evaluated_ms: Some(4),
        period_ms: Some(5),
        level: 2,
        levels_key: Some("Liters(100.0) [75.0, 100.0]".into()),
        episode_start_ms: Some(0),
        finding: Some("Drip since 12:00, about 2 L/h, 24 L so far".into()),
    };
    let bytes = serde_json::to_vec(&state).expect("serialize");
    assert_eq!(
        serde_json::from_slice::<AlertState>(&bytes).expect("parse"),
        state
    );
    // A state written before `clear_since` existed still loads.
    let old = br#"{"firing_since":1,"last_notified_ms":2,"value":5.0}"#;
    let loaded: AlertState = serde_json::from_slice(old).expect("old state");
    assert_eq!(loaded.clear_since, None);
}
