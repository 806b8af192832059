//! The HTTP client of the outgoing integrations (forwarding, ntfy, webhooks):
//! hyper's pooled client (hyper-util) over hyper-rustls, for `http://` and
//! `https://` targets alike.
//!
//! One client per user keeps the connection alive between requests. Every
//! request has an overall timeout; only the status and the start of the body are
//! kept, for logs (InfluxDB's and VictoriaMetrics' errors are a line of text).

use std::path::Path;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// The largest answer read (the rest is not needed for a message).
const MAX_ANSWER: usize = 64 * 1024;
/// How long a connection may take to open (the request timeout covers the rest).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{target}: {reason}")]
    Failed { target: String, reason: String },
    #[error("{target} did not answer within {0:?}", .timeout)]
    Timeout { target: String, timeout: Duration },
}

/// What the server answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    /// The start of the body, lossily decoded, for messages.
    pub body: String,
}

/// A pooled HTTP(S) client trusting the system's CAs and `ca_file`.
#[derive(Clone)]
pub struct Client {
    inner: hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Client {
    pub fn new(ca_file: Option<&Path>) -> Result<Client, String> {
        let tls = crate::tls_client::client_config(ca_file)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let inner = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(1)
            .build(connector);
        Ok(Client { inner })
    }

    /// POSTs `body` as text to `uri` (`http(s)://host:port/path?query`) with the extra `headers`.
    pub async fn post(
        &self,
        uri: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Answer, HttpError> {
        self.post_as(uri, "text/plain; charset=utf-8", headers, body, timeout)
            .await
    }

    /// The same with another `Content-Type` (`application/json` for a webhook).
    pub async fn post_as(
        &self,
        uri: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Answer, HttpError> {
        let target = target_of(uri);
        let failed = |reason: String| HttpError::Failed {
            target: target.clone(),
            reason,
        };
        let mut request = hyper::Request::post(uri)
            .header(
                "User-Agent",
                concat!("watermeter/", env!("CARGO_PKG_VERSION")),
            )
            .header("Content-Type", content_type);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| failed(format!("cannot build the request: {e}")))?;
        let exchange = async {
            let response = self
                .inner
                .request(request)
                .await
                .map_err(|e| failed(chain(&e)))?;
            let status = response.status().as_u16();
            // A body that breaks off or is too long still leaves the status.
            let bytes = Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let body: String = String::from_utf8_lossy(&bytes).chars().take(500).collect();
            Ok(Answer {
                status,
                body: body.trim().to_string(),
            })
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(HttpError::Timeout {
                target: target.clone(),
                timeout,
            }),
        }
    }
}

/// `scheme://authority` of a URI, for messages (the path may hold a database name,
/// never a secret, but the short form reads better). Pure.
fn target_of(uri: &str) -> String {
    let after = uri.find("://").map_or(0, |i| i + 3);
    let end = uri[after..]
        .find(['/', '?'])
        .map_or(uri.len(), |i| after + i);
    uri[..end].to_string()
}

/// An error with its causes: hyper's own message ("client error (Connect)") says
/// little; the cause ("connection refused", "invalid peer certificate: UnknownIssuer")
/// is what the owner needs.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
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
    fn the_target_in_messages_is_scheme_and_authority() {
        assert_eq!(target_of("https://vm:8428/write?db=x"), "https://vm:8428");
        assert_eq!(target_of("http://[::1]:80?x"), "http://[::1]:80");
        assert_eq!(target_of("http://h"), "http://h");
    }

    #[test]
    fn errors_carry_their_causes_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("client error (Connect)")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        assert_eq!(
            chain(&Outer(io)),
            "client error (Connect): connection refused"
        );
    }

    /// A real exchange with a one-shot server on 127.0.0.1: status and body come back.
    #[tokio::test]
    async fn posts_and_reads_the_answer() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while !String::from_utf8_lossy(&got).contains("liters=1") {
                let n = s.read(&mut buf).await.unwrap();
                assert!(n > 0);
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 16\r\n\r\n{\"error\":\"bad\"}\n",
            )
            .await
            .unwrap();
            String::from_utf8_lossy(&got).to_string()
        });
        let client = Client::new(None).unwrap();
        let a = client
            .post(
                &format!("http://127.0.0.1:{port}/write?db=w"),
                &[("Authorization", "Token t")],
                b"water liters=1".to_vec(),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        assert_eq!((a.status, a.body.as_str()), (400, "{\"error\":\"bad\"}"));
        let request = server.await.unwrap();
        assert!(
            request.starts_with("POST /write?db=w HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(request
            .to_ascii_lowercase()
            .contains("authorization: token t"));
    }
}
