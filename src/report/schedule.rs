//! When reports are due and which period each covers. Pure.
//!
//! A weekly report is due at 07:00 local time on Monday and covers Monday to
//! Sunday before it; a monthly one at 07:00 on the 1st and covers the month
//! before. Wall-clock time in the configured zone, so a DST change moves
//! nothing (07:00 never falls in a gap in any zone that shifts at night; if it
//! did, the first minute after the gap counts). On a Monday the 1st both are due.

use chrono::{Datelike, Days, Months, NaiveDate, NaiveTime};
use chrono_tz::Tz;

use super::ReportKind;
use crate::buckets::{day_start, first_of_month, local, local_ms, monday_of};

/// The hour reports go out.
pub const SEND_AT: NaiveTime = match NaiveTime::from_hms_opt(7, 0, 0) {
    Some(t) => t,
    None => NaiveTime::MIN,
};

/// A missed report found at a first start (no report state yet) still goes out
/// when it is due less than this long ago; older ones are only marked as done.
pub const FIRST_START_GRACE_MS: i64 = 24 * 3600 * 1000;

/// The day a report due on `date` is sent: Monday, or the 1st.
fn is_send_day(kind: ReportKind, date: NaiveDate) -> bool {
    match kind {
        ReportKind::Weekly => date.weekday() == chrono::Weekday::Mon,
        ReportKind::Monthly => date.day() == 1,
    }
}

/// The latest instant at or before `now_ms` when a `kind` report was due.
pub fn last_due(kind: ReportKind, tz: Tz, now_ms: i64) -> i64 {
    let today = local(tz, now_ms).date_naive();
    let mut day = match kind {
        ReportKind::Weekly => monday_of(today),
        ReportKind::Monthly => first_of_month(today),
    };
    let at = |d: NaiveDate| local_ms(tz, d.and_time(SEND_AT));
    if at(day) > now_ms {
        day = previous_send_day(kind, day);
    }
    at(day)
}

/// The next instant after `now_ms` when a `kind` report is due.
pub fn next_due(kind: ReportKind, tz: Tz, now_ms: i64) -> i64 {
    let last = local(tz, last_due(kind, tz, now_ms)).date_naive();
    let next = match kind {
        ReportKind::Weekly => last.checked_add_days(Days::new(7)),
        ReportKind::Monthly => last.checked_add_months(Months::new(1)),
    }
    .unwrap_or(last);
    local_ms(tz, next.and_time(SEND_AT))
}

fn previous_send_day(kind: ReportKind, day: NaiveDate) -> NaiveDate {
    let d = match kind {
        ReportKind::Weekly => day.checked_sub_days(Days::new(7)),
        ReportKind::Monthly => day.checked_sub_months(Months::new(1)),
    };
    d.filter(|d| is_send_day(kind, *d)).unwrap_or(day)
}

/// The period `[start, end)` (local midnights, as Unix ms) and its first day,
/// of the report due at `due_ms`.
pub fn period(kind: ReportKind, tz: Tz, due_ms: i64) -> (i64, i64, NaiveDate) {
    let due_day = local(tz, due_ms).date_naive();
    let first = previous_send_day(kind, due_day);
    (day_start(tz, first), day_start(tz, due_day), first)
}

/// The period before the one starting on `first` (the comparison).
pub fn period_before(kind: ReportKind, tz: Tz, first: NaiveDate) -> (i64, i64, NaiveDate) {
    let before = previous_send_day(kind, first);
    (day_start(tz, before), day_start(tz, first), before)
}

/// Whether to send the report due at `due_ms`, given the due instant of the
/// last one sent (`None`: reports were never sent from this store).
pub fn should_send(last_sent_due: Option<i64>, due_ms: i64, now_ms: i64) -> bool {
    match last_sent_due {
        Some(sent) => sent < due_ms,
        None => now_ms - due_ms < FIRST_START_GRACE_MS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDateTime;

    const VIENNA: Tz = chrono_tz::Europe::Vienna;

    fn at(s: &str) -> i64 {
        let t = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("test time");
        local_ms(VIENNA, t)
    }

    fn show(ms: i64) -> String {
        local(VIENNA, ms).format("%Y-%m-%d %H:%M %:z").to_string()
    }

    #[test]
    fn weekly_reports_are_due_monday_at_seven_and_cover_the_week_before() {
        let due = last_due(ReportKind::Weekly, VIENNA, at("2026-12-02 10:00"));
        assert_eq!(show(due), "2026-11-30 07:00 +01:00");
        assert_eq!(
            show(last_due(ReportKind::Weekly, VIENNA, at("2026-11-30 06:59"))),
            "2026-11-23 07:00 +01:00"
        );
        assert_eq!(
            show(next_due(ReportKind::Weekly, VIENNA, at("2026-11-30 07:00"))),
            "2026-12-07 07:00 +01:00"
        );
        let (start, end, first) = period(ReportKind::Weekly, VIENNA, due);
        assert_eq!(
            (show(start), show(end)),
            (
                "2026-11-23 00:00 +01:00".into(),
                "2026-11-30 00:00 +01:00".into()
            )
        );
        assert_eq!(first.to_string(), "2026-11-23");
        let (b0, b1, _) = period_before(ReportKind::Weekly, VIENNA, first);
        assert_eq!(
            (show(b0), show(b1)),
            (
                "2026-11-16 00:00 +01:00".into(),
                "2026-11-23 00:00 +01:00".into()
            )
        );
    }

    #[test]
    fn the_week_of_the_dst_change_has_its_25_hours_and_seven_stays_seven() {
        // Clocks went back on Sunday 2026-10-25: the week before Monday 26 October.
        let due = last_due(ReportKind::Weekly, VIENNA, at("2026-10-26 08:00"));
        assert_eq!(show(due), "2026-10-26 07:00 +01:00");
        let (start, end, _) = period(ReportKind::Weekly, VIENNA, due);
        assert_eq!(end - start, (7 * 24 + 1) * 3_600_000);
        // Spring forward on Sunday 2027-03-28: the next Monday is still 07:00 local.
        let due = last_due(ReportKind::Weekly, VIENNA, at("2027-03-29 07:30"));
        assert_eq!(show(due), "2027-03-29 07:00 +02:00");
    }

    #[test]
    fn monthly_reports_are_due_on_the_first_and_both_on_a_monday_the_first() {
        let due = last_due(ReportKind::Monthly, VIENNA, at("2027-03-01 07:00"));
        assert_eq!(show(due), "2027-03-01 07:00 +01:00");
        let (start, end, first) = period(ReportKind::Monthly, VIENNA, due);
        assert_eq!(
            (show(start), show(end)),
            (
                "2027-02-01 00:00 +01:00".into(),
                "2027-03-01 00:00 +01:00".into()
            )
        );
        assert_eq!(
            period_before(ReportKind::Monthly, VIENNA, first)
                .2
                .to_string(),
            "2027-01-01"
        );
        assert_eq!(
            show(last_due(
                ReportKind::Monthly,
                VIENNA,
                at("2027-03-01 06:00")
            )),
            "2027-02-01 07:00 +01:00"
        );
        // 1 March 2027 is a Monday: the weekly report is due at the same minute.
        assert_eq!(
            last_due(ReportKind::Weekly, VIENNA, at("2027-03-01 07:00")),
            due
        );
        assert_eq!(
            show(next_due(
                ReportKind::Monthly,
                VIENNA,
                at("2027-01-31 23:00")
            )),
            "2027-02-01 07:00 +01:00"
        );
    }

    #[test]
    fn a_missed_report_goes_out_once_and_a_first_start_sends_only_a_fresh_one() {
        let due = at("2026-11-30 07:00");
        // Off over Monday morning, back on Wednesday: sent once, then never again.
        assert!(should_send(
            Some(at("2026-11-23 07:00")),
            due,
            at("2026-12-02 12:00")
        ));
        assert!(!should_send(Some(due), due, at("2026-12-02 12:05")));
        // Reports switched on at 09:00 on Monday: this week's goes out; on Thursday not.
        assert!(should_send(None, due, at("2026-11-30 09:00")));
        assert!(!should_send(None, due, at("2026-12-03 09:00")));
    }
}
