//! Alerts: rules, their state, the notifications they cause, and the outbox.
//!
//! The pieces, from pure to IO:
//! - `kinds/` holds one file per alert kind: its keys and their check, its rule
//!   over a [`UsageView`] at `now` (pure), its words and its page fields;
//! - `rules.rs` is what the rules read ([`UsageView`]) and give ([`rules::Measurement`]);
//! - `state.rs` is the ok → firing → resolved state machine with reminders and the
//!   resolve hold against flapping (pure);
//! - `message.rs` words the notification for a transition (pure);
//! - `notification.rs` is what every channel carries, and the [`Channel`] trait;
//! - `outbox.rs` keeps notifications in the [`AlertStore`] and hands them to the
//!   channels with backoff (the channels themselves are `src/notify/`);
//! - `recovery_mail.rs` words and queues, once, the notice about a restored store;
//! - `engine.rs` runs the evaluator and outbox tasks on a clock.
//!
//! The store implements [`UsageView`] and [`AlertStore`] (through `persist.rs`);
//! this module never names SMTP or another channel's protocol.
//! See docs/alerts.md for what each kind means.

pub mod engine;
pub mod kinds;
pub mod message;
pub mod notification;
pub mod outbox;
pub mod persist;
pub mod recovery_mail;
pub mod rules;
pub mod saved;
pub mod state;

#[cfg(test)]
mod tests;

pub use kinds::{AlertKind, Rule};
pub use message::{compose, MailContext};
pub use notification::{Channel, Notification, Sending};
#[cfg(test)]
pub use outbox::MemoryStore;
pub use outbox::{
    backoff_ms, deliver_due, outbox_status, run_outbox, AlertStore, Attempt, OutboxStatus, Pending,
    StoreError,
};
#[cfg(test)]
pub use rules::MemoryUsage;
pub use rules::UsageView;
pub use saved::{RuleSet, SavedAlert};
pub use state::{evaluate, AlertState, Evaluation, HistoryEntry, Transition, TransitionKind};

/// Evaluate one rule at `now_ms` and store the outcome: the new state, and for a
/// transition its history line and mail, in one commit. Call it after each event
/// of the rule's meter and on a timer (resolving, `no_data` and `continuous_flow`
/// need time to pass). When the returned evaluation has a transition, wake the
/// outbox. The returned state carries the live value for the dashboard.
pub fn check_rule(
    rule: &Rule,
    meter_name: &str,
    usage: &dyn UsageView,
    store: &dyn AlertStore,
    ctx: &MailContext,
    now_ms: i64,
) -> Result<Evaluation, StoreError> {
    let state = store.load_state(&rule.name)?.unwrap_or_default();
    let eval = evaluate(rule, usage, &state, now_ms, ctx.tz);
    match &eval.transition {
        Some(t) => {
            let (mail, history) = compose(rule, meter_name, t, ctx);
            tracing::info!(alert = %rule.name, "{}", history.summary);
            store.commit(&rule.name, &eval.state, Some(&history), &[mail])?;
        }
        None if eval.persist => {
            store.commit(&rule.name, &eval.state, None, &[])?;
        }
        None => {}
    }
    Ok(eval)
}
