//! The bar charts, as inline SVG built on the server: pure geometry and labels.
//!
//! [`points`] turns bucketed usage into labelled points in the configured zone (a
//! spring-forward day has 23 hourly points, a fall-back day 25); [`build`] lays them
//! out on a "nice" scale and [`Chart`] renders them with `templates/chart.html`.
//! No IO, no clock: `now_ms` is an argument. Colours live in the CSS (classes only,
//! no `style=` attributes, so the strict CSP holds and dark mode works).

use askama::Template;
use chrono::{Datelike, Timelike};
use chrono_tz::Tz;

use crate::buckets::{self, Step};
use crate::store::query::Usage;

/// The SVG's coordinate system (it scales to the page width with `viewBox`).
pub const WIDTH: f64 = 640.0;
pub const HEIGHT: f64 = 236.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 8.0;
/// Room above the plot for the axis titles, below it for the x labels; both
/// fit the bigger phone font (see `static/app.css`).
const TOP: f64 = 40.0;
const BOTTOM: f64 = 210.0;
/// At most this many x labels; every other one is "minor" (hidden on a phone).
const MAX_X_LABELS: usize = 12;

/// One bucket to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The short x-axis label ("14", "29", "Mar").
    pub tick: String,
    /// The hover title's time part ("Sun 29 Mar, 14:00–15:00").
    pub when: String,
    pub liters: f64,
    pub start_ms: i64,
    pub end_ms: i64,
    /// The bucket that contains `now` (drawn highlighted, updated live).
    pub current: bool,
}

/// What the live script adds to the current bar: `base` plus the meter's
/// `this_hour_liters` (hour charts) or `today_liters` (day and month charts).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Live {
    Hour,
    Day,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    /// The full column (hover target), from the top of the plot.
    pub col_x: f64,
    pub col_w: f64,
    pub title: String,
    /// The title's parts, for the table next to the chart.
    pub when: String,
    pub value: String,
    pub current: bool,
    pub live: Option<&'static str>,
    pub base: f64,
    pub end_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub pos: f64,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct XLabel {
    pub x: f64,
    pub text: String,
    pub minor: bool,
}

/// A laid-out chart; `render()` gives the `<svg>`.
#[derive(Debug, Clone, Template)]
#[template(path = "chart.html")]
pub struct Chart {
    pub id: String,
    pub title: String,
    /// What a screen reader says instead of the bars: range, total and peak.
    pub summary: String,
    pub x_axis: String,
    pub y_max: f64,
    pub y_ticks: Vec<Tick>,
    pub x_labels: Vec<XLabel>,
    pub bars: Vec<Bar>,
    /// The sum of all points, in liters.
    pub total: f64,
    pub empty: bool,
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
}

/// Lays `points` out. `live` marks the current bar for the live script, with the
/// liters of that live quantity (this hour's or today's) at render time.
pub fn build(
    id: &str,
    title: &str,
    x_axis: &str,
    points: &[Point],
    live: Option<(Live, f64)>,
) -> Chart {
    let max = points.iter().map(|p| p.liters).fold(0.0, f64::max);
    let (step, y_max) = nice_scale(max);
    let plot_h = BOTTOM - TOP;
    let n = points.len().max(1);
    let col_w = (WIDTH - RIGHT - LEFT) / n as f64;
    let gap = (col_w * 0.2).min(4.0);
    let scale = |v: f64| (v.clamp(0.0, y_max) / y_max) * plot_h;
    let bars = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut h = scale(p.liters);
            if p.liters > 0.0 && h < 1.0 {
                h = 1.0; // a drop of water is still visible
            }
            let col_x = LEFT + i as f64 * col_w;
            let live_kind = live.filter(|_| p.current);
            Bar {
                x: r1(col_x + gap / 2.0),
                y: r1(BOTTOM - h),
                w: r1(col_w - gap),
                h: r1(h),
                col_x: r1(col_x),
                col_w: r1(col_w),
                title: format!("{}: {}", p.when, liters_label(p.liters)),
                when: p.when.clone(),
                value: liters_label(p.liters),
                current: p.current,
                live: live_kind.map(|(l, _)| match l {
                    Live::Hour => "hour",
                    Live::Day => "day",
                }),
                // A month bar is the days before today plus today: base + today_liters.
                base: live_kind.map_or(0.0, |(_, amount)| (p.liters - amount).max(0.0)),
                end_ms: p.end_ms,
            }
        })
        .collect();
    let y_ticks = (0..)
        .map(|i| f64::from(i) * step)
        .take_while(|v| *v <= y_max * (1.0 + 1e-9))
        .map(|v| Tick {
            pos: r1(BOTTOM - scale(v)),
            label: compact(v),
        })
        .collect();
    let every = points.len().div_ceil(MAX_X_LABELS).max(1);
    let x_labels = points
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0)
        .map(|(i, p)| XLabel {
            x: r1(LEFT + (i as f64 + 0.5) * col_w),
            text: p.tick.clone(),
            minor: (i / every) % 2 == 1,
        })
        .collect();
    let total: f64 = points.iter().map(|p| p.liters).sum();
    let summary = match points.iter().max_by(|a, b| a.liters.total_cmp(&b.liters)) {
        Some(peak) if total > 0.0 => format!(
            "{title}: {} in total over {} bars; the most was {} ({}).",
            liters_label(total),
            points.len(),
            liters_label(peak.liters),
            peak.when
        ),
        _ => format!("{title}: no water used in this range."),
    };
    Chart {
        id: id.to_string(),
        title: title.to_string(),
        summary,
        x_axis: x_axis.to_string(),
        y_max,
        y_ticks,
        x_labels,
        bars,
        total,
        empty: total <= 0.0,
        width: WIDTH,
        height: HEIGHT,
        left: LEFT,
        right: WIDTH - RIGHT,
        top: TOP,
        bottom: BOTTOM,
    }
}

/// Labelled points for `usage` (buckets of `step` in `tz`); the bucket holding
/// `now_ms` is marked current.
pub fn points(tz: Tz, step: Step, usage: &Usage, now_ms: i64) -> Vec<Point> {
    usage
        .bounds
        .windows(2)
        .zip(&usage.ml)
        .map(|(b, &ml)| {
            let (start, end) = (buckets::local(tz, b[0]), buckets::local(tz, b[1]));
            let (tick, when) = match step {
                Step::Minute => (
                    start.format("%H:%M").to_string(),
                    start.format("%a %-d %b, %H:%M").to_string(),
                ),
                Step::Hour => (
                    format!("{:02}", start.hour()),
                    format!(
                        "{}–{}",
                        start.format("%a %-d %b, %H:%M"),
                        end.format("%H:%M")
                    ),
                ),
                Step::Day => (
                    start.day().to_string(),
                    start.format("%a %-d %b %Y").to_string(),
                ),
                Step::Month => (
                    start.format("%b").to_string(),
                    start.format("%B %Y").to_string(),
                ),
            };
            Point {
                tick,
                when,
                liters: ml as f64 / 1000.0,
                start_ms: b[0],
                end_ms: b[1],
                current: b[0] <= now_ms && now_ms < b[1],
            }
        })
        .collect()
}

/// A tick step from 1, 2 or 5 × 10ⁿ giving at most four intervals, and the
/// scale's top (a multiple of the step at or above `max`). An empty chart
/// gets 0–10 L so the axis still reads sensibly.
pub fn nice_scale(max: f64) -> (f64, f64) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        10.0
    };
    let raw = max / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| s * 4.0 >= max * (1.0 - 1e-12))
        .unwrap_or(10.0 * mag);
    let top = (max / step - 1e-9).ceil().max(1.0) * step;
    // Keep 0.3 from becoming 0.30000000000000004.
    let decimals = (-step.log10().floor()).max(0.0) as i32 + 1;
    let f = 10f64.powi(decimals);
    ((step * f).round() / f, (top * f).round() / f)
}

/// A short axis label (at most four characters for sane data): "0", "2.5",
/// "750", "1.5k", "12k", "2.5M", "1G".
pub fn compact(v: f64) -> String {
    let (n, suffix) = match v.abs() {
        a if a >= 1e9 => (v / 1e9, "G"),
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e3 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    format!("{}{suffix}", trim(n, 2))
}

/// Liters for people (`words::liters`).
pub fn liters_label(l: f64) -> String {
    crate::words::liters(l)
}

pub use crate::words::{thousands, trim};

/// One decimal is plenty for SVG coordinates and keeps the page small.
fn r1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Day-of-week helper for the week range's labels ("Mon 3").
pub fn weekday_tick(tz: Tz, start_ms: i64) -> String {
    let d = buckets::local(tz, start_ms);
    format!("{} {}", d.format("%a"), d.day())
}

#[cfg(test)]
#[path = "chart_tests.rs"]
mod tests;
