//! Calendar arithmetic in the configured IANA zone: where local minutes, hours,
//! days and months begin, as UTC instants.
//!
//! Pure functions, no IO. Every IANA offset in use is a multiple of 15 minutes, so
//! local hours begin on the UTC quarter-hour grid and a local day is an exact sum of
//! quarter-hours; that is what lets the store answer from its quarter and day
//! rollups. (Historic local mean times before ~1900 are not on that grid; their
//! hours fall on the nearest following quarter.)

use chrono::{DateTime, Datelike, NaiveDate, Offset, TimeZone, Timelike};
use chrono_tz::Tz;

/// Every IANA offset is a multiple of a quarter hour: local boundaries are found
/// by stepping in quarter hours.
const QUARTER_MS: i64 = 900_000;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// The most buckets one query may ask for (a leap year of hours is 8,784).
pub const MAX_BUCKETS: usize = 20_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    Minute,
    Hour,
    Day,
    Month,
}

impl Step {
    pub fn parse(s: &str) -> Option<Step> {
        match s {
            "minute" => Some(Step::Minute),
            "hour" => Some(Step::Hour),
            "day" => Some(Step::Day),
            "month" => Some(Step::Month),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Minute => "minute",
            Step::Hour => "hour",
            Step::Day => "day",
            Step::Month => "month",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BucketError {
    #[error(
        "the range asks for more than {MAX_BUCKETS} buckets; use a larger step or a shorter range"
    )]
    TooMany,
    #[error("the range is outside the years the store can hold (1970 to 2100)")]
    OutOfRange,
}

/// Bucket boundaries covering `[from_ms, to_ms)`: `b[0] <= from_ms < b[1]`, and the
/// last boundary is at or after `to_ms`. `n + 1` boundaries make `n` buckets; a
/// spring-forward day has 23 hourly buckets, a fall-back day 25.
pub fn boundaries(tz: Tz, step: Step, from_ms: i64, to_ms: i64) -> Result<Vec<i64>, BucketError> {
    if !(0..=4_102_444_800_000).contains(&from_ms) || !(0..=4_102_444_800_000).contains(&to_ms) {
        return Err(BucketError::OutOfRange);
    }
    let mut out = Vec::new();
    let mut b = bucket_start(tz, step, from_ms);
    out.push(b);
    while b < to_ms {
        b = next_boundary(tz, step, b);
        out.push(b);
        if out.len() > MAX_BUCKETS + 1 {
            return Err(BucketError::TooMany);
        }
    }
    if out.len() == 1 {
        out.push(next_boundary(tz, step, b));
    }
    Ok(out)
}

/// The start of the local bucket that contains `ts_ms`.
pub fn bucket_start(tz: Tz, step: Step, ts_ms: i64) -> i64 {
    match step {
        Step::Minute => ts_ms.div_euclid(MINUTE_MS) * MINUTE_MS,
        Step::Hour => {
            let mut q = ts_ms.div_euclid(QUARTER_MS) * QUARTER_MS;
            for _ in 0..4 {
                if local(tz, q).minute() == 0 {
                    break;
                }
                q -= QUARTER_MS;
            }
            q
        }
        Step::Day => day_start(tz, local(tz, ts_ms).date_naive()),
        Step::Month => {
            let d = local(tz, ts_ms).date_naive();
            day_start(tz, d.with_day(1).unwrap_or(d))
        }
    }
}

/// The start of the bucket after the one starting at `start_ms`.
pub fn next_boundary(tz: Tz, step: Step, start_ms: i64) -> i64 {
    match step {
        Step::Minute => start_ms + MINUTE_MS,
        Step::Hour => {
            let mut q = start_ms.div_euclid(QUARTER_MS) * QUARTER_MS + QUARTER_MS;
            // A local hour is at most 60 minutes long, except where a zone skips
            // less than an hour (Lord Howe's 30-minute DST); stop after 8 quarters.
            for _ in 0..8 {
                if local(tz, q).minute() == 0 {
                    return q;
                }
                q += QUARTER_MS;
            }
            q
        }
        Step::Day => {
            let d = local(tz, start_ms).date_naive();
            day_start(tz, d.succ_opt().unwrap_or(d))
        }
        Step::Month => {
            let d = local(tz, start_ms).date_naive();
            let next = if d.month() == 12 {
                NaiveDate::from_ymd_opt(d.year() + 1, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(d.year(), d.month() + 1, 1)
            };
            day_start(tz, next.unwrap_or(d))
        }
    }
}

pub fn local(tz: Tz, ts_ms: i64) -> DateTime<Tz> {
    match tz.timestamp_millis_opt(ts_ms) {
        chrono::LocalResult::Single(t) => t,
        _ => tz.timestamp_millis_opt(0).single().unwrap_or_else(|| {
            // Unreachable for the validated range; keep a value rather than panic.
            DateTime::<chrono::Utc>::UNIX_EPOCH.with_timezone(&tz)
        }),
    }
}

/// Days since 1970-01-01 of the local date of `ts_ms`.
pub fn local_day_number(tz: Tz, ts_ms: i64) -> i64 {
    day_number(local(tz, ts_ms).date_naive())
}

pub fn day_number(d: NaiveDate) -> i64 {
    i64::from(d.num_days_from_ce()) - 719_163
}

pub fn date_of_day_number(n: i64) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(i32::try_from(n + 719_163).ok()?)
}

/// The Monday of `d`'s week (weeks start on Monday).
pub fn monday_of(d: NaiveDate) -> NaiveDate {
    d - chrono::Days::new(u64::from(d.weekday().num_days_from_monday()))
}

/// The 1st of `d`'s month.
pub fn first_of_month(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

/// The first instant whose local date is `d` (usually local midnight; later on the
/// few days where midnight does not exist).
pub fn day_start(tz: Tz, d: NaiveDate) -> i64 {
    let midnight_utc = d
        .and_hms_opt(0, 0, 0)
        .map(|n| n.and_utc().timestamp_millis())
        .unwrap_or(0);
    let offset_ms =
        |t: i64| -> i64 { i64::from(local(tz, t).offset().fix().local_minus_utc()) * 1000 };
    // Midnight with the offset in force just before it, then nudge over a gap.
    let mut c = midnight_utc - offset_ms(midnight_utc - DAY_MS / 2);
    while local(tz, c).date_naive() < d {
        c += QUARTER_MS;
    }
    while local(tz, c - QUARTER_MS).date_naive() >= d {
        c -= QUARTER_MS;
    }
    c
}

/// The instant of a local wall-clock time in `tz`: the earlier one when it exists
/// twice (DST fold), the first instant after it when it does not exist (DST gap).
pub fn local_ms(tz: Tz, t: chrono::NaiveDateTime) -> i64 {
    use chrono::TimeZone;
    for step in 0..16 {
        let shifted = t + chrono::Duration::minutes(15 * step);
        if let Some(dt) = tz.from_local_datetime(&shifted).earliest() {
            return dt.timestamp_millis();
        }
    }
    t.and_utc().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// Hourly buckets of one local day.
    fn hours_of_day(tz: Tz, d: NaiveDate) -> usize {
        let from = day_start(tz, d);
        let to = day_start(tz, d.succ_opt().unwrap());
        boundaries(tz, Step::Hour, from, to).unwrap().len() - 1
    }

    #[test]
    fn dst_spring_forward_day_has_23_hourly_buckets() {
        assert_eq!(
            hours_of_day(chrono_tz::Europe::Vienna, day(2026, 3, 29)),
            23
        );
        assert_eq!(
            hours_of_day(chrono_tz::America::New_York, day(2026, 3, 8)),
            23
        );
    }

    #[test]
    fn dst_fall_back_day_has_25_hourly_buckets() {
        assert_eq!(
            hours_of_day(chrono_tz::Europe::Vienna, day(2026, 10, 25)),
            25
        );
        assert_eq!(
            hours_of_day(chrono_tz::America::New_York, day(2026, 11, 1)),
            25
        );
    }

    #[test]
    fn ordinary_days_have_24_hours_in_every_zone() {
        for tz in [
            chrono_tz::Europe::Vienna,
            chrono_tz::America::New_York,
            chrono_tz::Asia::Kathmandu,
            chrono_tz::Asia::Kolkata,
            chrono_tz::UTC,
        ] {
            assert_eq!(hours_of_day(tz, day(2026, 6, 15)), 24, "{tz}");
        }
    }

    #[test]
    fn kathmandu_days_and_hours_begin_at_quarter_past_utc() {
        let tz = chrono_tz::Asia::Kathmandu; // +05:45
        assert_eq!(day_start(tz, day(2026, 6, 15)), utc("2026-06-14T18:15:00Z"));
        let b = boundaries(
            tz,
            Step::Hour,
            utc("2026-06-15T10:20:00Z"),
            utc("2026-06-15T11:20:00Z"),
        )
        .unwrap();
        assert_eq!(b[0], utc("2026-06-15T10:15:00Z"));
        assert_eq!(b[1], utc("2026-06-15T11:15:00Z"));
    }

    #[test]
    fn vienna_day_starts_follow_the_offset() {
        let tz = chrono_tz::Europe::Vienna;
        assert_eq!(day_start(tz, day(2026, 1, 10)), utc("2026-01-09T23:00:00Z"));
        assert_eq!(day_start(tz, day(2026, 7, 10)), utc("2026-07-09T22:00:00Z"));
        assert_eq!(
            day_start(tz, day(2026, 3, 30)) - day_start(tz, day(2026, 3, 29)),
            23 * 3_600_000
        );
    }

    #[test]
    fn months_have_their_calendar_length_in_local_time() {
        let tz = chrono_tz::Europe::Vienna;
        let b = boundaries(
            tz,
            Step::Month,
            utc("2026-01-15T00:00:00Z"),
            utc("2026-12-15T00:00:00Z"),
        )
        .unwrap();
        assert_eq!(b.len(), 13);
        assert_eq!(b[0], utc("2025-12-31T23:00:00Z"));
        assert_eq!(b[3], utc("2026-03-31T22:00:00Z"));
        assert_eq!(b[12], utc("2026-12-31T23:00:00Z"));
    }

    #[test]
    fn a_range_inside_one_bucket_gives_one_bucket() {
        let tz = chrono_tz::UTC;
        let b = boundaries(
            tz,
            Step::Day,
            utc("2026-05-05T10:00:00Z"),
            utc("2026-05-05T10:00:00Z"),
        )
        .unwrap();
        assert_eq!(
            b,
            vec![utc("2026-05-05T00:00:00Z"), utc("2026-05-06T00:00:00Z")]
        );
    }

    #[test]
    fn too_many_buckets_is_an_error_not_a_hang() {
        let r = boundaries(chrono_tz::UTC, Step::Minute, 0, 100 * DAY_MS);
        assert_eq!(r, Err(BucketError::TooMany));
    }

    #[test]
    fn day_numbers_round_trip() {
        let d = day(2026, 11, 26);
        assert_eq!(date_of_day_number(day_number(d)), Some(d));
        assert_eq!(day_number(day(1970, 1, 1)), 0);
    }
}
