//! The UDP input: line protocol datagrams, as a NodeMCU or Telegraf sends them.
//!
//! A dedicated OS thread (not the async runtime) receives with `recvmmsg`, many
//! datagrams per system call, checks each source against the allowlist, parses,
//! and hands the samples to the writer in large batches. It never waits on the
//! writer while the writer merely lags: samples queue locally (bounded) and go
//! out with the next batch, so the socket keeps being drained and the kernel
//! buffer does not overflow. It does not touch the store itself.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::line_protocol::Precision;
use super::mmsg::{Batch, Datagram};
use super::points::{parse_body, Matcher};
use super::stats::IngestStats;
use super::Sample;
use crate::config::IpNet;
use crate::store::writer::{WriteError, Writer};

/// Largest datagram accepted (the IPv4 UDP payload limit).
const MAX_DATAGRAM: usize = 65_507;
/// Kernel receive buffer asked for: bursts of tens of thousands of datagrams.
const RECV_BUFFER: usize = 8 << 20;
/// Datagrams taken per `recvmmsg` call.
const DATAGRAMS_PER_CALL: usize = 64;
/// Samples gathered before they go to the writer while datagrams keep coming
/// (a quiet socket hands over at once).
const HANDOFF_AT: usize = 8192;
/// Samples kept locally while the writer's queue is full; beyond this the thread
/// waits for the writer (the kernel buffer then absorbs what arrives).
const MAX_PENDING: usize = 256 * 1024;
/// How long a receive waits before the thread looks at the shutdown flag.
const WAKE_EVERY: Duration = Duration::from_millis(100);

pub struct UdpInput {
    pub socket: std::net::UdpSocket,
    pub allow: Vec<IpNet>,
    pub precision: Precision,
}

/// Binds the socket (with a large receive buffer) so the caller learns the port.
pub fn bind(listen: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(listen),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    // SO_RCVBUFFORCE passes net.core.rmem_max when we may (root, CAP_NET_ADMIN);
    // otherwise take what the kernel grants.
    if !force_recv_buffer(&socket, RECV_BUFFER) {
        let _ = socket.set_recv_buffer_size(RECV_BUFFER);
    }
    socket.bind(&listen.into())?;
    Ok(socket.into())
}

/// Starts the receive thread. It hands over what it holds and ends within
/// [`WAKE_EVERY`] after `shutdown` turns true, or when the writer is gone.
pub fn spawn(
    input: UdpInput,
    matcher: Arc<Matcher>,
    writer: Writer,
    stats: Arc<IngestStats>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    input.socket.set_nonblocking(false)?;
    input.socket.set_read_timeout(Some(WAKE_EVERY))?;
    std::thread::Builder::new()
        .name("udp-recv".into())
        .spawn(move || {
            let mut out = Handoff::new(writer, stats.clone());
            let ended = receive(&input, &matcher, &stats, &mut out, &shutdown);
            if ended.is_ok() && out.flush().is_err() {
                tracing::warn!("udp: the store closed before the last datagrams were handed over");
            }
        })
}

fn receive(
    input: &UdpInput,
    matcher: &Matcher,
    stats: &IngestStats,
    out: &mut Handoff,
    shutdown: &watch::Receiver<bool>,
) -> Result<(), WriteError> {
    let fd = input.socket.as_raw_fd();
    let mut batch = Batch::new(DATAGRAMS_PER_CALL);
    // A dropped sender (the app ended on an error) also means stop.
    while !*shutdown.borrow() && shutdown.has_changed().is_ok() {
        let n = match batch.recv(fd, true) {
            Ok(n) => n,
            Err(e) if is_timeout_or_interrupt(&e) => {
                out.offer()?;
                continue;
            }
            Err(e) => {
                tracing::warn!("udp receive failed: {e}");
                // A persistent error must not spin the thread or flood the log.
                std::thread::sleep(WAKE_EVERY);
                continue;
            }
        };
        stats.udp_datagrams.fetch_add(n as u64, Relaxed);
        // One clock read per call: the datagrams of one call arrived together.
        // Before the clock is synchronised this is an unplaced stamp (see `clock`).
        let now = crate::clock::now_stamp();
        for i in 0..n {
            handle(input, batch.get(i), now, matcher, stats, &mut out.pending);
        }
        // A call that did not fill every slot emptied the socket: hand over now,
        // so a quiet sender's samples do not wait for the next one.
        if n < DATAGRAMS_PER_CALL || out.pending.len() >= HANDOFF_AT {
            out.offer()?;
        }
    }
    Ok(())
}

fn is_timeout_or_interrupt(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{Interrupted, TimedOut, WouldBlock};
    matches!(e.kind(), WouldBlock | TimedOut | Interrupted)
}

fn handle(
    input: &UdpInput,
    d: Datagram<'_>,
    now_ms: i64,
    matcher: &Matcher,
    stats: &IngestStats,
    samples: &mut Vec<Sample>,
) {
    if !input.allow.is_empty() && !d.from.is_some_and(|ip| allowed(&input.allow, ip)) {
        stats.udp_dropped_not_allowed.fetch_add(1, Relaxed);
        let from = d
            .from
            .map_or("an unknown address".into(), |ip| ip.to_string());
        stats.log_bad(
            "udp",
            &format_args!("datagram from {from}, which is not in [udp] allow"),
        );
        return;
    }
    if d.truncated || d.bytes.len() > MAX_DATAGRAM {
        stats.udp_dropped_too_large.fetch_add(1, Relaxed);
        return;
    }
    let parsed = parse_body(matcher, d.bytes, input.precision, now_ms, stats, "udp");
    samples.extend(parsed.samples);
}

fn allowed(allow: &[IpNet], ip: IpAddr) -> bool {
    allow.iter().any(|net| net.contains(ip))
}

/// Samples on their way to the writer, in arrival order (counter values depend
/// on it).
struct Handoff {
    writer: Writer,
    stats: Arc<IngestStats>,
    pending: Vec<Sample>,
}

impl Handoff {
    fn new(writer: Writer, stats: Arc<IngestStats>) -> Handoff {
        Handoff {
            writer,
            stats,
            pending: Vec::new(),
        }
    }

    /// Hands the pending samples over if the writer's queue has room. Waits only
    /// when the local buffer is full too: the writer is then far behind, and
    /// dropping here would lose no less than letting the kernel buffer fill.
    fn offer(&mut self) -> Result<(), WriteError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let samples = std::mem::take(&mut self.pending);
        let n = samples.len() as u64;
        match self.writer.try_submit(samples)? {
            None => {
                self.stats.accepted_udp.fetch_add(n, Relaxed);
            }
            Some(back) => {
                self.pending = back;
                if self.pending.len() >= MAX_PENDING {
                    self.flush()?;
                }
            }
        }
        Ok(())
    }

    /// Hands every pending sample over, waiting for room if need be.
    fn flush(&mut self) -> Result<(), WriteError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let samples = std::mem::take(&mut self.pending);
        let n = samples.len() as u64;
        self.writer.submit_blocking(samples)?;
        self.stats.accepted_udp.fetch_add(n, Relaxed);
        Ok(())
    }
}

fn force_recv_buffer(socket: &socket2::Socket, size: usize) -> bool {
    let size = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
    // SAFETY: a valid socket fd and a pointer to a c_int of the stated length.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            std::ptr::addr_of!(size).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}
