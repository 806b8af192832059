//! SIGKILL at random moments while an HTTP client writes, and SIGTERM under load:
//! every point acknowledged with a 204 is stored, and nothing is stored twice.
//!
//! Batch `b` holds 5,000 one-liter points spread over UTC hour `FIRST_HOUR + b`
//! (ms precision, 720 ms apart) and is sent once, never retried. The store applies
//! a request atomically, so afterwards each hour holds exactly 5,000 L when its
//! batch got a 204, and 0 or 5,000 L when the connection broke.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::{liters_between, try_post, App, Rng};

const FIRST_HOUR: u64 = 1_600_000_000 / 3600;
const PER_BATCH: u64 = 5_000;

fn batch(b: u64) -> String {
    let start_ms = (FIRST_HOUR + b) * 3_600_000;
    let mut body = String::with_capacity(PER_BATCH as usize * 48);
    for i in 0..PER_BATCH {
        body.push_str(&format!(
            "water,meter=main liters=1 {}\n",
            start_ms + i * 720
        ));
    }
    body
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Acked,
    Broken,
}

/// Sends batches `0..n` once each to whatever address `addr` holds at the time.
fn writer(
    addr: Arc<Mutex<String>>,
    n: u64,
    done: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for b in 0..n {
        sent.store(b, Ordering::SeqCst);
        let body = batch(b);
        let url = format!("{}/write?precision=ms", addr.lock().unwrap());
        let outcome = match try_post(&url, &body) {
            Ok(a) if a.status == 204 => Outcome::Acked,
            Ok(a) if a.status == 503 => Outcome::Broken,
            Ok(a) => panic!("batch {b}: {} {}", a.status, a.body),
            Err(_) => Outcome::Broken,
        };
        if outcome == Outcome::Broken {
            // Wait for the restart before the next batch.
            std::thread::sleep(Duration::from_millis(50));
        }
        outcomes.push(outcome);
    }
    done.store(true, Ordering::SeqCst);
    outcomes
}

/// Checks each batch's hour: exactly 5,000 L if acknowledged, 0 or 5,000 L if not.
fn check_every_batch(app: &App, outcomes: &[Outcome]) -> (u64, u64) {
    let (mut acked, mut stored_unacked) = (0, 0);
    for (b, &o) in outcomes.iter().enumerate() {
        let from = (FIRST_HOUR + b as u64) * 3600;
        let liters = liters_between(app, from, from + 3599);
        match (o, liters) {
            (Outcome::Acked, l) if l == PER_BATCH as f64 => acked += 1,
            (Outcome::Broken, l) if l == PER_BATCH as f64 => stored_unacked += 1,
            (Outcome::Broken, 0.0) => {}
            (o, l) => panic!("batch {b} ({o:?}) left {l} L in its hour"),
        }
    }
    let total = app.total_liters("main");
    assert_eq!(total, ((acked + stored_unacked) * PER_BATCH) as f64);
    (acked, stored_unacked)
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_point_and_stores_none_twice() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash loop seed {seed}");
    let mut rng = Rng(seed);
    let (mut app, _tmp) = App::start("UTC", "");
    let addr = Arc::new(Mutex::new(format!("http://{}", app.http)));
    let done = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let n = 1_000_000 / PER_BATCH;
    let w = {
        let (addr, done, sent) = (addr.clone(), done.clone(), sent.clone());
        std::thread::spawn(move || writer(addr, n, done, sent))
    };
    let mut kills = 0;
    while !done.load(Ordering::SeqCst) {
        // A random moment: after the writer started 3 to 25 more batches (so the
        // number of kills does not depend on how fast this machine is), plus up to
        // 30 ms so that the kill lands anywhere inside a request.
        let target = sent.load(Ordering::SeqCst) + 3 + rng.below(23);
        while sent.load(Ordering::SeqCst) < target && !done.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(rng.below(30)));
        if done.load(Ordering::SeqCst) {
            break;
        }
        app = app.restart(); // SIGKILL, then start again on new ports
        kills += 1;
        *addr.lock().unwrap() = format!("http://{}", app.http);
    }
    let outcomes = w.join().unwrap();
    let app = app.restart();
    let (acked, stored_unacked) = check_every_batch(&app, &outcomes);
    let broken = outcomes.iter().filter(|&&o| o == Outcome::Broken).count();
    eprintln!(
        "crash loop: {kills} SIGKILLs; {acked} batches acknowledged and stored; {broken} broken, of which {stored_unacked} were stored anyway"
    );
    assert!(kills >= 3, "the loop killed the server only {kills} times");
    assert!(acked > 0);
}

#[test]
fn sigterm_under_load_exits_cleanly_within_5_s_and_keeps_every_acknowledged_point() {
    let (app, _tmp) = App::start("UTC", "");
    let addr = Arc::new(Mutex::new(format!("http://{}", app.http)));
    let done = Arc::new(AtomicBool::new(false));
    let w = {
        let (addr, done) = (addr.clone(), done.clone());
        std::thread::spawn(move || writer(addr, 40, done, Arc::new(AtomicU64::new(0))))
    };
    let udp = app.udp;
    let stop_udp = Arc::new(AtomicBool::new(false));
    let u = {
        let stop = stop_udp.clone();
        std::thread::spawn(move || {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            while !stop.load(Ordering::SeqCst) {
                let _ = s.send_to(b"water,meter=other liters=1", udp);
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(1_500));
    let (config, dir) = (app.config.clone(), app.dir.clone());
    let mut app = app;
    let child = &mut app.child;
    let sent = Instant::now();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    // The spec's bound: a clean exit within 5 s of SIGTERM, under load.
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if sent.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        status.is_some_and(|s| s.success()),
        "no clean exit within 5 s: {status:?}"
    );
    let outcomes = w.join().unwrap();
    stop_udp.store(true, Ordering::SeqCst);
    u.join().unwrap();
    drop(app);
    let app = App::start_with(&config, &dir);
    let (acked, _) = check_every_batch(&app, &outcomes);
    assert!(acked > 0, "no batch went through before SIGTERM");
}
