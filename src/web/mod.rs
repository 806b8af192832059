//! The HTTP side: the route table, in one place, and the state the handlers share.
//!
//! One small file per page or API family; none of them opens the store directly,
//! they go through `AppState`.

mod alert_view;
mod alerts;
mod api;
mod assets;
pub mod auth;
pub mod chart;
mod csrf;
mod csv;
pub mod dashboard;
mod error;
mod headers;
mod integrations;
pub mod limits;
mod live;
mod login;
pub mod meter_page;
mod metrics;
mod session;
mod settings;
mod store_notice;
pub mod tls;
mod view;
mod write;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{middleware, Router};
use tokio::sync::watch;

use crate::config::Config;
use crate::ingest::points::Matcher;
use crate::ingest::stats::IngestStats;
use crate::store::writer::{Progress, Writer};
use crate::store::Store;

pub use api::{snapshot, MeterSnapshot};

/// Any other path: the styled page a browser shows for a missing meter too, or
/// the API's JSON error for API and InfluxDB clients.
async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = uri.path();
    let machine = ["/api/", "/write", "/query", "/ping", "/metrics", "/healthz"];
    if machine.iter().any(|p| path.starts_with(p)) {
        ApiError::NotFound(format!("there is no endpoint {path}")).into_response()
    } else {
        view::PageError::NotFound(format!("There is no page at {path}.")).into_response()
    }
}
pub use error::ApiError;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<Store>,
    pub writer: Writer,
    pub matcher: Arc<Matcher>,
    pub stats: Arc<IngestStats>,
    pub forward: Arc<crate::forward::Status>,
    pub mqtt: Arc<crate::mqtt::Status>,
    /// The alert engine's latest evaluations (empty without alerts).
    pub alerts: Arc<crate::alert::engine::Live>,
    /// Changes after every batch the writer stored (drives the live updates).
    pub progress: watch::Receiver<Progress>,
    /// Turns true when the app shuts down (ends the live-update streams).
    pub shutdown: watch::Receiver<bool>,
}

impl AppState {
    /// The configured meter with this id, and its index.
    pub fn meter(
        &self,
        id: &str,
    ) -> Option<(crate::ingest::MeterIdx, &crate::config::MeterConfig)> {
        let i = self.config.meters.iter().position(|m| m.id == id)?;
        Some((i as crate::ingest::MeterIdx, &self.config.meters[i]))
    }
}

pub fn router(state: AppState) -> Router {
    let http = &state.config.http;
    let limits = limits::RequestLimits {
        max_body_bytes: http.max_body_bytes,
        timeout: http.request_timeout,
    };
    let auth = auth::Auth::new(&state.config);
    Router::new()
        .merge(pages())
        .merge(login::routes(auth.clone()))
        .route("/static/{file}", get(assets::serve))
        .route("/favicon.ico", get(assets::favicon))
        .route("/write", post(write::write))
        .route("/api/v2/write", post(write::write))
        .route("/ping", get(write::ping).head(write::ping))
        .route("/query", get(write::query).post(write::query))
        .route("/api/v1/meters", get(api::meters))
        .route("/api/v1/meters/{id}", get(api::meter))
        .route("/api/v1/meters/{id}/usage", get(api::usage))
        .route("/api/v1/alerts", get(alerts::list))
        .route("/metrics", get(api::metrics))
        .route("/healthz", get(api::healthz))
        .fallback(not_found)
        // Over every route and the fallback; `auth::access` says what each path needs.
        .layer(middleware::from_fn_with_state(auth, auth::guard))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            limits,
            limits::enforce,
        ))
        .layer(middleware::map_response(headers::secure))
        .with_state(state)
}

/// The dashboard's pages, its live stream, its export and its forms. When login
/// is configured, `auth::guard` (over the whole table) asks for a session.
fn pages() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/meters/{id}", get(meter_page::page))
        .route("/export.csv", get(csv::export))
        .route("/events", get(live::events))
        .route("/settings", get(settings::page))
        .route("/settings/reading", post(settings::set_reading))
}
