//! How liters and durations are written, the same on pages and in mails:
//! "0 L", "2.5 L", "1,234 L"; "45 s", "15 min", "1 h 30 min", "2 d 3 h". Pure.

/// Text for HTML (a mail's HTML part): `& < > " '` escaped.
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Liters for people: one decimal below 100 L (without a trailing zero), whole
/// liters with thousands separators from 100 L on.
pub fn liters(l: f64) -> String {
    format!("{} L", liters_number(l))
}

/// [`liters`] without the unit.
pub fn liters_number(l: f64) -> String {
    if l.abs() >= 100.0 {
        thousands(l.round() as i64)
    } else {
        trim(l, 1)
    }
}

/// `v` with at most `digits` decimals and no trailing zeros.
pub fn trim(v: f64, digits: usize) -> String {
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

/// A number for an error message: as written up to a trillion, else in
/// scientific notation (`1.000e308`), never hundreds of digits.
pub fn short_number(v: &f64) -> String {
    if v.is_finite() && v.abs() < 1e12 {
        trim(*v, 3)
    } else {
        format!("{v:.3e}")
    }
}

/// `1234567` as "1,234,567".
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// `45 s`, `15 min`, `1 h`, `1 h 30 min`, `7 d`, `2 d 3 h`.
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// An instant as pages and mails write it: local "2026-11-26 03:00" in `tz`.
pub fn local_time(tz: chrono_tz::Tz, ts_ms: i64) -> String {
    use chrono::TimeZone;
    match tz.timestamp_millis_opt(ts_ms).single() {
        Some(t) => t.format("%Y-%m-%d %H:%M").to_string(),
        None => ts_ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liters_read_the_same_everywhere() {
        for (l, text) in [
            (0.0, "0 L"),
            (2.54, "2.5 L"),
            (12.0, "12 L"),
            (99.96, "100 L"),
            (1234.4, "1,234 L"),
            (1_234_567.0, "1,234,567 L"),
            (-1500.0, "-1,500 L"),
        ] {
            assert_eq!(liters(l), text, "{l}");
        }
    }

    #[test]
    fn durations_say_hours_and_minutes() {
        for (s, text) in [
            (0.0, "0 s"),
            (45.0, "45 s"),
            (900.0, "15 min"),
            (3600.0, "1 h"),
            (5400.0, "1 h 30 min"),
            (7.0 * 86_400.0, "7 d"),
            (2.0 * 86_400.0 + 3.0 * 3600.0, "2 d 3 h"),
        ] {
            assert_eq!(duration(s), text, "{s}");
        }
    }
}
