//! `GET /meters/{id}?range=hour|day|week|month|year&at=YYYY-MM-DD[&hour=H]`: one
//! meter's usage over an hour (by minute), a day (by hour), a week or a month (by
//! day) or a year (by month), in the
//! configured zone, with previous/next links, a date form and a CSV link.
//!
//! The calendar work is pure ([`Period::new`]); the handler only reads the store.

use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use chrono::{Datelike, Days, Months, NaiveDate};
use chrono_tz::Tz;
use serde::Deserialize;

use super::alert_view::{alert_views, AlertView};
use super::api::{rfc3339, snapshot};
use super::chart::{liters_label, Chart, Live};
use super::view::{chart_for, ChartSpec, Layout, MeterFigures, PageError};
use super::AppState;
use crate::buckets::{self, Step};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// One local hour in minutes: a three-minute burst is not one hourly bar.
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Range {
    pub const ALL: [Range; 5] = [
        Range::Hour,
        Range::Day,
        Range::Week,
        Range::Month,
        Range::Year,
    ];

    pub fn parse(s: &str) -> Option<Range> {
        match s {
            "hour" => Some(Range::Hour),
            "day" => Some(Range::Day),
            "week" => Some(Range::Week),
            "month" => Some(Range::Month),
            "year" => Some(Range::Year),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Range::Hour => "hour",
            Range::Day => "day",
            Range::Week => "week",
            Range::Month => "month",
            Range::Year => "year",
        }
    }

    pub fn step(self) -> Step {
        match self {
            Range::Hour => Step::Minute,
            Range::Day => Step::Hour,
            Range::Week | Range::Month => Step::Day,
            Range::Year => Step::Month,
        }
    }
}

/// A calendar period: its first and following dates (local) and its neighbours.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    pub range: Range,
    pub first: NaiveDate,
    /// The first date after the period.
    pub end: NaiveDate,
    pub prev: NaiveDate,
    pub next: NaiveDate,
    pub heading: String,
    /// The `at` (and `hour`) of the previous and next period's links.
    pub prev_q: String,
    pub next_q: String,
}

impl Period {
    /// The period of `range` that contains `at` (weeks start on Monday).
    pub fn new(range: Range, at: NaiveDate) -> Option<Period> {
        let (first, end, prev, heading) = match range {
            Range::Day | Range::Hour => (
                at,
                at.succ_opt()?,
                at.pred_opt()?,
                at.format("%A %-d %B %Y").to_string(),
            ),
            Range::Week => {
                let first = crate::buckets::monday_of(at);
                let end = first + Days::new(7);
                let heading = format!(
                    "Week {} of {}: {} to {}",
                    first.iso_week().week(),
                    first.iso_week().year(),
                    first.format("%-d %b"),
                    (end - Days::new(1)).format("%-d %b %Y")
                );
                (first, end, first - Days::new(7), heading)
            }
            Range::Month => {
                let first = at.with_day(1)?;
                let end = first.checked_add_months(Months::new(1))?;
                let prev = first.checked_sub_months(Months::new(1))?;
                (first, end, prev, first.format("%B %Y").to_string())
            }
            Range::Year => {
                let first = NaiveDate::from_ymd_opt(at.year(), 1, 1)?;
                let end = NaiveDate::from_ymd_opt(at.year() + 1, 1, 1)?;
                let prev = NaiveDate::from_ymd_opt(at.year() - 1, 1, 1)?;
                (first, end, prev, at.year().to_string())
            }
        };
        Some(Period {
            range,
            first,
            end,
            prev,
            next: end,
            heading,
            prev_q: prev.to_string(),
            next_q: end.to_string(),
        })
    }
}

#[derive(Debug, Deserialize)]
pub struct Params {
    pub range: Option<String>,
    pub at: Option<String>,
    /// The local hour (0–23) of `range=hour`; default: now's hour today, else 0.
    pub hour: Option<String>,
}

#[derive(askama::Template, WebTemplate)]
#[template(path = "meter.html")]
pub struct MeterPage {
    layout: Layout,
    m: MeterFigures,
    alerts: Vec<AlertView>,
    period: Period,
    ranges: [Range; 5],
    at: String,
    today: String,
    /// Whether the next period has begun (else "next" is not a link).
    has_next: bool,
    chart: Chart,
    chart_svg: String,
    total: String,
    csv_url: String,
    /// The misreads the reading engine ignored for this meter, in words.
    misreads: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(p): Query<Params>,
) -> Result<MeterPage, PageError> {
    render(&state, &id, &p, chrono::Utc::now().timestamp_millis())
}

pub fn render(state: &AppState, id: &str, p: &Params, now_ms: i64) -> Result<MeterPage, PageError> {
    let (idx, meter) = state.meter(id).ok_or_else(|| {
        PageError::NotFound(format!("No meter with the id '{id}' is configured."))
    })?;
    let tz: Tz = state.config.timezone;
    let today = buckets::local(tz, now_ms).date_naive();
    let range_name = p
        .range
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or("day");
    let range = Range::parse(range_name).ok_or_else(|| {
        PageError::BadRequest(format!(
            "The range '{range_name}' is not one of hour, day, week, month or year."
        ))
    })?;
    // `at=2026-03-29` or, for the hour view, `at=2026-03-29T21` (an `hour`
    // parameter, as the page's own form sends it, wins).
    let (at_day, at_hour) = match p.at.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => match s.split_once('T') {
            Some((d, h)) => (Some(d), Some(h)),
            None => (Some(s), None),
        },
        None => (None, None),
    };
    let at = match at_day {
        None => today,
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
            PageError::BadRequest(format!(
                "The date '{s}' is not a date like 2026-03-29 (or 2026-03-29T21 for an hour)."
            ))
        })?,
    };
    let mut period = Period::new(range, at)
        .filter(|p| p.first.year() >= 1970 && p.end.year() <= 2100)
        .ok_or_else(|| {
            PageError::BadRequest(format!("The date '{at}' is outside 1970 to 2100."))
        })?;
    let (mut from, mut to) = (
        buckets::day_start(tz, period.first),
        buckets::day_start(tz, period.end),
    );
    let mut has_next = period.next <= today;
    if range == Range::Hour {
        let hour = match p.hour.as_deref().filter(|s| !s.is_empty()).or(at_hour) {
            Some(h) => h.parse::<u32>().ok().filter(|h| *h < 24).ok_or_else(|| {
                PageError::BadRequest(format!("The hour '{h}' is not an hour from 0 to 23."))
            })?,
            None if at == today => chrono::Timelike::hour(&buckets::local(tz, now_ms)),
            None => 0,
        };
        let start = |d: NaiveDate, h: u32| {
            d.and_hms_opt(h, 0, 0)
                .map(|t| crate::buckets::local_ms(tz, t))
        };
        from = start(at, hour).unwrap_or(from);
        to = from + 3_600_000;
        let (prev_day, prev_hour) = if hour == 0 {
            (period.prev, 23)
        } else {
            (at, hour - 1)
        };
        let (next_day, next_hour) = if hour == 23 {
            (period.end, 0)
        } else {
            (at, hour + 1)
        };
        period.prev_q = format!("{prev_day}&hour={prev_hour}");
        period.next_q = format!("{next_day}&hour={next_hour}");
        period.heading = format!(
            "{}, {hour:02}:00 to {:02}:00",
            period.heading,
            (hour + 1) % 24
        );
        has_next = to <= now_ms;
    }
    let spec = ChartSpec {
        id: format!("{id}-p"),
        title: &period.heading,
        x_axis: range.step().as_str(),
        step: range.step(),
        from,
        to,
        keep_last: None,
        live: match range {
            Range::Hour => None,
            Range::Day => Some(Live::Hour),
            _ => Some(Live::Day),
        },
    };
    let mut chart = chart_for(state, idx, &spec, now_ms)?;
    if range == Range::Week {
        for (label, bar) in chart.x_labels.iter_mut().zip(&chart.bars) {
            label.text = super::chart::weekday_tick(tz, bar.end_ms - 43_200_000);
        }
    }
    let chart_svg = askama::Template::render(&chart).map_err(PageError::from)?;
    let now_iso = rfc3339(state, now_ms);
    let csv_url = csv_link(
        &meter.id,
        &rfc3339(state, from),
        &rfc3339(state, to),
        range.step(),
    );
    Ok(MeterPage {
        layout: Layout::new(state, format!("{} · {}", meter.name, period.heading), id),
        m: MeterFigures::new(&snapshot(state, idx, now_ms)?, &now_iso).with_costs(
            crate::figures::costs(&state.store, &state.config, idx, now_ms)
                .map_err(PageError::from)?,
        ),
        alerts: alert_views(state, Some(id)),
        has_next,
        at: at.to_string(),
        today: today.to_string(),
        ranges: Range::ALL,
        // The buckets tile the period exactly, so their sum is its total.
        total: liters_label(chart.total),
        chart,
        chart_svg,
        csv_url,
        period,
        misreads: {
            let (ignored, reanchored) = state.store.readings_ignored(idx);
            super::view::misreads_words(ignored, reanchored)
        },
    })
}

fn csv_link(meter: &str, from: &str, to: &str, step: Step) -> String {
    let q = serde_urlencoded::to_string([
        ("meter", meter),
        ("from", from),
        ("to", to),
        ("step", step.as_str()),
    ])
    .unwrap_or_default();
    format!("/export.csv?{q}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn check(range: Range, at: &str, expected: (&str, &str, &str, &str)) {
        let p = Period::new(range, date(at)).unwrap();
        assert_eq!(
            (p.first, p.end, p.prev, p.heading.as_str()),
            (
                date(expected.0),
                date(expected.1),
                date(expected.2),
                expected.3
            ),
            "{range:?} at {at}"
        );
        assert_eq!(p.next, p.end);
    }

    #[test]
    fn periods_contain_the_date_and_know_their_neighbours() {
        check(
            Range::Day,
            "2026-03-29",
            (
                "2026-03-29",
                "2026-03-30",
                "2026-03-28",
                "Sunday 29 March 2026",
            ),
        );
        check(
            Range::Week,
            "2026-03-29",
            (
                "2026-03-23",
                "2026-03-30",
                "2026-03-16",
                "Week 13 of 2026: 23 Mar to 29 Mar 2026",
            ),
        );
        check(
            Range::Month,
            "2026-03-31",
            ("2026-03-01", "2026-04-01", "2026-02-01", "March 2026"),
        );
        check(
            Range::Year,
            "2024-02-29",
            ("2024-01-01", "2025-01-01", "2023-01-01", "2024"),
        );
    }

    #[test]
    fn ranges_parse_and_name_their_step() {
        for r in Range::ALL {
            assert_eq!(Range::parse(r.as_str()), Some(r));
        }
        assert_eq!(Range::parse("decade"), None);
        assert_eq!(Range::Year.step(), Step::Month);
    }
}
