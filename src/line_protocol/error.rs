//! Why a line did not parse: [`ParseError`], one variant per mistake, each with the
//! column where it is, so a sender can find and fix it.

/// Why a line did not parse. `column` is 1-based and counts characters (not bytes)
/// from the start of the line as given, leading whitespace included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("missing measurement at column {column}: a line starts with the measurement name")]
    MissingMeasurement { column: usize },
    #[error(
        "invalid measurement at column {column}: a measurement cannot start with '#' \
         (such a line is a comment)"
    )]
    MeasurementStartsWithHash { column: usize },
    #[error("missing tag key at column {column}: expected key=value after ','")]
    MissingTagKey { column: usize },
    #[error("invalid tag at column {column}: expected '=' after the tag key")]
    MissingTagEquals { column: usize },
    #[error("missing tag value at column {column}: tag values cannot be empty")]
    MissingTagValue { column: usize },
    #[error(
        "invalid tag value at column {column}: expected ',' or a space after the value \
         (write '=' in a value as '\\=')"
    )]
    InvalidTagValue { column: usize },
    #[error(
        "missing fields at column {column}: expected a space and at least one field \
         key=value after the measurement and tags"
    )]
    MissingFields { column: usize },
    #[error("missing field key at column {column}: expected key=value")]
    MissingFieldKey { column: usize },
    #[error("invalid field at column {column}: expected '=' after the field key")]
    MissingFieldEquals { column: usize },
    #[error("invalid field value at column {column}: expected a number, string or boolean")]
    InvalidFieldValue { column: usize },
    #[error(
        "invalid number at column {column}: expected digits with an optional '.' and \
         exponent, or an integer ending in 'i' or 'u', followed by ',' or a space"
    )]
    InvalidNumber { column: usize },
    #[error("number out of range at column {column}: floats must be finite 64-bit values")]
    FloatOutOfRange { column: usize },
    #[error(
        "integer out of range at column {column}: expected -9223372036854775808i to \
         9223372036854775807i"
    )]
    IntegerOutOfRange { column: usize },
    #[error(
        "unsigned integer out of range at column {column}: expected 0u to \
         18446744073709551615u"
    )]
    UnsignedOutOfRange { column: usize },
    #[error("unterminated string at column {column}: expected a closing '\"'")]
    UnterminatedString { column: usize },
    #[error("invalid field at column {column}: expected ',' or a space after the string")]
    ExpectedFieldSeparator { column: usize },
    #[error(
        "invalid timestamp at column {column}: expected an integer (a space ends the \
         fields; write a space in a key as '\\ ')"
    )]
    InvalidTimestamp { column: usize },
    #[error("timestamp out of range at column {column}: expected a signed 64-bit integer")]
    TimestampOutOfRange { column: usize },
    #[error(
        "unexpected text at column {column}: expected the end of the line after the timestamp"
    )]
    TrailingCharacters { column: usize },
    #[error("invalid UTF-8 at column {column}: line protocol must be UTF-8")]
    InvalidUtf8 { column: usize },
}

impl ParseError {
    /// 1-based character column where the problem is.
    pub fn column(&self) -> usize {
        let mut copy = *self;
        *column_mut(&mut copy)
    }

    /// While parsing, `column` holds a byte offset (cheap); this turns it into the
    /// documented 1-based character column, only when an error happens.
    pub(super) fn offset_to_column(mut self, line: &[u8]) -> Self {
        let column = column_mut(&mut self);
        *column = char_column(line, *column);
        self
    }
}

fn column_mut(e: &mut ParseError) -> &mut usize {
    use ParseError::*;
    match e {
        MissingMeasurement { column }
        | MeasurementStartsWithHash { column }
        | MissingTagKey { column }
        | MissingTagEquals { column }
        | MissingTagValue { column }
        | InvalidTagValue { column }
        | MissingFields { column }
        | MissingFieldKey { column }
        | MissingFieldEquals { column }
        | InvalidFieldValue { column }
        | InvalidNumber { column }
        | FloatOutOfRange { column }
        | IntegerOutOfRange { column }
        | UnsignedOutOfRange { column }
        | UnterminatedString { column }
        | ExpectedFieldSeparator { column }
        | InvalidTimestamp { column }
        | TimestampOutOfRange { column }
        | TrailingCharacters { column }
        | InvalidUtf8 { column } => column,
    }
}

/// 1-based character column of byte `offset` in `line` (counts UTF-8 lead bytes, so it
/// works at any offset, even inside a character or past the end).
pub(super) fn char_column(line: &[u8], offset: usize) -> usize {
    let prefix = &line[..offset.min(line.len())];
    prefix.iter().filter(|&&b| b & 0xC0 != 0x80).count() + 1
}
