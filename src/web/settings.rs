//! `GET /settings` and `POST /settings/reading`: set what the physical meter shows
//! now ("the meter shows 1234.567 m³"), so the dashboard's reading matches it.
//!
//! The form carries a CSRF token (see `csrf`); a login check, when auth is
//! configured, runs before these handlers in the pages' auth layer, not here.

use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use super::api::{rfc3339, snapshot};
use super::csrf;
use super::view::{Layout, MeterFigures, PageError};
use super::AppState;
use crate::ingest::MeterIdx;

/// The largest reading accepted: far above any house meter's dial.
const MAX_READING_M3: f64 = 1e9;

#[derive(askama::Template, WebTemplate)]
#[template(path = "settings.html")]
pub struct SettingsPage {
    layout: Layout,
    meters: Vec<MeterFigures>,
    token: &'static str,
    saved: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PageParams {
    saved: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    Query(q): Query<PageParams>,
) -> Result<Response, PageError> {
    let now = chrono::Utc::now().timestamp_millis();
    let today = rfc3339(&state, now);
    let meters = (0..state.config.meters.len())
        .map(|i| {
            Ok(MeterFigures::new(
                &snapshot(&state, i as MeterIdx, now)?,
                &today,
            ))
        })
        .collect::<Result<Vec<_>, PageError>>()?;
    let saved = q
        .saved
        .and_then(|id| state.meter(&id).map(|(_, m)| m.name.clone()));
    let page = SettingsPage {
        layout: Layout::new(&state, "Settings", "settings"),
        meters,
        token: csrf::token(),
        saved,
    };
    Ok(([(header::SET_COOKIE, csrf::set_cookie())], page).into_response())
}

#[derive(Debug, Deserialize)]
pub struct ReadingForm {
    meter: String,
    reading_m3: String,
    csrf: Option<String>,
}

pub async fn set_reading(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<ReadingForm>,
) -> Result<Redirect, PageError> {
    if !csrf::verify(&headers, f.csrf.as_deref()) {
        return Err(PageError::Forbidden(
            "The form had expired or did not come from this dashboard. Open the settings page again and resubmit.".into(),
        ));
    }
    let (idx, _) = state.meter(&f.meter).ok_or_else(|| {
        PageError::NotFound(format!("No meter with the id '{}' is configured.", f.meter))
    })?;
    let m3 = parse_reading(&f.reading_m3).map_err(PageError::BadRequest)?;
    let now = chrono::Utc::now().timestamp_millis();
    state
        .writer
        .set_reading(idx, m3, now)
        .await
        .map_err(|e| PageError::Internal(format!("setting the reading of '{}': {e}", f.meter)))?;
    tracing::info!(meter = f.meter, m3, "meter reading set from the dashboard");
    Ok(Redirect::to(&format!("/settings?saved={}", f.meter)))
}

/// "1234.567" or "1234,567" (a decimal comma is common on meters) → m³.
pub fn parse_reading(s: &str) -> Result<f64, String> {
    let t = s.trim().replace(',', ".");
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..MAX_READING_M3).contains(&v) => Ok(v),
        _ => Err(format!(
            "'{s}' is not a meter reading; type the number the meter shows in m³, such as 1234.567."
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Option<f64>) {
        assert_eq!(parse_reading(input).ok(), expected, "{input:?}");
    }

    #[test]
    fn readings_accept_a_decimal_comma_and_refuse_nonsense() {
        check("1234.567", Some(1234.567));
        check(" 12,5 ", Some(12.5));
        check("0", Some(0.0));
        check("-1", None);
        check("NaN", None);
        check("inf", None);
        check("", None);
        check("1e12", None);
    }
}
