//! `GET /api/v1/alerts`, and the one read of alert state that the API and the
//! dashboard's alert section share ([`load`]).
//!
//! The state of an alert is the engine's latest evaluation (with the live value),
//! or, before the first evaluation after a start, what the store kept. Reads only;
//! evaluating and sending are the alert engine's.

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use super::{ApiError, AppState};
use crate::alert::Rule;
use crate::alert::{outbox_status, AlertState, HistoryEntry, OutboxStatus, TransitionKind};

/// History lines per alert in the API.
pub const API_HISTORY: usize = 20;

/// One alert's state as read for display.
pub struct Loaded {
    pub rule: Rule,
    /// `None` when the alert was never evaluated (no state stored yet).
    pub state: Option<AlertState>,
    /// Newest first.
    pub history: Vec<HistoryEntry>,
}

impl Loaded {
    /// `ok`, `firing`, `resolving` (firing, the resolve hold runs) or `unknown`.
    pub fn phase(&self) -> &'static str {
        match &self.state {
            None => "unknown",
            Some(s) if s.clear_since.is_some() && s.is_firing() => "resolving",
            Some(s) if s.is_firing() => "firing",
            Some(_) => "ok",
        }
    }

    /// When the current phase began: firing since, or the last resolution.
    pub fn since_ms(&self) -> Option<i64> {
        let s = self.state.as_ref()?;
        s.firing_since.or_else(|| {
            self.history
                .first()
                .filter(|h| h.kind == TransitionKind::Resolved)
                .map(|h| h.at_ms)
        })
    }
}

/// The alerts on `meter` (all when `None`) with `history` lines each, and the outbox.
pub fn load(
    state: &AppState,
    meter: Option<&str>,
    history: usize,
) -> Result<(Vec<Loaded>, MailStatus), ApiError> {
    let active = state.rules.active();
    let rules = active
        .iter()
        .filter(|r| meter.is_none_or(|m| r.meter == m))
        .cloned();
    let out = load_rules(state, rules, history)?;
    Ok((out, mail_status(state)?))
}

/// `rules` with their state (the engine's latest, else the stored one) and `history` lines.
pub fn load_rules(
    state: &AppState,
    rules: impl Iterator<Item = Rule>,
    history: usize,
) -> Result<Vec<Loaded>, ApiError> {
    let store = &*state.store;
    let internal = |e: crate::alert::StoreError| ApiError::Internal(e.to_string());
    let mut out = Vec::new();
    for rule in rules {
        let live = state.alerts.state(&rule.name);
        let stored = match live {
            Some(s) => Some(s),
            None => crate::alert::AlertStore::load_state(store, &rule.name).map_err(internal)?,
        };
        let history = crate::alert::AlertStore::history(store, &rule.name, history);
        out.push(Loaded {
            rule,
            state: stored,
            history: history.map_err(internal)?,
        });
    }
    Ok(out)
}

/// The outbox, and why notifications are failing, if they are.
pub fn mail_status(state: &AppState) -> Result<MailStatus, ApiError> {
    let internal = |e: crate::alert::StoreError| ApiError::Internal(e.to_string());
    let outbox = outbox_status(&*state.store).map_err(internal)?;
    let failing = state
        .alerts
        .mail_setup_error()
        .or_else(|| outbox.failing.as_ref().map(|a| a.last_error.clone()));
    Ok(MailStatus { outbox, failing })
}

/// The outbox and, when mail is failing, why (the server's words and a hint).
pub struct MailStatus {
    pub outbox: OutboxStatus,
    pub failing: Option<String>,
}

#[derive(Serialize)]
pub struct AlertsBody {
    alerts: Vec<AlertBody>,
    outbox: OutboxBody,
    /// The store's own news: unreadable journal records, if any were found.
    store: super::store_notice::StoreBody,
}

#[derive(Serialize)]
struct AlertBody {
    name: String,
    /// `config` (an `[[alert]]` in the file) or `page` (made on `/alerts`).
    origin: &'static str,
    meter: String,
    kind: &'static str,
    state: &'static str,
    since: Option<String>,
    /// Liters (`volume`, `night_use`) or seconds (`continuous_flow`, `no_data`).
    value: Option<f64>,
    unit: &'static str,
    last_notified: Option<String>,
    evaluated: Option<String>,
    history: Vec<HistoryBody>,
}

#[derive(Serialize)]
struct HistoryBody {
    at: String,
    kind: &'static str,
    value: f64,
    summary: String,
}

#[derive(Serialize)]
struct OutboxBody {
    pending: usize,
    /// "mail is failing": the last error, with the server's words and a hint.
    last_error: Option<String>,
    failed_attempts: u32,
    next_try: Option<String>,
}

pub async fn list(State(state): State<AppState>) -> Result<Json<AlertsBody>, ApiError> {
    let (loaded, mail) = load(&state, None, API_HISTORY)?;
    let from_file = state.rules.config_names();
    let time = |ms: i64| crate::figures::rfc3339(state.config.timezone, ms);
    let alerts = loaded
        .iter()
        .map(|l| AlertBody {
            name: l.rule.name.clone(),
            origin: match from_file.contains(&l.rule.name) {
                true => "config",
                false => "page",
            },
            meter: l.rule.meter.clone(),
            kind: l.rule.kind.name(),
            state: l.phase(),
            since: l.since_ms().map(time),
            value: l.state.as_ref().map(|s| s.value),
            unit: l.rule.kind.unit(),
            last_notified: l.state.as_ref().and_then(|s| s.last_notified_ms).map(time),
            evaluated: l.state.as_ref().and_then(|s| s.evaluated_ms).map(time),
            history: l
                .history
                .iter()
                .map(|h| HistoryBody {
                    at: time(h.at_ms),
                    kind: h.kind.as_str(),
                    value: h.value,
                    summary: h.summary.clone(),
                })
                .collect(),
        })
        .collect();
    let attempt = mail.outbox.failing.as_ref();
    Ok(Json(AlertsBody {
        alerts,
        outbox: OutboxBody {
            pending: mail.outbox.pending,
            last_error: mail.failing,
            failed_attempts: attempt.map_or(0, |a| a.count),
            next_try: attempt.map(|a| time(a.next_try_ms)),
        },
        store: super::store_notice::api_body(&state, chrono::Utc::now().timestamp_millis()),
    }))
}
