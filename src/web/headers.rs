//! Security headers on every response: a strict Content-Security-Policy (only this
//! server's own scripts, styles and images; no inline code), no sniffing, no
//! framing, no referrer. Pages add nothing inline, so nothing needs a nonce.
//!
//! It does not do authentication; that is a separate layer over the pages.

use axum::http::header::{
    HeaderValue, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::response::Response;

pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Middleware (`axum::middleware::map_response`): adds the headers unless a
/// handler set its own.
pub async fn secure(mut res: Response) -> Response {
    let h = res.headers_mut();
    for (name, value) in [
        (CONTENT_SECURITY_POLICY, CSP),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (REFERRER_POLICY, "no-referrer"),
        (X_FRAME_OPTIONS, "DENY"),
    ] {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    }
    res
}
