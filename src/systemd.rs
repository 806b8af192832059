//! The systemd service notify protocol (sd_notify(3)): `READY=1` once the app
//! listens, `WATCHDOG=1` while it is healthy, `STOPPING=1` at shutdown. Outside
//! systemd (no `$NOTIFY_SOCKET`) every call does nothing.
//!
//! Hand-written: the protocol is one datagram per message to a Unix socket, and
//! the watchdog's health check is ours anyway.
//!
//! The watchdog is sent only when the app can still do its job: the async
//! runtime runs this task (so the HTTP server is not starved) and the store
//! answers a read within half the watchdog interval (so it is not deadlocked).
//! Otherwise systemd (`WatchdogSec=`) kills and restarts the process.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::store::Store;

/// Where systemd listens, from `$NOTIFY_SOCKET`.
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
}

impl Notifier {
    /// `None` when not started by systemd with `Type=notify` (or the socket is unusable).
    pub fn from_env() -> Option<Notifier> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        let made = socket_addr(&path).and_then(|addr| Ok((UnixDatagram::unbound()?, addr)));
        match made {
            Ok((socket, addr)) => Some(Notifier { socket, addr }),
            Err(e) => {
                tracing::warn!("cannot use $NOTIFY_SOCKET {path:?} to talk to systemd: {e}");
                None
            }
        }
    }

    /// Sends one message (`KEY=value` lines). A failure is logged, never fatal.
    pub fn send(&self, message: &str) {
        if let Err(e) = self.socket.send_to_addr(message.as_bytes(), &self.addr) {
            tracing::warn!("telling systemd {message:?} failed: {e}");
        }
    }
}

/// A path, or `@name` for Linux's abstract socket namespace.
fn socket_addr(path: &std::ffi::OsStr) -> std::io::Result<SocketAddr> {
    use std::os::unix::ffi::OsStrExt;
    match path.as_bytes() {
        [b'@', name @ ..] => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name)
        }
        [] => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "it is empty",
        )),
        _ => SocketAddr::from_pathname(path),
    }
}

/// The watchdog interval systemd asks for (`$WATCHDOG_USEC`), if it is meant for
/// this process (`$WATCHDOG_PID`, when set, is our pid).
pub fn watchdog_interval() -> Option<Duration> {
    parse_watchdog(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )
}

fn parse_watchdog(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    if pid.is_some_and(|p| p.trim().parse::<u32>().ok() != Some(own_pid)) {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// Pets the watchdog every half interval while the store answers, until shutdown.
pub async fn run_watchdog(
    notifier: Arc<Notifier>,
    interval: Duration,
    store: Arc<Store>,
    shutdown: watch::Receiver<bool>,
) {
    let probe = move || store.probe_read().map_err(|e| e.to_string());
    watchdog_loop(&notifier, interval, Arc::new(probe), shutdown).await;
}

type Probe = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

async fn watchdog_loop(
    notifier: &Notifier,
    interval: Duration,
    probe: Probe,
    mut shutdown: watch::Receiver<bool>,
) {
    let every = interval / 2;
    let mut stuck = false;
    // A probe that did not return is waited for again, never started twice.
    let mut pending = None;
    loop {
        let mut check = pending.take().unwrap_or_else(|| {
            let probe = probe.clone();
            tokio::task::spawn_blocking(move || probe())
        });
        match tokio::time::timeout(every, &mut check).await {
            Ok(Ok(Ok(()))) => {
                if stuck {
                    tracing::warn!("the store answers again");
                    stuck = false;
                }
                notifier.send("WATCHDOG=1");
            }
            Ok(Ok(Err(e))) => {
                // A disk error is reported by /healthz and healed by the writer; the
                // process itself is not hung, so a restart would not help.
                tracing::debug!("watchdog: the store read failed ({e}); the process is alive");
                notifier.send("WATCHDOG=1");
            }
            Ok(Err(e)) => tracing::error!("watchdog: the store check failed: {e}"),
            Err(_) => {
                pending = Some(check);
                stuck = true;
                tracing::error!(
                    "the store did not answer a read within {:?}: not telling systemd that all is well, so it restarts watermeter if this lasts",
                    every
                );
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.wait_for(|down| *down) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_interval_is_for_this_process_only() {
        let d = Some(Duration::from_secs(30));
        assert_eq!(parse_watchdog(Some("30000000"), None, 7), d);
        assert_eq!(parse_watchdog(Some("30000000"), Some("7"), 7), d);
        assert_eq!(parse_watchdog(Some("30000000"), Some("8"), 7), None);
        assert_eq!(parse_watchdog(Some("0"), None, 7), None);
        assert_eq!(parse_watchdog(Some("soon"), None, 7), None);
        assert_eq!(parse_watchdog(None, Some("7"), 7), None);
    }

    /// A store read that never returns stops the pings; once it returns they resume.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stuck_store_stops_the_watchdog_until_it_answers_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let systemd = UnixDatagram::bind(&path).unwrap();
        systemd
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let notifier = Notifier {
            socket: UnixDatagram::unbound().unwrap(),
            addr: socket_addr(path.as_os_str()).unwrap(),
        };
        // The probe blocks while `stuck` holds its lock.
        let stuck = Arc::new(std::sync::Mutex::new(()));
        let probe: Probe = {
            let stuck = stuck.clone();
            Arc::new(move || {
                drop(stuck.lock().unwrap());
                Ok(())
            })
        };
        let (down_tx, down) = watch::channel(false);
        let interval = Duration::from_millis(200);
        let held = stuck.lock().unwrap();
        let task = tokio::spawn(async move {
            watchdog_loop(&notifier, interval, probe, down).await;
        });
        let pings = |ms: u64| {
            let mut n = 0;
            let end = std::time::Instant::now() + Duration::from_millis(ms);
            let mut buf = [0u8; 32];
            while std::time::Instant::now() < end {
                if let Ok(len) = systemd.recv(&mut buf) {
                    assert_eq!(&buf[..len], b"WATCHDOG=1");
                    n += 1;
                }
            }
            n
        };
        let while_stuck = tokio::task::block_in_place(|| pings(1000));
        assert_eq!(while_stuck, 0, "a stuck store must not pet the watchdog");
        drop(held);
        let after = tokio::task::block_in_place(|| pings(1000));
        assert!(after >= 1, "the pings resume once the store answers");
        down_tx.send(true).unwrap();
        task.await.unwrap();
    }

    #[test]
    fn messages_reach_a_path_socket_and_an_abstract_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        let n = Notifier {
            socket: UnixDatagram::unbound().unwrap(),
            addr: socket_addr(path.as_os_str()).unwrap(),
        };
        n.send("READY=1");
        let mut buf = [0u8; 64];
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");

        let name = format!("@watermeter-test-{}", std::process::id());
        let addr = socket_addr(std::ffi::OsStr::new(&name)).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        let n = Notifier {
            socket: UnixDatagram::unbound().unwrap(),
            addr,
        };
        n.send("WATCHDOG=1");
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");
        assert!(socket_addr(std::ffi::OsStr::new("")).is_err());
    }
}
