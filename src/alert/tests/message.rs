use super::*;
use crate::alert::kinds::continuous_flow::ContinuousFlow;
use crate::alert::kinds::night_use::NightUse;
use crate::alert::kinds::no_data::NoData;
use crate::alert::message::{address_domain, compose, duration, liters, MailContext};
use crate::alert::{Rule, Transition, TransitionKind};

fn ctx() -> MailContext {
    MailContext {
        tz: VIENNA,
        dashboard_url: Some("http://pi:8080".into()),
        domain: "example.org".into(),
    }
}

fn transition(kind: TransitionKind, value: f64, since: &str, at: &str) -> Transition {
    Transition {
        kind,
        at_ms: vienna(at),
        value,
        firing_since_ms: vienna(since),
        flow_l_per_min: 4.3,
        detail: None,
        run: None,
    }
}

#[test]
fn firing_subject_names_the_meter_the_amount_and_the_limit() {
    let t = transition(
        TransitionKind::Firing,
        123.0,
        "2026-11-26 14:05",
        "2026-11-26 14:05",
    );
    let (mail, history) = compose(&volume(60, 100.0), "House", &t, &ctx());
    assert_eq!(
        mail.subject,
        "[watermeter] More than 100 L in one hour: House: 123 L in 1 h (limit 100 L)"
    );
    assert_eq!(history.summary, mail.subject);
    assert_eq!(mail.created_ms, t.at_ms);
}

#[test]
fn resolved_and_reminder_subjects_say_so() {
    let r = volume(60, 100.0);
    let resolved = transition(
        TransitionKind::Resolved,
        80.0,
        "2026-11-26 14:05",
        "2026-11-26 16:00",
    );
    let reminder = transition(
        TransitionKind::Reminder,
        180.5,
        "2026-11-26 14:05",
        "2026-11-26 18:05",
    );
    let subject = |t| compose(&r, "House", &t, &ctx()).0.subject;
    assert_eq!(
        subject(resolved),
        "[watermeter] resolved: More than 100 L in one hour: House: 80 L in 1 h (limit 100 L)"
    );
    assert_eq!(
        subject(reminder),
        "[watermeter] still firing: More than 100 L in one hour: House: 181 L in 1 h (limit 100 L)"
    );
}

#[test]
fn body_says_since_when_in_local_time_the_flow_and_links_that_day() {
    // 23:30 in Vienna is 22:30 UTC: the link must name the local day.
    let t = transition(
        TransitionKind::Firing,
        123.0,
        "2026-11-26 23:30",
        "2026-11-26 23:30",
    );
    let (mail, _) = compose(&volume(60, 100.0), "House", &t, &ctx());
    for want in [
        "Firing since: 2026-11-26 23:30 (Europe/Vienna)",
        "Current flow: 4.3 L/min",
        "http://pi:8080/meters/main?range=hour&at=2026-11-26&hour=23",
        "reminder every 4 h",
    ] {
        assert!(
            mail.text.contains(want),
            "{want:?} missing in:\n{}",
            mail.text
        );
    }
    let html = mail.html.expect("html part");
    assert!(html.contains(
        "<a href=\"http://pi:8080/meters/main?range=hour&amp;at=2026-11-26&amp;hour=23\">"
    ));
}

#[test]
fn no_link_without_a_dashboard_url() {
    let t = transition(
        TransitionKind::Firing,
        123.0,
        "2026-11-26 14:05",
        "2026-11-26 14:05",
    );
    let ctx = MailContext {
        dashboard_url: None,
        ..ctx()
    };
    let (mail, _) = compose(&volume(60, 100.0), "House", &t, &ctx);
    assert!(!mail.text.contains("Dashboard"), "{}", mail.text);
}

#[test]
fn message_id_is_the_same_for_the_same_transition_and_differs_otherwise() {
    let r = volume(60, 100.0);
    let firing = transition(
        TransitionKind::Firing,
        1.0,
        "2026-11-26 14:05",
        "2026-11-26 14:05",
    );
    let resolved = Transition {
        kind: TransitionKind::Resolved,
        ..firing.clone()
    };
    let id = |t: &Transition| compose(&r, "House", t, &ctx()).0.message_id;
    let (firing, resolved) = (&firing, &resolved);
    assert_eq!(id(firing), id(firing));
    assert_ne!(id(firing), id(resolved));
    assert!(id(firing).starts_with('<') && id(firing).ends_with("@example.org>"));
}

#[test]
fn other_kinds_have_readable_subjects() {
    let at = "2026-11-26 03:00";
    let check = |r: Rule, value, expected: &str| {
        let t = transition(TransitionKind::Firing, value, at, at);
        assert_eq!(compose(&r, "House", &t, &ctx()).0.subject, expected);
    };
    check(
        rule(ContinuousFlow {
            duration: mins(120),
            quiet: mins(15),
        }),
        8100.0,
        "[watermeter] More than 100 L in one hour: House: water flowing for 2 h 15 min without a break (limit 2 h)",
    );
    check(
        rule(NightUse {
            from: hm("22:00"),
            to: hm("06:00"),
            threshold_liters: 20.0,
        }),
        25.0,
        "[watermeter] More than 100 L in one hour: House: 25 L at night 22:00–06:00 (limit 20 L)",
    );
    check(
        rule(NoData { after: mins(60) }),
        7200.0,
        "[watermeter] More than 100 L in one hour: House: no data for 2 h (limit 1 h)",
    );
}

#[test]
fn amounts_and_durations_read_naturally() {
    let cases = [
        (0.0, "0 L"),
        (2.5, "2.5 L"),
        (99.96, "100 L"),
        (1234.0, "1,234 L"),
    ];
    for (v, s) in cases {
        assert_eq!(liters(v), s);
    }
    let cases = [
        (45.0, "45 s"),
        (900.0, "15 min"),
        (3600.0, "1 h"),
        (5400.0, "1 h 30 min"),
        (604800.0, "7 d"),
        (97200.0, "1 d 3 h"),
    ];
    for (secs, s) in cases {
        assert_eq!(duration(secs), s);
    }
}

#[test]
fn the_domain_comes_from_the_from_address() {
    let cases = [
        ("watermeter <pi@example.org>", "example.org"),
        ("pi@home.lan", "home.lan"),
        ("no address", "localhost"),
    ];
    for (from, domain) in cases {
        assert_eq!(address_domain(from), domain);
    }
}

#[test]
fn mails_tell_when_the_water_started_and_the_whole_run_when_it_ends() {
    let mut t = transition(
        TransitionKind::Firing,
        7_200.0,
        "2026-11-26 14:00",
        "2026-11-26 14:00",
    );
    t.run = Some((
        vienna("2026-11-26 12:00"),
        vienna("2026-11-26 14:00"),
        480.0,
    ));
    let r = rule(ContinuousFlow {
        duration: mins(120),
        quiet: mins(15),
    });
    let (mail, _) = compose(&r, "House", &t, &ctx());
    assert!(
        mail.text.contains(
            "The water started at 2026-11-26 12:00 (Europe/Vienna); 480 L have run since."
        ),
        "{}",
        mail.text
    );
    t.kind = TransitionKind::Resolved;
    t.run = Some((
        vienna("2026-11-26 12:00"),
        vienna("2026-11-26 15:10"),
        755.0,
    ));
    let (mail, _) = compose(&r, "House", &t, &ctx());
    assert!(
        mail.text.contains(
            "The run: from 2026-11-26 12:00 to 2026-11-26 15:10 (Europe/Vienna), 755 L in all."
        ),
        "{}",
        mail.text
    );
}
