//! `GET /settings`, `POST /settings/reading` and `POST /settings/corrections`: set
//! what the physical meter shows now ("the meter shows 1234.567 m³"), so the
//! dashboard's reading matches it (pulse meters only: a sensor that reads the
//! meter's own register sets it by itself); correct the events of a range; and see
//! the audit list of corrections and the misreads the reading engine ignored.
//!
//! The form carries a CSRF token (see `csrf`); a login check, when auth is
//! configured, runs before these handlers in the pages' auth layer, not here.

use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::api::{rfc3339, snapshot};
use super::csrf;
use super::view::PageForm;
use super::view::{Layout, MeterFigures, PageError};
use super::AppState;
use crate::ingest::MeterIdx;

/// The largest reading accepted: far above any house meter's dial.
const MAX_READING_M3: f64 = 1e9;

#[derive(askama::Template, WebTemplate)]
#[template(path = "settings.html")]
pub struct SettingsPage {
    layout: Layout,
    meters: Vec<MeterSettings>,
    token: &'static str,
    saved: Option<String>,
    corrected: Option<String>,
    exchanged: Option<String>,
    /// `[tariff]` in words, read-only (it lives in the config file).
    tariff: Vec<String>,
}

/// The tariff as lines of words. Pure.
pub fn tariff_words(t: &crate::config::TariffConfig) -> Vec<String> {
    let c = &t.currency;
    let mut lines = Vec::new();
    if t.tiers.is_empty() {
        lines.push(format!("Water: {:.2} {c} per m³", t.price_per_m3));
    } else {
        let period = match t.tiers_period {
            crate::config::TiersPeriod::Year => "year",
            crate::config::TiersPeriod::Month => "month",
        };
        let mut from = 0.0;
        for tier in &t.tiers {
            lines.push(match tier.up_to_m3 {
                Some(up) => format!(
                    "Water from {from} to {up} m³ a {period}: {:.2} {c} per m³",
                    tier.price_per_m3
                ),
                None => format!(
                    "Water above {from} m³ a {period}: {:.2} {c} per m³",
                    tier.price_per_m3
                ),
            });
            from = tier.up_to_m3.unwrap_or(from);
        }
    }
    if t.sewage_per_m3 > 0.0 {
        lines.push(format!("Sewage: {:.2} {c} per m³", t.sewage_per_m3));
    }
    if t.fixed_per_month > 0.0 {
        lines.push(format!(
            "Fixed charge: {:.2} {c} per month",
            t.fixed_per_month
        ));
    }
    lines
}

/// One meter on the settings page.
pub struct MeterSettings {
    pub m: MeterFigures,
    /// Its reading comes from a sensor that reads the meter's register.
    pub from_sensor: bool,
    /// "3 readings ignored as misreads (…)", when any were.
    pub misreads: Option<String>,
    pub corrections: Vec<CorrectionRow>,
}

/// One line of the audit list.
pub struct CorrectionRow {
    pub at: String,
    pub range: String,
    pub what: String,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
pub struct PageParams {
    saved: Option<String>,
    corrected: Option<String>,
    exchanged: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    Query(q): Query<PageParams>,
) -> Result<Response, PageError> {
    let now = chrono::Utc::now().timestamp_millis();
    let today = rfc3339(&state, now);
    let when = |ms: i64| crate::words::local_time(state.config.timezone, ms);
    let meters = state
        .config
        .meters
        .iter()
        .enumerate()
        .map(|(i, config)| {
            let idx = i as MeterIdx;
            let (ignored, reanchored) = state.store.readings_ignored(idx);
            let corrections = state
                .store
                .corrections(idx)
                .map_err(PageError::from)?
                .iter()
                .rev()
                .map(|c| CorrectionRow {
                    at: when(c.at_ms),
                    range: format!("{} – {}", when(c.from_ms), when(c.to_ms)),
                    what: match c.action.as_str() {
                        "delete" => format!("deleted {}", crate::words::liters(c.removed_liters)),
                        _ => format!(
                            "set to {} (was {})",
                            crate::words::liters(c.set_liters),
                            crate::words::liters(c.removed_liters)
                        ),
                    },
                    reason: c.reason.clone(),
                })
                .collect();
            Ok(MeterSettings {
                m: MeterFigures::new(&snapshot(&state, idx, now)?, &today),
                from_sensor: config.reads_its_register(),
                misreads: super::view::misreads_words(ignored, reanchored),
                corrections,
            })
        })
        .collect::<Result<Vec<_>, PageError>>()?;
    let name_of =
        |id: Option<String>| id.and_then(|id| state.meter(&id).map(|(_, m)| m.name.clone()));
    let page = SettingsPage {
        layout: Layout::new(&state, "Settings", "settings"),
        meters,
        token: csrf::token(),
        saved: name_of(q.saved),
        corrected: name_of(q.corrected),
        exchanged: name_of(q.exchanged),
        tariff: state
            .config
            .tariff
            .as_ref()
            .map(tariff_words)
            .unwrap_or_default(),
    };
    Ok(([(header::SET_COOKIE, csrf::set_cookie())], page).into_response())
}

/// What every settings form checks first: its CSRF token, then its meter.
fn form_meter<'s>(
    state: &'s AppState,
    headers: &HeaderMap,
    token: Option<&str>,
    meter: &str,
) -> Result<(MeterIdx, &'s crate::config::MeterConfig), PageError> {
    csrf::require(headers, token, "the settings page")?;
    state.meter(meter).ok_or_else(|| {
        PageError::NotFound(format!("No meter with the id '{meter}' is configured."))
    })
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
    PageForm(f): PageForm<ReadingForm>,
) -> Result<Redirect, PageError> {
    let (idx, config) = form_meter(&state, &headers, f.csrf.as_deref(), &f.meter)?;
    if config.reads_its_register() {
        return Err(PageError::BadRequest(format!(
            "The reading of '{}' comes from its sensor, which reads the meter itself; it cannot be set by hand. To correct history, use a correction below the reading.",
            f.meter
        )));
    }
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

#[derive(Debug, Deserialize)]
pub struct CorrectionForm {
    meter: String,
    /// `datetime-local` values ("2026-11-26T00:00"), in the configured zone.
    from: String,
    to: String,
    action: String,
    liters: Option<String>,
    reason: String,
    csrf: Option<String>,
}

pub async fn correct(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(f): PageForm<CorrectionForm>,
) -> Result<Redirect, PageError> {
    let (idx, _) = form_meter(&state, &headers, f.csrf.as_deref(), &f.meter)?;
    let tz = state.config.timezone;
    let local = |key: &str, v: &str| -> Result<String, PageError> {
        let t =
            chrono::NaiveDateTime::parse_from_str(v.trim(), "%Y-%m-%dT%H:%M").map_err(|_| {
                PageError::BadRequest(format!(
                    "'{v}' is not a time for {key}; pick a date and time."
                ))
            })?;
        let ms = crate::buckets::local_ms(tz, t);
        Ok(crate::figures::rfc3339(tz, ms))
    };
    let liters = match f.liters.as_deref().map(str::trim) {
        Some(l) if !l.is_empty() && f.action == "set_liters" => Some(
            l.replace(',', ".")
                .parse::<f64>()
                .map_err(|_| PageError::BadRequest(format!("'{l}' is not a number of liters.")))?,
        ),
        _ => None,
    };
    // The same checks and words as the API.
    let mut body = serde_json::json!({
        "from": local("from", &f.from)?,
        "to": local("to", &f.to)?,
        "action": f.action,
        "reason": f.reason,
    });
    if let (Some(l), Some(o)) = (liters, body.as_object_mut()) {
        o.insert("liters".into(), l.into());
    }
    let c = super::corrections::check(body.to_string().as_bytes(), crate::clock::now_stamp())
        .map_err(PageError::BadRequest)?;
    let store = state.store.clone();
    let now = chrono::Utc::now().timestamp_millis();
    tokio::task::spawn_blocking(move || {
        store.correct(idx, c.from_ms, c.to_ms, c.set_liters, &c.reason, now)
    })
    .await
    .map_err(PageError::from)?
    .map_err(|e| PageError::Internal(format!("correcting '{}': {e}", f.meter)))?;
    tracing::info!(meter = f.meter, "history corrected from the dashboard");
    Ok(Redirect::to(&format!(
        "/settings?corrected={}#corrections-{}",
        f.meter, f.meter
    )))
}

#[derive(Debug, Deserialize)]
pub struct ExchangeForm {
    meter: String,
    /// `datetime-local`, in the configured zone.
    at: String,
    reading_m3: String,
    csrf: Option<String>,
}

/// "A new meter was fitted at … showing … m³": a sensor's readings count from it;
/// a pulse meter's reading is set to it at that time.
pub async fn exchange(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(f): PageForm<ExchangeForm>,
) -> Result<Redirect, PageError> {
    let (idx, config) = form_meter(&state, &headers, f.csrf.as_deref(), &f.meter)?;
    let m3 = parse_reading(&f.reading_m3).map_err(PageError::BadRequest)?;
    let at =
        chrono::NaiveDateTime::parse_from_str(f.at.trim(), "%Y-%m-%dT%H:%M").map_err(|_| {
            PageError::BadRequest(format!(
                "'{}' is not a time; pick when the new meter was fitted.",
                f.at
            ))
        })?;
    let at_ms = crate::buckets::local_ms(state.config.timezone, at);
    if at_ms > chrono::Utc::now().timestamp_millis() {
        return Err(PageError::BadRequest(
            "The exchange is in the future; record it once the new meter is fitted.".into(),
        ));
    }
    if config.reads_its_register() {
        let store = state.store.clone();
        tokio::task::spawn_blocking(move || store.record_exchange(idx, at_ms, m3))
            .await
            .map_err(PageError::from)?
            .map_err(|e| {
                PageError::Internal(format!("recording the exchange of '{}': {e}", f.meter))
            })?;
    } else {
        state
            .writer
            .set_reading(idx, m3, at_ms)
            .await
            .map_err(|e| {
                PageError::Internal(format!("recording the exchange of '{}': {e}", f.meter))
            })?;
    }
    tracing::info!(
        meter = f.meter,
        m3,
        at_ms,
        "meter exchange recorded from the dashboard"
    );
    Ok(Redirect::to(&format!("/settings?exchanged={}", f.meter)))
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
