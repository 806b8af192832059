use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::alert::notification::{Channel, Sending};
use crate::alert::outbox::{backoff_ms, deliver_due, outbox_status, run_outbox};
use crate::alert::{AlertState, AlertStore, MemoryStore, Notification};

/// A channel that answers from a script (then succeeds) and records what it sent.
struct FakeChannel {
    name: &'static str,
    script: Mutex<VecDeque<Result<(), String>>>,
    sent: Mutex<Vec<String>>,
    tries: Mutex<usize>,
    on_send: Arc<Notify>,
}

impl FakeChannel {
    fn named(name: &'static str, failures: usize) -> Arc<Self> {
        Arc::new(FakeChannel {
            name,
            script: Mutex::new((0..failures).map(|_| Err(refused())).collect()),
            sent: Mutex::default(),
            tries: Mutex::default(),
            on_send: Arc::default(),
        })
    }
    fn working() -> Arc<Self> {
        FakeChannel::named("email", 0)
    }
    fn failing(times: usize) -> Arc<Self> {
        FakeChannel::named("email", times)
    }
    fn sent(&self) -> Vec<String> {
        self.sent.lock().unwrap().clone()
    }
    fn tries(&self) -> usize {
        *self.tries.lock().unwrap()
    }
}

impl Channel for FakeChannel {
    fn name(&self) -> &str {
        self.name
    }
    fn send<'a>(&'a self, n: &'a Notification) -> Sending<'a> {
        Box::pin(async move {
            *self.tries.lock().unwrap() += 1;
            let answer = self.script.lock().unwrap().pop_front().unwrap_or(Ok(()));
            if answer.is_ok() {
                self.sent.lock().unwrap().push(n.subject.clone());
                self.on_send.notify_one();
            }
            answer
        })
    }
}

/// The channels list of the outbox with just `fake`.
fn only(fake: &Arc<FakeChannel>) -> Vec<Arc<dyn Channel>> {
    vec![fake.clone()]
}

fn refused() -> String {
    "mail through 127.0.0.1:2525: Connection error: Connection refused (os error 111) (hint: is the mail server running at 127.0.0.1:2525?)".into()
}

fn mail(subject: &str) -> Notification {
    Notification {
        alert: "a".into(),
        created_ms: 0,
        message_id: format!("<{subject}@example.org>"),
        subject: subject.into(),
        text: "body".into(),
        html: None,
        link: None,
        channels: Vec::new(),
        facts: Default::default(),
    }
}

fn store_with(subjects: &[&str]) -> MemoryStore {
    let store = MemoryStore::new();
    for s in subjects {
        store
            .commit("a", &AlertState::default(), None, &[mail(s)])
            .unwrap();
    }
    store
}

#[test]
fn backoff_doubles_from_30_seconds_up_to_an_hour() {
    let table = [
        (0, 30),
        (1, 30),
        (2, 60),
        (3, 120),
        (7, 1920),
        (8, 3600),
        (1000, 3600),
    ];
    for (failures, secs) in table {
        assert_eq!(
            backoff_ms(failures),
            secs * 1000,
            "after {failures} failures"
        );
    }
}

#[tokio::test]
async fn pending_mails_go_out_oldest_first_and_leave_the_outbox() {
    let store = store_with(&["firing", "reminder", "resolved"]);
    let fake = FakeChannel::working();
    assert_eq!(
        deliver_due(&store, &only(&fake), 0, false).await.unwrap(),
        None
    );
    assert_eq!(fake.sent(), ["firing", "reminder", "resolved"]);
    assert!(store.outbox_pending().unwrap().is_empty());
}

#[tokio::test]
async fn a_failure_keeps_every_mail_in_order_and_backs_off() {
    let store = store_with(&["firing", "resolved"]);
    let fake = FakeChannel::failing(2);
    assert_eq!(
        deliver_due(&store, &only(&fake), 0, false).await.unwrap(),
        Some(30_000)
    );
    // Before the backoff ends nothing is tried.
    assert_eq!(
        deliver_due(&store, &only(&fake), 10_000, false)
            .await
            .unwrap(),
        Some(30_000)
    );
    assert_eq!(fake.tries(), 1);
    assert_eq!(
        deliver_due(&store, &only(&fake), 30_000, false)
            .await
            .unwrap(),
        Some(90_000)
    );
    let head = store.outbox_pending().unwrap().remove(0);
    let attempt = head.attempt.expect("recorded failure");
    assert_eq!(
        (head.notification.subject.as_str(), attempt.count),
        ("firing", 2)
    );
    assert!(
        attempt.last_error.contains("Connection refused"),
        "{}",
        attempt.last_error
    );
    assert_eq!(
        deliver_due(&store, &only(&fake), 90_000, false)
            .await
            .unwrap(),
        None
    );
    assert_eq!(fake.sent(), ["firing", "resolved"]);
}

#[tokio::test]
async fn force_ignores_the_backoff_once_at_start() {
    let store = store_with(&["firing"]);
    let fake = FakeChannel::failing(1);
    deliver_due(&store, &only(&fake), 0, false).await.unwrap();
    assert_eq!(
        deliver_due(&store, &only(&fake), 1, true).await.unwrap(),
        None
    );
    assert_eq!(fake.sent(), ["firing"]);
}

#[tokio::test]
async fn status_shows_why_mail_is_failing() {
    let store = store_with(&["firing", "resolved"]);
    deliver_due(&store, &only(&FakeChannel::failing(1)), 0, false)
        .await
        .unwrap();
    let status = outbox_status(&store).unwrap();
    assert_eq!(status.pending, 2);
    let error = status.failing.expect("failing").last_error;
    assert!(error.contains("is the mail server running"), "{error}");
}

#[tokio::test]
async fn the_outbox_task_sends_what_waits_and_stops_on_shutdown() {
    let store: Arc<dyn AlertStore> = Arc::new(store_with(&["firing"]));
    let fake = FakeChannel::working();
    let sent = fake.on_send.clone();
    let wake = Arc::new(Notify::new());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run_outbox(
        store.clone(),
        only(&fake),
        wake.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    sent.notified().await;
    // A mail committed later goes out once the task is woken.
    store
        .commit("a", &AlertState::default(), None, &[mail("resolved")])
        .unwrap();
    wake.notify_one();
    sent.notified().await;
    stop.send(()).unwrap();
    task.await.unwrap();
    assert!(store.outbox_pending().unwrap().is_empty());
}

#[tokio::test]
async fn a_channel_that_took_a_notification_does_not_get_it_again_on_retry() {
    let store = store_with(&["firing"]);
    let email = FakeChannel::named("email", 0);
    let push = FakeChannel::named("ntfy", 1);
    let channels: Vec<Arc<dyn Channel>> = vec![email.clone(), push.clone()];
    assert_eq!(
        deliver_due(&store, &channels, 0, false).await.unwrap(),
        Some(30_000)
    );
    let attempt = store.outbox_pending().unwrap()[0].attempt.clone().unwrap();
    assert_eq!(attempt.delivered, ["email"]);
    assert!(
        attempt.last_error.starts_with("ntfy: "),
        "{}",
        attempt.last_error
    );
    assert_eq!(
        deliver_due(&store, &channels, 30_000, false).await.unwrap(),
        None
    );
    assert_eq!(
        (email.sent(), push.sent()),
        (vec!["firing".to_string()], vec!["firing".to_string()])
    );
    assert!(store.outbox_pending().unwrap().is_empty());
}

#[tokio::test]
async fn a_failing_channel_holds_back_only_itself() {
    let store = store_with(&["firing", "resolved"]);
    let email = FakeChannel::named("email", 0);
    let push = FakeChannel::named("ntfy", 3);
    let channels: Vec<Arc<dyn Channel>> = vec![email.clone(), push.clone()];
    assert_eq!(
        deliver_due(&store, &channels, 0, false).await.unwrap(),
        Some(30_000)
    );
    // Email took both; ntfy failed on the first and did not try the second.
    assert_eq!(email.sent(), ["firing", "resolved"]);
    assert_eq!(push.tries(), 1);
    let pending = store.outbox_pending().unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(
        pending[1].attempt.as_ref().map(|a| a.delivered.clone()),
        Some(vec!["email".to_string()])
    );
    // In its backoff nothing is tried; after it, ntfy catches up in order.
    deliver_due(&store, &channels, 10_000, false).await.unwrap();
    assert_eq!(push.tries(), 1);
    deliver_due(&store, &channels, 30_000, false).await.unwrap();
    deliver_due(&store, &channels, 90_000, false).await.unwrap();
    assert_eq!(
        deliver_due(&store, &channels, 210_000, false)
            .await
            .unwrap(),
        None
    );
    assert_eq!(push.sent(), ["firing", "resolved"]);
    assert_eq!(
        email.sent(),
        ["firing", "resolved"],
        "email got nothing twice"
    );
}

#[tokio::test]
async fn a_notification_goes_only_to_the_channels_it_names() {
    let store = MemoryStore::new();
    let mut n = mail("to the phone only");
    n.channels = vec!["ntfy".into()];
    store
        .commit("a", &AlertState::default(), None, &[n])
        .unwrap();
    let email = FakeChannel::named("email", 0);
    let push = FakeChannel::named("ntfy", 0);
    let channels: Vec<Arc<dyn Channel>> = vec![email.clone(), push.clone()];
    assert_eq!(
        deliver_due(&store, &channels, 0, false).await.unwrap(),
        None
    );
    assert!(email.sent().is_empty());
    assert_eq!(push.sent(), ["to the phone only"]);
}
