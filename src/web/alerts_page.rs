//! `GET /alerts`: every alert with its state and history; `POST /alerts`,
//! `/alerts/pause` and `/alerts/delete`: add, edit, pause and delete the alerts
//! made here (`alert::saved`). The config file's alerts are shown read-only.
//!
//! Whoever may see the dashboard may change the alerts made here: with
//! `[http.auth]` a signed-in user (the pages' auth layer runs before these
//! handlers), without it anyone who reaches the page, as the owner chose; the page
//! says which. Every form carries the CSRF token and works without JavaScript.
//! A refused form comes back filled in, with `check-config`'s words for each problem.

use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::alert_view::{history_views, state_of, AlertEventView, AlertState, Gauge};
use super::alerts::{load_rules, mail_status};
use super::csrf;
use super::view::PageForm;
use super::view::{Layout, PageError};
use super::AppState;
use crate::alert::saved::{problem_words, rule_of, AlertForm, Saved, SavedAlert};
use crate::alert::{persist, Rule};

/// History lines shown per alert on this page.
const HISTORY: usize = 10;

#[derive(askama::Template, WebTemplate)]
#[template(path = "alerts_page.html")]
pub struct AlertsPage {
    layout: Layout,
    token: &'static str,
    /// Who may change the alerts made here, in words.
    who: String,
    /// Why notifications are not going out, if they are not.
    failing: Option<String>,
    /// Notifications waiting for a channel.
    pending: usize,
    from_file: Vec<Row>,
    made_here: Vec<Row>,
    /// The add (or edit) form, filled in.
    form: AlertForm,
    /// The name of the alert the form edits (`None`: a new one).
    editing: Option<String>,
    problems: Vec<String>,
    notice: Option<String>,
    /// An alert made here that the owner asked to delete: the page asks first.
    confirm_delete: Option<String>,
    meters: Vec<(String, String)>,
    /// (id, title, keys, example) of every kind.
    kinds: Vec<(&'static str, &'static str, String, &'static str)>,
    channels: Vec<String>,
}

/// One alert on the page.
pub struct Row {
    pub name: String,
    /// The name percent-encoded for a link's query.
    pub query_name: String,
    pub meter: String,
    pub kind: String,
    pub rule: String,
    pub state: AlertState,
    pub since: Option<String>,
    pub history: Vec<AlertEventView>,
    pub gauge: Option<Gauge>,
    pub paused: bool,
    /// Why a stored alert does not run under this config.
    pub broken: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PageParams {
    edit: Option<String>,
    saved: Option<String>,
    deleted: Option<String>,
    /// `?delete=NAME`: ask before deleting it and its history.
    delete: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    Query(q): Query<PageParams>,
) -> Result<Response, PageError> {
    let mut form = AlertForm {
        kind: "volume".into(),
        keys: "window = \"1h\"\nthreshold_liters = 100".into(),
        ..AlertForm::default()
    };
    let mut editing = None;
    if let Some(name) = q.edit {
        let saved = state.rules.saved();
        let found = saved.iter().find(|s| s.alert.name == name).ok_or_else(|| {
            PageError::NotFound(format!("No alert made here is named \"{name}\"."))
        })?;
        form = AlertForm::from_toml(&found.alert.toml);
        editing = Some(name);
    }
    let notice = match (q.saved, q.deleted) {
        (Some(n), _) => Some(format!("Saved \"{n}\"; it is evaluated from now on.")),
        (_, Some(n)) => Some(format!("Deleted \"{n}\".")),
        _ => None,
    };
    let confirm_delete = match q.delete {
        Some(name) if state.rules.saved().iter().any(|s| s.alert.name == name) => Some(name),
        Some(name) => return Err(not_here(&state, &name)),
        None => None,
    };
    let page = Shown {
        problems: Vec::new(),
        notice,
        confirm_delete,
    };
    render(&state, form, editing, page, StatusCode::OK)
}

/// What the page says besides the alerts: the form's problems, a notice, and a
/// delete waiting for confirmation.
#[derive(Default)]
struct Shown {
    problems: Vec<String>,
    notice: Option<String>,
    confirm_delete: Option<String>,
}

fn render(
    state: &AppState,
    mut form: AlertForm,
    editing: Option<String>,
    shown: Shown,
    status: StatusCode,
) -> Result<Response, PageError> {
    let Shown {
        problems,
        notice,
        confirm_delete,
    } = shown;
    let internal = |e: super::ApiError| PageError::Internal(format!("{e:?}"));
    let tz = state.config.timezone;
    let rows = |rules: Vec<Rule>| -> Result<Vec<Row>, PageError> {
        let loaded = load_rules(state, rules.into_iter(), HISTORY).map_err(internal)?;
        Ok(loaded
            .iter()
            .map(|l| Row {
                name: l.rule.name.clone(),
                query_name: url_encode(&l.rule.name),
                meter: meter_name(state, &l.rule.meter),
                kind: l.rule.kind.name().to_string(),
                rule: super::alert_view::rule_words(l),
                state: state_of(l),
                since: l.since_ms().map(|t| crate::words::local_time(tz, t)),
                history: history_views(l, tz),
                gauge: super::alert_view::gauge(l, state, tz),
                paused: false,
                broken: None,
            })
            .collect())
    };
    let from_file = rows(state.rules.config_rules().to_vec())?;
    let mut made_here = Vec::new();
    for s in state.rules.saved() {
        made_here.push(saved_row(state, &s, &rows)?);
    }
    let mail = mail_status(state).map_err(internal)?;
    if form.meter.is_empty() {
        form.meter = state
            .config
            .meters
            .first()
            .map(|m| m.id.clone())
            .unwrap_or_default();
    }
    let mut meters: Vec<(String, String)> = state
        .config
        .meters
        .iter()
        .map(|m| (m.id.clone(), m.name.clone()))
        .collect();
    // An alert whose meter left the config keeps it in the form (and is refused
    // with the reason), rather than silently moving to the first meter.
    if !meters.iter().any(|(id, _)| *id == form.meter) {
        meters.push((
            form.meter.clone(),
            format!("{} (not in the config)", form.meter),
        ));
    }
    let who = match &state.config.http.auth {
        Some(auth) => format!(
            "You are signed in as {}: whoever signs in here may add, edit, pause and delete the alerts made on this page.",
            auth.username
        ),
        None => "This watermeter runs without a login ([http.auth] is not set): anyone who can open this page may add, edit, pause and delete the alerts made on it.".to_string(),
    };
    let mut channels: Vec<String> = state.config.notify.iter().map(|n| n.name.clone()).collect();
    if state.config.smtp.is_some() {
        channels.push("email".into());
    }
    let page = AlertsPage {
        layout: Layout::new(state, "Alerts", "alerts"),
        token: csrf::token(),
        who,
        failing: mail.failing,
        pending: mail.outbox.pending,
        from_file,
        made_here,
        form,
        editing,
        problems,
        notice,
        confirm_delete,
        meters,
        kinds: crate::alert::kinds::KINDS
            .iter()
            .map(|k| (k.name, k.title, k.keys.join(", "), k.example))
            .collect(),
        channels,
    };
    Ok((status, [(header::SET_COOKIE, csrf::set_cookie())], page).into_response())
}

fn saved_row(
    state: &AppState,
    s: &Saved,
    rows: &dyn Fn(Vec<Rule>) -> Result<Vec<Row>, PageError>,
) -> Result<Row, PageError> {
    match &s.rule {
        Ok(rule) => {
            let mut row = rows(vec![rule.clone()])?
                .pop()
                .ok_or_else(|| PageError::Internal("an alert was not loaded".into()))?;
            row.paused = s.alert.paused;
            Ok(row)
        }
        Err(why) => {
            let form = AlertForm::from_toml(&s.alert.toml);
            Ok(Row {
                name: s.alert.name.clone(),
                query_name: url_encode(&s.alert.name),
                meter: meter_name(state, &form.meter),
                kind: form.kind,
                rule: String::new(),
                state: AlertState::Unknown,
                since: None,
                history: Vec::new(),
                gauge: None,
                paused: s.alert.paused,
                broken: Some(why.clone()),
            })
        }
    }
}

fn meter_name(state: &AppState, id: &str) -> String {
    state
        .meter(id)
        .map_or_else(|| id.to_string(), |(_, m)| m.name.clone())
}

#[derive(Debug, Deserialize)]
pub struct SaveForm {
    csrf: Option<String>,
    /// The name of the alert being edited; empty for a new one.
    #[serde(default)]
    original: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    meter: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    repeat: String,
    #[serde(default)]
    notify: String,
    #[serde(default)]
    keys: String,
}

pub async fn save(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(f): PageForm<SaveForm>,
) -> Result<Response, PageError> {
    csrf::require(&headers, f.csrf.as_deref(), "the alerts page")?;
    let _edit = state.rules.lock_edits();
    let form = AlertForm {
        name: f.name,
        meter: f.meter,
        kind: f.kind,
        repeat: f.repeat,
        notify: f.notify,
        keys: f.keys,
    };
    let original = Some(f.original).filter(|o| !o.is_empty());
    let saved = state.rules.saved();
    if let Some(o) = &original {
        if !saved.iter().any(|s| s.alert.name == *o) {
            return Err(PageError::NotFound(format!(
                "No alert made here is named \"{o}\"; it may have been deleted meanwhile."
            )));
        }
    }
    // Names are unique across the file and this page (the edited alert may keep its own).
    let mut taken = state.rules.config_names();
    taken.extend(
        saved
            .iter()
            .map(|s| s.alert.name.clone())
            .filter(|n| Some(n) != original.as_ref()),
    );
    let taken: Vec<&str> = taken.iter().map(String::as_str).collect();
    let toml = form.to_toml();
    let rule = match rule_of(&toml, &state.config, &taken) {
        Ok(rule) => rule,
        Err(problems) => {
            let words = problem_words(&problems, &toml);
            let shown = Shown {
                problems: words,
                ..Shown::default()
            };
            return render(&state, form, original, shown, StatusCode::BAD_REQUEST);
        }
    };
    let paused = original
        .as_ref()
        .and_then(|o| saved.iter().find(|s| s.alert.name == *o))
        .is_some_and(|s| s.alert.paused);
    let alert = SavedAlert {
        name: rule.name.clone(),
        toml,
        paused,
        changed_ms: chrono::Utc::now().timestamp_millis(),
    };
    let config_names = state.rules.config_names();
    persist::save_alert(&state.store, original.as_deref(), &alert, &config_names)
        .map_err(|e| PageError::Internal(e.to_string()))?;
    let mut next: Vec<Saved> = saved
        .into_iter()
        .filter(|s| Some(&s.alert.name) != original.as_ref() && s.alert.name != alert.name)
        .collect();
    let name = alert.name.clone();
    next.push(Saved {
        alert,
        rule: Ok(rule),
    });
    state.rules.set_saved(next);
    tracing::info!(alert = %name, "alert saved on the alerts page");
    Ok(Redirect::to(&format!("/alerts?saved={}", url_encode(&name))).into_response())
}

#[derive(Debug, Deserialize)]
pub struct NameForm {
    csrf: Option<String>,
    name: String,
    /// For pause: "true" pauses, anything else resumes.
    #[serde(default)]
    paused: String,
}

pub async fn pause(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(f): PageForm<NameForm>,
) -> Result<Redirect, PageError> {
    csrf::require(&headers, f.csrf.as_deref(), "the alerts page")?;
    let _edit = state.rules.lock_edits();
    let mut saved = state.rules.saved();
    let s = saved
        .iter_mut()
        .find(|s| s.alert.name == f.name)
        .ok_or_else(|| not_here(&state, &f.name))?;
    s.alert.paused = f.paused == "true";
    s.alert.changed_ms = chrono::Utc::now().timestamp_millis();
    let name = s.alert.name.clone();
    persist::save_alert(&state.store, Some(&name), &s.alert, &[])
        .map_err(|e| PageError::Internal(e.to_string()))?;
    tracing::info!(alert = %f.name, paused = s.alert.paused, "alert paused or resumed on the alerts page");
    state.rules.set_saved(saved);
    Ok(Redirect::to("/alerts"))
}

pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(f): PageForm<NameForm>,
) -> Result<Redirect, PageError> {
    csrf::require(&headers, f.csrf.as_deref(), "the alerts page")?;
    let _edit = state.rules.lock_edits();
    let saved = state.rules.saved();
    if !saved.iter().any(|s| s.alert.name == f.name) {
        return Err(not_here(&state, &f.name));
    }
    let config_names = state.rules.config_names();
    persist::delete_alert(&state.store, &f.name, &config_names)
        .map_err(|e| PageError::Internal(e.to_string()))?;
    tracing::info!(alert = %f.name, "alert deleted on the alerts page");
    state.rules.set_saved(
        saved
            .into_iter()
            .filter(|s| s.alert.name != f.name)
            .collect(),
    );
    Ok(Redirect::to(&format!(
        "/alerts?deleted={}",
        url_encode(&f.name)
    )))
}

/// The answer for a name that is not a browser-made alert: a config alert is
/// changed in the file.
fn not_here(state: &AppState, name: &str) -> PageError {
    if state.rules.config_names().iter().any(|n| n == name) {
        PageError::BadRequest(format!(
            "\"{name}\" comes from the config file; change it there and restart watermeter."
        ))
    } else {
        PageError::NotFound(format!("No alert made here is named \"{name}\"."))
    }
}

/// Percent-encodes a query value.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
