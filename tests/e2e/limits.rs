//! Every limit answers with a clear status (413, 408, 503) and nothing breaks.

use std::io::Write;
use std::time::Duration;

use crate::util::{points, post, raw_http, raw_status, App};

const LIMITS: &str = "[http]\n";

fn start(http_extra: &str) -> (App, tempfile::TempDir) {
    // The base config already has an [http] table: patch the keys into it.
    let (app, tmp) = App::start("UTC", "");
    let text = std::fs::read_to_string(&app.config).unwrap();
    let text = text.replacen(LIMITS, &format!("{LIMITS}{http_extra}\n"), 1);
    std::fs::write(&app.config, text).unwrap();
    (app.restart(), tmp)
}

#[test]
fn a_five_thousand_line_batch_is_stored() {
    let (app, _tmp) = App::start("UTC", "");
    let a = post(
        &app.url("/write?precision=s"),
        &points(1_700_000_000, 5_000),
    );
    assert_eq!(a.status, 204, "{}", a.body);
    assert_eq!(app.total_liters("main"), 5_000.0);
}

#[test]
fn a_body_over_max_body_mb_gets_413_and_nothing_is_stored() {
    let (app, _tmp) = start("max_body_mb = 1");
    // Announced, not sent: the server refuses on the length alone (a client
    // still sending when the answer comes may see its connection reset instead).
    let head = b"POST /write?precision=s HTTP/1.1\r\nhost: x\r\ncontent-length: 1600000\r\n\r\n";
    let answer = raw_http(app.http, head);
    assert_eq!(raw_status(&answer), 413, "{answer}");
    // A body without a length (chunked) is cut off at the limit too.
    let body = points(1_700_000_000, 40_000); // ~1.6 MB
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build();
    let agent: ureq::Agent = agent.into();
    let r = agent
        .post(app.url("/write?precision=s"))
        .send(ureq::SendBody::from_reader(&mut body.as_bytes()));
    if let Ok(r) = r {
        assert_eq!(r.status().as_u16(), 413);
    }
    assert_eq!(app.total_liters("main"), 0.0);
}

#[test]
fn a_line_over_64_kib_gets_413_naming_the_line() {
    let (app, _tmp) = App::start("UTC", "");
    let body = format!(
        "water,meter=main liters=1 1700000000\nwater,meter=main,x={} liters=1\n",
        "a".repeat(70_000)
    );
    let a = post(&app.url("/write?precision=s"), &body);
    assert_eq!(a.status, 413, "{}", a.body);
    assert!(a.body.contains("line 2 is"), "{}", a.body);
    assert_eq!(app.total_liters("main"), 0.0);
}

#[test]
fn more_than_100_000_lines_get_413() {
    let (app, _tmp) = App::start("UTC", "");
    let a = post(
        &app.url("/write?precision=s"),
        &points(1_700_000_000, 100_001),
    );
    assert_eq!(a.status, 413, "{}", a.body);
    assert!(a.body.contains("more than 100000 lines"), "{}", a.body);
    assert_eq!(app.total_liters("main"), 0.0);
}

#[test]
fn a_connection_over_max_connections_gets_503_and_the_server_recovers() {
    let (app, _tmp) = start("max_connections = 3");
    let idle: Vec<_> = (0..3)
        .map(|_| std::net::TcpStream::connect(app.http).unwrap())
        .collect();
    // Let the server accept the three before the fourth arrives.
    std::thread::sleep(Duration::from_millis(300));
    let answer = raw_http(app.http, b"GET /ping HTTP/1.1\r\nhost: x\r\n\r\n");
    assert_eq!(raw_status(&answer), 503, "{answer}");
    assert!(answer.contains("too many connections"), "{answer}");
    drop(idle);
    std::thread::sleep(Duration::from_millis(300));
    let a = post(&app.url("/write?precision=s"), &points(1_700_000_000, 1));
    assert_eq!(a.status, 204, "{}", a.body);
}

#[test]
fn a_request_slower_than_request_timeout_s_gets_408() {
    let (app, _tmp) = start("request_timeout_s = 1");
    let mut s = std::net::TcpStream::connect(app.http).unwrap();
    s.write_all(
        b"POST /write?precision=s HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nwater,met",
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 1024];
    let n = loop {
        match std::io::Read::read(&mut s, &mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => break other.unwrap(),
        }
    };
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert_eq!(raw_status(&answer), 408, "{answer}");
    // The server is fine afterwards.
    let a = post(&app.url("/write?precision=s"), &points(1_700_000_000, 1));
    assert_eq!(a.status, 204, "{}", a.body);
}
