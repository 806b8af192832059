//! What an alert tells the owner, whatever channel carries it, and the small trait
//! every channel implements (`src/notify/<channel>.rs`).
//!
//! A [`Notification`] is composed once, when the transition happens, and waits in
//! the persistent outbox until every configured channel has taken it. Its
//! `message_id` is fixed at composing time: email sends it as the Message-ID, other
//! channels may use it to recognise a repeat after a crash.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

/// One notification. Who receives it comes from the channel's config at sending
/// time, so a corrected config applies to notifications already waiting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The alert's name (empty for a test or a notice about the store).
    pub alert: String,
    /// When the transition happened.
    pub created_ms: i64,
    /// `<…@domain>`, the same for every send of this notification.
    pub message_id: String,
    /// One line: a mail's subject, a push notification's title.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The same body as HTML, for channels that show it.
    pub html: Option<String>,
    /// The dashboard page about it, if `dashboard_url` is known.
    #[serde(default)]
    pub link: Option<String>,
    /// The channels it is meant for (an alert's `notify = [...]`); empty: all.
    #[serde(default)]
    pub channels: Vec<String>,
    /// The facts behind the words, for channels that carry data (a webhook).
    #[serde(default)]
    pub facts: Facts,
}

/// What happened, as data: the webhook body of CONTRACT.md carries these.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Facts {
    /// The alert kind (`volume`, …), or `store` for the notice about the store.
    pub kind: String,
    /// The meter's id (empty when it is about no meter).
    pub meter: String,
    /// `firing`, `reminder`, `resolved` (or `notice`).
    pub state: String,
    pub value: f64,
    /// The unit of `value`: `L`, `s` or `flags`.
    pub unit: String,
    /// When it began firing (Unix ms), if it is about an alert.
    pub since_ms: Option<i64>,
}

/// What [`Channel::send`] returns: `Ok` once the channel's server accepted it, or the
/// error in words for the log and the dashboard (with a hint at the fix if one is known).
pub type Sending<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// One way to reach the owner (email today).
pub trait Channel: Send + Sync {
    /// A short, stable name (`email`, or the `[[notify]]` name): the outbox records
    /// which channels took a notification, so a retry after one channel failed does
    /// not repeat the others, and an alert's `notify = [...]` names them.
    fn name(&self) -> &str;
    fn send<'a>(&'a self, notification: &'a Notification) -> Sending<'a>;
}
