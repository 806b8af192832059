//! The weekly report mail through the real binary and a real SMTP server
//! (aiosmtpd): at a test clock (`WATERMETER_TEST_CLOCK_DIR`), a Pi that was off
//! over Monday 07:00 sends last week's report once when it starts, with its
//! figures, in a plain-text and an HTML part; a restart sends nothing again.

use std::path::Path;
use std::time::Duration;

use chrono::{Datelike, Days, TimeZone};

use crate::alerts::{Smtp, USER};
use crate::util::{config_text, post, App};

const VIENNA: chrono_tz::Tz = chrono_tz::Europe::Vienna;

fn vienna_ms(d: chrono::NaiveDate, h: u32, m: u32) -> i64 {
    let t = d.and_hms_opt(h, m, 0).unwrap();
    VIENNA
        .from_local_datetime(&t)
        .earliest()
        .unwrap()
        .timestamp_millis()
}

/// Sets the binary's clock to `at_ms` (synchronised).
fn set_clock(dir: &Path, at_ms: i64) {
    std::fs::create_dir_all(dir).unwrap();
    let offset = at_ms - chrono::Utc::now().timestamp_millis();
    std::fs::write(dir.join("offset_ms"), offset.to_string()).unwrap();
    std::fs::write(dir.join("synchronized"), "").unwrap();
}

/// `n` liters, one point every 6 s from `from_ms`.
fn liters(from_ms: i64, n: i64) -> String {
    (0..n)
        .map(|i| {
            format!(
                "water,meter=main liters=1 {}\n",
                (from_ms + i * 6_000) / 1000
            )
        })
        .collect()
}

#[test]
fn a_report_missed_while_off_goes_out_once_at_the_next_start() {
    let smtp = Smtp::started();
    let tmp = tempfile::tempdir().unwrap();
    let clock = tmp.path().join("clock");
    // The Monday of last week: its 07:00 is when the report was due.
    let today = chrono::Utc::now().with_timezone(&VIENNA).date_naive();
    let monday = today - Days::new(u64::from(today.weekday().num_days_from_monday()) + 7);
    let due = vienna_ms(monday, 7, 0);
    let week = monday - Days::new(7);
    let extra = format!(
        "[[meter]]\nid = \"main\"\nname = \"House\"\npersons = 2\n\
         [report]\nweekly = true\n\
         [smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"starttls\"\nusername = \"{USER}\"\n\
         password_file = \"{}\"\nfrom = \"watermeter <pi@example.org>\"\nto = \"owner@example.org\"\n\
         ca_file = \"{}\"\ndashboard_url = \"http://pi.example:8080\"\n",
        smtp.port,
        smtp.dir.path().join("password").display(),
        smtp.ca_file().display()
    );
    let config = tmp.path().join("config.toml");
    std::fs::write(
        &config,
        config_text(&tmp.path().join("data"), "Europe/Vienna", &extra),
    )
    .unwrap();
    let env = [("WATERMETER_TEST_CLOCK_DIR", clock.as_os_str())];

    // Sunday evening before the report: the week's water arrives; nothing is due.
    set_clock(&clock, due - 11 * 3_600_000);
    let app = App::spawn_with_env(&config, tmp.path(), &env);
    // History from the Sunday before the week before, so both weeks are whole.
    let mut water = liters(vienna_ms(week - Days::new(8), 19, 0), 1);
    water.push_str(&liters(vienna_ms(week - Days::new(5), 19, 0), 599));
    water.push_str(&liters(vienna_ms(week + Days::new(1), 7, 0), 100));
    water.push_str(&liters(vienna_ms(week + Days::new(3), 20, 0), 300));
    water.push_str(&liters(vienna_ms(week + Days::new(6), 8, 0), 50));
    assert_eq!(post(&app.url("/write?precision=s"), &water).status, 204);
    std::thread::sleep(Duration::from_secs(2));
    assert!(smtp.mails().is_empty(), "{:?}", smtp.mails());
    app.stop();

    // Off over Monday 07:00, on again at 09:30: the report goes out once.
    set_clock(&clock, due + 150 * 60_000);
    let app = App::spawn_with_env(&config, tmp.path(), &env);
    let mails = smtp.wait_mails(1);
    let mail = &mails[0];
    assert!(
        mail.subject
            .starts_with("[watermeter] Weekly report: Week ")
            && mail.subject.ends_with(": 450 L"),
        "{}",
        mail.subject
    );
    for words in [
        "Content-Type: text/plain",
        "Content-Type: text/html",
        "450 L",
        "25 % less",
        "the week before",
        "Biggest days",
        "Per person and day: 32.1 L (2 persons)",
        "127 L",
        "http://pi.example:8080/",
        "No alerts fired",
    ] {
        assert!(
            mail.raw.contains(words),
            "{words:?} missing in {}",
            mail.raw
        );
    }
    assert!(
        !mail.raw.contains("<svg") && !mail.raw.contains("<img"),
        "mail-safe HTML"
    );
    app.stop();
    let app = App::spawn_with_env(&config, tmp.path(), &env);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(smtp.mails().len(), 1, "{:?}", smtp.mails());
    app.stop();
}
