//! The webhook channel (`[[notify]] kind = "webhook"`): one HTTP POST per
//! notification with the JSON body documented in CONTRACT.md, for Home Assistant,
//! Gotify, Node-RED and chat bridges:
//! `{"id", "alert", "kind", "meter", "state", "value", "unit", "since", "message",
//! "dashboard_url"}`. `id` is stable across retries, so a receiver can drop a repeat.

use std::time::Duration;

use serde_json::json;

use crate::alert::{Channel, Notification, Sending};
use crate::http_client::Client;

const TIMEOUT: Duration = Duration::from_secs(30);

pub struct Webhook {
    pub name: String,
    pub url: String,
    pub token: Option<String>,
    pub tz: chrono_tz::Tz,
    pub client: Client,
}

/// The JSON body of one notification. Pure.
pub fn body(n: &Notification, tz: chrono_tz::Tz) -> serde_json::Value {
    let f = &n.facts;
    json!({
        "id": n.message_id,
        "alert": n.alert,
        "kind": f.kind,
        "meter": f.meter,
        "state": f.state,
        "value": f.value,
        "unit": f.unit,
        "since": f.since_ms.map(|ms| crate::figures::rfc3339(tz, ms)),
        "message": n.subject.trim_start_matches("[watermeter] "),
        "dashboard_url": n.link,
    })
}

impl Channel for Webhook {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, n: &'a Notification) -> Sending<'a> {
        Box::pin(async move {
            let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
            let h: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
            let payload = body(n, self.tz).to_string().into_bytes();
            let a = self
                .client
                .post_as(&self.url, "application/json", &h, payload, TIMEOUT)
                .await
                .map_err(|e| e.to_string())?;
            if (200..300).contains(&a.status) {
                Ok(())
            } else {
                Err(format!(
                    "the webhook {} answered HTTP {}: {}",
                    self.url, a.status, a.body
                ))
            }
        })
    }
}
