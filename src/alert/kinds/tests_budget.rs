//! Budgets: their keys as `check-config` reports them, and the levels each
//! period notifies once, through the real state machine.

use super::budget::{Budget, Limit, Period};
use super::*;
use crate::alert::rules::MemoryUsage;
use crate::alert::state::{evaluate, AlertState, TransitionKind};
use crate::alert::tests::{vienna, VIENNA};

const TARIFF: &str = "[tariff]\ncurrency = \"EUR\"\nprice_per_m3 = 2.0\nsewage_per_m3 = 2.0\n";

fn budget_rule(limit: Limit, period: Period) -> Rule {
    Rule {
        name: "budget".into(),
        meter: "main".into(),
        repeat: Duration::from_secs(4 * 3600),
        kind: Arc::new(Budget {
            period,
            limit,
            levels: vec![75.0, 100.0],
        }),
        notify: Vec::new(),
    }
}

/// Runs the rule at each of `times` and returns the transitions with their values.
fn run(rule: &Rule, usage: &MemoryUsage, times: &[i64]) -> Vec<(i64, TransitionKind, f64)> {
    let mut state = AlertState::default();
    let mut out = Vec::new();
    for &t in times {
        let e = evaluate(rule, usage, &state, t, VIENNA);
        if let Some(tr) = e.transition {
            out.push((t, tr.kind, tr.value));
        }
        state = e.state;
    }
    out
}

#[test]
fn a_budgets_keys_are_read_and_each_mistake_named() {
    let (kind, _) = kind_of("kind = \"budget\"\nperiod = \"week\"\nlimit_liters = 1000\n");
    assert_same(
        &kind,
        &Budget {
            period: Period::Week,
            limit: Limit::Liters(1000.0),
            levels: vec![75.0, 100.0],
        },
    );
    check(
        &alert("kind = \"budget\"\nperiod = \"fortnight\"\nlimit_liters = 0\nlevels = [100, 75]\n"),
        &[
            (7, "alert[0].period", "use \"day\", \"week\" or \"month\""),
            (8, "alert[0].limit_liters", "must be more than 0"),
            (9, "alert[0].levels", "ascending"),
        ],
    );
    check(
        &alert("kind = \"budget\"\nperiod = \"month\"\nlimit_liters = 10\nlimit_cost = 5\n"),
        &[
            (9, "alert[0].limit_cost", "not both"),
            (9, "alert[0].limit_cost", "add a [tariff] table"),
        ],
    );
    check(
        &alert("kind = \"budget\"\nperiod = \"month\"\nlimit_cost = 30\n"),
        &[(8, "alert[0].limit_cost", "add a [tariff] table")],
    );
    let with_tariff = format!(
        "{}{TARIFF}",
        alert("kind = \"budget\"\nperiod = \"month\"\nlimit_cost = 30\nlevels = [50, 90, 100]\n")
    );
    let rule = rules(&ok(&with_tariff)).remove(0);
    assert!(rule.kind.describe().contains("monthly budget of 30"));
    check(
        &alert("kind = \"budget\"\nperiod = \"day\"\nlimit_liters = 10\nlevels = \"75\"\n"),
        &[(9, "alert[0].levels", "a list of numbers")],
    );
}

#[test]
fn each_level_notifies_once_per_period_and_a_new_period_starts_quietly() {
    let rule = budget_rule(Limit::Liters(1000.0), Period::Week);
    let mut usage = MemoryUsage::new();
    // Monday 2026-11-30 in Vienna: 500 L, then 300 L (80 %), then 150 L more (95 %).
    usage.add("main", vienna("2026-11-30 08:00"), 500.0);
    usage.add("main", vienna("2026-12-01 08:00"), 300.0);
    usage.add("main", vienna("2026-12-02 08:00"), 150.0);
    usage.add("main", vienna("2026-12-03 08:00"), 60.0);
    // The next week: 900 L on Monday at once, past both levels.
    usage.add("main", vienna("2026-12-07 09:00"), 1200.0);
    let times: Vec<i64> = [
        "2026-11-30 09:00",
        "2026-12-01 07:59",
        "2026-12-01 08:00",
        "2026-12-01 20:00",
        "2026-12-02 09:00",
        "2026-12-03 09:00",
        "2026-12-04 09:00",
        "2026-12-07 00:30",
        "2026-12-07 10:00",
        "2026-12-07 11:00",
    ]
    .iter()
    .map(|t| vienna(t))
    .collect();
    let got = run(&rule, &usage, &times);
    let at: Vec<(i64, TransitionKind)> = got.iter().map(|(t, k, _)| (*t, *k)).collect();
    assert_eq!(
        at,
        vec![
            (vienna("2026-12-01 08:00"), TransitionKind::Level),
            (vienna("2026-12-03 09:00"), TransitionKind::Level),
            (vienna("2026-12-07 10:00"), TransitionKind::Level),
        ],
        "{got:?}"
    );
    assert!((got[0].2 - 80.0).abs() < 1e-9);
    assert!((got[1].2 - 101.0).abs() < 1e-9);
    assert!((got[2].2 - 120.0).abs() < 1e-9);
}

#[test]
fn a_budget_in_money_prices_the_period_at_the_tariff() {
    let rule = budget_rule(Limit::Cost(10.0), Period::Month);
    let mut usage = MemoryUsage::new();
    let config = ok(&format!("{METER}{TARIFF}"));
    usage.tariff = config.tariff.clone();
    // 4 EUR per m³: 2000 L is 8 EUR (80 %) in December; November does not count.
    usage.add("main", vienna("2026-11-30 08:00"), 5000.0);
    usage.add("main", vienna("2026-12-01 00:00"), 2000.0);
    let got = run(&rule, &usage, &[vienna("2026-12-01 06:00")]);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!((got[0].2 - 80.0).abs() < 1e-6, "{got:?}");
    let words = rule.kind.summary("House", got[0].2, false, Some("EUR"));
    assert_eq!(
        words,
        "House: 80 % of the monthly budget, 8.00 EUR of 10.00 EUR this month"
    );
}

#[test]
fn a_budget_mail_says_the_level_the_period_and_what_comes_next() {
    let rule = budget_rule(Limit::Liters(1000.0), Period::Day);
    let mut usage = MemoryUsage::new();
    usage.add("main", vienna("2026-12-01 08:00"), 800.0);
    let at = vienna("2026-12-01 09:00");
    let e = evaluate(&rule, &usage, &AlertState::default(), at, VIENNA);
    let t = e.transition.expect("75 % reached");
    let ctx = crate::alert::MailContext {
        tz: VIENNA,
        dashboard_url: Some("http://pi:8080".into()),
        domain: "example.org".into(),
    };
    let (mail, history) = crate::alert::compose(&rule, "House", &t, &ctx);
    assert_eq!(
        mail.subject,
        "[watermeter] budget: House: 80 % of the daily budget, 800 L of 1,000 L today"
    );
    assert!(mail
        .text
        .contains("Counted since Tuesday 2026-12-01 00:00 (Europe/Vienna)."));
    assert!(mail.text.contains("one more notification at 100 %"));
    assert!(!mail.text.contains("Firing since"), "{}", mail.text);
    assert_eq!(
        mail.link.as_deref(),
        Some("http://pi:8080/meters/main?range=day&at=2026-12-01")
    );
    assert_eq!(mail.facts.state, "level");
    assert_eq!(history.kind, TransitionKind::Level);
}

#[test]
fn an_edited_budget_counts_its_levels_again_within_the_period() {
    let mut usage = MemoryUsage::new();
    usage.add("main", vienna("2026-12-01 08:00"), 1100.0);
    let at = vienna("2026-12-01 09:00");
    let before = budget_rule(Limit::Liters(1000.0), Period::Day);
    let e = evaluate(&before, &usage, &AlertState::default(), at, VIENNA);
    assert_eq!(e.state.level, 2, "110 % of 1000 L: both levels");
    // Raised to 2000 L: 55 %, nothing; at 80 % the 75 % level notifies again.
    let after = budget_rule(Limit::Liters(2000.0), Period::Day);
    let e = evaluate(&after, &usage, &e.state, at + 60_000, VIENNA);
    assert_eq!((e.transition.is_some(), e.state.level), (false, 0));
    usage.add("main", vienna("2026-12-01 10:00"), 500.0);
    let e = evaluate(&after, &usage, &e.state, vienna("2026-12-01 10:01"), VIENNA);
    assert_eq!(e.transition.map(|t| t.kind), Some(TransitionKind::Level));
    assert_eq!(e.state.level, 1);
}
