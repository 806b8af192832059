//! The one-line parser: a byte cursor over a `&str` that returns a [`Point`] borrowing
//! from the line, or the first error with its column. No regex, no recursion, and no
//! allocation beyond the tag and field vectors unless a name or string has escapes.

use std::borrow::Cow;

use super::error::ParseError;
use super::{FieldValue, Point};

/// Parses one line (without its `\n`). Leading and trailing whitespace is ignored.
pub fn parse_line(line: &str) -> Result<Point<'_>, ParseError> {
    let trimmed = line.trim_end_matches([' ', '\t', '\r']);
    let start = trimmed.len() - trimmed.trim_start_matches([' ', '\t']).len();
    let mut cursor = Cursor {
        s: trimmed,
        pos: start,
    };
    cursor
        .point()
        .map_err(|e| e.offset_to_column(line.as_bytes()))
}

/// Characters that `\` escapes in a measurement.
fn measurement_escapable(b: u8) -> bool {
    b == b',' || b == b' '
}

/// Characters that `\` escapes in tag keys, tag values and field keys.
fn key_escapable(b: u8) -> bool {
    b == b',' || b == b'=' || b == b' '
}

struct Cursor<'a> {
    /// The line without trailing whitespace; every delimiter is ASCII, so every
    /// position the cursor stops at is a char boundary.
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    fn point(&mut self) -> Result<Point<'a>, ParseError> {
        let measurement = self.measurement()?;
        let mut tags = Vec::new();
        while self.peek() == Some(b',') {
            self.pos += 1;
            tags.push(self.tag()?);
        }
        self.skip_spaces();
        if self.peek().is_none() {
            return Err(ParseError::MissingFields { column: self.pos });
        }
        let mut fields = Vec::with_capacity(1);
        loop {
            fields.push(self.field()?);
            if self.peek() != Some(b',') {
                break;
            }
            self.pos += 1;
        }
        self.skip_spaces();
        let timestamp = match self.peek() {
            None => None,
            Some(_) => Some(self.timestamp()?),
        };
        Ok(Point {
            measurement,
            tags,
            fields,
            timestamp,
        })
    }

    fn measurement(&mut self) -> Result<Cow<'a, str>, ParseError> {
        let column = self.pos;
        if self.peek() == Some(b'#') {
            return Err(ParseError::MeasurementStartsWithHash { column });
        }
        let name = self.escaped(measurement_escapable, measurement_escapable);
        if name.is_empty() {
            return Err(ParseError::MissingMeasurement { column });
        }
        Ok(name)
    }

    fn tag(&mut self) -> Result<(Cow<'a, str>, Cow<'a, str>), ParseError> {
        let key = self.escaped(key_escapable, key_escapable);
        if key.is_empty() {
            return Err(ParseError::MissingTagKey { column: self.pos });
        }
        if self.peek() != Some(b'=') {
            return Err(ParseError::MissingTagEquals { column: self.pos });
        }
        self.pos += 1;
        let value = self.escaped(key_escapable, key_escapable);
        if value.is_empty() {
            return Err(ParseError::MissingTagValue { column: self.pos });
        }
        if self.peek() == Some(b'=') {
            return Err(ParseError::InvalidTagValue { column: self.pos });
        }
        Ok((key, value))
    }

    fn field(&mut self) -> Result<(Cow<'a, str>, FieldValue<'a>), ParseError> {
        let key = self.escaped(key_escapable, key_escapable);
        if key.is_empty() {
            return Err(ParseError::MissingFieldKey { column: self.pos });
        }
        if self.peek() != Some(b'=') {
            return Err(ParseError::MissingFieldEquals { column: self.pos });
        }
        self.pos += 1;
        let value = match self.peek() {
            Some(b'"') => self.string()?,
            Some(b't' | b'T' | b'f' | b'F') => self.boolean()?,
            Some(b'-' | b'.' | b'0'..=b'9') => self.number()?,
            _ => return Err(ParseError::InvalidFieldValue { column: self.pos }),
        };
        Ok((key, value))
    }

    /// Takes text up to the next unescaped delimiter. A `\` before an escapable
    /// character escapes it; before anything else it is a literal backslash.
    /// Generic rather than `fn` pointers so the per-byte tests inline (the callgrind
    /// profile showed an indirect call per byte; docs/performance.md, "Profile").
    fn escaped(
        &mut self,
        is_delimiter: impl Fn(u8) -> bool,
        escapable: impl Fn(u8) -> bool + Copy,
    ) -> Cow<'a, str> {
        let bytes = self.s.as_bytes();
        let start = self.pos;
        let mut i = start;
        let mut has_escapes = false;
        while let Some(&b) = bytes.get(i) {
            if b == b'\\' {
                if bytes.get(i + 1).is_some_and(|&next| escapable(next)) {
                    has_escapes = true;
                    i += 2;
                    continue;
                }
            } else if is_delimiter(b) {
                break;
            }
            i += 1;
        }
        self.pos = i;
        let raw = &self.s[start..i];
        if has_escapes {
            Cow::Owned(unescape(raw, |c| c.is_ascii() && escapable(c as u8)))
        } else {
            Cow::Borrowed(raw)
        }
    }

    fn string(&mut self) -> Result<FieldValue<'a>, ParseError> {
        let bytes = self.s.as_bytes();
        let open = self.pos;
        let mut i = open + 1;
        let mut has_escapes = false;
        loop {
            match bytes.get(i) {
                None => return Err(ParseError::UnterminatedString { column: open }),
                Some(b'"') => break,
                Some(b'\\') if matches!(bytes.get(i + 1), Some(b'"' | b'\\')) => {
                    has_escapes = true;
                    i += 2;
                }
                Some(_) => i += 1,
            }
        }
        let raw = &self.s[open + 1..i];
        self.pos = i + 1;
        if !matches!(self.peek(), None | Some(b',' | b' ')) {
            return Err(ParseError::ExpectedFieldSeparator { column: self.pos });
        }
        Ok(FieldValue::String(if has_escapes {
            Cow::Owned(unescape(raw, |c| c == '"' || c == '\\'))
        } else {
            Cow::Borrowed(raw)
        }))
    }

    fn boolean(&mut self) -> Result<FieldValue<'a>, ParseError> {
        let bytes = self.s.as_bytes();
        let start = self.pos;
        let len = bytes[start..]
            .iter()
            .position(|&b| b == b',' || b == b' ')
            .unwrap_or(bytes.len() - start);
        let value = match &bytes[start..start + len] {
            b"t" | b"T" | b"true" | b"True" | b"TRUE" => true,
            b"f" | b"F" | b"false" | b"False" | b"FALSE" => false,
            _ => return Err(ParseError::InvalidFieldValue { column: start }),
        };
        self.pos = start + len;
        Ok(FieldValue::Boolean(value))
    }

    /// `-?digits[.digits][e[+-]digits]` is a float; `-?digits i` an integer;
    /// `digits u` an unsigned integer.
    fn number(&mut self) -> Result<FieldValue<'a>, ParseError> {
        let bytes = self.s.as_bytes();
        let start = self.pos;
        let negative = bytes[start] == b'-';
        let int_start = start + usize::from(negative);
        let int_end = skip_digits(bytes, int_start);
        let mut end = int_end;
        let mut digit_count = int_end - int_start;
        let mut is_float = false;
        if bytes.get(end) == Some(&b'.') {
            is_float = true;
            let frac_end = skip_digits(bytes, end + 1);
            digit_count += frac_end - (end + 1);
            end = frac_end;
        }
        if digit_count == 0 {
            return Err(ParseError::InvalidNumber { column: start });
        }
        if matches!(bytes.get(end), Some(b'e' | b'E')) {
            is_float = true;
            end += 1;
            if matches!(bytes.get(end), Some(b'+' | b'-')) {
                end += 1;
            }
            let exp_end = skip_digits(bytes, end);
            if exp_end == end {
                return Err(ParseError::InvalidNumber { column: end });
            }
            end = exp_end;
        }
        let digits = &bytes[int_start..int_end];
        let value = match bytes.get(end) {
            Some(b'i') if !is_float => {
                end += 1;
                let value = parse_i64(digits, negative)
                    .ok_or(ParseError::IntegerOutOfRange { column: start })?;
                FieldValue::Integer(value)
            }
            Some(b'u') if !is_float && !negative => {
                end += 1;
                let value =
                    parse_u64(digits).ok_or(ParseError::UnsignedOutOfRange { column: start })?;
                FieldValue::UInteger(value)
            }
            _ => FieldValue::Float(parse_f64(
                &self.s[start..end],
                digits,
                negative,
                is_float,
                start,
            )?),
        };
        if !matches!(bytes.get(end), None | Some(b',' | b' ')) {
            return Err(ParseError::InvalidNumber { column: end });
        }
        self.pos = end;
        Ok(value)
    }

    fn timestamp(&mut self) -> Result<i64, ParseError> {
        let bytes = self.s.as_bytes();
        let start = self.pos;
        let negative = bytes[start] == b'-';
        let digits_start = start + usize::from(negative);
        let end = skip_digits(bytes, digits_start);
        if end == digits_start {
            return Err(ParseError::InvalidTimestamp {
                column: digits_start,
            });
        }
        match bytes.get(end) {
            None => {}
            Some(b' ') => {
                self.pos = end;
                self.skip_spaces();
                // Trailing spaces were trimmed, so something else follows.
                return Err(ParseError::TrailingCharacters { column: self.pos });
            }
            Some(_) => return Err(ParseError::InvalidTimestamp { column: end }),
        }
        self.pos = end;
        parse_i64(&bytes[digits_start..end], negative)
            .ok_or(ParseError::TimestampOutOfRange { column: start })
    }
}

fn skip_digits(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

/// ASCII digits → u64, `None` on overflow.
fn parse_u64(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// ASCII digits (and a sign) → i64, `None` on overflow; handles `i64::MIN`.
fn parse_i64(digits: &[u8], negative: bool) -> Option<i64> {
    let magnitude = parse_u64(digits)?;
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Parses already validated float syntax; plain integers of up to 15 digits take an
/// exact fast path (they fit an f64 mantissa), which is the common `liters=1` case.
fn parse_f64(
    text: &str,
    int_digits: &[u8],
    negative: bool,
    is_float: bool,
    column: usize,
) -> Result<f64, ParseError> {
    if !is_float && int_digits.len() <= 15 {
        let magnitude = parse_u64(int_digits).unwrap_or(0) as f64;
        return Ok(if negative { -magnitude } else { magnitude });
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(ParseError::FloatOutOfRange { column }),
        Err(_) => Err(ParseError::InvalidNumber { column }),
    }
}

/// Replaces `\c` by `c` for every `c` that `escapable` accepts; other backslashes stay.
fn unescape(raw: &str, escapable: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(&next) = chars.peek() {
                if escapable(next) {
                    out.push(next);
                    chars.next();
                    continue;
                }
            }
        }
        out.push(c);
    }
    out
}
