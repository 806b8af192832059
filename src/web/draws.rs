//! Draws on the wire and on a page: `GET /api/v1/meters/{id}/draws`, the owner's
//! relabel (`POST …/draws/{draw_id}/kind`, and the same from the draw log's form),
//! away mode (`POST /api/v1/away`), and the draw log page `/meters/{id}/draws`.
//! The work is `crate::draws`; this file reads and checks requests.

use askama::Template;
use askama_web::WebTemplate;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::view::Layout;
use super::view::PageError;
use super::view::PageForm;
use super::{csrf, ApiError, AppState};
use crate::buckets;
use crate::draws::{Draw, Kind, MAX_DAYS};

#[derive(Debug, Deserialize)]
pub struct RangeParams {
    from: Option<String>,
    to: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Listing {
    meter: String,
    draws: Vec<Draw>,
    /// Set when the range was longer than [`MAX_DAYS`]: ask again from here.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

fn time(key: &str, v: &str) -> Result<i64, ApiError> {
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            ApiError::BadRequest(format!(
                "\"{key}\" must be an RFC 3339 time such as 2026-11-26T00:00:00+01:00, not {v:?}"
            ))
        })
}

/// `GET /api/v1/meters/{id}/draws?from=&to=`: the draws that start in the range
/// (default: today). At most 31 days per answer; a longer range answers its first
/// 31 days with `next_from` to page on.
pub async fn list(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(p): Query<RangeParams>,
) -> Result<Json<Listing>, ApiError> {
    let (idx, _) = state
        .meter(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no meter with id '{id}' is configured")))?;
    let tz = state.config.timezone;
    let now = chrono::Utc::now().timestamp_millis();
    let today = buckets::local_day_number(tz, now);
    let day_start = |d: i64| buckets::date_of_day_number(d).map(|d| buckets::day_start(tz, d));
    let from = match p.from.as_deref() {
        Some(v) => time("from", v)?,
        None => day_start(today).unwrap_or(now),
    };
    let to = match p.to.as_deref() {
        Some(v) => time("to", v)?,
        None => now + 1,
    };
    if to <= from {
        return Err(ApiError::BadRequest("\"to\" must be after \"from\"".into()));
    }
    // Draws exist where events may: from 2000 (`clock::plausible`) to 2100.
    const LATEST_MS: i64 = 4_102_444_800_000;
    if from < crate::clock::EARLIEST_MS || to > LATEST_MS {
        return Err(ApiError::BadRequest(
            "\"from\" and \"to\" must lie between 2000-01-01 and 2100-01-01".into(),
        ));
    }
    let first_day = buckets::local_day_number(tz, from);
    let cap = day_start(first_day + MAX_DAYS).unwrap_or(to);
    let (end, next) = if to > cap {
        (cap, Some(cap))
    } else {
        (to, None)
    };
    // Already off the async workers, within the request's budget (`heavy`).
    let draws = state.draws.range(&state.store, tz, idx, from, end, now)?;
    let dense = state.draws.too_dense(
        idx,
        buckets::local_day_number(tz, from),
        buckets::local_day_number(tz, end - 1),
    );
    let mut notes = Vec::new();
    if !dense.is_empty() {
        notes.push(too_dense_note(&dense));
    }
    if next.is_some() {
        notes.push(format!("at most {MAX_DAYS} days of draws per request; ask again with from = next_from for the rest"));
    }
    Ok(Json(Listing {
        meter: id,
        draws,
        next_from: next.map(|t| crate::figures::rfc3339(tz, t)),
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    }))
}

/// Why days give no draws: more events than a household's day can hold.
pub fn too_dense_note(days: &[i64]) -> String {
    let names: Vec<String> = days
        .iter()
        .filter_map(|d| buckets::date_of_day_number(*d))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .collect();
    format!(
        "{} {} more than {} events (more than 20,000 L at 0.1 L per pulse), too dense to split \
         into draws; its liters are counted as usual",
        names.join(", "),
        if names.len() == 1 { "holds" } else { "hold" },
        crate::draws::MAX_EVENTS_PER_DAY
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KindBody {
    kind: String,
}

/// `POST /api/v1/meters/{id}/draws/{draw_id}/kind` with `{"kind": "dishwasher"}`.
pub async fn relabel(
    State(state): State<AppState>,
    Path((id, draw)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Draw>, ApiError> {
    let b: KindBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body must be JSON like {{\"kind\":\"dishwasher\"}} ({e})"
        ))
    })?;
    let kind = Kind::parse(&b.kind).map_err(ApiError::BadRequest)?;
    let (idx, _) = state
        .meter(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no meter with id '{id}' is configured")))?;
    let done = run_relabel(&state, idx, draw, kind).await?;
    done.map(Json).map_err(ApiError::BadRequest)
}

async fn run_relabel(
    state: &AppState,
    idx: crate::meter::MeterIdx,
    draw: String,
    kind: Kind,
) -> Result<Result<Draw, String>, ApiError> {
    let (store, book, tz) = (
        state.store.clone(),
        state.draws.clone(),
        state.config.timezone,
    );
    let now = chrono::Utc::now().timestamp_millis();
    let result =
        tokio::task::spawn_blocking(move || book.relabel(&store, tz, idx, &draw, kind, now))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))??;
    if let Ok(d) = &result {
        tracing::info!(
            draw = d.id,
            kind = kind.name(),
            "draw relabelled by the owner"
        );
    }
    Ok(result)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AwayBody {
    on: bool,
}

#[derive(Debug, Serialize)]
pub struct AwayState {
    on: bool,
    since: Option<String>,
}

/// `POST /api/v1/away` with `{"on": true}`; `GET` tells the state.
pub async fn set_away(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<AwayState>, ApiError> {
    let b: AwayBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!("the body must be JSON like {{\"on\":true}} ({e})"))
    })?;
    away(&state, b.on).await.map(Json)
}

pub async fn get_away(State(state): State<AppState>) -> Result<Json<AwayState>, ApiError> {
    let since = state.store.away_since()?;
    Ok(Json(AwayState {
        on: since.is_some(),
        since: since.map(|t| crate::figures::rfc3339(state.config.timezone, t)),
    }))
}

async fn away(state: &AppState, on: bool) -> Result<AwayState, ApiError> {
    let store = state.store.clone();
    let now = chrono::Utc::now().timestamp_millis();
    tokio::task::spawn_blocking(move || store.set_away(on, now))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    tracing::info!(on, "away mode switched");
    let since = state.store.away_since()?;
    Ok(AwayState {
        on,
        since: since.map(|t| crate::figures::rfc3339(state.config.timezone, t)),
    })
}

#[derive(Debug, Deserialize)]
pub struct AwayForm {
    on: String,
    csrf: Option<String>,
}

/// The dashboard's away switch (a form with a CSRF token).
pub async fn away_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(f): PageForm<AwayForm>,
) -> Result<Redirect, PageError> {
    csrf::require(&headers, f.csrf.as_deref(), "the dashboard")?;
    away(&state, f.on == "true")
        .await
        .map_err(|e| PageError::Internal(format!("switching away mode: {e:?}")))?;
    Ok(Redirect::to("/"))
}

/// One bar of "what used the water".
pub struct KindBar {
    pub kind: String,
    pub class: String,
    pub liters: String,
    /// Percent of the period's liters, for the bar's width.
    pub percent: f64,
    /// Where its piece of the stacked bar starts (percent).
    pub x: f64,
    pub color: &'static str,
}

/// One colour per kind, the same in the bar, the legend and the log.
fn color(k: Kind) -> &'static str {
    match k {
        Kind::Shower => "#1f77b4",
        Kind::Bath => "#17becf",
        Kind::Toilet => "#9467bd",
        Kind::WashingMachine => "#ff7f0e",
        Kind::Dishwasher => "#e6b800",
        Kind::Tap => "#2ca02c",
        Kind::Garden => "#8c564b",
        Kind::Leak => "#d62728",
        Kind::Other => "#7f7f7f",
    }
}

/// Liters by kind as bars, biggest first.
pub fn kind_bars(by_kind: &[(Kind, f64)]) -> Vec<KindBar> {
    let total: f64 = by_kind.iter().map(|(_, l)| l).sum();
    let mut x = 0.0;
    by_kind
        .iter()
        .map(|(k, l)| {
            let percent = if total > 0.0 {
                (l / total * 1000.0).round() / 10.0
            } else {
                0.0
            };
            let bar = KindBar {
                kind: k.words().to_string(),
                class: k.name().replace('_', "-"),
                liters: super::view::liters(*l),
                percent,
                x,
                color: color(*k),
            };
            x += percent;
            bar
        })
        .collect()
}

/// A row of the draw log.
pub struct LogRow {
    pub id: String,
    pub time: String,
    pub kind: String,
    pub kind_name: String,
    pub liters: String,
    pub minutes: String,
    pub flow: String,
    pub labelled: bool,
    pub sure: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "draws.html")]
pub struct DrawsPage {
    pub layout: Layout,
    pub meter_id: String,
    pub meter_name: String,
    pub day: String,
    pub day_words: String,
    pub prev: String,
    pub next: Option<String>,
    pub rows: Vec<LogRow>,
    pub day_bars: Vec<KindBar>,
    pub month_bars: Vec<KindBar>,
    pub kinds: Vec<(&'static str, &'static str)>,
    pub token: &'static str,
    pub relabelled: bool,
    /// While the home has less than two weeks of history: what that means.
    pub learning: Option<String>,
    /// Why the day has no draws although water ran: too many events.
    pub too_dense: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct DayParams {
    day: Option<String>,
    relabelled: Option<String>,
}

/// `/meters/{id}/draws?day=YYYY-MM-DD`: the draw log of a day, browsable.
pub async fn page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(p): Query<DayParams>,
) -> Result<Response, PageError> {
    let (idx, m) = state.meter(&id).ok_or_else(|| {
        PageError::NotFound(format!("No meter with the id '{id}' is configured."))
    })?;
    let tz = state.config.timezone;
    let now = chrono::Utc::now().timestamp_millis();
    let today = buckets::local_day_number(tz, now);
    let day = match p.day.as_deref() {
        Some(d) => {
            let date = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
                PageError::BadRequest(format!("'{d}' is not a day; use the form 2026-11-30."))
            })?;
            buckets::local_day_number(tz, buckets::day_start(tz, date))
        }
        None => today,
    }
    .min(today);
    // Already off the async workers, within the request's budget (`heavy`).
    let (store, book) = (&state.store, &state.draws);
    let draws = book.days(store, tz, idx, day, day, now)?;
    let before = book.days(store, tz, idx, day - 29, day - 1, now)?;
    let day_kinds = crate::draws::by_kind(&draws);
    let month_kinds = crate::draws::by_kind(before.iter().chain(&draws));
    let dense = book.too_dense(idx, day, day);
    let date_of = |d: i64| {
        buckets::date_of_day_number(d)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    let rows = draws
        .iter()
        .rev()
        .map(|d| {
            let at = chrono::DateTime::from_timestamp_millis(d.start_ms)
                .unwrap_or_default()
                .with_timezone(&tz);
            LogRow {
                id: d.id.clone(),
                time: at.format("%H:%M").to_string(),
                kind: d.kind.words().to_string(),
                kind_name: d.kind.name().to_string(),
                liters: super::view::liters(d.liters),
                minutes: crate::words::trim((d.end_ms - d.start_ms) as f64 / 60_000.0, 1),
                flow: crate::words::trim(d.mean_l_per_min, 1),
                labelled: d.labelled,
                sure: d.confidence >= 0.7,
            }
        })
        .collect();
    let day_words = buckets::date_of_day_number(day)
        .map(|d| d.format("%A %-d %B %Y").to_string())
        .unwrap_or_default();
    let page = DrawsPage {
        layout: Layout::new(
            &state,
            format!("{}: what used the water", m.name),
            id.clone(),
        ),
        meter_id: id,
        meter_name: m.name.clone(),
        day: date_of(day),
        day_words,
        prev: date_of(day - 1),
        next: (day < today).then(|| date_of(day + 1)),
        rows,
        day_bars: kind_bars(&day_kinds),
        month_bars: kind_bars(&month_kinds),
        kinds: Kind::ALL.iter().map(|k| (k.name(), k.words())).collect(),
        token: csrf::token(),
        relabelled: p.relabelled.is_some(),
        learning: learning(&state, idx, now),
        too_dense: (!dense.is_empty()).then(|| too_dense_note(&dense)),
    };
    Ok(([(header::SET_COOKIE, csrf::set_cookie())], page).into_response())
}

/// "Still learning" while the meter has less than two weeks of history.
fn learning(state: &AppState, idx: crate::meter::MeterIdx, now: i64) -> Option<String> {
    let first = state.store.first_event_ms(idx).ok()?;
    let days = first.map_or(0, |f| (now - f) / 86_400_000);
    (days < crate::draws::LEARNING_MS / 86_400_000).then(|| {
        format!(
            "Still learning this home: {days} day{} of history so far. The leak rule that compares with the past (a burst) starts after two weeks; the kinds get surer as draws accumulate.",
            if days == 1 { "" } else { "s" }
        )
    })
}

#[derive(Debug, Deserialize)]
pub struct RelabelForm {
    kind: String,
    day: String,
    csrf: Option<String>,
}

/// The draw log's "it was…" form.
pub async fn relabel_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, draw)): Path<(String, String)>,
    PageForm(f): PageForm<RelabelForm>,
) -> Result<Redirect, PageError> {
    csrf::require(&headers, f.csrf.as_deref(), "the draw log")?;
    let (idx, _) = state.meter(&id).ok_or_else(|| {
        PageError::NotFound(format!("No meter with the id '{id}' is configured."))
    })?;
    let kind = Kind::parse(&f.kind).map_err(PageError::BadRequest)?;
    run_relabel(&state, idx, draw, kind)
        .await
        .map_err(|e| PageError::Internal(format!("{e:?}")))?
        .map_err(PageError::BadRequest)?;
    let day = chrono::NaiveDate::parse_from_str(&f.day, "%Y-%m-%d")
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    Ok(Redirect::to(&format!(
        "/meters/{id}/draws?day={day}&relabelled=1"
    )))
}
