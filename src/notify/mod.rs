//! The channels that carry alert notifications to the owner, one module each
//! (miniflux's `internal/integration/<name>/` is the model): `email` over `[smtp]`,
//! `ntfy` (push to a phone) and `webhook` (a JSON POST) from `[[notify]]`. Each implements [`crate::alert::Channel`]; the alert outbox hands them
//! what waits and records which channel took what.
//!
//! To add a channel: a module here with its config check in `config/`, one line in
//! [`channels`] and one in [`configured`].

pub mod email;
pub mod ntfy;
pub mod webhook;

use std::sync::Arc;

use crate::alert::Channel;
use crate::config::{Config, NotifyKind};

/// Whether any channel is configured (then the outbox runs, and notices are queued).
pub fn configured(config: &Config) -> bool {
    config.smtp.is_some() || !config.notify.is_empty()
}

/// The configured channels that could be set up, and why each other one could not
/// (a bad address, an unreadable `ca_file`), for the log and the dashboard.
pub fn channels(config: &Config) -> (Vec<Arc<dyn Channel>>, Vec<String>) {
    let mut channels: Vec<Arc<dyn Channel>> = Vec::new();
    let mut problems = Vec::new();
    if let Some(smtp) = &config.smtp {
        match email::Mailer::new(smtp) {
            Ok(m) => channels.push(Arc::new(m)),
            Err(e) => problems.push(e.to_string()),
        }
    }
    // One pooled client for every HTTP channel: the system's CAs are read once.
    let mut shared: Option<Result<crate::http_client::Client, String>> = None;
    let mut client = || {
        shared
            .get_or_insert_with(|| crate::http_client::Client::new(None))
            .clone()
    };
    for n in &config.notify {
        let channel: Result<Arc<dyn Channel>, String> = match &n.kind {
            NotifyKind::Email => match &config.smtp {
                Some(smtp) => email::Mailer::new(smtp)
                    .map(|m| Arc::new(m.named(&n.name)) as Arc<dyn Channel>)
                    .map_err(|e| e.to_string()),
                None => Err(format!(
                    "[[notify]] {}: an email channel needs [smtp]",
                    n.name
                )),
            },
            NotifyKind::Ntfy {
                url,
                token,
                priority,
            } => client().map(|client| {
                Arc::new(ntfy::Ntfy {
                    name: n.name.clone(),
                    url: url.clone(),
                    token: token.clone(),
                    priority: *priority,
                    client,
                }) as Arc<dyn Channel>
            }),
            NotifyKind::Webhook { url, token } => client().map(|client| {
                Arc::new(webhook::Webhook {
                    name: n.name.clone(),
                    url: url.clone(),
                    token: token.clone(),
                    tz: config.timezone,
                    client,
                }) as Arc<dyn Channel>
            }),
        };
        match channel {
            Ok(c) => channels.push(c),
            Err(e) => problems.push(format!("[[notify]] {}: {e}", n.name)),
        }
    }
    (channels, problems)
}
