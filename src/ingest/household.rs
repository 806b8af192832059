//! The demo's simulated household: when would a 1 L/pulse meter pulse in a real house?
//!
//! Model (after `bench/gen_events.py`): water *draws* (start, liters, flow) for
//! showers, toilet refills, hand washing, teeth, kitchen, dishwasher and washing
//! machine fills, summer garden watering, the odd bath; a meter register integrates the
//! summed flow and emits a pulse at every whole liter. The schedule is in local time:
//! weekday morning peak ~06:00–08:00, evening peak ~18:00–22:30, later on weekends,
//! most people away on weekday daytime, quiet nights with an occasional flush; about
//! 400–500 L/day for the four-person household.
//!
//! Pure and deterministic: every local day is generated from `(seed, day)` alone, so
//! `pulses(s, a, c)` is exactly `pulses(s, a, b)` followed by `pulses(s, b, c)` for any
//! `b` (the demo back-fills history, then continues live). No IO, no clock, no `rand`.
//! This is not an input by itself: the demo feeds [`edge_timeline`] into a
//! `gpio::SimSource` so the simulated meter runs through the real pulse filter.

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Weekday};
use chrono_tz::Tz;

use super::gpio::Level;

const H: f64 = 3600.0;
const PERSONS: usize = 4;

/// Unix-ms time of every 1-liter pulse in `[from_ms, to_ms)`, sorted.
pub fn pulses(seed: u64, from_ms: i64, to_ms: i64, tz: Tz) -> Vec<i64> {
    if from_ms >= to_ms {
        return Vec::new();
    }
    let house = Household::new(seed);
    // A day's draws reach past its midnight (late showers, bedtime flushes), so the
    // day before `from` contributes too.
    let first = local_date(from_ms, tz) - TimeDelta::days(1);
    let last = local_date(to_ms, tz);
    let mut out = Vec::new();
    for day in first.iter_days().take_while(|d| *d <= last) {
        let mut rng = Rng::new(seed ^ day_key(day));
        let draws = house.day(&mut rng, day, tz);
        let register0 = rng.unit();
        register_pulses(&draws, register0, &mut out, from_ms, to_ms);
    }
    out.sort_unstable();
    out
}

/// Pulses as a contact timeline in unix ms: closed (low, the usual pull-up wiring with
/// edge = falling) for 100 ms per pulse, with an occasional contact bounce of 1 ms
/// steps on either edge. A pulse closer than 160 ms to the previous one is moved later,
/// so every pulse stays countable. `pulse_times` must be sorted.
pub fn edge_timeline(pulse_times: &[i64], seed: u64) -> Vec<(i64, Level)> {
    const WIDTH: i64 = 100;
    const GAP: i64 = 60;
    let mut rng = Rng::new(seed ^ 0xB0_0CE);
    let mut out = Vec::with_capacity(pulse_times.len() * 2);
    let mut free_at = i64::MIN;
    for &t in pulse_times {
        let start = t.max(free_at);
        let mut end = start + WIDTH;
        out.push((start, Level::Low));
        for (from, closing) in [(start, true), (end, false)] {
            if !closing {
                out.push((end, Level::High));
            }
            if rng.unit() < 0.1 {
                let bounces = 1 + (rng.next_u64() % 3) as i64;
                for k in 0..bounces {
                    let (away, back) = if closing {
                        (Level::High, Level::Low)
                    } else {
                        (Level::Low, Level::High)
                    };
                    out.push((from + 2 * k + 1, away));
                    out.push((from + 2 * k + 2, back));
                }
                if !closing {
                    end += 2 * bounces;
                }
            }
        }
        free_at = end + GAP;
    }
    out.sort_by_key(|(t, _)| *t);
    out
}

/// One water draw: from `start_ms`, `liters` at `lpm` liters per minute.
#[derive(Debug, Clone, Copy)]
struct Draw {
    start_ms: i64,
    liters: f64,
    lpm: f64,
}

/// Traits that stay the same every day.
struct Household {
    chrono: [f64; PERSONS],
    works_away: [bool; PERSONS],
    shower_p: [f64; PERSONS],
    garden: bool,
}

impl Household {
    fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut house = Self {
            chrono: [0.0; PERSONS],
            works_away: [false; PERSONS],
            shower_p: [0.0; PERSONS],
            garden: rng.unit() < 0.7,
        };
        for p in 0..PERSONS {
            house.chrono[p] = rng.gauss(0.0, 0.4 * H);
            house.works_away[p] = rng.unit() < 0.8;
            house.shower_p[p] = rng.gauss(0.8, 0.12).clamp(0.45, 1.0);
        }
        house
    }

    /// The draws of local day `d` (times may run past the next midnight).
    fn day(&self, rng: &mut Rng, d: NaiveDate, tz: Tz) -> Vec<Draw> {
        let mut day = Day {
            rng,
            date: d,
            tz,
            draws: Vec::new(),
        };
        let weekend = matches!(d.weekday(), Weekday::Sat | Weekday::Sun);
        let late_night = matches!(d.weekday(), Weekday::Fri | Weekday::Sat);
        let mut wakes = Vec::with_capacity(PERSONS);
        let mut someone_home = false;
        for p in 0..PERSONS {
            let wake = if weekend {
                (day.rng.gauss(8.3 * H, 0.8 * H) + self.chrono[p]).clamp(6.0 * H, 11.5 * H)
            } else {
                (day.rng.gauss(6.4 * H, 0.35 * H) + self.chrono[p]).clamp(5.0 * H, 9.0 * H)
            };
            let bed_mean = if late_night { 23.4 * H } else { 22.7 * H };
            let bed = (day.rng.gauss(bed_mean, 0.6 * H) + self.chrono[p]).clamp(21.0 * H, 25.5 * H);
            wakes.push(wake);
            let away = (!weekend && self.works_away[p] && day.rng.unit() < 0.9).then(|| {
                let leave = wake + day.rng.uniform(0.75, 1.5) * H;
                (leave, day.rng.uniform(13.0, 18.5) * H)
            });
            someone_home |= away.is_none();
            day.person(self.shower_p[p], wake, bed, away);
        }
        let first_up = wakes.iter().copied().fold(f64::MAX, f64::min);
        day.kitchen(first_up, weekend || someone_home);
        day.machines(weekend);
        if self.garden && (5..=9).contains(&d.month()) {
            let p = if matches!(d.month(), 7 | 8) {
                0.4
            } else {
                0.22
            };
            if day.rng.unit() < p {
                let at = day.rng.uniform(19.0, 21.0) * H;
                let (liters, lpm) = (day.rng.uniform(40.0, 120.0), day.rng.uniform(12.0, 18.0));
                day.add(at, liters, lpm);
            }
        }
        if day.rng.unit() < 0.04 {
            let at = day.rng.uniform(18.0, 21.0) * H;
            let (liters, lpm) = (day.rng.uniform(120.0, 160.0), day.rng.uniform(14.0, 18.0));
            day.add(at, liters, lpm);
        }
        day.draws
    }
}

/// Builds one day's draws; times are local wall-clock seconds after midnight.
struct Day<'a> {
    rng: &'a mut Rng,
    date: NaiveDate,
    tz: Tz,
    draws: Vec<Draw>,
}

impl Day<'_> {
    fn add(&mut self, wall_s: f64, liters: f64, lpm: f64) {
        let start_ms = local_ms(self.tz, self.date, wall_s);
        self.draws.push(Draw {
            start_ms,
            liters,
            lpm,
        });
    }

    fn person(&mut self, shower_p: f64, wake: f64, bed: f64, away: Option<(f64, f64)>) {
        if self.rng.unit() < shower_p {
            let at = if self.rng.unit() < 0.65 {
                wake + self.rng.uniform(0.1, 0.6) * H
            } else {
                self.rng.uniform(19.0 * H, (bed - 0.3 * H).max(19.5 * H))
            };
            let (liters, lpm) = (self.rng.uniform(40.0, 80.0), self.rng.uniform(8.0, 12.0));
            self.add(at, liters, lpm);
        }
        let mut flushes = vec![
            wake + self.rng.uniform(0.0, 0.25) * H,
            bed - self.rng.uniform(0.0, 0.3) * H,
        ];
        let mut t = wake + 0.3 * H;
        loop {
            t += self.rng.expo(0.42 / H);
            if t >= bed - 0.3 * H {
                break;
            }
            if !away.is_some_and(|(leave, back)| leave <= t && t < back) {
                flushes.push(t);
            }
        }
        if self.rng.unit() < 0.1 {
            flushes.push(self.rng.uniform(1.0 * H, 4.5 * H)); // the night-time flush
        }
        for at in flushes {
            let (liters, lpm) = (self.rng.uniform(6.0, 9.0), self.rng.uniform(6.0, 12.0));
            self.add(at, liters, lpm); // cistern refill
            if self.rng.unit() < 0.7 {
                let wash = at + self.rng.uniform(15.0, 40.0);
                self.hand_wash(wash);
            }
        }
        let (morning, evening) = (self.rng.uniform(0.05, 0.4), self.rng.uniform(0.1, 0.5));
        self.hand_wash(wake + morning * H); // teeth, face
        self.hand_wash(bed - evening * H);
    }

    fn hand_wash(&mut self, at: f64) {
        let (liters, lpm) = (self.rng.uniform(0.3, 1.0), self.rng.uniform(4.0, 7.0));
        self.add(at, liters, lpm);
    }

    fn kitchen(&mut self, first_up: f64, lunch_at_home: bool) {
        let breakfast = first_up + self.rng.uniform(0.2, 0.5) * H;
        let liters = self.rng.uniform(1.0, 3.0);
        self.add(breakfast, liters, 6.0);
        if lunch_at_home {
            let (at, liters) = (self.rng.uniform(11.8, 13.0) * H, self.rng.uniform(2.0, 5.0));
            self.add(at, liters, 6.0);
        }
        let dinner = self.rng.uniform(17.5, 19.5) * H;
        for j in 0..3 {
            let at = dinner + f64::from(j) * self.rng.uniform(8.0, 15.0) * 60.0;
            let (liters, lpm) = (self.rng.uniform(1.0, 2.7), self.rng.uniform(6.0, 8.0));
            self.add(at, liters, lpm);
        }
        if self.rng.unit() < 0.4 {
            let (at, liters) = (
                dinner + self.rng.uniform(0.8, 1.5) * H,
                self.rng.uniform(5.0, 15.0),
            );
            self.add(at, liters, 6.0); // dishes by hand
        }
    }

    fn machines(&mut self, weekend: bool) {
        if self.rng.unit() < 0.55 {
            let t0 = self.rng.uniform(19.5, 22.0) * H; // dishwasher: 4 fills
            for minutes in [0.0, 15.0, 45.0, 75.0] {
                let (liters, lpm) = (self.rng.uniform(2.5, 3.5), self.rng.uniform(6.0, 9.0));
                self.add(t0 + minutes * 60.0, liters, lpm);
            }
        }
        if self.rng.unit() < if weekend { 0.8 } else { 0.35 } {
            let t0 = if weekend {
                self.rng.uniform(9.0, 17.0) * H
            } else {
                self.rng.uniform(17.5, 20.0) * H
            };
            for minutes in [0.0, 12.0, 30.0, 45.0, 60.0] {
                let (liters, lpm) = (self.rng.uniform(8.0, 13.0), self.rng.uniform(10.0, 12.0));
                self.add(t0 + minutes * 60.0, liters, lpm); // washing machine fills
            }
        }
    }
}

/// Integrate the summed flow of `draws` from `register0` liters; push the time of
/// every whole-liter crossing inside `[from_ms, to_ms)`.
fn register_pulses(draws: &[Draw], register0: f64, out: &mut Vec<i64>, from_ms: i64, to_ms: i64) {
    let mut steps: Vec<(f64, f64)> = Vec::with_capacity(draws.len() * 2);
    for d in draws {
        let flow = d.lpm / 60_000.0; // liters per ms
        let start = d.start_ms as f64;
        steps.push((start, flow));
        steps.push((start + d.liters / flow, -flow));
    }
    steps.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut register, mut flow, mut prev_t) = (register0, 0.0_f64, f64::NAN);
    let mut last = i64::MIN;
    for (t, delta) in steps {
        if flow > 1e-12 && t > prev_t {
            let end = register + flow * (t - prev_t);
            let mut next = register.floor() + 1.0;
            while next <= end {
                let at = (prev_t + (next - register) / flow) as i64;
                let at = at.max(last + 1); // one meter never pulses twice in one ms
                last = at;
                if (from_ms..to_ms).contains(&at) {
                    out.push(at);
                }
                next += 1.0;
            }
            register = end;
        }
        flow = (flow + delta).max(0.0);
        if flow < 1e-12 {
            flow = 0.0;
        }
        prev_t = t;
    }
}

fn local_date(unix_ms: i64, tz: Tz) -> NaiveDate {
    tz.timestamp_millis_opt(unix_ms)
        .single()
        .map_or(NaiveDate::MIN, |t| t.date_naive())
}

/// Local wall-clock seconds after midnight of `d` → unix ms (a time in a DST gap moves
/// an hour later; an ambiguous one takes the first).
fn local_ms(tz: Tz, d: NaiveDate, wall_s: f64) -> i64 {
    let naive: NaiveDateTime =
        d.and_time(chrono::NaiveTime::MIN) + TimeDelta::milliseconds((wall_s * 1000.0) as i64);
    tz.from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(naive + TimeDelta::hours(1)))
                .earliest()
        })
        .map_or(0, |t| t.timestamp_millis())
}

fn day_key(d: NaiveDate) -> u64 {
    (d.num_days_from_ce() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// splitmix64: tiny, seedable, good enough for a simulation.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut rng = Self(seed);
        rng.next_u64(); // so seeds that differ in one bit diverge at once
        rng
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    fn gauss(&mut self, mean: f64, sd: f64) -> f64 {
        let (u1, u2) = (1.0 - self.unit(), self.unit());
        mean + sd * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Exponentially distributed waiting time for `rate` events per second.
    fn expo(&mut self, rate: f64) -> f64 {
        -(1.0 - self.unit()).ln() / rate
    }
}

#[cfg(test)]
#[path = "household_tests.rs"]
mod tests;
