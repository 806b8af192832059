//! Draws from a pulse train: where water use starts and stops, and where the flow
//! steps up and back down because a second fixture ran at the same time.
//!
//! Pure: events in, draws out. Flow comes from the intervals between pulses (one
//! pulse per liter on an S0 meter; a larger event is that many liters at once).

/// One stretch of water use.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// When the water began: the first pulse less the time its liter took.
    pub start_ms: i64,
    /// The last pulse.
    pub end_ms: i64,
    pub liters: f64,
    /// Liters over the whole span (L/min).
    pub mean_l_per_min: f64,
    /// The highest flow held over three pulses (L/min).
    pub peak_l_per_min: f64,
    /// First and last event of the draw and their count: its identity.
    pub first_event_ms: i64,
    pub last_event_ms: i64,
    pub events: u32,
}

/// A pause longer than this always ends a draw; the ratio lets slow draws (a
/// cistern filling at 2 L/min: a pulse every 30 s) keep their pulses together.
const MIN_GAP_MS: i64 = 120_000;
const MAX_GAP_MS: i64 = 600_000;
const GAP_RATIO: f64 = 2.5;
/// Flow steps smaller than this factor are noise, not a second fixture.
const STEP_RATIO: f64 = 1.45;
/// Pulses on each side of a step that must agree.
const STEP_WINDOW: usize = 3;

/// Splits `events` (time ms, liters; ascending) into draws.
pub fn segments(events: &[(i64, f64)]) -> Vec<Segment> {
    let mut out = Vec::new();
    for run in runs(events) {
        out.extend(split_steps(run));
    }
    out.sort_by_key(|s| s.start_ms);
    out
}

/// Stretches without a pause: a gap ends a run when it is longer than
/// [`MIN_GAP_MS`] and [`GAP_RATIO`] times the run's recent intervals.
fn runs(events: &[(i64, f64)]) -> Vec<&[(i64, f64)]> {
    let mut runs = Vec::new();
    let mut begin = 0;
    for i in 1..events.len() {
        let gap = events[i].0 - events[i - 1].0;
        let recent = median(
            &(begin + 1..i)
                .rev()
                .take(3)
                .map(|k| (events[k].0 - events[k - 1].0) as f64)
                .collect::<Vec<_>>(),
        );
        let limit = (recent.unwrap_or(0.0) * GAP_RATIO).clamp(MIN_GAP_MS as f64, MAX_GAP_MS as f64);
        if gap as f64 > limit {
            runs.push(&events[begin..i]);
            begin = i;
        }
    }
    if begin < events.len() {
        runs.push(&events[begin..]);
    }
    runs
}

fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    Some(s[s.len() / 2])
}

/// Flow of each interval (L/min): `flows[k]` is the flow that brought event `k+1`.
fn flows(run: &[(i64, f64)]) -> Vec<f64> {
    run.windows(2)
        .map(|w| w[1].1 / ((w[1].0 - w[0].0).max(50) as f64 / 60_000.0))
        .collect()
}

/// A run split where the flow steps: a segment between two of similar lower flow
/// is a second fixture on top of the first (a tap during a shower), which gives
/// two draws, the base through the whole span and the overlay for the extra.
fn split_steps(run: &[(i64, f64)]) -> Vec<Segment> {
    let flow = flows(run);
    // Interval indices where the flow changes; segments of pulses between them.
    let mut cuts = step_points(&flow);
    cuts.dedup();
    let mut bounds = vec![0usize];
    bounds.extend(cuts.iter().map(|&c| c + 1));
    bounds.push(run.len());
    let parts: Vec<&[(i64, f64)]> = bounds.windows(2).map(|b| &run[b[0]..b[1]]).collect();
    if parts.len() == 1 {
        return vec![segment(run, None, run.first().map(|e| e.0))];
    }
    let level = |p: &[(i64, f64)], before: Option<i64>| -> f64 {
        let mut f = Vec::new();
        let mut prev = before;
        for e in p {
            if let Some(t) = prev {
                f.push(e.1 / ((e.0 - t).max(50) as f64 / 60_000.0));
            }
            prev = Some(e.0);
        }
        median(&f).unwrap_or(0.0)
    };
    let levels: Vec<f64> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            level(
                p,
                (i > 0).then(|| parts[i - 1].last().map(|e| e.0)).flatten(),
            )
        })
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < parts.len() {
        // An overlay: higher than both neighbours, which agree with each other.
        if i + 2 < parts.len() {
            let (a, b, c) = (levels[i], levels[i + 1], levels[i + 2]);
            let similar = a > 0.0 && c > 0.0 && (a / c).max(c / a) < STEP_RATIO;
            if similar && b > a.max(c) * 1.2 {
                let base_flow = (a + c) / 2.0;
                let over = parts[i + 1];
                let over_start = parts[i].last().map_or(over[0].0, |e| e.0);
                let over_end = over.last().map_or(over_start, |e| e.0);
                let over_min = (over_end - over_start) as f64 / 60_000.0;
                let extra = ((b - base_flow) * over_min)
                    .max(0.0)
                    .min(over.iter().map(|e| e.1).sum());
                let span_events = parts[i].len() + over.len() + parts[i + 2].len();
                let start = bounds[i];
                let whole = &run[start..start + span_events];
                let mut base = segment(whole, None, Some(whole[0].0));
                base.liters -= extra;
                base.mean_l_per_min = rate(base.liters, base.start_ms, base.end_ms);
                base.peak_l_per_min = a.max(c);
                let mut overlay = segment(over, Some(over_start), None);
                overlay.start_ms = over_start;
                overlay.liters = extra;
                overlay.mean_l_per_min = (b - base_flow).max(0.0);
                overlay.peak_l_per_min = overlay.mean_l_per_min;
                out.push(base);
                if extra >= 0.5 {
                    out.push(overlay);
                }
                i += 3;
                continue;
            }
        }
        let before = (i > 0).then(|| parts[i - 1].last().map(|e| e.0)).flatten();
        out.push(segment(parts[i], before, None));
        i += 1;
    }
    out
}

/// Intervals after which the flow changes by [`STEP_RATIO`] or more, held for
/// [`STEP_WINDOW`] intervals on both sides; the strongest of neighbouring candidates.
fn step_points(flow: &[f64]) -> Vec<usize> {
    let w = STEP_WINDOW;
    if flow.len() < 2 * w {
        return Vec::new();
    }
    let mut scores: Vec<(usize, f64)> = Vec::new();
    for k in w..=flow.len() - w {
        let (Some(before), Some(after)) = (median(&flow[k - w..k]), median(&flow[k..k + w])) else {
            continue;
        };
        if before <= 0.0 || after <= 0.0 {
            continue;
        }
        let r = (after / before).ln().abs();
        if r > STEP_RATIO.ln() {
            scores.push((k - 1, r));
        }
    }
    // Non-maximum suppression: keep a point only if no stronger one is within w.
    let mut cuts: Vec<usize> = scores
        .iter()
        .filter(|(k, r)| {
            !scores
                .iter()
                .any(|(k2, r2)| k2 != k && k2.abs_diff(*k) < w && (r2 > r || (r2 == r && k2 < k)))
        })
        .map(|(k, _)| *k)
        .collect();
    cuts.sort_unstable();
    cuts
}

fn rate(liters: f64, start: i64, end: i64) -> f64 {
    let minutes = (end - start) as f64 / 60_000.0;
    if minutes > 0.0 {
        liters / minutes
    } else {
        0.0
    }
}

/// A segment of `part`. Its start is `start` when given, else the first pulse less
/// the time the liter before it took (the interval from `before`, the previous
/// pulse of the same run, or the draw's own first interval; one minute at most).
fn segment(part: &[(i64, f64)], before: Option<i64>, start: Option<i64>) -> Segment {
    let first = part.first().map_or(0, |e| e.0);
    let last = part.last().map_or(first, |e| e.0);
    let liters: f64 = part.iter().map(|e| e.1).sum();
    let lead = match (before, part.get(1)) {
        (Some(b), _) => first - b,
        (None, Some(second)) => (second.0 - first).min(60_000),
        (None, None) => 30_000,
    };
    let start_ms = match (start, before) {
        (Some(s), None) if s != first => s,
        _ => first - lead.clamp(0, 60_000),
    };
    let f = flows(part);
    let peak = f
        .windows(3)
        .filter_map(median)
        .fold(median(&f).unwrap_or(0.0), f64::max);
    let mean = rate(liters, start_ms, last);
    Segment {
        start_ms,
        end_ms: last,
        liters,
        mean_l_per_min: mean,
        peak_l_per_min: peak.max(mean),
        first_event_ms: first,
        last_event_ms: last,
        events: part.len() as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pulses of 1 L at `flow` L/min from `start_s` for `liters`.
    fn train(start_s: f64, flow: f64, liters: usize) -> Vec<(i64, f64)> {
        let step = 60.0 / flow;
        (1..=liters)
            .map(|k| (((start_s + step * k as f64) * 1000.0) as i64, 1.0))
            .collect()
    }

    fn merged(parts: &[Vec<(i64, f64)>]) -> Vec<(i64, f64)> {
        let mut all: Vec<(i64, f64)> = parts.iter().flatten().copied().collect();
        all.sort_by_key(|e| e.0);
        all
    }

    #[test]
    fn a_pause_ends_a_draw_and_slow_fills_stay_whole() {
        // A toilet refilling at 2 L/min (a pulse every 30 s), five minutes later a tap.
        let events = merged(&[train(0.0, 2.0, 6), train(600.0, 6.0, 3)]);
        let d = segments(&events);
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(d[0].liters, 6.0);
        assert!((d[0].mean_l_per_min - 2.0).abs() < 0.05, "{:?}", d[0]);
        assert_eq!(
            d[0].start_ms, 0,
            "the first liter took 30 s before its pulse"
        );
        assert_eq!(d[1].liters, 3.0);
        assert!((d[1].peak_l_per_min - 6.0).abs() < 0.05);
    }

    #[test]
    fn a_tap_during_a_shower_is_a_second_draw_on_top() {
        // An 8 L/min shower for 8 min; a 6 L/min tap from minute 3 to 4.5 on top.
        let shower: Vec<(i64, f64)> = {
            // The register sees the summed flow: build it from the flow over time.
            let flow_at = |t: f64| {
                if (180.0..270.0).contains(&t) {
                    14.0
                } else {
                    8.0
                }
            };
            let mut out = Vec::new();
            let (mut t, mut reg) = (0.0f64, 0.0f64);
            while t < 480.0 {
                reg += flow_at(t) / 60.0 * 0.1;
                t += 0.1;
                if reg >= 1.0 {
                    reg -= 1.0;
                    out.push(((t * 1000.0) as i64, 1.0));
                }
            }
            out
        };
        let total: f64 = shower.iter().map(|e| e.1).sum();
        let d = segments(&shower);
        assert_eq!(d.len(), 2, "{d:#?}");
        let (base, tap) = (&d[0], &d[1]);
        assert!((base.mean_l_per_min - 8.0).abs() < 0.8, "{base:?}");
        assert!((tap.liters - 9.0).abs() < 2.5, "{tap:?}");
        assert!((tap.mean_l_per_min - 6.0).abs() < 1.5, "{tap:?}");
        assert!((base.liters + tap.liters - total).abs() < 1e-9);
        assert!(tap.start_ms >= 150_000 && tap.end_ms <= 290_000, "{tap:?}");
    }

    #[test]
    fn a_flow_that_steps_down_is_two_draws() {
        // A 14 L/min bath tap, then a 4 L/min basin right after it without a pause.
        let mut events = train(0.0, 14.0, 20);
        let end = events.last().unwrap().0 as f64 / 1000.0;
        events.extend(train(end, 4.0, 5));
        let d = segments(&events);
        assert_eq!(d.len(), 2, "{d:#?}");
        assert_eq!(d[0].liters + d[1].liters, 25.0);
        assert!(
            d[0].peak_l_per_min > 12.0 && d[1].mean_l_per_min < 6.0,
            "{d:#?}"
        );
    }

    #[test]
    fn a_washing_machines_fills_are_draws_of_their_own() {
        // Four fills of 12 L at 9 L/min, eight minutes apart.
        let fills: Vec<Vec<(i64, f64)>> =
            (0..4).map(|k| train(480.0 * k as f64, 9.0, 12)).collect();
        let d = segments(&merged(&fills));
        assert_eq!(d.len(), 4, "{d:#?}");
        assert!(d
            .iter()
            .all(|s| s.liters == 12.0 && (s.mean_l_per_min - 9.0).abs() < 0.7));
    }

    #[test]
    fn nothing_in_nothing_out_and_one_pulse_is_a_draw() {
        assert!(segments(&[]).is_empty());
        let d = segments(&[(1_000_000, 1.0)]);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].liters, 1.0);
    }
}
