//! The channels that carry alert notifications to the owner, one module each
//! (miniflux's `internal/integration/<name>/` is the model): `email` over `[smtp]`
//! today. Each implements [`crate::alert::Channel`]; the alert outbox hands them
//! what waits and records which channel took what.
//!
//! To add a channel: a module here with its config check in `config/`, one line in
//! [`channels`] and one in [`configured`].

pub mod email;

use std::sync::Arc;

use crate::alert::Channel;
use crate::config::Config;

/// Whether any channel is configured (then the outbox runs, and notices are queued).
pub fn configured(config: &Config) -> bool {
    config.smtp.is_some()
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
    (channels, problems)
}
