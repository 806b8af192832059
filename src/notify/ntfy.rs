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

/// A header value every HTTP library takes: control characters become spaces,
/// and text beyond ASCII is an RFC 2047 encoded word, which ntfy decodes.
pub fn header_text(s: &str) -> String {
    use base64::Engine;
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.is_ascii() {
        clean
    } else {
        let b64 = base64::engine::general_purpose::STANDARD.encode(clean.as_bytes());
        format!("=?UTF-8?B?{b64}?=")
    }
}

/// The priority of a "resolved" push: low, whatever the firing one had (the
/// all-clear must not ring like the alarm).
const RESOLVED_PRIORITY: u8 = 2;

/// The headers of one push. Pure.
pub fn headers(n: &Notification, priority: u8, token: Option<&str>) -> Vec<(String, String)> {
    let title = header_text(n.subject.trim_start_matches("[watermeter] "));
    let priority = if n.facts.state == "resolved" {
        priority.min(RESOLVED_PRIORITY)
    } else {
        priority
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resolved_push_is_low_whatever_the_alarm_was() {
        let mut n = Notification {
            alert: "a".into(),
            created_ms: 0,
            message_id: "<1@x>".into(),
            subject: "s".into(),
            text: "t".into(),
            html: None,
            link: None,
            channels: Vec::new(),
            facts: Default::default(),
        };
        let priority = |n: &Notification| {
            headers(n, 5, None)
                .into_iter()
                .find(|(k, _)| k == "Priority")
                .map(|(_, v)| v)
        };
        n.facts.state = "firing".into();
        assert_eq!(priority(&n).as_deref(), Some("5"));
        n.facts.state = "resolved".into();
        assert_eq!(priority(&n).as_deref(), Some("2"));
    }

    #[test]
    fn a_title_beyond_ascii_is_an_encoded_word_and_control_characters_go() {
        assert_eq!(header_text("House: 120 L"), "House: 120 L");
        assert_eq!(header_text("a\nb\tc"), "a b c");
        // "Wasser läuft" in UTF-8, base64.
        assert_eq!(
            header_text("Wasser läuft"),
            "=?UTF-8?B?V2Fzc2VyIGzDpHVmdA==?="
        );
        assert!(axum::http::HeaderValue::from_str(&header_text("Küche – 5 L")).is_ok());
    }
}
