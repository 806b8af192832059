//! What the HTML pages share: the layout's fields, a meter's figures formatted for
//! people (the live script formats the same way), the chart sets and the HTML
//! error page. No IO here beyond the store reads that `charts_for` makes.

use askama::Template;
use askama_web::WebTemplate;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono_tz::Tz;

use super::api::MeterSnapshot;
use super::assets::{self, Urls};
use super::chart::{self, Chart, Live};
use super::AppState;
use crate::buckets::{self, Step};
use crate::ingest::MeterIdx;

/// The base layout's fields (`templates/base.html`).
pub struct Layout {
    pub title: String,
    pub assets: &'static Urls,
    /// Which nav entry is the current page: "home", a meter id, or "settings".
    pub nav: String,
    pub meters: Vec<(String, String)>,
    /// Show the sign-out button (`[http.auth]` is configured).
    pub signed_in: bool,
    /// Alerts firing now, as the banner on top of every page names them
    /// (name, rule in words, meter id).
    pub firing: Vec<(String, String, String)>,
    /// Away mode is on.
    pub away: bool,
}

impl Layout {
    pub fn new(state: &AppState, title: impl Into<String>, nav: impl Into<String>) -> Layout {
        Layout {
            title: title.into(),
            assets: assets::urls(),
            nav: nav.into(),
            meters: state
                .config
                .meters
                .iter()
                .map(|m| (m.id.clone(), m.name.clone()))
                .collect(),
            signed_in: state.config.http.auth.is_some(),
            firing: state
                .rules
                .active()
                .iter()
                .filter_map(|r| {
                    let now = state.alerts.state(&r.name).filter(|s| s.is_firing())?;
                    // What was found ("Drip since Wed 12:00, …"), else what the rule watches.
                    let words = now.finding.unwrap_or_else(|| r.kind.describe());
                    Some((r.name.clone(), words, r.meter.clone()))
                })
                .collect(),
            away: state.store.away_since().ok().flatten().is_some(),
        }
    }
}

/// A meter's figures as shown; `static/live.js` formats pushes identically.
pub struct MeterFigures {
    pub id: String,
    pub name: String,
    pub reading: String,
    pub today: String,
    pub this_hour: String,
    pub flow: String,
    pub flowing: bool,
    pub last_pulse: String,
    /// RFC 3339 in the configured zone, for `<time datetime>`; empty if never.
    pub last_pulse_iso: String,
    /// With a `[tariff]`: "today 1.80 EUR · this month 12.40 EUR · this year 230.10 EUR".
    pub cost: Option<String>,
}

impl MeterFigures {
    pub fn new(s: &MeterSnapshot, today_iso: &str) -> MeterFigures {
        let last = s.last_event.clone().unwrap_or_default();
        MeterFigures {
            id: s.id.clone(),
            name: s.name.clone(),
            reading: format!("{:.3}", s.reading_m3),
            today: liters(s.today_liters),
            this_hour: liters(s.this_hour_liters),
            flow: chart::trim(s.flow_l_per_min, 1),
            flowing: s.flow_l_per_min > 0.0,
            last_pulse: when(&last, today_iso),
            last_pulse_iso: last,
            cost: None,
        }
    }

    /// The same with the costs of today, this month and this year, if there is a tariff.
    pub fn with_costs(mut self, c: Option<crate::figures::Costs>) -> MeterFigures {
        self.cost = c.map(|c| {
            let m = |x: f64| format!("{x:.2} {}", c.currency);
            format!(
                "today {} · this month {} · this year {}",
                m(c.today),
                m(c.month),
                m(c.year)
            )
        });
        self
    }
}

/// The engine's ignored values in words, or `None` when there were none. Pure.
pub fn misreads_words(ignored: [(&str, u64); 3], reanchored: u64) -> Option<String> {
    let n: u64 = ignored.iter().map(|(_, n)| n).sum();
    if n == 0 && reanchored == 0 {
        return None;
    }
    let parts: Vec<String> = ignored
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(why, n)| {
            let what = match *why {
                "decrease" => "below the meter's reading",
                "jump" => "rising faster than the pipe can deliver",
                _ => "stale or repeated",
            };
            format!("{n} {what}")
        })
        .collect();
    let mut text = format!(
        "{n} value{} ignored as misreads since the start",
        if n == 1 { "" } else { "s" }
    );
    if !parts.is_empty() {
        text.push_str(&format!(" ({})", parts.join(", ")));
    }
    if reanchored > 0 {
        text.push_str(&format!(
            "; {reanchored} time{} several readings agreed on a lower value and the reading moved down to them",
            if reanchored == 1 { "" } else { "s" }
        ));
    }
    Some(text + ".")
}

/// Liters without the unit: "0", "2.5", "1,234".
pub fn liters(l: f64) -> String {
    let s = chart::liters_label(l);
    s.trim_end_matches(" L").to_string()
}

/// A local RFC 3339 time as "14:03:27" today, "29 Mar 14:03" before (read from
/// the text, which is already in the configured zone, as the script does).
pub fn when(iso: &str, today_iso: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (Some(day), Some(hms), Some(hm)) = (iso.get(..10), iso.get(11..19), iso.get(11..16)) else {
        return "never".to_string();
    };
    if today_iso.get(..10) == Some(day) {
        return hms.to_string();
    }
    let month = iso.get(5..7).and_then(|m| m.parse::<usize>().ok());
    let dom = iso.get(8..10).and_then(|d| d.parse::<u32>().ok());
    match (month.and_then(|m| MONTHS.get(m.wrapping_sub(1))), dom) {
        (Some(mon), Some(d)) => format!("{d} {mon} {hm}"),
        _ => "never".to_string(),
    }
}

/// What to chart: `step` buckets covering `[from, to)`, keeping the newest
/// `keep_last` (the widened ends of a rolling window can add one at the start).
pub struct ChartSpec<'a> {
    pub id: String,
    pub title: &'a str,
    pub x_axis: &'a str,
    pub step: Step,
    pub from: i64,
    pub to: i64,
    pub keep_last: Option<usize>,
    pub live: Option<Live>,
}

/// The dashboard's three charts of one meter around `now_ms`: 24 h by hour,
/// 30 days by day, 12 months by month, rendered to SVG.
pub fn overview_charts(
    state: &AppState,
    idx: MeterIdx,
    id: &str,
    now_ms: i64,
) -> Result<Vec<String>, PageError> {
    let tz = state.config.timezone;
    let end_of = |step| buckets::next_boundary(tz, step, buckets::bucket_start(tz, step, now_ms));
    let (hour_end, day_end, month_end) =
        (end_of(Step::Hour), end_of(Step::Day), end_of(Step::Month));
    const H: i64 = 3_600_000;
    let specs = [
        // Each `from` lies inside the oldest bucket wanted, away from its edges.
        (
            "h",
            "Last 24 hours",
            "hour",
            Step::Hour,
            hour_end - 24 * H + 1,
            24,
        ),
        (
            "d",
            "Last 30 days",
            "day",
            Step::Day,
            day_end - 30 * 24 * H + 3 * H,
            30,
        ),
        (
            "m",
            "Last 12 months",
            "month",
            Step::Month,
            month_end - 350 * 24 * H,
            12,
        ),
    ];
    let ends = [hour_end, day_end, month_end];
    specs
        .into_iter()
        .zip(ends)
        .map(|((key, title, x_axis, step, from, keep), to)| {
            let spec = ChartSpec {
                id: format!("{id}-{key}"),
                title,
                x_axis,
                step,
                from,
                to,
                keep_last: Some(keep),
                live: Some(if step == Step::Hour {
                    Live::Hour
                } else {
                    Live::Day
                }),
            };
            let c = chart_for(state, idx, &spec, now_ms)?;
            c.render().map_err(PageError::from)
        })
        .collect()
}

/// One chart as `spec` says, from the store.
pub fn chart_for(
    state: &AppState,
    idx: MeterIdx,
    spec: &ChartSpec,
    now_ms: i64,
) -> Result<Chart, PageError> {
    let tz: Tz = state.config.timezone;
    let usage = state
        .store
        .usage(idx, spec.step, spec.from, spec.to)
        .map_err(PageError::from)?;
    let mut points = chart::points(tz, spec.step, &usage, now_ms);
    if let Some(keep) = spec.keep_last {
        let n = points.len();
        if n > keep {
            points.drain(..n - keep);
        }
    }
    let live = match spec.live {
        Some(kind) => {
            let step = if kind == Live::Hour {
                Step::Hour
            } else {
                Step::Day
            };
            let now = state
                .store
                .usage(idx, step, now_ms, now_ms)
                .map_err(PageError::from)?;
            Some((kind, now.total_ml() as f64 / 1000.0))
        }
        None => None,
    };
    Ok(chart::build(
        &spec.id,
        spec.title,
        spec.x_axis,
        &points,
        live,
    ))
}

/// A page that could not be shown, as an HTML page with a sentence that says why.
#[derive(Debug)]
pub enum PageError {
    BadRequest(String),
    NotFound(String),
    Forbidden(String),
    /// 503 with `Retry-After`: too busy now, or past the request's time.
    Busy(String),
    Internal(String),
}

impl From<super::ApiError> for PageError {
    fn from(e: super::ApiError) -> Self {
        match e {
            super::ApiError::BadRequest(m) | super::ApiError::TooLarge(m) => {
                PageError::BadRequest(m)
            }
            super::ApiError::NotFound(m) => PageError::NotFound(m),
            super::ApiError::Busy(m) => PageError::Busy(m),
            super::ApiError::Unavailable(m) | super::ApiError::Internal(m) => {
                PageError::Internal(m)
            }
        }
    }
}

/// A form's fields, or the styled "That did not work" page saying which is
/// missing or wrong (axum's own `Form` answers a bare text 422).
pub struct PageForm<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for PageForm<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = PageError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, PageError> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(PageForm(v)),
            Err(e) => Err(PageError::BadRequest(format!(
                "The form was not sent whole: {}. Open the page again and send it from there.",
                e.body_text()
            ))),
        }
    }
}

impl From<crate::store::query::QueryError> for PageError {
    fn from(e: crate::store::query::QueryError) -> Self {
        super::ApiError::from(e).into()
    }
}

impl From<tokio::task::JoinError> for PageError {
    fn from(e: tokio::task::JoinError) -> Self {
        PageError::Internal(e.to_string())
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        PageError::Internal(e.to_string())
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        super::ApiError::from(e).into()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pulse_times_are_short_and_say_the_day_when_not_today() {
        let check = |iso: &str, expected: &str| {
            assert_eq!(super::when(iso, "2026-03-29T10:00:00+02:00"), expected)
        };
        check("2026-03-29T09:58:01.5+02:00", "09:58:01");
        check("2026-03-28T23:07:00+01:00", "28 Mar 23:07");
        check("", "never");
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    heading: &'static str,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, heading, message) = match self {
            PageError::BadRequest(m) => (StatusCode::BAD_REQUEST, "That did not work", m),
            PageError::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", m),
            PageError::Forbidden(m) => (StatusCode::FORBIDDEN, "Not allowed", m),
            PageError::Busy(m) => (StatusCode::SERVICE_UNAVAILABLE, "Busy", m),
            PageError::Internal(m) => {
                tracing::error!("page failed: {m}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The server could not show this page; the details are in its log.".to_string(),
                )
            }
        };
        let page = ErrorPage {
            layout: Layout {
                title: heading.to_string(),
                assets: assets::urls(),
                nav: String::new(),
                meters: Vec::new(),
                signed_in: false,
                firing: Vec::new(),
                away: false,
            },
            heading,
            message,
        };
        let mut res = (status, page).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static(super::heavy::RETRY_AFTER_S),
            );
        }
        res
    }
}
