//! `GET /`: every meter at a glance (reading, today, this hour, flow, last pulse,
//! alerts) with its last 24 hours, 30 days and 12 months as bar charts.
//!
//! Rendered completely on the server; `static/live.js` only refreshes numbers.

use askama_web::WebTemplate;
use axum::extract::State;

use super::alert_view::{alert_views, AlertView};
use super::api::{rfc3339, snapshot};
use super::integrations::{self, Integrations};
use super::store_notice::{self, Banner};
use super::view::{overview_charts, Layout, MeterFigures, PageError};
use super::AppState;
use crate::ingest::MeterIdx;

#[derive(askama::Template, WebTemplate)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    layout: Layout,
    meters: Vec<MeterPanel>,
    /// A recent finding of unreadable journal records.
    store_notice: Option<Banner>,
    /// `[forward]`/`[mqtt]` status, when either is configured.
    integrations: Option<Integrations>,
}

pub struct MeterPanel {
    pub m: MeterFigures,
    pub alerts: Vec<AlertView>,
    /// Rendered `<svg>` charts: 24 h, 30 days, 12 months.
    pub charts: Vec<String>,
}

pub async fn page(State(state): State<AppState>) -> Result<DashboardPage, PageError> {
    let now = chrono::Utc::now().timestamp_millis();
    render(&state, now)
}

/// The page at `now_ms` (a plain function so benchmarks can call it).
pub fn render(state: &AppState, now_ms: i64) -> Result<DashboardPage, PageError> {
    let today = rfc3339(state, now_ms);
    let meters = state
        .config
        .meters
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let idx = i as MeterIdx;
            let snap = snapshot(state, idx, now_ms)?;
            Ok(MeterPanel {
                m: MeterFigures::new(&snap, &today).with_costs(
                    crate::figures::costs(&state.store, &state.config, idx, now_ms)
                        .map_err(|e| PageError::Internal(e.to_string()))?,
                ),
                alerts: alert_views(state, Some(&m.id)),
                charts: overview_charts(state, idx, &m.id, now_ms)?,
            })
        })
        .collect::<Result<_, PageError>>()?;
    Ok(DashboardPage {
        layout: Layout::new(state, "watermeter", "home"),
        meters,
        store_notice: store_notice::banner(state, now_ms),
        integrations: integrations::view(state),
    })
}
