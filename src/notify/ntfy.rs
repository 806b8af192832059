//! The ntfy channel: a push notification to a phone through a self-hosted or the
//! public ntfy server (`[[notify]] kind = "ntfy"`), as its documentation specifies:
//! `POST <topic URL>` with the message as the body and `Title`, `Priority`, `Tags`
//! and `Click` headers, `Authorization: Bearer <token>` when a token is set.
//!
//! The notification's stable id goes in as a tag (`wm-…`), so a receiver can drop
//! the repeat that at-least-once delivery may bring after a crash.

use std::time::Duration;

use crate::alert::{Channel, Notification, Sending};
use crate::http_client::Client;

const TIMEOUT: Duration = Duration::from_secs(30);

pub struct Ntfy {
    pub name: String,
    pub url: String,
    pub token: Option<String>,
    pub priority: u8,
    pub client: Client,
}

/// The headers of one push. Pure.
pub fn headers(n: &Notification, priority: u8, token: Option<&str>) -> Vec<(String, String)> {
    let title = n.subject.trim_start_matches("[watermeter] ").to_string();
    let mut h = vec![
        ("Title".to_string(), title),
        ("Priority".to_string(), priority.to_string()),
        (
            "Tags".to_string(),
            format!("droplet,{}", tag(&n.message_id)),
        ),
    ];
    if let Some(link) = &n.link {
        h.push(("Click".to_string(), link.clone()));
    }
    if let Some(t) = token {
        h.push(("Authorization".to_string(), format!("Bearer {t}")));
    }
    h
}

/// A Message-ID as an ntfy tag: letters, digits and `-` only. Pure.
pub fn tag(message_id: &str) -> String {
    let inner: String = message_id
        .trim_matches(['<', '>'])
        .split('@')
        .next()
        .unwrap_or("")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("wm-{inner}")
}

impl Channel for Ntfy {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, n: &'a Notification) -> Sending<'a> {
        Box::pin(async move {
            let owned = headers(n, self.priority, self.token.as_deref());
            let h: Vec<(&str, &str)> = owned
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let a = self
                .client
                .post(&self.url, &h, n.text.clone().into_bytes(), TIMEOUT)
                .await
                .map_err(|e| e.to_string())?;
            if (200..300).contains(&a.status) {
                Ok(())
            } else {
                Err(format!(
                    "ntfy at {} answered HTTP {}: {} (check url and token_file)",
                    self.url, a.status, a.body
                ))
            }
        })
    }
}
