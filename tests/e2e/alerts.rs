//! Alerts by email against a real SMTP server (aiosmtpd with STARTTLS, AUTH and a
//! self-signed certificate the app trusts through `[smtp] ca_file`).
//!
//! The app runs in-process (`app::run_with`) with a test clock, so the rolling hour and
//! the 15-minute resolve hold pass in seconds; the mail server is the real thing.
//! `test-email` runs the real binary.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use watermeter::app::{self, Bound, RunOptions};

use crate::servers::{eventually, free_port, require};
use crate::util::{get, get_json, run_cli};

const MINUTE_MS: i64 = 60_000;
const ALERT: &str = "More than 100 L in one hour";
pub(crate) const USER: &str = "watermeter";
const PASSWORD: &str = "s3cret-test-password";
const WAIT: Duration = Duration::from_secs(30);

/// The Debian interpreter with aiosmtpd (the pyenv `python3` on PATH has none).
const PYTHON: &str = "/usr/bin/python3";

/// One received mail: its subject and its whole text (quoted-printable undone).
#[derive(Debug, Clone)]
pub(crate) struct Mail {
    pub(crate) subject: String,
    pub(crate) raw: String,
}

/// aiosmtpd on a fixed port with its certificate and mail directory; stopped on drop.
pub(crate) struct Smtp {
    child: Option<Child>,
    pub(crate) port: u16,
    pub(crate) dir: tempfile::TempDir,
}

impl Smtp {
    /// Generates the certificate; the server is not started yet.
    fn new() -> Smtp {
        let openssl = require("openssl", "openssl");
        let ok = Command::new(PYTHON)
            .args(["-c", "import aiosmtpd"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "python3-aiosmtpd is not installed for {PYTHON}: run ./test.sh, which installs the Debian package python3-aiosmtpd"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let status = Command::new(openssl)
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
            .args(["-subj", "/CN=127.0.0.1"])
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1"])
            .arg("-keyout")
            .arg(dir.path().join("key.pem"))
            .arg("-out")
            .arg(dir.path().join("cert.pem"))
            .stderr(Stdio::null())
            .status()
            .expect("run openssl");
        assert!(
            status.success(),
            "openssl could not make a test certificate"
        );
        std::fs::create_dir(dir.path().join("mail")).expect("mail dir");
        std::fs::write(dir.path().join("password"), format!("{PASSWORD}\n")).expect("pw");
        std::fs::write(dir.path().join("wrong-password"), "not-it\n").expect("pw");
        Smtp {
            child: None,
            port: free_port(),
            dir,
        }
    }

    pub(crate) fn started() -> Smtp {
        let mut s = Smtp::new();
        s.start();
        s
    }

    fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let server = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/server.py");
        let p = self.dir.path();
        let mut child = Command::new(PYTHON)
            .arg(server)
            .args(["--port", &self.port.to_string()])
            .arg("--cert")
            .arg(p.join("cert.pem"))
            .arg("--key")
            .arg(p.join("key.pem"))
            .arg("--maildir")
            .arg(p.join("mail"))
            .args(["--user", USER, "--password", PASSWORD])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the SMTP server");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout).read_line(&mut line).expect("read");
        assert_eq!(line.trim(), format!("listening on {}", self.port));
        self.child = Some(child);
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub(crate) fn ca_file(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// Every mail received so far, in arrival order.
    pub(crate) fn mails(&self) -> Vec<Mail> {
        let mut files: Vec<_> = std::fs::read_dir(self.dir.path().join("mail"))
            .expect("mail dir")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        files.sort();
        files.iter().map(|f| parse_mail(f)).collect()
    }

    /// Waits until `n` mails have arrived; returns them.
    pub(crate) fn wait_mails(&self, n: usize) -> Vec<Mail> {
        eventually(WAIT, || Some(self.mails()).filter(|m| m.len() >= n))
            .unwrap_or_else(|| panic!("expected {n} mail(s), got {:?}", self.mails()))
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.stop();
    }
}

fn parse_mail(path: &Path) -> Mail {
    let raw = std::fs::read_to_string(path).expect("read mail");
    // Enough quoted-printable decoding for these mails: soft breaks and '='.
    let raw = raw
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    let mut subject = String::new();
    let mut in_subject = false;
    for line in raw.lines() {
        if let Some(s) = line.strip_prefix("Subject: ") {
            subject = s.to_string();
            in_subject = true;
        } else if in_subject && line.starts_with([' ', '\t']) {
            subject.push_str(line);
        } else if in_subject {
            break;
        }
    }
    Mail { subject, raw }
}

fn config_text(dir: &Path, smtp: &Smtp, password_file: &str) -> String {
    format!(
        r#"data_dir = "{data}"
timezone = "Europe/Vienna"

[http]
listen = "127.0.0.1:0"

[udp]
listen = "127.0.0.1:0"

[[meter]]
id = "main"
name = "House"

[[alert]]
name = "{ALERT}"
meter = "main"
kind = "volume"
window = "1h"
threshold_liters = 100

[smtp]
host = "127.0.0.1"
port = {port}
security = "starttls"
username = "{USER}"
password_file = "{pw}"
from = "watermeter <pi@example.org>"
to = ["owner@example.org", "second@example.org"]
ca_file = "{ca}"
dashboard_url = "http://pi.example:8080"
"#,
        data = dir.join("data").display(),
        port = smtp.port,
        pw = smtp.dir.path().join(password_file).display(),
        ca = smtp.ca_file().display(),
    )
}

fn write_config(dir: &Path, smtp: &Smtp, password_file: &str) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(&path, config_text(dir, smtp, password_file)).expect("write config");
    path
}

/// `app::run_with` in its own runtime thread, with a clock `offset` ahead of the wall.
struct InProcess {
    bound: Bound,
    stop: watch::Sender<bool>,
    thread: std::thread::JoinHandle<anyhow::Result<()>>,
}

impl InProcess {
    fn start(config: &Path, offset: &Arc<AtomicI64>) -> InProcess {
        let config = watermeter::alert::kinds::load_config(config).expect("config");
        let offset = offset.clone();
        let clock: watermeter::alert::engine::Clock =
            Arc::new(move || chrono::Utc::now().timestamp_millis() + offset.load(Ordering::SeqCst));
        let (stop, stop_rx) = watch::channel(false);
        let (bound_tx, bound_rx) = std::sync::mpsc::channel();
        let opts = RunOptions {
            clock,
            alert_tick: Duration::from_millis(200),
            shutdown: Some(stop_rx),
            bound: Some(bound_tx),
        };
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(app::run_with(config, None, opts))
        });
        match bound_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(bound) => InProcess {
                bound,
                stop,
                thread,
            },
            Err(_) => match thread.join() {
                Ok(Err(e)) => panic!("the app did not start: {e:#}"),
                _ => panic!("the app did not announce its addresses"),
            },
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.bound.http)
    }

    fn send_udp(&self, datagram: &str) {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp bind");
        let to = self.bound.udp.expect("udp configured");
        s.send_to(datagram.as_bytes(), to).expect("udp send");
    }

    fn alerts(&self) -> serde_json::Value {
        get_json(&self.url("/api/v1/alerts"))
    }

    fn alert(&self) -> serde_json::Value {
        self.alerts()["alerts"][0].clone()
    }

    /// Waits until the alert's API state is `state`; returns the alert's JSON.
    fn wait_state(&self, state: &str) -> serde_json::Value {
        eventually(WAIT, || Some(self.alert()).filter(|a| a["state"] == state))
            .unwrap_or_else(|| panic!("alert never became {state}: {}", self.alerts()))
    }

    /// Waits for two more evaluations (each `evaluated` time differs).
    fn wait_evaluations(&self) {
        for _ in 0..2 {
            let before = self.alert()["evaluated"].clone();
            eventually(WAIT, || {
                Some(()).filter(|_| self.alert()["evaluated"] != before)
            })
            .expect("the alert is evaluated on a timer");
        }
    }

    fn stop(self) {
        let _ = self.stop.send(true);
        match self.thread.join() {
            Ok(r) => r.expect("the app ran and stopped cleanly"),
            Err(_) => panic!("the app panicked"),
        }
    }
}

/// 120 liters right now, one line each, in one datagram.
fn hundred_twenty_liters() -> String {
    "water,meter=main liters=1\n".repeat(120)
}

#[test]
fn hour_over_the_limit_mails_firing_once_and_after_a_restart_resolved_once() {
    let smtp = Smtp::started();
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), &smtp, "password");
    let offset = Arc::new(AtomicI64::new(0));
    let app = InProcess::start(&config, &offset);
    // The first evaluation runs right after the start ("unknown" until then).
    app.wait_state("ok");

    app.send_udp(&hundred_twenty_liters());
    let mails = smtp.wait_mails(1);
    let fired = &mails[0];
    assert_eq!(
        fired.subject,
        "[watermeter] More than 100 L in one hour: House: 120 L in 1 h (limit 100 L)"
    );
    for words in [
        "Alert \"More than 100 L in one hour\" on meter House is firing.",
        "Firing since: ",
        "Since ",
        "(Europe/Vienna): 120 L.",
        "Current flow: ",
        "http://pi.example:8080/meters/main?range=hour&at=",
        "Message-ID: <",
        "To: owner@example.org, second@example.org",
    ] {
        assert!(
            fired.raw.contains(words),
            "{words:?} missing in {}",
            fired.raw
        );
    }
    let a = app.wait_state("firing");
    assert_eq!(a["value"], 120.0);
    assert_eq!(a["kind"], "volume");
    assert_eq!(a["history"][0]["kind"], "firing");
    assert!(a["since"].is_string() && a["last_notified"].is_string());
    let outbox = &app.alerts()["outbox"];
    assert_eq!(outbox["pending"], 0, "{outbox}");
    let metrics = get(&app.url("/metrics")).body;
    assert!(metrics.contains(&format!("watermeter_alert_firing{{alert=\"{ALERT}\"}} 1")));
    assert!(metrics.contains("watermeter_outbox_pending 0"));
    let page = get(&app.url("/")).body;
    assert!(page.contains("firing") && page.contains("House: 120 L in 1 h"));

    // A restart in the middle of the alert sends no second "firing".
    app.wait_evaluations();
    app.stop();
    let app = InProcess::start(&config, &offset);
    app.wait_evaluations();
    assert_eq!(app.alert()["state"], "firing");
    assert_eq!(smtp.mails().len(), 1, "{:?}", smtp.mails());

    // The hour passes: the condition clears and the resolve hold (15 min) starts.
    offset.store(61 * MINUTE_MS, Ordering::SeqCst);
    app.wait_state("resolving");
    assert_eq!(smtp.mails().len(), 1);
    offset.store(77 * MINUTE_MS, Ordering::SeqCst);
    let mails = smtp.wait_mails(2);
    assert_eq!(
        mails[1].subject,
        "[watermeter] resolved: More than 100 L in one hour: House: 0 L in 1 h (limit 100 L)"
    );
    assert!(mails[1].raw.contains("resolved at"));
    assert!(mails[1].raw.contains("The run: from "), "{}", mails[1].raw);
    let a = app.wait_state("ok");
    assert_eq!(a["history"][0]["kind"], "resolved");
    app.wait_evaluations();
    assert_eq!(smtp.mails().len(), 2, "{:?}", smtp.mails());
    app.stop();
}

#[test]
fn a_mail_queued_while_the_server_was_down_arrives_once_after_a_restart() {
    let mut smtp = Smtp::new();
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), &smtp, "password");
    let offset = Arc::new(AtomicI64::new(0));
    let app = InProcess::start(&config, &offset);
    app.send_udp(&hundred_twenty_liters());
    app.wait_state("firing");
    let outbox = eventually(WAIT, || {
        let o = app.alerts()["outbox"].clone();
        o["last_error"].is_string().then_some(o)
    })
    .expect("the failed send is reported");
    assert_eq!(outbox["pending"], 1);
    let error = outbox["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!("127.0.0.1:{}", smtp.port)),
        "{error}"
    );
    let page = get(&app.url("/")).body;
    assert!(page.contains("mail is failing:"), "{page}");
    assert!(get(&app.url("/metrics"))
        .body
        .contains("watermeter_outbox_pending 1"));
    app.stop();

    smtp.start();
    let app = InProcess::start(&config, &offset);
    let mails = smtp.wait_mails(1);
    assert_eq!(
        mails[0].subject,
        "[watermeter] More than 100 L in one hour: House: 120 L in 1 h (limit 100 L)"
    );
    eventually(WAIT, || {
        Some(()).filter(|_| app.alerts()["outbox"]["pending"] == 0)
    })
    .expect("the outbox empties");
    app.stop();

    let app = InProcess::start(&config, &offset);
    app.wait_evaluations();
    assert_eq!(app.alerts()["outbox"]["pending"], 0);
    assert_eq!(smtp.mails().len(), 1, "{:?}", smtp.mails());
    app.stop();
}

#[test]
fn test_email_reports_success_or_the_servers_words_with_a_hint() {
    let smtp = Smtp::started();
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), &smtp, "password");
    let (code, out, err) = run_cli(&["test-email", "--config", &config.to_string_lossy()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("test mail sent to owner@example.org"), "{out}");
    let mails = smtp.wait_mails(1);
    assert_eq!(mails[0].subject, "[watermeter] test mail");

    let config = write_config(tmp.path(), &smtp, "wrong-password");
    let (code, out, err) = run_cli(&["test-email", "--config", &config.to_string_lossy()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("the test mail was not sent"), "{err}");
    assert!(err.contains("535"), "the server's words: {err}");
    assert!(
        err.contains("hint:") && err.contains("password_file"),
        "{err}"
    );
    assert!(
        !err.contains("not-it"),
        "a password must never print: {err}"
    );
    assert_eq!(smtp.mails().len(), 1);
}

#[test]
fn check_config_rejects_bad_alert_rules_with_their_line() {
    let smtp = Smtp::new();
    let tmp = tempfile::tempdir().unwrap();
    let good = config_text(tmp.path(), &smtp, "password");
    let check = |text: &str, words: &[&str]| {
        let path = tmp.path().join("check.toml");
        std::fs::write(&path, text).unwrap();
        let (code, out, err) = run_cli(&["check-config", "--config", &path.to_string_lossy()]);
        assert_eq!(code, 1, "{text}\n{out}");
        for w in words {
            assert!(err.contains(w), "{w:?} missing in {err}");
        }
    };
    check(
        &good.replace("meter = \"main\"\nkind", "meter = \"garden\"\nkind"),
        &["garden"],
    );
    check(
        &good.replace("window = \"1h\"", "window = \"5m\""),
        &["window", "15"],
    );
    let no_smtp = &good[..good.find("[smtp]").unwrap()];
    check(no_smtp, &["[smtp]"]);
    let path = tmp.path().join("good.toml");
    std::fs::write(&path, &good).unwrap();
    let (code, out, err) = run_cli(&["check-config", "--config", &path.to_string_lossy()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 alert(s)"), "{out}");
}

/// One leak scenario through the real app: the pulses (ms, up to now) go in over
/// UDP, exactly one firing mail names `cause`, and after the water stops exactly
/// one resolved mail follows. Returns the app (still running) and `now`.
fn leak_scenario(
    smtp: &Smtp,
    tmp: &Path,
    times: &[i64],
    cause: &str,
    mails_before: usize,
) -> (InProcess, Arc<AtomicI64>) {
    let config = tmp.join("leak.toml");
    let text = config_text(tmp, smtp, "password").replace(
        "kind = \"volume\"\nwindow = \"1h\"\nthreshold_liters = 100",
        "kind = \"leak\"",
    );
    std::fs::write(&config, text).unwrap();
    let offset = Arc::new(AtomicI64::new(0));
    let app = InProcess::start(&config, &offset);
    app.wait_state("ok");
    for chunk in times.chunks(100) {
        let lines: String = chunk
            .iter()
            .map(|t| format!("water,meter=main liters=1 {}\n", t * 1_000_000))
            .collect();
        app.send_udp(&lines);
    }
    let mails = smtp.wait_mails(mails_before + 1);
    let fired = &mails[mails_before];
    assert!(
        fired
            .subject
            .starts_with("[watermeter] More than 100 L in one hour: House: leak: "),
        "{}",
        fired.subject
    );
    assert!(
        fired.subject.contains(cause),
        "{cause:?} in {}",
        fired.subject
    );
    let a = app.wait_state("firing");
    assert_eq!(a["kind"], "leak");
    app.wait_evaluations();
    assert_eq!(
        smtp.mails().len(),
        mails_before + 1,
        "one episode, one mail: {:?}",
        smtp.mails()
    );

    // The water stops: two hours later the patterns are clear, an hour after
    // that the alert resolves with one mail.
    offset.store(2 * 60 * MINUTE_MS, Ordering::SeqCst);
    app.wait_state("resolving");
    offset.store(3 * 60 * MINUTE_MS + 5 * MINUTE_MS, Ordering::SeqCst);
    let mails = smtp.wait_mails(mails_before + 2);
    assert!(
        mails[mails_before + 1].subject.starts_with(
            "[watermeter] resolved: More than 100 L in one hour: House: the leak stopped"
        ),
        "{}",
        mails[mails_before + 1].subject
    );
    app.wait_state("ok");
    app.wait_evaluations();
    assert_eq!(smtp.mails().len(), mails_before + 2, "{:?}", smtp.mails());
    (app, offset)
}

#[test]
fn each_leak_pattern_mails_one_leak_alert_naming_its_cause_and_resolves_once() {
    let smtp = Smtp::started();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let hour = 60 * MINUTE_MS;
    // A leaking flapper: refills of 2 L every 25 minutes for eight hours.
    let flapper: Vec<i64> = (0..20)
        .flat_map(|i| {
            let t = now_ms - 8 * hour + i * 25 * MINUTE_MS;
            [t, t + 15_000]
        })
        .collect();
    // A burst: two weeks of 60 L showers at 9 L/min every morning, then 45 L/min
    // for five minutes up to now.
    let mut burst: Vec<i64> = (1..=15)
        .flat_map(|d| (0..60).map(move |k| now_ms - d * 24 * hour + k * 6_667))
        .collect();
    burst.extend((0..225).map(|k| now_ms - 5 * MINUTE_MS + k * 1_333));
    let tmp = [(); 3].map(|()| tempfile::tempdir().unwrap());
    let (app, _) = leak_scenario(
        &smtp,
        tmp[0].path(),
        &flapper,
        "Leaking toilet flapper since",
        0,
    );
    app.stop();
    let (app, _) = leak_scenario(&smtp, tmp[1].path(), &burst, "Burst since", 2);
    app.stop();
    // A running toilet: a steady 3 L/min for 70 minutes.
    let running: Vec<i64> = (0..210)
        .map(|k| now_ms - 70 * MINUTE_MS + k * 20_000)
        .collect();
    let (app, _) = leak_scenario(
        &smtp,
        tmp[2].path(),
        &running,
        "Running toilet or stuck valve since",
        4,
    );
    app.stop();
    assert_eq!(smtp.mails().len(), 6);
}

#[test]
fn a_leak_pulse_train_mails_one_leak_alert_and_resolves_once() {
    let smtp = Smtp::started();
    let tmp = tempfile::tempdir().unwrap();
    // A drip of 2 L/h for 26 hours, then a toilet that keeps running at 3 L/min
    // for 70 minutes, up to now: one episode.
    let now_ms = chrono::Utc::now().timestamp_millis();
    let running_from = now_ms - 70 * MINUTE_MS;
    let mut times: Vec<i64> = (0..52)
        .map(|i| running_from - 26 * 60 * MINUTE_MS + i * 30 * MINUTE_MS + 11)
        .collect();
    times.extend((0..210).map(|i| running_from + i * 20_000));
    let (app, _offset) = leak_scenario(&smtp, tmp.path(), &times, "Drip since", 0);

    // The draw log shows the running toilet as one leak draw.
    let from = chrono::DateTime::from_timestamp_millis(running_from - 60_000)
        .unwrap()
        .to_rfc3339();
    let to = chrono::DateTime::from_timestamp_millis(now_ms + 60_000)
        .unwrap()
        .to_rfc3339();
    let draws = get_json(&app.url(&format!(
        "/api/v1/meters/main/draws?from={}&to={}",
        from.replace('+', "%2B"),
        to.replace('+', "%2B")
    )));
    let leaks: Vec<&serde_json::Value> = draws["draws"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == "leak" && d["liters"].as_f64().unwrap() >= 200.0)
        .collect();
    assert_eq!(leaks.len(), 1, "{draws}");
    app.stop();
}

#[test]
fn a_daily_budget_mails_once_at_75_and_once_at_100_percent_and_starts_again_quietly() {
    use chrono::TimeZone;
    let smtp = Smtp::started();
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("budget.toml");
    let text = config_text(tmp.path(), &smtp, "password").replace(
        "kind = \"volume\"\nwindow = \"1h\"\nthreshold_liters = 100",
        "kind = \"budget\"\nperiod = \"day\"\nlimit_liters = 100",
    );
    std::fs::write(&config, text).unwrap();
    // The alert clock reads the last noon in Vienna that has passed, whenever the
    // test runs; the water flows just before it.
    let vienna = chrono_tz::Europe::Vienna;
    let noon_of = |day: chrono::NaiveDate| {
        let t = day.and_hms_opt(12, 0, 0).unwrap();
        vienna
            .from_local_datetime(&t)
            .earliest()
            .unwrap()
            .timestamp_millis()
    };
    let today = chrono::Utc::now().with_timezone(&vienna).date_naive();
    let noon = match noon_of(today) {
        n if n < chrono::Utc::now().timestamp_millis() => n,
        _ => noon_of(today.pred_opt().unwrap()),
    };
    let offset = Arc::new(AtomicI64::new(noon - chrono::Utc::now().timestamp_millis()));
    let app = InProcess::start(&config, &offset);
    app.wait_state("ok");
    let liters = |n: i64, minutes_before: i64| -> String {
        (0..n)
            .map(|i| {
                let t = noon - minutes_before * MINUTE_MS + i * 1000;
                format!("water,meter=main liters=1 {}\n", t * 1_000_000)
            })
            .collect()
    };

    app.send_udp(&liters(80, 30));
    let mails = smtp.wait_mails(1);
    assert_eq!(
        mails[0].subject,
        "[watermeter] More than 100 L in one hour: House: 80 % of the daily budget, 80 L of 100 L today"
    );
    assert!(
        mails[0].raw.contains("one more notification at 100 %"),
        "{}",
        mails[0].raw
    );
    assert!(
        mails[0].raw.contains("/meters/main?range=day&at="),
        "{}",
        mails[0].raw
    );
    let page = get(&app.url("/")).body;
    assert!(
        page.contains("<meter") && page.contains("80 L of 100 L today (80 %)"),
        "{page}"
    );

    // 90 L: past no new level. 110 L: past 100 %, one mail.
    app.send_udp(&liters(10, 20));
    app.wait_evaluations();
    assert_eq!(smtp.mails().len(), 1, "{:?}", smtp.mails());
    app.send_udp(&liters(20, 10));
    let mails = smtp.wait_mails(2);
    assert!(
        mails[1]
            .subject
            .ends_with("110 % of the daily budget, 110 L of 100 L today"),
        "{}",
        mails[1].subject
    );
    let a = app.alert();
    assert_eq!(a["kind"], "budget");
    assert_eq!(a["history"][0]["kind"], "level");

    // A restart repeats nothing; the next day starts again without a mail.
    app.wait_evaluations();
    app.stop();
    let app = InProcess::start(&config, &offset);
    app.wait_evaluations();
    offset.fetch_add(24 * 60 * MINUTE_MS, Ordering::SeqCst);
    app.wait_evaluations();
    assert_eq!(app.alert()["value"], 0.0);
    assert_eq!(smtp.mails().len(), 2, "{:?}", smtp.mails());
    app.stop();
}
