//! Cross-site request forgery protection for the forms that change state: a
//! double-submit token. The token is random per process (from `/dev/urandom`); a
//! form page sets it as a `SameSite=Strict` cookie and as a hidden field, and a
//! POST is accepted only when both are present and equal to the process token.
//!
//! This is not authentication: the login check (when auth is configured) runs
//! before the handler, in the pages' auth layer.

use std::sync::LazyLock;

use axum::http::{header, HeaderMap};

pub const COOKIE: &str = "wm_csrf";

static TOKEN: LazyLock<String> = LazyLock::new(|| {
    let mut bytes = [0u8; 24];
    if let Err(e) = getrandom::fill(&mut bytes) {
        // Without randomness the token would be guessable: refuse every form
        // (an empty token never matches) rather than accept forged ones.
        tracing::error!(
            "the kernel gave no random bytes for the form token ({e}); forms are disabled"
        );
        return String::new();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
});

/// The token to put in the form and the cookie.
pub fn token() -> &'static str {
    &TOKEN
}

/// The `Set-Cookie` value that goes with a form page.
pub fn set_cookie() -> String {
    format!("{COOKIE}={}; Path=/; SameSite=Strict; HttpOnly", token())
}

/// True when the form field and the cookie both carry this process's token.
pub fn verify(headers: &HeaderMap, field: Option<&str>) -> bool {
    let expected = token();
    let cookie = cookie(headers, COOKIE);
    !expected.is_empty()
        && field.is_some_and(|f| same(f, expected))
        && cookie.is_some_and(|c| same(c, expected))
}

/// [`verify`] for a form handler: an expired or foreign form gets 403 saying
/// which page to open again (`page`: "the settings page").
pub fn require(
    headers: &HeaderMap,
    field: Option<&str>,
    page: &str,
) -> Result<(), super::view::PageError> {
    if verify(headers, field) {
        Ok(())
    } else {
        Err(super::view::PageError::Forbidden(format!(
            "The form had expired or did not come from this dashboard. Open {page} again and resubmit."
        )))
    }
}

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Constant-time comparison: the time taken does not reveal how much matched.
pub fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookie: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, cookie.parse().unwrap());
        h
    }

    fn check(cookie: &str, field: Option<&str>, expected: bool) {
        assert_eq!(
            verify(&headers(cookie), field),
            expected,
            "{cookie} {field:?}"
        );
    }

    #[test]
    fn only_a_matching_cookie_and_field_pass() {
        let t = token();
        assert_eq!(t.len(), 48);
        check(&format!("a=b; {COOKIE}={t}"), Some(t), true);
        check(&format!("{COOKIE}={t}"), None, false);
        check("", Some(t), false);
        check(&format!("{COOKIE}=x"), Some("x"), false);
        check(&format!("{COOKIE}={t}"), Some(&t[1..]), false);
    }
}
