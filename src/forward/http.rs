//! A minimal HTTP/1.1 POST over a tokio `TcpStream`, for the forwarder.
//!
//! One connection per request with `Connection: close`, a `Content-Length` body and
//! an overall timeout; the answer is read to its end (or its `Content-Length`) and
//! only the status and the first few hundred bytes of the body are kept, for logs.
//! Plain `http://` only: no TLS, no redirects, no chunked request bodies. That is all
//! a line protocol write needs, and it costs no dependency (hyper's client would
//! pull in hyper-util and its pooling for one POST every few seconds).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest answer kept in memory (InfluxDB's errors are a line of JSON).
const MAX_ANSWER: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot connect to {target}: {source}")]
    Connect {
        target: String,
        source: std::io::Error,
    },
    #[error("the connection to {target} failed: {source}")]
    Io {
        target: String,
        source: std::io::Error,
    },
    #[error("{target} did not answer within {0:?}", .timeout)]
    Timeout { target: String, timeout: Duration },
    #[error("{target} did not answer with HTTP (got {first_line:?})")]
    NotHttp { target: String, first_line: String },
}

/// What the server answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    /// The start of the body, lossily decoded, for messages.
    pub body: String,
}

/// POSTs `body` to `http://host:port{path}` with the extra `headers`.
pub async fn post(
    host: &str,
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<Answer, HttpError> {
    let target = format!("{}:{port}", host_for_header(host));
    match tokio::time::timeout(timeout, exchange(host, port, path, headers, body, &target)).await {
        Ok(r) => r,
        Err(_) => Err(HttpError::Timeout { target, timeout }),
    }
}

async fn exchange(
    host: &str,
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    target: &str,
) -> Result<Answer, HttpError> {
    let mut stream =
        TcpStream::connect((host, port))
            .await
            .map_err(|source| HttpError::Connect {
                target: target.to_string(),
                source,
            })?;
    let io = |source| HttpError::Io {
        target: target.to_string(),
        source,
    };
    let head = request_head(target, path, headers, body.len());
    stream.write_all(head.as_bytes()).await.map_err(io)?;
    stream.write_all(body).await.map_err(io)?;
    stream.flush().await.map_err(io)?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.map_err(io)?;
        if n == 0 || buf.len() >= MAX_ANSWER {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if answer_complete(&buf) {
            break;
        }
    }
    parse_answer(&buf).ok_or_else(|| HttpError::NotHttp {
        target: target.to_string(),
        first_line: String::from_utf8_lossy(buf.split(|&b| b == b'\n').next().unwrap_or(&[]))
            .chars()
            .take(80)
            .collect(),
    })
}

/// The request line and headers. Pure.
pub fn request_head(host: &str, path: &str, headers: &[(&str, &str)], len: usize) -> String {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: watermeter/{}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {len}\r\nConnection: close\r\n",
        env!("CARGO_PKG_VERSION")
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head
}

fn host_for_header(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Whether the headers are in and the `Content-Length` body too (without one,
/// the server's close ends the answer).
fn answer_complete(buf: &[u8]) -> bool {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let status = parse_status(&head).unwrap_or(0);
    // 204 and 304 have no body whatever the headers say.
    match length {
        _ if status == 204 || status == 304 => true,
        Some(n) => buf.len() >= end + 4 + n,
        None => false,
    }
}

/// Status and body start of a raw answer. Pure.
pub fn parse_answer(buf: &[u8]) -> Option<Answer> {
    let end = find(buf, b"\r\n\r\n");
    let head = String::from_utf8_lossy(&buf[..end.unwrap_or(buf.len())]);
    let status = parse_status(&head)?;
    let body = end.map_or(&[][..], |e| &buf[e + 4..]);
    let body: String = String::from_utf8_lossy(body).chars().take(500).collect();
    Some(Answer {
        status,
        body: body.trim().to_string(),
    })
}

fn parse_status(head: &str) -> Option<u16> {
    let line = head.lines().next()?;
    let mut parts = line.split_whitespace();
    let version = parts.next()?;
    if !version.to_ascii_uppercase().starts_with("HTTP/1.") {
        return None;
    }
    parts
        .next()?
        .parse()
        .ok()
        .filter(|s| (100..600).contains(s))
}

fn find(buf: &[u8], needle: &[u8]) -> Option<usize> {
    buf.windows(needle.len()).position(|w| w == needle)
}

/// `user:password` as HTTP Basic credentials (base64, RFC 4648 with padding).
pub fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine;
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {credentials}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, expected: Option<(u16, &str)>) {
        let got = parse_answer(raw.as_bytes());
        assert_eq!(
            got.as_ref().map(|a| (a.status, a.body.as_str())),
            expected,
            "{raw:?}"
        );
    }

    #[test]
    fn answers_give_their_status_and_body() {
        check("HTTP/1.1 204 No Content\r\nX: y\r\n\r\n", Some((204, "")));
        check(
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 18\r\n\r\n{\"error\":\"bad\"}\n",
            Some((400, "{\"error\":\"bad\"}")),
        );
        check("HTTP/1.0 503 Busy", Some((503, "")));
        check("SSH-2.0-OpenSSH\r\n", None);
        check("HTTP/1.1 abc\r\n\r\n", None);
        check("", None);
    }

    #[test]
    fn an_answer_is_complete_once_its_length_is_in() {
        assert!(!answer_complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"
        ));
        assert!(answer_complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab"
        ));
        assert!(answer_complete(b"HTTP/1.1 204 No Content\r\n\r\n"));
        assert!(!answer_complete(b"HTTP/1.1 200 OK\r\n\r\nno length"));
    }

    #[test]
    fn basic_auth_is_rfc_4648_base64() {
        assert_eq!(
            basic_auth("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(basic_auth("a", "b"), "Basic YTpi");
        assert_eq!(basic_auth("ab", "c"), "Basic YWI6Yw==");
    }

    #[test]
    fn request_head_carries_length_host_and_extra_headers() {
        let h = request_head(
            "influx:8086",
            "/write?db=w",
            &[("Authorization", "Token t")],
            12,
        );
        assert!(h.starts_with("POST /write?db=w HTTP/1.1\r\nHost: influx:8086\r\n"));
        assert!(h.contains("Content-Length: 12\r\n"));
        assert!(h.ends_with("Authorization: Token t\r\n\r\n"));
    }
}
