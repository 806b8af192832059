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
    /// Future-dated data set aside in the last week.
    future_notice: Option<String>,
    /// Input refused in the last day (a mistyped measurement or tag): the
    /// dashboard would otherwise just say "no water used".
    refused_notice: Option<String>,
    /// `[forward]`/`[mqtt]` status, when either is configured.
    integrations: Option<Integrations>,
    /// The away switch's form token.
    token: &'static str,
}

pub struct MeterPanel {
    pub m: MeterFigures,
    pub alerts: Vec<AlertView>,
    /// Rendered `<svg>` charts: 24 h, 30 days, 12 months.
    pub charts: Vec<String>,
    /// What used the water: today and the last 30 days, by kind.
    pub today_kinds: Vec<super::draws::KindBar>,
    pub month_kinds: Vec<super::draws::KindBar>,
    /// Today, this week and this month against typical and earlier use.
    pub compare: Vec<CompareLine>,
    /// Liters per person per day beside the reference (with `persons`).
    pub per_person: Option<String>,
}

/// One comparison as the dashboard shows it.
pub struct CompareLine {
    pub what: &'static str,
    pub liters: String,
    pub words: String,
    /// `up`, `down` or `same`: the marker and its colour.
    pub direction: &'static str,
}

fn comparisons(
    state: &AppState,
    idx: MeterIdx,
    now_ms: i64,
) -> Result<(Vec<CompareLine>, Option<String>), PageError> {
    let internal = PageError::from;
    let tz = state.config.timezone;
    let lines = crate::compare::now(&state.store, tz, idx, now_ms)
        .map_err(internal)?
        .iter()
        .map(|c| CompareLine {
            what: c.what,
            liters: crate::words::liters(c.liters),
            words: c.words(),
            direction: c.direction(),
        })
        .collect();
    let persons = state
        .config
        .meters
        .get(usize::from(idx))
        .and_then(|m| m.persons);
    let per_person = match persons {
        Some(n) => crate::compare::per_person(&state.store, tz, idx, n, now_ms)
            .map_err(internal)?
            .map(|p| p.words()),
        None => None,
    };
    Ok((lines, per_person))
}

pub async fn page(State(state): State<AppState>) -> Result<axum::response::Response, PageError> {
    use axum::response::IntoResponse;
    let now = chrono::Utc::now().timestamp_millis();
    let page = render(&state, now)?;
    // The away switch is a form: it needs the CSRF cookie.
    Ok((
        [(axum::http::header::SET_COOKIE, super::csrf::set_cookie())],
        page,
    )
        .into_response())
}

/// What used the water today and over the last 30 days, as bars.
type KindBars = (Vec<super::draws::KindBar>, Vec<super::draws::KindBar>);

fn kinds(state: &AppState, idx: MeterIdx, now_ms: i64) -> Result<KindBars, PageError> {
    let tz = state.config.timezone;
    let today = crate::buckets::local_day_number(tz, now_ms);
    let read = |from, to| {
        state
            .draws
            .days(&state.store, tz, idx, from, to, now_ms)
            .map_err(PageError::from)
    };
    let (draws, before) = (read(today, today)?, read(today - 29, today - 1)?);
    let bars = |by_kind: Vec<_>| super::draws::kind_bars(&by_kind);
    Ok((
        bars(crate::draws::by_kind(&draws)),
        bars(crate::draws::by_kind(before.iter().chain(&draws))),
    ))
}

/// The last input refused in the last 24 hours, in words, with what to check.
fn refused_notice(state: &AppState, now_ms: i64) -> Option<String> {
    let (at, source, why) = state.stats.last_bad_since(now_ms - 24 * 3_600_000)?;
    Some(format!(
        "Refused at {} ({source}): {why}. Nothing of it was counted; check the sender's \
         measurement, tags and field against the meters in the config ({} refused in all \
         since the start, in /metrics).",
        crate::words::local_time(state.config.timezone, at),
        state
            .stats
            .rejected_by_reason()
            .iter()
            .map(|(_, n)| n)
            .sum::<u64>()
    ))
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
            let (today_kinds, month_kinds) = kinds(state, idx, now_ms)?;
            let (compare, per_person) = comparisons(state, idx, now_ms)?;
            Ok(MeterPanel {
                m: MeterFigures::new(&snap, &today).with_costs(
                    crate::figures::costs(&state.store, &state.config, idx, now_ms)
                        .map_err(PageError::from)?,
                ),
                alerts: alert_views(state, Some(&m.id)),
                charts: overview_charts(state, idx, &m.id, now_ms)?,
                today_kinds,
                month_kinds,
                compare,
                per_person,
            })
        })
        .collect::<Result<_, PageError>>()?;
    Ok(DashboardPage {
        layout: Layout::new(state, "watermeter", "home"),
        meters,
        store_notice: store_notice::banner(state, now_ms),
        future_notice: store_notice::future_banner(state, now_ms),
        refused_notice: refused_notice(state, now_ms),
        integrations: integrations::view(state),
        token: super::csrf::token(),
    })
}
