//! The command line: check-config, import/export.

use crate::util::{config_text, run_cli, MAIN_METER};

#[test]
fn check_config_reports_each_problem_with_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bad.toml");
    let text = "timezone = \"Europe/Vienna\"\ncolour = \"blue\"\n[[meter]]\nid = \"Main Meter\"\nliters_per_pulse = -1\n";
    std::fs::write(&path, text).unwrap();
    let (code, _, err) = run_cli(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains(":2:") && err.contains("colour"), "{err}");
    assert!(err.contains(":4:") && err.contains("id"), "{err}");
    assert!(
        err.contains(":5:") && err.contains("liters_per_pulse"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn check_config_accepts_the_example_file() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml");
    let (code, out, err) = run_cli(&["check-config", example]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn export_then_import_gives_identical_sums() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("history.lp");
    // A little of everything: fractions, same-timestamp pairs, a DDL header as
    // influx_inspect writes it, a bad line, and points for an unknown meter.
    let mut lp = String::from(
        "# DDL\nCREATE DATABASE water WITH NAME autogen\n# DML\n# CONTEXT-DATABASE:water\n",
    );
    for i in 0..5000i64 {
        lp.push_str(&format!(
            "water,meter=main liters={} {}\n",
            if i % 7 == 0 { "0.5" } else { "1" },
            1_700_000_000_000_000_000 + i * 37_000_000_000
        ));
    }
    lp.push_str("water,meter=main liters=1 1700000000000000000\nwater,meter=main liters=bad\nwater,meter=other liters=1\n");
    std::fs::write(&source, lp).unwrap();
    let cfg = |name: &str| {
        let path = tmp.path().join(format!("{name}.toml"));
        std::fs::write(
            &path,
            config_text(&tmp.path().join(name), "Europe/Vienna", MAIN_METER),
        )
        .unwrap();
        path.to_str().unwrap().to_string()
    };
    let (a, b) = (cfg("a"), cfg("b"));
    let (code, out, err) = run_cli(&["import", "--config", &a, source.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("imported 5001 points") && out.contains("skipped 2"),
        "{out}"
    );
    assert!(
        out.contains("history.lp:5006:") && out.contains("no_meter"),
        "{out}"
    );
    let (code, exported, err) = run_cli(&["export", "--config", &a]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(exported.lines().count(), 5001);
    let again = tmp.path().join("again.lp");
    std::fs::write(&again, &exported).unwrap();
    let (code, out, _) = run_cli(&["import", "--config", &b, again.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        out.contains("imported 5001 points") && out.contains("skipped 0"),
        "{out}"
    );
    let (_, exported_b, _) = run_cli(&["export", "--config", &b]);
    assert_eq!(exported, exported_b);
    let (_, csv, _) = run_cli(&[
        "export",
        "--config",
        &b,
        "--format",
        "csv",
        "--from",
        "2023-11-14T22:13:20Z",
        "--to",
        "2023-11-14T22:14:00Z",
    ]);
    assert_eq!(csv.lines().next(), Some("meter,time,liters"));
    assert_eq!(csv.lines().count(), 1 + 3, "{csv}");
}
