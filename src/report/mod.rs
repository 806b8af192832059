//! The weekly and monthly report mail (`[report] weekly = true, monthly = true`).
//!
//! - `schedule.rs` says when a report is due (07:00 local on Monday / the 1st)
//!   and which period it covers (pure);
//! - `gather.rs` reads a report's figures from the store, queues it in the alert
//!   outbox (once per due time, across restarts) and runs the task;
//! - `compose.rs` words a [`Report`] as a subject, a plain-text part and an HTML
//!   part that renders in common mail clients (tables, no SVG, no images). Pure.

pub mod compose;
pub mod gather;
pub mod schedule;

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    Weekly,
    Monthly,
}

/// Everything one report says, already in local time and display words.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub kind: ReportKind,
    /// "Week 48: 23–29 November 2026" or "November 2026".
    pub title: String,
    /// ISO 4217 code from `[tariff]`, when costs are known.
    pub currency: Option<String>,
    pub meters: Vec<MeterReport>,
    /// Alert notifications of the period (firing, level), oldest first.
    pub alerts: Vec<AlertLine>,
    /// The dashboard's address (`[http] public_url` or `[smtp] dashboard_url`), if known.
    pub dashboard_url: Option<String>,
}

/// One meter's part of a report.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterReport {
    pub id: String,
    pub name: String,
    pub liters: f64,
    /// Water and sewage of the period, without the fixed charge (`None`: no tariff).
    pub cost: Option<f64>,
    /// Every day of the period: a short label ("Mon 23") and its liters.
    pub days: Vec<(String, f64)>,
    /// The period compared with others: "the week before", "November 2025".
    pub comparisons: Vec<Comparison>,
    /// Liters by kind of use from the draws ("shower", "toilet", …), largest first;
    /// empty when no draws were found.
    pub kinds: Vec<(String, f64)>,
    /// Liters per person per day and the published reference it is set beside.
    pub per_person: Option<PerPerson>,
}

/// The same meter over another period.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// "the week before", "November 2025".
    pub label: String,
    /// `None`: no data for that period (the history is younger).
    pub liters: Option<f64>,
}

/// Liters per person per day, next to a reference.
#[derive(Debug, Clone, PartialEq)]
pub struct PerPerson {
    pub persons: u32,
    pub liters: f64,
    pub reference_liters: f64,
    /// Where the reference comes from, in a few words with the year.
    pub reference: String,
}

/// One alert event of the period.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertLine {
    /// Local time, "Tue 24 Nov 14:05".
    pub at: String,
    /// The notification's subject without the `[watermeter] ` prefix.
    pub text: String,
}
