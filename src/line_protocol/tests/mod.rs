//! Tests of the line protocol module, through small `check` helpers.

mod batch;
mod fuzz;
mod parse;
mod precision_and_write;

use std::borrow::Cow;

use super::*;
use FieldValue::{Boolean, Float, Integer, String as Str, UInteger};

type Tags<'a> = &'a [(&'a str, &'a str)];
type Fields<'a> = &'a [(&'a str, FieldValue<'a>)];

fn point<'a>(m: &'a str, tags: Tags<'a>, fields: Fields<'a>, ts: Option<i64>) -> Point<'a> {
    Point {
        measurement: Cow::Borrowed(m),
        tags: tags
            .iter()
            .map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(*v)))
            .collect(),
        fields: fields
            .iter()
            .map(|(k, v)| (Cow::Borrowed(*k), v.clone()))
            .collect(),
        timestamp: ts,
    }
}

/// Parses `input` and compares with the point built from the other arguments.
fn check(input: &str, m: &str, tags: Tags<'_>, fields: Fields<'_>, ts: Option<i64>) {
    assert_eq!(
        parse_line(input),
        Ok(point(m, tags, fields, ts)),
        "input: {input:?}"
    );
}

/// Parses `input` and compares the error's text (which includes its column).
fn check_err(input: &str, expected: &str) {
    match parse_line(input) {
        Ok(p) => panic!("{input:?} parsed as {p:?}, expected error {expected:?}"),
        Err(e) => assert_eq!(e.to_string(), expected, "input: {input:?}"),
    }
}

fn str_value(s: &str) -> FieldValue<'_> {
    Str(Cow::Borrowed(s))
}
