//! Timestamp precisions, and writing lines that read back the same.

use super::*;

#[test]
fn precision_accepts_influxdb_1x_and_2x_names() {
    use Precision::*;
    for (text, expected) in [
        ("", Nanoseconds),
        ("n", Nanoseconds),
        ("ns", Nanoseconds),
        ("u", Microseconds),
        ("us", Microseconds),
        ("µ", Microseconds),
        ("µs", Microseconds),
        ("ms", Milliseconds),
        ("s", Seconds),
        ("m", Minutes),
        ("h", Hours),
    ] {
        assert_eq!(Precision::parse(text), Ok(expected), "{text:?}");
    }
    let err = Precision::parse("sec").unwrap_err();
    assert!(
        err.contains("'sec'") && err.contains("ns") && err.contains("ms"),
        "{err}"
    );
}

#[test]
fn precision_converts_to_unix_ms_rounding_down() {
    use Precision::*;
    for (precision, ts, expected) in [
        (
            Nanoseconds,
            1_672_556_400_123_456_789,
            Some(1_672_556_400_123),
        ),
        (Nanoseconds, -1, Some(-1)),
        (Nanoseconds, -1_000_000, Some(-1)),
        (Nanoseconds, -1_000_001, Some(-2)),
        (Nanoseconds, i64::MIN, Some(i64::MIN.div_euclid(1_000_000))),
        (Microseconds, 1_672_556_400_123_456, Some(1_672_556_400_123)),
        (Microseconds, -1, Some(-1)),
        (Milliseconds, -7, Some(-7)),
        (Milliseconds, i64::MAX, Some(i64::MAX)),
        (Seconds, 1_672_556_400, Some(1_672_556_400_000)),
        (Seconds, -2, Some(-2_000)),
        (Seconds, i64::MAX / 1000 + 1, None),
        (Seconds, i64::MIN, None),
        (Minutes, 2, Some(120_000)),
        (Minutes, i64::MAX / 60_000 + 1, None),
        (Hours, -1, Some(-3_600_000)),
        (Hours, i64::MAX / 3_600_000 + 1, None),
    ] {
        assert_eq!(precision.to_unix_ms(ts), expected, "{precision:?} {ts}");
    }
}

// Writing.

fn write(m: &str, tags: Tags<'_>, fields: Fields<'_>, ts: Option<i64>) -> String {
    let mut out = String::new();
    write_line(&mut out, m, tags, fields, ts);
    out
}

#[test]
fn write_line_escapes_every_position() {
    assert_eq!(
        write(
            "wa ter,x=y",
            &[("k =,", "v =,")],
            &[("f =,", str_value("a\"b\\c")), ("i", Integer(-3))],
            Some(9)
        ),
        "wa\\ ter\\,x=y,k\\ \\=\\,=v\\ \\=\\, f\\ \\=\\,=\"a\\\"b\\\\c\",i=-3i 9\n"
    );
    assert_eq!(
        write(
            "w",
            &[],
            &[("a", Float(1.0)), ("b", UInteger(2)), ("c", Boolean(false))],
            None
        ),
        "w a=1.0,b=2u,c=false\n"
    );
}

#[test]
fn write_line_skips_what_line_protocol_cannot_carry() {
    assert_eq!(
        write(
            "w",
            &[("t", "")],
            &[("a", Float(f64::NAN)), ("", Float(1.0)), ("b", Integer(1))],
            None
        ),
        "w b=1i\n"
    );
    assert_eq!(write("w", &[], &[("a", Float(f64::INFINITY))], Some(1)), "");
    assert_eq!(
        write("w\nx", &[], &[("s", str_value("a\nb"))], None),
        "w\\ x s=\"a b\"\n"
    );
}

#[test]
fn write_then_parse_round_trips_tricky_names_and_values() {
    let tricky = [
        "a", "a b", "a,b", "a=b", r"a\b", r"a\,b", r"a\ b", r"a\=b", "\"q\"", "µ💧", "x\ty", "=",
        ",", " ",
    ];
    let mut out = String::new();
    for name in tricky {
        for value in [
            str_value(name),
            Float(-1.5e-300),
            Float(0.1),
            Integer(i64::MIN),
            UInteger(u64::MAX),
            Boolean(true),
        ] {
            out.clear();
            write_line(
                &mut out,
                name,
                &[(name, name), ("t", name)],
                &[(name, value.clone())],
                Some(-1),
            );
            let line = out.strip_suffix('\n').unwrap();
            check(
                line,
                name,
                &[(name, name), ("t", name)],
                &[(name, value)],
                Some(-1),
            );
        }
    }
}
