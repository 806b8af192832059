//! Login, sessions and machine tokens with `[http.auth]` on: every route of the
//! route table without a session, the rate limit, the cookie's flags, logout,
//! writes with the token or `u`/`p`, and the security headers on all of it.

use std::time::Duration;

use crate::util::App;

pub const USER: &str = "owner";
pub const PASSWORD: &str = "correct horse battery staple";
pub const TOKEN: &str = "tok-Zq3xV8e1RkN0wY5mUe7c";

/// A fresh argon2id hash of `PASSWORD` (as `watermeter hash-password` makes it).
pub fn password_hash() -> String {
    use argon2::{Argon2, PasswordHasher};
    Argon2::default()
        .hash_password_with_salt(PASSWORD.as_bytes(), b"e2e-salt-e2e-salt")
        .expect("hash")
        .to_string()
}

/// The `[http.auth]` table, with the token in a file under `dir`.
pub fn auth_table(dir: &std::path::Path) -> String {
    let token_file = dir.join("api-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("token file");
    format!(
        "[http.auth]\nusername = \"{USER}\"\npassword_hash = \"{}\"\napi_token_file = \"{}\"\n",
        password_hash(),
        token_file.display()
    )
}

/// An app with auth on (the `[http.auth]` table is appended to the config); the
/// temp dirs (the app's, the token file's) must outlive it.
fn start() -> (App, [tempfile::TempDir; 2]) {
    let secrets = tempfile::tempdir().expect("temp dir");
    let (app, tmp) = App::start("UTC", &auth_table(secrets.path()));
    (app, [tmp, secrets])
}

pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `name=value` of the `Set-Cookie` for `name`, with its attributes.
    pub fn set_cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.as_str())
            .find(|v| v.starts_with(&format!("{name}=")))
    }
}

/// One request without following redirects; `headers` are added as given.
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut res = agent
        .run(req.body(body.to_string()).expect("request"))
        .expect("http request");
    let headers = res
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    Reply {
        status: res.status().as_u16(),
        body: res.body_mut().read_to_string().unwrap_or_default(),
        headers,
    }
}

/// Signs in through the form; returns the reply to the POST.
pub fn sign_in(app: &App, password: &str) -> Reply {
    let page = request("GET", &app.url("/login?next=/settings"), &[], "");
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf_cookie = page.set_cookie("wm_csrf").expect("csrf cookie");
    let cookie = csrf_cookie.split(';').next().unwrap().to_string();
    let token = cookie.split_once('=').unwrap().1.to_string();
    assert!(page.body.contains(&token), "the form carries the token");
    let form = format!(
        "csrf={token}&next=%2Fsettings&username={USER}&password={}",
        password.replace(' ', "+")
    );
    request(
        "POST",
        &app.url("/login"),
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("cookie", &cookie),
        ],
        &form,
    )
}

/// The `wm_session=…` pair from a successful sign-in.
fn session(reply: &Reply) -> String {
    let set = reply.set_cookie("wm_session").expect("session cookie");
    set.split(';').next().unwrap().to_string()
}

/// Every route in `src/web/mod.rs`'s table, with a method it answers.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/meters/main"),
    ("GET", "/export.csv"),
    ("GET", "/events"),
    ("GET", "/settings"),
    ("GET", "/alerts"),
    ("POST", "/alerts"),
    ("POST", "/alerts/pause"),
    ("POST", "/alerts/delete"),
    ("POST", "/settings/reading"),
    ("POST", "/settings/corrections"),
    ("POST", "/settings/exchange"),
    ("POST", "/api/v1/ingest/wmbusmeters"),
    ("GET", "/api/v1/meters/main/corrections"),
    ("GET", "/meters/main/draws"),
    ("POST", "/meters/main/draws/x-1/kind"),
    ("POST", "/away"),
    ("GET", "/api/v1/meters/main/draws"),
    ("POST", "/api/v1/meters/main/draws/x-1/kind"),
    ("GET", "/api/v1/away"),
    ("POST", "/api/v1/away"),
    ("GET", "/static/app.css"),
    ("GET", "/favicon.ico"),
    ("POST", "/write"),
    ("POST", "/api/v2/write"),
    ("GET", "/ping"),
    ("GET", "/query"),
    ("GET", "/api/v1/meters"),
    ("GET", "/api/v1/meters/main"),
    ("GET", "/api/v1/meters/main/usage"),
    ("GET", "/api/v1/alerts"),
    ("GET", "/metrics"),
    ("GET", "/healthz"),
    ("GET", "/login"),
    ("POST", "/logout"),
    ("GET", "/no-such-page"),
];

/// What a request without a session gets, by path.
fn expected_without_session(path: &str) -> &'static str {
    match path {
        "/static/app.css" | "/favicon.ico" | "/ping" | "/healthz" | "/login" | "/logout" => "open",
        "/write" | "/api/v2/write" | "/query" | "/metrics" | "/export.csv" | "/events" => "401",
        p if p.starts_with("/api/") => "401",
        _ => "login",
    }
}

#[test]
fn the_test_covers_every_route_in_the_table() {
    let table = include_str!("../../src/web/mod.rs");
    for line in table.lines().map(str::trim) {
        // A route whose path rustfmt put on its own line starts with the path.
        let Some(rest) = line.strip_prefix(".route(\"").or_else(|| {
            line.strip_prefix('"')
                .filter(|r| r.starts_with('/') && line.ends_with("\","))
        }) else {
            continue;
        };
        let path = rest.split('"').next().unwrap();
        let sample = path
            .replace("{id}", "main")
            .replace("{file}", "app.css")
            .replace("{draw_id}", "x-1");
        assert!(
            ROUTES.iter().any(|(_, p)| *p == sample),
            "route {path} is not in ROUTES: add it with what it must answer without a session"
        );
    }
}

fn assert_security_headers(r: &Reply, what: &str) {
    let csp = r.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("frame-ancestors 'none'"),
        "{what}: CSP {csp:?}"
    );
    assert!(csp.contains("default-src 'self'"), "{what}: CSP {csp:?}");
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{what}");
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
}

#[test]
fn without_a_session_every_route_answers_401_or_sends_to_login() {
    let (app, _tmp) = start();
    for (method, path) in ROUTES {
        let r = request(method, &app.url(path), &[], "");
        let what = format!("{method} {path} → {} {}", r.status, r.body);
        match expected_without_session(path) {
            "401" => {
                assert_eq!(r.status, 401, "{what}");
                let json: serde_json::Value = serde_json::from_str(&r.body).expect("json");
                assert!(json["error"].as_str().is_some(), "{what}");
            }
            "login" => {
                assert_eq!(r.status, 303, "{what}");
                let to = r.header("location").unwrap_or_default();
                assert!(to.starts_with("/login?next=%2F"), "{what}: {to}");
            }
            _ => assert!(
                ![401, 303, 403].contains(&r.status) || *path == "/logout",
                "{what}"
            ),
        }
        assert_security_headers(&r, &what);
    }
}

#[test]
fn wrong_passwords_fail_and_then_are_rate_limited() {
    let (app, _tmp) = start();
    for i in 0..5 {
        let r = sign_in(&app, "wrong horse");
        assert_eq!(r.status, 401, "try {i}: {}", r.body);
        assert!(r.body.contains("Wrong username or password"), "{}", r.body);
        assert!(r.set_cookie("wm_session").is_none());
    }
    // Locked: even the right password waits, so the lock reveals nothing.
    let r = sign_in(&app, PASSWORD);
    assert_eq!(r.status, 429, "{}", r.body);
    let wait: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(r.set_cookie("wm_session").is_none());
    assert_security_headers(&r, "429 login page");
}

#[test]
fn login_opens_a_strict_cookie_session_and_logout_ends_it() {
    let (app, _tmp) = start();
    let r = sign_in(&app, PASSWORD);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/settings"));
    let set = r.set_cookie("wm_session").unwrap().to_string();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=2592000"] {
        assert!(set.contains(flag), "{flag} missing in {set}");
    }
    assert!(
        !set.contains("Secure"),
        "plain HTTP: no Secure flag ({set})"
    );
    let cookie = session(&r);
    let with = [("cookie", cookie.as_str())];
    for path in [
        "/",
        "/meters/main",
        "/settings",
        "/export.csv",
        "/api/v1/meters",
        "/metrics",
    ] {
        let r = request("GET", &app.url(path), &with, "");
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    // A signed-in visit to /login goes straight on.
    let r = request("GET", &app.url("/login?next=/meters/main"), &with, "");
    assert_eq!(
        (r.status, r.header("location")),
        (303, Some("/meters/main"))
    );

    let out = request("POST", &app.url("/logout"), &with, "");
    assert_eq!(out.status, 303);
    assert!(out.set_cookie("wm_session").unwrap().contains("Max-Age=0"));
    let r = request("GET", &app.url("/"), &with, "");
    assert_eq!(r.status, 303, "the old cookie no longer works");
    let r = request("GET", &app.url("/api/v1/meters"), &with, "");
    assert_eq!(r.status, 401);
}

#[test]
fn a_login_without_the_form_token_is_refused() {
    let (app, _tmp) = start();
    let form = format!("username={USER}&password={}", PASSWORD.replace(' ', "+"));
    let r = request(
        "POST",
        &app.url("/login"),
        &[("content-type", "application/x-www-form-urlencoded")],
        &form,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.set_cookie("wm_session").is_none());
}

#[test]
fn writes_need_the_token_or_the_login_and_count_exactly() {
    let (app, _tmp) = start();
    let line = "water,meter=main liters=1";
    let ok = |r: Reply, what: &str| assert_eq!(r.status, 204, "{what}: {}", r.body);
    let token_header = format!("Token {TOKEN}");
    let basic = format!("Basic {}", base64(&format!("{USER}:{PASSWORD}")));
    ok(
        request(
            "POST",
            &app.url("/api/v2/write?bucket=w"),
            &[("authorization", &token_header)],
            line,
        ),
        "v2 token",
    );
    ok(
        request(
            "POST",
            &app.url(&format!("/write?db=w&u=x&p={TOKEN}")),
            &[],
            line,
        ),
        "u/p token",
    );
    let p = PASSWORD.replace(' ', "%20");
    ok(
        request(
            "POST",
            &app.url(&format!("/write?db=w&u={USER}&p={p}")),
            &[],
            line,
        ),
        "u/p login",
    );
    ok(
        request(
            "POST",
            &app.url("/write?db=w"),
            &[("authorization", &basic)],
            line,
        ),
        "basic login",
    );
    for (url, headers) in [
        (app.url("/write?db=w"), vec![]),
        (app.url("/write?db=w&u=x&p=nope"), vec![]),
        (
            app.url("/api/v2/write?bucket=w"),
            vec![("authorization", "Token nope")],
        ),
    ] {
        let r = request("POST", &url, &headers, line);
        assert_eq!(r.status, 401, "{url}: {}", r.body);
    }
    let bearer = format!("Bearer {TOKEN}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = request(
            "GET",
            &app.url("/api/v1/meters/main"),
            &[("authorization", &bearer)],
            "",
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        if v["total_liters"].as_f64() == Some(4.0) || std::time::Instant::now() > deadline {
            assert_eq!(v["total_liters"].as_f64(), Some(4.0), "{v}");
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn base64(text: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
