//! Security headers on every response: a strict Content-Security-Policy (only this
//! server's own scripts, styles and images; no inline code), no sniffing, no
//! framing, no referrer. Pages add nothing inline, so nothing needs a nonce.
//!
//! It does not do authentication; that is a separate layer over the pages.

use axum::http::header::{
    HeaderValue, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use tower_http::set_header::SetResponseHeaderLayer;

pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Adds the headers to every response of `router`, each unless a handler set its own.
pub fn add<S: Clone + Send + Sync + 'static>(router: axum::Router<S>) -> axum::Router<S> {
    let set =
        |name, value| SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value));
    router
        .layer(set(CONTENT_SECURITY_POLICY, CSP))
        .layer(set(X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(set(REFERRER_POLICY, "no-referrer"))
        .layer(set(X_FRAME_OPTIONS, "DENY"))
}
