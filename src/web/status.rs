//! `GET /`: the plain status page (meter, reading, today's liters).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use super::api::{snapshot, MeterSnapshot};
use super::{ApiError, AppState};

#[derive(Template, WebTemplate)]
#[template(path = "status.html")]
pub struct StatusPage {
    meters: Vec<MeterSnapshot>,
}

pub async fn page(State(state): State<AppState>) -> Result<StatusPage, ApiError> {
    let now = chrono::Utc::now().timestamp_millis();
    let meters = (0..state.config.meters.len())
        .map(|i| snapshot(&state, i as crate::ingest::MeterIdx, now))
        .collect::<Result<_, _>>()?;
    Ok(StatusPage { meters })
}
