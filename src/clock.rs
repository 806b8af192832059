//! The wall clock, and whether it can be trusted yet.
//!
//! A Raspberry Pi has no real-time clock: it boots with the time of its last
//! shutdown (fake-hwclock) and NTP steps the clock once the network is up. Counting
//! must not wait for that, so inputs stamp what arrives without a time of its own
//! (a pulse, a datagram without a timestamp) through [`now_stamp`]: the wall clock
//! once it is synchronised, before that an *unplaced* stamp that holds the
//! monotonic time since boot. The store keeps unplaced samples aside (durably) and
//! places them with [`place`] once the clock is synchronised. S0 pulses are always
//! stamped unplaced ([`mono_stamp`]), so a later step of the clock never moves them.
//!
//! "Synchronised" is read where the hardened unit may look (`ProtectClock=` forbids
//! adjtimex): systemd-timesyncd's flag file `/run/systemd/timesync/synchronized`.
//! A machine without timesyncd (chrony, an RTC, a laptop) is taken as synchronised.
//! If the flag never comes, stamps are placed by the unsynchronised clock after
//! [`GIVE_UP_AFTER`], as the clock then is the best there is.
//!
//! For the tests only: `WATERMETER_TEST_CLOCK_DIR` names a directory whose file
//! `synchronized` stands for the flag and whose `offset_ms` is added to the system
//! clock (a clock that is wrong, then stepped). Nothing here writes anything.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Unplaced stamps are this plus milliseconds since boot: far below any real time
/// (about 73 million years BC), so a stamp tells by itself which kind it is.
pub const UNPLACED_BASE: i64 = i64::MIN / 4;
const UNPLACED_LIMIT: i64 = i64::MIN / 8;
/// Unplaced samples are placed by the clock as it is after this long without a sync.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(15 * 60);
const TIMESYNC_DIR: &str = "/run/systemd/timesync";
/// How often the flag file is looked at while the clock is not synchronised.
const RECHECK: Duration = Duration::from_millis(250);

/// The wall clock in unix milliseconds (with the tests' offset, if any).
pub fn wall_ms() -> i64 {
    chrono::Utc::now().timestamp_millis() + test_offset_ms()
}

/// Milliseconds since boot (CLOCK_BOOTTIME: never steps, counts suspended time).
pub fn mono_ms() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own and nothing else.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) } == 0;
    if !ok {
        return 0;
    }
    // time_t is 32 bits on armhf, 64 on arm64 and amd64: widen on every target.
    #[allow(clippy::useless_conversion)]
    let ms = i64::from(ts.tv_sec) * 1000 + i64::from(ts.tv_nsec) / 1_000_000;
    ms
}

/// A stamp for something that arrived now: the wall time once the clock is
/// synchronised, an unplaced stamp before.
pub fn now_stamp() -> i64 {
    if synchronized() {
        wall_ms()
    } else {
        mono_stamp()
    }
}

/// An unplaced stamp for now, whatever the clock's state.
pub fn mono_stamp() -> i64 {
    UNPLACED_BASE + mono_ms()
}

pub fn is_unplaced(ts_ms: i64) -> bool {
    ts_ms < UNPLACED_LIMIT
}

/// 2000-01-01: an earlier time is almost always seconds read as nanoseconds, or a
/// sender whose clock never was set.
pub const EARLIEST_MS: i64 = 946_684_800_000;
/// How far ahead of a synchronised clock a sample may be.
pub const AHEAD_MS: i64 = 5 * 60 * 1000;

/// Why a sample's time cannot be true (CONTRACT, "Plausibility").
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Implausible {
    #[error("it is before the year 2000")]
    Before2000,
    #[error("it is {minutes} minutes ahead of this machine's synchronised clock")]
    Ahead { minutes: i64 },
}

impl Implausible {
    /// The `reason` label of `watermeter_points_rejected_total`.
    pub fn reason(self) -> &'static str {
        match self {
            Implausible::Before2000 => "before_2000",
            Implausible::Ahead { .. } => "in_the_future",
        }
    }
}

/// The one plausibility rule of every input: no time before 2000, and none more
/// than [`AHEAD_MS`] ahead of `now_ms` once the clock is synchronised (while
/// `now_ms` is an unplaced stamp, the Pi's own clock may be days behind its
/// senders, so only the first rule holds). A refused time never reaches the store.
pub fn plausible(ts_ms: i64, now_ms: i64) -> Result<(), Implausible> {
    if is_unplaced(ts_ms) {
        // This machine's own stamp, placed later.
        return Ok(());
    }
    if ts_ms < EARLIEST_MS {
        return Err(Implausible::Before2000);
    }
    if !is_unplaced(now_ms) && ts_ms > now_ms.saturating_add(AHEAD_MS) {
        return Err(Implausible::Ahead {
            minutes: (ts_ms - now_ms) / 60_000,
        });
    }
    Ok(())
}

/// The monotonic milliseconds of an unplaced stamp.
pub fn mono_of(ts_ms: i64) -> i64 {
    ts_ms - UNPLACED_BASE
}

/// Wall time minus monotonic time now: adding it places a monotonic time.
pub fn offset_ms() -> i64 {
    wall_ms() - mono_ms()
}

/// The wall time of an unplaced stamp by the clock as it is now; other stamps as
/// they are.
pub fn place(ts_ms: i64) -> i64 {
    if is_unplaced(ts_ms) {
        mono_of(ts_ms) + offset_ms()
    } else {
        ts_ms
    }
}

/// Whether the wall clock can be trusted: synchronised by NTP, or on a machine
/// that does not use timesyncd, or after [`GIVE_UP_AFTER`] without a sync.
pub fn synchronized() -> bool {
    static SYNCED: AtomicBool = AtomicBool::new(false);
    static CHECKED_MS: AtomicI64 = AtomicI64::new(i64::MIN);
    if SYNCED.load(Relaxed) {
        return true;
    }
    let now = mono_ms();
    let last = CHECKED_MS.load(Relaxed);
    if last != i64::MIN && now - last < RECHECK.as_millis() as i64 {
        return false;
    }
    CHECKED_MS.store(now, Relaxed);
    let (flag, dir) = flag_paths();
    let synced = flag.exists() || !dir.exists();
    let gave_up = started().elapsed() >= GIVE_UP_AFTER;
    if gave_up && !synced {
        tracing::warn!(
            "the system clock has not been synchronised after {} minutes (no network?): \
             liters are placed by the clock as it is, which may be wrong",
            GIVE_UP_AFTER.as_secs() / 60
        );
    }
    if synced || gave_up {
        SYNCED.store(true, Relaxed);
        return true;
    }
    false
}

/// The kernel's id of this boot (`WATERMETER_BOOT_ID_FILE` points elsewhere for
/// the power-cut tests): stamps of another boot cannot be placed by this boot's
/// monotonic clock.
pub fn boot_id() -> Option<String> {
    let path = std::env::var_os("WATERMETER_BOOT_ID_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/proc/sys/kernel/random/boot_id"));
    let id = std::fs::read_to_string(path).ok()?;
    let id = id.trim();
    (!id.is_empty() && !id.contains(char::is_whitespace)).then(|| id.to_string())
}

/// When this process first asked about the clock (the give-up timer starts here).
fn started() -> Instant {
    static STARTED: OnceLock<Instant> = OnceLock::new();
    *STARTED.get_or_init(Instant::now)
}

fn test_dir() -> Option<&'static PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| std::env::var_os("WATERMETER_TEST_CLOCK_DIR").map(PathBuf::from))
        .as_ref()
}

fn flag_paths() -> (PathBuf, PathBuf) {
    match test_dir() {
        Some(d) => (d.join("synchronized"), d.clone()),
        None => (
            PathBuf::from(TIMESYNC_DIR).join("synchronized"),
            PathBuf::from(TIMESYNC_DIR),
        ),
    }
}

fn test_offset_ms() -> i64 {
    match test_dir() {
        None => 0,
        Some(d) => std::fs::read_to_string(d.join("offset_ms"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn every_input_shares_one_rule_for_times() {
        let now = 1_765_000_000_000;
        assert_eq!(plausible(now, now), Ok(()));
        assert_eq!(plausible(now + AHEAD_MS, now), Ok(()));
        assert_eq!(
            plausible(now + AHEAD_MS + 60_000, now),
            Err(Implausible::Ahead { minutes: 6 })
        );
        assert_eq!(
            plausible(EARLIEST_MS - 1, now),
            Err(Implausible::Before2000)
        );
        assert_eq!(plausible(EARLIEST_MS, now), Ok(()));
        // Before the clock is synchronised only the year 2000 rule holds.
        let unsynced = mono_stamp();
        assert_eq!(plausible(4_102_444_800_000, unsynced), Ok(()));
        assert_eq!(plausible(0, unsynced), Err(Implausible::Before2000));
        // This machine's own unplaced stamps are its own business.
        assert_eq!(plausible(unsynced, now), Ok(()));
    }
    use super::*;

    #[test]
    fn unplaced_stamps_tell_themselves_apart_from_any_real_time() {
        let s = UNPLACED_BASE + 12_345;
        assert!(is_unplaced(s));
        assert_eq!(mono_of(s), 12_345);
        for real in [0, -62_135_596_800_000, 253_402_300_799_000, i64::MAX] {
            assert!(!is_unplaced(real), "{real}");
            assert_eq!(place(real), real);
        }
    }

    #[test]
    fn placing_a_stamp_taken_now_gives_about_now() {
        let placed = place(mono_stamp());
        assert!((placed - wall_ms()).abs() < 1_000, "{placed}");
    }
}
