//! Unreadable journal records are told to the owner: one mail through the real
//! SMTP server (aiosmtpd with STARTTLS and AUTH, from `alerts`), never a second one
//! after restarts, a banner on the dashboard, a `store` field in `/api/v1/alerts`
//! and a gauge in `/metrics`; every readable record is kept.

use std::time::Duration;

use crate::alerts::{Smtp, USER};
use crate::recovery::{record_starts, records_end, store_seventy_liters};
use crate::servers::eventually;
use crate::util::{get, get_json, App};

const WAIT: Duration = Duration::from_secs(30);

fn smtp_table(smtp: &Smtp) -> String {
    format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"starttls\"\nusername = \"{USER}\"\n\
         password_file = \"{}\"\nfrom = \"watermeter <pi@example.org>\"\nto = [\"owner@example.org\"]\n\
         ca_file = \"{}\"\n",
        smtp.port,
        smtp.dir.path().join("password").display(),
        smtp.ca_file().display()
    )
}

#[test]
fn unreadable_journal_records_are_mailed_once_and_shown_on_the_dashboard() {
    let smtp = Smtp::started();
    let (app, tmp) = App::start("UTC", &smtp_table(&smtp));
    let app = store_seventy_liters(app);
    let config = app.config.clone();
    assert!(app.stop().success());
    assert!(smtp.mails().is_empty(), "no mail before any damage");
    // A bad sector in the record that holds the first 50 L.
    let journal = tmp.path().join("data").join("journal");
    let mut bytes = std::fs::read(&journal).unwrap();
    let starts = record_starts(&bytes);
    let end = records_end(&bytes);
    let fifty = starts
        .iter()
        .zip(starts.iter().skip(1).chain([&end]))
        .max_by_key(|(a, b)| **b - **a)
        .map(|(a, _)| *a)
        .unwrap();
    bytes[fifty + 40] ^= 0x55;
    std::fs::write(&journal, &bytes).unwrap();

    let app = App::start_with(&config, tmp.path());
    assert_eq!(app.total_liters("main"), 20.0, "the readable 20 L are kept");
    let mails = smtp.wait_mails(1);
    let subject = decode_subject(&mails[0].subject);
    // Nothing readable comes before the lost 50 L (2023); the 20 L after them are of 2025-06-15.
    assert_eq!(
        subject,
        "[watermeter] part of the stored history could not be read — events before 2025-06-15 15:06 UTC may be missing"
    );
    for words in [
        "bytes of its journal (where every liter is kept) unreadable",
        "Every readable record was kept",
        "journal.damaged-",
        "What to check:",
        "Message-ID: <",
    ] {
        assert!(
            mails[0].raw.contains(words),
            "{words:?} missing in {}",
            mails[0].raw
        );
    }
    let metrics = get(&app.url("/metrics")).body;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("watermeter_store_recovered_timestamp_seconds "))
        .expect("recovery gauge");
    assert_ne!(line, "watermeter_store_recovered_timestamp_seconds 0");

    let page = get(&app.url("/")).body;
    assert!(page.contains("class=\"store-restored\""), "{page}");
    assert!(page.contains("may be missing"), "{page}");
    let api = get_json(&app.url("/api/v1/alerts"));
    let recovery = &api["store"]["recovery"];
    assert_eq!(recovery["recent"], true, "{api}");
    assert!(
        recovery["unreadable_bytes"].as_u64().is_some_and(|b| b > 0),
        "{api}"
    );
    assert!(recovery["damaged_copy"]
        .as_str()
        .is_some_and(|d| d.contains("journal.damaged-")));

    // Neither a crash nor a clean restart sends it again: nothing is even queued.
    // (Wait for the outbox to forget the sent mail first: a crash between the
    // server's "250" and that is the outbox's one documented window for a repeat.)
    let pending = |app: &App| get_json(&app.url("/api/v1/alerts"))["outbox"]["pending"].clone();
    eventually(WAIT, || (pending(&app) == 0).then_some(())).expect("the outbox empties");
    let app = app.restart();
    assert_eq!(pending(&app), 0);
    assert!(app.stop().success());
    let app = App::start_with(&config, tmp.path());
    assert_eq!(pending(&app), 0);
    assert!(get(&app.url("/")).body.contains("class=\"store-restored\""));
    assert!(app.stop().success());
    assert_eq!(smtp.mails().len(), 1, "{:?}", smtp.mails());
}

#[test]
fn a_store_never_restored_shows_no_banner_and_no_store_news() {
    let (app, _tmp) = App::start("UTC", "");
    assert!(!get(&app.url("/")).body.contains("store-restored"));
    let api = get_json(&app.url("/api/v1/alerts"));
    assert!(api["store"]["recovery"].is_null(), "{api}");
}

/// `=?utf-8?b?…?=` words (as lettre writes a non-ASCII subject) decoded; the rest kept.
fn decode_subject(header: &str) -> String {
    let (mut bytes, mut last_encoded) = (Vec::new(), false);
    for word in header.split_whitespace() {
        // `alerts::parse_mail` takes a `=` before a line break for a soft break, so a
        // folded header's word may have lost its final `=`.
        let payload = word.strip_suffix("?=").or_else(|| word.strip_suffix('?'));
        let encoded = word.to_ascii_lowercase().starts_with("=?utf-8?b?") && payload.is_some();
        // Space between two encoded words is not part of the text (RFC 2047).
        let joined = encoded && last_encoded;
        if !bytes.is_empty() && !joined {
            bytes.push(b' ');
        }
        match encoded {
            true => bytes.extend(base64(payload.and_then(|p| p.get(10..)).unwrap_or(""))),
            false => bytes.extend_from_slice(word.as_bytes()),
        }
        last_encoded = encoded;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn base64(s: &str) -> Vec<u8> {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = ABC.iter().position(|&a| a == c).expect("base64 digit") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
