#!/usr/bin/env python3
"""Independent household water end-use model -> per-liter meter pulses (stdlib only).

A second workload generator, built separately from shared/bench/gen_events.py so
that draw classification can be measured on households the detector was not
tuned on.  Output formats are the same as gen_events.py:

  * InfluxDB line protocol, one line per 1-liter pulse, sorted by time:
        water,meter=m001 liters=1 1672556400123456789
    The meter register integrates the *summed* flow of all draws running at
    the same time and emits a pulse each time it crosses a whole liter, so
    overlapping draws add flow and a draw under 1 L may emit no pulse of its
    own (its water shows up in the next pulse).
  * --draws FILE: ground truth CSV `meter,start_ns,end_ns,liters,kind`, one
    row per draw that starts inside the window, kinds shower, bath, toilet,
    tap, dishwasher, washing_machine, garden and, with --leaks, leak_drip,
    leak_toilet, leak_running, leak_burst.  Washing machine and dishwasher
    rows are one per *fill* (a cycle is several rows); a shower with a
    soaping pause is one row (start of first spray to end of last); a leak
    episode is one row (start to end of the episode, total volume).

Model (all parameters drawn once per household, then per day / per use):

  Household: 1-5 persons (weights 30/34/15/14/7 %, roughly the German /
  EU household-size mix); roles worker (some work-from-home days), retired,
  stay-at-home parent, school child, student.  Each person has own wake /
  leave / return / bed times (weekday vs weekend), outings, occasional
  personal trips; the household has summer and other vacations and weekend
  trips (whole days with zero use).  Schedules are in local wall-clock time
  (--tz, DST via zoneinfo).

  Toilet  - fixture: 25 % old single-flush cisterns 9-13 L; 45 % dual 6/3 L;
            30 % dual 9/4.5 L, with a per-household full-flush share 30-60 %.
            The metered draw is the cistern refill at 2-15 L/min (log-uniform,
            valve/pressure).  ~4.5-7 uses per person per awake-at-home 16 h,
            a morning use after waking, some night uses; hand washing right
            after (overlaps the refill).  REU2016 reports ~5 flushes/person/day
            and a mean of ~2.6 gal (~9.8 L) per flush in a stock still holding
            many older toilets; SEQREUS/Gold Coast report ~6/3 L and
            9/4.5 L dual-flush stock.
  Shower  - head flow 5-15 L/min (log-uniform, mean ~9; REU2016 mean ~2.1 gpm
            = 7.9 L/min, Australian efficient heads 7-9 L/min), 80-100 % open
            per use; per-person duration lognormal with person mean ~8 min
            (N(8, 2.2) clipped 3.5-16; child 6), sigma 0.25-0.45 (REU2016
            mean ~7.8 min; Willis et al. 2011 / Beal & Stewart 2011 ~7 min);
            0.45-1 showers/person/day (REU2016 ~0.7); 55 % morning, 30 %
            evening, 15 % either; 25 % of people pause 30-90 s mid-shower
            while soaping.  One or two bathrooms: showers queue if busy.
  Bath    - 35 % of homes no tub; otherwise 0.1-1.2 per week (x1.6 with
            children), 100-200 L at 12-25 L/min, evenings.
  Washing - 3-10 cycles/week (1.2 + 1.5 x persons +- 0.8), more on weekends;
  machine   machine trait of 3-6 fills (+-1 by program) of 6-20 L (machine
            mean 7-14 L) at 6-12 L/min, 10-20 min after the first fill (main
            wash heating), 3-12 min between rinse fills; some delayed-start
            night cycles.  (REU2016 ~0.3 loads/person/day; EU front-loaders
            ~40-60 L/cycle, older/US top-loaders up to ~120 L.)
  Dish-   - 20-45 % of homes none (45 % for singles); 0.5-1.5 runs/day,
  washer    3-5 fills of 2.5-6 L at 2-5 L/min, 5-12 min apart (15-25 min
            before the main wash) - evenings after dinner, mornings, night
            timers.  Homes without one wash up by hand (sink fills 3-8 L).
  Taps    - kitchen 4-8 L/min, bathroom 2-6 L/min fixtures, 50-100 % open;
            lognormal volumes per purpose clipped to 0.2-8 L: hand washing,
            teeth, drinks/kettle, cooking and rinsing at breakfast / lunch
            (if anyone home) / dinner, cleaning buckets.  (SEQREUS ~25-30
            L/person/day taps; REU2016 faucets ~11 gal/person/day.)
  Garden  - 45 % of homes; May-September only, seasonal peak in July,
            skipped on rain days (a Markov rain chain shared by all meters),
            100-600 L (household mean 150-450 L) at 8-20 L/min, evening or
            early morning.
  Leaks   - (--leaks) about one episode per 30 days (at least 2), kinds in a
            shuffled rotation: drip 1-3 L/h continuous for 1-4 days; leaking
            flapper = cistern refill of 0.5-2 L every 15-45 min for one
            night or 1-5 days; running toilet 2-6 L/min for 1-6 h, starting
            right after a flush; burst 30-60 L/min for 5-30 min.

Resulting totals are ~100-160 L/person/day, in line with the German
~125 L/person/day (BDEW) and the SEQREUS ~150 L/person/day.

Sources (distributions as summarised from memory of the publications, so
parameters are rounded ranges, not fitted values):
  * DeOreo, W.B., Mayer, P.W., Dziegielewski, B., Kiefer, J. (2016).
    Residential End Uses of Water, Version 2 (REU2016). Water Research
    Foundation, Denver.  (and Mayer et al. 1999, REU1999, for leak types)
  * Willis, R.M., Stewart, R.A., Panuwatwanich, K., Williams, P.R.,
    Hollingsworth, A.L. (2011). Quantifying the influence of environmental
    and water conservation attitudes on household end use water
    consumption. J. Environmental Management 92(8), 1996-2009 (Gold Coast).
  * Beal, C., Stewart, R.A. (2011). South East Queensland Residential End
    Use Study (SEQREUS): Final Report. Urban Water Security Research
    Alliance Technical Report No. 47.
  * BDEW (2021-2023). Wassernutzung im Haushalt / Trinkwasserverwendung im
    Haushalt (German per-capita use and its split).

Everything is driven by random.Random seeded with (seed, meter index), so a
meter's stream does not depend on --meters; the rain chain depends on the
seed only.  Output is sorted by time across meters.

Usage:
  households.py --days 30 --leaks --draws truth.csv -o h30d.lp
  households.py --meters 5 --days 365 --start 2023-01-01 --seed 7 > h5y.lp
"""
import argparse
import heapq
import math
import random
import signal
import sys
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

MIN = 60.0
H = 3600.0
DAY = 86400.0


# ----------------------------------------------------------------- helpers
def clip(x, lo, hi):
    return lo if x < lo else hi if x > hi else x


def logu(rng, a, b):
    return math.exp(rng.uniform(math.log(a), math.log(b)))


def poisson(rng, lam):
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, int(round(rng.gauss(lam, math.sqrt(lam)))))
    lim, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= lim:
            return k
        k += 1


def lognorm_mean(rng, mean, sigma):
    return rng.lognormvariate(math.log(mean) - sigma * sigma / 2, sigma)


def lognorm_median(rng, median, sigma, lo, hi):
    return clip(rng.lognormvariate(math.log(median), sigma), lo, hi)


def subtract(iv, outs):
    """Interval [a,b) minus a list of intervals -> list of intervals."""
    res = [iv]
    for oa, ob in outs:
        nxt = []
        for a, b in res:
            if ob <= a or oa >= b:
                nxt.append((a, b))
                continue
            if oa > a:
                nxt.append((a, oa))
            if ob < b:
                nxt.append((ob, b))
        res = nxt
    return [(a, b) for a, b in res if b - a > 1]


def pick(rng, ivs, lo, hi):
    """Uniform time in (union of ivs) ∩ [lo, hi), or None."""
    segs = []
    tot = 0.0
    for a, b in ivs:
        a, b = max(a, lo), min(b, hi)
        if b > a:
            segs.append((a, b))
            tot += b - a
    if tot <= 0:
        return None
    x = rng.random() * tot
    for a, b in segs:
        if x < b - a:
            return a + x
        x -= b - a
    return segs[-1][1]


def inside(ivs, t):
    return any(a <= t < b for a, b in ivs)


class Clock:
    """Local wall-clock (day, seconds-of-day) -> unix seconds, DST aware."""

    def __init__(self, tz):
        self.tz = tz
        self.cache = {}

    def ts(self, day, sod):
        c = self.cache.get(day)
        if c is None:
            mid = datetime.combine(day, time(), self.tz)
            nxt = mid + timedelta(days=1)  # wall-clock arithmetic
            c = (mid.timestamp(), mid.utcoffset() == nxt.utcoffset())
            self.cache[day] = c
        base, uniform = c
        if uniform and 0 <= sod < DAY:
            return base + sod
        whole = math.floor(sod)
        dt = datetime.combine(day, time(), self.tz) + timedelta(seconds=whole)
        return dt.timestamp() + (sod - whole)


# ----------------------------------------------------------------- people
class Person:
    def __init__(self, rng, role):
        self.role = role
        g = rng.gauss
        if role == "worker":
            self.wake = clip(g(6.4, 0.55), 4.8, 8.8) * H
            self.wake_we = self.wake + rng.uniform(0.5, 2.5) * H
            self.bed = clip(g(22.9, 0.6), 21.3, 24.8) * H
            self.ret = clip(g(17.4, 0.9), 14.0, 20.0) * H
            self.wfh = 0.0 if rng.random() < 0.45 else rng.uniform(0.2, 0.9)
        elif role == "child":
            self.wake = clip(g(6.6, 0.25), 6.0, 7.3) * H
            self.wake_we = self.wake + rng.uniform(0.7, 2.5) * H
            self.bed = clip(g(21.0, 0.8), 19.3, 23.0) * H
            self.ret = rng.uniform(12.8, 16.5) * H
            self.wfh = 0.0
        elif role == "student":
            self.wake = clip(g(8.2, 0.8), 6.5, 10.5) * H
            self.wake_we = self.wake + rng.uniform(0.5, 2.0) * H
            self.bed = clip(g(24.0, 0.7), 22.5, 26.0) * H
            self.ret = rng.uniform(14.0, 18.5) * H
            self.wfh = rng.uniform(0.2, 0.5)  # days without lectures
        else:  # retired, home (stay-at-home parent)
            self.wake = clip(g(7.4 if role == "retired" else 6.6, 0.6), 5.5, 9.5) * H
            self.wake_we = self.wake + rng.uniform(0.0, 1.2) * H
            self.bed = clip(g(22.5, 0.7), 20.8, 24.3) * H
            self.ret = 0.0
            self.wfh = 1.0
        self.leave_delay = rng.uniform(30, 75) * MIN
        if role == "child":
            self.shower_p = rng.uniform(0.3, 0.7)
            self.shower_mean = clip(g(6.0, 1.5), 3.0, 10.0)
        else:
            self.shower_p = rng.uniform(0.45, 1.0)
            self.shower_mean = clip(g(8.0, 2.2), 3.5, 16.0)
        r = rng.random()
        self.morning_p = 0.9 if r < 0.55 else 0.1 if r < 0.85 else 0.5
        if role == "child":
            self.morning_p = min(self.morning_p, 0.3)
        self.shower_sigma = rng.uniform(0.25, 0.45)
        self.pauses = rng.random() < 0.25
        self.toilet_rate = rng.uniform(4.5, 7.0) / (16 * H)
        self.handwash_p = rng.uniform(0.5, 0.95)
        self.drink_rate = rng.uniform(0.2, 0.5) / H
        self.night_p = 0.45 if role == "retired" else 0.08 if role == "child" else 0.15
        self.trip_p = {"worker": 0.012, "student": 0.02}.get(role, 0.004)
        self.away_left = 0

    def plan(self, rng, day, weekend, hh_out):
        """-> (wake, bed, outs) in seconds of day, or None if away."""
        if self.away_left > 0:
            self.away_left -= 1
            return None
        if rng.random() < self.trip_p:
            self.away_left = rng.randint(0, 3)
            return None
        j = rng.gauss
        outs = []
        if weekend:
            wake = self.wake_we + j(0, 40 * MIN)
            bed = self.bed + (rng.uniform(0, 1.2) * H if day.weekday() == 5 else 0) + j(0, 30 * MIN)
            if hh_out:
                outs.append(hh_out)
            elif rng.random() < 0.45:
                a = rng.uniform(10, 16) * H
                outs.append((a, a + rng.uniform(1.5, 5) * H))
            if self.role in ("worker", "student") and rng.random() < 0.25:
                a = rng.uniform(19, 21) * H
                b = a + rng.uniform(2, 5) * H
                outs.append((a, b))
                bed = max(bed, b + rng.uniform(10, 40) * MIN)
        else:
            wake = self.wake + j(0, 15 * MIN)
            bed = self.bed + j(0, 30 * MIN)
            home_day = rng.random() < self.wfh
            if self.role in ("worker", "child", "student") and not home_day:
                leave = wake + self.leave_delay * rng.uniform(0.8, 1.2)
                back = max(leave + 2 * H, self.ret + j(0, 40 * MIN))
                outs.append((leave, back))
            elif rng.random() < (0.6 if self.role in ("retired", "home") else 0.3):
                a = rng.uniform(9, 16) * H
                outs.append((a, a + rng.uniform(0.7, 3) * H))
            if self.role in ("worker", "student") and rng.random() < 0.15:
                a = rng.uniform(18.5, 20) * H
                b = a + rng.uniform(1.5, 3.5) * H
                outs.append((a, b))
                bed = max(bed, b + rng.uniform(10, 40) * MIN)
        bed = max(bed, wake + 12 * H)
        return wake, bed, outs


# ----------------------------------------------------------------- household
class Household:
    def __init__(self, rng, persons):
        P = self.P = persons
        u = rng.uniform
        r = rng.random()
        if r < 0.25:
            self.flush = (u(9, 13), None)
            self.full_frac = 1.0
        elif r < 0.70:
            self.flush = (6.0, 3.0)
            self.full_frac = u(0.3, 0.6)
        else:
            self.flush = (9.0, 4.5)
            self.full_frac = u(0.3, 0.6)
        self.refill_lpm = logu(rng, 2, 15)
        self.shower_lpm = logu(rng, 5, 15)
        self.bathrooms = 2 if P >= 3 and rng.random() < 0.45 else 1
        roles = self._roles(rng, P)
        self.people = [Person(rng, ro) for ro in roles]
        kids = "child" in roles
        self.has_tub = rng.random() < 0.65
        self.bath_week = clip(logu(rng, 0.1, 1.2) * (1.6 if kids else 1.0), 0, 3) if self.has_tub else 0.0
        self.bath_lpm = u(12, 25)
        self.wm_week = clip(1.2 + 1.5 * P + rng.gauss(0, 0.8), 3, 10)
        self.wm_fills = rng.randint(3, 6)
        self.wm_fill_l = u(7, 14)
        self.wm_lpm = u(6, 12)
        self.wm_timer = rng.random() < 0.15
        self.has_dw = rng.random() < (0.55 if P == 1 else 0.8)
        self.dw_day = clip((0.3 + 0.22 * P) * u(0.8, 1.25), 0.5, 1.5)
        self.dw_fills = rng.randint(3, 5)
        self.dw_fill_l = u(3, 5)
        self.dw_lpm = u(2, 5)
        self.dw_timer = rng.random() < 0.15
        self.kitchen_lpm = u(4, 8)
        self.basin_lpm = u(2, 6)
        self.has_garden = rng.random() < 0.45
        self.garden_lpm = u(8, 20)
        self.garden_l = u(150, 450)
        self.garden_freq = u(0.15, 0.55)
        self.garden_morning = rng.random() < 0.25
        self.roles = roles

    @staticmethod
    def _roles(rng, P):
        r = rng.random
        if P == 1:
            x = r()
            return ["worker" if x < 0.65 else "retired" if x < 0.9 else "student"]
        if P == 2:
            first = "worker" if r() < 0.75 else "retired"
            if first == "retired":
                second = "retired" if r() < 0.8 else "worker"
            else:
                x = r()
                second = "worker" if x < 0.75 else "home" if x < 0.85 else "student"
            return [first, second]
        roles = ["worker", "worker" if r() < 0.7 else "home"]
        for _ in range(P - 2):
            roles.append("child" if r() < 0.8 else "student")
        return roles


def away_plan(seed, idx, year):
    """Whole days the household is away in a calendar year (set of ordinals)."""
    rng = random.Random(f"households:{seed}:{idx}:away:{year}")
    days = set()
    from datetime import date
    if rng.random() < 0.7:
        s = date(year, 6, 15).toordinal() + rng.randint(0, 70)
        days.update(range(s, s + rng.randint(7, 16)))
    if rng.random() < 0.4:
        s = date(year, 1, 1).toordinal() + rng.randint(0, 355)
        days.update(range(s, s + rng.randint(4, 9)))
    for _ in range(poisson(rng, 3)):
        s = date(year, 1, 1).toordinal() + rng.randint(0, 364)
        d = date.fromordinal(s)
        s += (5 - d.weekday()) % 7  # next Saturday
        days.update((s, s + 1))
    return days


def rain_chain(seed, first_day, ndays):
    rng = random.Random(f"households:{seed}:weather")
    rain, out = False, {}
    for d in range(ndays):
        rain = rng.random() < (0.6 if rain else 0.25)
        out[first_day + timedelta(days=d)] = rain
    return out


GARDEN_SEASON = {5: 0.5, 6: 0.85, 7: 1.0, 8: 0.9, 9: 0.45}


# ----------------------------------------------------------------- simulation
class Sim:
    def __init__(self, seed, idx, persons_opt, clock):
        self.rng = rng = random.Random(f"households:{seed}:{idx}")
        P = rng.choices([1, 2, 3, 4, 5], weights=[30, 34, 15, 14, 7])[0]
        if persons_opt:
            P = persons_opt
        self.hh = Household(rng, P)
        self.clock = clock
        self.seed, self.idx = seed, idx
        self.draws = []  # (kind, [(t_start, t_end, L/s), ...])  absolute unix seconds
        self.away_years = {}

    # -- primitive draws (t in seconds-of-day of self.day)
    def add(self, kind, t, parts):
        """parts: [(gap_before_s, duration_s, l_per_min)] relative to t."""
        t0 = self.clock.ts(self.day, t)
        segs = []
        cur = t0
        for gap, dur, lpm in parts:
            cur += gap
            if dur > 0.5 and lpm > 0:
                segs.append((cur, cur + dur, lpm / MIN))
            cur += dur
        if segs:
            self.draws.append((kind, segs))
        return (cur - t0)  # total span

    def vol(self, kind, t, liters, lpm):
        return self.add(kind, t, [(0, liters / lpm * MIN, lpm)])

    def tap(self, t, where, purpose):
        rng = self.rng
        med, sig, lo, hi = {
            "hand": (0.6, 0.5, 0.2, 2.0), "teeth": (0.4, 0.5, 0.2, 1.2),
            "face": (1.0, 0.6, 0.3, 3.0), "drink": (0.4, 0.5, 0.2, 1.5),
            "kettle": (1.0, 0.35, 0.5, 1.8), "cook": (2.0, 0.7, 0.3, 6.0),
            "rinse": (1.2, 0.7, 0.2, 5.0), "washup": (5.5, 0.25, 3.0, 8.0),
            "bucket": (6.5, 0.15, 5.0, 8.0)}[purpose]
        liters = lognorm_median(rng, med, sig, lo, hi)
        lpm = clip((self.hh.kitchen_lpm if where == "k" else self.hh.basin_lpm) * rng.uniform(0.5, 1.0), 2, 8)
        return self.vol("tap", t, liters, lpm)

    def toilet(self, t, person):
        hh, rng = self.hh, self.rng
        full, half = hh.flush
        v = full if half is None or rng.random() < hh.full_frac else half
        v *= rng.uniform(0.93, 1.05)
        self.vol("toilet", t, v, clip(hh.refill_lpm * rng.uniform(0.9, 1.1), 2, 15))
        self.last_flush = t
        if person is not None and rng.random() < person.handwash_p:
            self.tap(t + rng.uniform(8, 40), "b", "hand")

    def shower(self, t, person):
        hh, rng = self.hh, self.rng
        dur = clip(lognorm_mean(rng, person.shower_mean, person.shower_sigma), 1.5, 30) * MIN
        # queue for a free bathroom
        for _ in range(6):
            busy = [(a, b) for a, b in self.shower_busy if a < t + dur and t < b]
            if len(busy) < hh.bathrooms:
                break
            t = min(b for a, b in busy) + rng.uniform(1, 6) * MIN
        lpm = max(5.0, hh.shower_lpm * rng.uniform(0.8, 1.0))
        if person.pauses and rng.random() < 0.75:
            f = rng.uniform(0.3, 0.6)
            p = rng.uniform(30, 90)
            span = self.add("shower", t, [(0, dur * f, lpm), (p, dur * (1 - f), lpm)])
        else:
            span = self.add("shower", t, [(0, dur, lpm)])
        self.shower_busy.append((t, t + span))
        return span

    def cycle(self, kind, t):
        hh, rng = self.hh, self.rng
        parts = []
        if kind == "washing_machine":
            n = clip(hh.wm_fills + rng.choice((-1, 0, 0, 0, 1)), 3, 6)
            lpm = clip(hh.wm_lpm * rng.uniform(0.95, 1.05), 6, 12)
            for i in range(n):
                gap = 0 if i == 0 else (rng.uniform(10, 20) if i == 1 else rng.uniform(3, 12)) * MIN
                liters = clip(rng.gauss(hh.wm_fill_l, 1.8), 6, 20)
                parts.append((gap, liters / lpm * MIN, lpm))
        else:
            n = hh.dw_fills
            lpm = clip(hh.dw_lpm * rng.uniform(0.95, 1.05), 2, 5)
            for i in range(n):
                gap = 0 if i == 0 else (rng.uniform(15, 25) if i == 2 else rng.uniform(5, 12)) * MIN
                liters = clip(rng.gauss(hh.dw_fill_l, 0.6), 2.5, 6)
                parts.append((gap, liters / lpm * MIN, lpm))
        # one truth row per fill
        t0 = t
        for gap, dur, l in parts:
            t0 += gap
            self.add(kind, t0, [(0, dur, l)])
            t0 += dur
        return t0 - t

    # -- one day
    def run_day(self, day, rain):
        rng, hh = self.rng, self.hh
        self.day = day
        self.shower_busy = []
        yr = day.year
        if yr not in self.away_years:
            self.away_years[yr] = away_plan(self.seed, self.idx, yr)
        weekend = day.weekday() >= 5
        hh_out = None
        if weekend and rng.random() < 0.3:
            a = rng.uniform(10, 15) * H
            hh_out = (a, a + rng.uniform(2, 6) * H)
        if day.toordinal() in self.away_years[yr]:
            return
        plans = []
        for p in hh.people:
            pl = p.plan(rng, day, weekend, hh_out)
            if pl is not None:
                plans.append((p, pl))
        if not plans:
            return
        home = []  # union of everyone's awake-at-home intervals
        for p, (wake, bed, outs) in plans:
            ivs = subtract((wake, bed), outs)
            home.extend(ivs)
            self.person_day(p, wake, bed, outs, ivs, weekend)
        self.household_day(day, plans, home, weekend, rain)

    def person_day(self, p, wake, bed, outs, ivs, weekend):
        rng = self.rng
        first_out = min((a for a, b in outs if a > wake), default=bed)
        # morning routine
        t = wake + rng.uniform(1, 12) * MIN
        if rng.random() < 0.85:
            self.toilet(t, p)
        self.tap(wake + rng.uniform(5, 30) * MIN, "b", "teeth")
        if rng.random() < 0.3:
            self.tap(wake + rng.uniform(5, 30) * MIN, "b", "face")
        morning = rng.random() < p.morning_p
        if rng.random() < p.shower_p * (1.1 if weekend else 1.0):
            if morning:
                st = wake + rng.uniform(5, 25) * MIN
                if first_out - st < 20 * MIN:
                    st = wake + 2 * MIN
                self.shower(st, p)
            else:
                st = pick(rng, ivs, max(wake + 10 * H, 18 * H), bed - 15 * MIN)
                if st is not None:
                    self.shower(st, p)
        # day: toilets and drinks while at home and awake
        hours = sum(b - a for a, b in ivs)
        for _ in range(poisson(rng, p.toilet_rate * max(0.0, hours - 1.5 * H))):
            tt = pick(rng, ivs, wake + 40 * MIN, bed - 20 * MIN)
            if tt is not None:
                self.toilet(tt, p)
        for _ in range(poisson(rng, p.drink_rate * hours)):
            tt = pick(rng, ivs, wake, bed)
            if tt is not None:
                self.tap(tt, "k", "kettle" if rng.random() < 0.3 else "drink")
        # bedtime
        if inside(ivs, bed - 10 * MIN) or not outs or outs[-1][1] < bed:
            self.tap(bed - rng.uniform(5, 20) * MIN, "b", "teeth")
            if rng.random() < 0.75:
                self.toilet(bed - rng.uniform(1, 8) * MIN, p)
        if rng.random() < p.night_p:
            self.toilet(bed + rng.uniform(1.5, 6.5) * H, None)

    def household_day(self, day, plans, home, weekend, rain):
        rng, hh = self.rng, self.hh
        first_wake = min(pl[0] for _, pl in plans)
        # breakfast
        tb = pick(rng, home, first_wake + 10 * MIN, first_wake + 60 * MIN)
        if tb is not None:
            for _ in range(rng.randint(1, 3)):
                self.tap(tb + rng.uniform(0, 25) * MIN, "k", rng.choice(("kettle", "rinse", "rinse")))
        # lunch
        tl = pick(rng, home, 11.75 * H, 13.25 * H)
        if tl is not None and rng.random() < 0.85:
            for _ in range(rng.randint(2, 5)):
                self.tap(tl + rng.uniform(0, 40) * MIN, "k", rng.choice(("cook", "rinse")))
        # dinner
        td = pick(rng, home, 17.75 * H, 20.25 * H)
        after = None
        if td is not None:
            n = rng.randint(3, 6) + hh.P
            for _ in range(n):
                self.tap(td + rng.uniform(0, 50) * MIN, "k", rng.choice(("cook", "cook", "rinse")))
            after = td + rng.uniform(70, 110) * MIN
            if not hh.has_dw:
                for k in range(rng.randint(1, 2)):
                    self.tap(after + k * rng.uniform(8, 15) * MIN, "k", "washup")
                for _ in range(rng.randint(1, 3)):
                    self.tap(after + rng.uniform(0, 20) * MIN, "k", "rinse")
            else:
                for _ in range(rng.randint(0, 3)):
                    self.tap(after + rng.uniform(-10, 10) * MIN, "k", "rinse")
        if rng.random() < 0.12:
            tc = pick(rng, home, 8 * H, 20 * H)
            if tc is not None:
                self.tap(tc, "k", "bucket")
        # dishwasher
        if hh.has_dw and rng.random() < hh.dw_day:
            x = rng.random()
            if hh.dw_timer and x < 0.5:
                t = rng.uniform(25, 28.5) * H
            elif after is not None and x < 0.85:
                t = after + rng.uniform(10, 60) * MIN
            else:
                t = pick(rng, home, first_wake + 30 * MIN, first_wake + 3 * H)
            if t is not None:
                self.cycle("dishwasher", t)
        # washing machine
        p_wm = hh.wm_week / 7 * (1.5 if weekend else 0.8)
        if rng.random() < p_wm:
            if hh.wm_timer and rng.random() < 0.4:
                t = rng.uniform(1, 5) * H
            else:
                t = pick(rng, home, 7.5 * H, 21 * H)
            if t is not None:
                span = self.cycle("washing_machine", t)
                if weekend and rng.random() < 0.3:
                    self.cycle("washing_machine", t + span + rng.uniform(20, 50) * MIN)
        # bath
        if hh.bath_week > 0 and rng.random() < hh.bath_week / 7 * (1.4 if weekend else 0.9):
            t = pick(rng, home, 17.5 * H, 21.5 * H)
            if t is not None:
                self.vol("bath", t, rng.uniform(100, 200), max(12.0, hh.bath_lpm * rng.uniform(0.85, 1.0)))
        # garden
        f = GARDEN_SEASON.get(day.month)
        if hh.has_garden and f and not rain and rng.random() < hh.garden_freq * f:
            if hh.garden_morning:
                t = pick(rng, home, 5.5 * H, 8.5 * H)
            else:
                t = pick(rng, home, 18.5 * H, 21.5 * H)
            if t is not None:
                liters = clip(hh.garden_l * rng.uniform(0.7, 1.3), 100, 600)
                self.vol("garden", t, liters, clip(hh.garden_lpm * rng.uniform(0.9, 1.05), 8, 20))

    # -- leaks over the whole window
    def leaks(self, t_lo, t_hi):
        rng, hh = self.rng, self.hh
        days = (t_hi - t_lo) / DAY
        n = max(2, int(round(days / 30 * rng.uniform(0.7, 1.3))))
        kinds = ["leak_drip", "leak_toilet", "leak_running", "leak_burst"]
        rng.shuffle(kinds)
        taken = []
        toilets = [segs[0][0] for k, segs in self.draws
                   if k == "toilet" and t_lo <= segs[0][0] < t_hi]
        for i in range(n):
            kind = kinds[i % 4]
            for _try in range(30):
                segs = self._leak(kind, t_lo, t_hi, toilets)
                s, e = segs[0][0], segs[-1][1]
                if all(e + H < a or s > b + H for a, b in taken):
                    taken.append((s, e))
                    self.draws.append((kind, segs))
                    break

    def _leak(self, kind, t_lo, t_hi, toilets):
        rng, hh = self.rng, self.hh
        span = t_hi - t_lo
        if kind == "leak_drip":
            dur = min(rng.uniform(1, 4) * DAY, span * 0.8)
            s = t_lo + rng.random() * (span - dur)
            return [(s, s + dur, rng.uniform(1, 3) / H)]
        if kind == "leak_burst":
            s = t_lo + rng.random() * (span - H)
            return [(s, s + rng.uniform(5, 30) * MIN, rng.uniform(30, 60) / MIN)]
        if kind == "leak_running":
            if toilets and rng.random() < 0.85:
                s = rng.choice(toilets) + rng.uniform(60, 240)
            else:
                s = t_lo + rng.random() * (span - 6 * H)
            s = min(s, t_hi - 6 * H)
            return [(s, s + rng.uniform(1, 6) * H, rng.uniform(2, 6) / MIN)]
        # leaking flapper: periodic small refills
        if rng.random() < 0.4 or span < 2 * DAY:
            s = t_lo + rng.random() * max(0.0, span - DAY)
            d = datetime.fromtimestamp(s, self.clock.tz).date()
            self.day = d
            s = self.clock.ts(d, rng.uniform(22, 25) * H)
            e = self.clock.ts(d, rng.uniform(30, 32) * H)
        else:
            dur = min(rng.uniform(1, 5) * DAY, span * 0.8)
            s = t_lo + rng.random() * (span - dur)
            e = s + dur
        every = rng.uniform(15, 45) * MIN
        vol = rng.uniform(0.5, 2.0)
        flow = hh.refill_lpm / MIN
        segs, t = [], s
        while t < e:
            v = clip(vol * rng.uniform(0.9, 1.1), 0.5, 2.0)
            segs.append((t, t + v / flow, flow))
            t += v / flow + every * rng.uniform(0.8, 1.2)
        return segs


def pulses(draws, register0, t_lo, t_hi):
    ev = []
    for _kind, segs in draws:
        for s, e, f in segs:
            ev.append((s, 1, f))
            ev.append((e, -1, f))
    ev.sort()
    reg, flow, active, tprev = register0, 0.0, 0, None
    for t, sgn, f in ev:
        if active > 0 and t > tprev and flow > 0:
            end = reg + flow * (t - tprev)
            k = math.floor(reg) + 1
            while k <= end:
                tc = tprev + (k - reg) / flow
                if t_lo <= tc < t_hi:
                    yield int(tc * 1e9)
                k += 1
            reg = end
        tprev = t
        active += sgn
        flow = flow + sgn * f if active else 0.0


def meter_model(seed, idx, first_day, ndays, clock, rain, persons, leaks, t_lo, t_hi):
    sim = Sim(seed, idx, persons, clock)
    for d in range(-1, ndays + 1):
        day = first_day + timedelta(days=d)
        sim.run_day(day, rain.get(day, False))
    if leaks:
        sim.leaks(t_lo, t_hi)
    register0 = sim.rng.random()
    return sim, register0


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meters", type=int, default=1)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--start", default="2023-01-01",
                    help="ISO date or datetime; naive = local midnight in --tz (default 2023-01-01)")
    ap.add_argument("--tz", default="Europe/Berlin")
    ap.add_argument("--seed", default="42")
    ap.add_argument("--persons", type=int, choices=range(1, 6), metavar="P",
                    help="persons per household 1-5 (default: random per meter)")
    ap.add_argument("--meter-prefix", default="m")
    ap.add_argument("-o", "--out", default="-")
    ap.add_argument("--leaks", action="store_true",
                    help="add labelled leak episodes (drip, toilet flapper, running toilet, burst), "
                         "about one per 30 days, at least 2")
    ap.add_argument("--draws", metavar="FILE",
                    help="also write the ground truth: one CSV row per draw "
                         "(meter,start_ns,end_ns,liters,kind) that starts inside the window")
    args = ap.parse_args()
    if args.days < 1 or args.meters < 1:
        ap.error("--days and --meters must be >= 1")

    tz = ZoneInfo(args.tz)
    st = datetime.fromisoformat(args.start)
    if st.tzinfo is None:
        st = st.replace(tzinfo=tz)
    first_day = st.astimezone(tz).date()
    t_lo = st.timestamp()
    t_hi = (st + timedelta(days=args.days)).timestamp()
    clock = Clock(tz)
    rain = rain_chain(args.seed, first_day - timedelta(days=1), args.days + 3)
    width = max(3, len(str(args.meters)))
    ids = [f"{args.meter_prefix}{i + 1:0{width}d}" for i in range(args.meters)]

    models = [meter_model(args.seed, i, first_day, args.days, clock, rain, args.persons,
                          args.leaks, t_lo, t_hi) for i in range(args.meters)]
    ndraws = 0
    truth_l = 0.0
    if args.draws:
        with open(args.draws, "w") as f:
            f.write("meter,start_ns,end_ns,liters,kind\n")
            for i, (sim, _) in enumerate(models):
                rows = []
                for kind, segs in sim.draws:
                    s = segs[0][0]
                    if t_lo <= s < t_hi:
                        liters = sum((b - a) * fl for a, b, fl in segs)
                        rows.append((s, segs[-1][1], liters, kind))
                rows.sort()
                for s, e, liters, kind in rows:
                    f.write(f"{ids[i]},{int(s * 1e9)},{int(e * 1e9)},{liters:.3f},{kind}\n")
                    truth_l += liters
                ndraws += len(rows)

    def stream(i):
        sim, reg0 = models[i]
        tag = f"water,meter={ids[i]} liters=1 "
        for ns in pulses(sim.draws, reg0, t_lo, t_hi):
            yield ns, tag

    out = sys.stdout if args.out == "-" else open(args.out, "w", buffering=1 << 20)
    n = 0
    first = last = None
    buf = []
    for ns, tag in heapq.merge(*(stream(i) for i in range(args.meters))):
        buf.append(f"{tag}{ns}\n")
        if len(buf) >= 10000:
            out.write("".join(buf))
            buf.clear()
        if first is None:
            first = ns
        last = ns
        n += 1
    out.write("".join(buf))
    if out is not sys.stdout:
        out.close()
    persons = ",".join(str(sim.hh.P) for sim, _ in models)
    extra = f" draws={ndraws} truth_liters={truth_l:.0f}" if args.draws else ""
    print(f"households: {n} events, {args.meters} meter(s), {args.days} d, "
          f"{n / args.meters / args.days:.1f} L/meter/day, persons={persons}{extra}, "
          f"first={first} last={last} window=[{int(t_lo * 1e9)},{int(t_hi * 1e9)})",
          file=sys.stderr)


if __name__ == "__main__":
    main()
