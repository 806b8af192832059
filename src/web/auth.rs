//! Who may use what, when `[http.auth]` is configured: one middleware (`guard`)
//! over the whole route table, and the checks it and the login form share.
//!
//! - Open to anyone: the login page, static assets, `/ping`, `/healthz`.
//! - Machine routes (`/write`, `/api/…`, `/query`, `/metrics`, `/export.csv`,
//!   `/events`): a session cookie, or the `api_token` (`Authorization: Token …` or
//!   `Bearer …`, InfluxDB 1.x `u`/`p` query parameters, or Basic auth), or the
//!   login's username and password through `u`/`p` or Basic. Else 401 JSON.
//! - Everything else is a page: a session, else 303 to `/login?next=…`. New
//!   routes are pages unless listed here, so they are never open by accident.
//!
//! Without `[http.auth]` everything is open (the config allows that only on
//! localhost, or with `allow_unauthenticated_lan = true`). The login form itself
//! is in `login`; the session and rate-limit bookkeeping in `session`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;

use super::csrf::{cookie, same};
use super::session::{LoginLimiter, Sessions};
use crate::config::{AuthConfig, Config, HttpConfig};

pub const SESSION_COOKIE: &str = "wm_session";

/// The login, the open sessions and the failed-login counters.
pub struct Auth {
    /// `None`: no `[http.auth]`, everything is open.
    login: Option<AuthConfig>,
    /// Cookies get `Secure` when the dashboard is served over HTTPS.
    secure_cookie: bool,
    sessions: Mutex<Sessions>,
    limiter: Mutex<LoginLimiter>,
    /// One argon2 check at a time: each takes ~19 MiB, and a Pi has little.
    verifying: tokio::sync::Semaphore,
    /// The last password that passed argon2 on a machine route, so a device that
    /// writes every few seconds with `u`/`p` does not cost a hash each time.
    machine_password: Mutex<Option<String>>,
}

/// What a request needs, by path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Open,
    Machine,
    Page,
}

/// The client's address, from the connection (`axum::serve` with connect info).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

pub fn access(path: &str) -> Access {
    const OPEN: &[&str] = &["/login", "/logout", "/favicon.ico", "/ping", "/healthz"];
    const MACHINE: &[&str] = &["/write", "/query", "/metrics", "/export.csv", "/events"];
    if OPEN.contains(&path) || path.starts_with("/static/") {
        Access::Open
    } else if MACHINE.contains(&path) || path.starts_with("/api/") {
        Access::Machine
    } else {
        Access::Page
    }
}

/// Refuses an open dashboard on the network unless the config says so in so many
/// words, and then returns the warning to log at start. (The config loader has
/// the same rule; this also covers configs built in code, such as the demo's.)
pub fn bind_rule(http: &HttpConfig) -> Result<Option<String>, String> {
    if http.auth.is_some() || http.listen.ip().is_loopback() {
        return Ok(None);
    }
    if http.allow_unauthenticated_lan {
        Ok(Some(format!(
            "the dashboard on {} has no login (allow_unauthenticated_lan = true): anyone on the network can read the history and send data; add [http.auth] to require one",
            http.listen
        )))
    } else {
        Err(format!(
            "refusing to serve {} without a login: add [http.auth] (see `watermeter hash-password`), listen on 127.0.0.1, or set allow_unauthenticated_lan = true under [http]",
            http.listen
        ))
    }
}

impl Auth {
    pub fn new(config: &Config) -> Arc<Auth> {
        Arc::new(Auth {
            login: config.http.auth.clone(),
            secure_cookie: config.http.tls.is_some(),
            sessions: Mutex::default(),
            limiter: Mutex::default(),
            verifying: tokio::sync::Semaphore::new(1),
            machine_password: Mutex::default(),
        })
    }

    pub fn enabled(&self) -> bool {
        self.login.is_some()
    }

    /// Whether the request carries an open session (and slides it on).
    pub fn has_session(&self, headers: &HeaderMap, now: i64) -> bool {
        let (Some(login), Some(token)) = (&self.login, cookie(headers, SESSION_COOKIE)) else {
            return false;
        };
        lock(&self.sessions).touch(token, now, ttl_ms(login))
    }

    /// Opens a session; returns its `Set-Cookie` value.
    pub fn open_session(&self, now: i64) -> Option<String> {
        let login = self.login.as_ref()?;
        let token = random_hex(32)?;
        lock(&self.sessions).open(token.clone(), now, ttl_ms(login));
        let secure = if self.secure_cookie { "; Secure" } else { "" };
        Some(format!(
            "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            ttl_ms(login) / 1000
        ))
    }

    /// Ends the session the request carries; returns the `Set-Cookie` that clears it.
    pub fn close_session(&self, headers: &HeaderMap) -> String {
        if let Some(token) = cookie(headers, SESSION_COOKIE) {
            lock(&self.sessions).close(token);
        }
        let secure = if self.secure_cookie { "; Secure" } else { "" };
        format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
    }

    /// Checks a username and password against the config, rate-limited per client:
    /// `Err(seconds)` when the client must wait first. Wrong answers are counted.
    pub async fn check_password(
        &self,
        ip: IpAddr,
        username: &str,
        password: &str,
        now: i64,
    ) -> Result<bool, u64> {
        let Some(login) = &self.login else {
            return Ok(false);
        };
        lock(&self.limiter).check(ip, now)?;
        let ok = same(username, &login.username) && self.verify(password, login).await;
        let mut limiter = lock(&self.limiter);
        if ok {
            limiter.succeeded(ip);
        } else {
            tracing::warn!(client = %ip, "a login failed (wrong username or password)");
            limiter.failed(ip, now);
        }
        Ok(ok)
    }

    async fn verify(&self, password: &str, login: &AuthConfig) -> bool {
        let Ok(_permit) = self.verifying.acquire().await else {
            return false;
        };
        let (password, hash) = (password.to_string(), login.password_hash.clone());
        tokio::task::spawn_blocking(move || crate::password::verify(&password, &hash))
            .await
            .unwrap_or(false)
    }

    /// The credentials a machine route accepts besides a session.
    async fn machine_allowed(
        &self,
        cred: Option<Credential>,
        ip: IpAddr,
        now: i64,
    ) -> Result<bool, u64> {
        let Some(login) = &self.login else {
            return Ok(true);
        };
        let Some(cred) = cred else {
            return Ok(false);
        };
        let token_ok = |t: &str| login.api_token.as_deref().is_some_and(|k| same(t, k));
        match cred {
            Credential::Token(t) => Ok(token_ok(&t)),
            Credential::UserPassword(_, p) if token_ok(&p) => Ok(true),
            Credential::UserPassword(u, p) => {
                let cached = lock(&self.machine_password)
                    .as_deref()
                    .is_some_and(|known| same(known, &p));
                if cached && same(&u, &login.username) {
                    return Ok(true);
                }
                let ok = self.check_password(ip, &u, &p, now).await?;
                if ok {
                    *lock(&self.machine_password) = Some(p);
                }
                Ok(ok)
            }
        }
    }
}

/// The middleware: lets a request through or answers 401/303/429 (see the module docs).
pub async fn guard(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    if !auth.enabled() {
        return next.run(req).await;
    }
    let kind = access(req.uri().path());
    let now = chrono::Utc::now().timestamp_millis();
    if kind == Access::Open || auth.has_session(req.headers(), now) {
        return next.run(req).await;
    }
    if kind == Access::Page {
        let target = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        return Redirect::to(&format!("/login?next={}", encode(&target))).into_response();
    }
    let cred = machine_credentials(req.headers(), req.uri().query());
    match auth.machine_allowed(cred, client_ip(&req), now).await {
        Ok(true) => next.run(req).await,
        Ok(false) => unauthorized(),
        Err(wait) => too_many(wait),
    }
}

/// The client's IP from the connection; unspecified when served without connect info.
pub fn client_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<ClientAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0 .0.ip())
}

fn unauthorized() -> Response {
    let body = Json(serde_json::json!({
        "error": "authorization failed: sign in on /login, or send the API token (Authorization: Token …, or u/p parameters)"
    }));
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Token realm=\"watermeter\"")],
        body,
    )
        .into_response()
}

pub fn too_many(wait_s: u64) -> Response {
    let body = Json(serde_json::json!({
        "error": format!("too many failed logins; try again in {wait_s} s")
    }));
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, wait_s.to_string())],
        body,
    )
        .into_response()
}

enum Credential {
    Token(String),
    UserPassword(String, String),
}

/// `Authorization: Token|Bearer …`, `Authorization: Basic …`, or `?u=…&p=…`.
fn machine_credentials(headers: &HeaderMap, query: Option<&str>) -> Option<Credential> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let (scheme, rest) = value.trim().split_once(' ')?;
        let rest = rest.trim();
        return match scheme.to_ascii_lowercase().as_str() {
            "token" | "bearer" => Some(Credential::Token(rest.to_string())),
            "basic" => {
                let decoded = base64_decode(rest)?;
                let text = String::from_utf8(decoded).ok()?;
                let (u, p) = text.split_once(':')?;
                Some(Credential::UserPassword(u.to_string(), p.to_string()))
            }
            _ => None,
        };
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query?).ok()?;
    let find = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    Some(Credential::UserPassword(
        find("u").unwrap_or_default(),
        find("p")?,
    ))
}

fn ttl_ms(login: &AuthConfig) -> i64 {
    i64::from(login.session_days) * 86_400_000
}

/// `n` random bytes from the kernel as hex; `None` (no session) if there are none.
fn random_hex(n: usize) -> Option<String> {
    let mut bytes = vec![0u8; n];
    if let Err(e) = getrandom::fill(&mut bytes) {
        tracing::error!("the kernel gave no random bytes for a session ({e}); nobody can sign in");
        return None;
    }
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Percent-encodes a path for the `next` parameter.
pub fn encode(text: &str) -> String {
    serde_urlencoded::to_string([("", text)])
        .map(|s| s.trim_start_matches('=').to_string())
        .unwrap_or_default()
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    // Clients send padded and unpadded credentials alike.
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine.decode(text.trim()).ok()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_access(path: &str, expected: Access) {
        assert_eq!(access(path), expected, "{path}");
    }

    #[test]
    fn routes_are_pages_unless_listed_as_open_or_machine() {
        for p in [
            "/login",
            "/logout",
            "/static/app.css",
            "/ping",
            "/healthz",
            "/favicon.ico",
        ] {
            check_access(p, Access::Open);
        }
        for p in [
            "/write",
            "/api/v2/write",
            "/api/v1/meters",
            "/query",
            "/metrics",
            "/export.csv",
            "/events",
        ] {
            check_access(p, Access::Machine);
        }
        for p in [
            "/",
            "/meters/main",
            "/settings",
            "/settings/reading",
            "/new-page",
            "/login/x",
            "/static",
        ] {
            check_access(p, Access::Page);
        }
    }

    fn creds(auth: Option<&str>, query: Option<&str>) -> Option<(String, String)> {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(header::AUTHORIZATION, a.parse().unwrap());
        }
        machine_credentials(&h, query).map(|c| match c {
            Credential::Token(t) => ("token".into(), t),
            Credential::UserPassword(u, p) => (u, p),
        })
    }

    #[test]
    fn machine_credentials_come_from_the_header_or_u_and_p() {
        let pair = |a: &str, b: &str| Some((a.to_string(), b.to_string()));
        assert_eq!(creds(Some("Token abc"), None), pair("token", "abc"));
        assert_eq!(creds(Some("Bearer abc"), None), pair("token", "abc"));
        // "me:s3cr:et" in base64: the password may contain a colon.
        assert_eq!(
            creds(Some("Basic bWU6czNjcjpldA=="), None),
            pair("me", "s3cr:et")
        );
        assert_eq!(
            creds(None, Some("db=water&u=me&p=a%26b")),
            pair("me", "a&b")
        );
        assert_eq!(creds(None, Some("db=water&p=tok")), pair("", "tok"));
        assert_eq!(creds(None, Some("db=water&u=me")), None);
        assert_eq!(creds(Some("Digest x"), Some("p=tok")), None);
        assert_eq!(creds(Some("Basic !!!"), None), None);
    }

    fn http(listen: &str, auth: bool, allow: bool) -> HttpConfig {
        HttpConfig {
            listen: listen.parse().unwrap(),
            auth: auth.then(|| AuthConfig {
                username: "me".into(),
                password_hash: String::new(),
                session_days: 1,
                api_token: None,
            }),
            allow_unauthenticated_lan: allow,
            tls: None,
            ..HttpConfig::default()
        }
    }

    #[test]
    fn an_open_dashboard_on_the_network_needs_the_opt_out_and_then_warns() {
        assert_eq!(bind_rule(&http("127.0.0.1:8080", false, false)), Ok(None));
        assert_eq!(bind_rule(&http("[::1]:8080", false, false)), Ok(None));
        assert_eq!(bind_rule(&http("0.0.0.0:8080", true, false)), Ok(None));
        let refused = bind_rule(&http("0.0.0.0:8080", false, false)).unwrap_err();
        assert!(
            refused.contains("allow_unauthenticated_lan = true"),
            "{refused}"
        );
        let warning = bind_rule(&http("192.168.1.5:8080", false, true))
            .unwrap()
            .unwrap();
        assert!(warning.contains("has no login"), "{warning}");
    }

    #[test]
    fn argon2id_hashes_verify_only_the_right_password() {
        use argon2::{Argon2, PasswordHasher};
        let phc = Argon2::default()
            .hash_password_with_salt(b"correct horse", b"somesaltsomesalt")
            .unwrap()
            .to_string();
        let phc = phc.as_str();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(crate::password::verify("correct horse", phc));
        assert!(!crate::password::verify("wrong horse", phc));
        assert!(!crate::password::verify(
            "correct horse",
            "$argon2id$garbage"
        ));
    }

    #[test]
    fn next_paths_are_percent_encoded() {
        assert_eq!(
            encode("/meters/main?range=7d&x=1"),
            "%2Fmeters%2Fmain%3Frange%3D7d%26x%3D1"
        );
    }
}
