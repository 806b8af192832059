//! The JSON API's usage buckets in the configured zone, through real HTTP.

use crate::util::{get, get_json, post, App};

/// One liter every 10 minutes from `from` (unix s) for `hours` hours, as a /write body.
fn every_ten_minutes(from: i64, hours: i64) -> String {
    (0..hours * 6)
        .map(|i| format!("water,meter=main liters=1 {}\n", from + i * 600))
        .collect()
}

fn usage(app: &App, query: &str) -> serde_json::Value {
    get_json(&app.url(&format!("/api/v1/meters/main/usage?{query}")))
}

fn liters(v: &serde_json::Value) -> Vec<f64> {
    v["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["liters"].as_f64().unwrap())
        .collect()
}

#[test]
fn vienna_spring_forward_day_has_23_hourly_buckets_that_sum_to_the_day() {
    let (app, _tmp) = App::start("Europe/Vienna", "");
    // 2026-03-28 23:00 UTC is local midnight of the 29th; write 48 hours.
    let body = every_ten_minutes(1_774_738_800, 48);
    assert_eq!(post(&app.url("/write?precision=s"), &body).status, 204);
    let day = "from=2026-03-29T00:00:00%2B01:00&to=2026-03-29T23:59:59%2B02:00";
    let hours = usage(&app, &format!("{day}&step=hour"));
    assert_eq!(hours["buckets"].as_array().unwrap().len(), 23);
    assert_eq!(hours["buckets"][0]["start"], "2026-03-29T00:00:00+01:00");
    assert_eq!(hours["buckets"][2]["start"], "2026-03-29T03:00:00+02:00");
    assert!(liters(&hours).iter().all(|&l| l == 6.0));
    let days = usage(&app, &format!("{day}&step=day"));
    assert_eq!(liters(&days), vec![23.0 * 6.0]);
    assert_eq!(hours["total_liters"], days["total_liters"]);
    assert_eq!(
        (
            hours["unit"].as_str(),
            hours["step"].as_str(),
            hours["meter"].as_str()
        ),
        (Some("L"), Some("hour"), Some("main"))
    );
}

#[test]
fn new_york_fall_back_day_has_25_hourly_buckets() {
    let (app, _tmp) = App::start("America/New_York", "");
    // 2026-11-01 04:00 UTC is local midnight (EDT).
    assert_eq!(
        post(
            &app.url("/write?precision=s"),
            &every_ten_minutes(1_793_505_600, 25)
        )
        .status,
        204
    );
    let hours = usage(
        &app,
        "from=2026-11-01T00:00:00-04:00&to=2026-11-01T23:59:59-05:00&step=hour",
    );
    let l = liters(&hours);
    assert_eq!(l.len(), 25);
    assert!(l.iter().all(|&x| x == 6.0), "{l:?}");
    let days = usage(
        &app,
        "from=2026-11-01T00:00:00-04:00&to=2026-11-01T23:00:00-05:00&step=day",
    );
    assert_eq!(liters(&days), vec![150.0]);
}

#[test]
fn kathmandu_days_start_at_a_quarter_past_in_utc() {
    let (app, _tmp) = App::start("Asia/Kathmandu", "");
    // 18:14 UTC is 23:59 on the 14th local, 18:15 UTC is midnight of the 15th.
    let body = "water,meter=main liters=1 1781460840\nwater,meter=main liters=2 1781460900\n";
    assert_eq!(post(&app.url("/write?precision=s"), body).status, 204);
    let days = usage(
        &app,
        "from=2026-06-14T00:00:00%2B05:45&to=2026-06-15T12:00:00%2B05:45&step=day",
    );
    assert_eq!(liters(&days), vec![1.0, 2.0]);
    assert_eq!(days["buckets"][1]["start"], "2026-06-15T00:00:00+05:45");
}

#[test]
fn months_sum_their_days_and_minutes_sum_their_hour() {
    let (app, _tmp) = App::start("Europe/Vienna", "");
    // Every 10 minutes from 2026-01-30 to 2026-03-02 (31 days).
    assert_eq!(
        post(
            &app.url("/write?precision=s"),
            &every_ten_minutes(1_769_731_200, 31 * 24)
        )
        .status,
        204
    );
    let months = usage(
        &app,
        "from=2026-01-01T00:00:00%2B01:00&to=2026-03-31T00:00:00%2B02:00&step=month",
    );
    let days = usage(
        &app,
        "from=2026-01-01T00:00:00%2B01:00&to=2026-03-31T00:00:00%2B02:00&step=day",
    );
    assert_eq!(months["total_liters"], days["total_liters"]);
    assert_eq!(months["total_liters"], 31.0 * 24.0 * 6.0);
    let minutes = usage(
        &app,
        "from=2026-02-10T10:00:00%2B01:00&to=2026-02-10T11:00:00%2B01:00&step=minute",
    );
    assert_eq!(minutes["buckets"].as_array().unwrap().len(), 60);
    assert_eq!(minutes["total_liters"], 6.0);
}

#[test]
fn bad_usage_requests_get_400_with_a_reason() {
    let (app, _tmp) = App::start("UTC", "");
    for (q, needle) in [
        ("step=fortnight", "step"),
        ("from=yesterday", "RFC 3339"),
        (
            "step=minute&from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            "buckets",
        ),
        ("from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "after"),
    ] {
        let a = get(&app.url(&format!("/api/v1/meters/main/usage?{q}")));
        assert_eq!(a.status, 400, "{q}: {}", a.body);
        assert!(a.body.contains(needle), "{q}: {}", a.body);
    }
    assert_eq!(get(&app.url("/api/v1/meters/nope")).status, 404);
}

#[test]
fn meters_list_and_status_page_show_the_reading() {
    let meter = "[[meter]]\nid = \"main\"\nname = \"House\"\ninitial_reading_m3 = 1234.5\n";
    let (app, _tmp) = App::start("UTC", meter);
    assert_eq!(
        post(&app.url("/write"), "water,meter=main liters=250").status,
        204
    );
    let list = get_json(&app.url("/api/v1/meters"));
    assert_eq!(list[0]["id"], "main");
    assert_eq!(list[0]["reading_m3"], 1234.75);
    assert_eq!(list[0]["today_liters"], 250.0);
    let page = get(&app.url("/"));
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("1234.750") && page.body.contains("House"),
        "{}",
        page.body
    );
    assert_eq!(get(&app.url("/healthz")).status, 200);
}

/// With a `[tariff]`, each bucket has its cost (marginal tiers over the year, plus
/// sewage, no fixed charge) and the answer names the currency.
#[test]
fn usage_buckets_carry_their_cost_with_marginal_tiers() {
    let extra = "[tariff]\ncurrency = \"EUR\"\nsewage_per_m3 = 1.0\nfixed_per_month = 5.0\ntiers = [{ up_to_m3 = 1, price_per_m3 = 2.0 }, { price_per_m3 = 3.0 }]\n";
    let (app, _tmp) = App::start("UTC", extra);
    // 600 L on 2025-06-01 and 800 L on 2025-06-02 (UTC): the second day crosses 1 m³.
    let day1 = 1_748_736_000i64;
    let mut body = String::new();
    for i in 0..600 {
        body.push_str(&format!("water,meter=main liters=1 {}\n", day1 + i * 60));
    }
    for i in 0..800 {
        body.push_str(&format!(
            "water,meter=main liters=1 {}\n",
            day1 + 86_400 + i * 60
        ));
    }
    assert_eq!(post(&app.url("/write?precision=s"), &body).status, 204);
    let u = get_json(&app.url(
        "/api/v1/meters/main/usage?from=2025-06-01T00:00:00Z&to=2025-06-03T00:00:00Z&step=day",
    ));
    assert_eq!(u["currency"], "EUR", "{u}");
    // Day 1: 0.6 m³ × (2 + 1) = 1.80. Day 2: 0.4 m³ × 2 + 0.4 m³ × 3 + 0.8 m³ × 1 = 2.80.
    assert_eq!(u["buckets"][0]["cost"], 1.8, "{u}");
    assert_eq!(u["buckets"][1]["cost"], 2.8, "{u}");
    assert_eq!(u["total_cost"], 4.6, "{u}");
    let settings = get(&app.url("/settings")).body;
    assert!(
        settings.contains("<li>Water from 0 to 1 m³ a year: 2.00 EUR per m³</li>"),
        "{settings}"
    );
    assert!(
        settings.contains("<li>Fixed charge: 5.00 EUR per month</li>"),
        "{settings}"
    );
    // The dashboard shows the cost beside the liters (nothing flowed today here).
    let page = get(&app.url("/")).body;
    assert!(
        page.contains("Cost today 0.00 EUR · this month 5.00 EUR · this year"),
        "{page}"
    );
    // Without a tariff there is no cost at all.
    let (plain, _t) = App::start("UTC", "");
    let u = get_json(&plain.url("/api/v1/meters/main/usage?step=day"));
    assert!(
        u.get("currency").is_none() && u["buckets"][0].get("cost").is_none(),
        "{u}"
    );
}
