//! The running task, fed by the simulated source: exact counts and wall-clock times.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use super::testkit::{config, ms, Timeline};
use super::*;

/// Boot-relative time of the simulated source's start.
const MONO_START: Duration = Duration::from_secs(1_000);
const WALL_START: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn fixed_clock() -> i64 {
    WALL_START
}

/// Run the task over `levels` until the timeline ends; the unix-ms time of each pulse.
fn run_task(
    cfg: &GpioConfig,
    levels: Vec<(Duration, Level)>,
    tail: Duration,
    clock: fn() -> i64,
) -> Vec<i64> {
    let sim = SimSource::new(levels, MONO_START, Pace::Instant { tail });
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let on_pulse = Box::new(move |ms| sink.lock().unwrap().push(ms));
    let handle = spawn_with_clock("house", cfg, Box::new(sim), on_pulse, clock).unwrap();
    handle.wait().unwrap();
    let pulses = seen.lock().unwrap().clone();
    pulses
}

fn count(tl: Timeline) -> usize {
    let cfg = config();
    run_task(&cfg, tl.levels(Level::Low), ms(1_000), fixed_clock).len()
}

#[test]
fn task_counts_a_clean_pulse_once_at_its_close_time() {
    let tl = Timeline::default().pulse(ms(1_000), ms(100));
    let pulses = run_task(&config(), tl.levels(Level::Low), ms(1_000), fixed_clock);
    assert_eq!(pulses, [WALL_START + 1_000]);
}

#[test]
fn task_counts_a_bouncy_pulse_once() {
    assert_eq!(
        count(Timeline::default().bouncy_pulse(ms(1_000), ms(100), 5)),
        1
    );
}

#[test]
fn task_counts_no_emi_spikes() {
    let tl = Timeline::default()
        .pulse(ms(1_000), ms(1))
        .pulse(ms(1_300), ms(1))
        .pulse(ms(1_600), ms(1));
    assert_eq!(count(tl), 0);
}

#[test]
fn task_counts_exactly_160_pulses_of_a_10s_16hz_train() {
    assert_eq!(count(Timeline::train_16hz(10)), 160);
}

#[test]
fn task_counts_a_contact_stuck_closed_for_an_hour_once() {
    let tl = Timeline::default().pulse(ms(1_000), Duration::from_secs(3_600));
    assert_eq!(count(tl), 1);
}

#[test]
fn task_flushes_a_pulse_that_opened_exactly_when_the_source_ended() {
    // No tail: the source closes at the opening edge, before the gap could elapse.
    let tl = Timeline::default().pulse(ms(1_000), ms(100));
    let pulses = run_task(&config(), tl.levels(Level::Low), ms(0), fixed_clock);
    assert_eq!(pulses, [WALL_START + 1_000]);
}

#[test]
fn task_drops_a_closure_arriving_exactly_when_the_source_ended() {
    let tl = Timeline::default()
        .pulse(ms(1_000), ms(100))
        .close(ms(2_000));
    let pulses = run_task(&config(), tl.levels(Level::Low), ms(0), fixed_clock);
    assert_eq!(pulses, [WALL_START + 1_000]);
}

#[test]
fn rising_edge_config_on_the_inverted_timeline_gives_the_same_pulses() {
    let tl = Timeline::default()
        .bouncy_pulse(ms(1_000), ms(100), 5)
        .pulse(ms(2_000), ms(1))
        .pulse(ms(3_000), ms(40));
    let falling = run_task(&config(), tl.levels(Level::Low), ms(1_000), fixed_clock);
    let rising_cfg = GpioConfig {
        edge: Edge::Rising,
        ..config()
    };
    let rising = run_task(&rising_cfg, tl.levels(Level::High), ms(1_000), fixed_clock);
    assert_eq!(falling, [WALL_START + 1_000, WALL_START + 3_000]);
    assert_eq!(rising, falling);
}

static STEPPING_CALLS: AtomicUsize = AtomicUsize::new(0);

/// A wall clock that NTP steps back by an hour right after the first reading.
fn stepping_clock() -> i64 {
    match STEPPING_CALLS.fetch_add(1, Ordering::SeqCst) {
        0 => WALL_START,
        _ => WALL_START - 3_600_000,
    }
}

#[test]
fn ntp_step_after_start_neither_reorders_nor_moves_pulses() {
    let tl = Timeline::default()
        .pulse(ms(1_000), ms(100))
        .pulse(ms(2_000), ms(100))
        .pulse(ms(3_000), ms(100));
    let pulses = run_task(&config(), tl.levels(Level::Low), ms(1_000), stepping_clock);
    assert_eq!(
        pulses,
        [WALL_START + 1_000, WALL_START + 2_000, WALL_START + 3_000]
    );
}

#[test]
fn clock_map_adds_the_start_offset_to_monotonic_times() {
    let map = ClockMap::new(WALL_START, MONO_START);
    assert_eq!(map.wall_ms(MONO_START), WALL_START);
    assert_eq!(map.wall_ms(MONO_START + ms(1_234)), WALL_START + 1_234);
    assert_eq!(map.wall_ms(MONO_START - ms(500)), WALL_START - 500);
}

#[test]
fn stop_flushes_a_contact_closed_long_enough_but_not_yet_open() {
    // A live source: the contact closes at once and opens only in an hour.
    let tl = Timeline::default().pulse(ms(0), Duration::from_secs(3_600));
    let sim = SimSource::new(tl.levels(Level::Low), MONO_START, Pace::RealTime);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let on_pulse = Box::new(move |ms| sink.lock().unwrap().push(ms));
    let handle =
        spawn_with_clock("house", &config(), Box::new(sim), on_pulse, fixed_clock).unwrap();
    std::thread::sleep(ms(100)); // closed for at least min_pulse when stop() comes
    handle.stop().unwrap();
    assert_eq!(*seen.lock().unwrap(), [WALL_START]);
}
