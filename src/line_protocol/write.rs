//! The writer: one point → one line of line protocol, escaped so that
//! [`parse_line`](super::parse_line) reads back the same names and values.
//!
//! What line protocol cannot carry, and what this writer does about it:
//! - A newline or carriage return in any text would end the line (and could forge a
//!   line): it is written as a space.
//! - An empty tag value is written by no client (InfluxDB drops such tags): the tag is
//!   skipped. A field with an empty key, or a NaN/infinite float, is skipped too; if no
//!   field is left, nothing is written.
//! - A name ending in a backslash, or a measurement starting with `#`, does not read
//!   back the same (InfluxDB 1.x has the same limits); watermeter's own names
//!   (`water`, meter ids `[a-z0-9_-]+`) never do that.

use std::fmt::Write as _;

use super::FieldValue;

/// Appends one line (ending in `\n`) to `out`. `timestamp` is written as given, in
/// whatever precision the reader will be told.
pub fn write_line(
    out: &mut String,
    measurement: &str,
    tags: &[(&str, &str)],
    fields: &[(&str, FieldValue<'_>)],
    timestamp: Option<i64>,
) {
    let start = out.len();
    escape_name(out, measurement, |c| c == ',' || c == ' ');
    for (key, value) in tags.iter().filter(|(k, v)| !k.is_empty() && !v.is_empty()) {
        out.push(',');
        escape_name(out, key, is_key_special);
        out.push('=');
        escape_name(out, value, is_key_special);
    }
    let mut separator = ' ';
    for (key, value) in fields
        .iter()
        .filter(|(k, v)| !k.is_empty() && is_writable(v))
    {
        out.push(separator);
        separator = ',';
        escape_name(out, key, is_key_special);
        out.push('=');
        write_value(out, value);
    }
    if separator == ' ' {
        // No field could be written: a line without fields would not parse.
        out.truncate(start);
        return;
    }
    if let Some(ts) = timestamp {
        // Writing to a String cannot fail.
        let _ = write!(out, " {ts}");
    }
    out.push('\n');
}

fn is_key_special(c: char) -> bool {
    c == ',' || c == '=' || c == ' '
}

fn is_writable(value: &FieldValue<'_>) -> bool {
    match value {
        FieldValue::Float(v) => v.is_finite(),
        _ => true,
    }
}

fn escape_name(out: &mut String, name: &str, special: fn(char) -> bool) {
    for c in name.chars() {
        match c {
            '\n' | '\r' => out.push_str("\\ "),
            c if special(c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
}

fn write_value(out: &mut String, value: &FieldValue<'_>) {
    // Writing to a String cannot fail.
    let _ = match value {
        // `{:?}` is the shortest text that reads back to the same f64, and uses an
        // exponent for very large or small values (`1e300`), which the parser accepts.
        FieldValue::Float(v) => write!(out, "{v:?}"),
        FieldValue::Integer(v) => write!(out, "{v}i"),
        FieldValue::UInteger(v) => write!(out, "{v}u"),
        FieldValue::Boolean(v) => write!(out, "{v}"),
        FieldValue::String(s) => {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' | '\\' => {
                        out.push('\\');
                        out.push(c);
                    }
                    '\n' | '\r' => out.push(' '),
                    c => out.push(c),
                }
            }
            out.push('"');
            Ok(())
        }
    };
}
