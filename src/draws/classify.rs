//! What a draw was: a shower, a toilet, a washing machine's fill, … learned from
//! the home's own draws, not from one household's numbers.
//!
//! Fixtures vary from home to home (a cistern refills at 2–15 L/min, a shower
//! head gives 5–15 L/min), but within one home a fixture repeats itself: the same
//! cistern refills the same liters at the same flow every time, the same shower
//! head gives the same flow. So [`learn`] finds the home's toilet (the densest
//! cluster of short draws in volume and flow that do not come in appliance-like
//! series) and its shower flow (the densest flow of long draws), and [`classify`]
//! names each draw by its distance to them, by the series appliances fill in, and
//! by the owner's own corrections: a relabelled draw pulls the draws most like it
//! to its kind.

use super::detect::Segment;
use super::Kind;

/// What [`learn`] found out about a home.
#[derive(Debug, Clone, Default)]
pub struct HomeModel {
    /// The cistern's refill flow (L/min) and its flush volumes (one, or two for a
    /// dual flush).
    pub toilet_flow: Option<f64>,
    pub toilet_liters: Vec<f64>,
    /// The shower head's flow (L/min).
    pub shower_flow: Option<f64>,
    /// Draws the owner relabelled: their features and kind.
    pub labelled: Vec<([f64; 3], Kind)>,
    /// Flow above anything this home draws (L/min), once it has history enough.
    pub burst_l_per_min: Option<f64>,
}

/// The three features draws are compared by: ln liters, ln mean flow, ln minutes.
pub fn features(s: &Segment) -> [f64; 3] {
    [
        s.liters.max(0.1).ln(),
        s.mean_l_per_min.max(0.1).ln(),
        minutes(s).max(0.05).ln(),
    ]
}

fn minutes(s: &Segment) -> f64 {
    (s.end_ms - s.start_ms) as f64 / 60_000.0
}

/// The densest value of `xs` (a kernel density mode with bandwidth `bw`, on ln
/// values), when at least `min` values are there.
fn mode(xs: &[f64], bw: f64, min: usize) -> Option<f64> {
    if xs.len() < min {
        return None;
    }
    // A histogram of ln values in bins of a quarter bandwidth, smoothed with the
    // Gaussian kernel: linear in the number of draws (a year is 52 models).
    let logs: Vec<f64> = xs.iter().map(|x| x.max(0.01).ln()).collect();
    let lo = logs.iter().copied().fold(f64::MAX, f64::min);
    let hi = logs.iter().copied().fold(f64::MIN, f64::max);
    let width = bw / 4.0;
    let n = ((hi - lo) / width) as usize + 1;
    let mut counts = vec![0.0f64; n];
    for l in &logs {
        counts[(((l - lo) / width) as usize).min(n - 1)] += 1.0;
    }
    let reach = 12usize; // three bandwidths
    let weights: Vec<f64> = (0..=reach)
        .map(|k| (-((k as f64 * width / bw).powi(2)) / 2.0).exp())
        .collect();
    let density = |i: usize| -> f64 {
        let from = i.saturating_sub(reach);
        let to = (i + reach).min(n - 1);
        (from..=to)
            .map(|j| counts[j] * weights[i.abs_diff(j)])
            .sum()
    };
    (0..n)
        .filter(|&i| counts[i] > 0.0)
        .max_by(|&a, &b| density(a).total_cmp(&density(b)))
        .map(|i| (lo + (i as f64 + 0.5) * width).exp())
}

fn near(x: f64, centre: f64, tolerance: f64) -> bool {
    centre > 0.0 && (x / centre).ln().abs() <= (1.0 + tolerance).ln()
}

/// Learns a home from its draws (a few weeks of them) and the owner's labels.
/// The toilet first: it is the most frequent short draw in every home.
pub fn learn(draws: &[Segment], labelled: &[(Segment, Kind)]) -> HomeModel {
    let short: Vec<&Segment> = draws
        .iter()
        .filter(|s| (3.0..=16.0).contains(&s.liters) && minutes(s) <= 6.0)
        .collect();
    let toilet_flow = mode(
        &short.iter().map(|s| s.mean_l_per_min).collect::<Vec<_>>(),
        0.12,
        8,
    );
    let mut toilet_liters = Vec::new();
    if let Some(flow) = toilet_flow {
        let volumes: Vec<f64> = short
            .iter()
            .filter(|s| near(s.mean_l_per_min, flow, 0.2))
            .map(|s| s.liters)
            .collect();
        if let Some(first) = mode(&volumes, 0.08, 6) {
            toilet_liters.push(first);
            // A dual flush: a second volume, well apart, that is common too.
            let rest: Vec<f64> = volumes
                .iter()
                .copied()
                .filter(|v| !near(*v, first, 0.35))
                .collect();
            if rest.len() * 4 >= volumes.len() {
                if let Some(second) = mode(&rest, 0.08, 4) {
                    toilet_liters.push(second);
                }
            }
        }
    }
    let mut model = HomeModel {
        toilet_flow,
        toilet_liters,
        shower_flow: None,
        labelled: labelled.iter().map(|(s, k)| (features(s), *k)).collect(),
        burst_l_per_min: None,
    };
    let long: Vec<f64> = draws
        .iter()
        .filter(|s| {
            minutes(s) >= 4.0
                && minutes(s) <= 30.0
                && (20.0..=250.0).contains(&s.liters)
                && (3.0..=25.0).contains(&s.mean_l_per_min)
                && !is_toilet(&model, s)
        })
        .map(|s| s.mean_l_per_min)
        .collect();
    model.shower_flow = mode(&long, 0.1, 5);
    model
}

/// A draw like the home's toilet refill: its flow and one of its volumes.
fn is_toilet(model: &HomeModel, s: &Segment) -> bool {
    model
        .toilet_flow
        .is_some_and(|f| near(s.mean_l_per_min, f, 0.35))
        && model
            .toilet_liters
            .iter()
            .any(|&v| (s.liters - v).abs() <= (v * 0.3).max(2.0))
        && minutes(s) <= 8.0
}

/// Draws that belong to an appliance's series of fills: a washing machine or a
/// dishwasher fills 3–6 times within a cycle, each fill short, alike in flow and
/// size, minutes apart, and unlike the toilet. `Some(kind)` per draw in a series.
pub fn appliance_series(model: &HomeModel, draws: &[Segment]) -> Vec<Option<Kind>> {
    let mut out = vec![None; draws.len()];
    let fill = |s: &Segment| (1.5..=30.0).contains(&s.liters) && minutes(s) <= 5.0;
    let mut i = 0;
    while i < draws.len() {
        if !fill(&draws[i]) {
            i += 1;
            continue;
        }
        // Grow a chain of fills alike in flow and size, each 1.5–30 min after the last.
        let mut chain = vec![i];
        let mut j = i + 1;
        while j < draws.len() {
            let last = &draws[*chain.last().unwrap_or(&i)];
            let gap = (draws[j].start_ms - last.end_ms) as f64 / 60_000.0;
            if gap > 30.0 {
                break;
            }
            if fill(&draws[j])
                && gap >= 1.5
                && near(draws[j].mean_l_per_min, draws[i].mean_l_per_min, 0.3)
                && near(draws[j].liters, draws[i].liters, 1.0)
            {
                chain.push(j);
            }
            j += 1;
        }
        let span = chain.last().map_or(0.0, |&l| {
            (draws[l].end_ms - draws[i].start_ms) as f64 / 60_000.0
        });
        // Fills like the toilet's refills make a series only when it is long and
        // tight (four or more, each within 25 minutes of the last, within 100)
        let toilet_like = chain
            .iter()
            .filter(|&&k| is_toilet(model, &draws[k]))
            .count();
        let tight = chain
            .windows(2)
            .all(|w| (draws[w[1]].start_ms - draws[w[0]].end_ms) as f64 / 60_000.0 <= 25.0);
        // and one valve: the flows agree within about a tenth.
        let flows = chain.iter().map(|&k| draws[k].mean_l_per_min);
        let (lo, hi) = flows.fold((f64::MAX, 0.0f64), |(l, h), f| (l.min(f), h.max(f)));
        let series = if toilet_like <= 1 {
            chain.len() >= 3 && span <= 180.0
        } else {
            chain.len() >= 4 && tight && span <= 100.0 && hi <= lo * 1.12
        };
        if series {
            let mut liters: Vec<f64> = chain.iter().map(|&k| draws[k].liters).collect();
            liters.sort_by(f64::total_cmp);
            let fill_liters = liters[liters.len() / 2];
            let kind = if fill_liters < 6.0 {
                Kind::Dishwasher
            } else {
                Kind::WashingMachine
            };
            for &k in &chain {
                out[k] = Some(kind);
            }
            i = chain.last().map_or(i + 1, |&l| l + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// Each draw's kind and how sure the model is (0–1). `draws` are in time order
/// and include their neighbours, so that appliance series can be seen.
pub fn classify(model: &HomeModel, draws: &[Segment]) -> Vec<(Kind, f64)> {
    let series = appliance_series(model, draws);
    let shower_flow = model.shower_flow;
    draws
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if let Some(k) = nearest_label(model, s) {
                return k;
            }
            let min = minutes(s);
            let toilet = is_toilet(model, s);
            let shower_like = match shower_flow {
                Some(f) => near(s.mean_l_per_min.max(s.peak_l_per_min * 0.8), f, 0.3),
                None => (5.0..=15.0).contains(&s.mean_l_per_min),
            };
            if toilet && series[i].is_none() {
                return (Kind::Toilet, 0.85);
            }
            if let Some(k) = series[i] {
                return (k, 0.75);
            }
            if s.liters >= 12.0 && (2.5..=35.0).contains(&min) && shower_like {
                return (Kind::Shower, 0.8);
            }
            let high_flow = s.mean_l_per_min >= shower_flow.map_or(12.0, |f| (f * 1.3).max(10.0));
            if s.liters >= 60.0 && min <= 30.0 && high_flow {
                return (Kind::Bath, 0.7);
            }
            if s.liters >= 40.0 && min >= 8.0 && s.mean_l_per_min >= 4.0 {
                return (Kind::Garden, 0.6);
            }
            if model.toilet_flow.is_none() && (3.0..=13.0).contains(&s.liters) && min <= 4.0 {
                return (Kind::Toilet, 0.4);
            }
            // A refill with a tap before or after it: the toilet's flow, a bit more water.
            let biggest = model.toilet_liters.iter().copied().fold(0.0, f64::max);
            if model
                .toilet_flow
                .is_some_and(|f| near(s.mean_l_per_min, f, 0.35))
                && s.liters >= biggest * 0.6
                && s.liters <= biggest * 2.5
                && min <= 10.0
            {
                return (Kind::Toilet, 0.5);
            }
            if s.liters < 3.0 || (min < 2.0 && s.liters < 8.0) {
                return (Kind::Tap, 0.6);
            }
            (Kind::Other, 0.3)
        })
        .collect()
}

/// The kind of the owner's labelled draw most like `s`, when one is close:
/// within about a third in liters, flow and duration together.
fn nearest_label(model: &HomeModel, s: &Segment) -> Option<(Kind, f64)> {
    let f = features(s);
    model
        .labelled
        .iter()
        .map(|(g, k)| {
            let d = (0..3).map(|i| (f[i] - g[i]).powi(2)).sum::<f64>().sqrt();
            (d, *k)
        })
        .filter(|(d, _)| *d <= 0.35)
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(d, k)| (k, if d < 1e-9 { 1.0 } else { 0.9 - d }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(start_min: f64, liters: f64, flow: f64) -> Segment {
        let start_ms = (start_min * 60_000.0) as i64;
        let end_ms = start_ms + (liters / flow * 60_000.0) as i64;
        Segment {
            start_ms,
            end_ms,
            liters,
            mean_l_per_min: flow,
            peak_l_per_min: flow,
            first_event_ms: start_ms,
            last_event_ms: end_ms,
            events: liters as u32,
        }
    }

    /// A home: a 9 L cistern at 4 L/min (another home's would differ), showers
    /// at 11 L/min, a washing machine every other day.
    fn home(cistern: (f64, f64), shower: f64) -> Vec<Segment> {
        let mut d = Vec::new();
        for day in 0..20 {
            let base = day as f64 * 1440.0;
            for k in 0..5 {
                d.push(draw(base + 300.0 + 130.0 * k as f64, cistern.0, cistern.1));
            }
            d.push(draw(base + 400.0, 8.0 * shower, shower));
            d.push(draw(base + 700.0, 1.5, 5.0));
            if day % 2 == 0 {
                for f in 0..4 {
                    d.push(draw(base + 900.0 + 12.0 * f as f64, 14.0, 8.0));
                }
            }
        }
        d.sort_by_key(|s| s.start_ms);
        d
    }

    fn kinds(model: &HomeModel, d: &[Segment]) -> Vec<Kind> {
        classify(model, d).into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn two_homes_with_different_fixtures_are_both_read_right() {
        for (cistern, shower) in [((9.0, 4.0), 11.0), ((6.0, 12.0), 7.0)] {
            let d = home(cistern, shower);
            let model = learn(&d, &[]);
            let k = kinds(&model, &d);
            for (s, k) in d.iter().zip(&k) {
                let want = if s.liters == cistern.0 {
                    Kind::Toilet
                } else if s.liters == 14.0 {
                    Kind::WashingMachine
                } else if s.liters == 1.5 {
                    Kind::Tap
                } else {
                    Kind::Shower
                };
                assert_eq!(
                    *k, want,
                    "{s:?} in the home {cistern:?}/{shower}: {model:?}"
                );
            }
        }
    }

    #[test]
    fn a_relabelled_draw_takes_the_draws_like_it_along() {
        let mut d = home((9.0, 4.0), 11.0);
        // Twice a week a 25 L, 5 L/min draw the model calls "other".
        let extra: Vec<Segment> = (0..6)
            .map(|w| draw(w as f64 * 3000.0 + 1200.0, 25.0, 5.0))
            .collect();
        d.extend(extra.iter().cloned());
        d.sort_by_key(|s| s.start_ms);
        let before = learn(&d, &[]);
        let k = kinds(&before, &d);
        let like = |s: &Segment| s.liters == 25.0;
        assert!(d
            .iter()
            .zip(&k)
            .filter(|(s, _)| like(s))
            .all(|(_, k)| *k != Kind::Dishwasher));
        let model = learn(&d, &[(extra[0].clone(), Kind::Dishwasher)]);
        let k = kinds(&model, &d);
        assert!(
            d.iter()
                .zip(&k)
                .filter(|(s, _)| like(s))
                .all(|(_, k)| *k == Kind::Dishwasher),
            "{k:?}"
        );
        // Draws unlike it keep their kind.
        assert_eq!(k.iter().filter(|k| **k == Kind::Toilet).count(), 100);
    }

    #[test]
    fn a_home_without_history_still_gets_rough_kinds() {
        let model = learn(&[], &[]);
        let d = vec![
            draw(0.0, 60.0, 9.0),
            draw(30.0, 6.0, 8.0),
            draw(60.0, 1.0, 4.0),
        ];
        assert_eq!(kinds(&model, &d), [Kind::Shower, Kind::Toilet, Kind::Tap]);
    }
}
