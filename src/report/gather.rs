//! Gathers a report from the store and queues it in the alert outbox, and the
//! task that does so when a report is due (`schedule.rs` says when).
//!
//! The report goes through the outbox like every notification: it survives a
//! power cut and a mail server outage, and goes out once. Which reports went out
//! is kept as the state of a reserved outbox name per kind ([`state_name`]),
//! written in the same commit as the mail, so a restart neither repeats a
//! report nor loses one. Nothing is sent before the system clock is
//! synchronised: a Pi without a real-time clock boots in the past.

use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, Days, NaiveDate};
use chrono_tz::Tz;
use tokio::sync::{watch, Notify};

use super::compose::compose;
use super::schedule::{last_due, next_due, period, period_before, should_send};
use super::{AlertLine, Comparison, MeterReport, PerPerson, Report, ReportKind};
use crate::alert::notification::Facts;
use crate::alert::{AlertStore, MailContext, Notification, RuleSet, TransitionKind};
use crate::buckets::{day_start, local, local_day_number};
use crate::config::{Config, NotifyKind};
use crate::draws::DrawBook;
use crate::store::Store;

/// How often the task looks at the clock (it may be stepped by NTP).
const RECHECK: Duration = Duration::from_secs(60);

/// What a report needs besides the config.
#[derive(Clone)]
pub struct Sources {
    pub store: Arc<Store>,
    pub draws: Arc<DrawBook>,
    pub rules: Arc<RuleSet>,
    /// Woken when a report is queued.
    pub outbox: Arc<Notify>,
}

/// The reserved name under which the outbox keeps which `kind` report went out
/// (a control character: no alert name in a config or a form has it).
pub fn state_name(kind: ReportKind) -> &'static str {
    match kind {
        ReportKind::Weekly => "\u{1}report weekly",
        ReportKind::Monthly => "\u{1}report monthly",
    }
}

/// The configured kinds.
fn kinds(config: &Config) -> Vec<ReportKind> {
    let mut kinds = Vec::new();
    if config.report.weekly {
        kinds.push(ReportKind::Weekly);
    }
    if config.report.monthly {
        kinds.push(ReportKind::Monthly);
    }
    kinds
}

/// The task: checks at start and then at every due time (and every minute, in
/// case the clock was stepped); returns when `shutdown` turns true.
pub async fn run(config: Arc<Config>, src: Sources, mut shutdown: watch::Receiver<bool>) {
    let kinds = kinds(&config);
    if kinds.is_empty() {
        return;
    }
    loop {
        if crate::clock::synchronized() {
            let (config, src) = (config.clone(), src.clone());
            let checked =
                tokio::task::spawn_blocking(move || check(&config, &src, crate::clock::wall_ms()));
            match checked.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("report not queued: {e}"),
                Err(e) => tracing::error!("the report check failed: {e}"),
            }
        }
        let now = crate::clock::wall_ms();
        let next = kinds
            .iter()
            .map(|k| next_due(*k, config.timezone, now))
            .min();
        let wait = next.map_or(RECHECK, |n| {
            Duration::from_millis(u64::try_from(n - now).unwrap_or(0)).min(RECHECK)
        });
        tokio::select! {
            _ = shutdown.wait_for(|down| *down) => return,
            _ = tokio::time::sleep(wait.max(Duration::from_millis(500))) => {}
        }
    }
}

/// Queues every configured report that is due at `now_ms` and not sent yet.
pub fn check(config: &Config, src: &Sources, now_ms: i64) -> Result<(), String> {
    for kind in kinds(config) {
        let due = last_due(kind, config.timezone, now_ms);
        let name = state_name(kind);
        let state = src.store.load_state(name).map_err(|e| e.0)?;
        let sent = state.as_ref().and_then(|s| s.last_notified_ms);
        let mut next = state.unwrap_or_default();
        next.last_notified_ms = Some(due);
        next.evaluated_ms = Some(now_ms);
        // A first check on a store that holds nothing from before the period (a
        // brand-new install): no report of a week that it never saw.
        let (start, _, _) = period(kind, config.timezone, due);
        let firsts: Vec<Option<i64>> = (0..config.meters.len())
            .map(|i| {
                let idx = i as crate::meter::MeterIdx;
                src.store.first_event_ms(idx).ok().flatten()
            })
            .collect();
        if should_send(sent, due, now_ms) && (sent.is_some() || saw(&firsts, start)) {
            let report = gather(config, src, kind, due).map_err(|e| e.to_string())?;
            let mail = notification(config, &report, kind, due, now_ms);
            tracing::info!("queued the {}", mail.subject);
            src.store
                .commit(name, &next, None, &[mail])
                .map_err(|e| e.0)?;
            src.outbox.notify_one();
        } else if sent.is_none_or(|s| s < due) {
            // A first start long after the due time: mark it done, send the next.
            src.store.commit(name, &next, None, &[]).map_err(|e| e.0)?;
        }
    }
    Ok(())
}

/// Whether the store holds water from before `start` for any meter (by each
/// meter's first event): a report of the period says something. Pure.
fn saw(first_events: &[Option<i64>], start: i64) -> bool {
    first_events.iter().flatten().any(|&f| f <= start)
}

fn notification(
    config: &Config,
    report: &Report,
    kind: ReportKind,
    due: i64,
    now_ms: i64,
) -> Notification {
    let ctx = MailContext::from_config(config);
    let (subject, text, html) = compose(report);
    // Every email channel is the one [smtp] server and its recipients: name one,
    // or the report would arrive once per channel.
    let channels: Vec<String> = match config.smtp {
        Some(_) => vec!["email".into()],
        None => config
            .notify
            .iter()
            .filter(|n| n.kind == NotifyKind::Email)
            .map(|n| n.name.clone())
            .take(1)
            .collect(),
    };
    let which = match kind {
        ReportKind::Weekly => "weekly",
        ReportKind::Monthly => "monthly",
    };
    Notification {
        alert: String::new(),
        created_ms: now_ms,
        message_id: crate::alert::message::message_id(which, "report", due, &ctx.domain),
        subject,
        text,
        html: Some(html),
        link: ctx.dashboard_url.map(|u| format!("{u}/")),
        channels,
        facts: Facts {
            kind: "report".into(),
            state: which.into(),
            unit: "L".into(),
            value: report.meters.iter().map(|m| m.liters).sum(),
            ..Facts::default()
        },
    }
}

/// The report due at `due` from the store.
pub fn gather(
    config: &Config,
    src: &Sources,
    kind: ReportKind,
    due: i64,
) -> Result<Report, crate::store::StoreError> {
    let tz = config.timezone;
    let (start, end, first) = period(kind, tz, due);
    let (b_start, b_end, before) = period_before(kind, tz, first);
    let last_day = local(tz, end - 1).date_naive();
    let title = match kind {
        ReportKind::Weekly => week_title(first, last_day),
        ReportKind::Monthly => first.format("%B %Y").to_string(),
    };
    let mut meters = Vec::new();
    for (i, m) in config.meters.iter().enumerate() {
        let idx = i as crate::meter::MeterIdx;
        let store = &src.store;
        let liters_in = |a: i64, b: i64| store.ml_between(idx, a, b).map(|ml| ml as f64 / 1000.0);
        let first_event = store.first_event_ms(idx)?;
        let known = |from: i64| first_event.is_some_and(|f| f <= from);
        let liters = liters_in(start, end)?;
        let cost = match &config.tariff {
            Some(t) => Some(crate::tariff::cost_between(t, tz, start, end, liters_in)?),
            None => None,
        };
        let mut days = Vec::new();
        let mut d = first;
        while d <= last_day {
            let (a, b) = (day_start(tz, d), next_day_start(tz, d));
            days.push((d.format("%a %-d").to_string(), liters_in(a, b)?));
            d = match d.succ_opt() {
                Some(n) => n,
                None => break,
            };
        }
        let mut comparisons = vec![Comparison {
            label: match kind {
                ReportKind::Weekly => "the week before".into(),
                ReportKind::Monthly => before.format("%B %Y").to_string(),
            },
            liters: known(b_start)
                .then(|| liters_in(b_start, b_end))
                .transpose()?,
        }];
        if kind == ReportKind::Monthly {
            if let Some(y) = first.checked_sub_months(chrono::Months::new(12)) {
                let (y0, y1) = (day_start(tz, y), day_start(tz, first_of_next_month(y)));
                comparisons.push(Comparison {
                    label: y.format("%B %Y").to_string(),
                    liters: known(y0).then(|| liters_in(y0, y1)).transpose()?,
                });
            }
        }
        let now = end.max(due);
        let draws = src.draws.days(
            store,
            tz,
            idx,
            local_day_number(tz, start),
            local_day_number(tz, end - 1),
            now,
        )?;
        let kinds = crate::draws::by_kind(&draws)
            .into_iter()
            .filter(|(_, l)| *l > 0.0)
            .map(|(k, l)| (k.words().to_string(), l))
            .collect();
        // Per person: over the whole days the history holds (not a day begun
        // before the first event), as the dashboard counts.
        let mut whole_days = 0.0;
        let mut whole_liters = 0.0;
        let mut day = first;
        for (_, l) in &days {
            if known(day_start(tz, day)) {
                whole_days += 1.0;
                whole_liters += l;
            }
            day = day.succ_opt().unwrap_or(day);
        }
        let per_person = m
            .persons
            .filter(|_| whole_days > 0.0)
            .map(|persons| PerPerson {
                persons,
                liters: whole_liters / whole_days / f64::from(persons),
                reference_liters: crate::compare::REFERENCE_LITERS,
                reference: crate::compare::REFERENCE_SOURCE.to_string(),
            });
        meters.push(MeterReport {
            id: m.id.clone(),
            name: m.name.clone(),
            liters,
            cost,
            days,
            comparisons,
            kinds,
            per_person,
        });
    }
    Ok(Report {
        kind,
        title,
        currency: config.tariff.as_ref().map(|t| t.currency.clone()),
        meters,
        alerts: alert_lines(src, tz, start, end),
        dashboard_url: MailContext::from_config(config).dashboard_url,
    })
}

/// "Week 48: 23–29 November 2026", or across months "Week 49: 30 November – 6 December 2026".
fn week_title(first: NaiveDate, last: NaiveDate) -> String {
    let week = first.iso_week().week();
    if first.month() == last.month() {
        format!(
            "Week {week}: {}–{}",
            first.format("%-d"),
            last.format("%-d %B %Y")
        )
    } else if first.year() == last.year() {
        format!(
            "Week {week}: {} – {}",
            first.format("%-d %B"),
            last.format("%-d %B %Y")
        )
    } else {
        format!(
            "Week {week}: {} – {}",
            first.format("%-d %B %Y"),
            last.format("%-d %B %Y")
        )
    }
}

fn next_day_start(tz: Tz, d: NaiveDate) -> i64 {
    day_start(tz, d.checked_add_days(Days::new(1)).unwrap_or(d))
}

fn first_of_next_month(d: NaiveDate) -> NaiveDate {
    d.checked_add_months(chrono::Months::new(1)).unwrap_or(d)
}

/// The alerts that fired (or budgets that reached a level) in `[start, end)`, oldest first.
fn alert_lines(src: &Sources, tz: Tz, start: i64, end: i64) -> Vec<AlertLine> {
    let mut names = src.rules.config_names();
    names.extend(src.rules.saved().into_iter().map(|s| s.alert.name));
    let mut lines: Vec<(i64, String)> = Vec::new();
    for name in names {
        let history = src
            .store
            .history(&name, crate::alert::persist::HISTORY_KEEP);
        for h in history.unwrap_or_default() {
            let counts = matches!(h.kind, TransitionKind::Firing | TransitionKind::Level);
            if counts && h.at_ms >= start && h.at_ms < end {
                let text = h
                    .summary
                    .strip_prefix("[watermeter] ")
                    .unwrap_or(&h.summary);
                lines.push((h.at_ms, text.to_string()));
            }
        }
    }
    lines.sort();
    lines
        .into_iter()
        .map(|(at, text)| AlertLine {
            at: local(tz, at).format("%a %-d %b %H:%M").to_string(),
            text,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_install_reports_no_period_it_never_saw() {
        let start = 1_000_000;
        assert!(!saw(&[], start), "no meter");
        assert!(!saw(&[None, Some(start + 1)], start), "water only since");
        assert!(saw(&[None, Some(start)], start), "imported history");
        assert!(saw(&[Some(start - 86_400_000)], start));
    }
}
