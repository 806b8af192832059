//! `[[meter]]` tables with their `[meter.gpio]` and `[meter.line_protocol]`
//! blocks, and the rules across meters (unique ids, pins, point matches).

use super::reader::{Field, Problems, Table};
use super::validate::{int_in, parsed};
use super::values;
use super::{
    Edge, Exchange, FieldSelector, GpioConfig, LineProtocolMatch, MeterConfig, MqttForm, MqttIn,
    Pull,
};

const METER_KEYS: &[&str] = &[
    "id",
    "name",
    "liters_per_pulse",
    "initial_reading_m3",
    "reading_set_at",
    "gpio",
    "line_protocol",
    "max_flow_l_per_min",
    "persons",
    "wmbus",
    "mqtt",
    "exchange",
];
const GPIO_KEYS: &[&str] = &[
    "pin",
    "pull",
    "edge",
    "debounce_ms",
    "min_pulse_ms",
    "min_gap_ms",
];
const LINE_PROTOCOL_KEYS: &[&str] = &[
    "measurement",
    "tags",
    "field",
    "counter_field",
    "reading_field",
    "reading_unit",
];

/// The default physical limit: far above a household pipe (a 3/4" pipe at high
/// pressure delivers some 60 L/min), far below a misread register digit.
pub const DEFAULT_MAX_FLOW_L_PER_MIN: f64 = 100.0;

/// Every meter, best effort even when one has problems (so alerts can still
/// check that the meter they name exists).
pub(super) fn meters(root: &Table<'_, '_>, problems: &mut Problems) -> Vec<MeterConfig> {
    let tables = root.tables(problems, "meter");
    if tables.is_empty() && !root.has("meter") {
        problems.add(
            None,
            "meter",
            "no meter is configured; add a [[meter]] table with at least an `id`, such as id = \"main\"",
        );
    }
    let meters: Vec<MeterConfig> = tables.iter().map(|t| meter(t, problems)).collect();
    check_across(&tables, &meters, problems);
    meters
}

fn meter(t: &Table<'_, '_>, problems: &mut Problems) -> MeterConfig {
    t.check_keys(problems, METER_KEYS);
    let id = match t.string(problems, "id") {
        Some(f) if !values::is_valid_meter_id(f.value) => {
            let message = format!(
                "\"{}\" is not a valid meter id; use only lowercase letters, digits, `_` and `-`, such as \"main\"",
                f.value
            );
            problems.bad(&f, message);
            f.value.to_string()
        }
        Some(f) => f.value.to_string(),
        None => {
            if !t.has("id") {
                t.missing(
                    problems,
                    "id",
                    "give every meter an id such as \"main\" (used in URLs and tags)",
                );
            }
            String::new()
        }
    };
    let name = match t.string(problems, "name") {
        Some(f) if f.value.trim().is_empty() => {
            problems.bad(&f, "must not be empty; write the name the dashboard shows, or leave the key out to use the id");
            id.clone()
        }
        Some(f) if f.value.chars().count() > super::values::MAX_NAME_CHARS => {
            let message = format!(
                "is {} characters long; a meter's name may have at most {} (it is shown on every page and in mails)",
                f.value.chars().count(),
                super::values::MAX_NAME_CHARS
            );
            problems.bad(&f, message);
            id.clone()
        }
        Some(f) => f.value.to_string(),
        None => id.clone(),
    };
    let liters_per_pulse = match t.number(problems, "liters_per_pulse") {
        Some(f) if f.value <= 0.0 => {
            let message = format!("{} must be more than 0; use the liters per pulse printed on the meter, such as 1.0 or 0.5", f.value);
            problems.bad(&f, message);
            1.0
        }
        Some(f) => f.value,
        None => 1.0,
    };
    let initial_reading_m3 = match t.number(problems, "initial_reading_m3") {
        Some(f) if f.value < 0.0 => {
            let message = format!(
                "{} is negative; write what the physical meter shows, in m³",
                f.value
            );
            problems.bad(&f, message);
            0.0
        }
        Some(f) => f.value,
        None => 0.0,
    };
    let reading_set_at_ms = t.datetime_text(problems, "reading_set_at").and_then(|f| {
        values::parse_rfc3339_ms(&f.value)
            .map_err(|message| problems.bad(&f, message))
            .ok()
    });
    let max_flow_l_per_min = match t.number(problems, "max_flow_l_per_min") {
        Some(f) if f.value <= 0.0 || f.value > 100_000.0 => {
            let message = format!("{} is out of range; use the most liters per minute the pipe can deliver, more than 0 (default {DEFAULT_MAX_FLOW_L_PER_MIN})", f.value);
            problems.bad(&f, message);
            DEFAULT_MAX_FLOW_L_PER_MIN
        }
        Some(f) => f.value,
        None => DEFAULT_MAX_FLOW_L_PER_MIN,
    };
    let persons = match t.integer(problems, "persons") {
        Some(f) if !(1..=100).contains(&f.value) => {
            let message = format!(
                "{} is out of range; write how many people live on this meter, 1 to 100",
                f.value
            );
            problems.bad(&f, message);
            None
        }
        Some(f) => u32::try_from(f.value).ok(),
        None => None,
    };
    let wmbus_id = t.table(problems, "wmbus").and_then(|w| {
        w.check_keys(problems, &["id"]);
        match w.string(problems, "id") {
            Some(f) => non_empty(f, problems, "write the meter id wmbusmeters reports, such as \"33225544\""),
            None => {
                if !w.has("id") {
                    w.missing(problems, "id", "write the meter id wmbusmeters reports in \"id\", such as id = \"33225544\"");
                }
                None
            }
        }
    });
    let mqtt_in = t
        .table(problems, "mqtt")
        .and_then(|m| mqtt_in(&m, problems));
    let mut exchanges: Vec<Exchange> = t
        .tables(problems, "exchange")
        .iter()
        .filter_map(|x| {
            x.check_keys(problems, &["at", "reading_m3"]);
            let at = x.datetime_text(problems, "at").and_then(|f| {
                values::parse_rfc3339_ms(&f.value)
                    .map_err(|message| problems.bad(&f, message))
                    .ok()
            });
            let m3 = match x.number(problems, "reading_m3") {
                Some(f) if f.value < 0.0 => {
                    problems.bad(&f, format!("{} is negative; write what the new meter showed when it was fitted, in m³", f.value));
                    None
                }
                Some(f) => Some(f.value),
                None => None,
            };
            for key in ["at", "reading_m3"] {
                if !x.has(key) {
                    x.missing(problems, key, "a meter exchange needs at = \"2027-03-01T10:00:00+01:00\" and reading_m3 = what the new meter showed then");
                }
            }
            Some(Exchange { at_ms: at?, m3: m3? })
        })
        .collect();
    exchanges.sort_by_key(|e| e.at_ms);
    let gpio = t.table(problems, "gpio").map(|g| gpio(&g, problems));
    let line_protocol = match t.table(problems, "line_protocol") {
        Some(lp) => line_protocol(&lp, &id, problems),
        None => LineProtocolMatch::default_for(&id),
    };
    MeterConfig {
        id,
        name,
        liters_per_pulse,
        initial_reading_m3,
        reading_set_at_ms,
        gpio,
        max_flow_l_per_min,
        wmbus_id,
        mqtt_in,
        exchanges,
        line_protocol,
        persons,
    }
}

fn gpio(t: &Table<'_, '_>, problems: &mut Problems) -> GpioConfig {
    t.check_keys(problems, GPIO_KEYS);
    if !t.has("pin") {
        t.missing(
            problems,
            "pin",
            "write the BCM number of the input pin, such as pin = 17",
        );
    }
    let pin = int_in(t, problems, "pin", 0..=27, 0, |n| {
        format!("{n} is not a GPIO pin; use a BCM number from 0 to 27")
    }) as u8;
    let pull = parsed(t, problems, "pull", |s| match s {
        "up" => Ok(Pull::Up),
        "down" => Ok(Pull::Down),
        "off" => Ok(Pull::Off),
        _ => Err(format!(
            "\"{s}\" is not a pull setting; use \"up\", \"down\" or \"off\""
        )),
    });
    let edge = parsed(t, problems, "edge", |s| match s {
        "falling" => Ok(Edge::Falling),
        "rising" => Ok(Edge::Rising),
        _ => Err(format!(
            "\"{s}\" is not an edge; use \"falling\" (contact to ground, pull up) or \"rising\""
        )),
    });
    let ms = |key: &str, default: i64, problems: &mut Problems| {
        int_in(t, problems, key, 0..=1000, default, |n| {
            format!("{n} is out of range; use 0 to 1000 milliseconds")
        }) as u32
    };
    GpioConfig {
        pin,
        pull: pull.unwrap_or(Pull::Up),
        edge: edge.unwrap_or(Edge::Falling),
        debounce_ms: ms("debounce_ms", 30, problems),
        min_pulse_ms: ms("min_pulse_ms", 20, problems),
        min_gap_ms: ms("min_gap_ms", 20, problems),
    }
}

fn line_protocol(t: &Table<'_, '_>, id: &str, problems: &mut Problems) -> LineProtocolMatch {
    t.check_keys(problems, LINE_PROTOCOL_KEYS);
    let mut config = LineProtocolMatch::default_for(id);
    if let Some(f) = t.string(problems, "measurement") {
        if f.value.is_empty() {
            problems.bad(
                &f,
                "must not be empty; write the measurement name the sender uses, such as \"water\"",
            );
        } else {
            config.measurement = f.value.to_string();
        }
    }
    if let Some(tags) = t.table(problems, "tags") {
        config.tags = tags
            .keys()
            .filter_map(|(key, _)| {
                let f = tags.string(problems, key)?;
                non_empty(f, problems, "write the tag value the sender uses")
                    .map(|v| (key.to_string(), v))
            })
            .collect();
        config.tags.sort();
    }
    let field = t.strings(problems, "field");
    let counter = t.string(problems, "counter_field");
    let reading = t.string(problems, "reading_field");
    let unit = t.string(problems, "reading_unit");
    if let Some(list) = &field {
        let names: Vec<String> = list
            .value
            .iter()
            .filter_map(|f| {
                non_empty(
                    f.clone(),
                    problems,
                    "write the field name that carries liters",
                )
            })
            .collect();
        if list.value.is_empty() {
            problems.bad(list, "must name at least one field, such as \"liters\"");
        } else if !names.is_empty() {
            config.field = FieldSelector::Liters(names);
        }
    }
    if let Some(f) = counter {
        if field.is_some() {
            problems.bad(
                &f,
                "set either `field` (liters in each point) or `counter_field` (a cumulative counter), not both; remove one",
            );
        }
        if let Some(name) = non_empty(
            f,
            problems,
            "write the field name of the counter, such as \"total\"",
        ) {
            config.field = FieldSelector::Counter(name);
        }
    }
    let liters_per_unit = match &unit {
        Some(f) if f.value == "m3" => 1000.0,
        Some(f) if f.value == "l" => 1.0,
        Some(f) => {
            problems.bad(f, format!("\"{}\" is not a unit of a meter reading; use \"m3\" (cubic meters, the default) or \"l\" (liters)", f.value));
            1000.0
        }
        None => 1000.0,
    };
    if let (Some(f), None) = (&unit, &reading) {
        problems.bad(f, "applies only with `reading_field`; name the field that carries the meter's reading, or remove reading_unit");
    }
    if let Some(f) = reading {
        if field.is_some() || t.has("counter_field") {
            problems.bad(
                &f,
                "set only one of `field` (liters in each point), `counter_field` (a counter that restarts on reboot) and `reading_field` (the meter's own reading); remove the others",
            );
        }
        if let Some(name) = non_empty(
            f,
            problems,
            "write the field that carries the meter's reading, such as \"value\" or \"main/value\"",
        ) {
            config.field = FieldSelector::Reading {
                field: name,
                liters_per_unit,
            };
            // Camera readers send no tags: without `tags` the measurement alone matches.
            if !t.has("tags") {
                config.tags.clear();
            }
        }
    }
    config
}

/// `[meter.mqtt]`: topic (exact), json_field, form, unit.
fn mqtt_in(t: &Table<'_, '_>, problems: &mut Problems) -> Option<MqttIn> {
    t.check_keys(problems, &["topic", "json_field", "form", "unit"]);
    let topic = match t.string(problems, "topic") {
        Some(f) if f.value.contains(['+', '#']) || f.value.is_empty() => {
            problems.bad(&f, format!("\"{}\" is not one exact topic; write the topic the sender publishes to, without wildcards, such as \"wmbusmeters/MyTapWater\"", f.value));
            None
        }
        Some(f) => Some(f.value.to_string()),
        None => {
            if !t.has("topic") {
                t.missing(problems, "topic", "write the topic the sender publishes to, such as topic = \"wmbusmeters/MyTapWater\"");
            }
            None
        }
    };
    let json_field = t
        .string(problems, "json_field")
        .and_then(|f| non_empty(f, problems, "name the JSON field with the number, such as \"total_m3\", or remove the key for a plain number"));
    let choices = "use \"reading\" (the meter's own register), \"counter\" (a total that restarts when its sender reboots) or \"liters\" (liters since the last message)";
    let form = match t.string(problems, "form") {
        Some(f) => match f.value {
            "reading" => Some(MqttForm::Reading),
            "counter" => Some(MqttForm::Counter),
            "liters" => Some(MqttForm::Liters),
            other => {
                problems.bad(&f, format!("\"{other}\" is not a form; {choices}"));
                None
            }
        },
        None => {
            if !t.has("form") {
                t.missing(problems, "form", choices);
            }
            None
        }
    };
    let liters_per_unit = match t.string(problems, "unit") {
        Some(f) if f.value == "m3" => 1000.0,
        Some(f) if f.value == "l" => 1.0,
        Some(f) => {
            problems.bad(
                &f,
                format!(
                    "\"{}\" is not a unit; use \"m3\" (the default) or \"l\"",
                    f.value
                ),
            );
            1000.0
        }
        None => 1000.0,
    };
    Some(MqttIn {
        topic: topic?,
        json_field,
        form: form?,
        liters_per_unit,
    })
}

fn non_empty(f: Field<&str>, problems: &mut Problems, fix: &str) -> Option<String> {
    if f.value.is_empty() {
        problems.bad(&f, format!("must not be empty; {fix}"));
        None
    } else {
        Some(f.value.to_string())
    }
}

/// Unique ids, unique GPIO pins, and no two meters taking the same points.
fn check_across(tables: &[Table<'_, '_>], meters: &[MeterConfig], problems: &mut Problems) {
    for (j, (t, meter)) in tables.iter().zip(meters).enumerate() {
        for (i, earlier) in meters[..j].iter().enumerate() {
            if !meter.id.is_empty() && meter.id == earlier.id {
                let message = format!(
                    "\"{}\" is already the id of meter[{i}]; give every meter its own id",
                    meter.id
                );
                problems.add(t.span.as_ref(), &t.key_path("id"), message);
                continue;
            }
            if let (Some(a), Some(b)) = (&earlier.gpio, &meter.gpio) {
                if a.pin == b.pin {
                    let message = format!(
                        "pin {} is already used by meter[{i}]; each meter needs its own input pin",
                        b.pin
                    );
                    problems.add(t.span.as_ref(), &t.key_path("gpio.pin"), message);
                }
            }
            let topic = |m: &MeterConfig| m.mqtt_in.as_ref().map(|i| i.topic.clone());
            if topic(meter).is_some() && topic(meter) == topic(earlier) {
                let message = format!(
                    "topic \"{}\" is already the topic of meter[{i}]; one topic feeds one [[meter]]",
                    topic(meter).unwrap_or_default()
                );
                problems.add(t.span.as_ref(), &t.key_path("mqtt.topic"), message);
            }
            if meter.wmbus_id.is_some() && meter.wmbus_id == earlier.wmbus_id {
                let message = format!(
                    "wmbus id \"{}\" is already the id of meter[{i}]; one radio meter feeds one [[meter]]",
                    meter.wmbus_id.as_deref().unwrap_or_default()
                );
                problems.add(t.span.as_ref(), &t.key_path("wmbus.id"), message);
            }
            if takes_same_points(&earlier.line_protocol, &meter.line_protocol) {
                let message = format!(
                    "meter \"{}\" would take the same points as meter \"{}\" (same measurement, tags and \
                     field kind); give one of them other `tags` in its [meter.line_protocol] block",
                    meter.id, earlier.id
                );
                problems.add(t.span.as_ref(), &t.key_path("line_protocol"), message);
            }
        }
    }
}

fn takes_same_points(a: &LineProtocolMatch, b: &LineProtocolMatch) -> bool {
    a.measurement == b.measurement
        && a.tags == b.tags
        && std::mem::discriminant(&a.field) == std::mem::discriminant(&b.field)
}
