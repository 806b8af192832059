use super::*;
use crate::ingest::gpio::testkit::{ms, us, Timeline};

const CLOSED: Level = Level::Low;

fn filter(closed: Level) -> PulseFilter {
    PulseFilter::new(closed, ms(20), ms(20))
}

/// Replays `tl` (polling every 50 ms like the task does) and then one second of quiet.
fn replay(tl: &Timeline, closed: Level) -> (FilterStats, Vec<Outcome>) {
    let mut f = filter(closed);
    let mut outcomes = Vec::new();
    let mut next_poll = ms(50);
    for (t, level) in tl.levels(closed) {
        while next_poll < t {
            outcomes.extend(f.poll(next_poll));
            next_poll += ms(50);
        }
        outcomes.extend(f.edge(level, t).outcome);
    }
    outcomes.extend(f.poll(tl.end() + ms(1_000)));
    (f.stats(), outcomes)
}

fn check(tl: Timeline, pulses: u64, bounces: u64) {
    let (stats, _) = replay(&tl, CLOSED);
    assert_eq!((stats.pulses, stats.bounces), (pulses, bounces));
}

#[test]
fn clean_100ms_pulse_counts_once() {
    check(Timeline::default().pulse(ms(1_000), ms(100)), 1, 0);
}

#[test]
fn pulse_with_5_bounces_on_each_edge_counts_once_and_10_bounces_filtered() {
    check(
        Timeline::default().bouncy_pulse(ms(1_000), ms(100), 5),
        1,
        10,
    );
}

#[test]
fn bouncy_pulse_is_timed_at_its_first_close() {
    let (_, outcomes) = replay(
        &Timeline::default().bouncy_pulse(ms(1_000), ms(100), 5),
        CLOSED,
    );
    assert_eq!(
        outcomes,
        [Outcome::Pulse(Pulse {
            closed_at: ms(1_000),
            width: ms(103),
        })]
    );
}

#[test]
fn emi_spikes_of_1ms_count_nothing() {
    let tl = Timeline::default()
        .pulse(ms(1_000), ms(1))
        .pulse(ms(1_500), ms(1))
        .pulse(ms(2_000), ms(1));
    check(tl, 0, 3);
}

#[test]
fn a_burst_of_spikes_closer_than_the_gap_counts_nothing() {
    let tl = (0..50).fold(Timeline::default(), |tl, i| {
        tl.pulse(ms(1_000 + 5 * i), ms(1))
    });
    check(tl, 0, 50);
}

#[test]
fn train_of_30ms_pulses_at_16hz_for_10s_counts_exactly_160() {
    check(Timeline::train_16hz(10), 160, 0);
}

#[test]
fn train_reports_its_shortest_pulse_and_gap() {
    let (stats, _) = replay(&Timeline::train_16hz(10), CLOSED);
    assert_eq!(stats.shortest_pulse, Some(ms(30)));
    assert_eq!(stats.shortest_gap, Some(us(32_500)));
}

#[test]
fn contact_stuck_closed_for_an_hour_is_one_pulse_and_reported_stuck_once() {
    let tl = Timeline::default().pulse(ms(1_000), Duration::from_secs(3_600));
    let (stats, outcomes) = replay(&tl, CLOSED);
    assert_eq!(stats.pulses, 1);
    let stuck: Vec<_> = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::StuckClosed { .. }))
        .collect();
    assert_eq!(stuck, [&Outcome::StuckClosed { since: ms(1_000) }]);
}

#[test]
fn closure_of_exactly_min_pulse_counts_and_just_under_does_not() {
    check(Timeline::default().pulse(ms(1_000), ms(20)), 1, 0);
    check(Timeline::default().pulse(ms(1_000), us(19_900)), 0, 1);
}

#[test]
fn reclose_within_min_gap_is_the_same_pulse() {
    let tl = Timeline::default()
        .pulse(ms(1_000), ms(100))
        .pulse(ms(1_110), ms(100));
    check(tl, 1, 1);
}

#[test]
fn repeated_edges_of_the_same_level_are_harmless() {
    let tl = Timeline::default()
        .close(ms(1_000))
        .close(ms(1_010))
        .open(ms(1_100))
        .open(ms(1_105))
        .close(ms(2_000))
        .close(ms(2_000))
        .open(ms(2_100));
    check(tl, 2, 0);
}

#[test]
fn an_opening_edge_first_is_ignored() {
    check(
        Timeline::default().open(ms(500)).pulse(ms(1_000), ms(100)),
        1,
        0,
    );
}

#[test]
fn counts_do_not_depend_on_which_level_means_closed() {
    let tl = Timeline::default()
        .bouncy_pulse(ms(1_000), ms(100), 5)
        .pulse(ms(2_000), ms(1))
        .pulse(ms(3_000), ms(40));
    let low = replay(&tl, Level::Low);
    let high = replay(&tl, Level::High);
    assert_eq!(low.0.pulses, 2);
    assert_eq!(low, high);
}

#[test]
fn pending_pulse_is_confirmed_by_poll_only_after_the_gap() {
    let mut f = filter(CLOSED);
    f.edge(Level::Low, ms(1_000));
    f.edge(Level::High, ms(1_100));
    assert_eq!(f.poll(ms(1_119)), None);
    assert_eq!(
        f.poll(ms(1_120)),
        Some(Outcome::Pulse(Pulse {
            closed_at: ms(1_000),
            width: ms(100),
        }))
    );
    assert_eq!(f.poll(ms(5_000)), None);
}

/// Feed `tl`, then shut down at `at`: how many pulses were counted in all.
fn pulses_at_shutdown(tl: Timeline, at: Duration) -> u64 {
    let mut f = filter(CLOSED);
    for (t, level) in tl.levels(CLOSED) {
        f.edge(level, t);
    }
    f.finish(at);
    assert_eq!(f.finish(at), None, "finish twice flushes nothing more");
    f.stats().pulses
}

#[test]
fn pulse_opened_just_before_shutdown_counts_though_its_gap_has_not_elapsed() {
    let tl = Timeline::default().pulse(ms(1_000), ms(100));
    assert_eq!(pulses_at_shutdown(tl, ms(1_105)), 1);
}

#[test]
fn contact_still_closed_for_min_pulse_at_shutdown_counts() {
    assert_eq!(
        pulses_at_shutdown(Timeline::default().close(ms(1_000)), ms(1_020)),
        1
    );
}

#[test]
fn closure_arriving_exactly_at_shutdown_does_not_count() {
    assert_eq!(
        pulses_at_shutdown(Timeline::default().close(ms(1_000)), ms(1_000)),
        0
    );
}

#[test]
fn closure_younger_than_min_pulse_at_shutdown_does_not_count() {
    assert_eq!(
        pulses_at_shutdown(Timeline::default().close(ms(1_000)), ms(1_019)),
        0
    );
}

#[test]
fn shutdown_while_idle_flushes_nothing() {
    let tl = Timeline::default().pulse(ms(1_000), ms(100));
    let mut f = filter(CLOSED);
    for (t, level) in tl.levels(CLOSED) {
        f.edge(level, t);
    }
    assert!(f.poll(ms(2_000)).is_some());
    assert_eq!(f.finish(ms(3_000)), None);
    assert_eq!(f.stats().pulses, 1);
}
