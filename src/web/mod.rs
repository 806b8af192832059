//! The HTTP side: the route table, in one place, and the state the handlers share.
//!
//! One small file per page or API family; none of them opens the store directly,
//! they go through `AppState`.

mod api;
mod error;
pub mod limits;
mod status;
mod write;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use crate::config::Config;
use crate::ingest::points::Matcher;
use crate::ingest::stats::IngestStats;
use crate::store::writer::Writer;
use crate::store::Store;

pub use error::ApiError;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<Store>,
    pub writer: Writer,
    pub matcher: Arc<Matcher>,
    pub stats: Arc<IngestStats>,
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
    Router::new()
        .route("/", get(status::page))
        .route("/write", post(write::write_v1))
        .route("/api/v2/write", post(write::write_v2))
        .route("/ping", get(write::ping).head(write::ping))
        .route("/query", get(write::query).post(write::query))
        .route("/api/v1/meters", get(api::meters))
        .route("/api/v1/meters/{id}", get(api::meter))
        .route("/api/v1/meters/{id}/usage", get(api::usage))
        .route("/metrics", get(api::metrics))
        .route("/healthz", get(api::healthz))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            limits,
            limits::enforce,
        ))
        .with_state(state)
}
