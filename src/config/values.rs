//! Parsers for the small value languages inside config strings: durations
//! ("1h30m"), CIDRs, "HH:MM", time zone names, mail addresses, meter ids.
//!
//! Each returns `Err(sentence)` that names the fix; callers add key and line.
//! Only [`system_timezone`] does IO (reads `$TZ` and `/etc`).

use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use chrono::NaiveTime;
use chrono_tz::Tz;

use super::IpNet;
use crate::line_protocol::Precision;

/// `"90s"`, `"15m"`, `"4h"`, `"7d"`, or combinations such as `"1h30m"`.
pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    let fix =
        "write a number with a unit s, m, h or d, such as \"90s\", \"15m\", \"1h30m\" or \"7d\"";
    let bad = || Err(format!("\"{text}\" is not a duration; {fix}"));
    let mut rest = text.trim();
    if rest.is_empty() {
        return bad();
    }
    let mut seconds: u64 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let Ok(number) = rest[..digits].parse::<u64>() else {
            return bad();
        };
        let mut unit_chars = rest[digits..].chars();
        let unit = match unit_chars.next() {
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3600,
            Some('d') => 86_400,
            _ => return bad(),
        };
        let Some(total) = number
            .checked_mul(unit)
            .and_then(|s| s.checked_add(seconds))
        else {
            return bad();
        };
        seconds = total;
        rest = unit_chars.as_str();
    }
    Ok(Duration::from_secs(seconds))
}

/// A duration the way a user writes it, for messages: `"1h30m"`, `"7d"`.
pub(super) fn format_duration(duration: Duration) -> String {
    let mut secs = duration.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// `"192.168.1.0/24"`, `"fd00::/8"`; a bare address is a single host.
pub(super) fn parse_ipnet(text: &str) -> Result<IpNet, String> {
    let (addr_text, prefix_text) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let addr = IpAddr::from_str(addr_text.trim()).map_err(|_| {
        format!("\"{text}\" is not an IP network; write an address or a CIDR such as \"192.168.1.0/24\"")
    })?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix_text {
        None => max,
        Some(p) => match p.trim().parse::<u8>() {
            Ok(p) if p <= max => p,
            _ => {
                return Err(format!(
                    "\"{text}\" has a bad prefix length; use a number from 0 to {max} after the `/`"
                ))
            }
        },
    };
    Ok(IpNet { addr, prefix })
}

/// `"23:00"` → 23:00.
pub(super) fn parse_time_of_day(text: &str) -> Result<NaiveTime, String> {
    let valid_shape = text.len() == 5 && text.as_bytes()[2] == b':';
    match NaiveTime::parse_from_str(text, "%H:%M") {
        Ok(t) if valid_shape => Ok(t),
        _ => Err(format!(
            "\"{text}\" is not a time of day; write it as \"HH:MM\" on a 24-hour clock, such as \"23:00\""
        )),
    }
}

/// An IANA zone name; on error, suggests the real name when the user wrote
/// only the city or the wrong case.
pub(super) fn parse_timezone(text: &str) -> Result<Tz, String> {
    if let Ok(tz) = Tz::from_str(text) {
        return Ok(tz);
    }
    let wanted = text.to_ascii_lowercase();
    let suggestion = chrono_tz::TZ_VARIANTS
        .iter()
        .map(|tz| tz.name())
        .find(|name| {
            let name = name.to_ascii_lowercase();
            name == wanted || name.ends_with(&format!("/{wanted}"))
        });
    let example = suggestion.unwrap_or("Europe/Vienna");
    Err(format!(
        "\"{text}\" is not an IANA time zone name; use a name such as \"{example}\""
    ))
}

/// The machine's zone: `$TZ`, else `/etc/timezone`, else the target of the
/// `/etc/localtime` symlink, else UTC.
pub(super) fn system_timezone() -> Tz {
    let from_env = std::env::var("TZ").ok();
    let from_file = || std::fs::read_to_string("/etc/timezone").ok();
    let from_link = || {
        let target = std::fs::read_link("/etc/localtime").ok()?;
        let target = target.to_string_lossy().into_owned();
        let (_, name) = target.split_once("zoneinfo/")?;
        Some(name.to_string())
    };
    let candidates = [from_env, from_file(), from_link()];
    candidates
        .into_iter()
        .flatten()
        .find_map(|name| Tz::from_str(name.trim().trim_start_matches(':')).ok())
        .unwrap_or(Tz::UTC)
}

/// `ns`, `us`, `ms` or `s`. A local match: the parser's own `Precision::parse`
/// has a different error type.
pub(super) fn parse_precision(text: &str) -> Result<Precision, String> {
    match text {
        "ns" => Ok(Precision::Nanoseconds),
        "us" => Ok(Precision::Microseconds),
        "ms" => Ok(Precision::Milliseconds),
        "s" => Ok(Precision::Seconds),
        _ => Err(format!(
            "\"{text}\" is not a precision; use \"ns\", \"us\", \"ms\" or \"s\""
        )),
    }
}

/// An RFC 3339 time with offset → Unix milliseconds.
pub(super) fn parse_rfc3339_ms(text: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            format!(
                "\"{text}\" is not a date and time with offset; write it as RFC 3339, such as \"2026-11-26T10:00:00+01:00\""
            )
        })
}

/// `[a-z0-9_-]+`: meter ids appear in URLs and line protocol tags.
/// The longest alert or meter name (and meter id), in characters: names become
/// mail subjects and push titles, which must stay below RFC 5322's 998-byte line.
pub const MAX_NAME_CHARS: usize = 100;

pub(super) fn is_valid_meter_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_NAME_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// `user@example.org` or `Name <user@example.org>`: one `@` with text on
/// both sides and no spaces in the address. Not a full RFC 5322 check; the
/// mail server has the last word.
pub(super) fn looks_like_address(text: &str) -> bool {
    let text = text.trim();
    let address = match (text.rfind('<'), text.ends_with('>')) {
        (Some(open), true) => &text[open + 1..text.len() - 1],
        _ => text,
    };
    match address.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !address.contains(char::is_whitespace)
                && !address.contains(['<', '>'])
        }
        None => false,
    }
}

/// `http://…` or `https://…` with a host.
pub(super) fn is_http_url(text: &str) -> bool {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"));
    match rest {
        Some(rest) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !text.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// The candidate closest to `word`: a plausible typo (small edit distance)
/// or a shortened/extended form (`threshold` → `threshold_liters`).
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    let typo = candidates
        .iter()
        .map(|c| (edit_distance(&word, &c.to_lowercase()), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c);
    typo.or_else(|| {
        candidates.iter().copied().find(|c| {
            let c = c.to_lowercase();
            c.len().min(word.len()) >= 4 && (c.starts_with(&word) || word.starts_with(&c))
        })
    })
}

/// Edit distance on chars where swapping two neighbours counts as one edit
/// (optimal string alignment), so `mian` is one typo away from `main`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}
