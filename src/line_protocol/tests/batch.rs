//! Whole bodies: comments, blank lines, CRLF, bad lines among good ones, bad UTF-8.

use super::*;

fn collect(input: &[u8]) -> Vec<Result<Point<'_>, LineError>> {
    parse_lines(input).collect()
}

#[test]
fn batch_skips_blank_and_comment_lines_and_handles_crlf() {
    let input = b"# header\r\n\r\nw v=1\r\n   \n  # indented comment\nw v=2 5\r\nw v=3";
    let got: Vec<_> = collect(input).into_iter().map(Result::unwrap).collect();
    assert_eq!(
        got,
        vec![
            point("w", &[], &[("v", Float(1.0))], None),
            point("w", &[], &[("v", Float(2.0))], Some(5)),
            point("w", &[], &[("v", Float(3.0))], None),
        ]
    );
    assert!(collect(b"").is_empty());
    assert!(collect(b"\n\n\r\n").is_empty());
}

#[test]
fn batch_with_bad_lines_in_the_middle_keeps_the_rest_with_line_numbers() {
    let input = b"w v=1\nw v=abc\n\nw v=3\nw,t v=4\nw v=5\n";
    let got = collect(input);
    assert_eq!(got.len(), 5);
    assert_eq!(got[0], Ok(point("w", &[], &[("v", Float(1.0))], None)));
    let e = got[1].as_ref().unwrap_err();
    assert_eq!((e.line_no, e.snippet.as_str()), (2, "w v=abc"));
    assert_eq!(e.error, ParseError::InvalidFieldValue { column: 5 });
    assert_eq!(got[2], Ok(point("w", &[], &[("v", Float(3.0))], None)));
    assert_eq!(got[3].as_ref().unwrap_err().line_no, 5);
    assert_eq!(got[4], Ok(point("w", &[], &[("v", Float(5.0))], None)));
}

#[test]
fn line_error_reads_like_influxdb() {
    let got = collect(b"a v=1\nb v=2\nwater,meter=main liters=abc\n");
    assert_eq!(
        got[2].as_ref().unwrap_err().to_string(),
        "unable to parse 'water,meter=main liters=abc' (line 3): invalid field value at \
         column 25: expected a number, string or boolean"
    );
}

#[test]
fn invalid_utf8_fails_only_its_own_line() {
    let got = collect(b"w v=1\nw\xff v=2\nw v=3\n");
    assert_eq!(got[0], Ok(point("w", &[], &[("v", Float(1.0))], None)));
    let e = got[1].as_ref().unwrap_err();
    assert_eq!(e.line_no, 2);
    assert_eq!(e.error, ParseError::InvalidUtf8 { column: 2 });
    assert_eq!(e.snippet, "w\u{fffd} v=2");
    assert_eq!(got[2], Ok(point("w", &[], &[("v", Float(3.0))], None)));
}

#[test]
fn long_bad_lines_are_quoted_truncated() {
    let line = format!("w v={}", "x".repeat(300));
    let got = collect(line.as_bytes());
    let snippet = &got[0].as_ref().unwrap_err().snippet;
    assert_eq!(snippet.chars().count(), SNIPPET_CHARS + 1);
    assert!(snippet.starts_with("w v=xxx") && snippet.ends_with('…'));
}
