//! `watermeter import` of what the real influx CLI exports.

use std::process::Command;

use crate::servers::{influx_url, influxd, require, Server};
use crate::util::{config_text, post, run_cli, MAIN_METER};

/// 100 points of 1 L and 50 of 2 L, one per second: 150 points, 200 L.
fn fill(influx: &Server) {
    let body: String = (0..150)
        .map(|i| {
            let liters = if i < 100 { 1 } else { 2 };
            format!("water,meter=main liters={liters} {}\n", 1_700_000_000 + i)
        })
        .collect();
    let a = post(&influx_url(influx, "/write?db=water&precision=s"), &body);
    assert_eq!(a.status, 204, "{}", a.body);
}

fn influx_csv(influx: &Server, query: &str, precision: &str) -> String {
    let bin = require("influx", "influxdb-client");
    let out = Command::new(bin)
        .args([
            "-host",
            "127.0.0.1",
            "-port",
            &influx.port.to_string(),
            "-database",
            "water",
        ])
        .args(["-format", "csv", "-precision", precision, "-execute", query])
        .output()
        .expect("run influx");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn import(text: &str, precision: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config.toml");
    let cfg = config_text(&tmp.path().join("data"), "UTC", MAIN_METER);
    std::fs::write(&config, cfg).unwrap();
    let file = tmp.path().join("export.csv");
    std::fs::write(&file, text).unwrap();
    let (code, out, err) = run_cli(&[
        "import",
        "--config",
        config.to_str().unwrap(),
        "--precision",
        precision,
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    out
}

#[test]
fn influx_cli_csv_exports_import_in_every_time_format() {
    let influx = influxd();
    fill(&influx);
    for (query, precision) in [
        ("SELECT * FROM water", "ns"),
        ("SELECT * FROM water", "rfc3339"),
        ("SELECT liters FROM water GROUP BY *", "s"),
    ] {
        let csv = influx_csv(&influx, query, precision);
        assert!(csv.starts_with("name,"), "{csv}");
        let import_precision = if precision == "rfc3339" {
            "ns"
        } else {
            precision
        };
        let out = import(&csv, import_precision);
        assert!(
            out.contains("imported 150 points (200 L); skipped 0"),
            "{query} at {precision}:\n{out}\n{}",
            csv.lines().take(3).collect::<Vec<_>>().join("\n")
        );
    }
}

/// The same file twice is refused (its water would count twice) unless forced; an
/// overlapping file says how many events were already there.
#[test]
fn importing_the_same_file_twice_is_refused_and_overlaps_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config.toml");
    std::fs::write(
        &config,
        config_text(&tmp.path().join("data"), "UTC", MAIN_METER),
    )
    .unwrap();
    let lines = |from: i64, n: i64| -> String {
        (0..n)
            .map(|i| format!("water,meter=main liters=1 {}\n", from + i))
            .collect()
    };
    let first = tmp.path().join("first.lp");
    std::fs::write(&first, lines(1_700_000_000, 100)).unwrap();
    let run = |file: &std::path::Path, force: bool| {
        let mut args = vec![
            "import",
            "--config",
            config.to_str().unwrap(),
            "--precision",
            "s",
        ];
        if force {
            args.push("--force");
        }
        args.push(file.to_str().unwrap());
        run_cli(&args)
    };
    let (code, out, err) = run(&first, false);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("imported 100 points (100 L)"), "{out}");
    assert!(!out.contains("note:"), "{out}");

    let (code, out, err) = run(&first, false);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("was already imported on"), "{err}");
    assert!(
        err.contains("100 points, 100 L") && err.contains("--force"),
        "{err}"
    );

    // A second export that overlaps the first by 40 seconds.
    let second = tmp.path().join("second.lp");
    std::fs::write(&second, lines(1_700_000_060, 100)).unwrap();
    let (code, out, err) = run(&second, false);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("meter main already had 40 events in the time span"),
        "{out}"
    );

    let (code, out, err) = run(&first, true);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("imported 100 points"), "{out}");
}
