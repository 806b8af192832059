//! The HTTP side: the route table, in one place, and the state the handlers share.
//!
//! One small file per page or API family; none of them opens the store directly,
//! they go through `AppState`.

mod alert_view;
mod alerts;
mod alerts_page;
mod api;
mod assets;
pub mod auth;
pub mod chart;
mod corrections;
mod csrf;
mod csv;
pub mod dashboard;
mod draws;
mod error;
mod headers;
mod heavy;
mod integrations;
pub mod limits;
mod live;
mod login;
pub mod meter_page;
mod metrics;
mod origin;
mod query;
mod session;
mod settings;
mod store_notice;
pub mod tls;
mod view;
pub mod wmbus;
mod write;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{middleware, Router};
use tokio::sync::watch;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

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
    /// The alerts: the config file's and the browser-made ones.
    pub rules: Arc<crate::alert::RuleSet>,
    /// The alert engine's latest evaluations (empty without alerts).
    pub alerts: Arc<crate::alert::engine::Live>,
    /// Changes after every batch the writer stored (drives the live updates).
    pub progress: watch::Receiver<Progress>,
    /// Turns true when the app shuts down (ends the live-update streams).
    pub shutdown: watch::Receiver<bool>,
    /// Draws computed from the events, kept per day (`crate::draws`).
    pub draws: Arc<crate::draws::DrawBook>,
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
    let origin = origin::Own::new(&state.config);
    let gate = heavy::Gate::new(heavy::Gate::slots(), limits.timeout, state.shutdown.clone());
    let router = Router::new()
        .merge(heavy_reads(gate))
        .merge(pages())
        .merge(login::routes(auth.clone()))
        .route("/static/{file}", get(assets::serve))
        .route("/favicon.ico", get(assets::favicon))
        .route("/write", post(write::write))
        .route("/api/v2/write", post(write::write))
        .route("/api/v1/ingest/wmbusmeters", post(wmbus::ingest))
        .route("/ping", get(write::ping).head(write::ping))
        .route(
            "/api/v1/meters/{id}/corrections",
            get(corrections::list).post(corrections::create),
        )
        .route(
            "/api/v1/meters/{id}/draws/{draw_id}/kind",
            post(draws::relabel),
        )
        .route("/api/v1/away", get(draws::get_away).post(draws::set_away))
        .route("/api/v1/alerts", get(alerts::list))
        .route("/metrics", get(metrics::handler))
        .route("/healthz", get(api::healthz))
        .fallback(not_found)
        // JSON endpoints want JSON: inside the login check (an anonymous
        // request learns only "401").
        .layer(middleware::from_fn(origin::json_guard))
        // Over every route and the fallback; `auth::access` says what each path needs.
        .layer(middleware::from_fn_with_state(auth, auth::guard))
        // Before the login: a write a browser sent from another site is refused
        // whoever is signed in (`origin`).
        .layer(middleware::from_fn_with_state(origin, origin::guard))
        // axum's own limit for extractors, set to the same size.
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        // A body announced larger than the limit gets 413 before the client has
        // sent it (so it is not cut off mid-upload); a body without a length is
        // cut at the limit. Inside the decompression: a gzip bomb stops there too.
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        // gzip-compressed writes, as InfluxDB takes them (Telegraf's default).
        .layer(RequestDecompressionLayer::new())
        // A request slower than the limit (slow upload, stuck store) gets 408. Only
        // until the response starts: the live-update stream stays open.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.timeout,
        ))
        .layer(middleware::map_response_with_state(limits, limits::explain))
        // gzip or br as the client accepts; not for the event stream, images or
        // tiny bodies (tower-http's default predicate).
        .layer(CompressionLayer::new());
    headers::add(router)
        .layer(CatchPanicLayer::custom(error::panicked))
        .layer(trace_layer())
        .with_state(state)
}

type ServerErrors =
    tower_http::classify::SharedClassifier<tower_http::classify::ServerErrorsAsFailures>;
type MakeSpan = fn(&axum::http::Request<axum::body::Body>) -> tracing::Span;

/// A request log at debug level: method, path (never the query, which may carry
/// InfluxDB-style credentials), status and latency; never headers or bodies.
fn trace_layer() -> TraceLayer<ServerErrors, MakeSpan> {
    fn span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
        tracing::debug_span!("http", method = %req.method(), path = %req.uri().path())
    }
    TraceLayer::new_for_http().make_span_with(span as fn(&_) -> _)
}

/// The routes that read much (pages, InfluxQL, usage, draws, CSV): off the async
/// workers, a few at once, each within a budget (`heavy`).
fn heavy_reads(gate: heavy::Gate) -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/meters/{id}", get(meter_page::page))
        .route("/meters/{id}/draws", get(draws::page))
        .route("/export.csv", get(csv::export))
        .route("/settings", get(settings::page))
        .route("/query", get(query::query).post(query::query))
        .route("/api/v1/meters", get(api::meters))
        .route("/api/v1/meters/{id}", get(api::meter))
        .route("/api/v1/meters/{id}/usage", get(api::usage))
        .route("/api/v1/meters/{id}/draws", get(draws::list))
        .route_layer(middleware::from_fn_with_state(gate, heavy::limit))
}

/// The dashboard's pages, its live stream, its export and its forms. When login
/// is configured, `auth::guard` (over the whole table) asks for a session.
fn pages() -> Router<AppState> {
    Router::new()
        .route(
            "/meters/{id}/draws/{draw_id}/kind",
            post(draws::relabel_form),
        )
        .route("/away", post(draws::away_form))
        .route("/events", get(live::events))
        .route("/alerts", get(alerts_page::page).post(alerts_page::save))
        .route("/alerts/pause", post(alerts_page::pause))
        .route("/alerts/delete", post(alerts_page::delete))
        .route("/settings/reading", post(settings::set_reading))
        .route("/settings/corrections", post(settings::correct))
        .route("/settings/exchange", post(settings::exchange))
}
