//! Leak patterns in a pulse train, shared by the draw log (a leak is one draw over
//! its whole span) and the `leak` alert (one episode, one notification).
//!
//! At one liter per pulse a drip and a leaking flapper look alike: both are a
//! steady series of single liters. [`Pattern`] names the likely cause when the
//! pattern tells, and both are leaks.

use super::detect::Segment;

/// What a leak looks like, as far as the pulses tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// Water never stops: no hour without water in the last day, at a few L/h.
    Drip,
    /// Small refills every 15–45 minutes through the night.
    Flapper,
    /// A steady 2–6 L/min for an hour or more.
    Running,
    /// Far more flow than this home ever draws, for minutes.
    Burst,
}

impl Pattern {
    pub fn words(self) -> &'static str {
        match self {
            Pattern::Drip => "water never stopped: a dripping tap or a leaking pipe",
            Pattern::Flapper => {
                "small refills every 15 to 45 minutes through the night: a leaking toilet flapper"
            }
            Pattern::Running => {
                "a steady flow for an hour or more: a running toilet or a stuck valve"
            }
            Pattern::Burst => "far more flow than this home ever draws: a burst pipe or hose",
        }
    }
}

/// A series of small draws, evenly spaced, that goes on for hours: each draw's
/// index belongs to it. Evening taps are small too, but come irregularly and stop.
pub fn trickle_series(draws: &[Segment]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let small = |s: &Segment| s.liters <= 3.0 && s.end_ms - s.start_ms <= 5 * 60_000;
    let mut i = 0;
    while i < draws.len() {
        let mut j = i;
        while j < draws.len()
            && small(&draws[j])
            && (j == i || draws[j].start_ms - draws[j - 1].end_ms <= 60 * 60_000)
        {
            j += 1;
        }
        if j - i >= 8 && draws[j - 1].end_ms - draws[i].start_ms >= 3 * 3_600_000 {
            let gaps: Vec<f64> = draws[i..j]
                .windows(2)
                .map(|w| (w[1].start_ms - w[0].start_ms) as f64)
                .collect();
            let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
            let sd =
                (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
            if mean > 0.0 && sd / mean < 0.6 {
                out.push(i..j);
            }
        }
        i = j.max(i + 1);
    }
    out
}

/// Whether a trickle series is a flapper rather than a drip: refills of more than
/// one pulse, or single liters 15–45 minutes apart.
pub fn trickle_pattern(series: &[Segment]) -> Pattern {
    let gaps: Vec<f64> = series
        .windows(2)
        .map(|w| (w[1].start_ms - w[0].start_ms) as f64 / 60_000.0)
        .collect();
    let mean_gap = gaps.iter().sum::<f64>() / gaps.len().max(1) as f64;
    let multi = series.iter().filter(|s| s.events >= 2).count() * 2 >= series.len();
    if multi
        || (15.0..=45.0).contains(&mean_gap)
            && series.iter().all(|s| s.events <= 2)
            && mean_gap >= 20.0
    {
        Pattern::Flapper
    } else {
        Pattern::Drip
    }
}

/// A draw that is a leak by itself: a running toilet (steady 1.5–7 L/min for an
/// hour or more) or a burst (above `burst_l_per_min` for three minutes or more).
pub fn leak_draw(s: &Segment, burst_l_per_min: Option<f64>) -> Option<Pattern> {
    let minutes = (s.end_ms - s.start_ms) as f64 / 60_000.0;
    if minutes >= 60.0
        && (1.5..=7.0).contains(&s.mean_l_per_min)
        && s.peak_l_per_min <= s.mean_l_per_min * 1.6
    {
        return Some(Pattern::Running);
    }
    match burst_l_per_min {
        Some(limit) if minutes >= 3.0 && s.mean_l_per_min > limit => Some(Pattern::Burst),
        _ => None,
    }
}

/// The flow above which this home has never drawn: 1.5 times the highest mean
/// flow of its draws of 3 minutes or more, and at least 25 L/min.
pub fn burst_limit(draws: &[Segment]) -> f64 {
    draws
        .iter()
        .filter(|s| s.end_ms - s.start_ms >= 3 * 60_000)
        .map(|s| s.mean_l_per_min)
        .fold(0.0, f64::max)
        .mul_add(1.5, 0.0)
        .max(25.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(at_min: f64, liters: f64) -> Segment {
        let t = (at_min * 60_000.0) as i64;
        Segment {
            start_ms: t - 30_000,
            end_ms: t,
            liters,
            mean_l_per_min: liters * 2.0,
            peak_l_per_min: liters * 2.0,
            first_event_ms: t,
            last_event_ms: t,
            events: liters as u32,
        }
    }

    #[test]
    fn a_drip_and_a_flapper_are_series_and_evening_taps_are_not() {
        let drip: Vec<Segment> = (0..30).map(|k| one(k as f64 * 30.0, 1.0)).collect();
        let series = trickle_series(&drip);
        assert_eq!(series, vec![0..30]);
        let flapper: Vec<Segment> = (0..16).map(|k| one(k as f64 * 25.0, 2.0)).collect();
        assert_eq!(trickle_series(&flapper), vec![0..16]);
        assert_eq!(trickle_pattern(&flapper), Pattern::Flapper);
        // Taps at 18:00–22:00, irregular: 2, 40, 5, 55, 3, … minutes apart.
        let mut t = 0.0;
        let taps: Vec<Segment> = [2.0, 40.0, 5.0, 55.0, 3.0, 30.0, 1.0, 50.0, 4.0, 45.0]
            .iter()
            .map(|g| {
                t += g;
                one(t, 1.0)
            })
            .collect();
        assert!(trickle_series(&taps).is_empty());
    }

    #[test]
    fn a_running_toilet_and_a_burst_are_leaks_a_shower_is_not() {
        let long = |minutes: f64, flow: f64| Segment {
            start_ms: 0,
            end_ms: (minutes * 60_000.0) as i64,
            liters: minutes * flow,
            mean_l_per_min: flow,
            peak_l_per_min: flow * 1.1,
            first_event_ms: 0,
            last_event_ms: 0,
            events: 0,
        };
        assert_eq!(leak_draw(&long(90.0, 3.5), None), Some(Pattern::Running));
        assert_eq!(leak_draw(&long(8.0, 9.0), Some(25.0)), None);
        assert_eq!(
            leak_draw(&long(6.0, 45.0), Some(25.0)),
            Some(Pattern::Burst)
        );
        assert_eq!(burst_limit(&[long(8.0, 9.0), long(10.0, 20.0)]), 30.0);
    }
}
