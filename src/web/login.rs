//! `GET /login`, `POST /login` and `POST /logout`: the sign-in form and the
//! session cookie. The form carries the CSRF double-submit token (`csrf`); the
//! password check, its rate limit and the sessions are in `auth`.
//!
//! Without `[http.auth]` there is nothing to sign in to: both go to the dashboard.

use std::sync::Arc;

use askama_web::WebTemplate;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::assets::{self, Urls};
use super::auth::{self, Auth};
use super::csrf;

#[derive(askama::Template, WebTemplate)]
#[template(path = "login.html")]
struct LoginPage {
    assets: &'static Urls,
    token: &'static str,
    next: String,
    username: String,
    error: Option<String>,
}

/// The login routes, with their own state (the router's state is the app's).
pub fn routes<S>(auth: Arc<Auth>) -> Router<S> {
    Router::new()
        .route("/login", get(page).post(sign_in))
        .route("/logout", post(sign_out))
        .with_state(auth)
}

#[derive(Debug, Deserialize)]
struct PageParams {
    next: Option<String>,
}

async fn page(
    State(auth): State<Arc<Auth>>,
    headers: HeaderMap,
    Query(q): Query<PageParams>,
) -> Response {
    let next = safe_next(q.next.as_deref());
    let now = chrono::Utc::now().timestamp_millis();
    if !auth.enabled() || auth.has_session(&headers, now) {
        return Redirect::to(&next).into_response();
    }
    form(StatusCode::OK, next, String::new(), None)
}

#[derive(Deserialize)]
struct SignIn {
    username: String,
    password: String,
    csrf: Option<String>,
    next: Option<String>,
}

async fn sign_in(State(auth): State<Arc<Auth>>, req: Request) -> Response {
    let ip = auth::client_ip(&req);
    let headers = req.headers().clone();
    let Ok(Form(f)) = Form::<SignIn>::from_request(req, &()).await else {
        return form(
            StatusCode::BAD_REQUEST,
            "/".into(),
            String::new(),
            Some("The form was incomplete; type the username and the password.".into()),
        );
    };
    let next = safe_next(f.next.as_deref());
    if !auth.enabled() {
        return Redirect::to(&next).into_response();
    }
    if !csrf::verify(&headers, f.csrf.as_deref()) {
        let message = "The form had expired or did not come from this dashboard; sign in again.";
        return form(
            StatusCode::FORBIDDEN,
            next,
            f.username,
            Some(message.into()),
        );
    }
    let now = chrono::Utc::now().timestamp_millis();
    match auth.check_password(ip, &f.username, &f.password, now).await {
        Ok(true) => match auth.open_session(now) {
            Some(cookie) => {
                tracing::info!(client = %ip, "signed in");
                ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
            }
            None => form(
                StatusCode::INTERNAL_SERVER_ERROR,
                next,
                f.username,
                Some("The server could not start a session; the details are in its log.".into()),
            ),
        },
        Ok(false) => form(
            StatusCode::UNAUTHORIZED,
            next,
            f.username,
            Some("Wrong username or password.".into()),
        ),
        Err(wait) => {
            let message = format!("Too many wrong passwords; try again in {wait} seconds.");
            let mut res = form(
                StatusCode::TOO_MANY_REQUESTS,
                next,
                f.username,
                Some(message),
            );
            if let Ok(v) = wait.to_string().parse() {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            res
        }
    }
}

async fn sign_out(State(auth): State<Arc<Auth>>, headers: HeaderMap) -> Response {
    // No CSRF token needed: the session cookie is SameSite=Strict, so a forged
    // cross-site POST carries no session to end.
    let cookie = auth.close_session(&headers);
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}

fn form(status: StatusCode, next: String, username: String, error: Option<String>) -> Response {
    let page = LoginPage {
        assets: assets::urls(),
        token: csrf::token(),
        next,
        username,
        error,
    };
    (status, [(header::SET_COOKIE, csrf::set_cookie())], page).into_response()
}

/// Only a path on this site: `/…` but not `//host` or `/\host`, which browsers
/// treat as another site (an open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.contains(['\r', '\n']) =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(next: Option<&str>, expected: &str) {
        assert_eq!(safe_next(next), expected, "{next:?}");
    }

    #[test]
    fn next_stays_on_this_site() {
        check(Some("/meters/main?range=7d"), "/meters/main?range=7d");
        check(None, "/");
        check(Some("https://evil.example/"), "/");
        check(Some("//evil.example/"), "/");
        check(Some("/\\evil.example/"), "/");
        check(Some("/x\r\nSet-Cookie: a=b"), "/");
    }
}
