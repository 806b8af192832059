use askama::Template;
use chrono::NaiveDate;
use chrono_tz::Tz;

use super::*;
use crate::buckets;

fn point(liters: f64) -> Point {
    Point {
        tick: "t".into(),
        when: "w".into(),
        liters,
        start_ms: 0,
        end_ms: 1,
        current: false,
    }
}

fn check_scale(max: f64, expected: (f64, f64)) {
    assert_eq!(nice_scale(max), expected, "max {max}");
}

#[test]
fn scale_tops_are_nice_multiples_with_at_most_four_intervals() {
    check_scale(10.0, (5.0, 10.0));
    check_scale(7.0, (2.0, 8.0));
    check_scale(41.0, (20.0, 60.0));
    check_scale(100.0, (50.0, 100.0));
    check_scale(101.0, (50.0, 150.0));
    check_scale(0.3, (0.1, 0.3));
    check_scale(1234.0, (500.0, 1500.0));
}

#[test]
fn empty_data_gets_a_zero_to_ten_scale_and_says_so() {
    check_scale(0.0, (5.0, 10.0));
    let c = build("c", "Empty", "hour", &[point(0.0), point(0.0)], None);
    assert!(c.empty);
    assert!(c.bars.iter().all(|b| b.h == 0.0 && b.y == BOTTOM));
    assert_eq!(
        c.y_ticks
            .iter()
            .map(|t| t.label.as_str())
            .collect::<Vec<_>>(),
        ["0", "5", "10"]
    );
    let svg = c.render().unwrap();
    assert!(svg.contains("no water used"), "{svg}");
    assert!(c.summary.contains("no water used"));
}

#[test]
fn no_points_at_all_still_renders_an_axis() {
    let c = build("c", "Nothing", "day", &[], None);
    assert!(c.bars.is_empty() && c.empty);
    assert!(c.render().unwrap().contains("<svg"));
}

#[test]
fn one_huge_bar_fills_the_plot_and_small_ones_stay_visible() {
    let c = build(
        "c",
        "Huge",
        "hour",
        &[point(0.5), point(1e9), point(0.0)],
        None,
    );
    let huge = &c.bars[1];
    assert_eq!(huge.y, TOP);
    assert_eq!(huge.h, BOTTOM - TOP);
    assert_eq!(c.bars[0].h, 1.0, "a nonzero bar is at least 1 unit tall");
    assert_eq!(c.bars[2].h, 0.0);
    assert_eq!(c.y_ticks.last().unwrap().label, "1G");
    assert!(c.bars[1].title.ends_with("1,000,000,000 L"));
}

#[test]
fn bars_tile_the_plot_width_without_overlap() {
    let pts: Vec<_> = (0..30).map(|i| point(f64::from(i))).collect();
    let c = build("c", "Days", "day", &pts, None);
    for w in c.bars.windows(2) {
        assert!(w[0].x + w[0].w <= w[1].x + 1e-9);
    }
    let last = c.bars.last().unwrap();
    assert!(last.col_x + last.col_w <= WIDTH - 8.0 + 0.1);
    assert_eq!(c.x_labels.len(), 10, "every third day is labelled");
}

#[test]
fn the_current_bar_carries_what_the_live_script_needs() {
    let mut p = vec![point(3.0), point(7.0)];
    p[1].current = true;
    p[1].end_ms = 99;
    let c = build("c", "Hours", "hour", &p, Some((Live::Hour, 7.0)));
    assert_eq!(c.bars[0].live, None);
    assert_eq!((c.bars[1].live, c.bars[1].base), (Some("hour"), 0.0));
    let month = build("c", "Months", "month", &p, Some((Live::Day, 2.0)));
    assert_eq!(month.bars[1].base, 5.0, "the days before today");
    let svg = c.render().unwrap();
    assert!(
        svg.contains(r#"data-live="hour" data-base="0" data-end="99""#),
        "{svg}"
    );
    assert!(!svg.contains("style="), "the CSP forbids style attributes");
}

fn check_labels(v: f64, compact_label: &str, liters: &str) {
    assert_eq!(
        (compact(v).as_str(), liters_label(v).as_str()),
        (compact_label, liters)
    );
}

#[test]
fn labels_are_short_and_readable() {
    check_labels(0.0, "0", "0 L");
    check_labels(2.5, "2.5", "2.5 L");
    check_labels(1500.0, "1.5k", "1,500 L");
    check_labels(12_000.0, "12k", "12,000 L");
    check_labels(2_500_000.0, "2.5M", "2,500,000 L");
    check_labels(0.26, "0.26", "0.3 L");
}

fn day_points(tz: &str, date: (i32, u32, u32)) -> Vec<Point> {
    let tz: Tz = tz.parse().unwrap();
    let d = NaiveDate::from_ymd_opt(date.0, date.1, date.2).unwrap();
    let (from, to) = (
        buckets::day_start(tz, d),
        buckets::day_start(tz, d.succ_opt().unwrap()),
    );
    let bounds = buckets::boundaries(tz, Step::Hour, from, to).unwrap();
    let usage = Usage {
        ml: vec![1000; bounds.len() - 1],
        bounds,
    };
    points(tz, Step::Hour, &usage, from + 1)
}

#[test]
fn dst_spring_forward_day_has_23_hourly_bars_without_2_oclock() {
    let p = day_points("Europe/Vienna", (2026, 3, 29));
    assert_eq!(p.len(), 23);
    let ticks: Vec<_> = p.iter().map(|p| p.tick.as_str()).collect();
    assert_eq!(&ticks[..4], ["00", "01", "03", "04"]);
    assert!(p[0].current && !p[1].current);
    assert_eq!(build("c", "Day", "hour", &p, None).bars.len(), 23);
}

#[test]
fn dst_fall_back_day_has_25_hourly_bars_with_2_oclock_twice() {
    let p = day_points("Europe/Vienna", (2026, 10, 25));
    assert_eq!(p.len(), 25);
    let ticks: Vec<_> = p.iter().map(|p| p.tick.as_str()).collect();
    assert_eq!(&ticks[..5], ["00", "01", "02", "02", "03"]);
    assert!(p[2].when.contains("02:00–02:00"), "{}", p[2].when);
}

#[test]
fn month_points_are_named_and_titled() {
    let tz: Tz = "Europe/Vienna".parse().unwrap();
    let from = buckets::day_start(tz, NaiveDate::from_ymd_opt(2026, 1, 1).unwrap());
    let to = buckets::day_start(tz, NaiveDate::from_ymd_opt(2027, 1, 1).unwrap());
    let bounds = buckets::boundaries(tz, Step::Month, from, to).unwrap();
    let usage = Usage {
        ml: vec![0; 12],
        bounds,
    };
    let p = points(tz, Step::Month, &usage, 0);
    assert_eq!(p.len(), 12);
    assert_eq!(
        (p[0].tick.as_str(), p[11].when.as_str()),
        ("Jan", "December 2026")
    );
}
