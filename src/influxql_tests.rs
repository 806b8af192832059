//! The statements Grafana and Chronograf send, parsed.

use super::*;

fn one(q: &str) -> Statement {
    let mut all = parse_at(q, 1_600_000_000_000);
    assert_eq!(all.len(), 1, "{q}");
    all.remove(0).unwrap_or_else(|e| panic!("{q}: {e}"))
}

fn select(q: &str) -> Select {
    match one(q) {
        Statement::Select(s) => s,
        other => panic!("{q}: {other:?}"),
    }
}

#[test]
fn grafanas_panel_query_is_read_whole() {
    let s = select(
        r#"SELECT sum("liters") FROM "water" WHERE time >= 1596240000000ms and time <= 1596240300000ms GROUP BY time(1h) fill(null) tz('Europe/Vienna')"#,
    );
    assert_eq!(s.fields[0].agg, "sum");
    assert_eq!(s.fields[0].name, "sum");
    assert_eq!(s.measurement, "water");
    assert_eq!(s.interval_ms, Some(3_600_000));
    assert_eq!(s.fill, Fill::Null);
    assert_eq!(s.tz.as_deref(), Some("Europe/Vienna"));
    assert_eq!(
        s.condition,
        Some(Cond::And(
            Box::new(Cond::Time(Op::Ge, 1_596_240_000_000)),
            Box::new(Cond::Time(Op::Le, 1_596_240_300_000))
        ))
    );
}

#[test]
fn chronografs_three_part_names_now_and_aliases_are_read() {
    let s = select(
        r#"SELECT sum("liters") AS "sum_liters" FROM "db"."autogen"."water" WHERE time > now() - 24h GROUP BY time(240000ms) FILL(null)"#,
    );
    assert_eq!(
        (s.measurement.as_str(), s.fields[0].name.as_str()),
        ("water", "sum_liters")
    );
    assert_eq!(s.interval_ms, Some(240_000));
    assert_eq!(
        s.condition,
        Some(Cond::Time(Op::Gt, 1_600_000_000_000 - 86_400_000))
    );
    let s = select(
        r#"SELECT cumulative_sum(sum("liters")), count("liters") FROM "water" WHERE ("meter" = 'main' OR "meter" = 'garden') AND time >= '2020-08-01T00:00:00Z' GROUP BY time(1d), "meter" fill(0) ORDER BY time DESC LIMIT 10"#,
    );
    assert_eq!(s.fields[0].transform.as_deref(), Some("cumulative_sum"));
    assert_eq!(s.fields[1].name, "count");
    assert_eq!(s.group_tags, vec!["meter".to_string()]);
    assert_eq!(
        (s.fill, s.descending, s.limit),
        (Fill::Value(0.0), true, Some(10))
    );
}

#[test]
fn show_statements_and_several_at_once() {
    let all = parse("SHOW DATABASES; SHOW RETENTION POLICIES ON \"water\"; SHOW MEASUREMENTS WITH MEASUREMENT =~ /(?i)wat/ LIMIT 100");
    let all: Vec<Statement> = all.into_iter().map(Result::unwrap).collect();
    assert_eq!(all[0], Statement::ShowDatabases);
    assert_eq!(all[1], Statement::ShowRetentionPolicies);
    assert_eq!(
        all[2],
        Statement::ShowMeasurements {
            pattern: Some("(?i)wat".into()),
            limit: Some(100)
        }
    );
    assert_eq!(
        one("SHOW FIELD KEYS FROM \"water\""),
        Statement::ShowFieldKeys {
            from: Some("water".into())
        }
    );
    assert_eq!(one("SHOW TAG KEYS"), Statement::ShowTagKeys { from: None });
    assert_eq!(
        one("SHOW TAG VALUES FROM \"water\" WITH KEY = \"meter\""),
        Statement::ShowTagValues {
            from: Some("water".into()),
            key: "meter".into()
        }
    );
    // A `;` inside quotes does not split.
    assert_eq!(parse("SELECT sum(\"a;b\") FROM \"w\"").len(), 1);
}

#[test]
fn what_is_not_understood_says_so() {
    let e = parse("FROBNICATE water").remove(0).unwrap_err();
    assert!(e.0.contains("expected SELECT or SHOW"), "{e}");
    assert!(
        matches!(one("DROP DATABASE water"), Statement::Unsupported(m) if m.contains("DROP statements"))
    );
    assert!(matches!(one("SHOW SERIES"), Statement::Unsupported(_)));
    let e = parse("SELECT median(\"liters\") FROM water")
        .remove(0)
        .unwrap_err();
    assert!(e.0.contains("unsupported function median()"), "{e}");
    let e = parse("SELECT \"liters\" FROM water").remove(0).unwrap_err();
    assert!(e.0.contains("aggregates such as sum"), "{e}");
    let e = parse("SELECT * FROM water").remove(0).unwrap_err();
    assert!(e.0.contains("/api/v1/meters/{id}/usage"), "{e}");
    assert!(parse("SELECT sum(\"liters\") FROM water GROUP BY time(0s)")
        .remove(0)
        .is_err());
}

#[test]
fn deep_long_and_many_are_refused_with_the_limit() {
    let refused = |q: &str| match parse_at(q, 0).into_iter().find_map(|s| s.err()) {
        Some(e) => e.0,
        None => panic!("accepted: {}", &q[..q.len().min(80)]),
    };
    let nested = |n: usize| {
        format!(
            "SELECT sum(\"liters\") FROM \"water\" WHERE {}time > now() - 1d{}",
            "(".repeat(n),
            ")".repeat(n)
        )
    };
    assert!(parse_at(&nested(MAX_DEPTH), 0)[0].is_ok());
    assert!(refused(&nested(MAX_DEPTH + 1)).contains("nested too deeply"));
    assert!(refused(&nested(100_000)).contains("nested too deeply"));
    let chain = |n: usize| {
        format!(
            "SELECT sum(\"liters\") FROM \"water\" WHERE time > 0{}",
            " AND \"meter\" = 'main'".repeat(n)
        )
    };
    assert!(parse_at(&chain(MAX_CONDITIONS - 1), 0)[0].is_ok());
    assert!(refused(&chain(MAX_CONDITIONS)).contains("nested too deeply"));
    let many = vec!["SHOW MEASUREMENTS"; MAX_STATEMENTS + 5].join(";");
    assert!(refused(&many).contains("statements"));
    assert!(refused(
        "SELECT sum(\"liters\") FROM \"water\" WHERE time > now() - 9223372036854775807w"
    )
    .contains("invalid duration"));
}
