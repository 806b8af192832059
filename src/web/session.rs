//! The bookkeeping behind a login, as pure data: the open sessions and the
//! failed-login counters. Every function takes `now` (Unix ms); nothing here
//! does IO, draws random numbers or knows about HTTP (`auth` does).
//!
//! Sessions live in memory only: a restart signs everyone out, and nothing
//! secret is ever written to disk.

use std::collections::HashMap;
use std::net::IpAddr;

/// Open sessions: token → when it expires (sliding: each use pushes it on).
#[derive(Debug, Default)]
pub struct Sessions {
    expiry_ms: HashMap<String, i64>,
}

/// Opening more sessions than this drops the oldest (a guard against memory
/// growth; a house has a handful of browsers).
const MAX_SESSIONS: usize = 1000;

impl Sessions {
    /// Opens a session for `token` that lasts `ttl_ms` from `now`.
    pub fn open(&mut self, token: String, now: i64, ttl_ms: i64) {
        self.expiry_ms.retain(|_, e| *e > now);
        if self.expiry_ms.len() >= MAX_SESSIONS {
            if let Some(oldest) = self.oldest() {
                self.expiry_ms.remove(&oldest);
            }
        }
        self.expiry_ms.insert(token, now + ttl_ms);
    }

    /// Whether `token` is an open session; if so it now lasts `ttl_ms` from `now`.
    pub fn touch(&mut self, token: &str, now: i64, ttl_ms: i64) -> bool {
        match self.expiry_ms.get_mut(token) {
            Some(e) if *e > now => {
                *e = now + ttl_ms;
                true
            }
            Some(_) => {
                self.expiry_ms.remove(token);
                false
            }
            None => false,
        }
    }

    /// Ends the session (logout); an unknown token is fine.
    pub fn close(&mut self, token: &str) {
        self.expiry_ms.remove(token);
    }

    fn oldest(&self) -> Option<String> {
        self.expiry_ms
            .iter()
            .min_by_key(|(_, e)| **e)
            .map(|(t, _)| t.clone())
    }
}

/// Failed logins per client address, and across all clients.
///
/// A client has [`FREE_TRIES`] wrong passwords; then it must wait a minute
/// before the next try, and the wait doubles with every further failure (up
/// to an hour). A success clears its count. Independently, more than
/// [`GLOBAL_PER_MINUTE`] failures a minute from everyone together pause all
/// logins, which slows a guesser that rotates addresses.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    clients: HashMap<IpAddr, Failures>,
    /// Times of the recent failures from anyone (at most `GLOBAL_PER_MINUTE`).
    recent_ms: std::collections::VecDeque<i64>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last_ms: i64,
}

pub const FREE_TRIES: u32 = 5;
pub const GLOBAL_PER_MINUTE: usize = 30;
const MINUTE_MS: i64 = 60_000;
const MAX_WAIT_MS: i64 = 60 * MINUTE_MS;
/// A client's count is forgotten this long after its last failure.
const FORGET_MS: i64 = 24 * 60 * MINUTE_MS;
const MAX_CLIENTS: usize = 10_000;

impl LoginLimiter {
    /// `Ok` when `ip` may try now, else how many seconds it must wait.
    pub fn check(&self, ip: IpAddr, now: i64) -> Result<(), u64> {
        let mut wait_ms = 0;
        if let Some(f) = self.clients.get(&ip) {
            wait_ms = (f.last_ms + wait_after(f.count) - now).max(0);
        }
        if self.recent_ms.len() >= GLOBAL_PER_MINUTE {
            let oldest = self.recent_ms.front().copied().unwrap_or(now);
            wait_ms = wait_ms.max(oldest + MINUTE_MS - now);
        }
        if wait_ms > 0 {
            // Rounded up: a client that waits what it is told is let in.
            Err((wait_ms as u64).div_ceil(1000))
        } else {
            Ok(())
        }
    }

    /// Records a wrong password from `ip`.
    pub fn failed(&mut self, ip: IpAddr, now: i64) {
        self.clients.retain(|_, f| now - f.last_ms < FORGET_MS);
        if self.clients.len() >= MAX_CLIENTS && !self.clients.contains_key(&ip) {
            // Full of stale entries from many addresses: the global limit still holds.
            self.clients.clear();
        }
        let f = self.clients.entry(ip).or_insert(Failures {
            count: 0,
            last_ms: now,
        });
        f.count = f.count.saturating_add(1);
        f.last_ms = now;
        while self.recent_ms.front().is_some_and(|t| now - t >= MINUTE_MS) {
            self.recent_ms.pop_front();
        }
        if self.recent_ms.len() >= GLOBAL_PER_MINUTE {
            self.recent_ms.pop_front();
        }
        self.recent_ms.push_back(now);
    }

    /// A correct password from `ip`: its count starts again.
    pub fn succeeded(&mut self, ip: IpAddr) {
        self.clients.remove(&ip);
    }
}

/// How long a client must wait after its `count`-th failure.
fn wait_after(count: u32) -> i64 {
    if count < FREE_TRIES {
        return 0;
    }
    let doublings = (count - FREE_TRIES).min(10);
    (MINUTE_MS << doublings).min(MAX_WAIT_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 168, 1, last])
    }

    #[test]
    fn a_session_slides_while_used_and_ends_when_idle_too_long() {
        let mut s = Sessions::default();
        s.open("t".into(), 0, DAY);
        assert!(s.touch("t", DAY - 1, DAY));
        assert!(
            s.touch("t", 2 * DAY - 2, DAY),
            "the use at DAY-1 pushed it on"
        );
        assert!(!s.touch("t", 4 * DAY, DAY));
        assert!(!s.touch("t", 4 * DAY, DAY), "an expired session stays gone");
        assert!(!s.touch("other", 0, DAY));
    }

    #[test]
    fn a_closed_session_no_longer_counts() {
        let mut s = Sessions::default();
        s.open("t".into(), 0, DAY);
        s.close("t");
        assert!(!s.touch("t", 1, DAY));
    }

    #[test]
    fn too_many_sessions_drop_the_oldest() {
        let mut s = Sessions::default();
        for i in 0..=MAX_SESSIONS as i64 {
            s.open(format!("t{i}"), i, DAY);
        }
        assert!(!s.touch("t0", 2000, DAY));
        assert!(s.touch("t1", 2000, DAY));
        assert!(s.touch(&format!("t{MAX_SESSIONS}"), 2000, DAY));
    }

    fn check_waits(failures: u32, expected_wait_s: Option<u64>) {
        let mut l = LoginLimiter::default();
        for _ in 0..failures {
            l.failed(ip(1), 0);
        }
        assert_eq!(
            l.check(ip(1), 0).err(),
            expected_wait_s,
            "{failures} failures"
        );
    }

    #[test]
    fn five_wrong_passwords_are_free_then_the_wait_doubles() {
        check_waits(0, None);
        check_waits(4, None);
        check_waits(5, Some(60));
        check_waits(6, Some(120));
        check_waits(7, Some(240));
        check_waits(40, Some(3600));
    }

    #[test]
    fn the_wait_passes_and_a_success_clears_the_count() {
        let mut l = LoginLimiter::default();
        for _ in 0..5 {
            l.failed(ip(1), 0);
        }
        assert_eq!(l.check(ip(1), 30_000), Err(30));
        assert_eq!(l.check(ip(1), 60_000), Ok(()));
        assert_eq!(l.check(ip(2), 0), Ok(()), "other clients are not affected");
        l.succeeded(ip(1));
        assert_eq!(l.check(ip(1), 0), Ok(()));
    }

    #[test]
    fn many_failures_from_many_addresses_pause_everyone() {
        let mut l = LoginLimiter::default();
        for i in 0..GLOBAL_PER_MINUTE {
            l.failed(ip(i as u8), i as i64 * 1000);
        }
        assert_eq!(l.check(ip(250), 30_000), Err(30));
        assert_eq!(l.check(ip(250), 60_000), Ok(()));
    }
}
