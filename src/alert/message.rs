//! The words of an alert mail: subject, plain text, HTML, Message-ID. Pure.
//!
//! Mails are composed when a transition happens, not when they are sent, so a mail
//! that waits in the outbox for an hour still says what happened and when. Knows
//! nothing about SMTP (that is `mail.rs`).

use chrono_tz::Tz;

use crate::config::Config;

use super::kinds::Rule;
use super::notification::{Facts, Notification};
use super::state::{HistoryEntry, Transition, TransitionKind};

/// What composing needs from the config.
#[derive(Debug, Clone)]
pub struct MailContext {
    pub tz: Tz,
    /// `[http] public_url` (or `[smtp] dashboard_url`) without a trailing slash.
    pub dashboard_url: Option<String>,
    /// The domain of `[smtp] from`, for Message-IDs.
    pub domain: String,
}

impl MailContext {
    pub fn from_config(config: &Config) -> Self {
        let smtp = config.smtp.as_ref();
        MailContext {
            tz: config.timezone,
            dashboard_url: config
                .public_url()
                .map(|u| u.trim_end_matches('/').to_owned()),
            domain: smtp.map_or_else(|| "localhost".to_owned(), |s| address_domain(&s.from)),
        }
    }
}

/// Compose the mail and the history line for `t` of `rule` on the meter named `meter_name`.
pub fn compose(
    rule: &Rule,
    meter_name: &str,
    t: &Transition,
    ctx: &MailContext,
) -> (Notification, HistoryEntry) {
    let summary = summary(rule, meter_name, t);
    let prefix = match t.kind {
        TransitionKind::Firing => "[watermeter] ",
        TransitionKind::Reminder => "[watermeter] still firing: ",
        TransitionKind::Resolved => "[watermeter] resolved: ",
        TransitionKind::Level => "[watermeter] ",
    };
    let link = ctx.dashboard_url.as_ref().map(|base| {
        if let Some(range) = period_range(rule, t, ctx.tz) {
            return format!(
                "{base}/meters/{}?range={range}&at={}",
                rule.meter,
                local(t.at_ms, ctx.tz).format("%Y-%m-%d")
            );
        }
        // The hour in minutes: a burst of three minutes is not one hourly bar.
        let since = local(t.firing_since_ms, ctx.tz);
        format!(
            "{base}/meters/{}?range=hour&at={}&hour={}",
            rule.meter,
            since.format("%Y-%m-%d"),
            since.format("%-H")
        )
    });
    let paragraphs = body(rule, meter_name, t, ctx.tz);
    let mail = Notification {
        alert: rule.name.clone(),
        created_ms: t.at_ms,
        message_id: message_id(&rule.name, t.kind.as_str(), t.at_ms, &ctx.domain),
        subject: format!("{prefix}{}: {summary}", rule.name),
        text: text_body(&paragraphs, link.as_deref()),
        html: Some(html_body(&paragraphs, link.as_deref())),
        link,
        channels: rule.notify.clone(),
        facts: Facts {
            kind: rule.kind.name().to_string(),
            meter: rule.meter.clone(),
            state: t.kind.as_str().to_string(),
            value: t.value,
            unit: rule.kind.unit().to_string(),
            since_ms: Some(t.firing_since_ms),
        },
    };
    let history = HistoryEntry {
        at_ms: t.at_ms,
        kind: t.kind,
        value: t.value,
        summary: mail.subject.clone(),
    };
    (mail, history)
}

/// A stable, unique Message-ID: the same transition always gets the same id, so a
/// mail re-sent after a crash can be recognised as a duplicate by mail clients;
/// and two installs never share one (a weekly report is due at the same minute
/// everywhere, and many send from the same mail domain): the id carries this
/// machine's token.
pub fn message_id(alert: &str, kind: &str, at_ms: i64, domain: &str) -> String {
    format!(
        "<{at_ms}.{kind}.{:016x}.{:08x}.watermeter@{domain}>",
        fnv1a(alert),
        machine_token()
    )
}

/// This machine, as a number: a hash of systemd's `/etc/machine-id` (unique per
/// install, stable across restarts), else of the host name.
fn machine_token() -> u32 {
    static TOKEN: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *TOKEN.get_or_init(|| {
        let id = std::fs::read_to_string("/etc/machine-id")
            .or_else(|_| std::fs::read_to_string("/proc/sys/kernel/hostname"))
            .unwrap_or_default();
        fnv1a(id.trim()) as u32
    })
}

/// The domain of an address like `watermeter <pi@example.org>`.
pub fn address_domain(addr: &str) -> String {
    addr.rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches(['>', ' ']).trim())
        .filter(|d| !d.is_empty())
        .unwrap_or("localhost")
        .to_owned()
}

/// The one-line summary of a transition, without the `[watermeter]` prefix.
pub fn summary(rule: &Rule, meter: &str, t: &Transition) -> String {
    rule.kind.summary(
        meter,
        t.value,
        t.kind == TransitionKind::Resolved,
        t.detail.as_deref(),
    )
}

/// The meter page's range that shows a budget's period (`None`: not a budget).
fn period_range(rule: &Rule, t: &Transition, tz: Tz) -> Option<&'static str> {
    rule.kind.levels(t.at_ms, tz).map(|l| l.range)
}

/// A budget's mail: which level, what the period used, when it began.
fn level_body(rule: &Rule, meter: &str, t: &Transition, tz: Tz) -> Vec<String> {
    let when = |ms: i64| local(ms, tz).format("%A %Y-%m-%d %H:%M").to_string();
    let mut lines = vec![
        format!(
            "Budget \"{}\" on meter {meter} reached {:.0} %.",
            rule.name,
            t.value.floor()
        ),
        format!("Now: {}.", summary(rule, meter, t)),
    ];
    if let Some(levels) = rule.kind.levels(t.at_ms, tz) {
        lines.push(format!(
            "Counted since {} ({tz}).",
            when(levels.period_start_ms)
        ));
        if let Some(next) = levels.percents.iter().find(|l| t.value < **l) {
            lines.push(format!(
                "You get one more notification at {next} %; the next period starts again without one."
            ));
        } else {
            lines.push("The next period starts again without a notification.".to_string());
        }
    }
    lines
}

fn body(rule: &Rule, meter: &str, t: &Transition, tz: Tz) -> Vec<String> {
    if t.kind == TransitionKind::Level {
        return level_body(rule, meter, t, tz);
    }
    let since = local(t.firing_since_ms, tz).format("%Y-%m-%d %H:%M");
    let at = local(t.at_ms, tz).format("%Y-%m-%d %H:%M");
    let head = match t.kind {
        TransitionKind::Firing => format!("Alert \"{}\" on meter {meter} is firing.", rule.name),
        TransitionKind::Reminder => format!(
            "Alert \"{}\" on meter {meter} is still firing (reminder).",
            rule.name
        ),
        TransitionKind::Resolved | TransitionKind::Level => {
            format!("Alert \"{}\" on meter {meter} resolved at {at}.", rule.name)
        }
    };
    let mut lines = vec![head, format!("Now: {}.", summary(rule, meter, t))];
    let when = |ms: i64| local(ms, tz).format("%Y-%m-%d %H:%M").to_string();
    match (t.kind, t.run) {
        (TransitionKind::Resolved, Some((from, to, l))) => lines.push(format!(
            "The run: from {} to {} ({tz}), {} in all.",
            when(from),
            when(to),
            liters(l)
        )),
        // A continuous flow knows when the water started; other kinds count
        // from the start of what they measure.
        (_, Some((from, _, l))) if rule.kind.name() == "continuous_flow" => lines.push(format!(
            "The water started at {} ({tz}); {} have run since.",
            when(from),
            liters(l)
        )),
        (_, Some((from, _, l))) => {
            lines.push(format!("Since {} ({tz}): {}.", when(from), liters(l)))
        }
        (_, None) => {}
    }
    lines.push(format!("Firing since: {since} ({tz})."));
    lines.push(format!("Current flow: {:.1} L/min.", t.flow_l_per_min));
    if t.kind != TransitionKind::Resolved && !rule.repeat.is_zero() {
        lines.push(format!(
            "While it keeps firing you get a reminder every {}, and one mail when it resolves.",
            duration(rule.repeat.as_secs_f64())
        ));
    }
    lines
}

pub(crate) fn text_body(paragraphs: &[String], link: Option<&str>) -> String {
    let mut out = paragraphs.join("\n");
    if let Some(link) = link {
        out.push_str(&format!("\n\nDashboard: {link}"));
    }
    out.push('\n');
    out
}

pub(crate) fn html_body(paragraphs: &[String], link: Option<&str>) -> String {
    let mut out = String::from("<!DOCTYPE html>\n<html><body>\n");
    for p in paragraphs {
        out.push_str(&format!("<p>{}</p>\n", html_escape(p)));
    }
    if let Some(link) = link {
        let l = html_escape(link);
        out.push_str(&format!("<p><a href=\"{l}\">Open the dashboard</a></p>\n"));
    }
    out.push_str("</body></html>\n");
    out
}

fn local(ms: i64, tz: Tz) -> chrono::DateTime<Tz> {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&tz)
}

use crate::words::html_escape;
pub use crate::words::{duration, liters};

/// FNV-1a: a hash that stays the same across Rust versions (unlike `DefaultHasher`).
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
