//! Many datagrams per system call: a `recvmmsg(2)` wrapper over a reusable arena.
//!
//! One call takes every datagram waiting on the socket (up to the number of slots),
//! so an unpaced sender costs one syscall per few dozen datagrams instead of one
//! each. Each slot is as large as the largest UDP payload, but the arena is
//! allocated zeroed on demand: only pages that datagrams actually reach become
//! resident. This module only receives; it neither judges nor parses datagrams.

use std::io;
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::RawFd;

/// Room per datagram: more than the largest UDP payload over IPv4 or IPv6, so a
/// too-large datagram is seen whole (and counted) rather than cut.
pub const SLOT_SIZE: usize = 64 << 10;

/// One received datagram: its bytes and where it came from.
pub struct Datagram<'a> {
    pub bytes: &'a [u8],
    /// `None` only if the kernel reported an address family other than IPv4/IPv6.
    pub from: Option<IpAddr>,
    /// The datagram was longer than its slot (the bytes are cut).
    pub truncated: bool,
}

/// Buffers and headers for one `recvmmsg` call, reused for every call.
///
/// The headers point into the arena, the address array and the iovecs; all of
/// them are heap allocations that are never resized, so the pointers stay valid
/// while the `Batch` (which may move) lives.
pub struct Batch {
    arena: Box<[u8]>,
    // Never read directly: the kernel writes through the headers' pointers.
    _iovs: Box<[libc::iovec]>,
    addrs: Box<[libc::sockaddr_storage]>,
    hdrs: Box<[libc::mmsghdr]>,
}

impl Batch {
    pub fn new(slots: usize) -> Batch {
        let mut arena = vec![0u8; slots * SLOT_SIZE].into_boxed_slice();
        let mut iovs: Box<[libc::iovec]> = (0..slots)
            .map(|i| libc::iovec {
                // SAFETY: i * SLOT_SIZE < arena.len() for every slot.
                iov_base: unsafe { arena.as_mut_ptr().add(i * SLOT_SIZE) }.cast(),
                iov_len: SLOT_SIZE,
            })
            .collect();
        // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
        let mut addrs: Box<[libc::sockaddr_storage]> =
            (0..slots).map(|_| unsafe { std::mem::zeroed() }).collect();
        let hdrs = (0..slots)
            .map(|i| {
                // SAFETY: mmsghdr is plain old data (pointers may be null).
                let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                h.msg_hdr.msg_name = std::ptr::addr_of_mut!(addrs[i]).cast();
                h.msg_hdr.msg_iov = std::ptr::addr_of_mut!(iovs[i]);
                h.msg_hdr.msg_iovlen = 1;
                h
            })
            .collect();
        Batch {
            arena,
            _iovs: iovs,
            addrs,
            hdrs,
        }
    }

    /// Waits for one datagram (at most the socket's `SO_RCVTIMEO`, then
    /// `WouldBlock`; not at all unless `wait`), then takes whatever else is
    /// already queued, up to the number of slots. Returns how many datagrams
    /// [`Batch::get`] can return.
    pub fn recv(&mut self, fd: RawFd, wait: bool) -> io::Result<usize> {
        let flags = if wait {
            libc::MSG_WAITFORONE
        } else {
            libc::MSG_DONTWAIT
        };
        for h in self.hdrs.iter_mut() {
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        let slots = libc::c_uint::try_from(self.hdrs.len()).unwrap_or(libc::c_uint::MAX);
        // SAFETY: every header points at its own iovec (one slot of the arena, of
        // the stated length) and its own sockaddr_storage of the stated length;
        // all of them live as long as `self`, which is borrowed mutably here.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                slots,
                flags as _,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((n as usize).min(self.hdrs.len()))
    }

    /// The `i`th datagram of the last [`Batch::recv`] (`i` below its result).
    pub fn get(&self, i: usize) -> Datagram<'_> {
        let h = &self.hdrs[i].msg_hdr;
        let len = (self.hdrs[i].msg_len as usize).min(SLOT_SIZE);
        let start = i * SLOT_SIZE;
        Datagram {
            bytes: &self.arena[start..start + len],
            from: ip_of(&self.addrs[i], h.msg_namelen),
            truncated: h.msg_flags & libc::MSG_TRUNC != 0,
        }
    }
}

/// The IP address in a socket address the kernel filled in.
fn ip_of(a: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<IpAddr> {
    let len = len as usize;
    match libc::c_int::from(a.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says sockaddr_in; sockaddr_storage is large and
            // aligned enough for every socket address type.
            let sin = unsafe { &*std::ptr::from_ref(a).cast::<libc::sockaddr_in>() };
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                sin.sin_addr.s_addr,
            ))))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &*std::ptr::from_ref(a).cast::<libc::sockaddr_in6>() };
            Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    fn receiver() -> UdpSocket {
        let r = UdpSocket::bind("127.0.0.1:0").unwrap();
        r.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        r
    }

    #[test]
    fn one_call_takes_every_queued_datagram_with_its_source() {
        let r = receiver();
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..5 {
            s.send_to(format!("d{i}").as_bytes(), r.local_addr().unwrap())
                .unwrap();
        }
        let mut b = Batch::new(8);
        let n = b.recv(r.as_raw_fd(), true).unwrap();
        assert_eq!(n, 5);
        for i in 0..n {
            let d = b.get(i);
            assert_eq!(d.bytes, format!("d{i}").as_bytes());
            assert_eq!(d.from, Some(s.local_addr().unwrap().ip()));
            assert!(!d.truncated);
        }
    }

    #[test]
    fn more_datagrams_than_slots_take_several_calls_in_order() {
        let r = receiver();
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..10u8 {
            s.send_to(&[i], r.local_addr().unwrap()).unwrap();
        }
        let mut b = Batch::new(4);
        let mut got = Vec::new();
        while got.len() < 10 {
            let n = b.recv(r.as_raw_fd(), true).unwrap();
            assert!(n <= 4);
            got.extend((0..n).map(|i| b.get(i).bytes[0]));
        }
        assert_eq!(got, (0..10).collect::<Vec<u8>>());
    }

    #[test]
    fn an_empty_socket_times_out_instead_of_blocking_forever() {
        let r = receiver();
        let err = Batch::new(2).recv(r.as_raw_fd(), true).unwrap_err();
        assert!(matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ));
    }

    #[test]
    fn without_wait_an_empty_socket_answers_at_once() {
        let r = UdpSocket::bind("127.0.0.1:0").unwrap();
        r.set_read_timeout(Some(Duration::from_secs(3600))).unwrap();
        let err = Batch::new(2).recv(r.as_raw_fd(), false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn a_largest_ipv4_datagram_fits_one_slot_whole() {
        let r = receiver();
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let big = vec![b'x'; 65_507];
        s.send_to(&big, r.local_addr().unwrap()).unwrap();
        let mut b = Batch::new(2);
        assert_eq!(b.recv(r.as_raw_fd(), true).unwrap(), 1);
        assert_eq!(b.get(0).bytes.len(), 65_507);
        assert!(!b.get(0).truncated);
    }
}
