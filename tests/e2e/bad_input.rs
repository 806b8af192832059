//! Hostile input: 100,000 random and mutated datagrams, malformed HTTP to every
//! route. The process stays up, every error is a 4xx, and the good points sent in
//! between are all stored, exactly.

use std::net::UdpSocket;
use std::time::Duration;

use crate::util::{get, post, raw_http, raw_status, App, Rng};

const SEEDS: [&[u8]; 6] = [
    b"water,meter=main liters=1 1700000000000000000",
    b"water,meter=garden total=123456i\nwater,meter=main value=2.5",
    b"m\\ x,t\\,a=v\\=b f=\"s \\\"q\\\" \\\\\",g=-1.5e3,h=12i,i=3u,j=t -7",
    b"# comment\r\n\nwater v=1\nwater,t=a v=.5\n",
    b"\xc2\xb5,\xc3\xbc=\xc3\xb6 \xf0\x9f\x92\xa7=1",
    b"water,meter=main liters=1e308,liters=-1 99999999999999999999",
];
const ALPHABET: &[u8] = b" ,=\"\\\n\r\t#-+.eEiutfTF0123456789mainwater\xc2\xb5\xff\x80\x00";

/// A random or mutated datagram that can never be a point of meter `main`, so
/// the only liters `main` receives are the good points.
fn hostile(rng: &mut Rng) -> Vec<u8> {
    let mut d = if rng.below(3) == 0 {
        let len = rng.below(300) as usize;
        (0..len)
            .map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize])
            .collect()
    } else {
        let mut d = SEEDS[rng.below(SEEDS.len() as u64) as usize].to_vec();
        for _ in 0..1 + rng.below(8) {
            let at = rng.below(d.len() as u64 + 1) as usize;
            let byte = ALPHABET[rng.below(ALPHABET.len() as u64) as usize];
            match rng.below(4) {
                0 => d.insert(at, byte),
                1 if at < d.len() => d[at] = byte,
                2 if at < d.len() => drop(d.remove(at)),
                _ => {
                    let copy = d.clone();
                    d.extend_from_slice(&copy[..copy.len().min(1000)]);
                }
            }
        }
        d
    };
    while let Some(i) = d.windows(4).position(|w| w == b"main") {
        d[i] = b'M';
    }
    d
}

#[test]
fn a_hundred_thousand_hostile_datagrams_leave_the_good_points_exact() {
    let (app, _tmp) = App::start("UTC", "");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut rng = Rng(0x5EED_0FBA_DDA7_A001);
    let mut good = 0u64;
    for i in 0..100_000u64 {
        socket.send_to(&hostile(&mut rng), app.udp).unwrap();
        if i % 1_000 == 999 {
            socket
                .send_to(b"water,meter=main liters=1", app.udp)
                .unwrap();
            good += 1;
        }
        // Paced so the kernel's receive buffer never overflows.
        if i % 200 == 199 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    assert_eq!(
        app.wait_total("main", good as f64, Duration::from_secs(30)),
        good as f64
    );
    let metrics = get(&app.url("/metrics")).body;
    assert!(
        metrics.contains(&format!(
            "watermeter_udp_datagrams_total {}",
            100_000 + good
        )),
        "every datagram arrived: {metrics}"
    );
    assert_eq!(get(&app.url("/healthz")).status, 200);
}

/// Malformed requests, each sent on its own connection as raw bytes, and whether
/// it must fail (junk query parameters on a route that takes none may succeed).
fn malformed() -> Vec<(Vec<u8>, bool)> {
    let mut list: Vec<Vec<u8>> = Vec::new();
    let mut may_pass: Vec<Vec<u8>> = Vec::new();
    let req = |head: &str| format!("{head}\r\nhost: x\r\nconnection: close\r\n\r\n").into_bytes();
    let routes = [
        "/",
        "/write",
        "/api/v2/write",
        "/ping",
        "/query",
        "/api/v1/meters",
        "/api/v1/meters/main",
        "/api/v1/meters/main/usage",
        "/metrics",
        "/healthz",
        "/export.csv",
        "/events",
        "/static/app.css",
    ];
    for r in routes {
        for m in ["DELETE", "PUT", "PATCH", "TRACE", "FOO"] {
            list.push(req(&format!("{m} {r} HTTP/1.1")));
        }
        may_pass.push(req(&format!("GET {r}?%ff%fe=%c3%28&&&==&a[]=1 HTTP/1.1")));
    }
    for path in [
        "/static/..%2f..%2f..%2fetc%2fpasswd",
        "/static/../../../etc/passwd",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "/static/..\\..\\etc\\passwd",
        "/..%2f..%2fetc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/api/v1/meters/..%2f..%2fetc%2fpasswd",
        "/api/v1/meters/%ff%fe",
        "/api/v1/meters/main/usage?from=%ff&to=x&step=century",
        "/api/v1/meters/main/usage?from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z",
        "/api/v1/meters/main/usage?from=-99999-01-01T00:00:00Z&step=minute",
        "/api/v1/meters/main/usage?from=0000-01-01T00:00:00Z&to=9999-12-31T00:00:00Z&step=minute",
        "/api/v1/meters/nope/usage",
    ] {
        list.push(req(&format!("GET {path} HTTP/1.1")));
    }
    let huge = "x".repeat(1_000_000); // over hyper's 400 KB read buffer
    list.push(req(&format!("GET /ping HTTP/1.1\r\nx-big: {huge}")));
    let many: String = (0..500).map(|i| format!("x-h{i}: v\r\n")).collect();
    list.push(req(&format!("GET /ping HTTP/1.1\r\n{}", many.trim_end())));
    list.push(req(&format!("GET /{} HTTP/1.1", "a".repeat(100_000))));
    // Header values may carry any bytes (obs-text): a route that ignores them may answer.
    may_pass.push(
        b"GET /ping HTTP/1.1\r\nhost: \xff\xfe\r\nx-bad: \xc3\x28\r\nconnection: close\r\n\r\n"
            .to_vec(),
    );
    list.push(b"GARBAGE\r\n\r\n".to_vec());
    list.push(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec()); // a TLS hello
    list.push(b"GET / HTTP/1.1\r\nhost: x\r\ncontent-length: -5\r\n\r\n".to_vec());
    list.push(
        b"POST /write HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello"
            .to_vec(),
    );
    list.push(b"POST /write HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n".to_vec());
    let writes = [
        (
            "/write?precision=fortnight",
            "water,meter=main liters=1".as_bytes(),
        ),
        ("/write?precision=%ff", b"water,meter=main liters=1"),
        ("/write", b"water,meter=main liters=\xff\xfe\n\xc3\x28"),
        ("/write", b"water,meter=main liters=-1"),
        ("/api/v2/write?bucket=%00", b"water,meter=main liters=NaN"),
        // DROP DATABASE now parses and answers a statement error, as InfluxDB does
        // (tests/e2e/influxql.rs); a statement that does not parse is the 400.
        ("/query", b"q=FROBNICATE%20water"),
        ("/query?q=%ff", b""),
    ];
    for (path, body) in writes {
        let mut r = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        list.push(r);
    }
    let mut gz = b"POST /write HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-encoding: gzip\r\ncontent-length: 4\r\n\r\n".to_vec();
    gz.extend_from_slice(b"\x1f\x8b\x08\x00");
    list.push(gz);
    let must_fail = list.into_iter().map(|r| (r, true));
    must_fail
        .chain(may_pass.into_iter().map(|r| (r, false)))
        .collect()
}

#[test]
fn malformed_http_to_every_route_gets_a_4xx_and_the_good_writes_between_are_stored() {
    let (mut app, _tmp) = App::start("UTC", "");
    let requests = malformed();
    let (mut good, mut wrong) = (0, Vec::new());
    for (i, (r, must_fail)) in requests.iter().enumerate() {
        let answer = raw_http(app.http, r);
        let status = raw_status(&answer);
        // No answer at all (the connection closed) is fine for bytes that are not HTTP.
        let ok = match must_fail {
            true => status == 0 || (400..500).contains(&status),
            false => status == 0 || status < 500,
        };
        if !ok || answer.contains("root:") {
            let shown = String::from_utf8_lossy(&r[..r.len().min(100)]).into_owned();
            wrong.push(format!("{shown:?} answered {status}"));
        }
        let a = post(
            &app.url("/write?precision=s"),
            &format!("water,meter=main liters=1 {}", 1_700_000_000 + i),
        );
        assert_eq!(a.status, 204, "{}", a.body);
        good += 1;
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(app.child.try_wait().unwrap().is_none(), "the server died");
    assert_eq!(app.total_liters("main"), good as f64);
    assert_eq!(get(&app.url("/healthz")).status, 200);
}
