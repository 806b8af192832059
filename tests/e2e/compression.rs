//! tower-http in front of every route: pages, CSV and JSON compressed as the
//! client accepts (gzip, br), gzip-compressed writes taken as InfluxDB takes them
//! (Telegraf's default), other encodings refused in words, security headers kept.

use std::io::{Read, Write};

use crate::util::{points, App};

/// Sends `request` and returns the raw answer as bytes (head and body).
fn raw(app: &App, request: &[u8]) -> Vec<u8> {
    let mut s = std::net::TcpStream::connect(app.http).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn split(answer: &[u8]) -> (String, Vec<u8>) {
    let at = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    (
        String::from_utf8_lossy(&answer[..at]).to_lowercase(),
        answer[at + 4..].to_vec(),
    )
}

/// The body of a `transfer-encoding: chunked` answer, without the framing.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = body.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&body[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[eol + 2..eol + 2 + size]);
        body = &body[eol + 2 + size + 2..];
    }
}

/// GET with `accept-encoding`; the head (lower case) and the body as sent (de-chunked).
fn get_encoded(app: &App, path: &str, accept: &str) -> (String, Vec<u8>) {
    let req = format!(
        "GET {path} HTTP/1.1\r\nhost: x\r\naccept-encoding: {accept}\r\nconnection: close\r\n\r\n"
    );
    let (head, body) = split(&raw(app, req.as_bytes()));
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(&body)
    } else {
        body
    };
    (head, body)
}

#[test]
fn pages_and_json_are_compressed_as_the_client_accepts() {
    let (app, _tmp) = App::start("UTC", "");
    let (head, plain) = get_encoded(&app, "/", "identity");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!head.contains("content-encoding"), "{head}");
    let (head, gz) = get_encoded(&app, "/", "gzip");
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert!(
        head.contains("content-security-policy: default-src 'self'"),
        "{head}"
    );
    let mut page = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut page)
        .expect("valid gzip");
    // The body is chunked when compressed: compare the page's text, not the bytes.
    assert!(
        String::from_utf8_lossy(&page).contains("<title>"),
        "a whole page"
    );
    assert!(
        gz.len() * 3 < plain.len(),
        "gzip {} vs {} bytes",
        gz.len(),
        plain.len()
    );
    let (head, _) = get_encoded(&app, "/", "br");
    assert!(head.contains("content-encoding: br"), "{head}");
    let (head, _) = get_encoded(&app, "/api/v1/meters", "gzip");
    assert!(head.contains("content-encoding: gzip"), "{head}");
}

#[test]
fn a_gzip_compressed_write_is_stored_and_other_encodings_are_refused_in_words() {
    let (app, _tmp) = App::start("UTC", "");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(points(1_700_000_000, 30).as_bytes()).unwrap();
    let body = gz.finish().unwrap();
    let mut req = format!(
        "POST /write?precision=s HTTP/1.1\r\nhost: x\r\ncontent-encoding: gzip\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    let (head, _) = split(&raw(&app, &req));
    assert!(head.starts_with("http/1.1 204"), "{head}");
    assert_eq!(app.total_liters("main"), 30.0);

    let req = b"POST /write?precision=s HTTP/1.1\r\nhost: x\r\ncontent-encoding: zstd\r\ncontent-length: 4\r\nconnection: close\r\n\r\nabcd";
    let (head, body) = split(&raw(&app, req));
    assert!(head.starts_with("http/1.1 415"), "{head}");
    let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert!(
        json["error"].as_str().is_some_and(|e| e.contains("gzip")),
        "{json}"
    );
    assert_eq!(app.total_liters("main"), 30.0);
}
