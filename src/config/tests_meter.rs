//! Tests for `[[meter]]`, `[meter.gpio]`, `[meter.line_protocol]` and the
//! rules across meters.

use super::tests::{check, ok, METER};
use super::*;

#[test]
fn config_without_meters_is_an_error() {
    check(
        "data_dir = \"/tmp/x\"\n",
        &[(0, "meter", "no meter is configured")],
    );
}

#[test]
fn single_bracket_meter_table_asks_for_double_brackets() {
    check(
        "[meter]\nid = \"main\"\n",
        &[(1, "meter", "each one starting with [[meter]]")],
    );
}

#[test]
fn meter_values_are_read() {
    let text = "[[meter]]\nid = \"main\"\nname = \"House\"\nliters_per_pulse = 0.5\ninitial_reading_m3 = 123.4\nreading_set_at = \"2026-11-26T10:00:00+01:00\"\n";
    let meter = ok(text).meters.remove(0);
    assert_eq!(meter.name, "House");
    assert_eq!(
        (meter.liters_per_pulse, meter.initial_reading_m3),
        (0.5, 123.4)
    );
    assert_eq!(meter.reading_set_at_ms, Some(1_795_683_600_000));
}

#[test]
fn reading_set_at_may_be_a_bare_toml_datetime() {
    let meter = ok("[[meter]]\nid = \"main\"\nreading_set_at = 2026-11-26T09:00:00Z\n")
        .meters
        .remove(0);
    assert_eq!(meter.reading_set_at_ms, Some(1_795_683_600_000));
}

#[test]
fn integer_liters_per_pulse_is_accepted() {
    assert_eq!(
        ok("[[meter]]\nid = \"main\"\nliters_per_pulse = 10\n").meters[0].liters_per_pulse,
        10.0
    );
}

#[test]
fn bad_meter_values_are_each_reported() {
    let text = "[[meter]]\nid = \"Main House\"\nname = \"\"\nliters_per_pulse = 0\ninitial_reading_m3 = -1\nreading_set_at = \"yesterday\"\n";
    check(
        text,
        &[
            (
                2,
                "meter[0].id",
                "use only lowercase letters, digits, `_` and `-`",
            ),
            (3, "meter[0].name", "must not be empty"),
            (4, "meter[0].liters_per_pulse", "must be more than 0"),
            (5, "meter[0].initial_reading_m3", "is negative"),
            (
                6,
                "meter[0].reading_set_at",
                "such as \"2026-11-26T10:00:00+01:00\"",
            ),
        ],
    );
}

#[test]
fn meter_without_id_is_reported_at_its_header() {
    check(
        &format!("{METER}\n[[meter]]\nname = \"Garden\"\n"),
        &[(4, "meter[1].id", "`id` is missing")],
    );
}

#[test]
fn duplicate_meter_ids_are_an_error() {
    check(
        &format!("{METER}[[meter]]\nid = \"main\"\n"),
        &[(3, "meter[1].id", "already the id of meter[0]")],
    );
}

#[test]
fn gpio_block_fills_defaults() {
    let gpio = ok("[[meter]]\nid = \"main\"\n[meter.gpio]\npin = 17\n").meters[0]
        .gpio
        .clone();
    let expected = GpioConfig {
        pin: 17,
        pull: Pull::Up,
        edge: Edge::Falling,
        debounce_ms: 30,
        min_pulse_ms: 20,
        min_gap_ms: 20,
    };
    assert_eq!(gpio, Some(expected));
}

#[test]
fn gpio_block_reads_every_key() {
    let text = "[[meter]]\nid = \"main\"\ngpio = { pin = 4, pull = \"off\", edge = \"rising\", debounce_ms = 0, min_pulse_ms = 50, min_gap_ms = 60 }\n";
    let gpio = ok(text).meters[0].gpio.clone();
    let expected = GpioConfig {
        pin: 4,
        pull: Pull::Off,
        edge: Edge::Rising,
        debounce_ms: 0,
        min_pulse_ms: 50,
        min_gap_ms: 60,
    };
    assert_eq!(gpio, Some(expected));
}

#[test]
fn bad_gpio_values_are_each_reported() {
    let text = format!("{METER}[meter.gpio]\npin = 40\npull = \"sideways\"\nedge = \"both\"\ndebounce_ms = 2000\nbounce = 1\n");
    check(
        &text,
        &[
            (
                4,
                "meter[0].gpio.pin",
                "40 is not a GPIO pin; use a BCM number from 0 to 27",
            ),
            (5, "meter[0].gpio.pull", "use \"up\", \"down\" or \"off\""),
            (6, "meter[0].gpio.edge", "use \"falling\""),
            (7, "meter[0].gpio.debounce_ms", "use 0 to 1000 milliseconds"),
            (8, "meter[0].gpio.bounce", "unknown key"),
        ],
    );
    check(
        &format!("{METER}[meter.gpio]\npull = \"up\"\n"),
        &[(3, "meter[0].gpio.pin", "`pin` is missing")],
    );
}

#[test]
fn two_meters_on_one_pin_are_an_error() {
    let text =
        format!("{METER}gpio = {{ pin = 17 }}\n[[meter]]\nid = \"b\"\ngpio = {{ pin = 17 }}\n");
    check(
        &text,
        &[(4, "meter[1].gpio.pin", "pin 17 is already used by meter[0]")],
    );
}

#[test]
fn line_protocol_block_reads_measurement_tags_and_fields() {
    let text = format!("{METER}[meter.line_protocol]\nmeasurement = \"wasser\"\ntags = {{ house = \"a\", zaehler = \"1\" }}\nfield = \"l\"\n");
    let lp = ok(&text).meters.remove(0).line_protocol;
    assert_eq!(lp.measurement, "wasser");
    let tags: Vec<(&str, &str)> = lp
        .tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(tags, [("house", "a"), ("zaehler", "1")]);
    assert_eq!(lp.field, FieldSelector::Liters(vec!["l".into()]));

    let text = format!("{METER}line_protocol = {{ field = [\"a\", \"b\"] }}\n");
    let lp = ok(&text).meters.remove(0).line_protocol;
    assert_eq!(
        lp.field,
        FieldSelector::Liters(vec!["a".into(), "b".into()])
    );
    assert_eq!(
        lp.tags,
        vec![("meter".to_string(), "main".to_string())],
        "tags default to meter = <id>"
    );

    let text = format!("{METER}line_protocol = {{ counter_field = \"total\" }}\n");
    assert_eq!(
        ok(&text).meters[0].line_protocol.field,
        FieldSelector::Counter("total".into())
    );
}

#[test]
fn field_and_counter_field_together_are_an_error() {
    let text =
        format!("{METER}[meter.line_protocol]\nfield = \"liters\"\ncounter_field = \"total\"\n");
    check(
        &text,
        &[(5, "meter[0].line_protocol.counter_field", "not both")],
    );
}

#[test]
fn bad_line_protocol_values_are_each_reported() {
    let text = format!("{METER}[meter.line_protocol]\nmeasurement = \"\"\ntags = {{ meter = 1 }}\nfield = []\nfeld = 1\n");
    check(
        &text,
        &[
            (4, "meter[0].line_protocol.measurement", "must not be empty"),
            (
                5,
                "meter[0].line_protocol.tags.meter",
                "must be a string in quotes",
            ),
            (
                6,
                "meter[0].line_protocol.field",
                "must name at least one field",
            ),
            (7, "meter[0].line_protocol.feld", "did you mean `field`?"),
        ],
    );
}

#[test]
fn two_meters_taking_the_same_points_are_ambiguous() {
    let text = format!("{METER}line_protocol = {{ tags = {{ meter = \"x\" }} }}\n[[meter]]\nid = \"b\"\nline_protocol = {{ tags = {{ meter = \"x\" }} }}\n");
    check(
        &text,
        &[(
            4,
            "meter[1].line_protocol",
            "would take the same points as meter \"main\"",
        )],
    );
    // Same tags but one counts liters and the other a counter: not ambiguous.
    let text = format!("{METER}line_protocol = {{ tags = {{ meter = \"x\" }} }}\n[[meter]]\nid = \"b\"\nline_protocol = {{ tags = {{ meter = \"x\" }}, counter_field = \"total\" }}\n");
    assert_eq!(ok(&text).meters.len(), 2);
}

#[test]
fn gpio_that_is_not_a_table_shows_the_header_to_write() {
    check(
        &format!("{METER}gpio = 17\n"),
        &[(
            3,
            "meter[0].gpio",
            "must be a table, written [meter.gpio], not a whole number",
        )],
    );
}

#[test]
fn a_reading_field_takes_the_meters_own_reading_in_m3_or_liters() {
    let c = ok(&format!(
        "{METER}max_flow_l_per_min = 40\n[meter.line_protocol]\nmeasurement = \"watermeter\"\nreading_field = \"main/value\"\n[meter.wmbus]\nid = \"33225544\"\n"
    ));
    let m = &c.meters[0];
    assert_eq!(
        m.line_protocol.field,
        FieldSelector::Reading {
            field: "main/value".into(),
            liters_per_unit: 1000.0
        }
    );
    assert!(
        m.line_protocol.tags.is_empty(),
        "camera readers send no tags"
    );
    assert_eq!(m.max_flow_l_per_min, 40.0);
    assert_eq!(m.wmbus_id.as_deref(), Some("33225544"));
    let l = ok(&format!(
        "{METER}[meter.line_protocol]\nreading_field = \"value\"\nreading_unit = \"l\"\ntags = {{ meter = \"main\" }}\n"
    ));
    assert_eq!(
        l.meters[0].line_protocol.field,
        FieldSelector::Reading {
            field: "value".into(),
            liters_per_unit: 1.0
        }
    );
    assert_eq!(l.meters[0].line_protocol.tags.len(), 1);
    assert_eq!(ok(METER).meters[0].max_flow_l_per_min, 100.0);
}

#[test]
fn reading_keys_are_checked() {
    check(
        &format!("{METER}max_flow_l_per_min = 0\n[meter.line_protocol]\nfield = \"liters\"\nreading_field = \"v\"\nreading_unit = \"gallons\"\n"),
        &[
            (3, "meter[0].max_flow_l_per_min", "out of range"),
            (6, "meter[0].line_protocol.reading_field", "set only one of"),
            (7, "meter[0].line_protocol.reading_unit", "use \"m3\""),
        ],
    );
    check(
        &format!("{METER}[meter.line_protocol]\nreading_unit = \"l\"\n"),
        &[(
            4,
            "meter[0].line_protocol.reading_unit",
            "applies only with `reading_field`",
        )],
    );
    check(
        &format!("{METER}[meter.wmbus]\nid = \"1\"\n[[meter]]\nid = \"b\"\nline_protocol = {{ tags = {{ meter = \"b\" }} }}\n[meter.wmbus]\nid = \"1\"\n"),
        &[(5, "meter[1].wmbus.id", "already the id of meter[0]")],
    );
}

#[test]
fn a_meter_may_take_an_mqtt_topic_once_mqtt_is_configured() {
    let text = format!(
        "{METER}[meter.mqtt]\ntopic = \"wmbusmeters/MyTapWater\"\njson_field = \"total_m3\"\nform = \"reading\"\n[mqtt]\nhost = \"b\"\n"
    );
    let m = ok(&text).meters.remove(0).mqtt_in.expect("mqtt in");
    assert_eq!(
        m,
        MqttIn {
            topic: "wmbusmeters/MyTapWater".into(),
            json_field: Some("total_m3".into()),
            form: MqttForm::Reading,
            liters_per_unit: 1000.0
        }
    );
    check(
        &format!("{METER}[meter.mqtt]\ntopic = \"a/#\"\nform = \"total\"\nunit = \"gal\"\n"),
        &[
            (4, "meter[0].mqtt.topic", "not one exact topic"),
            (5, "meter[0].mqtt.form", "use \"reading\""),
            (6, "meter[0].mqtt.unit", "use \"m3\""),
        ],
    );
    check(
        &format!("{METER}[meter.mqtt]\ntopic = \"a/b\"\nform = \"liters\"\n"),
        &[(0, "mqtt", "[mqtt] is missing")],
    );
}

#[test]
fn meter_exchanges_are_read_oldest_first_and_checked() {
    let c = ok(&format!(
        "{METER}[[meter.exchange]]\nat = \"2028-01-01T00:00:00Z\"\nreading_m3 = 1.5\n[[meter.exchange]]\nat = 2027-03-01T10:00:00+01:00\nreading_m3 = 0.012\n"
    ));
    let x = &c.meters[0].exchanges;
    assert_eq!(x.len(), 2);
    assert_eq!((x[0].at_ms, x[0].m3), (1_803_891_600_000, 0.012));
    check(
        &format!("{METER}[[meter.exchange]]\nat = \"soon\"\nreading_m3 = -1\n[[meter.exchange]]\nreading_m3 = 2\n"),
        &[
            (4, "meter[0].exchange[0].at", "RFC 3339"),
            (5, "meter[0].exchange[0].reading_m3", "negative"),
            (6, "meter[0].exchange[1].at", "`at` is missing"),
        ],
    );
}
