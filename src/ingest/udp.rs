//! The UDP input: line protocol datagrams, as a NodeMCU or Telegraf sends them.
//!
//! Receives on a socket with a large kernel buffer, drains every datagram that is
//! waiting, and hands the samples to the writer in one request, so a burst costs
//! one store batch. Datagrams from outside the allowlist are dropped and counted.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::watch;

use super::line_protocol::Precision;
use super::points::{parse_body, Matcher};
use super::stats::IngestStats;
use crate::config::IpNet;
use crate::store::writer::Writer;

/// Largest datagram accepted (the IPv4 UDP payload limit).
const MAX_DATAGRAM: usize = 65_507;
/// Kernel receive buffer asked for: bursts of tens of thousands of datagrams.
const RECV_BUFFER: usize = 8 << 20;
/// Samples handed to the writer in one request at most.
const MAX_BATCH: usize = 8192;

pub struct UdpInput {
    pub socket: UdpSocket,
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
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

pub async fn run(
    input: UdpInput,
    matcher: Arc<Matcher>,
    writer: Writer,
    stats: Arc<IngestStats>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    loop {
        let first = tokio::select! {
            r = input.socket.recv_from(&mut buf) => r,
            _ = shutdown.changed() => break,
        };
        let mut samples = Vec::new();
        let mut next = Some(first);
        while let Some(result) = next.take() {
            match result {
                Ok((n, from)) => {
                    handle(&input, &buf[..n], from.ip(), &matcher, &stats, &mut samples)
                }
                Err(e) => tracing::warn!("udp receive failed: {e}"),
            }
            if samples.len() < MAX_BATCH {
                next = input.socket.try_recv_from(&mut buf).ok().map(Ok);
            }
        }
        if samples.is_empty() {
            continue;
        }
        stats.accepted_udp.fetch_add(samples.len() as u64, Relaxed);
        if writer.submit(samples).await.is_err() {
            break;
        }
    }
}

fn handle(
    input: &UdpInput,
    datagram: &[u8],
    from: IpAddr,
    matcher: &Matcher,
    stats: &IngestStats,
    samples: &mut Vec<crate::ingest::Sample>,
) {
    stats.udp_datagrams.fetch_add(1, Relaxed);
    if !input.allow.is_empty() && !input.allow.iter().any(|net| net.contains(from)) {
        stats.udp_dropped_not_allowed.fetch_add(1, Relaxed);
        stats.log_bad(
            "udp",
            &format_args!("datagram from {from}, which is not in [udp] allow"),
        );
        return;
    }
    if datagram.len() > MAX_DATAGRAM {
        stats.udp_dropped_too_large.fetch_add(1, Relaxed);
        return;
    }
    let now = chrono::Utc::now().timestamp_millis();
    let parsed = parse_body(matcher, datagram, input.precision, now, stats, "udp");
    samples.extend(parsed.samples);
}

fn force_recv_buffer(socket: &socket2::Socket, size: usize) -> bool {
    use std::os::fd::AsRawFd;
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
