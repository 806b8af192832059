//! `GET /events`: server-sent events that carry the meters' figures to the open
//! pages within a moment of a pulse.
//!
//! Driven by the writer's progress channel (it changes after every stored batch),
//! at most two pushes a second per client, only the meters whose figures changed,
//! plus a check every few seconds so "flow now" falls to 0 when water stops. A
//! stream ends when the server shuts down, so it never holds up the exit.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

use super::api::{rfc3339, snapshot, MeterSnapshot};
use super::AppState;
use crate::ingest::MeterIdx;
use crate::store::writer::Progress;

/// The least time between two pushes to one client.
const MIN_GAP: Duration = Duration::from_millis(500);
/// How often figures are recomputed without a new pulse (flow decays to 0).
const RECHECK: Duration = Duration::from_secs(10);

/// One push: the meters whose figures changed, and the server's "now" (local) so
/// the page can tell "today" and notice a new hour.
#[derive(Debug, Serialize)]
pub struct Push {
    pub now: String,
    pub now_ms: i64,
    pub meters: Vec<MeterSnapshot>,
}

struct Client {
    state: AppState,
    progress: watch::Receiver<Progress>,
    shutdown: watch::Receiver<bool>,
    /// What this client was last sent, per meter (as JSON, to compare).
    sent: Vec<String>,
    last_push: Option<Instant>,
}

pub async fn events(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let client = Client {
        progress: state.progress.clone(),
        shutdown: state.shutdown.clone(),
        sent: vec![String::new(); state.config.meters.len()],
        last_push: None,
        state,
    };
    let stream = stream::unfold(client, |mut c| async move {
        loop {
            if c.last_push.is_some() && !c.wait().await {
                return None;
            }
            if let Some(event) = c.next_push() {
                c.last_push = Some(Instant::now());
                return Some((Ok(event), c));
            }
            if c.last_push.is_none() {
                c.last_push = Some(Instant::now());
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

impl Client {
    /// Waits for new data or the recheck; false when the server is shutting down.
    async fn wait(&mut self) -> bool {
        if *self.shutdown.borrow() {
            return false;
        }
        let gap_over = self.last_push.map_or_else(Instant::now, |t| t + MIN_GAP);
        tokio::select! {
            _ = self.shutdown.changed() => return false,
            _ = tokio::time::sleep_until(gap_over) => {}
        }
        tokio::select! {
            _ = self.shutdown.changed() => false,
            changed = self.progress.changed() => changed.is_ok(),
            _ = tokio::time::sleep(RECHECK) => true,
        }
    }

    /// The figures that changed since the last push, as an event (None if none did).
    fn next_push(&mut self) -> Option<Event> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut changed = Vec::new();
        for (i, sent) in self.sent.iter_mut().enumerate() {
            let snap = match snapshot(&self.state, i as MeterIdx, now_ms) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("live update: reading meter {i} failed: {e:?}");
                    continue;
                }
            };
            let json = serde_json::to_string(&snap).unwrap_or_default();
            if json != *sent {
                *sent = json;
                changed.push(snap);
            }
        }
        if changed.is_empty() {
            return None;
        }
        let push = Push {
            now: rfc3339(&self.state, now_ms),
            now_ms,
            meters: changed,
        };
        Event::default().event("meters").json_data(&push).ok()
    }
}
