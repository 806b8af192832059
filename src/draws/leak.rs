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
    /// The finding's name, first in every message about it.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Drip => "Drip",
            Pattern::Flapper => "Leaking toilet flapper",
            Pattern::Running => "Running toilet or stuck valve",
            Pattern::Burst => "Burst",
        }
    }

    pub fn words(self) -> &'static str {
        match self {
            Pattern::Drip => {
                "water never stopped: a dripping tap, a leaking pipe or a leaking toilet flapper"
            }
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

/// A series of small draws, evenly spaced, that goes on for hours: the indices
/// of its members. Ordinary draws on top of it (a shower, a flush) are not
/// members and stay draws of their own; a member they swallowed leaves one
/// longer gap, which is bridged. Evening taps are small too, but come
/// irregularly and stop.
pub fn trickle_series(draws: &[Segment]) -> Vec<Vec<usize>> {
    let small = |s: &Segment| s.liters <= 3.0 && s.end_ms - s.start_ms <= 5 * 60_000;
    let mut out = Vec::new();
    let mut used = vec![false; draws.len()];
    for i in 0..draws.len() {
        if used[i] || !small(&draws[i]) {
            continue;
        }
        let mut members = vec![i];
        // Gaps between members with nothing in between: the leak's own spacing.
        let mut plain_gaps: Vec<f64> = Vec::new();
        let mut j = i + 1;
        // Draws on top since the last member: each may have swallowed one pulse.
        let mut bridged = 0u32;
        while j < draws.len() {
            if used[j] {
                // A member of a series found before: not this one's.
                j += 1;
                continue;
            }
            let last = &draws[members[members.len() - 1]];
            let gap = draws[j].start_ms - last.start_ms;
            if !small(&draws[j]) {
                // On top of the leak: skipped, if short, and the series may bridge it.
                if draws[j].end_ms - draws[j].start_ms > 60 * 60_000 {
                    break;
                }
                bridged += 1;
                j += 1;
                continue;
            }
            // Until the spacing is known, up to an hour; then the leak's own
            // rhythm, so the household's small draws after it stops are not taken.
            let allowed = match median(&plain_gaps).filter(|_| plain_gaps.len() >= 4) {
                Some(spacing) => ((1.5 + f64::from(bridged)) * spacing).min(150.0 * 60_000.0),
                None => (60.0 + 30.0 * f64::from(bridged)) * 60_000.0,
            };
            if gap as f64 > allowed {
                break;
            }
            if bridged == 0 {
                plain_gaps.push(gap as f64);
            }
            bridged = 0;
            members.push(j);
            j += 1;
        }
        // The ends the rhythm does not hold: a small draw of the household just
        // before the leak began or after it stopped.
        if let Some(spacing) = median(&plain_gaps) {
            let fits = |a: usize, b: usize| {
                let g = (draws[b].start_ms - draws[a].start_ms) as f64;
                (0.6 * spacing..=1.4 * spacing).contains(&g)
            };
            while members.len() > 2 && !fits(members[members.len() - 2], members[members.len() - 1])
            {
                members.pop();
            }
            while members.len() > 2 && !fits(members[0], members[1]) {
                members.remove(0);
            }
        }
        let (first, last) = (&draws[members[0]], &draws[members[members.len() - 1]]);
        if members.len() >= 8 && last.end_ms - first.start_ms >= 3 * 3_600_000 {
            let mean = plain_gaps.iter().sum::<f64>() / plain_gaps.len().max(1) as f64;
            let sd = (plain_gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>()
                / plain_gaps.len().max(1) as f64)
                .sqrt();
            // A leak brings the same each time (one liter, one refill); the
            // household's taps vary.
            let sizes: Vec<f64> = members.iter().map(|&m| draws[m].liters).collect();
            let typical = median(&sizes).unwrap_or(0.0);
            let alike = sizes.iter().filter(|l| (*l - typical).abs() <= 1.0).count();
            if plain_gaps.len() >= 5
                && mean > 0.0
                && sd / mean < 0.6
                && alike * 4 >= sizes.len() * 3
                && through_quiet_stretch(draws, &members)
            {
                for &m in &members {
                    used[m] = true;
                }
                out.push(members);
            }
        }
    }
    out
}

/// Whether a series went on through a quiet stretch: three hours or more in
/// which nothing but its members ran, with at least three of them in it. A leak
/// shows itself when the house is quiet (at night); a busy day's small draws can
/// keep a rhythm for hours, but not through a quiet stretch.
fn through_quiet_stretch(draws: &[Segment], members: &[usize]) -> bool {
    let (Some(&first), Some(&last)) = (members.first(), members.last()) else {
        return false;
    };
    let mut edge = draws[first].start_ms;
    let mut inside = 0;
    let quiet = |from: i64, to: i64, inside: usize| to - from >= 3 * 3_600_000 && inside >= 3;
    let mut found = false;
    for (i, d) in draws.iter().enumerate().take(last + 1).skip(first) {
        if members.binary_search(&i).is_ok() {
            inside += 1;
        } else {
            found |= quiet(edge, d.start_ms, inside);
            edge = d.end_ms;
            inside = 0;
        }
    }
    found || quiet(edge, draws[last].end_ms, inside)
}

/// `12:00` on the day of `now_ms`, `Wed 12:00` on another, in `tz`.
pub fn short_time(tz: chrono_tz::Tz, ms: i64, now_ms: i64) -> String {
    let local = |ms: i64| chrono::TimeZone::timestamp_millis_opt(&tz, ms).single();
    match (local(ms), local(now_ms)) {
        (Some(t), Some(now)) if t.date_naive() == now.date_naive() => t.format("%H:%M").to_string(),
        (Some(t), _) => t.format("%a %H:%M").to_string(),
        _ => String::new(),
    }
}

fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// A leak as the owner is told about it: which pattern, since when, how fast and
/// how much so far. The same for the draw log, the alert, the banner and the mail.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    pub pattern: Pattern,
    /// The first liter that belongs to it.
    pub start_ms: i64,
    /// Its last liter so far.
    pub end_ms: i64,
    /// Liters per hour the leak itself runs (not the household's use on top).
    pub l_per_h: f64,
    /// What the leak itself ran: its rate over its span.
    pub liters: f64,
}

impl Episode {
    /// A trickle series (members of `draws`): its rate from its own spacing, its
    /// liters that rate over its span (pulses swallowed by draws on top count).
    pub fn of_series(draws: &[Segment], members: &[usize]) -> Option<Episode> {
        let part: Vec<&Segment> = members.iter().filter_map(|&i| draws.get(i)).collect();
        let (first, last) = (part.first()?, part.last()?);
        let span_h = (last.end_ms - first.start_ms).max(1) as f64 / 3_600_000.0;
        let own: f64 = part.iter().map(|s| s.liters).sum();
        let sizes: Vec<f64> = part.iter().map(|s| s.liters).collect();
        // The leak's own spacing: the median gap between members, and what each brings.
        let gaps: Vec<f64> = part
            .windows(2)
            .map(|w| (w[1].start_ms - w[0].start_ms) as f64)
            .collect();
        // What one drip or refill brings: the typical member, not a tap among them.
        let per = median(&sizes).unwrap_or(own / part.len() as f64);
        let l_per_h = match median(&gaps) {
            Some(g) if g > 0.0 => per * 3_600_000.0 / g,
            _ => own / span_h,
        };
        let series: Vec<Segment> = part.iter().map(|s| (*s).clone()).collect();
        Some(Episode {
            pattern: trickle_pattern(&series),
            start_ms: first.start_ms,
            end_ms: last.end_ms,
            l_per_h,
            liters: l_per_h * span_h + per,
        })
    }

    /// A running toilet or a burst: one draw.
    pub fn of_draw(s: &Segment, pattern: Pattern) -> Episode {
        Episode {
            pattern,
            start_ms: s.start_ms,
            end_ms: s.end_ms,
            l_per_h: s.mean_l_per_min * 60.0,
            liters: s.liters,
        }
    }

    /// "Drip since Wed 12:00, about 2 L/h, 72 L so far" (`so_far`: still going;
    /// otherwise "until …" and "in all"). Times in `tz`, the day named when it is
    /// not the day of `now_ms`.
    pub fn words(&self, tz: chrono_tz::Tz, now_ms: i64, so_far: bool) -> String {
        let at = |ms: i64| short_time(tz, ms, now_ms);
        let rate = if self.l_per_h >= 60.0 {
            format!("{} L/min", crate::words::trim(self.l_per_h / 60.0, 1))
        } else {
            format!("about {} L/h", crate::words::trim(self.l_per_h, 1))
        };
        let liters = crate::words::trim(self.liters, 0);
        if so_far {
            format!(
                "{} since {}, {rate}, {liters} L so far",
                self.pattern.name(),
                at(self.start_ms)
            )
        } else {
            format!(
                "{} from {} until {}, {rate}, {liters} L in all",
                self.pattern.name(),
                at(self.start_ms),
                at(self.end_ms)
            )
        }
    }
}

/// Whether a trickle series is a flapper rather than a drip: refills of more than
/// one pulse each. Single liters evenly spaced may be either (at one liter per
/// pulse they look alike) and are called a drip, whose words name both.
pub fn trickle_pattern(series: &[Segment]) -> Pattern {
    let multi = series.iter().filter(|s| s.events >= 2).count() * 2 >= series.len();
    if multi {
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
        assert_eq!(series, vec![(0..30).collect::<Vec<_>>()]);
        let flapper: Vec<Segment> = (0..16).map(|k| one(k as f64 * 25.0, 2.0)).collect();
        assert_eq!(trickle_series(&flapper), vec![(0..16).collect::<Vec<_>>()]);
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
    fn a_drip_under_showers_and_flushes_is_one_episode_at_its_own_rate() {
        // 2 L/h for 36 hours; a shower or a flush at 07:00, 07:30, 12:00, 19:00 and
        // 21:00 of each day swallows the drip's pulse at that moment.
        let big = [7.0, 7.5, 12.0, 19.0, 21.0];
        let mut draws = Vec::new();
        for k in 0..72 {
            let min = k as f64 * 30.0;
            if big.contains(&((min / 60.0) % 24.0)) {
                let t = (min * 60_000.0) as i64;
                draws.push(Segment {
                    start_ms: t,
                    end_ms: t + 6 * 60_000,
                    liters: 50.0,
                    mean_l_per_min: 8.0,
                    peak_l_per_min: 9.0,
                    first_event_ms: t,
                    last_event_ms: t + 6 * 60_000,
                    events: 50,
                });
            } else {
                draws.push(one(min, 1.0));
            }
        }
        let series = trickle_series(&draws);
        assert_eq!(series.len(), 1, "{series:?}");
        let e = Episode::of_series(&draws, &series[0]).unwrap();
        assert_eq!(e.pattern, Pattern::Drip);
        let span = (e.end_ms - e.start_ms) as f64 / 3_600_000.0;
        assert!(span >= 35.0 * 0.8, "{e:?}");
        assert!((e.l_per_h - 2.0).abs() < 0.2, "{e:?}");
        assert!((e.liters - 72.0).abs() <= 72.0 * 0.15, "{e:?}");
        // The showers stay draws of their own.
        assert!(series[0].iter().all(|&i| draws[i].liters <= 3.0));
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
