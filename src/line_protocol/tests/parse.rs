//! One line at a time: every field type, every escape, every error with its column.

use super::*;

#[test]
fn float_values_in_every_form_influxdb_accepts() {
    for (text, value) in [
        ("1", 1.0),
        ("-1", -1.0),
        ("1.0", 1.0),
        ("-1.5e3", -1500.0),
        ("1e-3", 0.001),
        ("1E+3", 1000.0),
        ("1.", 1.0),
        (".5", 0.5),
        ("-.5", -0.5),
        ("0", 0.0),
        ("1234567890123456789012", 1.2345678901234568e21),
        ("1.7976931348623157e308", f64::MAX),
    ] {
        check(
            &format!("m v={text}"),
            "m",
            &[],
            &[("v", Float(value))],
            None,
        );
    }
}

#[test]
fn integer_and_unsigned_values_cover_their_whole_range() {
    check("m v=12i", "m", &[], &[("v", Integer(12))], None);
    check("m v=-12i", "m", &[], &[("v", Integer(-12))], None);
    check(
        "m v=9223372036854775807i",
        "m",
        &[],
        &[("v", Integer(i64::MAX))],
        None,
    );
    check(
        "m v=-9223372036854775808i",
        "m",
        &[],
        &[("v", Integer(i64::MIN))],
        None,
    );
    check("m v=0u", "m", &[], &[("v", UInteger(0))], None);
    check(
        "m v=18446744073709551615u",
        "m",
        &[],
        &[("v", UInteger(u64::MAX))],
        None,
    );
}

#[test]
fn booleans_in_all_ten_spellings() {
    for t in ["t", "T", "true", "True", "TRUE"] {
        check(&format!("m v={t}"), "m", &[], &[("v", Boolean(true))], None);
    }
    for f in ["f", "F", "false", "False", "FALSE"] {
        check(
            &format!("m v={f},w=1"),
            "m",
            &[],
            &[("v", Boolean(false)), ("w", Float(1.0))],
            None,
        );
    }
}

#[test]
fn strings_may_hold_spaces_commas_equals_and_escaped_quotes() {
    check(
        r#"m s="a b,c=d""#,
        "m",
        &[],
        &[("s", str_value("a b,c=d"))],
        None,
    );
    check(r#"m s="""#, "m", &[], &[("s", str_value(""))], None);
    check(
        r#"m s="say \"hi\"""#,
        "m",
        &[],
        &[("s", str_value(r#"say "hi""#))],
        None,
    );
    check(
        r#"m s="C:\\dir\\""#,
        "m",
        &[],
        &[("s", str_value(r"C:\dir\"))],
        None,
    );
    check(
        r#"m s="a\b\n""#,
        "m",
        &[],
        &[("s", str_value(r"a\b\n"))],
        None,
    );
    check(
        r#"m s="µ ≈ 💧",v=1i 5"#,
        "m",
        &[],
        &[("s", str_value("µ ≈ 💧")), ("v", Integer(1))],
        Some(5),
    );
}

#[test]
fn several_fields_of_mixed_types_keep_input_order() {
    check(
        r#"m a=1,b=2i,c=3u,d="x",e=t"#,
        "m",
        &[],
        &[
            ("a", Float(1.0)),
            ("b", Integer(2)),
            ("c", UInteger(3)),
            ("d", str_value("x")),
            ("e", Boolean(true)),
        ],
        None,
    );
}

// Escapes.

#[test]
fn measurement_escapes_comma_and_space_only() {
    check(r"my\ m\,x v=1", "my m,x", &[], &[("v", Float(1.0))], None);
    check(
        r"a\=b\\c\d v=1",
        r"a\=b\\c\d",
        &[],
        &[("v", Float(1.0))],
        None,
    );
    check("a=b v=1", "a=b", &[], &[("v", Float(1.0))], None);
}

#[test]
fn tag_keys_and_values_escape_comma_equals_and_space() {
    check(
        r"m,k\ 1\,\=x=v\ 1\,\=y v=1",
        "m",
        &[("k 1,=x", "v 1,=y")],
        &[("v", Float(1.0))],
        None,
    );
    check(
        r"m,k\a=v\b v=1",
        "m",
        &[(r"k\a", r"v\b")],
        &[("v", Float(1.0))],
        None,
    );
}

#[test]
fn field_keys_escape_comma_equals_and_space() {
    check(
        r"m f\ 1\,\=x=1,g\h=2",
        "m",
        &[],
        &[("f 1,=x", Float(1.0)), (r"g\h", Float(2.0))],
        None,
    );
}

#[test]
fn unescaped_text_is_borrowed_and_escaped_text_is_owned() {
    let p = parse_line(r#"m,t=a,u=b\ c f="x",g="y\"z" 1"#).unwrap();
    assert!(matches!(p.measurement, Cow::Borrowed(_)));
    assert!(matches!(p.tags[0].1, Cow::Borrowed(_)));
    assert!(matches!(p.tags[1].1, Cow::Owned(_)));
    assert!(matches!(p.field("f"), Some(Str(Cow::Borrowed(_)))));
    assert!(matches!(p.field("g"), Some(Str(Cow::Owned(_)))));
}

// Layout of a line.

#[test]
fn tags_timestamp_and_whitespace_around_sections() {
    let fields = &[("liters", Float(1.0))];
    check(
        "water,meter=main liters=1",
        "water",
        &[("meter", "main")],
        fields,
        None,
    );
    check(
        "water,meter=main,loc=k liters=1 1672556400123456789",
        "water",
        &[("meter", "main"), ("loc", "k")],
        fields,
        Some(1672556400123456789),
    );
    check("water liters=1 -5", "water", &[], fields, Some(-5));
    check(
        "  \twater   liters=1   7  \t\r",
        "water",
        &[],
        fields,
        Some(7),
    );
    check("water liters=1 ", "water", &[], fields, None);
}

#[test]
fn point_lookup_by_tag_and_field_key() {
    let p = parse_line("w,meter=a,meter=b liters=1,total=5i,liters=2").unwrap();
    assert_eq!(p.tag("meter"), Some("b"));
    assert_eq!(p.tag("nope"), None);
    assert_eq!(p.field("liters"), Some(&Float(2.0)));
    assert_eq!(p.field("total").and_then(FieldValue::as_f64), Some(5.0));
    assert_eq!(p.field("nope"), None);
}

// Errors, each with its column (1-based, in characters).

#[test]
fn every_error_names_its_column() {
    for (input, expected) in [
        ("water,meter=main liters=abc", "invalid field value at column 25: expected a number, string or boolean"),
        (",t=1 v=1", "missing measurement at column 1: a line starts with the measurement name"),
        (" v=1", "missing fields at column 5: expected a space and at least one field key=value after the measurement and tags"),
        ("#m v=1", "invalid measurement at column 1: a measurement cannot start with '#' (such a line is a comment)"),
        ("m", "missing fields at column 2: expected a space and at least one field key=value after the measurement and tags"),
        ("m,t=1", "missing fields at column 6: expected a space and at least one field key=value after the measurement and tags"),
        ("m, v=1", "missing tag key at column 3: expected key=value after ','"),
        ("m,=x v=1", "missing tag key at column 3: expected key=value after ','"),
        ("m,t v=1", "invalid tag at column 4: expected '=' after the tag key"),
        ("m,t= v=1", "missing tag value at column 5: tag values cannot be empty"),
        ("m,t=a=b v=1", "invalid tag value at column 6: expected ',' or a space after the value (write '=' in a value as '\\=')"),
        ("m,t=1, v=1", "missing tag key at column 7: expected key=value after ','"),
        ("m =1", "missing field key at column 3: expected key=value"),
        ("m v=1,", "missing field key at column 7: expected key=value"),
        ("m v", "invalid field at column 4: expected '=' after the field key"),
        ("m v=", "invalid field value at column 5: expected a number, string or boolean"),
        ("m v=,w=1", "invalid field value at column 5: expected a number, string or boolean"),
        ("m v=+1", "invalid field value at column 5: expected a number, string or boolean"),
        ("m v=NaN", "invalid field value at column 5: expected a number, string or boolean"),
        ("m v=tru", "invalid field value at column 5: expected a number, string or boolean"),
        ("m v=-inf", "invalid number at column 5: expected digits with an optional '.' and exponent, or an integer ending in 'i' or 'u', followed by ',' or a space"),
        ("m v=1.5i", "invalid number at column 8: expected digits with an optional '.' and exponent, or an integer ending in 'i' or 'u', followed by ',' or a space"),
        ("m v=-1u", "invalid number at column 7: expected digits with an optional '.' and exponent, or an integer ending in 'i' or 'u', followed by ',' or a space"),
        ("m v=1e", "invalid number at column 7: expected digits with an optional '.' and exponent, or an integer ending in 'i' or 'u', followed by ',' or a space"),
        ("m v=1.2.3", "invalid number at column 8: expected digits with an optional '.' and exponent, or an integer ending in 'i' or 'u', followed by ',' or a space"),
        ("m v=1x", "invalid number at column 6: expected digits with an optional '.' and exponent, or an integer ending in 'i' or 'u', followed by ',' or a space"),
        ("m v=1e400", "number out of range at column 5: floats must be finite 64-bit values"),
        ("m v=9223372036854775808i", "integer out of range at column 5: expected -9223372036854775808i to 9223372036854775807i"),
        ("m v=-9223372036854775809i", "integer out of range at column 5: expected -9223372036854775808i to 9223372036854775807i"),
        ("m v=18446744073709551616u", "unsigned integer out of range at column 5: expected 0u to 18446744073709551615u"),
        ("m v=\"abc", "unterminated string at column 5: expected a closing '\"'"),
        ("m v=\"a\\\"", "unterminated string at column 5: expected a closing '\"'"),
        ("m v=\"a\"b", "invalid field at column 8: expected ',' or a space after the string"),
        ("m v=1 x", "invalid timestamp at column 7: expected an integer (a space ends the fields; write a space in a key as '\\ ')"),
        ("m v=1 w=2", "invalid timestamp at column 7: expected an integer (a space ends the fields; write a space in a key as '\\ ')"),
        ("m v=1 -", "invalid timestamp at column 8: expected an integer (a space ends the fields; write a space in a key as '\\ ')"),
        ("m v=1 12.5", "invalid timestamp at column 9: expected an integer (a space ends the fields; write a space in a key as '\\ ')"),
        ("m v=1 9223372036854775808", "timestamp out of range at column 7: expected a signed 64-bit integer"),
        ("m v=1 1 2", "unexpected text at column 9: expected the end of the line after the timestamp"),
        ("µ v=x", "invalid field value at column 5: expected a number, string or boolean"),
    ] {
        check_err(input, expected);
    }
}

#[test]
fn timestamp_limits_are_the_i64_limits() {
    let f = &[("v", Float(1.0))];
    check("m v=1 9223372036854775807", "m", &[], f, Some(i64::MAX));
    check("m v=1 -9223372036854775808", "m", &[], f, Some(i64::MIN));
}

#[test]
fn error_column_is_accessible_without_parsing_text() {
    assert_eq!(parse_line("m v=1 x").unwrap_err().column(), 7);
}
