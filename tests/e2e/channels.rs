//! Alert notifications by ntfy and webhook only (no [smtp]), to real HTTP
//! receivers started by the test that check the requests ntfy's documentation and
//! CONTRACT.md specify: one delivery per transition, surviving a receiver outage
//! and a restart, with a stable id.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::servers::eventually;
use crate::util::{post, App};

/// One request a receiver got: its first line, headers (lower-case names), body.
#[derive(Debug, Clone)]
pub(crate) struct Got {
    pub(crate) line: String,
    headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP receiver on 127.0.0.1 that answers `statuses` in turn (then 200).
pub(crate) fn receiver(statuses: Vec<u16>) -> (u16, Arc<Mutex<Vec<Got>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        let mut statuses = statuses.into_iter();
        for stream in listener.incoming().flatten() {
            let mut r = BufReader::new(stream);
            let mut line = String::new();
            if r.read_line(&mut line).is_err() {
                continue;
            }
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = h.trim().split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
            }
            let len: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0u8; len];
            let _ = r.read_exact(&mut body);
            seen.lock().unwrap().push(Got {
                line: line.trim().to_string(),
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            let status = statuses.next().unwrap_or(200);
            let mut s = r.into_inner();
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
            );
        }
    });
    (port, got)
}

#[test]
fn an_alert_reaches_ntfy_and_a_webhook_once_through_an_outage_and_a_restart() {
    let (ntfy_port, ntfy) = receiver(vec![]);
    let (hook_port, hook) = receiver(vec![500]);
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("ntfy-token"), "tk_test\n").unwrap();
    let extra = format!(
        "[[meter]]\nid = \"main\"\nname = \"House\"\n\
         [[alert]]\nname = \"More than 100 L in one hour\"\nmeter = \"main\"\nkind = \"volume\"\nwindow = \"1h\"\nthreshold_liters = 100\n\
         [[notify]]\nname = \"phone\"\nkind = \"ntfy\"\nurl = \"http://127.0.0.1:{ntfy_port}/water-alerts\"\ntoken_file = \"{}\"\npriority = \"high\"\n\
         [[notify]]\nname = \"ha\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{hook_port}/api/webhook/water\"\n",
        tmp.path().join("ntfy-token").display()
    );
    // Push users get the dashboard link too: `[http] public_url`, no [smtp].
    let text = crate::util::config_text(&tmp.path().join("data"), "UTC", &extra).replacen(
        "listen = \"127.0.0.1:0\"\n",
        "listen = \"127.0.0.1:0\"\npublic_url = \"http://water.local:8080\"\n",
        1,
    );
    let config = tmp.path().join("config.toml");
    std::fs::write(&config, text).unwrap();
    let app = App::start_with(&config, tmp.path());
    let t = chrono::Utc::now().timestamp() - 600;
    let body: String = (0..120)
        .map(|i| format!("water,meter=main liters=1 {}\n", t + i))
        .collect();
    assert_eq!(post(&app.url("/write?precision=s"), &body).status, 204);

    let pushed = eventually(Duration::from_secs(30), || {
        let g = ntfy.lock().unwrap().clone();
        (!g.is_empty() && !hook.lock().unwrap().is_empty()).then_some(g)
    })
    .expect("no notification arrived");
    let push = &pushed[0];
    assert_eq!(push.line, "POST /water-alerts HTTP/1.1");
    assert_eq!(
        push.header("title"),
        Some("More than 100 L in one hour: House: 120 L in 1 h (limit 100 L)")
    );
    assert_eq!(push.header("priority"), Some("4"));
    assert_eq!(push.header("authorization"), Some("Bearer tk_test"));
    assert!(
        push.header("tags")
            .is_some_and(|t| t.starts_with("droplet,wm-")),
        "{push:?}"
    );
    assert!(push.body.contains("is firing"), "{}", push.body);
    assert!(
        push.header("click")
            .is_some_and(|c| c.starts_with("http://water.local:8080/")),
        "{push:?}"
    );

    // The webhook answered 500: the notification waits in the outbox, across a
    // restart, and goes out once the receiver takes it; ntfy is not sent again.
    let app = app.restart();
    let delivered = eventually(Duration::from_secs(30), || {
        let g = hook.lock().unwrap().clone();
        (g.len() >= 2).then_some(g)
    })
    .expect("the webhook was not retried");
    let first: serde_json::Value = serde_json::from_str(&delivered[0].body).unwrap();
    let second: serde_json::Value = serde_json::from_str(&delivered[1].body).unwrap();
    assert_eq!(first["id"], second["id"], "a repeat carries the same id");
    assert_eq!(
        delivered[1].header("content-type"),
        Some("application/json")
    );
    assert_eq!(second["alert"], "More than 100 L in one hour");
    assert_eq!(
        (
            second["kind"].as_str(),
            second["meter"].as_str(),
            second["state"].as_str()
        ),
        (Some("volume"), Some("main"), Some("firing"))
    );
    assert_eq!(
        (second["value"].as_f64(), second["unit"].as_str()),
        (Some(120.0), Some("L"))
    );
    assert!(
        second["since"]
            .as_str()
            .is_some_and(|s| s.ends_with("+00:00")),
        "{second}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(ntfy.lock().unwrap().len(), 1, "ntfy got it once");
    assert_eq!(
        hook.lock().unwrap().len(),
        2,
        "one failed try, one delivery"
    );
    let alerts = crate::util::get_json(&app.url("/api/v1/alerts"));
    assert_eq!(alerts["outbox"]["pending"], 0, "{alerts}");
}
