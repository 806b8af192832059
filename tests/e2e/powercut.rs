//! Power cuts on a file system that forgets every write not yet fsynced
//! (`tests/powercut/powercutfs.py`, a FUSE file system in the manner of LazyFS).
//!
//! The real binary runs with its data directory on that file system under load from
//! two HTTP writers, a UDP sender and a simulated S0 meter on the GPIO path. At a
//! random moment the process is killed, the file system forgets what was not synced
//! (all of it, a torn prefix, or a random subset), the "machine" gets a new boot id,
//! and the binary starts again. Required after every cut:
//! - every batch answered 204 is stored whole; no batch is stored in part;
//! - every UDP point and GPIO pulse the process reported durable is stored: a
//!   poller reads `watermeter_durable_liters` from `/metrics` while the load runs,
//!   and after the restart each meter holds at least the last value it saw (what
//!   the process itself says, not a wall-clock window the scheduler can miss);
//! - no S0 pulse is stored twice;
//! - the start succeeds (within the unit's 5-minute start timeout);
//! - each meter's total equals the sum of its buckets.
//!
//! Both on one store that accumulates across all cuts and on fresh stores. The long
//! mode (`bench/powercut.sh --long N`) makes N cuts on one store whose HTTP writers
//! fill one dense day, minute by minute and round after round (late events into
//! chunks that are already there), until that day holds well over 500,000 events.
//! A second test stops the process itself at chosen points (`WATERMETER_CRASH_AT`):
//! while a journal record is half written, between the journal write and sled,
//! after the sync before the answer, and during a rebuild of the index.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::{config_text, get_json, try_post, App, Rng, BIN};

const FLUSH_MS: u64 = 500;
/// Points per HTTP batch in the suite's mode: each batch fills its own UTC hour.
const PER_BATCH: u64 = 40;
/// Points per HTTP batch in the long mode: each fills one minute of the dense day.
const PER_BATCH_DENSE: u64 = 400;
/// The long mode's dense day: 2024-06-01 (UTC).
const DENSE_DAY_MS: i64 = 19_875 * 86_400_000;

/// The power-cut file system, mounted for one test.
struct PowerCutFs {
    child: Child,
    mnt: PathBuf,
    control: PathBuf,
}

impl PowerCutFs {
    fn mount(dir: &Path) -> PowerCutFs {
        assert!(
            unsafe_is_root(),
            "the power-cut tests mount a FUSE file system and need root, as CI runs them: run ./test.sh as root"
        );
        let mnt = dir.join("mnt");
        std::fs::create_dir_all(&mnt).unwrap();
        let control = dir.join("control.sock");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/powercut/powercutfs.py");
        let child = Command::new("/usr/bin/python3")
            .arg(&script)
            .arg(&mnt)
            .arg("--control")
            .arg(&control)
            .stdin(Stdio::null())
            .spawn()
            .expect("start powercutfs.py (Debian package python3-fusepy, installed by ./test.sh)");
        let fs = PowerCutFs {
            child,
            mnt,
            control,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !(fs.mounted() && fs.command("ping") == "ok") {
            assert!(Instant::now() < deadline, "powercutfs did not mount");
            std::thread::sleep(Duration::from_millis(50));
        }
        fs
    }

    fn mounted(&self) -> bool {
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let mnt = self.mnt.to_string_lossy().to_string();
        mounts
            .lines()
            .any(|l| l.split(' ').nth(1) == Some(mnt.as_str()))
    }

    fn command(&self, line: &str) -> String {
        let Ok(mut s) = UnixStream::connect(&self.control) else {
            return String::new();
        };
        let _ = s.write_all(format!("{line}\n").as_bytes());
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer.trim().to_string()
    }

    /// Forgets what was not synced, in one of three ways.
    fn cut(&self, mode: &str) -> String {
        let answer = self.command(&format!("crash {mode}"));
        assert!(answer.starts_with("ok"), "crash {mode}: {answer}");
        answer
    }
}

impl Drop for PowerCutFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The power-cut tests take turns: each drives a FUSE file system, writers and
/// restarts, and two at once would only measure each other.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn take_turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

fn unsafe_is_root() -> bool {
    // SAFETY: geteuid has no preconditions and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// One simulated machine: config, boot id and GPIO pulse log outside the cut file system.
struct Machine {
    config: PathBuf,
    boot_id: PathBuf,
    pulses: PathBuf,
    dir: PathBuf,
    boots: u64,
    /// Starts so far: each may leave one pulse stored but not yet logged.
    starts: std::cell::Cell<u64>,
}

impl Machine {
    fn new(tmp: &Path, data_dir: &Path, name: &str) -> Machine {
        let meters = "[[meter]]\nid = \"main\"\nname = \"HTTP\"\n\
                      [[meter]]\nid = \"udp\"\nname = \"UDP\"\n\
                      [[meter]]\nid = \"gpio\"\nname = \"S0\"\n[meter.gpio]\npin = 17\n";
        let extra = format!("[store]\nflush_ms = {FLUSH_MS}\n\n{meters}");
        let config = tmp.join(format!("{name}.toml"));
        std::fs::write(&config, config_text(data_dir, "Europe/Vienna", &extra)).unwrap();
        let m = Machine {
            config,
            boot_id: tmp.join(format!("{name}.boot_id")),
            pulses: tmp.join(format!("{name}.pulses")),
            dir: tmp.to_path_buf(),
            boots: 0,
            starts: std::cell::Cell::new(0),
        };
        m.new_boot();
        m
    }

    /// A power cut is a reboot: the kernel's boot id changes.
    fn new_boot(&self) {
        let id = format!(
            "boot-{}-{}-{}",
            self.boots,
            self.starts.get(),
            std::process::id()
        );
        std::fs::write(&self.boot_id, id).unwrap();
    }

    fn env(&self) -> Vec<(&'static str, std::ffi::OsString)> {
        let gpio = format!("150:{}", self.pulses.display());
        vec![
            ("WATERMETER_BOOT_ID_FILE", self.boot_id.clone().into()),
            ("WATERMETER_TEST_GPIO", gpio.into()),
        ]
    }

    fn start(&self, extra_env: &[(&str, &std::ffi::OsStr)]) -> App {
        self.starts.set(self.starts.get() + 1);
        let env = self.env();
        let mut all: Vec<(&str, &std::ffi::OsStr)> =
            env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
        all.extend_from_slice(extra_env);
        App::spawn_with_env(&self.config, &self.dir, &all)
    }

    fn logged_pulses(&self) -> Vec<i64> {
        std::fs::read_to_string(&self.pulses)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Acked,
    Unknown,
}

/// Where the HTTP writers put their batches.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// Each batch of [`PER_BATCH`] points in its own UTC hour (the suite).
    Hours,
    /// Batch `n` in minute `n % 1440` of the dense day, round `n / 1440`.
    DenseDay,
}

/// What the load sent during one run, for the checks after the cut.
#[derive(Default)]
struct Sent {
    /// (slot: the hour, or the dense day's batch number; outcome)
    batches: Vec<(u64, Outcome)>,
    /// UDP points sent.
    udp: u64,
    /// The highest `watermeter_durable_liters` seen per meter while the load ran.
    durable: BTreeMap<String, f64>,
}

struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    sent: Arc<Mutex<Sent>>,
}

/// Slots already used, so every run writes where nothing is yet.
struct Slots {
    next_hour: AtomicU64,
    next_udp_minute: AtomicU64,
}

const HTTP_BASE_HOUR: u64 = 1_600_000_000 / 3600; // from 2020-09
const UDP_BASE_MIN: u64 = 1_700_000_000 / 60; // from 2023-11

/// The points of HTTP batch `slot`.
fn batch_body(mode: Mode, slot: u64) -> String {
    match mode {
        Mode::Hours => (0..PER_BATCH)
            .map(|i| {
                let ts = (HTTP_BASE_HOUR + slot) * 3_600_000 + i * 1000;
                format!("water,meter=main liters=1 {ts}\n")
            })
            .collect(),
        Mode::DenseDay => {
            let (minute, round) = ((slot % 1440) as i64, (slot / 1440) as i64);
            (0..PER_BATCH_DENSE as i64)
                .map(|i| {
                    let ts = DENSE_DAY_MS + minute * 60_000 + i * 150 + round;
                    format!("water,meter=main liters=1 {ts}\n")
                })
                .collect()
        }
    }
}

/// `watermeter_durable_liters` per meter, from a `/metrics` text.
fn durable_liters(metrics: &str) -> BTreeMap<String, f64> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("watermeter_durable_liters{meter=\""))
        .filter_map(|l| {
            let (meter, value) = l.split_once("\"} ")?;
            Some((meter.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

impl Load {
    fn start(app: &App, slots: &Arc<Slots>, mode: Mode) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(Mutex::new(Sent::default()));
        let mut threads = Vec::new();
        for _ in 0..2 {
            let (stop, sent, slots) = (stop.clone(), sent.clone(), slots.clone());
            let url = app.url("/write?db=w&precision=ms");
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let slot = slots.next_hour.fetch_add(1, Ordering::SeqCst);
                    let body = batch_body(mode, slot);
                    let outcome = match try_post(&url, &body) {
                        Ok(a) if a.status == 204 => Outcome::Acked,
                        Ok(a) if a.status >= 500 => Outcome::Unknown,
                        Ok(a) => panic!("batch {slot}: {} {}", a.status, a.body),
                        Err(_) => Outcome::Unknown,
                    };
                    sent.lock().unwrap().batches.push((slot, outcome));
                    if outcome == Outcome::Unknown {
                        break;
                    }
                    if mode == Mode::DenseDay {
                        // A few thousand events per run: 300 runs fill the day
                        // past 500,000 events without a journal of gigabytes.
                        std::thread::sleep(Duration::from_millis(400));
                    }
                }
            }));
        }
        {
            let (stop, sent, slots) = (stop.clone(), sent.clone(), slots.clone());
            let to = app.udp;
            threads.push(std::thread::spawn(move || {
                let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                while !stop.load(Ordering::SeqCst) {
                    let minute =
                        UDP_BASE_MIN + slots.next_udp_minute.fetch_add(1, Ordering::SeqCst);
                    let ts_ms = (minute * 60_000) as i64;
                    let line = format!("water,meter=udp liters=1 {}", ts_ms * 1_000_000);
                    if s.send_to(line.as_bytes(), to).is_ok() {
                        sent.lock().unwrap().udp += 1;
                    }
                    std::thread::sleep(Duration::from_millis(40));
                }
            }));
        }
        {
            // What the process says is durable, as often as it can say it.
            let (stop, sent) = (stop.clone(), sent.clone());
            let url = app.url("/metrics");
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if let Ok(a) = crate::util::try_get(&url) {
                        let seen = durable_liters(&a.body);
                        let mut sent = sent.lock().unwrap();
                        for (meter, l) in seen {
                            let best = sent.durable.entry(meter).or_insert(0.0);
                            *best = best.max(l);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }));
        }
        Load {
            stop,
            threads,
            sent,
        }
    }

    fn stop(self) -> Sent {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().expect("load thread");
        }
        Arc::try_unwrap(self.sent)
            .ok()
            .expect("load threads ended")
            .into_inner()
            .unwrap()
    }
}

fn rfc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn usage(app: &App, meter: &str, from_ms: i64, to_ms: i64, step: &str) -> serde_json::Value {
    get_json(&app.url(&format!(
        "/api/v1/meters/{meter}/usage?from={}&to={}&step={step}",
        rfc(from_ms),
        rfc(to_ms)
    )))
}

/// What earlier runs proved stored, across the runs of one store.
#[derive(Default)]
struct Ledger {
    /// Liters known stored in each minute of the dense day.
    dense: BTreeMap<u64, f64>,
    /// UDP points ever sent to this store.
    udp_sent: u64,
}

/// Every check after a restart.
fn check_after_cut(
    app: &App,
    machine: &Machine,
    sent: &Sent,
    ledger: &mut Ledger,
    mode: Mode,
    run: &str,
) {
    match mode {
        Mode::Hours => check_hours(app, sent, run),
        Mode::DenseDay => check_dense_day(app, sent, ledger, run),
    }
    // UDP and S0: everything the process reported durable is there.
    for meter in ["udp", "gpio"] {
        let durable = sent.durable.get(meter).copied().unwrap_or(0.0);
        let stored = app.total_liters(meter);
        assert!(
            stored >= durable,
            "{run}: {meter} holds {stored} L, but the process had reported {durable} L durable"
        );
    }
    ledger.udp_sent += sent.udp;
    let udp = app.total_liters("udp");
    assert!(
        udp <= ledger.udp_sent as f64,
        "{run}: {udp} UDP liters stored, but only {} points were ever sent",
        ledger.udp_sent
    );
    let pulses = machine.logged_pulses();
    let gpio_total = app.total_liters("gpio") as usize;
    assert!(
        gpio_total <= pulses.len() + machine.starts.get() as usize,
        "{run}: {gpio_total} S0 pulses stored, more than the {} counted",
        pulses.len()
    );
    // Totals equal the sums of their buckets. The simulated S0 meter keeps
    // counting after the restart: compare only when no pulse came in between.
    for meter in ["main", "udp", "gpio"] {
        let months = || {
            usage(app, meter, 1_420_070_400_000, 2_051_222_400_000, "month")["total_liters"]
                .as_f64()
                .unwrap()
        };
        let mut tries = 0;
        loop {
            let (before, total, after) = (months(), app.total_liters(meter), months());
            if before == after {
                assert_eq!(
                    total, before,
                    "{run}: {meter}'s total differs from the sum of its months"
                );
                break;
            }
            tries += 1;
            assert!(
                tries < 50,
                "{run}: {meter} never stood still long enough to compare"
            );
        }
    }
}

/// Acknowledged batches whole, others whole or absent: each in its own hour.
fn check_hours(app: &App, sent: &Sent, run: &str) {
    for &(slot, outcome) in &sent.batches {
        let from_ms = ((HTTP_BASE_HOUR + slot) * 3_600_000) as i64;
        let l = usage(app, "main", from_ms, from_ms + 3_600_000, "hour")["total_liters"]
            .as_f64()
            .unwrap();
        match (outcome, l as u64) {
            (_, n) if n == PER_BATCH => {}
            (Outcome::Unknown, 0) => {}
            (o, n) => {
                panic!("{run}: the batch of hour slot {slot} ({o:?}) holds {n} L, not {PER_BATCH}")
            }
        }
    }
}

/// The same in the dense day, where several rounds share a minute: each minute
/// holds what earlier runs proved, plus this run's acknowledged batches, plus
/// whole batches of those whose answer was lost, nothing else.
fn check_dense_day(app: &App, sent: &Sent, ledger: &mut Ledger, run: &str) {
    let minutes = usage(
        app,
        "main",
        DENSE_DAY_MS,
        DENSE_DAY_MS + 86_400_000,
        "minute",
    );
    let buckets = minutes["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 1440, "{run}");
    let mut acked: BTreeMap<u64, u64> = BTreeMap::new();
    let mut unknown: BTreeMap<u64, u64> = BTreeMap::new();
    for &(slot, outcome) in &sent.batches {
        let minute = slot % 1440;
        acked.entry(minute).or_default();
        match outcome {
            Outcome::Acked => *acked.entry(minute).or_default() += 1,
            Outcome::Unknown => *unknown.entry(minute).or_default() += 1,
        }
    }
    for (minute, liters) in buckets.iter().enumerate() {
        let minute = minute as u64;
        let have = liters["liters"].as_f64().unwrap();
        let known = ledger.dense.get(&minute).copied().unwrap_or(0.0);
        let (a, u) = (
            acked.get(&minute).copied().unwrap_or(0),
            unknown.get(&minute).copied().unwrap_or(0),
        );
        let extra = have - known - (a * PER_BATCH_DENSE) as f64;
        let whole = extra >= 0.0
            && extra.fract() == 0.0
            && (extra as u64) % PER_BATCH_DENSE == 0
            && (extra as u64) / PER_BATCH_DENSE <= u;
        assert!(
            whole,
            "{run}: minute {minute} of the dense day holds {have} L; earlier runs proved \
             {known} L, this run had {a} batches acknowledged and {u} unanswered of \
             {PER_BATCH_DENSE} L each"
        );
        ledger.dense.insert(minute, have);
    }
}

/// What a series of cuts went through.
#[derive(Debug, Default)]
struct Tally {
    acked: usize,
    slowest_start: Duration,
    udp_durable: f64,
    gpio_durable: f64,
}

/// `cuts` power cuts on one accumulating store or on fresh ones.
fn run_cuts(tmp: &Path, fs: &PowerCutFs, cuts: u64, fresh: bool, mode: Mode, seed: u64) -> Tally {
    let mut rng = Rng(seed);
    let slots = Arc::new(Slots {
        next_hour: AtomicU64::new(0),
        next_udp_minute: AtomicU64::new(0),
    });
    let modes = ["", "torn", "subset"];
    let mut tally = Tally::default();
    let name = |k: u64| {
        if fresh {
            format!("fresh-{k}")
        } else {
            "accumulating".to_string()
        }
    };
    let mut machine = Machine::new(tmp, &fs.mnt.join(name(0)), &name(0));
    let mut ledger = Ledger::default();
    for k in 0..cuts {
        if fresh && k > 0 {
            machine = Machine::new(tmp, &fs.mnt.join(name(k)), &name(k));
            ledger = Ledger::default();
        }
        let app = machine.start(&[]);
        let load = Load::start(&app, &slots, mode);
        std::thread::sleep(Duration::from_millis(1_500 + rng.below(2_500)));
        app.kill();
        let sent = load.stop();
        let crash = modes[(k % 3) as usize];
        let crash = if crash.is_empty() {
            String::new()
        } else {
            format!("{crash} {}", rng.next() % 1_000_000)
        };
        fs.cut(&crash);
        machine.boots += 1;
        machine.new_boot();
        let run = format!(
            "cut {k} ({}, crash {crash})",
            if fresh { "fresh store" } else { "accumulating" }
        );
        let started = Instant::now();
        let app = machine.start(&[]);
        tally.slowest_start = tally.slowest_start.max(started.elapsed());
        check_after_cut(&app, &machine, &sent, &mut ledger, mode, &run);
        tally.acked += sent
            .batches
            .iter()
            .filter(|b| b.1 == Outcome::Acked)
            .count();
        tally.udp_durable += sent.durable.get("udp").copied().unwrap_or(0.0);
        tally.gpio_durable += sent.durable.get("gpio").copied().unwrap_or(0.0);
        if mode == Mode::DenseDay && k % 25 == 24 {
            let day: f64 = ledger.dense.values().sum();
            println!(
                "power cuts: {} of {cuts}, the dense day holds {day} L",
                k + 1
            );
        }
        app.kill();
    }
    assert!(
        tally.slowest_start < Duration::from_secs(300),
        "a start took {:?}, longer than the unit's 5-minute start timeout",
        tally.slowest_start
    );
    if mode == Mode::DenseDay {
        let day: f64 = ledger.dense.values().sum();
        println!("power cuts: the dense day holds {day} events");
    }
    tally
}

#[test]
fn power_cuts_lose_no_acknowledged_liter_on_one_store_or_on_fresh_ones() {
    let _turn = take_turn();
    let tmp = tempfile::tempdir().unwrap();
    let fs = PowerCutFs::mount(tmp.path());
    // bench/powercut.sh sets more cuts, or the long mode (docs/reliability.md).
    let cuts: Option<u64> = std::env::var("WATERMETER_POWERCUTS")
        .ok()
        .and_then(|v| v.parse().ok());
    let long = std::env::var("WATERMETER_POWERCUTS_LONG").is_ok_and(|v| v == "1");
    let (many, fresh) = cuts.map_or((9, 6), |n| (n, if long { 0 } else { n / 2 }));
    let mode = if long { Mode::DenseDay } else { Mode::Hours };
    let t = run_cuts(tmp.path(), &fs, many, false, mode, 0x5eed);
    assert!(
        t.acked as u64 > many,
        "the load got through: {} batches acknowledged",
        t.acked
    );
    assert!(
        t.udp_durable > 0.0 && t.gpio_durable > 0.0,
        "the process reported UDP and S0 liters durable: {t:?}"
    );
    println!(
        "power cuts: {many} on one store, {} batches acknowledged, none lost; slowest start {:.1} s",
        t.acked,
        t.slowest_start.as_secs_f64()
    );
    if fresh > 0 {
        let t = run_cuts(tmp.path(), &fs, fresh, true, Mode::Hours, 0xfeed);
        assert!(
            t.acked as u64 > fresh,
            "the load got through: {} batches acknowledged",
            t.acked
        );
        println!(
            "power cuts: {fresh} on fresh stores, {} batches acknowledged, none lost; slowest start {:.1} s",
            t.acked,
            t.slowest_start.as_secs_f64()
        );
    }
}

/// Starts `serve` expecting it to kill itself at the planned point; returns its exit.
fn run_until_crash(machine: &Machine, point: &str, load: bool, slots: &Arc<Slots>) -> Option<Sent> {
    let crash = std::ffi::OsString::from(point);
    if !load {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--config"])
            .arg(&machine.config)
            .env("WATERMETER_LOG", "warn")
            .env("WATERMETER_CRASH_AT", &crash)
            .stdout(Stdio::null());
        for (k, v) in machine.env() {
            cmd.env(k, v);
        }
        let status = cmd.status().expect("run watermeter");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL),
            "{point}: the process should have stopped itself: {status}"
        );
        return None;
    }
    let mut app = machine.start(&[("WATERMETER_CRASH_AT", crash.as_os_str())]);
    let l = Load::start(&app, slots, Mode::Hours);
    let deadline = Instant::now() + Duration::from_secs(60);
    while app.child.try_wait().ok().flatten().is_none() {
        assert!(
            Instant::now() < deadline,
            "{point}: the crash point was never reached"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(l.stop())
}

#[test]
fn cuts_at_the_moments_that_matter_lose_nothing_acknowledged() {
    let _turn = take_turn();
    let tmp = tempfile::tempdir().unwrap();
    let fs = PowerCutFs::mount(tmp.path());
    let machine = Machine::new(tmp.path(), &fs.mnt.join("data"), "m");
    let slots = Arc::new(Slots {
        next_hour: AtomicU64::new(0),
        next_udp_minute: AtomicU64::new(0),
    });
    // A history large enough that a rebuild writes several batches: 150,000 events.
    let app = machine.start(&[]);
    for part in 0..3u64 {
        let body: String = (0..50_000u64)
            .map(|i| {
                format!(
                    "water,meter=main liters=1 {}\n",
                    1_500_000_000_000 + part * 50_000_000 + i * 1000
                )
            })
            .collect();
        let a = try_post(&app.url("/write?db=w&precision=ms"), &body).expect("history");
        assert_eq!(a.status, 204, "{}", a.body);
    }
    app.kill();
    let history = 150_000.0;
    let mut ledger = Ledger::default();

    for (point, cut_fs) in [
        ("journal-torn:6", false),
        ("after-append:8", true),
        ("after-sync:8", true),
    ] {
        let sent = run_until_crash(&machine, point, true, &slots).expect("load");
        if cut_fs {
            fs.cut("");
            machine.new_boot();
        }
        let app = machine.start(&[]);
        check_after_cut(&app, &machine, &sent, &mut ledger, Mode::Hours, point);
        let acked: f64 = sent
            .batches
            .iter()
            .filter(|b| b.1 == Outcome::Acked)
            .count() as f64;
        assert!(
            app.total_liters("main") >= history + acked * PER_BATCH as f64,
            "{point}"
        );
        app.kill();
    }
    // During a rebuild (a new boot after a kill: the index is not trusted).
    let before = {
        let app = machine.start(&[]);
        let t = app.total_liters("main");
        app.kill();
        t
    };
    fs.cut("");
    machine.new_boot();
    run_until_crash(&machine, "rebuild:1", false, &slots);
    fs.cut("subset 7");
    machine.new_boot();
    let app = machine.start(&[]);
    assert_eq!(
        app.total_liters("main"),
        before,
        "a cut during a rebuild loses nothing"
    );
    assert!(before >= history);
}

/// The tool is proved on itself first: synced data survives a cut, unsynced data
/// (sync_file_range included) is gone, torn and subset cuts keep what they should.
#[test]
fn the_power_cut_file_system_forgets_exactly_what_was_not_synced() {
    let _turn = take_turn();
    assert!(
        unsafe_is_root(),
        "the self-test mounts a FUSE file system and needs root"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/powercut/selftest.py");
    let out = Command::new("/usr/bin/python3")
        .arg(&script)
        .output()
        .expect("run tests/powercut/selftest.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains(" passed, 0 failed"), "{text}");
}
