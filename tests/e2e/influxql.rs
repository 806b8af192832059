//! InfluxQL reads as Grafana and Chronograf send them, answered by watermeter and
//! by a real InfluxDB 1.x holding the same points: the answers must agree.

use serde_json::Value;

use crate::servers::{influx_url, influxd};
use crate::util::{get, post, urlencode as encode, App};

/// The series of every statement, each sorted by its tags, numbers to 6 decimals.
/// One series: its tags, its columns and its rows.
type Series = (String, Vec<String>, Vec<Vec<String>>);

fn normalized(body: &str) -> Vec<Vec<Series>> {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results: {body}"))
        .iter()
        .map(|r| {
            assert!(r.get("error").is_none(), "{body}");
            let mut series: Vec<Series> = r["series"]
                .as_array()
                .map(|s| s.as_slice())
                .unwrap_or(&[])
                .iter()
                .map(|s| {
                    let tags = s["tags"].to_string();
                    let columns = s["columns"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| c.as_str().unwrap().to_string())
                        .collect();
                    let values = s["values"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|row| {
                            row.as_array()
                                .unwrap()
                                .iter()
                                .map(|x| match (x.as_f64(), x.as_str()) {
                                    (Some(f), _) => format!("{:.6}", f),
                                    (None, Some(text)) => text.to_string(),
                                    _ => x.to_string(),
                                })
                                .collect()
                        })
                        .collect();
                    (tags, columns, values)
                })
                .collect();
            series.sort_by(|a, b| a.0.cmp(&b.0));
            series
        })
        .collect()
}

#[test]
fn grafana_and_chronograf_reads_answer_as_influxdb_does() {
    let influx = influxd();
    let (app, _tmp) = App::start(
        "UTC",
        "[[meter]]\nid = \"main\"\n[[meter]]\nid = \"garden\"\n",
    );
    // Three hours of 2025-06-01 (UTC 08:00 to 11:00): a shower, a toilet, the garden.
    let t0: i64 = 1_748_764_800; // 2025-06-01T08:00:00Z
    let mut body = String::new();
    for i in 0..120 {
        body.push_str(&format!("water,meter=main liters=1 {}\n", t0 + 300 + i * 7));
    }
    for i in 0..9 {
        body.push_str(&format!(
            "water,meter=main liters=2.5 {}\n",
            t0 + 4_000 + i * 13
        ));
    }
    for i in 0..50 {
        body.push_str(&format!(
            "water,meter=garden liters=3 {}\n",
            t0 + 7_300 + i * 61
        ));
    }
    let a = post(&app.url("/write?db=water&precision=s"), &body);
    assert_eq!(a.status, 204, "{}", a.body);
    let a = post(&influx_url(&influx, "/write?db=water&precision=s"), &body);
    assert_eq!(a.status, 204, "{}", a.body);

    let (from, to) = (t0 * 1000, (t0 + 3 * 3600) * 1000 - 1);
    let range = format!("time >= {from}ms and time <= {to}ms");
    let queries = [
        format!(r#"SELECT sum("liters") FROM "water" WHERE {range} GROUP BY time(1h) fill(null)"#),
        format!(
            r#"SELECT sum("liters") FROM "water" WHERE {range} GROUP BY time(15m), "meter" fill(0)"#
        ),
        format!(
            r#"SELECT count("liters"), max("liters"), mean("liters") FROM "water" WHERE {range} GROUP BY time(30m) fill(none)"#
        ),
        format!(
            r#"SELECT sum("liters") AS "sum_liters" FROM "water"."autogen"."water" WHERE ("meter" = 'main') AND {range} GROUP BY time(1h) fill(null) tz('Europe/Vienna')"#
        ),
        format!(
            r#"SELECT first("liters"), last("liters"), spread("liters"), min("liters") FROM "water" WHERE {range} GROUP BY time(1h), "meter" fill(null)"#
        ),
        format!(
            r#"SELECT cumulative_sum(sum("liters")) FROM "water" WHERE {range} GROUP BY time(30m) fill(0)"#
        ),
        format!(
            r#"SELECT sum("liters") FROM "water" WHERE {range} GROUP BY time(1h) fill(previous) ORDER BY time DESC LIMIT 2"#
        ),
        format!(r#"SELECT sum("liters") FROM "water" WHERE "meter" =~ /gar/ AND {range}"#),
        // Day buckets: whole days come from the rollups, the partial ones from events.
        format!(r#"SELECT sum("liters") FROM "water" WHERE time >= {}ms and time < {}ms GROUP BY time(1d), "meter" fill(0)"#, from - 3 * 86_400_000 + 3_600_000, to + 2 * 86_400_000),
        r#"SELECT sum("liters") FROM "water" WHERE time >= '2025-05-01T00:00:00Z' and time < '2025-07-01T00:00:00Z' GROUP BY time(7d) fill(none)"#.to_string(),
        r#"SHOW MEASUREMENTS WITH MEASUREMENT =~ /(?i)WAT/ LIMIT 100"#.to_string(),
        r#"SHOW FIELD KEYS FROM "water""#.to_string(),
        r#"SHOW TAG KEYS FROM "water""#.to_string(),
        r#"SHOW TAG VALUES FROM "water" WITH KEY = "meter""#.to_string(),
    ];
    for q in &queries {
        let path = format!("/query?db=water&epoch=ms&q={}", encode(q));
        let ours = get(&app.url(&path));
        assert_eq!(ours.status, 200, "{q}: {}", ours.body);
        let theirs = get(&influx_url(&influx, &path));
        assert_eq!(theirs.status, 200, "{q}: {}", theirs.body);
        assert_eq!(
            normalized(&ours.body),
            normalized(&theirs.body),
            "{q}\nwatermeter: {}\nInfluxDB:   {}",
            ours.body,
            theirs.body
        );
    }

    // The Grafana dashboard shipped in docs/: every panel's query, with the time
    // macros substituted as Grafana substitutes them, answers as InfluxDB does.
    let dashboard: Value =
        serde_json::from_str(include_str!("../../docs/grafana/watermeter-dashboard.json")).unwrap();
    let var = dashboard["templating"]["list"][0]["query"]
        .as_str()
        .unwrap();
    let mut panel_queries = vec![var.to_string()];
    for p in dashboard["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            panel_queries.push(
                t["query"]
                    .as_str()
                    .unwrap()
                    .replace("$timeFilter", &range)
                    .replace("$__interval", "5m")
                    .replace("$meter", "main"),
            );
        }
    }
    assert_eq!(panel_queries.len(), 8);
    for q in &panel_queries {
        let path = format!("/query?db=water&epoch=ms&q={}", encode(q));
        let ours = get(&app.url(&path));
        let theirs = get(&influx_url(&influx, &path));
        assert_eq!(ours.status, 200, "{q}: {}", ours.body);
        assert!(
            ours.body.contains("\"values\""),
            "{q}: no data: {}",
            ours.body
        );
        assert_eq!(
            normalized(&ours.body),
            normalized(&theirs.body),
            "{q}\nwatermeter: {}\nInfluxDB:   {}",
            ours.body,
            theirs.body
        );
    }

    // The `influxdb` Python client (Debian's python3-influxdb) reads the same
    // points from both, as a script or a notebook would.
    let script = format!(
        r#"
import json, sys
from influxdb import InfluxDBClient
out = []
for port in sys.argv[1:]:
    c = InfluxDBClient(host="127.0.0.1", port=int(port), database="water")
    r = c.query('SELECT sum("liters") AS total FROM "water" WHERE {range} GROUP BY time(1h), "meter" fill(0)', epoch="ms")
    out.append(sorted((json.dumps(k[1]), p["time"], p["total"]) for k in r.keys() for p in r.get_points(tags=k[1])))
print(json.dumps(out))
"#
    );
    let py = std::process::Command::new("/usr/bin/python3")
        .args([
            "-c",
            &script,
            &app.http.port().to_string(),
            &influx.port.to_string(),
        ])
        .output()
        .expect("run python3 (./test.sh installs python3-influxdb)");
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let both: Vec<Value> = serde_json::from_slice(&py.stdout).unwrap();
    assert!(both[0].as_array().is_some_and(|p| p.len() == 6), "{both:?}");
    assert_eq!(both[0], both[1], "the Python client reads different points");

    // Chronograf: several statements in one POST, times as RFC 3339 without epoch.
    let form = format!(
        "q={}&db=water",
        encode(
            r#"SHOW RETENTION POLICIES ON "water"; SELECT sum("liters") FROM "water" WHERE time >= '2025-06-01T08:00:00Z' AND time < '2025-06-01T09:00:00Z'"#
        )
    );
    let a = post(&app.url("/query"), &form);
    let v: Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(v["results"][0]["series"][0]["values"][0][0], "autogen");
    assert_eq!(v["results"][1]["statement_id"], 1);
    assert_eq!(
        v["results"][1]["series"][0]["values"][0][0],
        "2025-06-01T08:00:00Z"
    );
    assert_eq!(v["results"][1]["series"][0]["values"][0][1], 120.0 + 0.0);

    // What is not understood says so, in InfluxDB's shapes: a statement that does
    // not parse is a 400, one that parses but is not done a statement error.
    let a = get(&app.url(&format!("/query?q={}", encode("FROBNICATE water"))));
    assert_eq!(a.status, 400);
    assert!(a.body.contains("\"error\""), "{}", a.body);
    let a = get(&app.url(&format!("/query?q={}", encode("DROP DATABASE water"))));
    assert_eq!(a.status, 200, "{}", a.body);
    let v: Value = serde_json::from_str(&a.body).unwrap();
    assert!(
        v["results"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("DROP")),
        "{v}"
    );
    let a = get(&app.url(&format!("/query?db=house&q={}", encode("SHOW DATABASES"))));
    assert!(a.body.contains(r#"[["water"],["house"]]"#), "{}", a.body);
}

/// DST days through `/query`, checked against the truth (InfluxDB 1.x gets these
/// wrong; watermeter follows local days): one liter every ten minutes, so every
/// local hour holds 6 L, the fall-back day 25 hours (150 L), the spring-forward
/// day 23 hours (138 L).
#[test]
fn dst_days_in_a_zone_are_25_and_23_hours_long() {
    let (app, _tmp) = App::start("Europe/Vienna", "");
    // 2026-10-24 22:00 UTC is local midnight of the 25th (fall back); 2026-03-28
    // 23:00 UTC local midnight of the 29th (spring forward). 48 hours from each.
    let mut body = String::new();
    for from in [1_792_879_200i64, 1_774_738_800] {
        for k in 0..288 {
            body.push_str(&format!("water,meter=main liters=1 {}\n", from + k * 600));
        }
    }
    assert_eq!(post(&app.url("/write?precision=s"), &body).status, 204);
    let ask = |q: &str| -> Value {
        let a = get(&app.url(&format!("/query?db=water&epoch=ms&q={}", encode(q))));
        assert_eq!(a.status, 200, "{q}: {}", a.body);
        serde_json::from_str(&a.body).unwrap()
    };
    let values = |v: &Value| -> Vec<(i64, f64)> {
        v["results"][0]["series"][0]["values"]
            .as_array()
            .expect("values")
            .iter()
            .map(|r| (r[0].as_i64().unwrap(), r[1].as_f64().unwrap_or(0.0)))
            .collect()
    };
    let days = values(&ask(
        "SELECT sum(\"liters\") FROM \"water\" WHERE time >= '2026-10-24T22:00:00Z' AND time < '2026-10-26T23:00:00Z' GROUP BY time(1d) fill(0) tz('Europe/Vienna')",
    ));
    assert_eq!(
        days,
        vec![(1_792_879_200_000, 150.0), (1_792_969_200_000, 138.0)],
        "the 25th is 25 hours, the 26th from local midnight holds the 23 hours left"
    );
    let spring = values(&ask(
        "SELECT sum(\"liters\") FROM \"water\" WHERE time >= '2026-03-28T23:00:00Z' AND time < '2026-03-29T22:00:00Z' GROUP BY time(1d) fill(0) tz('Europe/Vienna')",
    ));
    assert_eq!(spring, vec![(1_774_738_800_000, 138.0)], "23 hours");
    let hours = values(&ask(
        "SELECT sum(\"liters\") FROM \"water\" WHERE time >= '2026-10-24T22:00:00Z' AND time < '2026-10-25T23:00:00Z' GROUP BY time(1h) fill(0) tz('Europe/Vienna')",
    ));
    assert_eq!(hours.len(), 25, "{hours:?}");
    assert!(hours.iter().all(|(_, l)| *l == 6.0), "{hours:?}");

    // Two days by the hour: the whole UTC day between comes from kept hour sums;
    // three liters more at 12:xx UTC of that day show at once in that hour.
    let two_days = "SELECT sum(\"liters\") FROM \"water\" WHERE time >= '2026-10-24T22:00:00Z' AND time < '2026-10-26T22:00:00Z' GROUP BY time(1h) fill(0) tz('Europe/Vienna')";
    let hours = values(&ask(two_days));
    assert_eq!(hours.len(), 48, "{hours:?}");
    assert!(hours.iter().all(|(_, l)| *l == 6.0), "{hours:?}");
    let noon = 1_792_929_600i64; // 2026-10-25T12:00:00Z
    let more: String = (0..3)
        .map(|k| format!("water,meter=main liters=1 {}\n", noon + 5 + k))
        .collect();
    assert_eq!(post(&app.url("/write?precision=s"), &more).status, 204);
    let hours = values(&ask(two_days));
    let changed: Vec<&(i64, f64)> = hours.iter().filter(|(_, l)| *l != 6.0).collect();
    assert_eq!(changed, vec![&(noon * 1000, 9.0)], "{hours:?}");
}
