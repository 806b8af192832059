//! What one client may ask of the server: connections, time, and lines per
//! request. Each limit answers with a status that says which one was hit (503 for
//! too many connections, 408 for too slow, 413 for too much) and none of them
//! costs more than a little memory. The time and size limits themselves are
//! tower-http layers in the route table; this module words their answers and does
//! what no layer does: count lines, and cap connections (which a layer over
//! requests cannot see).
//!
//! This module does not authenticate or rate-limit logins.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ApiError;

/// Longest line in a write request: real points are under 200 bytes.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Most lines in one write request: 20 of InfluxDB's 5,000-line batches.
pub const MAX_LINES: usize = 100_000;

/// Refuses a write body with a line over [`MAX_LINE_BYTES`] or more than
/// [`MAX_LINES`] lines (413, nothing stored), before any of it is parsed.
pub fn check_lines(body: &[u8]) -> Result<(), ApiError> {
    // A body that ends with a newline has no line after it.
    let body = body.strip_suffix(b"\n").unwrap_or(body);
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        if i == MAX_LINES {
            return Err(ApiError::TooLarge(format!(
                "the request has more than {MAX_LINES} lines; send at most {MAX_LINES} per request (InfluxDB clients send 5,000)"
            )));
        }
        if line.len() > MAX_LINE_BYTES {
            return Err(ApiError::TooLarge(format!(
                "line {} is {} bytes long; a line may have at most {MAX_LINE_BYTES} bytes",
                i + 1,
                line.len()
            )));
        }
    }
    Ok(())
}

/// The per-request limits, from `[http]`.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    pub max_body_bytes: usize,
    pub timeout: Duration,
}

/// Words for the bare 408, 413 and 415 that tower-http's timeout, body-limit and
/// decompression layers answer with: every error here is JSON `{"error": …}` as InfluxDB clients parse
/// it, saying which limit was hit and what to do; and the connection closes, since
/// the rest of a refused body may still be on its way. Handlers' own 413s (lines)
/// are JSON already and keep their words.
pub async fn explain(State(limits): State<RequestLimits>, res: Response) -> Response {
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let message = match status {
        StatusCode::REQUEST_TIMEOUT => format!(
            "the request took longer than {} s; send smaller batches or check the network",
            limits.timeout.as_secs()
        ),
        StatusCode::PAYLOAD_TOO_LARGE => format!(
            "the request body is larger than {} MB ([http] max_body_mb); send smaller batches",
            limits.max_body_bytes >> 20
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            "the body's Content-Encoding is not supported; send it gzip-compressed or uncompressed"
                .to_string()
        }
        _ => return res,
    };
    let mut res = if is_json {
        res
    } else {
        (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
    };
    res.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    res
}

/// A TCP listener that serves at most `max` connections at once. One more is
/// answered `503 Service Unavailable` with `Retry-After` and closed, so a client
/// learns why instead of hanging.
pub struct LimitedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
}

impl LimitedListener {
    pub fn new(inner: TcpListener, max: usize) -> Self {
        LimitedListener {
            inner,
            permits: Arc::new(Semaphore::new(max)),
        }
    }
}

const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
retry-after: 1\r\nconnection: close\r\ncontent-length: 60\r\n\r\n\
{\"error\":\"too many connections; try again in a moment     \"}";

impl axum::serve::Listener for LimitedListener {
    type Io = Limited;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (mut io, addr) = axum::serve::Listener::accept(&mut self.inner).await;
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    return (
                        Limited {
                            io,
                            _permit: permit,
                        },
                        addr,
                    )
                }
                Err(_) => {
                    tokio::spawn(async move {
                        let write = async {
                            io.write_all(BUSY).await?;
                            io.shutdown().await
                        };
                        let _ = tokio::time::timeout(Duration::from_secs(2), write).await;
                    });
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection that holds one of the listener's permits until it closes.
pub struct Limited {
    io: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Limited {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Limited {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &[u8], expected: Result<(), &str>) {
        let got = check_lines(body).map_err(|e| match e {
            ApiError::TooLarge(m) => m,
            other => panic!("not a 413: {other:?}"),
        });
        match (got, expected) {
            (Ok(()), Ok(())) => {}
            (Err(m), Err(part)) => assert!(m.contains(part), "{m}"),
            (got, expected) => panic!("got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn a_five_thousand_line_batch_passes() {
        let body = "water,meter=main liters=1 1700000000000000000\n".repeat(5_000);
        check(body.as_bytes(), Ok(()));
    }

    #[test]
    fn a_line_over_64_kib_is_refused_with_its_number() {
        let mut body = b"water v=1\n".to_vec();
        body.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 1));
        check(&body, Err("line 2 is 65537 bytes long"));
        check(&vec![b'x'; MAX_LINE_BYTES], Ok(()));
    }

    #[test]
    fn exactly_100_000_lines_pass_and_more_are_refused() {
        let line = b"water v=1\n";
        check(&line.repeat(MAX_LINES), Ok(()));
        check(
            &line.repeat(MAX_LINES)[..line.len() * MAX_LINES - 1],
            Ok(()),
        );
        check(&line.repeat(MAX_LINES + 1), Err("more than 100000 lines"));
        check(&b"\n".repeat(MAX_LINES + 1), Err("more than 100000 lines"));
    }

    #[test]
    fn the_busy_answer_has_the_length_it_announces() {
        let text = std::str::from_utf8(BUSY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{}",
            body.len()
        );
    }
}
