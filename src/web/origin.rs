//! No browser-made cross-site write, with or without a login.
//!
//! A web page the owner opens (on the internet, or another device's admin page on
//! the LAN) can make the browser send requests to the dashboard: forms and
//! `fetch` with a simple content type go out without asking. Every request that
//! can change something (any method but GET, HEAD and OPTIONS) is therefore
//! refused with 403 when the browser says it came from elsewhere:
//! `Sec-Fetch-Site: cross-site` or `same-site` (Fetch Metadata, sent by every
//! current browser), or an `Origin` that is not this server's own (the `Host` it
//! was asked for, a proxy's `X-Forwarded-Host`, or the configured dashboard URL).
//! JSON endpoints also want `Content-Type: application/json` (415 otherwise): a
//! browser asks the server before sending that from another page, and is told no.
//!
//! A browser's request must also be addressed to a name this server answers to
//! (an IP address, `localhost`, this machine's name, alone or under a LAN suffix
//! such as `.local` or `.fritz.box`, a proxy's `X-Forwarded-Host`, or the
//! configured dashboard URL): a page that points a name of its own at the Pi (DNS
//! rebinding) sends a matching `Origin` and `Host`, but not one of these names.
//!
//! Programs send neither header: Telegraf, curl, a NodeMCU, the influx CLI,
//! wmbusmeters' hook and Grafana's server-side proxy write as before, and `/write`
//! keeps taking `text/plain`. `/query` only reads (and a page elsewhere cannot
//! read the answer: there are no CORS headers), so it is left alone.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// What this server calls its own origins besides the `Host` of each request.
#[derive(Clone, Debug, Default)]
pub struct Own {
    /// `host[:port]` of the configured dashboard URL, lowercase.
    configured: Option<String>,
    /// This machine's name, lowercase.
    machine: Option<String>,
}

/// Suffixes under which home routers and mDNS name the machines of a LAN.
const LAN_SUFFIXES: [&str; 7] = [
    "local",
    "lan",
    "home",
    "home.arpa",
    "fritz.box",
    "internal",
    "localdomain",
];

impl Own {
    pub fn new(config: &crate::config::Config) -> Own {
        let configured = config.public_url().and_then(authority_of_url);
        let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty());
        Own {
            configured,
            machine,
        }
    }

    /// Whether a browser may address this server as `authority` (`host[:port]`).
    fn answers_to(&self, authority: &str) -> bool {
        if self.configured.as_deref() == Some(authority) {
            return true;
        }
        let host = host_part(authority);
        if host == "localhost" || host.parse::<std::net::IpAddr>().is_ok() {
            return true;
        }
        let Some(machine) = &self.machine else {
            return false;
        };
        host == machine
            || host
                .strip_prefix(machine.as_str())
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|suffix| LAN_SUFFIXES.contains(&suffix))
    }
}

/// The host of `host[:port]` (an IPv6 literal without its brackets).
fn host_part(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => authority,
    }
}

/// Why a request is refused.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    CrossSite(String),
    NotJson,
}

/// Refuses a state-changing request a browser sent from another site.
pub async fn guard(State(own): State<Own>, req: Request, next: Next) -> Response {
    match check(req.method(), req.uri().path(), req.headers(), &own) {
        Ok(()) => next.run(req).await,
        Err(refusal) => refuse(req.uri().path(), refusal),
    }
}

/// The rule itself (pure).
pub fn check(method: &Method, path: &str, headers: &HeaderMap, own: &Own) -> Result<(), Refusal> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) || path == "/query" {
        return Ok(());
    }
    let mut same_origin = false;
    if let Some(site) = text(headers, "sec-fetch-site") {
        if site.eq_ignore_ascii_case("cross-site") || site.eq_ignore_ascii_case("same-site") {
            return Err(Refusal::CrossSite(format!(
                "the browser says this request came from another site (Sec-Fetch-Site: {site})"
            )));
        }
        same_origin = site.eq_ignore_ascii_case("same-origin");
    }
    if let Some(origin) = text(headers, "origin") {
        // Pages sent with `Referrer-Policy: no-referrer` make the browser post its
        // forms with `Origin: null`; `Sec-Fetch-Site: same-origin` vouches for them.
        let from = match authority_of_url(origin) {
            None if same_origin && origin == "null" => {
                text(headers, "host").and_then(normal_authority)
            }
            from => from,
        };
        let ours = |a: &str| {
            [text(headers, "host"), text(headers, "x-forwarded-host")]
                .into_iter()
                .flatten()
                .filter_map(normal_authority)
                .chain(own.configured.clone())
                .any(|o| o == a)
        };
        if !from.as_deref().is_some_and(ours) {
            return Err(Refusal::CrossSite(format!(
                "the browser says this request came from {origin}, not from this dashboard"
            )));
        }
        let forwarded = text(headers, "x-forwarded-host").and_then(normal_authority);
        let host = text(headers, "host").and_then(normal_authority);
        if forwarded.is_none() && !host.as_deref().is_some_and(|h| own.answers_to(h)) {
            return Err(Refusal::CrossSite(format!(
                "the browser addressed this dashboard as {}, a name it does not answer to \
                 (a page pointing a name of its own at it)",
                host.as_deref().unwrap_or("nothing")
            )));
        }
    }
    Ok(())
}

/// JSON endpoints want `Content-Type: application/json` (415 otherwise). Runs
/// after the login check, so an anonymous request still learns only "401".
pub async fn json_guard(req: Request, next: Next) -> Response {
    match check_json(req.method(), req.uri().path(), req.headers()) {
        Ok(()) => next.run(req).await,
        Err(refusal) => refuse(req.uri().path(), refusal),
    }
}

/// The content-type rule (pure).
pub fn check_json(method: &Method, path: &str, headers: &HeaderMap) -> Result<(), Refusal> {
    let writes = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if writes && path.starts_with("/api/v1/") && !is_json(headers) {
        return Err(Refusal::NotJson);
    }
    Ok(())
}

fn refuse(path: &str, refusal: Refusal) -> Response {
    let (status, message) = match refusal {
        Refusal::CrossSite(why) => (
            StatusCode::FORBIDDEN,
            format!(
                "Refused: {why}. watermeter takes changes only from its own pages and from \
                 programs (which send no Origin); if you use it behind a proxy under another \
                 name, set that address as the dashboard URL."
            ),
        ),
        Refusal::NotJson => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON with the header Content-Type: application/json".to_string(),
        ),
    };
    tracing::warn!(path, status = status.as_u16(), "{message}");
    let api = path.starts_with("/api/") || path == "/write";
    if api {
        (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
    } else {
        let mut page = super::view::PageError::Forbidden(message).into_response();
        *page.status_mut() = status;
        page
    }
}

fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn is_json(headers: &HeaderMap) -> bool {
    text(headers, header::CONTENT_TYPE.as_str())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// `host[:port]` of a URL such as `http://pi.local:8080/path`, lowercase, the
/// scheme's default port left out. `None` for `null` and anything not a URL.
fn authority_of_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let default = match scheme.to_ascii_lowercase().as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    let a = authority.to_ascii_lowercase();
    Some(a.strip_suffix(default).map(str::to_string).unwrap_or(a))
}

/// A `Host` header the way [`authority_of_url`] writes one (default ports cannot
/// be told apart here, so both forms are kept by the caller's comparison).
fn normal_authority(host: &str) -> Option<String> {
    let a = host.to_ascii_lowercase();
    let a = a
        .strip_suffix(":80")
        .or_else(|| a.strip_suffix(":443"))
        .unwrap_or(&a)
        .to_string();
    (!a.is_empty()).then_some(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn own() -> Own {
        Own {
            configured: None,
            machine: Some("pi".into()),
        }
    }

    fn check_post(path: &str, pairs: &[(&str, &str)]) -> Result<(), Refusal> {
        check(&Method::POST, path, &headers(pairs), &own())
    }

    #[test]
    fn programs_without_origin_write_as_before() {
        assert_eq!(
            check_post("/write", &[("content-type", "text/plain")]),
            Ok(())
        );
        assert_eq!(check_post("/api/v2/write", &[]), Ok(()));
        let json = [("content-type", "application/json; charset=utf-8")];
        assert_eq!(check_post("/api/v1/ingest/wmbusmeters", &json), Ok(()));
        assert_eq!(check_post("/api/v1/away", &json), Ok(()));
    }

    #[test]
    fn a_page_of_another_site_cannot_write() {
        let evil = [
            ("host", "pi.local:8080"),
            ("origin", "http://evil.example"),
            ("content-type", "text/plain"),
        ];
        for path in [
            "/api/v1/meters/main/corrections",
            "/api/v1/away",
            "/write",
            "/settings/reading",
            "/login",
        ] {
            assert!(
                matches!(check_post(path, &evil), Err(Refusal::CrossSite(_))),
                "{path}"
            );
        }
        let fetch_meta = [("host", "pi.local:8080"), ("sec-fetch-site", "cross-site")];
        assert!(matches!(
            check_post("/alerts/delete", &fetch_meta),
            Err(Refusal::CrossSite(_))
        ));
        let sibling = [("sec-fetch-site", "same-site")];
        assert!(matches!(
            check_post("/away", &sibling),
            Err(Refusal::CrossSite(_))
        ));
        let sandboxed = [("host", "pi.local:8080"), ("origin", "null")];
        assert!(matches!(
            check_post("/away", &sandboxed),
            Err(Refusal::CrossSite(_))
        ));
    }

    #[test]
    fn the_dashboards_own_pages_and_reads_pass() {
        let same = [
            ("host", "pi.local:8080"),
            ("origin", "http://PI.local:8080"),
            ("sec-fetch-site", "same-origin"),
        ];
        assert_eq!(check_post("/settings/reading", &same), Ok(()));
        // What a browser sends for a form on a `Referrer-Policy: no-referrer` page.
        let no_referrer = [
            ("host", "pi.local:8080"),
            ("origin", "null"),
            ("sec-fetch-site", "same-origin"),
        ];
        assert_eq!(check_post("/settings/reading", &no_referrer), Ok(()));
        let rebound = [
            ("host", "rebind.evil.example:8080"),
            ("origin", "null"),
            ("sec-fetch-site", "same-origin"),
        ];
        assert!(check_post("/away", &rebound).is_err());
        let default_port = [("host", "pi.local"), ("origin", "https://pi.local:443")];
        assert_eq!(check_post("/away", &default_port), Ok(()));
        let proxied = [
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-host", "water.example.org"),
            ("origin", "https://water.example.org"),
        ];
        assert_eq!(check_post("/away", &proxied), Ok(()));
        let evil_get = headers(&[("origin", "http://evil.example")]);
        assert_eq!(check(&Method::GET, "/", &evil_get, &own()), Ok(()));
        for host in [
            "192.168.1.20:8080",
            "[fe80::1]:8080",
            "localhost:8080",
            "pi",
            "pi.fritz.box",
            "pi.home.arpa:8080",
        ] {
            let h = [("host", host), ("origin", &format!("http://{host}")[..])];
            assert_eq!(check_post("/away", &h), Ok(()), "{host}");
        }
        let evil = [
            ("origin", "http://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ];
        assert_eq!(check_post("/query", &evil), Ok(()), "reads only");
    }

    #[test]
    fn the_configured_dashboard_url_is_own_too() {
        let own = Own {
            configured: authority_of_url("https://water.example.org/"),
            machine: None,
        };
        let h = headers(&[
            ("host", "10.0.0.5:8080"),
            ("origin", "https://water.example.org"),
        ]);
        assert_eq!(check(&Method::POST, "/away", &h, &own), Ok(()));
    }

    #[test]
    fn a_name_pointed_at_the_pi_by_someone_else_cannot_write() {
        // DNS rebinding: the page's own name now resolves to the Pi.
        for host in ["evil.example:8080", "pi.evil.example:8080"] {
            let h = [("host", host), ("origin", &format!("http://{host}")[..])];
            assert!(
                matches!(check_post("/api/v1/away", &h), Err(Refusal::CrossSite(_))),
                "{host}"
            );
        }
    }

    #[test]
    fn json_endpoints_want_json() {
        let post = |path: &str, h: &[(&str, &str)]| check_json(&Method::POST, path, &headers(h));
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ] {
            let h = [("content-type", ct)];
            let refused = post("/api/v1/meters/main/corrections", &h);
            assert_eq!(refused, Err(Refusal::NotJson), "{ct}");
        }
        assert_eq!(post("/api/v1/away", &[]), Err(Refusal::NotJson));
        let json = [("content-type", "application/json; charset=utf-8")];
        assert_eq!(post("/api/v1/away", &json), Ok(()));
        assert_eq!(post("/write", &[("content-type", "text/plain")]), Ok(()));
        let get = check_json(&Method::GET, "/api/v1/away", &headers(&[]));
        assert_eq!(get, Ok(()));
    }
}
